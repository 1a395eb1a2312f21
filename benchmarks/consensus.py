"""Does the most typical of K samples continue a clip better than one sample? (no training)

    python benchmarks/consensus.py [MODEL_DIR] [--candidates K] [--start S] [--limit N]

For each clip of `vidiff eval --task extend` (first half given), K continuations are drawn in one
batch with the model's settings. The consensus pick is the medoid: the candidate whose new frames
are nearest, in mean squared pixel difference, to the other candidates' (minimum Bayes risk under
that distance). Samples that spread around the right path put the medoid near its middle. The
scorer's truth is never used to choose. Scored by the task's scorer (every new centre within 1.5 px
of the truth); output appended to benchmarks/results/consensus.txt.
"""

import argparse

import numpy as np
import torch
from tqdm.auto import tqdm

from vidiff.data.captions import canonical
from vidiff.data.shapes import ShapesWorld
from vidiff.eval.tasks import EVAL_SEED, EXTEND_TOL, centre_error, task_items
from vidiff.pipeline import VideoPipeline

from _results import append_results


def medoid(videos, power=2, blur=0):
    """Index of the video (K, F, H, W, 3) with the least summed distance**power to the others,
    frames first box-blurred over (2 blur + 1)^2 pixels."""
    v = torch.as_tensor(videos).float()
    if blur:
        k = 2 * blur + 1
        v = torch.nn.functional.avg_pool2d(v.flatten(0, 1).permute(0, 3, 1, 2), k, 1, blur,
                                           count_include_pad=False)
    v = v.reshape(len(videos), -1)                                    # (K, D)
    return int(torch.cdist(v, v).pow(power).sum(1).argmin())


RULES = {"squared": {}, "distance": {"power": 1}, "squared, blurred 5x5": {"blur": 2}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--start", type=int, default=0, help="first clip of the extend task's items")
    ap.add_argument("--limit", type=int, default=48)
    args = ap.parse_args()
    sizes = [k for k in (4, 8, 16) if k < args.candidates] + [args.candidates]
    pipe = VideoPipeline.from_pretrained(args.model)
    T, given, scale = pipe.frames, pipe.frames // 2, pipe.size / 32
    world = ShapesWorld(EVAL_SEED, T, pipe.size, pipe.size)
    right = []                                                        # (N, K) candidates right
    picks = {(rule, k): [] for rule in RULES for k in sizes}
    for colour, shape, direction, index in tqdm(task_items()[args.start:args.start + args.limit],
                                                desc="consensus", dynamic_ncols=True):
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        g = torch.Generator().manual_seed(index)
        batch = np.repeat(clip.video[None, :given], args.candidates, 0)
        videos = pipe.extend(batch, canonical(colour, shape, direction), T - given, generator=g)
        right.append([centre_error(v, clip.centres, range(given, T), scale) <= EXTEND_TOL for v in videos])
        for rule, k in picks:
            picks[rule, k].append(medoid(videos[:k, given:], **RULES[rule]))
    right = np.array(right)
    rows = np.arange(len(right))
    lines = [f"consensus.py {args.model or 'default'}: continuation within {EXTEND_TOL} px, clips "
             f"{args.start}-{args.start + len(right) - 1}, the medoid of the first K of {args.candidates} "
             "candidates by each distance",
             f"  one sample (mean over candidates)  {100 * right.mean():5.1f}%",
             f"  any candidate (oracle)             {100 * right.any(1).mean():5.1f}%"]
    for rule in RULES:
        cells = "  ".join(f"K={k} {100 * right[rows, picks[rule, k]].mean():5.1f}%" for k in sizes)
        lines.append(f"  medoid, {rule:<26} {cells}")
    print("\n".join(lines))
    append_results("consensus.txt", lines)


if __name__ == "__main__":
    main()
