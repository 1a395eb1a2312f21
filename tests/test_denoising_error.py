"""The denoising error: fixed clips, times and noise; lower for a model that learned."""

import pytest
import torch

from vidiff.config import load_config
from vidiff.data.sources import video_source
from vidiff.eval.denoising_error import denoising_error
from vidiff.models.unet import VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.loop import train

TINY = ["model.channels=[16, 32]", "model.attention_levels=[1]", "model.emb_dim=32", "model.head_dim=8",
        "data.frames=4", "data.size=16", "optim.batch_size=8", "optim.warmup_steps=5", "optim.lr=2e-3",
        "sample_every=0", "log_every=5", "diffusion.min_snr_gamma=0", "save_every=1000"]


def test_learning_and_memorising_both_show(tmp_path, text_encoder):
    # One training clip, seen 800 times: learned in general (black background, a solid object) and by heart.
    cfg = load_config("configs/shapes-s.toml", TINY + [f"out_dir={tmp_path}", "optim.steps=100", "data.num_clips=1"])
    torch.manual_seed(cfg.seed)                                  # the initial weights train() starts from
    untrained = VideoPipeline.from_train_config(VideoUNet(cfg.model), cfg, text_encoder)
    train(cfg, progress=False)
    trained = VideoPipeline.from_pretrained(tmp_path / "model", text_encoder=text_encoder)
    before, after = denoising_error(untrained, clips=24), denoising_error(trained, clips=24)
    assert list(after["by_t"]) == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert after["error"] == pytest.approx(sum(after["by_t"].values()) / 5)
    assert after["error"] < 0.7 * before["error"], (before, after)
    seen = denoising_error(trained, video_source(cfg.data), clips=8)
    assert seen["error"] < 0.8 * after["error"], (seen, after)


def test_the_same_clips_and_noise_whatever_the_batch_size(text_encoder):
    cfg = load_config("configs/shapes-s.toml", TINY)
    torch.manual_seed(0)
    pipe = VideoPipeline.from_train_config(VideoUNet(cfg.model), cfg, text_encoder)
    a = denoising_error(pipe, clips=6, batch_size=6)
    b = denoising_error(pipe, clips=6, batch_size=4)
    assert a["by_t"] == pytest.approx(b["by_t"], rel=1e-5)
    assert denoising_error(pipe, clips=6, seed=1)["error"] != pytest.approx(a["error"], rel=1e-6)
