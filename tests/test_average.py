import pytest
import torch

from vidiff.cli import main
from vidiff.config import DiffusionConfig, SampleConfig
from vidiff.errors import VidiffError
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.average import average_models

ARCH = dict(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8)
KEY = "stem.weight"   # randomly initialised, so it differs between seeds (the output layer starts at zero)


def save_model(path, seed, text_encoder, steps=3, **arch):
    torch.manual_seed(seed)
    net = VideoUNet(UNetConfig(**{**ARCH, **arch}))
    VideoPipeline(net, DiffusionConfig(), SampleConfig(steps=steps), 4, 16, text_encoder).save_pretrained(path)
    return net.state_dict()


def test_the_average_is_the_weighted_mean_of_the_weights(tmp_path, text_encoder):
    a = save_model(tmp_path / "a", 0, text_encoder, steps=7)
    b = save_model(tmp_path / "b", 1, text_encoder)
    assert not torch.equal(a[KEY], b[KEY])
    avg = average_models([tmp_path / "a", tmp_path / "b"], weights=[3, 1]).net.state_dict()
    for k in a:
        torch.testing.assert_close(avg[k], 0.75 * a[k] + 0.25 * b[k])
    # Equal weights by default; settings other than the weights are the first model's.
    pipe = average_models([tmp_path / "b", tmp_path / "a"])
    torch.testing.assert_close(pipe.net.state_dict()[KEY], (a[KEY] + b[KEY]) / 2)
    assert pipe.sample_defaults.steps == 3


def test_averaging_refuses_what_does_not_average(tmp_path, text_encoder):
    save_model(tmp_path / "a", 0, text_encoder)
    save_model(tmp_path / "wide", 0, text_encoder, channels=[16, 48])
    with pytest.raises(VidiffError, match="another architecture"):
        average_models([tmp_path / "a", tmp_path / "wide"])
    with pytest.raises(VidiffError, match="at least two"):
        average_models([tmp_path / "a"])
    with pytest.raises(VidiffError, match="2 weights for 3 models"):
        average_models([tmp_path / "a"] * 3, weights=[1, 1])
    with pytest.raises(VidiffError, match="non-negative"):
        average_models([tmp_path / "a"] * 2, weights=[1, -1])


def test_average_command(tmp_path, text_encoder, capsys):
    a = save_model(tmp_path / "a", 0, text_encoder)
    b = save_model(tmp_path / "b", 1, text_encoder)
    out = tmp_path / "avg"
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out), "--dtype", "bf16"]) == 0
    avg = VideoPipeline.from_pretrained(out, text_encoder=text_encoder)
    torch.testing.assert_close(avg.net.state_dict()[KEY],
                               ((a[KEY] + b[KEY]) / 2).bfloat16().float())
    assert avg(["a red circle moving right"], num_frames=4, progress=False).shape == (1, 4, 16, 16, 3)
    # A user mistake is one line, exit 2, and the existing output stays as it was.
    before = (out / "model.safetensors").read_bytes()
    save_model(tmp_path / "wide", 0, text_encoder, channels=[16, 48])
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "wide"), "-o", str(out), "--force"]) == 2
    assert "another architecture" in capsys.readouterr().err
    assert main(["average", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
