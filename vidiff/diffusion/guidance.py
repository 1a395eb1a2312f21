"""Classifier-free guidance (Ho & Salimans 2022) as denoiser wrappers."""

import torch

from .schedules import append_dims


def _batched(denoiser, conds, combine, min_t):
    """combine(D(x | conds[0]), D(x | conds[1]), ...) from one batched call; at times t <= min_t
    the last condition alone (guidance in a limited interval, Kynkaanniemi et al. 2024): near
    the end the layout is settled, and extrapolating away from the other predictions only
    pushes edges off the data."""
    full, n = conds[-1], len(conds)
    batched = {k: torch.cat([c[k] for c in conds]) for k in full}

    def denoise(x, t):
        late = t <= min_t
        if late.all():
            return denoiser(x, t, **full)
        x0s = denoiser(torch.cat([x] * n), torch.cat([t] * n), **batched).chunk(n)
        return torch.where(append_dims(late, x.ndim), x0s[-1], combine(*x0s))

    return denoise


def cfg_denoiser(denoiser, cond, uncond, scale, min_t=0.0):
    """D_w(x) = D(x | empty) + w (D(x | prompt) - D(x | empty)), both in one batched call.

    `cond` and `uncond` are dicts of keyword tensors for the denoiser, batch-first.
    At times t <= min_t the prompt alone is used.
    """
    if scale == 1.0:
        return lambda x, t: denoiser(x, t, **cond)
    return _batched(denoiser, [uncond, cond], lambda x0_uncond, x0_cond: x0_uncond + scale * (x0_cond - x0_uncond),
                    min_t)


def cfg_frames_denoiser(denoiser, cond, frames_only, nothing, scale, frame_scale, min_t=0.0):
    """Guidance on the given frames and on the prompt, each with its own scale (InstructPix2Pix,
    Brooks et al. 2023, eq. 3):

        D = D(x | nothing) + s_F (D(x | frames) - D(x | nothing)) + s_T (D(x | frames, prompt) - D(x | frames))

    `cond` holds prompt and frames, `frames_only` the frames with the empty prompt, `nothing`
    neither. s_F = 1 is cfg_denoiser; s_F > 1 pulls the new frames harder towards what the given
    ones imply. At t <= min_t `cond` alone is used.
    """
    def combine(x0_nothing, x0_frames, x0_cond):
        return x0_nothing + frame_scale * (x0_frames - x0_nothing) + scale * (x0_cond - x0_frames)

    return _batched(denoiser, [nothing, frames_only, cond], combine, min_t)
