"""Exponential moving average of weights (Polyak averaging), the weights we sample from."""

import copy

import torch


class EMA:
    def __init__(self, model, max_decay=0.999):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.updates = 0

    def decay(self):
        # Warm-up (1 + n) / (10 + n): early weights are forgotten quickly.
        return min(self.max_decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model):
        d = self.decay()
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)
        self.updates += 1
