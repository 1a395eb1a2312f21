"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser wrapper."""

import torch

from .schedules import append_dims


def cfg_denoiser(denoiser, cond, uncond, scale, min_t=0.0):
    """D_w(x) = D(x | empty) + w (D(x | prompt) - D(x | empty)), both in one batched call.

    `cond` and `uncond` are dicts of keyword tensors for the denoiser, batch-first.
    At times t <= min_t the prompt alone is used (guidance in a limited interval,
    Kynkaanniemi et al. 2024): near the end the layout is settled, and extrapolating
    away from the unconditional prediction only pushes edges off the data.
    """
    if scale == 1.0:
        return lambda x, t: denoiser(x, t, **cond)
    both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}

    def denoise(x, t):
        late = t <= min_t
        if late.all():
            return denoiser(x, t, **cond)
        x0_uncond, x0_cond = denoiser(torch.cat([x, x]), torch.cat([t, t]), **both).chunk(2)
        guided = x0_uncond + scale * (x0_cond - x0_uncond)
        return torch.where(append_dims(late, x.ndim), x0_cond, guided)

    return denoise
