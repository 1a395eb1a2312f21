"""Our video U-Net against diffusers' UNet3DConditionModel at a matched parameter count and
the same input (16 x 32 x 32 clips, 384-wide text states): training clips/s and the time of
one guided sampling step.

    python benchmarks/vs_diffusers.py [--config configs/shapes-s-plainv.toml] [--batch 4]

diffusers' model has our first two widths, one ResBlock per level as ours, and its last two
widths searched for the parameter count closest to ours. Run it alone.
"""

import argparse
import time

import torch


def timed(fn, repeats):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def diffusers_unet(widths, text_dim):
    from diffusers import UNet3DConditionModel

    return UNet3DConditionModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=widths, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        cross_attention_dim=text_dim, attention_head_dim=8)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/shapes-s-plainv.toml")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    from vidiff.config import load_config
    from vidiff.models.unet import VideoUNet

    cfg = load_config(args.config)
    B, F, S, D = args.batch, cfg.data.frames, cfg.data.size, cfg.model.text_dim
    torch.manual_seed(0)
    ours = VideoUNet(cfg.model)
    n_ours = sum(p.numel() for p in ours.parameters())
    with torch.device("meta"):
        c0, c1 = cfg.model.channels[:2]
        sizes = {w: sum(p.numel() for p in diffusers_unet(w, D).parameters())
                 for w in ((c0, c1, c2, c3) for c2 in range(64, 257, 32) for c3 in range(64, 257, 32))}
    width = min(sizes, key=lambda w: abs(sizes[w] - n_ours))
    theirs = diffusers_unet(width, D)

    x, t = torch.randn(B, 3, F, S, S), torch.rand(B)
    text, pooled = torch.randn(B, 12, D), torch.randn(B, D)
    calls = {
        "vidiff VideoUNet": (ours, lambda m, xx, tt, tx: m(xx, tt, tx, torch.ones(len(xx), 12), pooled[:1].expand(len(xx), -1))),
        f"diffusers UNet3DConditionModel {width}":
            (theirs, lambda m, xx, tt, tx: m(xx.contiguous(), tt * 1000, encoder_hidden_states=tx).sample),
    }
    print(f"input {B} x 3 x {F} x {S} x {S}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<48}{'params':>9}{'train clips/s':>15}{'guided step, 1 clip':>22}")
    results = {}
    for name, (model, call) in calls.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def train_step():
            loss = (call(model.train(), x, t, text) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        @torch.no_grad()
        def sample_step():   # guidance: conditional and unconditional in one batch of 2
            call(model.eval(), x[:1].repeat(2, 1, 1, 1, 1), t[:1].repeat(2), text[:1].repeat(2, 1, 1))

        train_s, sample_s = timed(train_step, args.repeats), timed(sample_step, args.repeats * 3)
        results[name] = (B / train_s, sample_s)
        n = sum(p.numel() for p in model.parameters())
        print(f"{name:<48}{n / 1e6:>8.2f}M{B / train_s:>15.2f}{sample_s * 1000:>19.0f} ms")
    (a_train, a_sample), (b_train, b_sample) = results.values()
    print(f"vidiff / diffusers: training x{a_train / b_train:.1f}, sampling x{b_sample / a_sample:.1f}")


if __name__ == "__main__":
    main()
