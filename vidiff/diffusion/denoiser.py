"""The parameterisation wrapper: the only place that knows eps / v / x0 / flow.

The network predicts some target; `Denoiser` turns that into D(x_t, t) = x0_hat
for the samplers and owns the training loss. Conversions follow
Salimans & Ho 2022 (v = alpha eps - sigma x0) and Liu et al. 2022 (u = eps - x0).
"""

from typing import Literal

import torch
from torch import nn

from .schedules import Schedule, append_dims

Objective = Literal["eps", "v", "x0", "flow"]
OBJECTIVES = ("eps", "v", "x0", "flow")


# Conversions between predictions, given x_t = alpha x0 + sigma eps.
def x0_from_eps(x, eps, alpha, sigma):
    return (x - sigma * eps) / alpha


def eps_from_x0(x, x0, alpha, sigma):
    return (x - alpha * x0) / sigma


def v_from_x0_eps(x0, eps, alpha, sigma):
    return alpha * eps - sigma * x0


def x0_from_v(x, v, alpha, sigma):
    return alpha * x - sigma * v


def x0_from_flow(x, u, sigma):
    # On straight paths alpha = 1 - sigma, so x - sigma (eps - x0) = x0.
    return x - sigma * u


def min_snr_weight(snr, sigma, gamma, objective):
    """Min-SNR-gamma (Hang et al. 2023): weight min(SNR, gamma) on the x0 error, written for
    the target's own MSE (x0 error = sigma/alpha eps error = sigma v error = sigma u error)."""
    capped = snr.clamp(max=gamma)
    return {"eps": capped / snr, "v": capped * sigma**2, "x0": capped,
            "flow": capped * sigma**2}[objective]


class Denoiser(nn.Module):
    """D(x_t, t, cond) -> x0_hat around a network that predicts `objective`."""

    def __init__(self, net: nn.Module, schedule: Schedule, objective: Objective = "v",
                 min_snr_gamma: float | None = 5.0):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if (objective == "flow") != (schedule.kind == "flow"):
            raise ValueError("the flow objective goes with the flow schedule and only with it")
        self.net, self.schedule, self.objective, self.min_snr_gamma = net, schedule, objective, min_snr_gamma

    def _coefficients(self, t, ndim):
        alpha, sigma = self.schedule.alpha_sigma(t)
        return append_dims(alpha, ndim).float(), append_dims(sigma, ndim).float()

    def forward(self, x, t, **cond):
        """x0 prediction in fp32; the network may run in lower precision inside."""
        alpha, sigma = self._coefficients(t, x.ndim)
        out = self.net(x, t.float(), **cond).float()
        if self.objective == "eps":
            return x0_from_eps(x, out, alpha, sigma)
        if self.objective == "v":
            return x0_from_v(x, out, alpha, sigma)
        if self.objective == "flow":
            return x0_from_flow(x, out, sigma)
        return out

    def loss(self, x0, t, noise=None, self_cond=None, frame_weight=None, **cond):
        """Per-sample weighted MSE between the network output and its target, shape (B,).

        frame_weight: (B, F), each frame's share of its clip's loss, e.g. 1 - frame_mask to count
        only the frames the model must make, not the given ones it can copy (Harvey et al. 2022,
        FDM); a clip's loss is the weighted mean over frames. None: every frame alike.

        self_cond: (B,) bool, the clips that get the network's own x0 guess (made from the same
        x_t without gradient) as input, as at sampling; the others get zeros (Chen et al. 2022,
        Alg. 1). None: a network without self-conditioning.
        """
        noise = torch.randn_like(x0) if noise is None else noise
        alpha, sigma = self._coefficients(t, x0.ndim)
        x_t = alpha * x0 + sigma * noise
        target = {"eps": noise, "x0": x0, "v": v_from_x0_eps(x0, noise, alpha, sigma),
                  "flow": noise - x0}[self.objective]
        if self_cond is not None:
            guess, i = torch.zeros_like(x0), self_cond.to(x0.device).nonzero()[:, 0]
            if len(i):
                with torch.no_grad():
                    guess[i] = self.forward(x_t[i], t[i], **{k: v[i] for k, v in cond.items()}, self_cond=guess[i])
            cond = {**cond, "self_cond": guess}
        out = self.net(x_t, t.float(), **cond).float()
        if frame_weight is None:
            mse = (out - target).pow(2).flatten(1).mean(1)
        else:
            per_frame = (out - target).pow(2).mean((1, 3, 4))           # (B, F)
            w = frame_weight.to(per_frame)
            mse = (per_frame * w).sum(1) / w.sum(1).clamp(min=1e-8)
        if self.min_snr_gamma is None:
            return mse
        snr = (alpha / sigma).pow(2).flatten()
        return mse * min_snr_weight(snr, sigma.flatten(), self.min_snr_gamma, self.objective)
