"""How much of a continuation do the given frames pin down? (an ideal observer; no model)

    python benchmarks/observer.py

The continuation task gives the first 8 of 16 true frames and scores the next 8 against the true
physics (every centre within 1.5 px). Reading that physics needs no learning: fit a centre below
the pixel in each given frame (the scorer's `fit_centre`), fit a straight constant-speed line
through the 8 centres, and run it on with the world's elastic walls. Where this observer is right,
the frames hold what the model needs; where it is not, no model could be sure. Clips that bounce
among the given frames are left out (a line does not fit them). This is a yardstick only: nothing
here reaches generation or the eval. Appends to benchmarks/results/observer.txt.
"""

import numpy as np

from vidiff.data.shapes import SHAPES, ShapesWorld, trajectory
from vidiff.eval.shapes_metric import fit_centre
from vidiff.eval.tasks import EVAL_SEED, EXTEND_TOL, task_items

from _results import append_results


def observe(clip, given=8):
    """The largest error (px) over the frames after `given` of a line fitted to the given centres,
    or None where the object bounces among the given frames."""
    step = np.diff(clip.centres[:given], axis=0)
    if (np.diff(np.sign(step), axis=0) != 0).any():
        return None
    f = np.arange(given)
    seen = np.array([fit_centre(clip.video[k], clip.shape) for k in f])              # (given, 2)
    (vx, x0), (vy, y0) = (np.polyfit(f, seen[:, a], 1) for a in range(2))
    H, W = clip.video.shape[1:3]
    lo = np.full(2, clip.side / 2)
    path = trajectory((x0, y0), (vx, vy), lo, np.array([W, H]) - lo, len(clip.centres))
    return float(np.hypot(*(path[given:] - clip.centres[given:]).T).max())


def main():
    errors = {s: [] for s in SHAPES}
    for seeds, seed in ((1, 0), (2, 1)):                 # the eval's 504 continuation clips
        world = ShapesWorld(EVAL_SEED + seed, 16, 32, 32)
        for colour, shape, direction, index in task_items(seeds, seed):
            err = observe(world.clip(index, colour=colour, shape=shape, direction=direction))
            if err is not None:
                errors[shape].append(err)
    every = np.concatenate([np.array(e) for e in errors.values()])

    def row(name, e):
        return (f"  {name:<9} {len(e):4d} clips  within {EXTEND_TOL} px {100 * (e <= EXTEND_TOL).mean():5.1f}%"
                f"  median {np.median(e):.2f} px  90th percentile {np.quantile(e, 0.9):.2f} px")

    lines = [f"observer.py: a line through the 8 given frames' fitted centres, run on with elastic walls; "
             f"the eval's continuation clips without a bounce among the given frames", row("all", every)]
    lines += [row(shape, np.array(e)) for shape, e in errors.items()]
    print("\n".join(lines))
    append_results("observer.txt", lines)


if __name__ == "__main__":
    main()
