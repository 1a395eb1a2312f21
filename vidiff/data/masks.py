"""Which frames a training clip shows the model as known (masked-frame training, VDM sec. 3.1).

One model learns every frame-conditioned task by seeing, on a fraction of clips,
the masks those tasks produce at sampling time:
    first   frame 0 only                                   image-to-video
    prefix  frames 0..k-1                                  continuation, the overlap of long videos
    stride  every s-th frame (s = 2 or 4), maybe a prefix  interpolation, and its later windows
The rest of the clips show no frames: text-to-video stays the model's first job.
"""

import torch

KINDS = ("first", "prefix", "stride")


def sample_frame_mask(batch, frames, prob, generator=None):
    """(B, F) float mask, 1 where a frame is given; drawn from `generator` for reproducibility."""
    mask = torch.zeros(batch, frames)
    use = torch.rand(batch, generator=generator) < prob
    kinds = torch.randint(len(KINDS), (batch,), generator=generator)
    for i in range(batch):
        if not use[i] or frames < 2:
            continue
        kind = KINDS[kinds[i]]
        if kind == "first":
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
