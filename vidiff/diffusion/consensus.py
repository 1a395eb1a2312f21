"""Consensus sampling: draw K samples, keep the most typical one (the medoid).

Minimum Bayes risk decoding (Kumar & Byrne 2004) with the squared pixel distance as the risk:
of K samples x_1..x_K, keep

    argmin_i  sum_j ||x_i - x_j||^2 .

Where the model's samples spread around the right answer (a continuation whose speed is read a
little too fast or too slow), the medoid sits near their middle, so it is right more often than
one sample. It is chosen among the model's own samples, by a distance that knows nothing of the
content, and costs K times the sampling.

Once two samples' objects no longer overlap, their pixel distance stops growing with how far apart
they are. Blurring the frames first (a Gaussian of `blur` px) keeps it growing over a few pixels, so
"a little off" stays nearer than "far off".
"""

import torch
import torch.nn.functional as F


def gaussian_blur(v, sigma):
    """Blur (..., H, W) over H and W by a Gaussian of std `sigma` px (edges replicated)."""
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma**2))
    k = (k / k.sum()).to(v.dtype)
    x = v.reshape(-1, 1, *v.shape[-2:])                                # (M, 1, H, W)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x.view(v.shape)


def medoid(samples, blur=0.0):
    """samples (K, N, ..., H, W) -> (N,) index of the sample, for each of the N, nearest the other
    K - 1 in summed squared distance, over frames blurred by `blur` px (0: the pixels as they are)."""
    K, N = samples.shape[:2]
    v = gaussian_blur(samples.float(), blur) if blur > 0 else samples.float()
    v = v.transpose(0, 1).reshape(N, K, -1)                           # (N, K, D)
    return torch.cdist(v, v).pow(2).sum(-1).argmin(-1)                # (N,)
