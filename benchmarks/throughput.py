"""Training throughput, achieved FLOP/s against a matmul peak measured in the same run,
sampling latency per clip (with the shipped model's sampling settings) and peak memory. Prints a table.

    python benchmarks/throughput.py [--config configs/shapes-long.toml] [--batch 8] [--repeats 5]

Run it alone: on a 2-core machine any other busy process halves every number.
"""

import argparse
import platform
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidiff.config import load_config
from vidiff.diffusion.denoiser import Denoiser
from vidiff.diffusion.schedules import Schedule
from vidiff.models.unet import VideoUNet
from vidiff.pipeline import VideoPipeline


def matmul_peak(n=1024, repeats=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default="configs/shapes-long.toml")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=20, help="sampling steps for the latency figure")
    args = p.parse_args()

    cfg = load_config(args.config)
    F, S, B = cfg.data.frames, cfg.data.size, args.batch
    net = VideoUNet(cfg.model)
    denoiser = Denoiser(net, Schedule(cfg.diffusion.schedule, cfg.diffusion.shift), cfg.diffusion.objective)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    text_len, text_dim = 12, cfg.model.text_dim
    cond = {"text": torch.randn(B, text_len, text_dim), "text_mask": torch.ones(B, text_len),
            "pooled": torch.randn(B, text_dim)}
    x0, t = torch.randn(B, 3, F, S, S), torch.rand(B)

    def train_step():
        loss = denoiser.loss(x0, t, **cond).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        denoiser.loss(x0, t, **cond).mean().backward()
    flops_per_step = counter.get_total_flops()
    train_step()                                             # warm-up
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        train_step()
    step_s = (time.perf_counter() - t0) / args.repeats
    peak = matmul_peak()
    train_rss = peak_rss_mb()

    shipped = VideoPipeline.from_pretrained().sample_defaults     # the shipped sampler and guidance interval
    pipe = VideoPipeline(net.eval(), cfg.diffusion, shipped, F, S)
    pipe("warm up", num_inference_steps=1)
    t0 = time.perf_counter()
    pipe(["a red circle moving right"] * 4, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
    sample_s = (time.perf_counter() - t0) / 4
    t0 = time.perf_counter()
    pipe("a red circle moving right", num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
    single_s = time.perf_counter() - t0

    params = sum(p.numel() for p in net.parameters())
    how = f"{args.steps} steps, {shipped.sampler}, guidance above t = {shipped.guidance_min_t}"
    rows = [
        ("machine", f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"),
        ("model", f"{args.config}: {params / 1e6:.2f}M parameters, clips {F}x{S}x{S}"),
        ("train step (batch %d)" % B, f"{step_s:.2f} s"),
        ("train throughput", f"{B / step_s:.2f} clips/s"),
        ("train FLOPs per clip", f"{flops_per_step / B / 1e9:.2f} GFLOP (forward + backward)"),
        ("achieved", f"{flops_per_step / step_s / 1e9:.1f} GFLOP/s"),
        ("fp32 matmul peak", f"{peak / 1e9:.1f} GFLOP/s (1024^2 matmul, same run)"),
        ("utilisation", f"{flops_per_step / step_s / peak * 100:.0f}% of matmul peak"),
        ("sampling, batch of 4", f"{sample_s:.2f} s per clip ({how})"),
        ("sampling, one clip", f"{single_s:.2f} s ({how})"),
        ("peak memory (RSS)", f"{max(train_rss, peak_rss_mb()):.0f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
