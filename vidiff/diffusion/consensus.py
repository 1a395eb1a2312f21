"""Consensus sampling: draw K samples, keep the most typical one (the medoid).

Minimum Bayes risk decoding (Kumar & Byrne 2004) with the squared pixel distance as the risk:
of K samples x_1..x_K, keep

    argmin_i  sum_j ||x_i - x_j||^2 .

Where the model's samples spread around the right answer (a continuation whose speed is read a
little too fast or too slow), the medoid sits near their middle, so it is right more often than
one sample. It is chosen among the model's own samples, by a distance that knows nothing of the
content, and costs K times the sampling.
"""

import torch


def medoid(samples):
    """samples (K, N, ...) -> (N,) index of the sample, for each of the N, nearest the other K - 1
    in summed squared distance."""
    K, N = samples.shape[:2]
    v = samples.transpose(0, 1).reshape(N, K, -1).float()             # (N, K, D)
    return torch.cdist(v, v).pow(2).sum(-1).argmin(-1)                # (N,)
