"""Samplers: small pure functions over a denoiser D(x, t) -> x0_hat.

Every sampler takes the denoiser, the starting noise x, a descending tensor of
times ending in 0 and the schedule that maps t to (alpha, sigma). The math is
done in float64 scalars; only the denoiser sees the network's precision.
"""

import torch
from tqdm.auto import tqdm

from .schedules import Schedule


def _steps(ts, progress):
    return tqdm(range(len(ts) - 1), disable=not progress, desc="sampling", leave=False)


@torch.no_grad()
def sample_ddim(denoise, x, ts, schedule: Schedule, eta=0.0, generator=None, progress=False, noise=None):
    """DDIM (Song et al. 2021, eq. 12); eta = 0 is deterministic, eta = 1 is ancestral DDPM.

    eta > 1 adds more fresh noise than the posterior's, at most all of x_next's (c = sigma_next:
    x_next = alpha_next x0 + sigma_next z, the guess noised afresh as a consistency model's
    multistep sampler does). noise(shape, generator=...): the fresh noise of ancestral steps
    (default standard normal).
    """
    noise = noise or (lambda shape, generator=None: torch.randn(shape, generator=generator))
    alphas, sigmas = schedule.alpha_sigma(ts)
    for i in _steps(ts, progress):
        a, s, a_next, s_next = alphas[i], sigmas[i], alphas[i + 1], sigmas[i + 1]
        x0 = denoise(x, ts[i].expand(x.shape[0]))
        eps = (x - a * x0) / s
        # Std of the posterior q(x_next | x_t, x0), scaled by eta (DDIM eq. 16, general alpha/sigma).
        c = eta * (s_next / s) * (s**2 - (a / a_next) ** 2 * s_next**2).clamp_min(0).sqrt()
        c = c.clamp(max=s_next)                             # only reached with eta > 1
        x = a_next * x0 + (s_next**2 - c**2).clamp_min(0).sqrt() * eps
        if c > 0:
            x = x + c * noise(x.shape, generator=generator).to(x.dtype)
    return x


def sample_ddpm(denoise, x, ts, schedule, generator=None, progress=False, noise=None):
    """Ancestral sampling from the DDPM posterior (Ho et al. 2020): DDIM with eta = 1."""
    return sample_ddim(denoise, x, ts, schedule, eta=1.0, generator=generator, progress=progress, noise=noise)


@torch.no_grad()
def sample_dpmpp_2m(denoise, x, ts, schedule: Schedule, progress=False, **_):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), multistep second order in lambda = log(alpha/sigma).

    The last step, to t = 0, is first order: to sigma = 0 there is no finite step size h, and
    where the clamped log-SNR keeps sigma > 0 the step in lambda is so long that extrapolating
    through it is unstable (diffusers' `lower_order_final`).
    """
    alphas, sigmas = schedule.alpha_sigma(ts)
    lambdas = torch.log(alphas) - torch.log(sigmas)
    x0_prev, h_prev = None, None
    for i in _steps(ts, progress):
        x0 = denoise(x, ts[i].expand(x.shape[0]))
        if sigmas[i + 1] == 0:
            x = x0
            break
        h = lambdas[i + 1] - lambdas[i]
        if x0_prev is None or i == len(ts) - 2:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (sigmas[i + 1] / sigmas[i]) * x - alphas[i + 1] * torch.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(denoise, x, ts, schedule: Schedule, eta=1.0, generator=None, progress=False, noise=None):
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, sec. 5; the midpoint form of k-diffusion's
    `sample_dpmpp_2m_sde`), in lambda = log(alpha/sigma).

    Each step solves the linear part of the reverse SDE exactly, takes x0 as linear in lambda
    through the last two denoiser calls, and adds fresh noise. Without that second-order term
    and with eta = 1 a step is exactly DDPM's ancestral step; eta = 0 is DPM-Solver++(2M).
    The last step, to t = 0, is first order, as in `sample_dpmpp_2m`.
    """
    noise = noise or (lambda shape, generator=None: torch.randn(shape, generator=generator))
    alphas, sigmas = schedule.alpha_sigma(ts)
    lambdas = torch.log(alphas) - torch.log(sigmas)
    x0_prev, h_prev = None, None
    for i in _steps(ts, progress):
        x0 = denoise(x, ts[i].expand(x.shape[0]))
        if sigmas[i + 1] == 0:
            x = x0
            break
        h = lambdas[i + 1] - lambdas[i]
        gain = -torch.expm1(-(1 + eta) * h)               # 1 - e^{-(1 + eta) h}, the weight of x0
        x = (sigmas[i + 1] / sigmas[i]) * torch.exp(-eta * h) * x + alphas[i + 1] * gain * x0
        if x0_prev is not None and i < len(ts) - 2:
            r = h_prev / h
            x = x + alphas[i + 1] * gain / (2 * r) * (x0 - x0_prev)
        if eta > 0:
            x = x + sigmas[i + 1] * (-torch.expm1(-2 * eta * h)).sqrt() * noise(x.shape, generator=generator).to(x.dtype)
        x0_prev, h_prev = x0, h
    return x


def _flow_velocity(denoise, x, t, schedule):
    """dx/dt on straight paths: u = eps - x0 with eps recovered from x = (1 - s) x0 + s eps."""
    _, s = schedule.alpha_sigma(t)
    x0 = denoise(x, t.expand(x.shape[0]))
    return (x - x0) / s, x0


@torch.no_grad()
def sample_euler(denoise, x, ts, schedule: Schedule, progress=False, **_):
    """Euler on the rectified-flow ODE dx/dsigma = eps - x0 (Liu et al. 2022)."""
    _require_flow(schedule)
    _, sigmas = schedule.alpha_sigma(ts)
    for i in _steps(ts, progress):
        u, x0 = _flow_velocity(denoise, x, ts[i], schedule)
        x = x0 if sigmas[i + 1] == 0 else x + (sigmas[i + 1] - sigmas[i]) * u
    return x


@torch.no_grad()
def sample_heun(denoise, x, ts, schedule: Schedule, progress=False, **_):
    """Heun's second-order method (Karras et al. 2022, Alg. 1) on the rectified-flow ODE;
    the last step to sigma = 0 is an Euler step, as in EDM."""
    _require_flow(schedule)
    _, sigmas = schedule.alpha_sigma(ts)
    for i in _steps(ts, progress):
        u, x0 = _flow_velocity(denoise, x, ts[i], schedule)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x0
            break
        x_euler = x + dt * u
        u_next, _ = _flow_velocity(denoise, x_euler, ts[i + 1], schedule)
        x = x + dt * (u + u_next) / 2
    return x


def _require_flow(schedule):
    if schedule.kind != "flow":
        raise ValueError("euler and heun integrate the flow ODE: use them with the flow schedule")


SAMPLERS = {"ddim": sample_ddim, "ddpm": sample_ddpm, "dpmpp_2m": sample_dpmpp_2m,
            "dpmpp_2m_sde": sample_dpmpp_2m_sde,
            "euler": sample_euler, "heun": sample_heun}


def get_sampler(name):
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
