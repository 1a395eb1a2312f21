"""Prompt -> text embedding -> sampler -> frames, in the style of diffusers pipelines.

    pipe = VideoPipeline.from_pretrained()            # the shipped default model
    video = pipe("a red circle moving right", num_frames=16, generator=torch.Generator().manual_seed(0))
    save_video(video[0], "circle.mp4")

A model directory holds `model.safetensors` and `config.json` (network, diffusion
and sampling defaults). Frames come back as uint8 arrays (N, F, H, W, 3).
"""

import json
from pathlib import Path

import numpy as np
import torch

from .config import DiffusionConfig, SampleConfig, from_dict, to_dict
from .diffusion.denoiser import Denoiser
from .diffusion.guidance import cfg_denoiser
from .diffusion.samplers import get_sampler
from .diffusion.schedules import Schedule, sampling_times
from .errors import VidiffError
from .models.unet import UNetConfig, VideoUNet
from .text.encoders import TextEncoder
from .training.checkpoint import CheckpointError, load_weights

DEFAULT_MODEL_DIR = Path(__file__).parent / "weights" / "default"


def to_uint8(x):
    """(B, C, F, H, W) in [-1, 1] -> (B, F, H, W, C) uint8."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


class VideoPipeline:
    def __init__(self, net: VideoUNet, diffusion: DiffusionConfig, sample: SampleConfig,
                 frames=16, size=32, text_encoder: TextEncoder | str | None = None):
        self.net = net.eval()
        self.diffusion, self.sample_defaults = diffusion, sample
        self.frames, self.size = frames, size
        self.schedule = Schedule(diffusion.schedule, diffusion.shift)
        self.denoiser = Denoiser(net, self.schedule, diffusion.objective)
        self.text = text_encoder if isinstance(text_encoder, TextEncoder) else TextEncoder(text_encoder or None)
        self.text_encoder_path = "" if text_encoder is None or isinstance(text_encoder, TextEncoder) else text_encoder

    # ---- loading and saving ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path=None, text_encoder=None):
        path = Path(path) if path else DEFAULT_MODEL_DIR
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise CheckpointError(f"not a vidiff model directory (no config.json): {path}")
        try:
            cfg = json.loads(cfg_path.read_text())
            net = VideoUNet(from_dict(UNetConfig, cfg["model"], "model."))
            diffusion = from_dict(DiffusionConfig, cfg["diffusion"], "diffusion.")
            sample = from_dict(SampleConfig, cfg["sample"], "sample.")
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"bad config.json in {path}: {e}") from None
        load_weights(net, path / "model.safetensors")
        encoder = text_encoder or cfg.get("text_encoder") or None
        return cls(net.float(), diffusion, sample, cfg.get("frames", 16), cfg.get("size", 32), encoder)

    def config_dict(self):
        return {"model": to_dict(self.net.cfg), "diffusion": to_dict(self.diffusion),
                "sample": to_dict(self.sample_defaults), "frames": self.frames, "size": self.size,
                "text_encoder": self.text_encoder_path}

    def save_pretrained(self, path, dtype=torch.float32):
        """Write model.safetensors + config.json (atomically, as a folder rename)."""
        from .training.checkpoint import atomic_dir, save_json, save_tensors

        def write(tmp):
            save_tensors({k: v.to(dtype) for k, v in self.net.state_dict().items()}, tmp / "model.safetensors")
            save_json(self.config_dict(), tmp / "config.json")

        atomic_dir(Path(path), write)

    # ---- sampling ----------------------------------------------------------------------------
    def _check_size(self, frames, height, width):
        multiple = self.net.size_multiple
        if height % multiple or width % multiple or height <= 0 or width <= 0:
            raise VidiffError(f"this model needs height and width that are positive multiples of {multiple}, "
                             f"got {height}x{width}")
        if frames < 1:
            raise VidiffError(f"frames must be at least 1, got {frames}")

    @torch.no_grad()
    def __call__(self, prompt, num_frames=None, height=None, width=None, num_inference_steps=None,
                 guidance_scale=None, sampler=None, generator=None, num_videos_per_prompt=1,
                 progress=False):
        """Sample videos; returns uint8 (N, F, H, W, 3) with N = len(prompts) * num_videos_per_prompt."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        frames = num_frames or self.frames
        height, width = height or self.size, width or self.size
        self._check_size(frames, height, width)
        steps = num_inference_steps or self.sample_defaults.steps
        scale = self.sample_defaults.guidance if guidance_scale is None else guidance_scale
        sample_fn = get_sampler(sampler or self.sample_defaults.sampler)
        if steps < 1:
            raise VidiffError(f"steps must be at least 1, got {steps}")

        cond = self.text(prompts)
        uncond = self.text([""] * len(prompts))
        # Pad both to one token length so they batch together under guidance.
        length = max(cond["text"].shape[1], uncond["text"].shape[1])
        cond, uncond = _pad_text(cond, length), _pad_text(uncond, length)
        denoise = cfg_denoiser(self.denoiser, cond, uncond, scale)
        x = torch.randn((len(prompts), 3, frames, height, width), generator=generator)
        x = sample_fn(denoise, x, sampling_times(steps), self.schedule, generator=generator, progress=progress)
        return to_uint8(x)


def _pad_text(cond, length):
    pad = length - cond["text"].shape[1]
    if pad == 0:
        return cond
    return {"text": torch.nn.functional.pad(cond["text"], (0, 0, 0, pad)),
            "text_mask": torch.nn.functional.pad(cond["text_mask"], (0, pad)),
            "pooled": cond["pooled"]}


def video_to_tensor(video: np.ndarray):
    """uint8 (F, H, W, 3) or (N, F, H, W, 3) -> float (N, 3, F, H, W) in [-1, 1]."""
    v = torch.from_numpy(np.asarray(video))
    if v.ndim == 4:
        v = v[None]
    return v.permute(0, 4, 1, 2, 3).float() / 127.5 - 1
