"""Training time densities p(t)."""

from typing import Literal

import torch

TimeSampling = Literal["uniform", "logit_normal"]


def sample_t(batch_size, kind: TimeSampling = "uniform", mean=0.0, std=1.0, generator=None):
    """Uniform t, or logit-normal t = sigmoid(N(mean, std^2)) (Esser et al. 2024, sec. 3.1)."""
    if kind == "uniform":
        # Stratified: one draw per equal slice lowers the variance of the batch loss.
        u = (torch.arange(batch_size) + torch.rand(batch_size, generator=generator)) / batch_size
        return u[torch.randperm(batch_size, generator=generator)].clamp(1e-4, 1 - 1e-4)
    if kind == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(batch_size, generator=generator))
    raise ValueError(f"time sampling must be uniform or logit_normal, got {kind!r}")
