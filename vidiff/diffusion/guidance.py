"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser wrapper."""

import torch


def cfg_denoiser(denoiser, cond, uncond, scale):
    """D_w(x) = D(x | empty) + w (D(x | prompt) - D(x | empty)), both in one batched call.

    `cond` and `uncond` are dicts of keyword tensors for the denoiser, batch-first.
    """
    if scale == 1.0:
        return lambda x, t: denoiser(x, t, **cond)
    both = {k: torch.cat([uncond[k], cond[k]]) for k in cond}

    def denoise(x, t):
        x0_uncond, x0_cond = denoiser(torch.cat([x, x]), torch.cat([t, t]), **both).chunk(2)
        return x0_uncond + scale * (x0_cond - x0_uncond)

    return denoise
