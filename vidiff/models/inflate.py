"""Image model -> video model by inflation (Ho et al. 2022; Blattmann et al. 2023).

An image model (`temporal = False`, trained on one-frame clips) has every layer a video
model needs except those across frames. Inflation adds them (temporal attention, and
optionally space-time attention, 3-D convolutions and stacked-frame layers) as residual branches whose output
starts at zero, so before fine-tuning the video model computes exactly the image model on
every frame, and video training starts from what images taught instead of from noise.
"""

from dataclasses import replace

import torch

from .attention import SpaceTimeAttention, TemporalAttention
from .framestack import FrameStack
from .layers import SpaceTimeConv
from .unet import UNetConfig, VideoUNet

TEMPORAL_LAYERS = (TemporalAttention, SpaceTimeAttention, SpaceTimeConv, FrameStack)
# Options that only add zero-initialised layers across frames (or per-frame inputs that start at zero).
INFLATABLE = ("conv3d_levels", "joint_levels", "frame_index", "frame_conditioning", "stack_levels", "max_frames")


def temporal_prefixes(net):
    return [name + "." for name, m in net.named_modules() if isinstance(m, TEMPORAL_LAYERS)]


def temporal_outputs(net):
    """The residual output layer of every layer across frames."""
    out = {SpaceTimeConv: lambda m: m.conv, FrameStack: lambda m: m.out}
    return [out.get(type(m), lambda m: m.attn.out)(m) for m in net.modules() if isinstance(m, TEMPORAL_LAYERS)]


def zero_temporal_outputs(net):
    """Make every layer across frames start as the identity: zero its residual output."""
    for out in temporal_outputs(net):
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.zeros_(out.bias)


@torch.no_grad()
def inflate(image_net: VideoUNet, **changes) -> VideoUNet:
    """A video U-Net that equals `image_net` frame by frame; `changes` may add the INFLATABLE options."""
    bad = sorted(set(changes) - set(INFLATABLE))
    if bad:
        raise ValueError(f"inflation can only add {', '.join(INFLATABLE)}; got {', '.join(bad)}")
    if any(p.any() for out in temporal_outputs(image_net) for p in out.parameters()):
        raise ValueError("this model already has trained layers across frames; it is a video model")
    cfg: UNetConfig = replace(image_net.cfg, temporal=True, **changes)
    net = VideoUNet(cfg)
    missing, unexpected = net.load_state_dict(image_net.state_dict(), strict=False)
    if unexpected:
        raise ValueError(f"the image model has weights the video model lacks, e.g. {unexpected[0]}")
    new_ok = tuple(temporal_prefixes(net)) + ("frame_proj.", "frame_stem.")
    stray = [k for k in missing if not k.startswith(new_ok)]
    if stray:
        raise ValueError(f"the image model lacks weights that are not temporal, e.g. {stray[0]}")
    zero_temporal_outputs(net)
    return net
