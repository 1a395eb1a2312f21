"""Do images help when videos are scarce? The data-efficiency experiment on the shapes world.

For N distinct training clips (500, 2,000, 10,000, and 50 and 150, where a short run already
memorises its clips), three arms at equal training compute (the same number of optimiser
steps, an image step holding as many pixels as a video step):

    video     N clips only
    joint     N clips + 50,000 stills of the shapes world, half the steps on stills
    inflate   stills only (an image model, model.temporal = false) for the first half of the
              steps, then `inflate` and fine-tune on the N clips for the second half

Each run is then scored with `vidiff eval` (text-to-video, canonical prompts) and with its
denoising error (vidiff/eval/denoising_error.py) on 256 fresh clips and on 256 of its own
training clips: the error moves long before right-on-everything does, and the gap between
the two shows memorisation. Results go to
benchmarks/results/<config name>.{json,txt,png} (data_efficiency.* for the default config);
runs to runs/<config name>/.

    python benchmarks/data_efficiency.py [--config configs/data-efficiency.toml] [--steps N]
                                         [--clips 50 150 500 2000 10000] [--arms video joint inflate]
                                         [--eval-seeds 1] [--eval-steps 20]

Each run is resumable: rerunning skips finished runs and resumes stopped ones.
"""

import argparse
import json
from pathlib import Path

from _results import RESULTS
from vidiff.config import load_config
from vidiff.data.sources import video_source
from vidiff.eval.denoising_error import denoising_error
from vidiff.eval.evaluate import eval_prompts, evaluate
from vidiff.models.inflate import inflate
from vidiff.pipeline import VideoPipeline
from vidiff.training.checkpoint import list_checkpoints, save_json
from vidiff.training.loop import train

IMAGES = 50_000
ARMS = ("video", "joint", "inflate")


def run(config, out_dir, overrides, steps):
    """Train (or resume, or skip when finished) one run; returns its model directory."""
    cfg = load_config(config, [f"out_dir={out_dir}", f"optim.steps={steps}", *overrides])
    done = list_checkpoints(out_dir)
    if not done or int(done[-1].name.split("_")[1]) < steps:
        train(cfg, resume=bool(done))
    return Path(out_dir) / "model"


def arm(config, name, clips, steps, root):
    clip_set = [f"data.num_clips={clips}"]
    stills = ["data.images=shapes", f"data.num_images={IMAGES}"]
    run_dir = root / f"{name}-{clips}-s{steps}"  # a run is its arm, data and length
    if name == "video":
        return run(config, run_dir, clip_set, steps)
    if name == "joint":
        return run(config, run_dir, clip_set + stills + ["data.image_ratio=0.5"], steps)
    # inflate: an image model for half the steps (shared by every N), then video fine-tuning.
    image = run(config, root / f"images-s{steps // 2}", stills + ["data.image_ratio=1", "model.temporal=false"], steps // 2)
    inflated = root / f"images-s{steps // 2}-inflated"
    if not inflated.exists():
        pipe = VideoPipeline.from_pretrained(image)
        cfg = load_config(config)
        pipe.net = inflate(pipe.net, conv3d_levels=cfg.model.conv3d_levels)
        pipe.frames = cfg.data.frames
        pipe.save_pretrained(inflated)
    return run(config, run_dir, clip_set + [f"init_from={inflated / 'model.safetensors'}"], steps - steps // 2)


def train_seconds(run_dir):
    """Training time a run's log recorded (resumes included), so a rerun that trains nothing keeps it."""
    lines = (Path(run_dir) / "log.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["elapsed_s"]


def scored(model, run_dir, eval_seeds, eval_steps):
    """`vidiff eval` on canonical prompts, kept beside the run so a rerun does not sample again."""
    path = Path(run_dir) / f"eval_s{eval_seeds}_n{eval_steps}.json"
    if path.exists():
        return json.loads(path.read_text())
    summary, _ = evaluate(VideoPipeline.from_pretrained(model), eval_prompts("canonical", eval_seeds),
                          steps=eval_steps, progress=True)
    save_json(summary, path)
    return summary


def denoising(model, run_dir, training_clips):
    """Denoising error on fresh clips and on the run's training clips, kept beside the run."""
    path = Path(run_dir) / "denoising_n256.json"
    if path.exists():
        return json.loads(path.read_text())
    pipe = VideoPipeline.from_pretrained(model)
    errors = {"heldout_error": denoising_error(pipe, clips=256)["error"],
              "train_error": denoising_error(pipe, training_clips, clips=256)["error"]}
    save_json(errors, path)
    return errors


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/data-efficiency.toml")
    p.add_argument("--steps", type=int, help="optimiser steps per run (default: the config's optim.steps)")
    p.add_argument("--clips", type=int, nargs="+", default=[50, 150, 500, 2000, 10000])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--eval-seeds", type=int, default=1)
    p.add_argument("--eval-steps", type=int, default=20)
    args = p.parse_args()
    args.steps = args.steps or load_config(args.config).optim.steps
    root = Path("runs") / Path(args.config).stem
    results = []
    for clips in args.clips:
        for name in args.arms:
            model = arm(args.config, name, clips, args.steps, root)
            summary = scored(model, model.parent, args.eval_seeds, args.eval_steps)
            training = video_source(load_config(args.config, [f"data.num_clips={clips}"]).data)
            summary.update(denoising(model, model.parent, training))
            results.append({**summary, "eval_clips": summary["clips"], "eval_seeds": args.eval_seeds,
                            "eval_steps": args.eval_steps, "arm": name, "clips": clips, "steps": args.steps,
                            "train_s": train_seconds(model.parent) + (   # the inflate arm's image half too
                                train_seconds(root / f"images-s{args.steps // 2}") if name == "inflate" else 0)})
            print(json.dumps(results[-1]))
            write(results, args)  # after every run: a stopped experiment keeps what it measured


def run_id(r):
    return r["arm"], r["clips"], r["steps"]


def write(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / Path(args.config).stem.replace("-", "_")
    # Runs measured by an earlier invocation (other N, arms or lengths) stay in the table.
    if Path(f"{stem}.json").exists():
        new = {run_id(r) for r in results}
        results = [r for r in json.loads(Path(f"{stem}.json").read_text())["results"] if run_id(r) not in new] + results
    results.sort(key=lambda r: (r["steps"], r["clips"], r["arm"]))
    # Each row says how it was trained and scored; the rows may come from several invocations.
    save_json({"config": args.config, "results": results}, f"{stem}.json")
    keys = ["all", "colour", "shape", "direction", "steady", "motion"]
    errors = ["heldout_error", "train_error"]           # x0 MSE; rows from before they were measured lack them
    lines = [f"{'arm':<9}{'clips':>7}{'steps':>7}" + "".join(f"{k:>11}" for k in keys)
             + "".join(f"{k:>15}" for k in errors)]
    for r in results:
        lines.append(f"{r['arm']:<9}{r['clips']:>7}{r['steps']:>7}" + "".join(f"{100 * r[k]:>10.1f}%" for k in keys)
                     + "".join(f"{r[k]:>15.4f}" if k in r else f"{'-':>15}" for k in errors))
    Path(f"{stem}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    panels = [("all", "right on everything"), ("colour", "colour"), ("steady", "steady"),
              ("heldout_error", "denoising error")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), sharex=True)
    for ax, (key, label) in zip(axes, panels):
        for name in ARMS:
            rs = [r for r in results if r["arm"] == name and r["steps"] == args.steps and key in r]
            if not rs:
                continue
            scale = 1 if key.endswith("_error") else 100
            line, = ax.plot([r["clips"] for r in rs], [scale * r[key] for r in rs], marker="o", label=name)
            if key == "heldout_error":     # dashed: the same model on its own training clips
                ax.plot([r["clips"] for r in rs], [r["train_error"] for r in rs], ls="--", color=line.get_color())
        if key.endswith("_error"):
            ax.set(xscale="log", xlabel="distinct training clips", ylabel=f"{label} (x0 MSE)")
            ax.set_title("fresh clips; dashed: its training clips", fontsize=8)
        else:
            ax.set(xscale="log", xlabel="distinct training clips", ylabel=f"{label} (%)", ylim=(-3, 103))
        ax.set_xticks(args.clips, [f"{n:,}" for n in args.clips], minor=False)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    axes[0].legend()
    fig.suptitle(f"equal compute: {args.steps} steps per run ({Path(args.config).stem})")
    fig.tight_layout()
    fig.savefig(f"{stem}.png", dpi=120)


if __name__ == "__main__":
    main()
