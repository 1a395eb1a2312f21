"""Stacked-frame layers (time as channels): identity at the start, one layer from frame 0 to
frame f, images and short clips, and a layer that learns to move a picture by f pixels."""

import pytest
import torch

from vidiff.models.framestack import FrameStack
from vidiff.models.layers import SpaceTimeConv
from vidiff.models.unet import UNetConfig, VideoUNet

TINY = UNetConfig(channels=[16, 32], attention_levels=[1], emb_dim=32, text_dim=8, head_dim=8)


def inputs(B=2, F=4, H=16, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(B, 3, F, H, H, generator=g), t=torch.rand(B, generator=g),
                text=torch.randn(B, T, 8, generator=g), text_mask=torch.ones(B, T),
                pooled=torch.randn(B, 8, generator=g))


def layer_inputs(B=1, C=16, F=4, H=8):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(B, C, F, H, H, generator=g), torch.randn(B, 32, generator=g),
            torch.randn(B, 5, 8, generator=g), torch.ones(B, 5))


def randomised(layer, seed=1):
    g = torch.Generator().manual_seed(seed)
    for p in layer.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.2
    return layer.eval()


def test_added_stack_layers_start_as_identity(tmp_path):
    from safetensors.torch import save_file

    from vidiff.training.checkpoint import load_weights

    torch.manual_seed(0)
    net = VideoUNet(TINY)
    for p in net.parameters():
        p.data += 0.05 * torch.randn_like(p)
    path = tmp_path / "model.safetensors"
    save_file(net.state_dict(), str(path))
    grown = VideoUNet(UNetConfig(**{**vars(TINY), "stack_levels": [0, 1], "max_frames": 6}))
    new = load_weights(grown, path, allow_missing=True)
    assert new and all(".stack." in name for name in new)
    x = inputs(F=5)
    torch.testing.assert_close(grown.eval()(**x), net.eval()(**x))


def test_one_layer_reaches_the_last_frame_where_a_3d_kernel_cannot():
    x, emb, text, mask = layer_inputs(F=4)
    x2 = x.clone()
    x2[:, :, 0, 2, 2] += 1.0                              # one pixel of frame 0
    stack = randomised(FrameStack(16, 4, 32, 8, head_dim=8))
    with torch.no_grad():
        assert (stack(x2, emb, text, mask) - stack(x, emb, text, mask))[:, :, 3, 5, 5].abs().max() > 1e-4
    conv = randomised(SpaceTimeConv(16))
    conv.norm = torch.nn.Identity()                       # its statistics span every frame; the kernel does not
    with torch.no_grad():
        assert torch.equal(conv(x2)[:, :, 3], conv(x)[:, :, 3])   # one frame per layer at most


def test_images_skip_and_short_clips_fill_the_first_slots():
    stack = randomised(FrameStack(16, 6, 32, 8, head_dim=8))
    x, emb, text, mask = layer_inputs(F=4)
    with torch.no_grad():
        assert torch.equal(stack(x[:, :, :1], emb, text, mask), x[:, :, :1])
        assert stack(x, emb, text, mask).shape == x.shape
        with pytest.raises(ValueError, match="at most 6 frames"):
            stack(torch.randn(1, 16, 7, 8, 8), emb, text, mask)


def test_learns_to_move_frame_zero_by_f_pixels():
    """Target: frame f is frame 0 shifted right by f pixels (the other frames are given blank).
    The gap between frames grows with f, which is what a moving object asks of a video model."""
    torch.manual_seed(0)
    stack = FrameStack(4, 4, 32, 8, head_dim=8, per_frame=4, width=64)
    emb, text, mask = torch.zeros(16, 32), torch.zeros(16, 1, 8), torch.ones(16, 1)
    opt = torch.optim.Adam(stack.parameters(), lr=3e-3)

    def batch():
        first = torch.randn(16, 4, 1, 8, 8)
        target = torch.cat([torch.nn.functional.pad(first, (f, 0))[..., :8] for f in range(4)], 2)
        return torch.cat([first, torch.zeros(16, 4, 3, 8, 8)], 2), target

    def loss():
        x, target = batch()
        return (stack(x, emb, text, mask) - target)[:, :, 1:].pow(2).mean()

    with torch.no_grad():
        start = loss().item()
    for _ in range(300):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        end = loss().item()
    assert end < 0.1 * start, (start, end)


def test_more_frames_than_slots_is_refused_in_one_line(text_encoder, tmp_path):
    from vidiff.config import ConfigError, DiffusionConfig, SampleConfig, load_config
    from vidiff.errors import VidiffError
    from vidiff.pipeline import VideoPipeline
    from vidiff.training.loop import train

    cfg = UNetConfig(**{**vars(TINY), "text_dim": 384, "stack_levels": [1], "max_frames": 4})
    pipe = VideoPipeline(VideoUNet(cfg), DiffusionConfig(), SampleConfig(), frames=4, size=16,
                         text_encoder=text_encoder)
    with pytest.raises(VidiffError, match="at most 4 frames"):
        pipe("a red circle moving right", num_frames=6, num_inference_steps=1)
    run = load_config(None, [f"out_dir={tmp_path}", "model.stack_levels=[1]", "model.max_frames=4",
                             "data.frames=6"])
    with pytest.raises(ConfigError, match="model.max_frames"):
        train(run)
