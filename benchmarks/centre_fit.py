"""How far the detector's centres are from the true ones on true clips: the floor under the
known-frame tasks' tolerances (1.5 px for continuation, 1 px for interpolation).

    python benchmarks/centre_fit.py [--clips N]

True clips of the tasks' evaluation stream, every frame, two estimates of the object's centre:
its bounding-box centre (shapes_metric.detect_frame) and the centre of the ideal shape that
overlaps it best (shapes_metric.fit_centre, what vidiff eval --task scores). Per shape, the
per-frame error (mean / max) and the clip's worst frame (mean / max), px at 32 px.
Appended to benchmarks/results/centre_fit.txt.
"""

import argparse

import numpy as np

from vidiff.data.shapes import ShapesWorld
from vidiff.eval.shapes_metric import detect_frame, fit_centre
from vidiff.eval.tasks import EVAL_SEED, task_items

from _results import append_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=168)
    args = ap.parse_args()
    world = ShapesWorld(EVAL_SEED, 16, 32, 32)
    errors = {}                                          # shape -> [(box, fit) per frame, per clip]
    for colour, shape, direction, index in task_items(2)[: args.clips]:
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        box = np.array([detect_frame(f).centre for f in clip.video])
        fit = np.array([fit_centre(f, shape) for f in clip.video])
        errors.setdefault(shape, []).append([np.hypot(*(c - clip.centres).T) for c in (box, fit)])
    lines = [f"centre error on true clips (px at 32 px), {args.clips} clips x 16 frames: bounding box | fitted"]
    lines.append(f"  {'shape':<9} {'clips':>5}" + "".join(f"{h:>14}" for h in ("frame mean", "frame max", "clip mean", "clip max")))
    for shape, per_clip in sorted(errors.items()):
        e = np.array(per_clip)                           # (clips, 2, F)
        cols = [e.mean((0, 2)), e.max((0, 2)), e.max(2).mean(0), e.max(2).max(0)]
        lines.append(f"  {shape:<9} {len(e):>5}" + "".join(f"{a:.2f} | {b:.2f}".rjust(14) for a, b in cols))
    print("\n".join(lines))
    append_results("centre_fit.txt", lines)


if __name__ == "__main__":
    main()
