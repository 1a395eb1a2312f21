"""Noise for video clips: independent in every frame, or partly shared by a clip's frames.

Mixed noise (Ge et al. 2023, PYoCo): eps_f = sqrt(rho) eps_shared + sqrt(1 - rho) eps_f', still
N(0, I) in every frame, with correlation rho between any two frames of a clip. With independent
noise each frame's noise suggests its own place for the object, and a model can learn to follow
those suggestions frame by frame (objects that jump); shared noise makes the frames of a clip
break symmetry together, and the differences between frames that the network sees are mostly
signal: the motion itself. Training and sampling must use the same rho.
"""

import math

import torch


def video_noise(shape, shared=0.0, generator=None):
    """Standard normal noise of `shape` (B, C, F, H, W), a fraction `shared` of its variance common to all frames."""
    noise = torch.randn(shape, generator=generator)
    if shared > 0 and shape[2] > 1:
        common = torch.randn((*shape[:2], 1, *shape[3:]), generator=generator)   # (B, C, 1, H, W)
        noise = math.sqrt(1 - shared) * noise + math.sqrt(shared) * common
    return noise
