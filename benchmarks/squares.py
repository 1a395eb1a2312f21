"""Do squares come out as squares under other samplers? (the default model's weakest shape)

    python benchmarks/squares.py [MODEL_DIR]

Generates 12 square prompts (every colour, every direction) with each sampler setting, scores them
with the shapes-world detector and prints how many read as squares, how many are steady and right on
everything, and the spread of the background. Output appended to benchmarks/results/squares.txt.
"""

import sys

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.data.shapes import COLOURS, DIRECTIONS
from vidiff.diffusion.schedules import sampling_times
from vidiff.eval.shapes_metric import FOREGROUND, score_clip
from vidiff.pipeline import VideoPipeline

from _results import append_results


def last_step_near_zero(num_steps):
    """The usual grid with one more denoising step at t = 0.02 before t = 0."""
    ts = sampling_times(num_steps)
    return torch.cat([ts[:-1], torch.tensor([0.02, 0.0], dtype=ts.dtype)])


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else None
    pipe = VideoPipeline.from_pretrained(model)
    asked = [(list(COLOURS)[i % 7], "square", list(DIRECTIONS)[i % 8]) for i in range(12)]
    prompts = [canonical(*a) for a in asked]
    lines = [f"model: {model or 'default'}; 12 square prompts, guidance {pipe.sample_defaults.guidance}"]
    for name, sampler, steps, times in [("dpmpp_2m 20", "dpmpp_2m", 20, None),
                                        ("dpmpp_2m 20 + t=0.02", "dpmpp_2m", 20, last_step_near_zero(20)),
                                        ("ddim 20", "ddim", 20, None), ("ddpm 20", "ddpm", 20, None),
                                        ("ddpm 40", "ddpm", 40, None)]:
        videos = pipe(prompts, num_inference_steps=steps, sampler=sampler, timesteps=times,
                      generator=torch.Generator().manual_seed(0))
        scores = [score_clip(v, *a) for v, a in zip(videos, asked)]
        background = np.mean([v.max(-1)[v.max(-1) <= FOREGROUND].std() for v in videos])
        lines.append(f"{name:22s} squares {sum(s.shape for s in scores):2d}/12  steady {sum(s.steady for s in scores):2d}/12  "
                     f"everything {sum(s.all for s in scores):2d}/12  background std {background:.1f}")
        print(lines[-1], flush=True)
    append_results("squares.txt", lines)


if __name__ == "__main__":
    main()
