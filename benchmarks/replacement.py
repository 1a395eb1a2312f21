"""Should the given frames also replace the noisy input at their positions? Probed on the known-frame tasks.

    python benchmarks/replacement.py [MODEL_DIR] [--task extend|interp] [--limit N]

The pipeline gives known frames to the network through its frame stem only; the noisy input at
their positions is the sampler's own trajectory. In training those positions held the true frames
noised, alpha_t x + sigma_t eps, so the replacement method (Song et al. 2021; VDM, Ho et al. 2022,
sec. 3.1) puts exactly that into the input before every denoiser call:
  - stem:  as shipped, no replacement;
  - fixed: replacement with one noise draw per window (shared across frames as in training);
  - fresh: a new draw at every step.
Scored by `vidiff eval --task`'s scorer on the same clips and seeds. Output appended to
benchmarks/results/replacement.txt.
"""

import argparse
from functools import partial

import torch

import vidiff.pipeline as pipeline
from vidiff.diffusion.noise import video_noise
from vidiff.eval.tasks import task_items

from _guidance import score_variants
from _results import append_results

MODES = ("stem", "fixed", "fresh")


def replacing(make, pipe, mode):
    """Wrap a guidance constructor so its denoiser sees the given frames, noised, in its input."""
    def build(network, cond, *args, **kwargs):
        denoise = make(network, cond, *args, **kwargs)
        mask = cond.get("frame_mask")
        if mode == "stem" or mask is None or not mask.any():
            return denoise
        known, m = cond["frames"], mask[0].bool()[None, None, :, None, None]     # (B, C, F, H, W), (1, 1, F, 1, 1)
        drawn = []

        def denoise_replaced(x, t):
            if mode == "fresh" or not drawn:
                drawn[:] = [video_noise(x.shape, shared=pipe.diffusion.shared_noise).to(x)]
            alpha, sigma = (float(v) for v in pipe.schedule.alpha_sigma(t[:1]))
            return denoise(torch.where(m, alpha * known + sigma * drawn[0], x), t)
        return denoise_replaced
    return build


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--task", choices=("extend", "interp"), default="extend")
    ap.add_argument("--limit", type=int, default=48)
    args = ap.parse_args()
    pipe = pipeline.VideoPipeline.from_pretrained(args.model)
    items = task_items(1)[: args.limit]
    lines = [f"replacement on {args.model or 'the default model'}: --task {args.task}, {len(items)} clips"]
    lines += score_variants(pipe, args.task, items,
                            [(f"{mode:<6}", partial(replacing, pipe=pipe, mode=mode)) for mode in MODES])
    print("\n".join(lines))
    append_results("replacement.txt", lines)


if __name__ == "__main__":
    main()
