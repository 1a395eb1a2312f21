"""A frame adapter: the given frames read across time, added at every level of the U-Net's way down.

The frame stem shows the given frames to the network once, frame by frame, at the top; how fast
an object moves across them has to be worked out by the shared layers, which also serve text-only
generation. The adapter (T2I-Adapter, Mou et al. 2023; ControlNet's zero-initialised outputs,
Zhang et al. 2023) gives the frames a small encoder of their own: 3x3x3 convolutions, so a kernel
spans neighbouring frames and can see displacement directly, and one zero-initialised output per
level, added to that level's input. It is switched off (exactly zero) for clips with no frame
given, so text-to-video computes what it did before the adapter, whatever the adapter's weights:
training it alone (`optim.trainable`) cannot cost the text-only task anything.

Shapes: given (B, C', F, h, w), the stem's pixel-unshuffled frames and mask; on (B,) bool.
"""

import torch.nn.functional as F
from torch import nn


class FrameAdapter(nn.Module):
    def __init__(self, c_in, channels, time_levels):
        """channels: the U-Net's width per level; the adapter runs at half of each."""
        super().__init__()
        widths = [max(c // 2, 8) for c in channels]
        self.time_levels = set(time_levels)
        self.inp = nn.Conv3d(c_in, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Conv3d(w, w, 3, padding=1), nn.SiLU(),
                                                  nn.Conv3d(w, w, 3, padding=1)) for w in widths)
        self.down = nn.ModuleList(nn.Conv3d(widths[i], widths[i + 1], 3, stride=(1, 2, 2), padding=1)
                                  for i in range(len(widths) - 1))
        self.outs = nn.ModuleList(nn.Conv3d(w, c, 1) for w, c in zip(widths, channels))
        for out in self.outs:            # a warm-started model starts as the same function
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    def forward(self, given, on):
        """Returns one (B, channels[i], F_i, h_i, w_i) feature per level, F_i and h_i, w_i as the
        U-Net's level i sees them (frames halved after each of `time_levels`)."""
        gate = on.to(given.dtype)[:, None, None, None, None]
        a, feats = self.inp(given), []                                  # (B, w0, F, h, w)
        for i, block in enumerate(self.blocks):
            a = a + block(a)
            feats.append(self.outs[i](a) * gate)
            if i < len(self.down):
                a = self.down[i](F.silu(a))                             # (B, w_i+1, F, h/2, w/2)
                if i in self.time_levels and a.shape[2] > 1:
                    a = F.avg_pool3d(a, (2, 1, 1))                      # (B, ., F/2, ., .)
        return feats
