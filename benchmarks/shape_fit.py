"""How well objects fit their best ideal shape: the margin behind shapes_metric.MIN_FIT.

    python benchmarks/shape_fit.py [--model DIR] [--true-clips N] [--prompts N]

For every frame, the IoU between the object and the ideal circle, square or triangle that
overlaps it best (shapes_metric.fit_shape), on true shapes-world clips at 32 and 64 px and on
clips the model generates for every other canonical prompt (its sampling settings). Prints
quantiles per shape; appended to benchmarks/results/shape_fit.txt. Blobs that are no shape
(ellipses, wide boxes, crosses, Ls) are tested in tests/test_metric.py.
"""

import argparse

import numpy as np
import torch

from vidiff.data.shapes import ShapesWorld
from vidiff.eval.evaluate import eval_prompts
from vidiff.eval.shapes_metric import FOREGROUND, MIN_AREA, MIN_FIT, fit_shape, largest_blob
from vidiff.pipeline import VideoPipeline

from _results import append_results


def frame_fits(video, scale=1.0):
    """(shape, IoU) of the main blob of every frame that has one."""
    out = []
    for frame in video:
        mask = frame.max(-1) > FOREGROUND
        if mask.sum() < MIN_AREA * scale**2:
            continue
        obj, _ = largest_blob(mask, scale)
        ys, xs = np.nonzero(obj)
        out.append(fit_shape(obj[ys.min():ys.max() + 1, xs.min():xs.max() + 1]))
    return out


def quantiles(name, fits):
    lines = []
    for shape in sorted({s for s, _ in fits}):
        v = np.array([iou for s, iou in fits if s == shape])
        q = np.quantile(v, [0.001, 0.01, 0.05, 0.5])
        lines.append(f"{name:<22}{shape:<10}{len(v):>7}{v.min():>8.3f}" + "".join(f"{x:>8.3f}" for x in q)
                     + f"{(v < MIN_FIT).sum():>9}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--true-clips", type=int, default=300, help="true clips at 32 px (a tenth as many at 64 px)")
    ap.add_argument("--prompts", type=int, default=84, help="generated clips: every k-th of the 168 prompts")
    args = ap.parse_args()

    world, world64 = ShapesWorld(seed=11), ShapesWorld(seed=12, height=64, width=64)
    true = [f for i in range(args.true_clips) for f in frame_fits(world.clip(i).video)]
    true64 = [f for i in range(args.true_clips // 10) for f in frame_fits(world64.clip(i).video, 2.0)]
    pipe = VideoPipeline.from_pretrained(args.model)
    items = eval_prompts("canonical", 1)
    items = items[::max(1, len(items) // args.prompts)][:args.prompts]
    generated = []
    for start in range(0, len(items), 16):
        chunk = items[start:start + 16]
        videos = pipe([it.prompt for it in chunk], generator=torch.Generator().manual_seed(start))
        generated += [(f"{it.shape} -> {s}", iou) for it, v in zip(chunk, videos) for s, iou in frame_fits(v)]

    lines = [f"IoU with the best ideal shape, per frame; model {args.model or 'default'}; MIN_FIT {MIN_FIT}",
             f"{'clips':<22}{'shape':<10}{'frames':>7}{'min':>8}{'p0.1%':>8}{'p1%':>8}{'p5%':>8}{'median':>8}"
             f"{'< MIN_FIT':>9}"]
    lines += quantiles("true, 32 px", true) + quantiles("true, 64 px", true64)
    lines += quantiles(f"generated ({len(items)})", generated)
    print("\n".join(lines))
    append_results("shape_fit.txt", lines)


if __name__ == "__main__":
    main()
