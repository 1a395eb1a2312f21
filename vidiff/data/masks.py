"""Which frames a training clip shows the model as known (masked-frame training, VDM sec. 3.1).

One model learns every frame-conditioned task by seeing, on a fraction of clips,
the masks those tasks produce at sampling time:
    first   frame 0 only                                   image-to-video
    prefix  frames 0..k-1                                  continuation, the overlap of long videos
    stride  every s-th frame (s = 2 or 4), maybe a prefix  interpolation, and its later windows
    half    frames 0..F/2-1, a share `half` of the clips with frames: the exact mask of
            continuation from half a clip and of every long-video window after the first
            (or frames 0..prefix-1: a longer clip given a window's half asks for a longer horizon)
    stride4 frames 0, 4, 8, ..., a share `stride4` of them: the exact mask of x4 interpolation
The rest of the clips show no frames: text-to-video stays the model's first job.
"""

import torch

KINDS = ("first", "prefix", "stride")


def sample_frame_mask(batch, frames, prob, generator=None, half=0.0, stride4=0.0, prefix=0):
    """(B, F) float mask, 1 where a frame is given; drawn from `generator` for reproducibility.
    `half` and `stride4` are shares of the clips with frames; at 0 each draws what it drew before
    that share existed. `prefix` > 0 gives the `half` clips that many first frames instead of F/2."""
    mask = torch.zeros(batch, frames)
    use = torch.rand(batch, generator=generator) < prob
    kinds = torch.randint(len(KINDS), (batch,), generator=generator)
    u = torch.rand(batch, generator=generator) if half + stride4 > 0 else torch.ones(batch)
    for i in range(batch):
        if not use[i] or frames < 2:
            continue
        kind = "half" if u[i] < half else "stride4" if u[i] < half + stride4 else KINDS[kinds[i]]
        if kind == "half":
            mask[i, :prefix or frames // 2] = 1
        elif kind == "stride4":
            mask[i, ::4] = 1
        elif kind == "first":
            mask[i, 0] = 1
        elif kind == "prefix":
            k = int(torch.randint(1, frames, (1,), generator=generator))
            mask[i, :k] = 1
        else:
            s = (2, 4)[int(torch.randint(2, (1,), generator=generator))]
            offset = int(torch.randint(s, (1,), generator=generator))
            k = int(torch.randint(frames // 2 + 1, (1,), generator=generator))
            mask[i, offset::s] = 1
            mask[i, :k] = 1
    return mask
