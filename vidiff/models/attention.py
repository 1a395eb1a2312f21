"""Factorised space-time attention and cross-attention to text.

Spatial attention mixes positions within each frame, temporal attention mixes
frames at each position (Ho et al. 2022, "Video Diffusion Models"):
    spatial:  'b c f h w -> (b f) (h w) c'
    temporal: 'b c f h w -> (b h w) f c'
Full space-time attention over F*H*W tokens costs (FHW)^2; the factorised pair
costs FHW (HW + F), and two of them still connect every token to every other.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope, rope_1d, rope_2d


class SelfAttention(nn.Module):
    """Multi-head self-attention over (N, L, C) with optional RoPE angles (L, head_dim/2)."""

    def __init__(self, dim, head_dim=32, zero_out=False):
        super().__init__()
        self.heads = max(dim // head_dim, 1)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        if zero_out:   # a residual layer that starts as the identity
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x, angles=None):
        N, L, C = x.shape
        q, k, v = self.qkv(self.norm(x)).view(N, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if angles is not None:                                    # q, k: (N, nh, L, hd)
            q, k = apply_rope(q, angles), apply_rope(k, angles)
        y = F.scaled_dot_product_attention(q, k, v)               # (N, nh, L, hd)
        return self.out(y.transpose(1, 2).reshape(N, L, C))


class SpatialAttention(nn.Module):
    """Attention within each frame, positions encoded by 2-D RoPE."""

    def __init__(self, dim, head_dim=32):
        super().__init__()
        self.attn = SelfAttention(dim, head_dim)
        self.head_dim = dim // self.attn.heads

    def forward(self, x):
        B, C, Fr, H, W = x.shape
        tokens = x.permute(0, 2, 3, 4, 1).reshape(B * Fr, H * W, C)   # (B F) (H W) C
        y = self.attn(tokens, rope_2d(H, W, self.head_dim, x.device))
        return x + y.view(B, Fr, H, W, C).permute(0, 4, 1, 2, 3)


class TemporalAttention(nn.Module):
    """Attention across frames at each position, frame order encoded by 1-D RoPE.

    The output projection starts at zero, so a freshly added temporal layer leaves
    an image model's output unchanged; with one frame the layer is skipped.
    """

    def __init__(self, dim, head_dim=32):
        super().__init__()
        self.attn = SelfAttention(dim, head_dim, zero_out=True)
        self.head_dim = dim // self.attn.heads

    def forward(self, x):
        B, C, Fr, H, W = x.shape
        if Fr == 1:
            return x
        tokens = x.permute(0, 3, 4, 2, 1).reshape(B * H * W, Fr, C)   # (B H W) F C
        y = self.attn(tokens, rope_1d(Fr, self.head_dim, x.device))
        return x + y.view(B, H, W, Fr, C).permute(0, 4, 3, 1, 2)


class SpaceTimeAttention(nn.Module):
    """Full attention over all F*H*W tokens: 'b c f h w -> b (f h w) c'.

    Used only where tokens are few (the coarsest levels), so every frame sees the
    object's place in every other frame directly. RoPE: half of each head's
    channels rotate with the frame index, half with (row, column). The output
    projection starts at zero, like the temporal layers.
    """

    def __init__(self, dim, head_dim=32):
        super().__init__()
        self.attn = SelfAttention(dim, head_dim, zero_out=True)
        self.head_dim = dim // self.attn.heads

    def forward(self, x):
        B, C, Fr, H, W = x.shape
        if Fr == 1:          # a picture: the temporal layers are skipped, so image weights stay image weights
            return x
        half = self.head_dim // 2
        angles = torch.cat([rope_1d(Fr, half, x.device).repeat_interleave(H * W, 0),
                            rope_2d(H, W, half, x.device).repeat(Fr, 1)], -1)   # (F H W, hd/2)
        tokens = x.permute(0, 2, 3, 4, 1).reshape(B, Fr * H * W, C)            # B (F H W) C
        y = self.attn(tokens, angles)
        return x + y.view(B, Fr, H, W, C).permute(0, 4, 1, 2, 3)


class CrossAttention(nn.Module):
    """Every video token attends to the prompt's token states; padding is masked out."""

    def __init__(self, dim, text_dim, head_dim=32):
        super().__init__()
        self.heads = max(dim // head_dim, 1)
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(text_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, text, text_mask):
        B, C, Fr, H, W = x.shape
        L, T = Fr * H * W, text.shape[1]
        tokens = self.norm(x.permute(0, 2, 3, 4, 1).reshape(B, L, C))              # B (F H W) C
        q = self.q(tokens).view(B, L, self.heads, -1).transpose(1, 2)              # (B, nh, L, hd)
        k, v = self.kv(text).view(B, T, 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (B, nh, T, hd)
        mask = text_mask[:, None, None, :].bool()                                  # (B, 1, 1, T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = self.out(y.transpose(1, 2).reshape(B, L, C))
        return x + y.view(B, Fr, H, W, C).permute(0, 4, 1, 2, 3)
