"""At which noise level does a shape stop being steady? (SDEdit on true clips)

    python benchmarks/renoise.py [MODEL_DIR]

Takes 16 true shapes-world clips per shape, noises them to time t0 (x = alpha x0 + sigma eps,
the noise half shared across frames as in training) and denoises them back to t = 0 with DDPM on
the model's grid of 20 steps, with guidance 1 and 3. A perfect denoiser returns clips as steady
as the true ones at every t0; the t0 where a shape's steady count falls is where the model's
denoising breaks it. Output appended to benchmarks/results/renoise.txt.
"""

import sys
from functools import partial

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.data.shapes import SHAPES, ShapesWorld
from vidiff.diffusion.guidance import cfg_denoiser
from vidiff.diffusion.noise import video_noise
from vidiff.diffusion.samplers import sample_ddpm
from vidiff.diffusion.schedules import sampling_times
from vidiff.eval.shapes_metric import score_clip
from vidiff.pipeline import VideoPipeline, to_uint8, video_to_tensor

from _results import append_results

T0S = (0.1, 0.2, 0.35, 0.5)


def conditions(pipe, x0, prompts):
    """The prompts' and the empty prompt's denoiser inputs for clips x0 (B, C, F, H, W), no frame given."""
    cond, uncond = pipe._text(prompts)
    if pipe.net.cfg.frame_conditioning:
        none = {"frames": torch.zeros_like(x0), "frame_mask": torch.zeros(*x0.shape[:1], x0.shape[2])}
        cond, uncond = {**cond, **none}, {**uncond, **none}
    return cond, uncond


def renoise(pipe, x0, cond, uncond, t0, scale, seed=0):
    """Noise x0 (B, C, F, H, W) to t0 and sample back to 0; uint8 (B, F, H, W, 3)."""
    denoise = cfg_denoiser(pipe.denoiser, cond, uncond, scale)
    noise = partial(video_noise, shared=pipe.diffusion.shared_noise)
    g = torch.Generator().manual_seed(seed)
    ts = sampling_times(20)
    ts = ts[ts <= t0 + 1e-9]
    alpha, sigma = pipe.schedule.alpha_sigma(ts[:1])
    x = alpha.float() * x0 + sigma.float() * noise(x0.shape, generator=g)
    return to_uint8(sample_ddpm(denoise, x, ts, pipe.schedule, generator=g, noise=noise).clamp(-1, 1))


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else None
    pipe = VideoPipeline.from_pretrained(model)
    world = ShapesWorld(seed=4242, num_frames=pipe.frames, height=pipe.size, width=pipe.size)
    lines = [f"model: {model or 'default'}; 16 true clips per shape noised to t0 and denoised (DDPM, 20-step grid); "
             f"steady clips of 16"]
    for shape in SHAPES:
        clips = [world.clip(i, shape=shape) for i in range(16)]
        x0 = video_to_tensor(np.stack([c.video for c in clips]))
        cond, uncond = conditions(pipe, x0, [canonical(c.colour, c.shape, c.direction) for c in clips])
        true = sum(score_clip(c.video, c.colour, c.shape, c.direction).steady for c in clips)
        for scale in (1.0, 3.0):
            counts = []
            for t0 in T0S:
                videos = renoise(pipe, x0, cond, uncond, t0, scale)
                counts.append(sum(score_clip(v, c.colour, c.shape, c.direction).steady for v, c in zip(videos, clips)))
            lines.append(f"{shape:9s} guidance {scale:.0f}  true {true:2d}  " +
                         "  ".join(f"t0={t0}: {n:2d}" for t0, n in zip(T0S, counts)))
            print(lines[-1], flush=True)
    append_results("renoise.txt", lines)


if __name__ == "__main__":
    main()
