"""Do long videos gain from windows that overlap more than half a window?

    python benchmarks/overlap.py OVERLAP [vidiff eval arguments ...]
    python benchmarks/overlap.py 12 --frames 32 --limit 56 -o benchmarks/results/eval_NAME.json

Runs `vidiff eval` with every window past the first conditioned on OVERLAP frames already made
(the pipeline's plan uses half a window, 8 of 16): more given frames to read the motion from,
fewer new ones per window. An experiment, not an option: it swaps the planner for this process only
(`--task long`'s seam jump still looks half a window into each window, so score with `--frames`).
"""

import sys

import vidiff.pipeline as pipeline
from vidiff.cli import main
from vidiff.errors import VidiffError


def planner(given, plan=pipeline.plan_windows):
    def plan_windows(known, window, overlap=None):
        if not 0 < given < window:       # a window with no new frame would never finish the clip
            raise VidiffError(f"the overlap must be 1 to {window - 1} frames for this model, got {given}")
        return plan(known, window, given)
    return plan_windows


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    pipeline.plan_windows = planner(int(sys.argv[1]))
    sys.exit(main(["eval", *sys.argv[2:]]))
