"""Typed configs: TOML files plus dotted command-line overrides (`optim.lr=3e-4`).

Every field has a default and a comment; choices are Literals checked on load,
and a wrong key or value names what is allowed.
"""

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from typing import Literal

from .errors import VidiffError
from .models.unet import UNetConfig


class ConfigError(VidiffError, ValueError):
    """A user-facing configuration mistake."""


@dataclass
class DiffusionConfig:
    schedule: Literal["cosine", "linear", "flow"] = "cosine"
    shift: float = 2.0                    # noise shift: a clip is redundant like a larger image
    objective: Literal["eps", "v", "x0", "flow"] = "v"
    min_snr_gamma: float = 5.0            # 0 turns min-SNR weighting off
    time_sampling: Literal["uniform", "logit_normal"] = "uniform"
    time_mean: float = 0.0                # logit-normal t = sigmoid(N(mean, std^2)); mean < 0 favours low noise
    time_std: float = 1.0
    shared_noise: float = 0.0             # share of the noise variance common to a clip's frames (PYoCo)


@dataclass
class DataConfig:
    frames: int = 16                      # clip length F
    size: int = 32                        # square frames, H = W
    seed: int = 0                         # seeds the endless training stream
    caption_dropout: float = 0.1          # prompts replaced by "" so guidance has an unconditional model
    holdout: list = field(default_factory=list)  # [colour, shape, direction] triples never trained on
    known_frames: float = 0.0             # fraction of clips shown some frames as given (model.frame_conditioning)
    known_half: float = 0.0               # of those, the share given exactly the first half (data/masks.py)
    known_prefix: int = 0                 # frames those clips are given; 0 = half of each (8 of 16, 12 of 24)
    known_stride4: float = 0.0            # and the share given exactly every 4th frame (x4 interpolation)
    known_loss: bool = True               # False: given frames leave the loss, only frames to make count (FDM)
    num_clips: int = 0                    # > 0: only this many distinct shapes-world clips (data efficiency)
    wording: Literal["train", "wide"] = "train"   # shapes-world caption vocabulary (data/captions.py)
    # Real videos instead of the shapes world: every .mp4 .webm .mkv .mov .avi .gif under a folder.
    videos: str = ""                      # the folder; "" = the shapes world
    captions: str = ""                    # a .csv / .jsonl manifest (path, caption); "" = clip.txt beside clip.mp4
    fps: float = 0.0                      # sample clips at this frame rate; 0 = every `stride`-th frame
    stride: int = 1
    crop: Literal["center", "random"] = "center"   # after resizing the short side to `size`
    cache_dir: str = ""                   # decoded clips kept here across epochs and runs; "" = in memory
    workers: int = 0                      # DataLoader processes making batches ahead of the model
    # Joint image-video training: a share of steps trains on pictures as one-frame clips.
    images: str = ""                      # "shapes" (stills of the shapes world) or a folder of pictures
    image_captions: str = ""              # manifest for the pictures; "" = sidecar .txt files
    image_ratio: float = 0.0              # fraction of steps on a batch of pictures
    image_batch: int = 0                  # pictures per such step; 0 = batch_size * frames (same pixels)
    num_images: int = 0                   # > 0: only this many distinct shapes stills
    # Longer clips in a share of steps: more of each path than one window shows.
    long_frames: int = 0                  # their length (a multiple of the model's frame_multiple)
    long_ratio: float = 0.0               # fraction of steps on a batch of them
    long_batch: int = 0                   # clips per such step; 0 = batch_size * frames / long_frames


@dataclass
class OptimConfig:
    batch_size: int = 12
    lr: float = 4e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    steps: int = 20000                    # total optimiser steps
    grad_clip: float = 1.0
    grad_accum: int = 1                   # micro-batches per step; batch_size stays the global batch
    max_bad_steps: int = 10               # non-finite steps in a row (each skipped) before the run stops
    parallel: Literal["ddp", "fsdp"] = "ddp"   # under torchrun: replicate (DDP) or shard (FSDP2) the model
    ema_decay: float = 0.999              # upper bound; warmed up as (1 + n) / (10 + n)
    trainable: list = field(default_factory=list)  # train only parameters named with these prefixes
                                          # (e.g. ["frame_adapter"]); [] = all. The rest stay frozen.
    bf16: bool = False                    # autocast the network to bfloat16 (fast only with AVX-512 BF16 / AMX)
    grad_checkpointing: bool = False      # recompute each U-Net stage in backward: less memory, more compute
    compile: bool = False                 # torch.compile the network (no gain measured on a 2-core CPU)
    attention: Literal["fused", "math"] = "fused"   # SDPA's fused kernels, or its reference (math) one


@dataclass
class SampleConfig:
    steps: int = 20
    sampler: Literal["ddim", "ddpm", "dpmpp_2m", "dpmpp_2m_sde", "euler", "heun"] = "dpmpp_2m"
    guidance: float = 3.0
    guidance_with_frames: float | None = None   # prompt guidance where frames are given; None: `guidance`
    guidance_min_t: float = 0.0           # no guidance at t <= this (guidance interval)
    frame_guidance: float = 1.0           # guidance on given frames (image-to-video, extend, ...); 1 = none
    time_power: float = 1.0               # time grid t_i = (i / steps)^p: 1 even, < 1 more steps at high noise
    eta: float = 1.0                      # ddpm's fresh noise per step, times the posterior's (capped at all)
    candidates: int = 1                   # where frames are given: K samples per window, the medoid kept
    consensus_blur: float = 0.0           # the medoid's distance on frames blurred by this std (px); 0 = none
    window: int = 0                       # frames made at once (longer clips go in windows); 0 = `frames`


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    text_encoder: str = ""                # a local Hugging Face model directory; "" = bundled MiniLM
    device: Literal["auto", "cpu", "cuda"] = "auto"   # auto: one GPU per process where there are GPUs
    init_from: str = ""                   # start from these weights (a .safetensors file); layers it lacks stay new
    model: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    log_every: int = 20
    sample_every: int = 1000              # steps between preview videos
    save_every: int = 250                 # steps between checkpoints
    keep_checkpoints: int = 3
    seed: int = 0                         # seeds initialisation and noise


def _coerce(value, tp, where):
    origin = typing.get_origin(tp)
    if origin is types.UnionType and type(None) in typing.get_args(tp):   # `float | None`
        inner, = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, inner, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where} must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (tp is int and value != int(value)):
            raise ConfigError(f"{where} must be a number ({tp.__name__}), got {value!r}")
        return tp(value)
    if tp is str:
        return str(value)
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return value
    return value


def from_dict(cls, data, prefix=""):
    """Build dataclass `cls` from nested dicts, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a table, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{sorted(unknown)[0]}; "
                          f"allowed: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}")
    return cls(**kwargs)


def parse_override(text):
    """'optim.lr=3e-4' -> (['optim', 'lr'], 3e-4); values are TOML, bare words are strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(path=None, overrides=(), cls=TrainConfig):
    data = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f) if str(path).endswith(".toml") else json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e}") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot parse config {path}: {e}") from None
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for i, k in enumerate(keys[:-1]):
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(keys[:i + 1])} is a value, not a table")
        node[keys[-1]] = value
    return from_dict(cls, data)


def to_dict(cfg):
    return dataclasses.asdict(cfg)
