"""U-Net or video DiT? Training clips/s and sampling latency at a matched parameter count.

The DiT here is the standard recipe at one resolution: 4x4 patches, blocks of
spatial attention, temporal attention, cross-attention and an MLP, each with
adaLN-style modulation by the time + pooled-text embedding (Peebles & Xie 2023).
The U-Net is vidiff's `VideoUNet` from the given config.

    python benchmarks/model_choice.py [--config configs/shapes-s-plainv.toml]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from vidiff.config import load_config
from vidiff.models.attention import CrossAttention, SpatialAttention, TemporalAttention
from vidiff.models.layers import timestep_embedding
from vidiff.models.unet import VideoUNet


class DiTBlock(nn.Module):
    def __init__(self, dim, text_dim, emb_dim):
        super().__init__()
        self.spatial, self.temporal = SpatialAttention(dim), TemporalAttention(dim)
        self.cross = CrossAttention(dim, text_dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ada = nn.Linear(emb_dim, 3 * dim)

    def forward(self, x, emb, text, mask):                    # x: (B, D, F, h, w)
        x = self.cross(self.temporal(self.spatial(x)), text, mask)
        shift, scale, gate = self.ada(emb)[:, :, None, None, None].chunk(3, 1)
        h = self.norm(x.movedim(1, -1)).movedim(-1, 1) * (1 + scale) + shift
        return x + gate * self.mlp(h.movedim(1, -1)).movedim(-1, 1)


class VideoDiT(nn.Module):
    def __init__(self, dim, depth, patch=4, text_dim=384, emb_dim=256):
        super().__init__()
        self.patch, self.emb_dim = patch, emb_dim
        self.embed = nn.Conv3d(3, dim, (1, patch, patch), stride=(1, patch, patch))
        self.t_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.p_mlp = nn.Linear(text_dim, emb_dim)
        self.blocks = nn.ModuleList(DiTBlock(dim, text_dim, emb_dim) for _ in range(depth))
        self.out = nn.Linear(dim, 3 * patch * patch)

    def forward(self, x, t, text, text_mask, pooled):
        B, C, Fr, H, W = x.shape
        emb = self.t_mlp(timestep_embedding(t, self.emb_dim)) + self.p_mlp(pooled)
        h = self.embed(x)                                          # (B, D, F, H/p, W/p)
        for block in self.blocks:
            h = block(h, emb, text, text_mask)
        y = self.out(h.movedim(1, -1))                             # (B, F, h, w, 3 p p)
        y = y.permute(0, 1, 4, 2, 3).reshape(B * Fr, 3 * self.patch**2, H // self.patch, W // self.patch)
        return F.pixel_shuffle(y, self.patch).view(B, Fr, C, H, W).transpose(1, 2)


def measure(net, B, Fr, S, repeats=3):
    cond = {"text": torch.randn(B, 12, 384), "text_mask": torch.ones(B, 12), "pooled": torch.randn(B, 384)}
    x, t = torch.randn(B, 3, Fr, S, S), torch.rand(B)
    opt = torch.optim.AdamW(net.parameters())

    def step():
        loss = net(x, t, **cond).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    train = B * repeats / (time.perf_counter() - t0)
    with torch.no_grad():
        c2 = {k: v[:2] for k, v in cond.items()}
        net(x[:2], t[:2], **c2)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x[:2], t[:2], **c2)                                # one guided step: batch 2
        step_s = (time.perf_counter() - t0) / repeats
    return train, step_s


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default="configs/shapes-s-plainv.toml")
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    cfg = load_config(args.config)
    Fr, S = cfg.data.frames, cfg.data.size
    unet = VideoUNet(cfg.model)
    n_unet = sum(q.numel() for q in unet.parameters())
    # Pick the DiT depth at width 256 that comes closest to the U-Net's parameter count.
    dit = min((VideoDiT(256, d) for d in range(2, 12)),
              key=lambda m: abs(sum(q.numel() for q in m.parameters()) - n_unet))
    print(f"{'model':<28}{'params':>9}{'train clips/s':>15}{'guided step, 1 clip':>22}")
    for name, net in (("VideoUNet (2+1)-D", unet), (f"VideoDiT 4x4, depth {len(dit.blocks)}", dit)):
        train, step_s = measure(net, args.batch, Fr, S)
        n = sum(q.numel() for q in net.parameters())
        print(f"{name:<28}{n / 1e6:>8.2f}M{train:>15.2f}{step_s * 1000:>19.0f} ms")


if __name__ == "__main__":
    main()
