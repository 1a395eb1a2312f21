"""Where continuation goes wrong: the error of every new frame, not only the worst one.

    python benchmarks/extend_profile.py [MODEL_DIR] [--limit N]

Samples the clips of `vidiff eval --task extend` (same true clips, prompts and generator seeds,
so the pass count matches the eval's) and reports, over the new frames 8..15:
  - the median and 90th-percentile centre error (fitted centres, px at 32 px) frame by frame:
    an error already large at frame 8 means the model misplaces where the clip leaves off; one
    that grows frame by frame means it misreads the velocity;
  - for the clips that miss 1.5 px, the first new frame that does;
  - the pass rate of clips whose object bounces in the new frames and of those it does not;
  - the error split in two per clip: the offset at frame 8 and the growth after it.
Output appended to benchmarks/results/extend_profile.txt.
"""

import argparse

import numpy as np
import torch
from tqdm.auto import tqdm

from vidiff.data.captions import canonical
from vidiff.data.shapes import ShapesWorld
from vidiff.eval.tasks import EVAL_SEED, EXTEND_TOL, centre_errors, task_items
from vidiff.pipeline import VideoPipeline

from _results import append_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--limit", type=int, default=168)
    args = ap.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    T, half = pipe.frames, pipe.frames // 2
    world = ShapesWorld(EVAL_SEED, T, pipe.size, pipe.size)
    errs, bounce = [], []
    for colour, shape, direction, index in tqdm(task_items()[:args.limit], desc="extend"):
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        g = torch.Generator().manual_seed(index)                 # run_task's seed for seed 0
        video = pipe.extend(clip.video[:half], canonical(colour, shape, direction), T - half, generator=g)[0]
        errs.append(centre_errors(video, clip.centres, range(half, T), pipe.size / 32))   # (T - half,)
        steps = np.diff(clip.centres[half - 1:], axis=0)
        bounce.append(not (np.sign(steps) == np.sign(steps[0])).all())
    e = np.array(errs)                                            # (N, T - half); no object: inf, a miss
    right, bounce = (e <= EXTEND_TOL).all(1), np.array(bounce)
    lines = [f"model: {args.model or 'default'}; {len(e)} continuations (first {half} frames given), "
             f"right {right.mean():.1%}"]
    lines.append("frame            " + " ".join(f"{f:>5d}" for f in range(half, T)))
    lines.append("median error px  " + " ".join(f"{v:5.2f}" for v in np.median(e, 0)))
    lines.append("90th pct error   " + " ".join(f"{v:5.2f}" for v in np.percentile(e, 90, 0)))
    first = [int(np.argmax(row > EXTEND_TOL)) + half for row in e[~right]]
    lines.append("misses: first frame over the line " +
                 " ".join(f"{f}:{first.count(f)}" for f in range(half, T) if first.count(f)))
    lines.append(f"bounce in the new frames: right {right[bounce].mean():.1%} of {bounce.sum()}; "
                 f"none: {right[~bounce].mean():.1%} of {(~bounce).sum()}")
    finite = np.isfinite(e).all(1)
    offset, growth = e[finite, 0], e[finite, -1] - e[finite, 0]
    lines.append(f"per clip: offset at frame {half} median {np.median(offset):.2f} px, "
                 f"growth to frame {T - 1} median {np.median(growth):.2f} px "
                 f"(misses: {np.median(offset[~right[finite]]):.2f} and {np.median(growth[~right[finite]]):.2f})")
    print("\n".join(lines))
    append_results("extend_profile.txt", lines)


if __name__ == "__main__":
    main()
