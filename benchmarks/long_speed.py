"""Does a long video keep its speed from window to window?

    python benchmarks/long_speed.py [MODEL_DIR] [--limit N]

Makes `vidiff eval --task long`'s 128-frame clips (same prompts and noise) and reads the object's
speed in each block of half a window (the new frames of each window after the first): per axis
the mean |step| per frame, which elastic bounces leave unchanged, then their length. A model that
reads the speed of the frames it is given keeps it (ratio to the first block 1); one that reads it
a little low or high drifts block by block. Output appended to benchmarks/results/long_speed.txt.
"""

import argparse

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.eval.shapes_metric import detect_frame
from vidiff.eval.tasks import LONG_FRAMES, task_items
from vidiff.pipeline import VideoPipeline

from _results import append_results


def block_speeds(video, block, scale):
    """Speed (px per frame at 32 px) of the object in each block of `block` frames; NaN where lost."""
    centres = np.array([detect_frame(f, scale).centre for f in video], dtype=np.float64)   # (F, 2)
    steps = np.abs(np.diff(centres, axis=0))                                               # (F - 1, 2)
    return np.array([np.hypot(*np.nanmean(steps[b:b + block], axis=0)) / scale
                     for b in range(0, len(steps) - block + 1, block)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--limit", type=int, default=8)
    args = ap.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    block, scale = pipe.frames // 2, pipe.size / 32
    rows = []
    for colour, shape, direction, index in task_items()[:args.limit]:
        prompt = canonical(colour, shape, direction)
        video = pipe(prompt, num_frames=LONG_FRAMES, generator=torch.Generator().manual_seed(index))[0]
        rows.append(block_speeds(video, block, scale))
        print(f"{prompt:<45}" + " ".join(f"{v:4.2f}" for v in rows[-1]), flush=True)
    speeds = np.array(rows)                                                   # (clips, blocks)
    ratio = speeds / speeds[:, :1]
    lines = [f"long_speed.py {args.model or 'default'}: {len(rows)} clips of {LONG_FRAMES} frames, speed per "
             f"block of {block} frames (px/frame), median over clips",
             "  block          " + " ".join(f"{b:5d}" for b in range(speeds.shape[1])),
             "  speed          " + " ".join(f"{v:5.2f}" for v in np.nanmedian(speeds, 0)),
             "  / first block  " + " ".join(f"{v:5.2f}" for v in np.nanmedian(ratio, 0))]
    print("\n".join(lines))
    append_results("long_speed.txt", lines)


if __name__ == "__main__":
    main()
