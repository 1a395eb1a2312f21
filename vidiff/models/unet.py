"""A (2+1)-D video U-Net: convolutions and attention within frames, attention across frames.

Why a U-Net and not a video DiT: on a 2-core CPU the work per denoising step must
be small. Measured here at matched parameters (benchmarks/model_choice.py,
figures in README), a 4x4-patch video DiT does all its work at one resolution
and trains and samples several times slower than this U-Net, which does its
per-pixel work with cheap convolutions at H/2 and puts attention where tokens
are few (H/4 and below).

Time is modelled separately from space (Ho et al. 2022): temporal self-attention
with 1-D RoPE at every level, so frame offsets are explicit and the same weights
run on a single image (F = 1), where the temporal layers are skipped. Where tokens
are fewest (`joint_levels`, e.g. 4x4 and 2x2 per frame) full space-time attention
is added as well: with factorised attention alone, objects looked right but
jumped between frames, and at 256 tokens per clip the joint layer is cheap.
With `frame_index`, every block's FiLM also gets the frame's own index (a
zero-initialised sinusoidal embedding). RoPE tells attention how far apart two
frames are, but the values it averages carry no offset, so "frame f is f * v
further along than frame 0" could not be written down; with the index in every
frame's features it can.
With `conv3d_levels`, those levels' stages also get a residual 3x3x3 convolution
(zero-initialised): a kernel that sees a pixel's neighbours in the frames before and
after can follow an object along its path, where attention at one position across
frames can only hold it still (benchmarks/results/motion_experiments.md).
With `stack_levels`, those levels also stack the clip's frames in channels for two 2-D
convolutions (framestack.py), so frame 0 relates to frame f by a kernel of its own.
With `time_levels` (Lumiere's space-time U-Net, Bar-Tal et al. 2024), the downsampling after
those levels halves the frames too, and the way up doubles them again (layers.TimeDownsample /
TimeUpsample): at the coarse levels a few frames stand for the whole clip, so the path of an
object is laid out there at once and refined on the way up, instead of being made frame by frame.
Clips must then have a multiple of 2 ** len(time_levels) frames (the pipeline pads and crops);
one frame (an image) skips the halving, so images still train the same weights.
With `refine`, a small full-resolution head (layers.PixelRefine) corrects the pixels the patched
U-Net writes, so an edge can move by one pixel, not only by a patch.
Text enters twice: the pooled embedding joins the time embedding in every
block's FiLM, and cross-attention reads the token states.

Known frames (`frame_conditioning`, VDM-style masked-frame training): the clean
frames a user gives and a per-frame mask enter through a second, zero-initialised
stem whose output is added to the first, so one model does text-to-video,
image-to-video, continuation and interpolation, and an unconditioned model grows
into a conditioned one without changing what it computes.
With `frame_adapter`, the given frames also pass through an encoder of their own (adapter.py) whose
zero-initialised outputs join every level on the way down, and which is off for clips with none.
With `self_condition` (Chen et al. 2022, "Analog Bits", sec. 3.3), a third zero-initialised stem
reads the model's own x0 guess from the sampler's last step, so each step refines the clip
it already drew instead of guessing it afresh from x_t; training shows that guess (made by
the same network, without gradient) in half of the clips and zeros in the rest.

Shapes: x (B, C, F, H, W); t (B,); text (B, T, D_text); text_mask (B, T); pooled (B, D_text).
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from .adapter import FrameAdapter
from .attention import CrossAttention, SpaceTimeAttention, SpatialAttention, TemporalAttention
from .framestack import FrameStack
from .layers import (Downsample, PixelRefine, ResBlock, SpaceTimeConv, TimeDownsample, TimeUpsample, Upsample,
                     batch_to_frames, frame_embedding, frames_to_batch, group_norm, timestep_embedding)


@dataclass
class UNetConfig:
    in_channels: int = 3
    patch: int = 2                                   # pixel-unshuffle factor of the stem
    channels: list = field(default_factory=lambda: [64, 128, 192])  # width per level
    attention_levels: list = field(default_factory=lambda: [1, 2])  # spatial + cross attention here
    joint_levels: list = field(default_factory=list)  # also full space-time attention here (the
                                                      # deepest listed level adds it to the mid block)
    emb_dim: int = 256                               # width of the time + pooled-text embedding
    text_dim: int = 384                              # width of the text encoder's states
    head_dim: int = 32
    temporal: bool = True                            # False: an image model, no layers across frames
    conv3d_levels: list = field(default_factory=list)  # a residual 3x3x3 convolution in these levels' stages
    frame_index: bool = False                        # add each frame's index to its FiLM condition
    frame_conditioning: bool = False                 # known frames + their mask enter the stem (i2v, extend, ...)
    frame_adapter: bool = False                      # and a 3-D encoder of them feeds every level (adapter.py)
    self_condition: bool = False                     # the last step's x0 guess enters the stem (self-conditioning)
    stack_levels: list = field(default_factory=list)  # frames stacked in channels here too (framestack.py)
    max_frames: int = 16                             # the frame slots of those layers
    time_levels: list = field(default_factory=list)  # the downsampling after these levels halves the frames too
    refine: int = 0                                  # > 0: width of a full-resolution head (layers.PixelRefine;
                                                     # patch > 1 only, channels[0] a multiple of patch^2)

    @property
    def frame_multiple(self):
        """Clips of more than one frame must have a multiple of this many: one halving per time level."""
        return 2 ** len(self.time_levels)


class Stage(nn.Module):
    """One U-Net stage: ResBlock, (optionally) a 3-D convolution, spatial and cross attention, then
    temporal attention."""

    def __init__(self, c_in, c_out, cfg: UNetConfig, attention: bool, joint: bool = False, conv3d: bool = False,
                 stack: bool = False):
        super().__init__()
        self.res = ResBlock(c_in, c_out, cfg.emb_dim)
        self.conv3d = SpaceTimeConv(c_out) if conv3d and cfg.temporal else None
        self.spatial = SpatialAttention(c_out, cfg.head_dim) if attention else None
        self.cross = CrossAttention(c_out, cfg.text_dim, cfg.head_dim) if attention else None
        self.temporal = TemporalAttention(c_out, cfg.head_dim) if cfg.temporal else None
        self.joint = SpaceTimeAttention(c_out, cfg.head_dim) if joint and cfg.temporal else None
        self.stack = FrameStack(c_out, cfg.max_frames, cfg.emb_dim, cfg.text_dim, cfg.head_dim) \
            if stack and cfg.temporal else None

    def forward(self, x, emb, text, text_mask):
        """emb: (B F, E), one condition per frame."""
        x = batch_to_frames(self.res(frames_to_batch(x), emb), x.shape[2])
        if self.conv3d is not None:
            x = self.conv3d(x)
        if self.spatial is not None:
            x = self.cross(self.spatial(x), text, text_mask)
        if self.temporal is not None:
            x = self.temporal(x)
        if self.joint is not None:
            x = self.joint(x)
        if self.stack is not None:
            x = self.stack(x, emb.view(x.shape[0], x.shape[2], -1).mean(1), text, text_mask)
        return x


class VideoUNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch, p = cfg.channels, cfg.patch
        self.time_mlp = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU(),
                                      nn.Linear(cfg.emb_dim, cfg.emb_dim))
        self.text_mlp = nn.Sequential(nn.Linear(cfg.text_dim, cfg.emb_dim), nn.SiLU(),
                                      nn.Linear(cfg.emb_dim, cfg.emb_dim))
        if cfg.frame_index:
            self.frame_proj = nn.Linear(cfg.emb_dim, cfg.emb_dim)
            nn.init.zeros_(self.frame_proj.weight)   # a warm-started model starts as the same function
            nn.init.zeros_(self.frame_proj.bias)
        self.stem = nn.Conv2d(cfg.in_channels * p * p, ch[0], 3, padding=1)
        if cfg.frame_conditioning:
            self.frame_stem = nn.Conv2d((cfg.in_channels + 1) * p * p, ch[0], 3, padding=1)
            nn.init.zeros_(self.frame_stem.weight)
            nn.init.zeros_(self.frame_stem.bias)
        if cfg.frame_adapter and not cfg.frame_conditioning:
            raise ValueError("model.frame_adapter needs model.frame_conditioning")
        self.frame_adapter = FrameAdapter((cfg.in_channels + 1) * p * p, ch, cfg.time_levels) \
            if cfg.frame_adapter else None
        if cfg.self_condition:
            self.self_cond_stem = nn.Conv2d(cfg.in_channels * p * p, ch[0], 3, padding=1)
            nn.init.zeros_(self.self_cond_stem.weight)
            nn.init.zeros_(self.self_cond_stem.bias)
        levels = lambda i: (i in cfg.attention_levels, i in cfg.joint_levels, i in cfg.conv3d_levels,
                            i in cfg.stack_levels)
        self.down = nn.ModuleList(Stage(ch[i], ch[i], cfg, *levels(i)) for i in range(len(ch)))
        self.downsample = nn.ModuleList(Downsample(ch[i], ch[i + 1]) for i in range(len(ch) - 1))
        self.mid = Stage(ch[-1], ch[-1], cfg, True, *levels(len(ch) - 1)[1:])
        self.up = nn.ModuleList(Stage(2 * ch[i], ch[i], cfg, *levels(i)) for i in range(len(ch)))
        self.upsample = nn.ModuleList(Upsample(ch[i + 1], ch[i]) for i in range(len(ch) - 1))
        if any(not 0 <= i < len(ch) - 1 for i in cfg.time_levels) or (cfg.time_levels and not cfg.temporal):
            raise ValueError(f"time_levels must name levels 0..{len(ch) - 2} of a temporal model, got {cfg.time_levels}")
        self.time_down = nn.ModuleDict({str(i): TimeDownsample(ch[i + 1]) for i in cfg.time_levels})
        self.time_up = nn.ModuleDict({str(i): TimeUpsample(ch[i + 1]) for i in cfg.time_levels})
        self.out_norm = group_norm(ch[0])
        self.out = nn.Conv2d(ch[0], cfg.in_channels * p * p, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if cfg.refine and (p == 1 or ch[0] % (p * p)):
            raise ValueError(f"model.refine needs patch > 1 and channels[0] a multiple of patch^2, got patch {p}, "
                             f"channels[0] {ch[0]}")
        self.refine = PixelRefine(cfg.in_channels, ch[0] // (p * p), cfg.refine, cfg.emb_dim) if cfg.refine else None

    grad_checkpointing = False   # training switch: recompute each stage in backward instead of storing it

    def _run(self, stage, *args):
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(stage, *args, use_reentrant=False)
        return stage(*args)

    @property
    def size_multiple(self):
        """Height and width must divide by this: the stem's patch, then one halving per level."""
        return self.cfg.patch * 2 ** (len(self.cfg.channels) - 1)

    def forward(self, x, t, text, text_mask, pooled, frames=None, frame_mask=None, self_cond=None):
        """frames: (B, C, F, H, W) clean known frames (ignored where frame_mask is 0); frame_mask: (B, F);
        self_cond: (B, C, F, H, W) the model's own last x0 guess (zeros: none yet)."""
        B, C, Fr, H, W = x.shape
        p, levels = self.cfg.patch, len(self.cfg.channels)
        if H % self.size_multiple or W % self.size_multiple:
            raise ValueError(f"height and width must be multiples of {self.size_multiple}, got {H}x{W}")
        if Fr > 1 and Fr % self.cfg.frame_multiple:
            raise ValueError(f"frames must be 1 or a multiple of {self.cfg.frame_multiple}, got {Fr}")
        emb = self.time_mlp(timestep_embedding(t, self.cfg.emb_dim)) + self.text_mlp(pooled)  # (B, E)
        if self.cfg.frame_index:
            index = self.frame_proj(frame_embedding(Fr, self.cfg.emb_dim).to(x))             # (F, E)
            emb = (emb[:, None] + index[None]).flatten(0, 1)                                 # (B F, E)
        else:
            emb = emb.repeat_interleave(Fr, 0)                                               # (B F, E)
        xb = frames_to_batch(x)                                         # (B F, C, H, W)
        adds = None                                                     # the adapter's feature per level
        h = self.stem(F.pixel_unshuffle(xb, p))                         # (B F, ch0, H/p, W/p)
        if self.cfg.frame_conditioning:
            m = torch.zeros(B, Fr, device=x.device) if frame_mask is None else frame_mask.to(x)
            m = m[:, None, :, None, None].expand(B, 1, Fr, H, W)
            known = torch.zeros_like(x) if frames is None else frames.to(x) * m
            given = F.pixel_unshuffle(frames_to_batch(torch.cat([known, m], 1)), p)   # (B F, (C+1) p p, ., .)
            h = h + self.frame_stem(given)
            on = m.flatten(1).amax(1) > 0                               # (B,) clips with a frame given
            # Sampling from text alone skips the adapter (it would add zeros); training runs it on
            # every batch, so each of its weights gets a gradient (DDP expects one).
            if self.frame_adapter is not None and (self.training or on.any()):
                adds = self.frame_adapter(batch_to_frames(given, Fr), on)
        elif frame_mask is not None and frame_mask.any():
            raise ValueError("this model was trained without frame conditioning")
        if self.cfg.self_condition:
            guess = torch.zeros_like(x) if self_cond is None else self_cond.to(x)
            h = h + self.self_cond_stem(F.pixel_unshuffle(frames_to_batch(guess), p))
        elif self_cond is not None:
            raise ValueError("this model was trained without self-conditioning")
        h = batch_to_frames(h, Fr)                                      # (B, ch0, F, H/p, W/p)
        skips, counts = [], [Fr]                                        # counts: frames at each level
        run = self._run
        for i, stage in enumerate(self.down):
            if adds is not None:
                h = h + adds[i]
            h = run(stage, h, per_frame(emb, B, h.shape[2]), text, text_mask)
            skips.append(h)
            if i < levels - 1:
                h = batch_to_frames(self.downsample[i](frames_to_batch(h)), h.shape[2])
                if str(i) in self.time_down:
                    h = self.time_down[str(i)](h)                       # (B, ch, F/2, ., .)
                counts.append(h.shape[2])
        h = run(self.mid, h, per_frame(emb, B, h.shape[2]), text, text_mask)
        for i in reversed(range(levels)):
            if i < levels - 1:
                if str(i) in self.time_up:
                    h = self.time_up[str(i)](h, counts[i])              # (B, ch, F_i, ., .)
                h = batch_to_frames(self.upsample[i](frames_to_batch(h)), counts[i])
            h = run(self.up[i], torch.cat([h, skips[i]], 1), per_frame(emb, B, counts[i]), text, text_mask)
        h = frames_to_batch(h)
        out = self.out(F.silu(self.out_norm(h)))                        # (B F, C p p, H/p, W/p)
        if p == 1:
            return batch_to_frames(out, Fr)
        out = F.pixel_shuffle(out, p)                                   # (B F, C, H, W)
        if self.refine is not None:
            out = self.refine(xb, out, F.pixel_shuffle(h, p), emb)
        return batch_to_frames(out, Fr)


def per_frame(emb, batch, frames):
    """The condition (B F, E) of a level with `frames` frames: each coarse frame gets the mean of
    the frames it stands for."""
    return emb.view(batch, frames, -1, emb.shape[-1]).mean(2).flatten(0, 1)   # (B frames, E)
