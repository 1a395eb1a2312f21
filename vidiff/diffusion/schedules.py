"""Noise schedules: x_t = alpha(t) x0 + sigma(t) eps for continuous t in [0, 1].

t = 0 is data, t = 1 is (close to) pure noise. Every schedule is described by
alpha(t) and sigma(t); samplers and the loss only ever see those two numbers.
"""

import math
from dataclasses import dataclass
from typing import Literal

import torch

LOGSNR_CLAMP = 20.0   # keeps alpha, sigma > 0 at the ends of the cosine schedule


def cosine_logsnr(t, shift=1.0):
    """Cosine schedule (Nichol & Dhariwal 2021) as log-SNR, shifted by -2 log(shift).

    The shift (Hoogeboom et al. 2023, "simple diffusion") adds noise at every t:
    a 16-frame clip averages noise over many redundant pixels, like a larger image.
    """
    t = t.double()
    logsnr = -2 * torch.log(torch.tan(math.pi * t / 2).clamp_min(1e-20))
    return logsnr.clamp(-LOGSNR_CLAMP, LOGSNR_CLAMP) - 2 * math.log(shift)


def linear_logsnr(t, beta_0=0.1, beta_1=20.0):
    """DDPM's linear betas in continuous time (Song et al. 2021, VP-SDE)."""
    t = t.double()
    log_alpha_bar = -(beta_0 * t + 0.5 * (beta_1 - beta_0) * t**2)
    log_one_minus = torch.log((-torch.expm1(log_alpha_bar)).clamp_min(1e-20))
    return (log_alpha_bar - log_one_minus).clamp(-LOGSNR_CLAMP, LOGSNR_CLAMP)


@dataclass(frozen=True)
class Schedule:
    kind: Literal["cosine", "linear", "flow"] = "cosine"
    shift: float = 1.0   # >1 puts more weight on high noise (cosine, linear: SNR / shift^2; flow: SD3 time shift)

    def __post_init__(self):
        if self.kind not in ("cosine", "linear", "flow"):
            raise ValueError(f"schedule kind must be cosine, linear or flow, got {self.kind!r}")
        if self.shift <= 0:
            raise ValueError("schedule shift must be positive")

    def alpha_sigma(self, t):
        """(alpha, sigma) in float64 for a tensor of times t."""
        t = torch.as_tensor(t, dtype=torch.float64)
        if self.kind == "flow":
            # Rectified flow: straight paths x_t = (1 - t) x0 + t eps (Liu et al. 2022),
            # with the time shift of Esser et al. 2024 (SD3), eq. 23.
            t = self.shift * t / (1 + (self.shift - 1) * t)
            return 1 - t, t
        logsnr = cosine_logsnr(t, self.shift) if self.kind == "cosine" else linear_logsnr(t) - 2 * math.log(self.shift)
        return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()

    def logsnr(self, t):
        alpha, sigma = self.alpha_sigma(t)
        return 2 * (torch.log(alpha) - torch.log(sigma))

    def add_noise(self, x0, noise, t):
        """Sample the forward process q(x_t | x0); t has shape (B,)."""
        alpha, sigma = self.alpha_sigma(t)
        return append_dims(alpha, x0.ndim).to(x0) * x0 + append_dims(sigma, x0.ndim).to(x0) * noise


def append_dims(v, ndim):
    """(B,) -> (B, 1, ..., 1) so it broadcasts against an ndim tensor."""
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def sampling_times(num_steps, t_max=1.0, power=1.0):
    """Times from t_max down to 0, ending in exactly 0 (num_steps + 1 values): t_i = t_max (i / N)^power.

    power = 1 spaces them evenly; power < 1 packs them towards high noise, where a clip's layout and
    motion are decided (the shipped model: benchmarks/few_steps.py).
    """
    return t_max * torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64) ** power
