"""Quality against training compute and against sampling steps, as tables and plots.

    python benchmarks/curves.py compute RUN_DIR [RUN_DIR ...] [--weights DIR] [--limit N] [--every S]
        [--base-clips C --base-minutes M [--keep]] [--sampler S] [--guidance-min-t T]
    python benchmarks/curves.py steps MODEL_DIR [--steps 5 10 20 40] [--limit N] [--sampler S] [--guidance-min-t T]

`compute` scores EMA weights saved during a run (RUN_DIR/checkpoints/*/ema.safetensors, or the
step_XXXXXXX.safetensors files in --weights) with `vidiff eval` and reads clips seen from
RUN_DIR/log.jsonl; minutes are clips seen over the run's median training rate, so time the run
spent paused (for instance while an earlier checkpoint was scored) does not count. --base-* add
the cost of earlier stages the run was warm-started from; several RUN_DIRs (each warm-started
from the one before) make one curve, a later run counting on from where the one before ended.
--keep adds runs to the curve in the results file without their predecessors' folders: the points
already scored stay, and --base-* say where the last of those runs ended.
Checkpoints already scored in the results file with the same settings (detector included) are not
scored again.
`steps` scores one model at several sampling step counts. Results go to benchmarks/results/curve_{compute,steps}.{json,png}.
--limit scores a fixed random N of the 168 prompts (every colour x shape x direction), for a
quicker, noisier point that still covers every colour, shape and direction.
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from _results import RESULTS
from vidiff.config import load_config
from vidiff.eval.evaluate import eval_prompts, evaluate
from vidiff.pipeline import VideoPipeline
from vidiff.text.encoders import TextEncoder

DETECTOR = "best fit, min IoU 0.85"   # shapes_metric.classify_shape; "best fit": no least IoU; no key: the fill rule


def score(pipe, limit, steps=None, sampler=None, guidance_min_t=None):
    items = eval_prompts("canonical", 1)
    if limit:
        keep = np.random.default_rng(0).permutation(len(items))[:limit]
        items = [items[i] for i in sorted(keep)]
    summary, _ = evaluate(pipe, items, steps=steps, sampler=sampler, guidance_min_t=guidance_min_t,
                          progress=False)
    return summary


def compute_curve(args):
    """Score the EMA checkpoints of one run, or of several runs each warm-started from the last.

    A later run's clips and minutes count on from where the run before it ended.
    """
    if args.weights and len(args.runs) > 1:
        raise SystemExit("--weights goes with a single run")
    done, kept = {}, []
    if (RESULTS / "curve_compute.json").is_file():
        old = json.loads((RESULTS / "curve_compute.json").read_text())
        same = lambda keys: all(old["settings"].get(k) == vars(args).get(k) for k in keys)
        first = old["settings"].get("run") or old["settings"]["runs"][0]
        # Each point names the detector that scored it (older files: the one in their settings).
        scored = [{"run": first, "detector": old["settings"].get("detector"), **pt} for pt in old["points"]]
        if same(("weights", "limit", "sampler", "guidance_min_t", "detector")):
            done = {(pt["run"], pt["step"]): pt for pt in scored}
        if args.keep and same(("limit", "sampler", "guidance_min_t")):
            kept = [pt for pt in scored if pt["run"] not in args.runs]
    points, base_clips, base_minutes = [], args.base_clips, args.base_minutes
    if args.keep:
        # Stages whose run folders are gone: their points stay in front, and --base-* says where they ended.
        points = kept
        if not points:
            raise SystemExit("--keep found no earlier points scored with these settings")
        if base_clips < max(pt["clips"] for pt in points):
            raise SystemExit("--base-clips must be where the kept runs ended, at or after their last point")
    text = None                                    # one encoder (and caption cache) for every checkpoint
    for run_dir in args.runs:
        run = Path(run_dir)
        cfg = load_config(run / "config.json")
        log = {r["step"]: r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())}
        rate = float(np.median([r["clips_per_s"] for r in log.values()]))
        files = sorted(Path(args.weights).glob("step_*.safetensors")) if args.weights else \
            sorted(run.glob("checkpoints/step_*/ema.safetensors"))
        for f in files:
            step = int(re.search(r"step_(\d+)", str(f)).group(1))
            row = log[max(k for k in log if k <= step)]
            cost = {"run": run_dir, "step": step, "clips": base_clips + row["clips_seen"],
                    "minutes": base_minutes + row["clips_seen"] / rate / 60}
            if (run_dir, step) in done:
                points.append({**done[(run_dir, step)], **cost})   # scores kept, cost re-read from the log
                continue
            if step % args.every:
                continue
            text = text or TextEncoder(cfg.text_encoder or None)
            pipe = VideoPipeline.from_checkpoint(f, run / "config.json", text)
            summary = score(pipe, args.limit, sampler=args.sampler, guidance_min_t=args.guidance_min_t)
            points.append({**summary, "eval_clips": summary["clips"], "detector": DETECTOR,
                           "sampler": args.sampler or pipe.sample_defaults.sampler,
                           "guidance_min_t": _min_t(args, pipe), **cost})
            print(json.dumps(points[-1]))
        last = log[max(log)]
        base_clips += last["clips_seen"]
        base_minutes += last["clips_seen"] / rate / 60
    return points, "clips", "training clips seen"


def _min_t(args, pipe):
    return pipe.sample_defaults.guidance_min_t if args.guidance_min_t is None else args.guidance_min_t


def steps_curve(args):
    pipe = VideoPipeline.from_pretrained(args.model)
    points = []
    for n in args.steps:
        points.append({"sampling_steps": n, "sampler": args.sampler or pipe.sample_defaults.sampler,
                       "eta": pipe.sample_defaults.eta, "guidance_min_t": _min_t(args, pipe),
                       **score(pipe, args.limit, steps=n, sampler=args.sampler, guidance_min_t=args.guidance_min_t)})
        print(json.dumps(points[-1]))
    return points, "sampling_steps", "sampling steps"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="curve", required=True)
    c = sub.add_parser("compute")
    c.add_argument("runs", nargs="+", help="run directories, each warm-started from the one before")
    c.add_argument("--weights", default=None)
    c.add_argument("--base-clips", type=int, default=0)
    c.add_argument("--base-minutes", type=float, default=0.0)
    c.add_argument("--keep", action="store_true",
                   help="keep the points already in the results file for runs not given (earlier stages)")
    c.add_argument("--every", type=int, default=1, help="score new checkpoints only where the step is a multiple of this")
    s = sub.add_parser("steps")
    s.add_argument("model")
    s.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    for q in (c, s):
        q.add_argument("--limit", type=int, default=0)
        q.add_argument("--sampler", default=None, help="every point with this sampler (default: each model's own)")
        q.add_argument("--guidance-min-t", type=float, default=None,
                       help="every point without guidance below this diffusion time (default: each model's own)")
    args = p.parse_args()
    args.detector = DETECTOR
    torch.manual_seed(0)
    points, x, label = compute_curve(args) if args.curve == "compute" else steps_curve(args)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    RESULTS.mkdir(parents=True, exist_ok=True)
    settings = vars(args)
    if args.curve == "compute" and args.keep:
        settings["runs"] = list(dict.fromkeys([pt["run"] for pt in points] + args.runs))
    (RESULTS / f"curve_{args.curve}.json").write_text(json.dumps({"settings": settings, "points": points}, indent=1))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for key in ("all", "direction", "motion", "colour", "shape"):
        ax.plot([pt[x] for pt in points], [100 * pt[key] for pt in points], marker="o",
                label="everything" if key == "all" else key)
    if all("held_out" in pt for pt in points):
        ax.plot([pt[x] for pt in points], [100 * pt["held_out"]["all"] for pt in points], marker="o",
                linestyle="--", label="everything, held-out combinations")
    ax.set(xlabel=label, ylabel="% of clips right", ylim=(-2, 102))
    if args.curve == "compute":
        for a, b in zip(points, points[1:]):
            if a["run"] != b["run"]:   # a new run starts: mark where it took over
                ax.axvline(a["clips"], color="grey", linewidth=0.8, linestyle=":")
            if a.get("detector") != b.get("detector"):   # a stricter detector from here on
                ax.axvline(b["clips"], color="red", linewidth=0.8, linestyle="--",
                           label=f"from here: detector {b['detector']}")
    if args.curve == "compute":
        top = ax.secondary_xaxis("top", functions=_minutes_axis(points))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        top.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
        top.set_xlabel("CPU minutes (2 cores)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(RESULTS / f"curve_{args.curve}.png", dpi=120)
    print(f"wrote {RESULTS}/curve_{args.curve}.json and .png")


def _minutes_axis(points):
    """clips <-> minutes: linear between the measured points and straight on past the ends, so
    ticks beyond the last point don't all pile up on it (np.interp alone clamps)."""
    clips = np.array([pt["clips"] for pt in points], dtype=float)
    minutes = np.array([pt["minutes"] for pt in points], dtype=float)
    if len(points) < 2:                      # one point: minutes in proportion to clips
        clips, minutes = np.append(clips, 0.0)[::-1], np.append(minutes, 0.0)[::-1]

    def interp(v, xs, ys):
        v = np.asarray(v, dtype=float)
        lo, hi = (ys[1] - ys[0]) / (xs[1] - xs[0]), (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        out = np.interp(v, xs, ys)
        out = np.where(v < xs[0], ys[0] + (v - xs[0]) * lo, out)
        return np.where(v > xs[-1], ys[-1] + (v - xs[-1]) * hi, out)

    return (lambda c: interp(c, clips, minutes), lambda m: interp(m, minutes, clips))


if __name__ == "__main__":
    main()
