"""What each speed switch buys: training step time, peak memory and model FLOPs utilisation
at 16, 32 and 64 frames, for the shipped model's network.

    python benchmarks/speed.py [--config configs/shapes-s-plainv.toml] [--batch 4] [--frames 16 32 64]

Every (frames, switch) cell runs in a fresh process, so its peak RSS is its own. Utilisation
(MFU) is the model's FLOPs per step (forward + backward, counted once: recomputation under
checkpointing is not credited) per second over an fp32 matmul peak measured in the same
process. Run it alone: another busy process on 2 cores halves every number.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from throughput import matmul_peak   # benchmarks/ is on the path when this file is run

SWITCHES = {
    "baseline": {},
    "bf16 autocast": {"bf16": True},
    "grad checkpointing": {"grad_checkpointing": True},
    "math attention": {"attention": "math"},      # SDPA's reference kernel instead of the fused one
    "torch.compile": {"compile": True},
}


def one(config, frames, batch, switch, repeats):
    """Time one cell; prints a JSON line."""
    from torch.utils.flop_counter import FlopCounterMode

    from vidiff.config import load_config
    from vidiff.diffusion.denoiser import Denoiser
    from vidiff.diffusion.schedules import Schedule
    from vidiff.models.unet import VideoUNet
    from vidiff.training.loop import attention_kernel

    opts = SWITCHES[switch]
    cfg = load_config(config)
    S = cfg.data.size
    torch.manual_seed(0)
    net = VideoUNet(cfg.model)
    net.grad_checkpointing = opts.get("grad_checkpointing", False)
    schedule = Schedule(cfg.diffusion.schedule, cfg.diffusion.shift)
    model = torch.compile(net) if opts.get("compile") else net
    denoiser = Denoiser(model, schedule, cfg.diffusion.objective, None)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    cond = {"text": torch.randn(batch, 12, cfg.model.text_dim), "text_mask": torch.ones(batch, 12),
            "pooled": torch.randn(batch, cfg.model.text_dim)}
    x0, t = torch.randn(batch, 3, frames, S, S), torch.rand(batch)

    def step():
        with attention_kernel(opts.get("attention", "fused")), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.get("bf16", False)):
            loss = denoiser.loss(x0, t, **cond).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        Denoiser(net, schedule, cfg.diffusion.objective, None).loss(x0, t, **cond).mean().backward()
    flops = counter.get_total_flops()
    step()
    step()                                   # warm-up (and compilation)
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    step_s = (time.perf_counter() - t0) / repeats
    peak = matmul_peak(repeats=10)
    print(json.dumps({"step_s": step_s, "flops": flops, "peak": peak,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/shapes-s-plainv.toml")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--switches", nargs="+", default=list(SWITCHES), choices=list(SWITCHES), metavar="SWITCH")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--one", nargs=2, metavar=("FRAMES", "SWITCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one(args.config, int(args.one[0]), args.batch, args.one[1], args.repeats)

    print(f"{args.config}, batch {args.batch}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'frames':>6}  {'switch':<20}{'step s':>8}{'clips/s':>9}{'peak MB':>9}{'GFLOP/s':>9}{'MFU':>6}")
    for frames in args.frames:
        base = None
        for switch in args.switches:
            done = subprocess.run([sys.executable, __file__, "--config", args.config, "--batch", str(args.batch),
                                   "--repeats", str(args.repeats), "--one", str(frames), switch],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["?"])[-1][:60]
                print(f"{frames:>6}  {switch:<20}failed: {reason}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            base = base or r["step_s"]
            achieved = r["flops"] / r["step_s"]
            print(f"{frames:>6}  {switch:<20}{r['step_s']:>8.2f}{args.batch / r['step_s']:>9.2f}"
                  f"{r['rss_mb']:>9.0f}{achieved / 1e9:>9.1f}{achieved / r['peak'] * 100:>5.0f}%"
                  f"   x{base / r['step_s']:.2f} vs baseline")


if __name__ == "__main__":
    main()
