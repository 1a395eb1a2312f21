"""Time as channels: a clip's frames stacked into one image for a few 2-D convolutions.

A moving object is at p in frame 0 and at p + f v in frame f: the displacement grows
with the frame offset. Attention at one position across frames can only hold a pixel
still, and a 3x3x3 kernel moves it by at most one cell per layer, so neither can carry
frame 0's object to frame 8 in one step. Stacking the frames in channels (MCVD, Voleti
et al. 2022) gives every pair of frames its own 2-D kernel: the weights from frame 0's
channels to frame f's learn a shift of f v, for every f at once. Measured on the shapes
world (benchmarks/results/motion_experiments.md), a (2+1)-D U-Net given the first 8 frames
of a clip could not continue its path.

Each frame is squeezed to a few channels, the (up to `max_frames`) frames are stacked,
two conditioned residual blocks and cross-attention to the prompt mix them at this level's
resolution, and a zero-initialised projection adds each frame's share back. Clips shorter
than `max_frames` fill the first slots (the rest stay zero); one frame (an image) skips the
layer, so image weights stay image weights and a trained model gains it unchanged.
"""

import torch.nn.functional as F
from torch import nn

from .attention import CrossAttention
from .layers import ResBlock, group_norm


class FrameStack(nn.Module):
    def __init__(self, channels, max_frames, emb_dim, text_dim, head_dim=32, per_frame=8, width=128):
        super().__init__()
        self.max_frames, self.per_frame = max_frames, per_frame
        self.norm = group_norm(channels)
        self.squeeze = nn.Conv2d(channels, per_frame, 1)
        self.block1 = ResBlock(per_frame * max_frames, width, emb_dim)
        self.cross = CrossAttention(width, text_dim, head_dim)
        self.block2 = ResBlock(width, width, emb_dim)
        self.out = nn.Conv2d(width, channels * max_frames, 1)
        nn.init.zeros_(self.out.weight)   # the layer starts as the identity
        nn.init.zeros_(self.out.bias)

    def forward(self, x, emb, text, text_mask):
        """x: (B, C, F, H, W); emb: (B, E), the clip's condition."""
        B, C, Fr, H, W = x.shape
        if Fr == 1:
            return x
        if Fr > self.max_frames:
            raise ValueError(f"this model makes at most {self.max_frames} frames at once, got {Fr}")
        h = self.squeeze(F.silu(self.norm(x.transpose(1, 2).reshape(B * Fr, C, H, W))))   # (B F, c, H, W)
        h = F.pad(h.reshape(B, Fr * self.per_frame, H, W), (0, 0, 0, 0, 0, (self.max_frames - Fr) * self.per_frame))
        h = self.block1(h, emb)                                                           # (B, width, H, W)
        h = self.cross(h[:, :, None], text, text_mask)[:, :, 0]
        h = self.block2(h, emb)
        y = self.out(h).view(B, self.max_frames, C, H, W)[:, :Fr]                        # (B, F, C, H, W)
        return x + y.transpose(1, 2)
