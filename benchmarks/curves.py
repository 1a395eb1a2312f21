"""Quality against training compute and against sampling steps, as tables and plots.

    python benchmarks/curves.py compute RUN_DIR [--weights DIR] [--limit N] [--base-clips C --base-minutes M]
    python benchmarks/curves.py steps MODEL_DIR [--steps 5 10 20 40] [--limit N]

`compute` scores EMA weights saved during a run (RUN_DIR/checkpoints/*/ema.safetensors, or the
step_XXXXXXX.safetensors files in --weights) with `vidiff eval` and reads clips seen and minutes
from RUN_DIR/log.jsonl; --base-* add the cost of earlier stages the run was warm-started from.
`steps` scores one model at several sampling step counts. Results go to
benchmarks/results/curve_{compute,steps}.{json,png}. --limit evaluates the first N prompts of
the 168 (every colour x shape x direction) for a quicker, noisier point.
"""

import argparse
import json
import re
from pathlib import Path

import torch

from vidiff.config import load_config
from vidiff.eval.evaluate import eval_prompts, evaluate
from vidiff.models.unet import VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.checkpoint import load_weights

OUT = Path("benchmarks/results")


def score(pipe, limit, steps=None):
    items = eval_prompts("canonical", 1)[: limit or None]
    summary, _ = evaluate(pipe, items, steps=steps, progress=False)
    return summary


def compute_curve(args):
    run = Path(args.run)
    cfg = load_config(run / "config.json")
    log = {r["step"]: r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())}
    files = sorted(Path(args.weights).glob("step_*.safetensors")) if args.weights else \
        sorted(run.glob("checkpoints/step_*/ema.safetensors"))
    points = []
    for f in files:
        step = int(re.search(r"step_(\d+)", str(f)).group(1))
        net = VideoUNet(cfg.model)
        load_weights(net, f)
        pipe = VideoPipeline(net, cfg.diffusion, cfg.sample, cfg.data.frames, cfg.data.size, cfg.text_encoder or None)
        row = log[max(k for k in log if k <= step)]
        points.append({"step": step, "clips": args.base_clips + row["clips_seen"],
                       "minutes": args.base_minutes + row["elapsed_s"] / 60, **score(pipe, args.limit)})
        print(json.dumps(points[-1]))
    return points, "clips", "training clips seen"


def steps_curve(args):
    pipe = VideoPipeline.from_pretrained(args.model)
    points = []
    for n in args.steps:
        points.append({"sampling_steps": n, **score(pipe, args.limit, steps=n)})
        print(json.dumps(points[-1]))
    return points, "sampling_steps", "sampling steps"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="curve", required=True)
    c = sub.add_parser("compute")
    c.add_argument("run")
    c.add_argument("--weights", default=None)
    c.add_argument("--base-clips", type=int, default=0)
    c.add_argument("--base-minutes", type=float, default=0.0)
    s = sub.add_parser("steps")
    s.add_argument("model")
    s.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    for q in (c, s):
        q.add_argument("--limit", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(0)
    points, x, label = compute_curve(args) if args.curve == "compute" else steps_curve(args)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"curve_{args.curve}.json").write_text(json.dumps({"settings": vars(args), "points": points}, indent=1))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in ("all", "direction", "motion", "colour", "shape"):
        ax.plot([pt[x] for pt in points], [100 * pt[key] for pt in points], marker="o",
                label="everything" if key == "all" else key)
    ax.set(xlabel=label, ylabel="% of clips right", ylim=(-2, 102))
    if args.curve == "compute":
        top = ax.secondary_xaxis("top", functions=_minutes_axis(points))
        top.set_xlabel("CPU minutes (2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / f"curve_{args.curve}.png", dpi=120)
    print(f"wrote {OUT}/curve_{args.curve}.json and .png")


def _minutes_axis(points):
    """clips <-> minutes by linear interpolation over the measured points."""
    import numpy as np

    clips, minutes = [pt["clips"] for pt in points], [pt["minutes"] for pt in points]
    return (lambda c: np.interp(c, clips, minutes), lambda m: np.interp(m, minutes, clips))


if __name__ == "__main__":
    main()
