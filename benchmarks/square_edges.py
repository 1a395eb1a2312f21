"""Where do a generated square's stray pixels lie? (why the default model's squares are not steady)

    python benchmarks/square_edges.py [MODEL_DIR]

Generates 48 square prompts (every colour and direction in turn, DDPM, 20 steps). In each frame
the square's core is the rectangle of rows and columns at least half as full as the fullest; any
object pixel outside it is stray, and the detector then finds the object filling less than 96% of
its bounding box and reads a circle. For frames 1-14 with stray pixels, counts where they lie
relative to the core: toward the frame paired with this one by the space-time U-Net's halving
(frames 2k and 2k+1 share a coarse frame) or toward the other neighbouring frame, and along the
motion (ahead or behind) or across it.
Output appended to benchmarks/results/square_edges.txt.
"""

import sys

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.data.shapes import COLOURS, DIRECTIONS
from vidiff.eval.shapes_metric import FOREGROUND, largest_blob
from vidiff.pipeline import VideoPipeline

from _results import append_results


def core_and_stray(frame):
    """Centre (x, y) of the object's core rectangle and the mean offset of its stray pixels (or None)."""
    obj, _ = largest_blob(frame.max(-1) > FOREGROUND)
    rows, cols = obj.sum(1), obj.sum(0)
    r = np.nonzero(rows >= 0.5 * rows.max())[0]
    c = np.nonzero(cols >= 0.5 * cols.max())[0]
    inside = np.zeros_like(obj)
    inside[r.min():r.max() + 1, c.min():c.max() + 1] = True
    centre = np.array([(c.min() + c.max()) / 2, (r.min() + r.max()) / 2])
    ys, xs = np.nonzero(obj & ~inside)
    return centre, (np.array([xs.mean(), ys.mean()]) - centre if len(xs) else None)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else None
    pipe = VideoPipeline.from_pretrained(model)
    asked = [(list(COLOURS)[i % 7], "square", list(DIRECTIONS)[i % 8]) for i in range(48)]
    videos = np.concatenate([pipe([canonical(*a) for a in asked[k:k + 16]], num_inference_steps=20, sampler="ddpm",
                                  generator=torch.Generator().manual_seed(k)) for k in range(0, 48, 16)])
    frames = stray = partner = other = along = ahead = across = 0
    for clip in videos:
        if not all((f.max(-1) > FOREGROUND).any() for f in clip):
            continue
        info = [core_and_stray(f) for f in clip]
        for f in range(1, len(clip) - 1):
            frames += 1
            centre, offset = info[f]
            if offset is None:
                continue
            stray += 1
            pair, neighbour = (f + 1, f - 1) if f % 2 == 0 else (f - 1, f + 1)
            to_pair, to_neighbour = info[pair][0] - centre, info[neighbour][0] - centre
            if min(np.linalg.norm(to_pair), np.linalg.norm(to_neighbour)) >= 0.5:
                partner += np.dot(offset, to_pair) > 0
                other += np.dot(offset, to_neighbour) > 0
            motion = info[f + 1][0] - info[f - 1][0]
            if np.linalg.norm(motion) >= 1 and np.linalg.norm(offset) > 1e-6:
                cos = np.dot(offset, motion) / np.linalg.norm(offset) / np.linalg.norm(motion)
                along += abs(cos) > 0.7
                ahead += cos > 0.7
                across += abs(cos) <= 0.7
    lines = [f"model: {model or 'default'}; 48 square prompts, DDPM 20 steps, frames 1-14",
             f"frames {frames}, with stray pixels outside the core rectangle {stray}",
             f"stray pixels toward the paired frame {partner}, toward the other neighbour {other}",
             f"along the motion {along} (ahead {ahead}, behind {along - ahead}), across it {across}"]
    print("\n".join(lines))
    append_results("square_edges.txt", lines)


if __name__ == "__main__":
    main()
