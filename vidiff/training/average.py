"""Weight averaging: one model from the end points of several training cycles.

Stochastic weight averaging (Izmailov et al. 2018) takes the weights a cyclic learning rate
reaches at the end of each cycle, theta = sum_i w_i theta_i. The end points lie around one wide
basin and their average sits nearer its centre than any of them. This holds for runs that share
an ancestor (one fine-tuned from another's weights): unrelated runs do not average.
"""

import torch

from ..config import to_dict
from ..errors import VidiffError


def average_models(paths, weights=None):
    """A pipeline over the weighted average of the models at `paths` (model directories or
    training checkpoints); `weights` default to equal and are normalised to sum to 1. Every
    setting other than the weights (sampling defaults, text encoder, ...) is the first model's."""
    from ..pipeline import VideoPipeline

    if len(paths) < 2:
        raise VidiffError(f"averaging needs at least two models, got {len(paths)}")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise VidiffError(f"{len(weights)} weights for {len(paths)} models")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise VidiffError(f"weights must be non-negative with a positive sum, got {weights}")
    first = VideoPipeline.from_pretrained(paths[0])
    # The others lend only their weights: they share the first's text encoder rather than load their own.
    pipes = [first] + [VideoPipeline.from_pretrained(p, text_encoder=first.text) for p in paths[1:]]
    arch = to_dict(pipes[0].net.cfg)
    for path, pipe in zip(paths[1:], pipes[1:]):
        if to_dict(pipe.net.cfg) != arch:
            raise VidiffError(f"{path} has another architecture (its model config) than {paths[0]}")
    states = [p.net.state_dict() for p in pipes]
    total = sum(weights)
    # Sums in fp32 even where the files are bf16 (as shipped weights are): bf16's 8-bit mantissa would
    # round every partial sum.
    avg = {k: sum(w / total * s[k].float() for w, s in zip(weights, states)) for k in states[0]}
    first.net.load_state_dict({k: v.to(states[0][k].dtype) for k, v in avg.items()})
    return first
