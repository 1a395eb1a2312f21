"""Self-conditioning: the stem starts as the model without it, training shows the network its
own guess, sampling feeds each guidance branch its own last guess, and a tiny model trains and samples."""

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from vidiff.diffusion.denoiser import Denoiser
from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.diffusion.samplers import sample_ddpm
from vidiff.diffusion.schedules import Schedule, sampling_times
from vidiff.diffusion.self_condition import SelfCondition
from vidiff.models.unet import UNetConfig, VideoUNet
from vidiff.pipeline import VideoPipeline
from vidiff.training.loop import train

from test_training import tiny_config

TINY_NET = dict(channels=[16, 32], attention_levels=[1], emb_dim=32, head_dim=8)
TEXT = dict(text=torch.randn(2, 3, 384), text_mask=torch.ones(2, 3), pooled=torch.randn(2, 384))


def test_the_self_condition_stem_starts_as_the_model_without_it():
    torch.manual_seed(0)
    plain = VideoUNet(UNetConfig(**TINY_NET))
    sc = VideoUNet(UNetConfig(**TINY_NET, self_condition=True))
    for w in plain.parameters():                    # zero-initialised output layers would hide everything
        torch.nn.init.normal_(w, std=0.2)
    assert set(sc.state_dict()) - set(plain.state_dict()) == {"self_cond_stem.weight", "self_cond_stem.bias"}
    sc.load_state_dict(plain.state_dict(), strict=False)
    x, t, guess = torch.randn(2, 3, 4, 16, 16), torch.rand(2), torch.randn(2, 3, 4, 16, 16)
    torch.testing.assert_close(sc(x, t, **TEXT, self_cond=guess), plain(x, t, **TEXT))
    torch.nn.init.normal_(sc.self_cond_stem.weight)
    assert not torch.allclose(sc(x, t, **TEXT, self_cond=guess), sc(x, t, **TEXT))
    # No guess is the zero guess: what training shows the clips it gives none.
    torch.testing.assert_close(sc(x, t, **TEXT), sc(x, t, **TEXT, self_cond=torch.zeros_like(x)))


class Recorder(nn.Module):
    """An x0 'network' that depends on its self-conditioning input and records every one it gets."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.seen = []

    def forward(self, x, t, self_cond):
        self.seen.append(self_cond.detach().clone())
        return self.w * x + 0.25 * self_cond


def test_training_shows_the_flagged_clips_the_networks_own_guess_without_gradient():
    net = Recorder()
    denoiser = Denoiser(net, Schedule(), "x0", min_snr_gamma=None)
    x0, noise, t = torch.randn(4, 3, 2, 4, 4), torch.randn(4, 3, 2, 4, 4), torch.tensor([0.2, 0.4, 0.6, 0.8])
    flagged = torch.tensor([True, False, True, False])
    loss = denoiser.loss(x0, t, noise, self_cond=flagged)
    first, second = net.seen
    assert first.shape[0] == 2 and not first.any()                     # the guess, made from zeros, for 2 clips
    alpha, sigma = Schedule().alpha_sigma(t)
    x_t = alpha.float().view(-1, 1, 1, 1, 1) * x0 + sigma.float().view(-1, 1, 1, 1, 1) * noise
    torch.testing.assert_close(second[flagged], 0.5 * x_t[flagged])     # the network's own guess
    assert not second[~flagged].any()                                   # the others get zeros
    loss.mean().backward()
    # The gradient reaches w through the graded pass only (the guess is a constant):
    # d/dw mean((w x_t + 0.25 guess - x0)^2).
    out = 0.5 * x_t + 0.25 * second
    expected = (2 * (out - x0) * x_t).flatten(1).mean(1).mean()
    torch.testing.assert_close(net.w.grad, expected)


def test_sampling_feeds_each_guidance_branch_its_own_last_guess():
    seen, outputs = [], []

    def network(x, t, self_cond, prompt):
        seen.append(self_cond.clone())
        outputs.append(0.9 * x + 0.1 * prompt + 0.01 * self_cond)    # a guess the prompt moves
        return outputs[-1]

    cond, uncond = {"prompt": torch.ones(2, 1, 1, 1, 1)}, {"prompt": torch.zeros(2, 1, 1, 1, 1)}
    # Guidance above t = 0.5 only: 4 steps at t = 1, 0.75, 0.5, 0.25, the last two unguided.
    denoise = cfg_denoiser(SelfCondition(network), cond, uncond, scale=3.0, min_t=0.5)
    sample_ddpm(denoise, torch.randn(2, 3, 2, 4, 4), sampling_times(4), Schedule(),
                generator=torch.Generator().manual_seed(0))
    assert [s.shape[0] for s in seen] == [4, 4, 2, 2] and not seen[0].any()
    torch.testing.assert_close(seen[1], outputs[0])                     # each branch its own, unguided
    assert not torch.allclose(seen[1][:2], seen[1][2:])
    torch.testing.assert_close(seen[2], outputs[1][2:])                 # unguided: the prompt's branch goes on
    torch.testing.assert_close(seen[3], outputs[2])


def test_a_tiny_self_conditioned_model_trains_and_samples(tmp_path):
    cfg = tiny_config(tmp_path, "model.self_condition=true", "optim.steps=6", "save_every=6")
    losses = train(cfg, progress=False)
    assert np.isfinite(losses).all()
    stem = load_file(str(tmp_path / "model/model.safetensors"))["self_cond_stem.weight"]
    assert stem.abs().sum() > 0                                         # it moved off its zero start
    pipe = VideoPipeline.from_pretrained(tmp_path / "model")
    assert pipe.net.cfg.self_condition
    a = pipe("a red circle moving right", num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    b = pipe("a red circle moving right", num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (1, 4, 16, 16, 3) and np.array_equal(a, b)
