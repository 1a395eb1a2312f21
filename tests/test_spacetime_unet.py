"""The space-time U-Net (model.time_levels): frames halved on the way down, doubled on the way up."""

import numpy as np
import pytest
import torch

from vidiff.config import ConfigError
from vidiff.models.layers import TimeDownsample, TimeUpsample
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.loop import train

from test_model import inputs
from test_training import tiny_config

SPACETIME = UNetConfig(channels=[16, 32, 32], attention_levels=[1], emb_dim=32, text_dim=8, head_dim=8,
                       time_levels=[0, 1], frame_index=True)


def test_fresh_resampling_is_pair_mean_and_repeat():
    x = torch.randn(2, 4, 6, 3, 3)
    down = TimeDownsample(4)(x)
    assert down.shape == (2, 4, 3, 3, 3)
    torch.testing.assert_close(down[:, :, 1], (x[:, :, 2] + x[:, :, 3]) / 2)
    up = TimeUpsample(4)(down, 6)
    assert up.shape == x.shape and torch.equal(up[:, :, 2], up[:, :, 3])
    # Trained, the two frames made from one differ: the correction is not shared between them.
    layer = TimeUpsample(4)
    torch.nn.init.normal_(layer.conv.weight)
    up = layer(down, 6)
    assert not torch.allclose(up[:, :, 2], up[:, :, 3])
    assert torch.equal(TimeDownsample(4)(x[:, :, :1]), x[:, :, :1])      # an image passes unchanged


def test_frames_are_halved_and_restored_and_every_frame_is_seen_everywhere():
    torch.manual_seed(0)
    net = VideoUNet(SPACETIME)
    for p in net.parameters():                    # the zero-initialised layers would hide the mixing
        p.data += 0.05 * torch.randn_like(p)
    net.eval()
    for F in (1, 4, 8):
        x = inputs(F=F)
        assert net(**x).shape == x["x"].shape
    with pytest.raises(ValueError, match="multiple of 4"):
        net(**inputs(F=6))
    # Frame 0's input reaches frame 7's output through the coarse levels, where 8 frames are 2.
    x = inputs(F=8)
    x2 = {**x, "x": x["x"].clone()}
    x2["x"][:, :, 0] += 1
    assert (net(**x2)[:, :, 7] - net(**x)[:, :, 7]).abs().max() > 1e-4


def test_pipeline_pads_clips_that_do_not_divide_and_training_refuses_them(tmp_path):
    args = ("model.time_levels=[0]", "model.frame_conditioning=true", "data.known_frames=0.5", "optim.steps=2",
            "save_every=2")
    with pytest.raises(ConfigError, match="must divide by 2"):
        train(tiny_config(tmp_path / "odd", *args, "data.frames=3"), progress=False)
    train(tiny_config(tmp_path, *args), progress=False)
    pipe = VideoPipeline.from_pretrained(tmp_path / "model")
    g = torch.Generator().manual_seed(0)
    assert pipe("a red circle moving right", num_frames=3, num_inference_steps=2, generator=g).shape == \
        (1, 3, 16, 16, 3)
    given = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    video = pipe.extend(given, "a red circle moving right", 1, num_inference_steps=2, generator=g)
    assert video.shape == (1, 3, 16, 16, 3) and np.array_equal(video[0, :2], given)
    assert pipe("a red circle moving right", num_frames=9, num_inference_steps=2, generator=g).shape[1] == 9
