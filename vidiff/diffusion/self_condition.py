"""Self-conditioning at sampling time (Chen et al. 2022, "Analog Bits", Alg. 2).

The network takes its own x0 guess from the sampler's previous step as an extra input. The
samplers stay pure functions of D(x, t): the state lives here, in a pair of wrappers around
one sampling run,

    sc = SelfCondition(denoiser)
    denoise = sc.track(cfg_denoiser(sc.network, cond, uncond, scale))
    sample_ddpm(denoise, x, ts, schedule)

`network` feeds the last guess to every call (repeated over guidance's batched branches);
`track` records the guess the sampler used, the guided one: the clip the sampler is drawing.
"""

import torch


class SelfCondition:
    def __init__(self, denoiser):
        self.denoiser, self.guess = denoiser, None

    def network(self, x, t, **cond):
        guess = torch.zeros_like(x) if self.guess is None else self.guess
        return self.denoiser(x, t, self_cond=guess.repeat(x.shape[0] // guess.shape[0], 1, 1, 1, 1), **cond)

    def track(self, denoise):
        def tracked(x, t):
            self.guess = denoise(x, t)
            return self.guess
        return tracked
