"""Which of K continuations to keep: the medoid under other distances (no training).

    python benchmarks/selection.py draw [MODEL_DIR] [--seeds N --seed S] -o CANDIDATES.pt [--eval-json F]
    python benchmarks/selection.py score CANDIDATES.pt [--first N | --skip N]

`draw` runs `vidiff eval --task extend` exactly (the same clips, noise and settings, so its
figure is the eval's; `--eval-json` writes the eval's own results file too, so bars.py need not
run it again), and keeps every window's K candidates (the new frames, as sampled) with
each one's error under the task's scorer. `score` picks one candidate per clip by each rule below
and scores the pick. Every rule is a distance between candidates, blind to the truth and to the
content (no centres, no motion): the medoid under it is kept. Choose a rule on some clips
(`--first`) and check it on the others (`--skip`). Appends to benchmarks/results/selection.txt.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import vidiff.pipeline as pipeline
from vidiff.diffusion.consensus import gaussian_blur, medoid
from vidiff.eval.evaluate import write_results
from vidiff.eval.tasks import EVAL_SEED, EXTEND_TOL, centre_error, run_task, task_items
from vidiff.data.shapes import ShapesWorld

from _results import append_results
from paired import mcnemar


# Each rule maps candidates (K, N, C, F, H, W) to the features whose squared distance the medoid uses.
RULES = {
    "pixels (shipped)": lambda v: v,
    "blurred, sigma 1 px": lambda v: gaussian_blur(v, 1.0),
    "blurred, sigma 2 px": lambda v: gaussian_blur(v, 2.0),
    "blurred, sigma 4 px": lambda v: gaussian_blur(v, 4.0),
    "the last 4 new frames": lambda v: v[:, :, :, -4:],
    "frame-to-frame change": lambda v: v.diff(dim=3),
}


def draw(args):
    pipe = pipeline.VideoPipeline.from_pretrained(args.model)
    kept = []

    def recording_medoid(samples, blur=0.0):                          # (K, N, C, F_new, H, W)
        kept.append(samples.to(torch.float16).clone())
        return medoid(samples, blur)

    pipeline.medoid = recording_medoid
    items = task_items(args.seeds, args.seed)[:args.limit]
    summary, rows = run_task(pipe, "extend", items, seed=args.seed)
    T, size, given = pipe.frames, pipe.size, pipe.frames // 2
    world = ShapesWorld(EVAL_SEED + args.seed, T, size, size)
    errors = []
    for (colour, shape, direction, index), cands in zip(items, kept):
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        new = pipeline.to_uint8(cands[:, 0].float())                  # (K, F_new, H, W, 3)
        errors.append([centre_error(np.concatenate([clip.video[:given], v]), clip.centres, range(given, T),
                                    size / 32) for v in new])
    torch.save({"candidates": torch.stack([c[:, 0] for c in kept]), "errors": torch.tensor(errors),
                "eval_right": torch.tensor([r["right"] for r in rows]), "summary": summary,
                "model": args.model, "seeds": args.seeds, "seed": args.seed}, args.out)
    print(f"{summary['right'] * 100:.1f}% right (the eval's figure); saved {len(kept)} clips to {args.out}")
    if args.eval_json:   # the settings `vidiff eval --task extend` would record for this run
        write_results(args.eval_json, summary, rows, {"model": args.model, "task": "extend", "seeds": args.seeds,
                                                      "seed": args.seed, "limit": args.limit, "by": "selection.py draw"})


def score(args):
    if not Path(args.candidates).is_file():
        sys.exit(f"no candidates file {args.candidates}: write it with `selection.py draw -o`")
    d = torch.load(args.candidates)
    cands, right = d["candidates"], d["errors"] <= EXTEND_TOL              # (N, K, C, F, H, W), (N, K)
    clips = slice(args.skip, args.first)
    cands, right = cands[clips].float(), right[clips]
    n = len(right)
    rows = torch.arange(n)
    lines = [f"selection.py {args.candidates}: continuation within {EXTEND_TOL} px, clips {args.skip}-"
             f"{args.skip + n - 1} of {d['model'] or 'default'} (seeds {d['seeds']}, seed {d['seed']}), "
             f"K = {right.shape[1]}",
             f"  one sample (mean over candidates)  {100 * right.float().mean():5.1f}%",
             f"  any candidate (oracle)             {100 * right.any(1).float().mean():5.1f}%"]
    shipped = medoid(cands.transpose(0, 1))
    for name, features in RULES.items():
        pick = medoid(features(cands.transpose(0, 1)))
        lost, gained = (int((right[rows, a] & ~right[rows, b]).sum()) for a, b in ((shipped, pick), (pick, shipped)))
        lines.append(f"  medoid, {name:<26} {100 * right[rows, pick].float().mean():5.1f}%"
                     f"   lost {lost}, gained {gained}, p = {mcnemar(lost, gained):.2f}")
    # Where most candidates are wrong together, no consensus can pick the right one.
    count = right.sum(1)
    cells = "  ".join(f"{k}: {int((count == k).sum())} ({int(right[rows, shipped][count == k].sum())})"
                      for k in range(right.shape[1] + 1))
    lines.append(f"  clips by candidates right (the shipped rule right in): {cells}")
    agree = (right[rows, shipped] == d["eval_right"][clips]).float().mean()
    lines.append(f"  (the shipped rule agrees with the eval's clip scores in {100 * agree:.1f}% of clips)")
    print("\n".join(lines))
    append_results("selection.txt", lines)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("draw")
    d.add_argument("model", nargs="?", default=None)
    d.add_argument("--seeds", type=int, default=1)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--limit", type=int, default=None)
    d.add_argument("-o", "--out", required=True)
    d.add_argument("--eval-json", help="also write the eval's results file (what `vidiff eval -o` writes)")
    s = sub.add_parser("score")
    s.add_argument("candidates")
    s.add_argument("--first", type=int, default=None, help="score clips before this one")
    s.add_argument("--skip", type=int, default=0, help="score clips from this one")
    args = ap.parse_args()
    draw(args) if args.cmd == "draw" else score(args)


if __name__ == "__main__":
    main()
