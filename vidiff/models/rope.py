"""Rotary position embeddings (Su et al. 2021): relative positions in space and time.

Attention sees positions only through q·k, so rotating q and k by angles that
grow with position makes their product depend on the offset alone: a clip
longer than any seen in training still has well-defined frame offsets.
"""

import torch


def rope_angles(positions, dim, base=10000.0):
    """(L,) integer positions -> (L, dim/2) angles."""
    freqs = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    return positions.float()[:, None] * freqs[None]


def apply_rope(x, angles):
    """Rotate channel pairs of x (..., L, D) by angles (L, D/2)."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)       # (..., L, D/2) each
    cos, sin = angles.cos(), angles.sin()
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)
    return out.to(x.dtype)


def rope_1d(length, dim, device=None):
    return rope_angles(torch.arange(length, device=device), dim)


def rope_2d(height, width, dim, device=None):
    """Axial 2-D RoPE: half the channels rotate with the row, half with the column."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device),
                            indexing="ij")
    return torch.cat([rope_angles(ys.flatten(), dim // 2), rope_angles(xs.flatten(), dim // 2)], -1)
