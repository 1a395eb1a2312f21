"""The math of the diffusion core: schedules, parameterisations, loss weights, samplers, guidance.

Samplers are checked against the exact denoiser of Gaussian data, for which E[x0 | x_t] has
a closed form, and single steps are checked against diffusers' DDIM and DPM-Solver++(2M).
"""

import math

import pytest
import torch
from torch import nn

from vidiff.diffusion.denoiser import (OBJECTIVES, Denoiser, eps_from_x0, min_snr_weight,
                                       v_from_x0_eps, x0_from_eps, x0_from_flow, x0_from_v)
from vidiff.diffusion.guidance import cfg_denoiser, cfg_frames_denoiser
from vidiff.diffusion.samplers import (SAMPLERS, get_sampler, sample_ddim, sample_ddpm,
                                       sample_dpmpp_2m, sample_dpmpp_2m_sde, sample_euler, sample_heun)
from vidiff.diffusion.schedules import Schedule, append_dims, sampling_times
from vidiff.diffusion.timesteps import sample_t

KINDS = ("cosine", "linear", "flow")
GRID = torch.linspace(0, 1, 201, dtype=torch.float64)
INTERIOR = GRID[1:-1]


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("shift", [1.0, 2.0])
@pytest.mark.parametrize("kind", KINDS)
def test_schedule_monotone(kind, shift):
    alpha, sigma = Schedule(kind, shift).alpha_sigma(GRID)
    assert alpha.dtype == sigma.dtype == torch.float64
    assert (alpha.diff() < 0).all() and (sigma.diff() > 0).all()
    assert (alpha >= 0).all() and (alpha <= 1).all() and (sigma >= 0).all() and (sigma <= 1).all()
    logsnr = Schedule(kind, shift).logsnr(INTERIOR)
    assert (logsnr.diff() < 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_schedule_endpoints(kind):
    alpha, sigma = Schedule(kind).alpha_sigma(torch.tensor([0.0, 1.0]))
    assert alpha[0] == pytest.approx(1, abs=1e-8) and sigma[0] == pytest.approx(0, abs=1e-4)
    if kind == "flow":
        assert alpha[0] == 1 and sigma[0] == 0 and alpha[1] == 0 and sigma[1] == 1
    else:
        # Clamped log-SNR: (nearly) pure noise at t = 1, but alpha, sigma stay > 0 at both ends.
        assert 0 < alpha[1] < 1e-2 and sigma[1] == pytest.approx(1, abs=1e-4)
        assert 0 < sigma[0]


def test_cosine_matches_closed_form():
    t = INTERIOR[20:-20]   # away from the log-SNR clamp
    alpha, sigma = Schedule("cosine").alpha_sigma(t)
    torch.testing.assert_close(alpha, torch.cos(math.pi * t / 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(sigma, torch.sin(math.pi * t / 2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shift", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_variance_preserving(kind, shift):
    alpha, sigma = Schedule(kind, shift).alpha_sigma(GRID)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(GRID), rtol=0, atol=1e-12)


def test_flow_paths_are_straight():
    for shift in (1.0, 3.0):
        alpha, sigma = Schedule("flow", shift).alpha_sigma(GRID)
        torch.testing.assert_close(alpha + sigma, torch.ones_like(GRID), rtol=0, atol=1e-15)
    # shift = 1 is the identity time map; shift s maps t to s t / (1 + (s - 1) t) (SD3 eq. 23).
    torch.testing.assert_close(Schedule("flow").alpha_sigma(GRID)[1], GRID)
    torch.testing.assert_close(Schedule("flow", 3.0).alpha_sigma(GRID)[1], 3 * GRID / (1 + 2 * GRID))


@pytest.mark.parametrize("kind", ["cosine", "flow"])
def test_shift_lowers_logsnr(kind):
    base = Schedule(kind, 1.0).logsnr(INTERIOR)
    for shift in (1.5, 2.0, 4.0):
        assert (Schedule(kind, shift).logsnr(INTERIOR) < base).all()
    assert (Schedule(kind, 0.5).logsnr(INTERIOR) > base).all()
    if kind == "cosine":   # the cosine shift is exactly SNR / shift^2
        torch.testing.assert_close(Schedule(kind, 2.0).logsnr(INTERIOR), base - 2 * math.log(2.0))


def test_schedule_validation():
    with pytest.raises(ValueError):
        Schedule("sqrt")
    with pytest.raises(ValueError):
        Schedule("cosine", 0.0)


@pytest.mark.parametrize("n", [1, 7, 50])
def test_sampling_times(n):
    ts = sampling_times(n)
    assert ts.dtype == torch.float64 and ts.shape == (n + 1,)
    assert ts[0] == 1.0 and ts[-1] == 0.0
    assert (ts.diff() < 0).all()
    torch.testing.assert_close(ts.diff(), torch.full((n,), -1.0 / n, dtype=torch.float64))
    ts = sampling_times(n, t_max=0.8)
    assert ts[0] == 0.8 and ts[-1] == 0.0 and (ts.diff() < 0).all()
    ts = sampling_times(n, power=0.7)
    assert ts[0] == 1.0 and ts[-1] == 0.0 and (ts.diff() < 0).all()
    torch.testing.assert_close(ts, (torch.arange(n, -1, -1, dtype=torch.float64) / n) ** 0.7)
    if n > 1:                                   # power < 1: shorter steps at high noise than at low
        assert -ts.diff()[0] < -ts.diff()[-1]


# --------------------------------------------------------------------------- forward process


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_forward_marginals(kind, t):
    schedule, n = Schedule(kind, 2.0), 40_000
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, 0.25, 2.0], dtype=torch.float64).expand(n, 3)
    noise = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x_t = schedule.add_noise(x0, noise, torch.full((n,), t))
    alpha, sigma = (v.item() for v in schedule.alpha_sigma(torch.tensor(t)))
    # 5 standard errors of the sample mean and of the sample std
    torch.testing.assert_close(x_t.mean(0), alpha * x0[0], rtol=0, atol=5 * sigma / math.sqrt(n))
    torch.testing.assert_close(x_t.std(0), torch.full((3,), sigma, dtype=torch.float64),
                               rtol=0, atol=5 * sigma / math.sqrt(2 * n))


def test_add_noise_per_sample_times():
    schedule = Schedule("cosine")
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 2, 3, 4, 4, generator=g), torch.randn(2, 2, 3, 4, 4, generator=g)
    t = torch.tensor([0.2, 0.7])
    x_t = schedule.add_noise(x0, noise, t)
    assert x_t.dtype == x0.dtype and x_t.shape == x0.shape
    for b in range(2):
        alpha, sigma = schedule.alpha_sigma(t[b])
        torch.testing.assert_close(x_t[b], (alpha * x0[b] + sigma * noise[b]).float())


def test_append_dims():
    v = torch.arange(3.0)
    assert append_dims(v, 5).shape == (3, 1, 1, 1, 1)
    assert append_dims(v, 1).shape == (3,)


# --------------------------------------------------------------------------- conversions


def _coefficients(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.98 + 0.01
    alpha, sigma = Schedule("cosine").alpha_sigma(t)
    x0 = torch.randn(n, generator=g, dtype=torch.float64)
    eps = torch.randn(n, generator=g, dtype=torch.float64)
    return x0, eps, alpha, sigma


def test_eps_x0_round_trip():
    x0, eps, alpha, sigma = _coefficients()
    x = alpha * x0 + sigma * eps
    torch.testing.assert_close(x0_from_eps(x, eps, alpha, sigma), x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(eps_from_x0(x, x0, alpha, sigma), eps, rtol=0, atol=1e-10)
    # also without variance preservation
    alpha2 = alpha * 1.7
    x = alpha2 * x0 + sigma * eps
    torch.testing.assert_close(x0_from_eps(x, eps, alpha2, sigma), x0, rtol=0, atol=1e-10)
    torch.testing.assert_close(eps_from_x0(x, x0, alpha2, sigma), eps, rtol=0, atol=1e-10)


def test_v_x0_round_trip():
    x0, eps, alpha, sigma = _coefficients()
    x = alpha * x0 + sigma * eps
    v = v_from_x0_eps(x0, eps, alpha, sigma)
    torch.testing.assert_close(v, alpha * eps - sigma * x0, rtol=0, atol=0)
    torch.testing.assert_close(x0_from_v(x, v, alpha, sigma), x0, rtol=0, atol=1e-10)
    # and v carries eps as well: eps = sigma x + alpha v
    torch.testing.assert_close(sigma * x + alpha * v, eps, rtol=0, atol=1e-10)


def test_flow_round_trip():
    x0, eps, _, _ = _coefficients()
    _, sigma = Schedule("flow", 3.0).alpha_sigma(torch.linspace(0, 1, x0.shape[0], dtype=torch.float64))
    x = (1 - sigma) * x0 + sigma * eps
    torch.testing.assert_close(x0_from_flow(x, eps - x0, sigma), x0, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- Denoiser


class StubNet(nn.Module):
    """Returns whatever is stashed in `out`, and records what it was called with."""

    def __init__(self):
        super().__init__()
        self.out, self.calls = None, []

    def forward(self, x, t, **cond):
        self.calls.append((x, t, cond))
        return self.out


PAIRS = [("eps", "cosine"), ("v", "cosine"), ("x0", "cosine"), ("eps", "linear"), ("v", "linear"),
         ("flow", "flow")]


def _target(objective, x0, noise, alpha, sigma):
    return {"eps": noise, "x0": x0, "v": v_from_x0_eps(x0, noise, alpha, sigma),
            "flow": noise - x0}[objective]


def _problem(schedule, seed=0, b=6):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(b, 2, 3, 4, 4, generator=g)
    noise = torch.randn(b, 2, 3, 4, 4, generator=g)
    t = torch.linspace(0.05, 0.95, b, dtype=torch.float64)   # SNR from ~160 down to ~0.006
    alpha, sigma = (append_dims(v, x0.ndim) for v in schedule.alpha_sigma(t))
    x_t = (alpha * x0 + sigma * noise).float()
    return x0, noise, t, alpha, sigma, x_t


def test_objectives_listed():
    assert set(OBJECTIVES) == {o for o, _ in PAIRS}


@pytest.mark.parametrize("objective,kind", PAIRS)
def test_denoiser_forward_recovers_x0(objective, kind):
    schedule, net = Schedule(kind, 2.0), StubNet()
    x0, noise, t, alpha, sigma, x_t = _problem(schedule)
    net.out = _target(objective, x0.double(), noise.double(), alpha, sigma).float()
    text = torch.randn(6, 5, 8)
    x0_hat = Denoiser(net, schedule, objective)(x_t, t, text=text)
    assert x0_hat.dtype == torch.float32 and x0_hat.shape == x0.shape
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-4)
    (x_in, t_in, cond), = net.calls
    assert x_in is x_t and t_in.dtype == torch.float32 and cond["text"] is text
    torch.testing.assert_close(t_in, t.float())


@pytest.mark.parametrize("gamma", [None, 5.0])
@pytest.mark.parametrize("objective,kind", PAIRS)
def test_denoiser_loss(objective, kind, gamma):
    schedule, net = Schedule(kind, 2.0), StubNet()
    x0, noise, t, alpha, sigma, x_t = _problem(schedule)
    denoiser = Denoiser(net, schedule, objective, min_snr_gamma=gamma)
    net.out = _target(objective, x0.double(), noise.double(), alpha, sigma).float()
    loss = denoiser.loss(x0, t, noise)
    assert loss.shape == (6,)
    torch.testing.assert_close(loss, torch.zeros(6), rtol=0, atol=1e-10)
    # the network saw x_t = alpha x0 + sigma noise
    torch.testing.assert_close(net.calls[-1][0], x_t, rtol=0, atol=1e-5)

    # A wrong network: positive loss; unweighted it is the plain MSE on the target.
    g = torch.Generator().manual_seed(3)
    delta = 0.1 * torch.randn(x0.shape, generator=g)
    net.out = net.out + delta
    loss = denoiser.loss(x0, t, noise)
    assert (loss > 0).all()
    if gamma is None:
        torch.testing.assert_close(loss, delta.pow(2).flatten(1).mean(1), rtol=1e-5, atol=0)


def test_denoiser_loss_frame_weight_counts_only_weighted_frames():
    schedule, net = Schedule("cosine", 2.0), StubNet()
    x0, noise, t, alpha, sigma, x_t = _problem(schedule)
    denoiser = Denoiser(net, schedule, "v", min_snr_gamma=None)
    exact = _target("v", x0.double(), noise.double(), alpha, sigma).float()
    given = torch.tensor([1.0, 0.0, 0.0]).expand(6, 3)                     # frame 0 given
    delta = torch.zeros_like(exact)
    delta[:, :, 0] = 1.0                                                # wrong only on the given frame
    net.out = exact + delta
    torch.testing.assert_close(denoiser.loss(x0, t, noise, frame_weight=1 - given), torch.zeros(6),
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(denoiser.loss(x0, t, noise), torch.full((6,), 1 / 3), rtol=1e-5, atol=0)
    delta[:, :, 0], delta[:, :, 2] = 0.0, 0.5                           # wrong on one of two frames made
    net.out = exact + delta
    torch.testing.assert_close(denoiser.loss(x0, t, noise, frame_weight=1 - given), torch.full((6,), 0.25 / 2),
                               rtol=1e-5, atol=0)
    torch.testing.assert_close(denoiser.loss(x0, t, noise, frame_weight=torch.ones(6, 3)), denoiser.loss(x0, t, noise))


@pytest.mark.parametrize("objective,kind", PAIRS)
def test_min_snr_weight_is_on_x0_error(objective, kind):
    """weight * target MSE == min(SNR, gamma) * x0 MSE for any error of the network."""
    schedule, net, gamma = Schedule(kind, 2.0), StubNet(), 5.0
    x0, noise, t, alpha, sigma, x_t = _problem(schedule)
    snr = (alpha / sigma).flatten() ** 2
    assert (snr > gamma).any() and (snr < gamma).any()
    g = torch.Generator().manual_seed(4)
    net.out = (_target(objective, x0.double(), noise.double(), alpha, sigma)
               + 0.1 * torch.randn(x0.shape, generator=g, dtype=torch.float64)).float()
    denoiser = Denoiser(net, schedule, objective, min_snr_gamma=gamma)
    loss = denoiser.loss(x0, t, noise)
    x0_mse = (denoiser(x_t, t) - x0).double().pow(2).flatten(1).mean(1)
    torch.testing.assert_close(loss.double() / x0_mse, snr.clamp(max=gamma), rtol=1e-4, atol=0)
    # and the weight function directly: w (target error / x0 error)^2 = min(SNR, gamma)
    w = min_snr_weight(snr, sigma.flatten(), gamma, objective)
    ratio = {"eps": 1 / snr, "v": sigma.flatten() ** 2, "x0": torch.ones_like(snr),
             "flow": sigma.flatten() ** 2}[objective]   # (x0 error / target error)^2
    torch.testing.assert_close(w / ratio, snr.clamp(max=gamma), rtol=1e-12, atol=0)


def test_denoiser_validation():
    with pytest.raises(ValueError):
        Denoiser(StubNet(), Schedule("cosine"), "score")
    with pytest.raises(ValueError):
        Denoiser(StubNet(), Schedule("cosine"), "flow")
    with pytest.raises(ValueError):
        Denoiser(StubNet(), Schedule("flow"), "v")


# --------------------------------------------------------------------------- samplers on Gaussian data

MU, S0, N = 0.3, 0.5, 20_000


def gaussian_denoiser(schedule):
    """Exact E[x0 | x_t] for x0 ~ N(MU, S0^2)."""
    def denoise(x, t):
        assert t.shape == (x.shape[0],) and t.dtype == torch.float64
        alpha, sigma = (append_dims(v, x.ndim).to(x) for v in schedule.alpha_sigma(t))
        return MU + alpha * S0**2 / (alpha**2 * S0**2 + sigma**2) * (x - alpha * MU)
    return denoise


def start_noise(schedule, ts):
    """x_T with the exact first two moments of N(alpha MU, sigma^2): the ODE samplers are affine
    maps of it, so the output moments are deterministic and only discretisation error remains."""
    z = torch.randn(N, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = (z - z.mean()) / z.std(unbiased=False)
    alpha, sigma = schedule.alpha_sigma(ts[0])
    return alpha * MU + sigma * z


def run(sampler, kind, steps, shift=1.0, **kw):
    schedule, ts = Schedule(kind, shift), sampling_times(steps)
    out = sampler(gaussian_denoiser(schedule), start_noise(schedule, ts), ts, schedule, **kw)
    assert out.shape == (N, 1) and out.dtype == torch.float64
    return out.mean().item() - MU, out.std(unbiased=False).item() - S0


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_ddim_first_order(kind):
    mean_err, std_err = run(sample_ddim, kind, 100)
    assert abs(mean_err) < 1e-6
    assert abs(std_err) < {"cosine": 0.009, "linear": 0.016}[kind]
    _, std_err_50 = run(sample_ddim, kind, 50)
    assert 1.8 < std_err_50 / std_err < 2.2   # error halves with twice the steps


def test_dpmpp_2m():
    mean_err, std_err = run(sample_dpmpp_2m, "cosine", 20)
    assert abs(mean_err) < 1e-6 and abs(std_err) < 3e-3
    # Far better than DDIM on the same 20 steps (its error is ~0.037 here).
    assert abs(run(sample_ddim, "cosine", 20)[1]) > 10 * abs(std_err)
    # Also with the default shifted schedule and on the linear schedule.
    assert abs(run(sample_dpmpp_2m, "cosine", 20, shift=2.0)[1]) < 0.02
    assert abs(run(sample_dpmpp_2m, "linear", 50)[1]) < 1e-3


def test_ddpm():
    mean_err, std_err = run(sample_ddpm, "cosine", 200, generator=torch.Generator().manual_seed(1))
    # statistical error of N samples (~0.0035 on the mean, ~0.0025 on the std) plus the
    # ancestral sampler's own bias (~-0.01 at 200 steps)
    assert abs(mean_err) < 0.015 and abs(std_err) < 0.02


def test_ddpm_is_ddim_eta_1():
    schedule, ts = Schedule("cosine"), sampling_times(10)
    x = start_noise(schedule, ts)[:100]
    a = sample_ddpm(gaussian_denoiser(schedule), x, ts, schedule, generator=torch.Generator().manual_seed(5))
    b = sample_ddim(gaussian_denoiser(schedule), x, ts, schedule, eta=1.0,
                    generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ddim_eta_above_1_caps_the_fresh_noise_at_sigma_next():
    schedule, ts = Schedule("cosine"), sampling_times(10)
    x = start_noise(schedule, ts)[:100]
    denoise = gaussian_denoiser(schedule)
    # With every step's noise at its cap, each step is x_next = alpha_next D(x, t) + sigma_next z.
    out = sample_ddim(denoise, x, ts, schedule, eta=1e6, generator=torch.Generator().manual_seed(5))
    g, ref = torch.Generator().manual_seed(5), x
    alphas, sigmas = schedule.alpha_sigma(ts)
    for i in range(len(ts) - 1):
        ref = alphas[i + 1] * denoise(ref, ts[i].expand(len(ref)))
        if sigmas[i + 1] > 0:
            ref = ref + sigmas[i + 1] * torch.randn(ref.shape, generator=g).to(ref.dtype)
    torch.testing.assert_close(out, ref)
    # With the exact denoiser, eta 1.3 samples the data as DDPM does (test_ddpm's tolerances). At the
    # cap nothing of x_t but its denoised mean survives a step, and the spread shrinks (-0.15 here).
    mean_err, std_err = run(sample_ddim, "cosine", 200, eta=1.3, generator=torch.Generator().manual_seed(1))
    assert abs(mean_err) < 0.015 and abs(std_err) < 0.02
    assert run(sample_ddim, "cosine", 200, eta=1e6, generator=torch.Generator().manual_seed(1))[1] < -0.1


def test_dpmpp_2m_sde_first_step_is_ddpm():
    """Before a second denoiser call there is no correction term: one step is DDPM's ancestral step."""
    schedule, ts = Schedule("cosine", 2.0), sampling_times(10)[:2]
    x = start_noise(schedule, ts)[:100]
    a = sample_ddpm(gaussian_denoiser(schedule), x, ts, schedule, generator=torch.Generator().manual_seed(5))
    b = sample_dpmpp_2m_sde(gaussian_denoiser(schedule), x, ts, schedule, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_dpmpp_2m_sde_eta_0_is_dpmpp_2m():
    schedule, ts = Schedule("cosine", 2.0), sampling_times(10)
    x = start_noise(schedule, ts)[:100]
    a = sample_dpmpp_2m(gaussian_denoiser(schedule), x, ts, schedule)
    b = sample_dpmpp_2m_sde(gaussian_denoiser(schedule), x, ts, schedule, eta=0.0)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_dpmpp_2m_sde_samples_the_data_and_beats_ddpm():
    """Same noise draws for both (common random numbers), so the gap is the samplers' own bias."""
    errors = {}
    for name, sampler in (("ddpm", sample_ddpm), ("sde", sample_dpmpp_2m_sde)):
        errors[name] = run(sampler, "cosine", 20, shift=2.0, generator=torch.Generator().manual_seed(1))
    mean_err, std_err = errors["sde"]
    # statistical error of N samples is ~0.0035 on the mean, ~0.0025 on the std
    assert abs(mean_err) < 0.01 and abs(std_err) < 0.015
    assert abs(errors["ddpm"][1]) > 5 * abs(std_err)       # DDPM shrinks the spread (~-0.1 here)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_euler_first_order(shift):
    mean_err, std_err = run(sample_euler, "flow", 100, shift=shift)
    assert abs(mean_err) < 1e-12 and abs(std_err) < {1.0: 0.008, 3.0: 0.015}[shift]
    _, std_err_50 = run(sample_euler, "flow", 50, shift=shift)
    assert 1.8 < std_err_50 / std_err < 2.2


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_heun_second_order(shift):
    mean_err, std_err = run(sample_heun, "flow", 40, shift=shift)
    assert abs(mean_err) < 1e-12 and abs(std_err) < {1.0: 6e-4, 3.0: 6e-3}[shift]
    _, std_err_20 = run(sample_heun, "flow", 20, shift=shift)
    assert 3.5 < std_err_20 / std_err < 4.5   # error quarters with twice the steps


def test_samplers_single_step_to_zero():
    """One step from t = 1 to t = 0 returns the denoiser's x0 for the flow samplers."""
    schedule, ts = Schedule("flow"), sampling_times(1)
    x = start_noise(schedule, ts)
    for sampler in (sample_euler, sample_heun, sample_dpmpp_2m, sample_ddim):
        torch.testing.assert_close(sampler(gaussian_denoiser(schedule), x, ts, schedule),
                                   torch.full_like(x, MU), rtol=0, atol=1e-12)


def test_get_sampler():
    for name, fn in SAMPLERS.items():
        assert get_sampler(name) is fn
    with pytest.raises(ValueError, match="unknown sampler 'nope'") as err:
        get_sampler("nope")
    for name in ("ddim", "ddpm", "dpmpp_2m", "dpmpp_2m_sde", "euler", "heun"):
        assert name in str(err.value)


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_flow_samplers_need_flow_schedule(sampler, kind):
    schedule, ts = Schedule(kind), sampling_times(4)
    with pytest.raises(ValueError, match="flow"):
        sampler(gaussian_denoiser(schedule), torch.zeros(2, 1, dtype=torch.float64), ts, schedule)


# --------------------------------------------------------------------------- against diffusers


class IndexSchedule:
    """A schedule over the indices 0, 1, ... of a list of (alpha, sigma) pairs."""

    kind = "cosine"

    def __init__(self, alphas, sigmas):
        self.alphas, self.sigmas = alphas.double(), sigmas.double()

    def alpha_sigma(self, ts):
        i = torch.as_tensor(ts).round().long()
        return self.alphas[i], self.sigmas[i]


def eps_denoiser(schedule, eps_model):
    def denoise(x, t):
        alpha, sigma = (append_dims(v, x.ndim).to(x) for v in schedule.alpha_sigma(t))
        return (x - sigma * eps_model(x, int(t[0].round()))) / alpha
    return denoise


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_matches_diffusers(eta):
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False,
                                    set_alpha_to_one=False, prediction_type="epsilon",
                                    timestep_spacing="leading")
    sched.set_timesteps(20)
    t, t_prev = int(sched.timesteps[10]), int(sched.timesteps[11])
    assert (t, t_prev) == (450, 400)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    ref = sched.step(eps, t, x, eta=eta, variance_noise=noise if eta else None).prev_sample

    ac = sched.alphas_cumprod[[t, t_prev]].double()
    schedule = IndexSchedule(ac.sqrt(), (1 - ac).sqrt())
    out = sample_ddim(eps_denoiser(schedule, lambda x, i: eps), x, torch.tensor([0.0, 1.0], dtype=torch.float64),
                      schedule, eta=eta, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_dpmpp_2m_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule="linear", algorithm_type="dpmsolver++", solver_order=2,
        solver_type="midpoint", prediction_type="epsilon", lower_order_final=True)
    sched.set_timesteps(20)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=g)
    c = torch.randn(2, 3, 4, 4, generator=g)

    def eps_model(x, step):   # deterministic, depends on the state and the step
        return 0.8 * x + 0.3 * torch.tanh(x) + 0.2 * (1 + step) * c

    ref = [x]
    for step, t in enumerate(sched.timesteps[:2]):
        ref.append(sched.step(eps_model(ref[-1], step), t, ref[-1]).prev_sample)

    # diffusers' sigmas are VE, sigma / alpha: convert to VP (alpha, sigma) at its first four times.
    ve = sched.sigmas[:4].double()
    assert (ve > 0).all()
    alpha = 1 / (ve**2 + 1).sqrt()
    schedule = IndexSchedule(alpha, ve * alpha)
    seen = []

    def record(x, step):
        seen.append(x)
        return eps_model(x, step)

    # Four times, three updates: first order, 2M, first order (the last). The states the denoiser
    # sees at its 2nd and 3rd calls are the states after diffusers' first and second steps.
    sample_dpmpp_2m(eps_denoiser(schedule, record), x, torch.arange(4.0, dtype=torch.float64), schedule)
    assert len(seen) == 3
    torch.testing.assert_close(seen[1], ref[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(seen[2], ref[2], rtol=0, atol=1e-5)
    # and the second step really was second order: a first-order step from the same state differs
    first_order = sample_ddim(eps_denoiser(schedule, eps_model), seen[1],
                              torch.tensor([1.0, 2.0], dtype=torch.float64), schedule)
    assert (first_order - ref[2]).abs().max() > 1e-3


# --------------------------------------------------------------------------- guidance


class CondStub:
    """D(x, t | text) = 0.5 x + t + sum(text), recording the batch sizes it was called with."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, t, text):
        self.batches.append(x.shape[0])
        return 0.5 * x + append_dims(t, x.ndim).to(x) + append_dims(text.sum((1, 2)), x.ndim)


def test_cfg_denoiser():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, generator=g)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    cond, uncond = {"text": torch.randn(3, 5, 8, generator=g)}, {"text": torch.zeros(3, 5, 8)}
    stub = CondStub()
    d_cond, d_uncond = stub(x, t, **cond), stub(x, t, **uncond)
    assert not torch.allclose(d_cond, d_uncond)

    stub.batches.clear()
    torch.testing.assert_close(cfg_denoiser(stub, cond, uncond, 1.0)(x, t), d_cond, rtol=0, atol=0)
    assert stub.batches == [3]   # no unconditional pass at scale 1
    for w in (0.0, 3.0, 7.5):
        stub.batches.clear()
        out = cfg_denoiser(stub, cond, uncond, w)(x, t)
        torch.testing.assert_close(out, d_uncond + w * (d_cond - d_uncond), rtol=1e-6, atol=1e-6)
        assert stub.batches == [6]   # one batched call


def test_cfg_denoiser_guidance_interval():
    """Below min_t the prompt alone denoises (no unconditional pass); above it, guidance as usual."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, generator=g)
    cond, uncond = {"text": torch.randn(3, 5, 8, generator=g)}, {"text": torch.zeros(3, 5, 8)}
    stub, w = CondStub(), 3.0
    denoise = cfg_denoiser(stub, cond, uncond, w, min_t=0.3)
    late = torch.full((3,), 0.2, dtype=torch.float64)
    torch.testing.assert_close(denoise(x, late), stub(x, late, **cond), rtol=0, atol=0)
    stub.batches.clear()
    denoise(x, late)
    assert stub.batches == [3]
    mixed = torch.tensor([0.1, 0.3, 0.9], dtype=torch.float64)
    guided = stub(x, mixed, **uncond) + w * (stub(x, mixed, **cond) - stub(x, mixed, **uncond))
    out = denoise(x, mixed)
    torch.testing.assert_close(out[:2], stub(x, mixed, **cond)[:2], rtol=0, atol=0)   # t <= min_t
    torch.testing.assert_close(out[2:], guided[2:], rtol=1e-6, atol=1e-6)


class FrameStub(CondStub):
    """A denoiser in which prompt and frames interact, so that the three predictions all differ."""

    def __call__(self, x, t, text, frames):
        out = super().__call__(x, t, text)                  # counts the batch
        return out * (1 + frames.sum((1, 2)))[:, None, None] - frames


def test_cfg_frames_denoiser():
    """Two-scale guidance is eq. 3 of InstructPix2Pix; frame scale 1 is plain guidance on the prompt."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, generator=g)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    text, frames = torch.randn(3, 5, 8, generator=g), torch.randn(3, 2, 4, generator=g)
    cond = {"text": text, "frames": frames}
    frames_only = {"text": torch.zeros(3, 5, 8), "frames": frames}
    nothing = {"text": torch.zeros(3, 5, 8), "frames": torch.zeros(3, 2, 4)}
    stub = FrameStub()
    d_all, d_frames, d_none = (stub(x, t, **c) for c in (cond, frames_only, nothing))
    for w, w_f in ((3.0, 2.0), (1.0, 3.0), (3.0, 1.0)):
        stub.batches.clear()
        out = cfg_frames_denoiser(stub, cond, frames_only, nothing, w, w_f)(x, t)
        torch.testing.assert_close(out, d_none + w_f * (d_frames - d_none) + w * (d_all - d_frames),
                                   rtol=1e-6, atol=1e-6)
        assert stub.batches == [9]   # one batched call
    torch.testing.assert_close(cfg_frames_denoiser(stub, cond, frames_only, nothing, 3.0, 1.0)(x, t),
                               cfg_denoiser(stub, cond, frames_only, 3.0)(x, t), rtol=1e-6, atol=1e-6)
    late = cfg_frames_denoiser(stub, cond, frames_only, nothing, 3.0, 2.0, min_t=0.3)(x, t)
    torch.testing.assert_close(late[:1], d_all[:1], rtol=0, atol=0)        # t <= min_t: cond alone


# --------------------------------------------------------------------------- training times


def test_sample_t_uniform_stratified():
    for b in (1, 7, 64):
        t = sample_t(b, "uniform", generator=torch.Generator().manual_seed(b))
        assert t.shape == (b,) and ((t > 0) & (t < 1)).all()
        assert sorted((t * b).floor().long().tolist()) == list(range(b))   # one per slice
    # shuffled: the stratum is not the position
    t = sample_t(64, "uniform", generator=torch.Generator().manual_seed(0))
    assert (t * 64).floor().long().tolist() != list(range(64))


def test_sample_t_logit_normal():
    n = 20_000
    for mean, std in ((0.0, 1.0), (0.5, 0.7)):
        t = sample_t(n, "logit_normal", mean=mean, std=std, generator=torch.Generator().manual_seed(0))
        assert ((t > 0) & (t < 1)).all()
        # median of sigmoid(N(m, s^2)) is sigmoid(m); its standard error is ~0.002 here
        assert t.median().item() == pytest.approx(1 / (1 + math.exp(-mean)), abs=0.01)
        logit = torch.log(t) - torch.log1p(-t)
        assert logit.mean().item() == pytest.approx(mean, abs=0.03)
        assert logit.std().item() == pytest.approx(std, abs=0.03)
    with pytest.raises(ValueError):
        sample_t(4, "beta")


def test_video_noise_shares_a_fraction_of_its_variance_across_frames():
    from vidiff.diffusion.noise import video_noise

    g = torch.Generator().manual_seed(0)
    n = video_noise((64, 3, 4, 16, 16), shared=0.6, generator=g)
    assert abs(n.var().item() - 1) < 0.02                              # still N(0, 1) in every frame
    corr = (n[:, :, 0] * n[:, :, 3]).mean().item()
    assert abs(corr - 0.6) < 0.02                                      # frames correlate by `shared`
    plain = video_noise((2, 3, 4, 8, 8), 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(plain, torch.randn((2, 3, 4, 8, 8), generator=torch.Generator().manual_seed(1)))
    picture = video_noise((2, 3, 1, 8, 8), 0.9, torch.Generator().manual_seed(1))     # one frame: nothing to share
    assert torch.equal(picture, torch.randn((2, 3, 1, 8, 8), generator=torch.Generator().manual_seed(1)))


def test_ancestral_steps_draw_the_models_video_noise():
    """DDPM's fresh noise comes from the given noise function (shared across frames as in training)."""
    from functools import partial

    from vidiff.diffusion.noise import video_noise

    schedule, g = Schedule("cosine"), torch.Generator().manual_seed(0)
    x = video_noise((256, 3, 4, 8, 8), 0.5, generator=g)
    ts = torch.tensor([1.0, 0.5], dtype=torch.float64)
    out = sample_ddpm(lambda x, t: torch.zeros_like(x), x, ts, schedule, generator=g,
                      noise=partial(video_noise, shared=0.5))
    # With x0_hat = 0 a step keeps part of the old noise and adds fresh noise: both shared by half,
    # so the result is sigma(0.5) times noise that is still N(0, 1) with frame correlation 0.5.
    n = out / schedule.alpha_sigma(ts[1:])[1].item()
    assert abs(n.var().item() - 1) < 0.03
    assert abs((n[:, :, 0] * n[:, :, 3]).mean().item() - 0.5) < 0.03


def test_every_sampler_is_offered_by_the_config_and_the_cli():
    import typing

    from vidiff import cli
    from vidiff.config import SampleConfig

    assert set(typing.get_args(typing.get_type_hints(SampleConfig)["sampler"])) == set(SAMPLERS) == set(cli.SAMPLERS)
