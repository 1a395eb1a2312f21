"""Why are clips not steady? Per shape, what breaks steadiness in the model's clips and in true ones.

    python benchmarks/steadiness.py [MODEL_DIR]

For each shape, generates 16 prompts (every direction twice, the colours in turn) and counts the
unsteady clips by cause: the object's measured size spreading over more than the detector's
tolerance, its shape reading differently in some frames, a second blob, a colour change, a lost
frame. Beside it, the size spread the detector measures on 200 true shapes-world clips of that
shape (pixelation alone), so the tolerance can be judged per shape.
Output appended to benchmarks/results/steadiness.txt.
"""

import sys

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.data.shapes import COLOURS, DIRECTIONS, SHAPES, sample_clip
from vidiff.eval.shapes_metric import SIZE_TOL, UNSTEADY_CAUSES, detect_frame, unsteady_causes
from vidiff.pipeline import VideoPipeline

from _results import append_results


def size_spread(dets):
    sizes = [d.size for d in dets]
    return max(sizes) - min(sizes)


def true_spread(shape, n=200):
    rng = np.random.default_rng(0)
    spreads = [size_spread([detect_frame(f) for f in sample_clip(rng, shape=shape).video]) for _ in range(n)]
    return np.median(spreads), np.max(spreads)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else None
    pipe = VideoPipeline.from_pretrained(model)
    lines = [f"model: {model or 'default'}; 16 prompts per shape, {pipe.sample_defaults.sampler} "
             f"{pipe.sample_defaults.steps} steps, size tolerance {SIZE_TOL} px"]
    for shape in SHAPES:
        asked = [(list(COLOURS)[i % 7], shape, list(DIRECTIONS)[i % 8]) for i in range(16)]
        videos = pipe([canonical(*a) for a in asked], generator=torch.Generator().manual_seed(1))
        dets = [[detect_frame(f) for f in v] for v in videos]
        unsteady = [c for c in map(unsteady_causes, dets) if c]
        counts = {c: sum(c in u for u in unsteady) for c in UNSTEADY_CAUSES}
        spreads = [size_spread(d) for d in dets]
        median, worst = true_spread(shape)
        lines.append(f"{shape:8s} unsteady {len(unsteady):2d}/16  " + "  ".join(f"{k} {v}" for k, v in counts.items())
                     + f"  | size spread: model median {np.median(spreads):.2f} px, true median {median:.2f} max {worst:.2f}")
        print(lines[-1], flush=True)
    append_results("steadiness.txt", lines)


if __name__ == "__main__":
    main()
