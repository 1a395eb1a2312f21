"""Denoising error: how well a model denoises clips, above all clips it never trained on.

Right-on-everything (evaluate.py) only moves once a model draws whole clips right; the
denoising error on fresh clips moves long before, and it is where a model that memorises a
small training set shows it: its error on the training clips falls while the error on fresh
ones stops falling or rises. The error is measured in x0 space, E ||D(x_t, t) - x0||^2 (EDM's
denoising error), so models trained on any objective compare on one scale, and every model
sees the same clips, times and noise. A self-conditioned network is scored on the zero guess, as
a sampler's first step runs it.
"""

import torch

from ..data.shapes import ShapesWorld
from ..diffusion.noise import video_noise

SEED = 424_242                      # a clip stream that no training config draws from
TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)   # diffusion times, low noise to high


def heldout_clips(pipe, seed=SEED):
    """Fresh shapes-world clips of the model's frames and size, its held-out combinations left out."""
    return ShapesWorld(seed, pipe.frames, pipe.size, pipe.size, exclude=pipe.holdout)


@torch.no_grad()
def denoising_error(pipe, source=None, clips=256, batch_size=32, seed=SEED, times=TIMES):
    """Mean x0 error per diffusion time on the first `clips` clips of `source` (anything with
    `batch(start, size) -> (x (B, C, F, H, W), captions)`; default: `heldout_clips(pipe)`), each
    clip noised at every time with noise shared across frames as the model was trained.
    `seed` picks the fresh clips and the noise. Returns {"error": mean over times, "by_t": {t: mean}}.
    Text only: no frames are given."""
    source = source if source is not None else heldout_clips(pipe, seed)
    totals = torch.zeros(len(times), dtype=torch.float64)
    for start in range(0, clips, batch_size):
        x0, captions = source.batch(start, min(batch_size, clips - start))      # (B, C, F, H, W)
        cond = pipe.text(captions)
        for i, t in enumerate(times):
            # Each clip's noise is its own (seeded by clip and time): batch size changes nothing.
            noise = torch.cat([video_noise((1, *x0.shape[1:]), pipe.diffusion.shared_noise,
                                           generator=torch.Generator().manual_seed(seed + 7919 * (start + k) + i))
                               for k in range(len(x0))])
            tt = torch.full((len(x0),), float(t))
            x_t = pipe.schedule.add_noise(x0, noise, tt)
            err = (pipe.denoiser(x_t, tt, **cond) - x0).pow(2).flatten(1).mean(1)   # (B,)
            totals[i] += err.double().sum()
    by_t = {float(t): float(total / clips) for t, total in zip(times, totals)}
    return {"error": sum(by_t.values()) / len(by_t), "by_t": by_t}
