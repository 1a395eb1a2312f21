"""Building blocks shared by the video networks: time embedding, FiLM residual blocks, resampling."""

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal features of diffusion time t in [0, 1] (scaled to 0..1000 as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = 1000 * t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], -1)                   # (B, dim)


def frame_embedding(num_frames, dim, max_period=100.0):
    """Sinusoidal features of the frame index 0..F-1, shape (F, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half)
    args = torch.arange(num_frames).float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], -1)


def frames_to_batch(x):
    """(B, C, F, H, W) -> (B F, C, H, W): spatial layers treat every frame as an image."""
    B, C, Fr, H, W = x.shape
    return x.transpose(1, 2).reshape(B * Fr, C, H, W)


def batch_to_frames(x, num_frames):
    """(B F, C, H, W) -> (B, C, F, H, W)."""
    BF, C, H, W = x.shape
    return x.view(BF // num_frames, num_frames, C, H, W).transpose(1, 2)


def group_norm(channels):
    return nn.GroupNorm(min(32, channels // 4), channels)


class ResBlock(nn.Module):
    """Two 3x3 convolutions within each frame, modulated by the condition (FiLM:
    h = norm(h) * (1 + scale) + shift, Perez et al. 2018; Dhariwal & Nichol 2021)."""

    def __init__(self, c_in, c_out, emb_dim):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, emb):
        """x: (B F, C, H, W); emb: (B F, E), the clip's condition plus each frame's index."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class SpaceTimeConv(nn.Module):
    """A residual 3x3x3 convolution over (F, H, W): x + conv3d(silu(norm(x))).

    Per-frame convolutions and attention at one position across frames can only
    smooth a pixel over time, which favours a still object. A 3-D kernel sees a
    pixel's neighbours in the frames before and after, so stacked layers follow an
    object that moves up to one cell per frame (two at 32 px, so every level of
    the shapes world). Zero-initialised output: adding the layer to a trained
    model (or inflating an image model) leaves its output unchanged; with one
    frame it is skipped, like the temporal attention.
    """

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.conv = nn.Conv3d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        """x: (B, C, F, H, W)."""
        if x.shape[2] == 1:
            return x
        return x + self.conv(F.silu(self.norm(x)))


class PixelRefine(nn.Module):
    """A full-resolution residual head after the U-Net's pixel shuffle.

    The U-Net works at H/patch and writes each patch's pixels from one feature vector, so an
    edge at an odd pixel (a square's side) is placed by a 3x3 kernel at half resolution, which
    could leave edges ragged. This head sees the noisy input, the U-Net's prediction and its last
    features at full resolution and adds a zero-initialised correction: a trained model
    warm-started with it computes the same function. Tried on the default model
    (benchmarks/results/motion_experiments.md, stage 9): no gain there, so the patches were not
    what made its squares ragged.
    """

    def __init__(self, channels, features, width, emb_dim):
        super().__init__()
        self.conv_in = nn.Conv2d(2 * channels + features, width, 3, padding=1)
        self.res = ResBlock(width, width, emb_dim)
        self.norm, self.out = group_norm(width), nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, pred, features, emb):
        """x, pred: (B F, C, H, W); features: (B F, features, H, W); emb: (B F, E)."""
        h = self.res(self.conv_in(torch.cat([x, pred, features], 1)), emb)
        return pred + self.out(F.silu(self.norm(h)))


class Downsample(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TimeDownsample(nn.Module):
    """Halves the frames (Lumiere's space-time U-Net, Bar-Tal et al. 2024): a strided convolution
    across frames, added to the mean of each pair so the layer starts as plain averaging.

    Deeper levels then see the whole clip in a few frames, so one 3x3x3 kernel or one attention
    step there spans the clip, and the path of an object is planned there, coarse to fine,
    instead of frame by frame. With one frame (an image) it is skipped.
    """

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        """x: (B, C, F, H, W) -> (B, C, F/2, H, W)."""
        B, C, Fr, H, W = x.shape
        if Fr == 1:
            return x
        pairs = x.view(B, C, Fr // 2, 2, H, W).mean(3)
        return pairs + self.conv(x)


class TimeUpsample(nn.Module):
    """Doubles the frames: each frame repeated, plus a learned, zero-initialised correction that
    differs between the two copies (a sub-frame shuffle, like pixel_shuffle in time), so the
    two frames made from one can place a moving object apart."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv3d(channels, 2 * channels, (3, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x, frames):
        """x: (B, C, F, H, W) -> (B, C, frames, H, W), frames = 2F, or F where the way down skipped."""
        B, C, Fr, H, W = x.shape
        if frames == Fr:
            return x
        d = self.conv(x).view(B, C, 2, Fr, H, W).transpose(2, 3).reshape(B, C, 2 * Fr, H, W)
        return x.repeat_interleave(2, dim=2) + d
