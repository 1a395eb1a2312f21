"""Self-conditioning at sampling time (Chen et al. 2022, "Analog Bits", Alg. 2).

The network takes its own x0 guess from the sampler's previous step as an extra input. The
samplers stay pure functions of D(x, t): the state lives here, in a wrapper around the
network for one sampling run, placed under guidance,

    sc = SelfCondition(denoiser)
    denoise = cfg_denoiser(sc, cond, uncond, scale)
    sample_ddpm(denoise, x, ts, schedule)

Each guidance branch gets the network's own last output for that branch, the input training
showed it; the guided mixture is not fed back (it is not a guess the network made: fed back, it
gave 87.2% right on everything at 20 steps against 91.7%, benchmarks/results/motion_experiments.md,
stage 26). Where guidance stops (below its interval) the batched call shrinks to its last
branch, the prompt's (guidance._batched orders it last), which keeps its own guess.
"""

import torch


class SelfCondition:
    def __init__(self, denoiser):
        self.denoiser, self.guess = denoiser, None

    def __call__(self, x, t, **cond):
        guess = torch.zeros_like(x) if self.guess is None else self.guess[-x.shape[0]:]
        self.guess = self.denoiser(x, t, self_cond=guess, **cond)
        return self.guess
