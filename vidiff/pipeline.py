"""Prompt -> text embedding -> sampler -> frames, in the style of diffusers pipelines.

    pipe = VideoPipeline.from_pretrained()            # the shipped default model
    video = pipe("a red circle moving right", num_frames=16, generator=torch.Generator().manual_seed(0))
    save_video(video[0], "circle.mp4")
    pipe(prompt, image=first_frame)                   # image-to-video
    pipe.extend(video[0], prompt, num_frames=16)      # continue a clip
    pipe.interpolate(video[0], factor=4)              # new frames between the given ones

A model directory holds `model.safetensors` and `config.json` (network, diffusion
and sampling defaults). Frames come back as uint8 arrays (N, F, H, W, 3).
"""

import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import DataConfig, DiffusionConfig, SampleConfig, from_dict, load_config, to_dict
from .data.sources import holdout as held_out
from .diffusion.consensus import medoid
from .diffusion.denoiser import Denoiser
from .diffusion.guidance import cfg_denoiser, cfg_frames_denoiser
from .diffusion.noise import video_noise
from .diffusion.samplers import get_sampler, sample_ddim
from .diffusion.schedules import Schedule, sampling_times
from .diffusion.self_condition import SelfCondition
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
                 frames=16, size=32, text_encoder: TextEncoder | str | None = None, holdout=()):
        self.net = net.eval()
        # [colour, shape, direction] triples the model never saw in training (data.holdout): eval
        # scores them apart, as a test of composing what was learned.
        self.holdout = [list(h) for h in holdout]
        self.diffusion, self.sample_defaults = diffusion, sample
        self.frames, self.size = frames, size
        self.schedule = Schedule(diffusion.schedule, diffusion.shift)
        self.denoiser = Denoiser(net, self.schedule, diffusion.objective)
        self.text = text_encoder if isinstance(text_encoder, TextEncoder) else TextEncoder(text_encoder or None)
        self.text_encoder_path = "" if text_encoder is None or isinstance(text_encoder, TextEncoder) else text_encoder

    # ---- loading and saving ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path=None, text_encoder=None):
        """A model directory (model.safetensors + config.json; default: the shipped model), or a
        training checkpoint (RUN/checkpoints/step_N, read with `from_checkpoint`)."""
        path = Path(path) if path else DEFAULT_MODEL_DIR
        cfg_path = path / "config.json"
        if not cfg_path.is_file() and (path / "ema.safetensors").is_file():
            return cls.from_checkpoint(path, text_encoder=text_encoder)
        if not cfg_path.is_file():
            raise CheckpointError(f"not a vidiff model directory (no config.json): {path}")
        try:
            cfg = json.loads(cfg_path.read_text())
            net = VideoUNet(from_dict(UNetConfig, cfg["model"], "model."))
            diffusion = from_dict(DiffusionConfig, cfg["diffusion"], "diffusion.")
            sample = from_dict(SampleConfig, cfg["sample"], "sample.")
            holdout = held_out(DataConfig(holdout=cfg.get("holdout", [])))   # the check training uses
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"bad config.json in {path}: {e}") from None
        load_weights(net, path / "model.safetensors")
        encoder = text_encoder or cfg.get("text_encoder") or None
        return cls(net.float(), diffusion, sample, cfg.get("frames", 16), cfg.get("size", 32), encoder, holdout)

    @classmethod
    def from_checkpoint(cls, path, config=None, text_encoder=None):
        """A training checkpoint: `path` is RUN/checkpoints/step_N (its EMA weights are used) or a
        weights file; `config` is the run's config.json, by default RUN/config.json."""
        path = Path(path)
        weights = path if path.suffix == ".safetensors" else path / "ema.safetensors"
        cfg = load_config(config or weights.parent.parent.parent / "config.json")
        net = VideoUNet(cfg.model)
        load_weights(net, weights)
        return cls.from_train_config(net.float(), cfg, text_encoder)

    @classmethod
    def from_train_config(cls, net, cfg, text_encoder=None):
        """A pipeline over `net` with a training config's settings: what a run exports."""
        pipe = cls(net, cfg.diffusion, cfg.sample, cfg.data.frames, cfg.data.size,
                   text_encoder or cfg.text_encoder or None, held_out(cfg.data))
        pipe.text_encoder_path = cfg.text_encoder
        return pipe

    def config_dict(self):
        out = {"model": to_dict(self.net.cfg), "diffusion": to_dict(self.diffusion),
               "sample": to_dict(self.sample_defaults), "frames": self.frames, "size": self.size,
               "text_encoder": self.text_encoder_path}
        if self.holdout:
            out["holdout"] = self.holdout
        return out

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
        cfg = self.net.cfg
        if cfg.stack_levels and not cfg.frame_conditioning and frames > cfg.max_frames:
            raise VidiffError(f"this model makes at most {cfg.max_frames} frames (model.max_frames); longer "
                              "videos are made in windows, which needs a frame-conditioned model")

    def _settings(self, steps, guidance_scale, guidance_min_t, sampler, frame_guidance, candidates):
        d = self.sample_defaults
        steps = steps or d.steps
        if steps < 1:
            raise VidiffError(f"steps must be at least 1, got {steps}")
        scale = d.guidance if guidance_scale is None else guidance_scale
        # Where frames are given they already show the object: full prompt guidance over-draws it
        # (image-to-video's new frames came out 1-2 px larger than the given one at guidance 3).
        scale_frames = scale if d.guidance_with_frames is None else d.guidance_with_frames
        min_t = d.guidance_min_t if guidance_min_t is None else guidance_min_t
        if not 0 <= min_t <= 1:
            raise VidiffError(f"guidance_min_t is a diffusion time in [0, 1], got {min_t}")
        frame_scale = d.frame_guidance if frame_guidance is None else frame_guidance
        if d.time_power <= 0:
            raise VidiffError(f"sample.time_power must be positive, got {d.time_power}")
        if d.eta < 0:
            raise VidiffError(f"sample.eta must be at least 0, got {d.eta}")
        name = sampler or d.sampler
        sample_fn = sampler if callable(sampler) else get_sampler(name)
        if name == "ddpm" and d.eta != 1:                 # DDPM is DDIM at eta = 1
            sample_fn = partial(sample_ddim, eta=d.eta)
        candidates = d.candidates if candidates is None else candidates
        if candidates < 1:
            raise VidiffError(f"candidates must be at least 1, got {candidates}")
        if d.consensus_blur < 0:
            raise VidiffError(f"sample.consensus_blur is a blur in pixels, at least 0, got {d.consensus_blur}")
        if d.window < 0 or d.window % self.net.cfg.frame_multiple or \
                (self.net.cfg.stack_levels and d.window > self.net.cfg.max_frames):
            raise VidiffError(f"sample.window must be 0 (the training length) or a positive multiple of "
                              f"{self.net.cfg.frame_multiple} (at most model.max_frames), got {d.window}")
        return steps, scale, scale_frames, min_t, sample_fn, frame_scale, candidates

    def _text(self, prompts):
        cond = self.text(prompts)
        uncond = self.text([""] * len(prompts))
        # Pad both to one token length so they batch together under guidance.
        length = max(cond["text"].shape[1], uncond["text"].shape[1])
        return _pad_text(cond, length), _pad_text(uncond, length)

    @torch.no_grad()
    def __call__(self, prompt, num_frames=None, height=None, width=None, num_inference_steps=None,
                 guidance_scale=None, sampler=None, generator=None, num_videos_per_prompt=1,
                 image=None, timesteps=None, guidance_min_t=None, frame_guidance=None, candidates=None,
                 progress=False):
        """Sample videos; returns uint8 (N, F, H, W, 3) with N = len(prompts) * num_videos_per_prompt.

        `image` (uint8 (H, W, 3), or one per video) becomes frame 0 (image-to-video). With a
        frame-conditioned model, `num_frames` beyond the training length (or `sample.window`) is
        made window by window, each new window conditioned on the overlap with the last.
        `timesteps` replaces the model's grid of `num_inference_steps` times (`sample.time_power`):
        decreasing times, at most 1, ending at 0.
        `guidance_scale`: prompt guidance (default: the model's); where frames are given (`image`,
        earlier windows) `sample.guidance_with_frames` instead, if the model sets it.
        `guidance_min_t`: no guidance at diffusion times at or below this (default: the model's).
        `frame_guidance`: the guidance scale on given frames (`image`, earlier windows); 1 for none.
        `candidates`: where frames are given, K samples of each window and the most typical kept
        (diffusion/consensus.py; default: the model's `sample.candidates`); K times the sampling.
        `sampler`: a name from diffusion.samplers.SAMPLERS, or a function of the same signature
        (`functools.partial(sample_ddim, eta=0.5)`).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_videos_per_prompt)]
        frames = num_frames or self.frames
        if image is not None:
            image = _as_frames(image, "image", ndim=3)[:, None]              # (N, 1, H, W, 3)
            if image.shape[0] not in (1, len(prompts)):
                raise VidiffError(f"got {image.shape[0]} images for {len(prompts)} videos")
            height, width = image.shape[2:4]
        height, width = height or self.size, width or self.size
        self._check_size(frames, height, width)
        x = torch.zeros(len(prompts), 3, frames, height, width)
        known = torch.zeros(frames, dtype=torch.bool)
        if image is not None:
            x[:, :, :1] = video_to_tensor(image)
            known[0] = True
        return self._generate(x, known, prompts, num_inference_steps, guidance_scale, sampler, generator,
                              progress, timesteps, guidance_min_t, frame_guidance, candidates)

    @torch.no_grad()
    def extend(self, video, prompt, num_frames, num_inference_steps=None, guidance_scale=None, sampler=None,
               generator=None, guidance_min_t=None, frame_guidance=None, candidates=None, progress=False):
        """Continue a clip (uint8 (F, H, W, 3) or (N, F, H, W, 3)) by `num_frames` frames; returns the
        whole clip, the given frames unchanged."""
        video = _as_frames(video, "video", ndim=4)
        if num_frames < 1:
            raise VidiffError(f"frames to add must be at least 1, got {num_frames}")
        n, given = video.shape[:2]
        self._check_size(given + num_frames, *video.shape[2:4])
        x = torch.zeros(n, 3, given + num_frames, *video.shape[2:4])
        x[:, :, :given] = video_to_tensor(video)
        known = torch.arange(given + num_frames) < given
        return self._generate(x, known, _prompts(prompt, n), num_inference_steps, guidance_scale, sampler,
                              generator, progress, guidance_min_t=guidance_min_t,
                              frame_guidance=frame_guidance, candidates=candidates)

    @torch.no_grad()
    def interpolate(self, video, prompt="", factor=2, num_inference_steps=None, guidance_scale=None,
                    sampler=None, generator=None, guidance_min_t=None, frame_guidance=None, candidates=None,
                    progress=False):
        """Temporal super-resolution: factor - 1 new frames between every two given ones;
        returns (N, (F - 1) factor + 1, H, W, 3) with the given frames unchanged."""
        video = _as_frames(video, "video", ndim=4)
        if factor < 2:
            raise VidiffError(f"factor must be at least 2, got {factor}")
        n, given = video.shape[:2]
        if given < 2:
            raise VidiffError(f"interpolation needs at least 2 frames, got {given}")
        total = (given - 1) * factor + 1
        self._check_size(total, *video.shape[2:4])
        x = torch.zeros(n, 3, total, *video.shape[2:4])
        x[:, :, ::factor] = video_to_tensor(video)
        known = torch.arange(total) % factor == 0
        if not prompt and guidance_scale is None:
            guidance_scale = 1.0             # no prompt: nothing to guide towards
        return self._generate(x, known, _prompts(prompt, n), num_inference_steps, guidance_scale, sampler,
                              generator, progress, guidance_min_t=guidance_min_t,
                              frame_guidance=frame_guidance, candidates=candidates)

    def _generate(self, x, known, prompts, steps, guidance_scale, sampler, generator, progress, timesteps=None,
                  guidance_min_t=None, frame_guidance=None, candidates=None):
        """Fill the frames of x (N, C, T, H, W) where `known` (T,) is False, one window of the
        model's length at a time; returns uint8 (N, T, H, W, 3) with known frames as given."""
        steps, prompt_scale, prompt_scale_with_frames, min_t, sample_fn, frame_scale, candidates = self._settings(
            steps, guidance_scale, guidance_min_t, sampler, frame_guidance, candidates)
        times = sampling_times(steps, power=self.sample_defaults.time_power) if timesteps is None \
            else _check_times(timesteps)
        conditioned = self.net.cfg.frame_conditioning
        if known.any() and not conditioned:
            raise VidiffError("this model was trained without frame conditioning (model.frame_conditioning); "
                              "it can only generate from text")
        if known.any() and tuple(x.shape[3:]) != (self.size, self.size):
            raise VidiffError(f"given frames are {x.shape[3]}x{x.shape[4]}; this model works on "
                              f"{self.size}x{self.size} frames (write clips for it with --scale 1)")
        cond, uncond = self._text(prompts)
        length, span = x.shape[2], self.sample_defaults.window or self.frames
        # A space-time U-Net halves the frames: a clip made in one window is padded with frames made,
        # then dropped (longer clips go in windows of `span`, which divides).
        one_window = length > 1 and (not conditioned or length < span)
        pad = (-length) % self.net.cfg.frame_multiple if one_window else 0
        if pad:
            x = torch.cat([x, x.new_zeros(*x.shape[:2], pad, *x.shape[3:])], 2)
            known = torch.cat([known, known.new_zeros(pad)])
        window = span if conditioned else x.shape[2]   # an unconditioned model makes one window
        windows = list(plan_windows(known, window, overlap=window // 2))
        bar = tqdm(windows, desc="windows", disable=not progress or len(windows) < 2, dynamic_ncols=True)
        known, T = known.clone(), x.shape[2]
        for start in bar:
            win = slice(start, min(start + window, T))
            given = {"frames": x[:, :, win], "frame_mask": known[win].float().expand(len(prompts), -1)} \
                if conditioned else {}
            network = SelfCondition(self.denoiser) if self.net.cfg.self_condition else self.denoiser
            has_given = bool(known[win].any())
            scale = prompt_scale_with_frames if has_given else prompt_scale
            # Where frames are given, K samples of the window at once and the medoid kept (consensus.py).
            k = candidates if has_given else 1
            denoise = self._guided(network, *(_repeat(d, k) for d in (cond, uncond, given)), scale, frame_scale,
                                   min_t, has_given)
            noise = partial(video_noise, shared=self.diffusion.shared_noise)
            n, shape = len(prompts), x[:, :, win].shape
            out = sample_fn(denoise, noise((k * n, *shape[1:]), generator=generator), times,
                            self.schedule, generator=generator, noise=noise, progress=progress and len(windows) == 1)
            out = out.unflatten(0, (k, n))                                   # (K, N, C, F, H, W)
            blur = self.sample_defaults.consensus_blur
            out = out[medoid(out[:, :, :, ~known[win]], blur), torch.arange(n)] if k > 1 else out[0]
            new = torch.arange(T)[win][~known[win]]
            x[:, :, new] = out[:, :, ~known[win]].clamp(-1, 1)     # later windows see what the user will
            known[win] = True
        return to_uint8(x[:, :, :length])

    @staticmethod
    def _guided(network, cond, uncond, given, scale, frame_scale, min_t, has_given):
        """The guided denoiser of one window: prompt guidance, and guidance on given frames."""
        if given and frame_scale != 1.0 and has_given:
            # The third prediction sees neither prompt nor frames (training showed it that case).
            nothing = {k: torch.zeros_like(v) for k, v in given.items()}
            return cfg_frames_denoiser(network, {**cond, **given}, {**uncond, **given},
                                       {**uncond, **nothing}, scale, frame_scale, min_t)
        return cfg_denoiser(network, {**cond, **given}, {**uncond, **given}, scale, min_t)


def plan_windows(known, window, overlap):
    """Start frames of the windows that fill every unknown frame, left to right.

    Each window starts `overlap` frames before the first frame still unknown (so it sees
    that much of what is already there) and is moved back where it would run off the end.
    """
    known = known.clone()
    T = len(known)
    while not known.all():
        first = int((~known).nonzero()[0])
        start = max(0, min(first - overlap, T - window))
        yield start
        known[start:start + window] = True


def _check_times(timesteps):
    times = torch.as_tensor(timesteps, dtype=torch.float64).flatten()
    if len(times) < 2 or times[0] > 1 or times[-1] != 0 or (times.diff() >= 0).any():
        raise VidiffError("timesteps must be at least two decreasing times, at most 1, ending at 0")
    return times


def _prompts(prompt, n):
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if len(prompts) not in (1, n):
        raise VidiffError(f"got {len(prompts)} prompts for {n} videos")
    return prompts * n if len(prompts) == 1 else prompts


def _as_frames(array, name, ndim):
    """uint8 frames with a leading batch axis: (N, ...) from (...) or (N, ...)."""
    a = np.asarray(array)
    if a.dtype != np.uint8 or a.shape[-1:] != (3,) or a.ndim not in (ndim, ndim + 1):
        raise VidiffError(f"{name} must be uint8 with shape {'(F, H, W, 3)' if ndim == 4 else '(H, W, 3)'}"
                          f" (or a batch of them), got {a.dtype} {a.shape}")
    return a[None] if a.ndim == ndim else a


def _repeat(cond, k):
    """Keyword tensors for a batch of N -> for K N: the batch tiled K times (K = 1: as they are)."""
    if k == 1:
        return cond
    return {key: v.repeat(k, *[1] * (v.ndim - 1)) for key, v in cond.items()}


def _pad_text(cond, length):
    pad = length - cond["text"].shape[1]
    if pad == 0:
        return cond
    return {"text": torch.nn.functional.pad(cond["text"], (0, 0, 0, pad)),
            "text_mask": torch.nn.functional.pad(cond["text_mask"], (0, pad)),
            "pooled": cond["pooled"]}


def video_to_tensor(video: np.ndarray):
    """uint8 (F, H, W, 3) or (N, F, H, W, 3) -> float (N, 3, F, H, W) in [-1, 1]."""
    v = torch.tensor(np.asarray(video))              # a copy: the caller's frames are never touched
    if v.ndim == 4:
        v = v[None]
    return v.permute(0, 4, 1, 2, 3).float() / 127.5 - 1
