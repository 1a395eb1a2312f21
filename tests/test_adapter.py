"""The frame adapter: zero at the start, off without given frames, trained alone on frozen weights."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vidiff.config import ConfigError
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.loop import train

from test_training import tiny_config

NET = dict(channels=[16, 32, 32], attention_levels=[1], emb_dim=32, head_dim=8, frame_conditioning=True,
           time_levels=[0, 1])


def inputs(frames=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, t = torch.randn(2, 3, frames, 16, 16, generator=g), torch.rand(2, generator=g)
    text = dict(text=torch.randn(2, 3, 384, generator=g), text_mask=torch.ones(2, 3),
                pooled=torch.randn(2, 384, generator=g))
    return x, t, text, torch.randn(2, 3, frames, 16, 16, generator=g)


def pair():
    """A frame-conditioned model with random weights, and the same model with an adapter."""
    torch.manual_seed(0)
    plain = VideoUNet(UNetConfig(**NET))
    for w in plain.parameters():                    # zero-initialised output layers would hide everything
        torch.nn.init.normal_(w, std=0.2)
    adapted = VideoUNet(UNetConfig(**NET, frame_adapter=True))
    missing, _ = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("frame_adapter.") for k in missing)
    return plain, adapted


def test_a_new_adapter_leaves_the_model_as_it_was():
    plain, adapted = pair()
    x, t, text, frames = inputs()
    mask = torch.tensor([[1.0, 1, 0, 0], [1, 0, 0, 0]])
    with torch.no_grad():
        torch.testing.assert_close(adapted(x, t, **text, frames=frames, frame_mask=mask),
                                   plain(x, t, **text, frames=frames, frame_mask=mask), rtol=0, atol=0)


def test_the_adapter_is_exactly_off_where_no_frame_is_given_and_on_where_one_is():
    plain, adapted = pair()
    for w in adapted.frame_adapter.parameters():
        torch.nn.init.normal_(w, std=0.2)
    x, t, text, frames = inputs()
    mask = torch.tensor([[0.0, 0, 0, 0], [1, 1, 0, 0]])                 # clip 0 from text alone
    with torch.no_grad():
        a = adapted(x, t, **text, frames=frames, frame_mask=mask)
        b = plain(x, t, **text, frames=frames, frame_mask=mask)
        assert torch.equal(a[0], b[0])                                  # bit for bit: text-only is untouched
        assert (a[1] - b[1]).abs().max() > 1e-3
        # The second frame is given, so the adapter reads it; a hidden frame changes nothing.
        changed = frames.clone()
        changed[1, :, 3] += 1
        torch.testing.assert_close(adapted(x, t, **text, frames=changed, frame_mask=mask), a)
        changed[1, :, 1] += 1
        assert not torch.allclose(adapted(x, t, **text, frames=changed, frame_mask=mask), a)
        # One frame (a picture) skips the halving of frames, as the U-Net does.
        x1, t1, text1, frames1 = inputs(frames=1)
        assert adapted(x1, t1, **text1, frames=frames1, frame_mask=torch.ones(2, 1)).shape == x1.shape


def test_an_adapter_needs_frame_conditioning():
    with pytest.raises(ValueError, match="frame_conditioning"):
        VideoUNet(UNetConfig(**{**NET, "frame_conditioning": False}, frame_adapter=True))


def test_training_the_adapter_alone_leaves_every_other_weight_as_it_was(tmp_path):
    net = ["model.frame_conditioning=true", "model.channels=[16, 32]", "model.time_levels=[0]"]
    train(tiny_config(tmp_path / "base", *net, "data.known_frames=0.5", "optim.steps=3", "save_every=3"),
          progress=False)
    base = tmp_path / "base/model"
    losses = train(tiny_config(tmp_path / "adapter", *net, "model.frame_adapter=true", "data.known_frames=1.0",
                               "optim.trainable=[\"frame_adapter\"]", "optim.steps=4", "save_every=4",
                               f"init_from={base / 'model.safetensors'}"), progress=False)
    assert len(losses) == 4 and all(np.isfinite(losses))
    before = load_file(str(base / "model.safetensors"))
    after = load_file(str(tmp_path / "adapter/model/model.safetensors"))
    assert set(after) - set(before) and all(k.startswith("frame_adapter.") for k in set(after) - set(before))
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert any(after[k].abs().sum() > 0 for k in after if k.startswith("frame_adapter.outs."))
    # So a clip from text alone is the same clip, pixel for pixel.
    prompt, g = "a red circle moving right", lambda: torch.Generator().manual_seed(0)
    a = VideoPipeline.from_pretrained(base)(prompt, num_inference_steps=3, generator=g())
    b = VideoPipeline.from_pretrained(tmp_path / "adapter/model")(prompt, num_inference_steps=3, generator=g())
    assert np.array_equal(a, b)


def test_trainable_names_that_match_nothing_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="names no parameter"):
        train(tiny_config(tmp_path, "optim.trainable=[\"adapterr\"]", "optim.steps=1"), progress=False)
    assert not any(tmp_path.iterdir())


def test_a_run_that_trains_the_adapter_alone_resumes_bit_exactly(tmp_path):
    net = ["model.frame_conditioning=true", "model.channels=[16, 32]", "model.time_levels=[0]",
           "model.frame_adapter=true", "data.known_frames=1.0", "optim.trainable=[\"frame_adapter\"]",
           "optim.steps=4", "save_every=2", "log_every=2"]
    train(tiny_config(tmp_path / "a", *net), progress=False)
    train(tiny_config(tmp_path / "b", *net), max_steps=2, progress=False)
    train(tiny_config(tmp_path / "b", *net), resume=True, progress=False)
    for name in ("model", "ema", "optim"):
        a = load_file(str(tmp_path / "a/checkpoints/step_0000004" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "b/checkpoints/step_0000004" / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    optim = load_file(str(tmp_path / "a/checkpoints/step_0000004/optim.safetensors"))
    assert optim and all("frame_adapter" in k for k in optim)         # the frozen weights carry no state
