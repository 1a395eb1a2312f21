"""Reconstruction guidance (VDM, Ho et al. 2022, eq. 7) on top of the frame stem, on the known-frame tasks.

    python benchmarks/reconstruction.py [MODEL_DIR] [--task extend|interp|i2v] [--limit N] [--weights 0 1 3]

The pipeline gives known frames x^a to the network through its frame stem. Reconstruction guidance
adds a correction from the joint model over all frames: the network with the prompt only (no
frames in the stem) sees the whole window, the known positions replaced by x^a noised to the
current time, and its reconstruction of x^a is compared with x^a; the gradient of that error with
respect to the noisy new frames says how to move them so the whole window hangs together:

    x0^b <- x0^b - (w_r alpha_t / 2) grad_{z^b} || x^a - x0_theta^a(z_t) ||^2

Weight 0 is the pipeline as shipped. Scored by `vidiff eval --task`'s scorer on the same clips and
seeds. Output appended to benchmarks/results/reconstruction.txt.
"""

import argparse
from functools import partial

import torch

import vidiff.pipeline as pipeline
from vidiff.diffusion.noise import video_noise
from vidiff.eval.tasks import task_items

from _guidance import score_variants
from _results import append_results


def reconstructing(make, pipe, weight):
    """Wrap a guidance constructor so its x0 gets the reconstruction-guidance correction."""
    def build(network, cond, *args, **kwargs):
        denoise = make(network, cond, *args, **kwargs)
        mask = cond.get("frame_mask")
        if weight == 0 or mask is None or not mask.any():
            return denoise
        known, m = cond["frames"], mask[:, None, :, None, None].bool()              # (B, C, F, H, W), (B, 1, F, 1, 1)
        text_only = {k: v for k, v in cond.items() if k not in ("frames", "frame_mask")}

        def denoise_guided(x, t):
            x0 = denoise(x, t)
            alpha, _ = pipe.schedule.alpha_sigma(t)
            alpha = alpha.to(x)[:, None, None, None, None]
            noisy = pipe.schedule.add_noise(known, video_noise(x.shape, shared=pipe.diffusion.shared_noise).to(x), t)
            with torch.enable_grad():
                z = torch.where(m, noisy, x).detach().requires_grad_()
                err = ((network(z, t, **text_only) - known) * m).pow(2).sum()
                grad, = torch.autograd.grad(err, z)
            return torch.where(m, x0, x0 - weight * alpha / 2 * grad)
        return denoise_guided
    return build


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--task", choices=("extend", "interp", "i2v"), default="extend")
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 3.0, 10.0])
    args = ap.parse_args()
    pipe = pipeline.VideoPipeline.from_pretrained(args.model)
    items = task_items(1)[: args.limit]
    lines = [f"reconstruction guidance on {args.model or 'the default model'}: --task {args.task}, {len(items)} clips"]
    lines += score_variants(pipe, args.task, items,
                            [(f"w_r {w:<5g}", partial(reconstructing, pipe=pipe, weight=w)) for w in args.weights])
    print("\n".join(lines))
    append_results("reconstruction.txt", lines)


if __name__ == "__main__":
    main()
