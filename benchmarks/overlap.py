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

if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    given, plan = int(sys.argv[1]), pipeline.plan_windows
    pipeline.plan_windows = lambda known, window, overlap=None: plan(known, window, given)
    sys.exit(main(["eval", *sys.argv[2:]]))
