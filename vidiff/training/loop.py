"""The training loop: one flat function, phases numbered.

Determinism: the data stream is indexed (step k's batch is a function of (seed, k),
data/sources.py) and every step draws its noise from a generator seeded by
(seed, step), so a resumed run sees exactly what an uninterrupted one would, and
N processes under torchrun (each taking its slice of the batch) see what one does.

Reliability: checkpoints are atomic folders; SIGINT / SIGTERM save one before the
run exits; a step whose loss or gradient is not finite is skipped and counted, and
`optim.max_bad_steps` of them in a row stop the run with the last good weights saved.
"""

import json
import math
import signal
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from ..config import ConfigError, TrainConfig, to_dict
from ..data.captions import canonical
from ..data.masks import sample_frame_mask
from ..data.sources import StepBatches, step_loader as data_loader
from ..diffusion.denoiser import Denoiser
from ..diffusion.noise import video_noise
from ..diffusion.schedules import Schedule
from ..diffusion.timesteps import sample_t
from ..models.unet import VideoUNet
from ..text.encoders import TextEncoder
from ..errors import VidiffError
from . import distributed
from .checkpoint import (CheckpointError, atomic_dir, list_checkpoints, load_weights, prune_checkpoints,
                         save_json, save_tensors)
from .ema import EMA

SELF_COND_SHARE = 0.5   # clips trained with their own x0 guess as input (Chen et al. 2022 use half)

PREVIEW_PROMPTS = [canonical("red", "circle", "right"), canonical("blue", "square", "down"),
                   canonical("green", "triangle", "up-left"), canonical("yellow", "circle", "down-right")]


def learning_rate(step, cfg):
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = min((step - o.warmup_steps) / max(o.steps - o.warmup_steps, 1), 1.0)
    return o.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def step_generator(seed, step):
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def freeze(net, trainable):
    """Leave only parameters whose names start with one of `trainable` to train ([]: all of them)."""
    if not trainable:
        return
    prefixes = tuple(trainable)
    if not any(n.startswith(prefixes) for n, _ in net.named_parameters()):
        parts = sorted({n.split(".")[0] for n, _ in net.named_parameters()})
        raise ConfigError(f"optim.trainable = {list(trainable)} names no parameter of this model "
                          f"(its top-level parts: {', '.join(parts)})")
    for n, p in net.named_parameters():
        p.requires_grad_(n.startswith(prefixes))


def export_model(run_dir, ema_net, cfg: TrainConfig, text_encoder):
    """The EMA weights as a loadable model directory: run_dir/model."""
    from ..pipeline import VideoPipeline

    pipe = VideoPipeline.from_train_config(ema_net, cfg, text_encoder)
    pipe.save_pretrained(Path(run_dir) / "model")
    return pipe


class TrainingStopped(VidiffError, RuntimeError):
    """Training ended early on purpose: a signal, or too many non-finite steps in a row."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class StopSignals:
    """SIGINT / SIGTERM set a flag instead of killing the process, so the loop can save first."""

    def __init__(self):
        self.received = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def train(cfg: TrainConfig, resume=False, max_steps=None, progress=True):
    """Train (or resume) a run in cfg.out_dir; returns the list of logged losses.

    `max_steps` stops early (used by tests and time-boxed runs) without changing the schedule.
    Under torchrun every process calls this; process 0 writes logs and checkpoints.
    """
    ctx = distributed.setup(cfg.device, cfg.optim.parallel)
    try:
        with StopSignals() as signals, torch.enable_grad():   # callers may have turned grad off
            return _train(cfg, ctx, signals, resume, max_steps, progress)
    finally:
        distributed.cleanup(ctx)


def _train(cfg, ctx, signals, resume, max_steps, progress):
    B, accum = cfg.optim.batch_size, cfg.optim.grad_accum
    if accum < 1 or cfg.optim.max_bad_steps < 1:
        raise ConfigError("optim.grad_accum and optim.max_bad_steps must be at least 1")
    if B % (ctx.world * accum):
        raise ConfigError(f"optim.batch_size={B} must divide by processes x optim.grad_accum "
                          f"= {ctx.world} x {accum}")
    if cfg.data.known_frames > 0 and not cfg.model.frame_conditioning:
        raise ConfigError("data.known_frames needs model.frame_conditioning = true")
    for name in ("known_half", "known_stride4"):
        share = getattr(cfg.data, name)
        if not 0 <= share <= 1 or (share > 0 and cfg.data.known_frames == 0):
            raise ConfigError(f"data.{name} is a share (0-1) of the clips with known frames: "
                              "it needs data.known_frames > 0")
    if cfg.data.known_half + cfg.data.known_stride4 > 1:
        raise ConfigError("data.known_half + data.known_stride4 are shares of the same clips: at most 1 together")
    if not 0 <= cfg.data.known_prefix < cfg.data.frames:
        raise ConfigError(f"data.known_prefix = {cfg.data.known_prefix} must be 0 (half of each clip) or "
                          f"fewer frames than data.frames = {cfg.data.frames}, so every clip has a frame to make")
    if not cfg.data.known_loss and cfg.data.known_frames == 0:
        raise ConfigError("data.known_loss = false leaves given frames out of the loss: "
                          "it needs data.known_frames > 0")
    longest = max(cfg.data.frames, cfg.data.long_frames if cfg.data.long_ratio > 0 else 0)
    if cfg.model.stack_levels and longest > cfg.model.max_frames:
        raise ConfigError(f"clips of {longest} frames (data.frames, data.long_frames) are more than "
                          f"model.max_frames = {cfg.model.max_frames}, the frame slots of the stacked-frame layers")
    for name in ("frames", "long_frames") if cfg.data.long_ratio > 0 else ("frames",):
        n = getattr(cfg.data, name)
        if n > 1 and n % cfg.model.frame_multiple:
            raise ConfigError(f"data.{name} = {n} must divide by {cfg.model.frame_multiple}: "
                              f"model.time_levels = {cfg.model.time_levels} halve the frames that many times")
    run_dir = Path(cfg.out_dir)
    ckpts = list_checkpoints(run_dir)
    if ckpts and not resume:
        raise CheckpointError(f"{run_dir} already holds checkpoints; pass --resume to continue it "
                              "or choose another out_dir")
    distributed.barrier(ctx)              # nobody creates run_dir before everyone has looked
    torch.manual_seed(cfg.seed)

    # 1. Model (warm-started or resumed) and its EMA, loaded before any wrapping; optimiser.
    net = VideoUNet(cfg.model)
    last = ckpts[-1] if resume and ckpts else None
    if cfg.init_from and last is None:
        new = load_weights(net, cfg.init_from, allow_missing=True)
        if ctx.main:
            print(f"initialised from {cfg.init_from}; {len(new)} new tensors" + (f", e.g. {new[0]}" if new else ""))
    if last is not None:
        load_weights(net, last / "model.safetensors")
    freeze(net, cfg.optim.trainable)
    if ctx.main and cfg.optim.trainable:
        print(f"training {sum(p.numel() for p in net.parameters() if p.requires_grad):,} of "
              f"{sum(p.numel() for p in net.parameters()):,} parameters ({', '.join(cfg.optim.trainable)})")
    ema = EMA(net, cfg.optim.ema_decay)
    if last is not None:
        load_weights(ema.model, last / "ema.safetensors")
    net.to(ctx.device)
    ema.model.to(ctx.device)
    net.grad_checkpointing = cfg.optim.grad_checkpointing
    model = distributed.wrap(net, ctx)
    if ctx.mode == "fsdp":
        distributed.wrap(ema.model, ctx)  # sharded like the weights it follows
    schedule = Schedule(cfg.diffusion.schedule, cfg.diffusion.shift)
    # torch.compile wraps the training module only; weights and checkpoints keep their names.
    denoiser = Denoiser(torch.compile(model) if cfg.optim.compile else model, schedule,
                        cfg.diffusion.objective, cfg.diffusion.min_snr_gamma or None)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr,
                            weight_decay=cfg.optim.weight_decay, betas=(0.9, 0.99))
    text = TextEncoder(cfg.text_encoder or None)
    data = StepBatches(cfg.data, B, ctx.rank, ctx.world)
    for kind, name, share in (("images", "image_batch", cfg.data.image_ratio),
                              ("long", "long_batch", cfg.data.long_ratio)):
        if share > 0 and data.sizes[kind] % (ctx.world * accum):
            raise ConfigError(f"data.{name}={data.sizes[kind]} must divide by processes x optim.grad_accum "
                              f"= {ctx.world} x {accum}")

    def report_data(only_if_skipped=False):
        # Folders: what was used, what skipped and why; one line per stream, named, as one
        # folder may serve both clip lengths.
        streams = ((data.videos, f"{cfg.data.frames}-frame clips"),
                   (data.long, f"{cfg.data.long_frames}-frame clips"), (data.images, "pictures"))
        for source, what in streams:
            if ctx.main and hasattr(source, "summary") and (source.skipped or not only_if_skipped):
                print(f"data {source.root} ({what}): {source.summary()}")

    report_data()
    log_path = run_dir / "log.jsonl"
    step, skipped, seen, elapsed_before = 0, 0, {"clips": 0, "images": 0}, 0.0
    if last is not None:
        state = json.loads((last / "state.json").read_text())
        distributed.load_optimizer_state(model, opt, load_file(str(last / "optim.safetensors")),
                                         state["param_groups"])
        step, ema.updates, skipped = state["step"], state["ema_updates"], state.get("skipped_steps", 0)
        seen = state.get("seen", {"clips": step * B, "images": 0})
        elapsed_before = state.get("elapsed_s", 0.0)     # training time before this process, for the log
        if ctx.main:
            truncate_log(log_path, step)   # a killed run may have logged past its last checkpoint
            print(f"resumed from {last} at step {step}")
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_json(to_dict(cfg), run_dir / "config.json")

    def elapsed():
        return elapsed_before + time.time() - t_start

    def checkpoint(at_step, export=True):
        save_checkpoint(run_dir, at_step, model, ema, opt, cfg, ctx,
                        {"skipped_steps": skipped, "seen": seen, "elapsed_s": elapsed()}, export=export, text=text)

    n_params = sum(p.numel() for p in net.parameters()) * (ctx.world if ctx.mode == "fsdp" else 1)
    total = min(cfg.optim.steps, max_steps) if max_steps else cfg.optim.steps
    losses, bad_in_a_row = [], 0
    bar = tqdm(total=total, initial=step, disable=not (progress and ctx.main),
               desc=f"train {n_params / 1e6:.1f}M", dynamic_ncols=True)
    t_start, clips_since, t_since = time.time(), 0, time.time()
    batches = data_loader(data, step, total, cfg.data.workers)
    while step < total:
        # 2. This process's slice of the global batch (clips, longer clips or pictures). Times,
        #    noise and caption dropout are drawn for the whole batch from (seed, step), so any
        #    process count sees the same.
        x0, captions, kind = next(batches)
        Bs, image_step = data.sizes[kind], kind == "images"
        b, Fs = Bs // ctx.world, x0.shape[2]
        micro = b // accum
        g = step_generator(cfg.seed, step)
        drop = torch.rand(Bs, generator=g) < cfg.data.caption_dropout
        t_all = sample_t(Bs, cfg.diffusion.time_sampling, cfg.diffusion.time_mean, cfg.diffusion.time_std,
                         generator=g)
        noise_all = video_noise((Bs, cfg.model.in_channels, Fs, cfg.data.size, cfg.data.size),
                                cfg.diffusion.shared_noise, generator=g)
        known_all = sample_frame_mask(Bs, Fs, cfg.data.known_frames, g, cfg.data.known_half,
                                      cfg.data.known_stride4, cfg.data.known_prefix) \
            if cfg.model.frame_conditioning and not image_step else None
        # Self-conditioning: half the clips get the network's own guess (Chen et al. 2022); drawn
        # last, so a run without it draws what it drew before.
        self_cond_all = torch.rand(Bs, generator=g) < SELF_COND_SHARE if cfg.model.self_condition else None
        lo = ctx.rank * b
        captions = ["" if d else c for c, d in zip(captions, drop[lo:lo + b].tolist())]

        # 3. Forward and backward per micro-batch, then clip, step (unless non-finite), EMA.
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for m in range(accum):
            s = slice(m * micro, (m + 1) * micro)
            cond = {k: v.to(ctx.device) for k, v in text(captions[s]).items()}
            if known_all is not None:
                cond.update(frames=x0[s].to(ctx.device), frame_mask=known_all[lo:lo + b][s].to(ctx.device))
            with distributed.no_sync(model, ctx, sync=m == accum - 1), attention_kernel(cfg.optim.attention), \
                    torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=cfg.optim.bf16):
                loss = denoiser.loss(x0[s].to(ctx.device), t_all[lo:lo + b][s].to(ctx.device),
                                     noise_all[lo:lo + b][s].to(ctx.device),
                                     self_cond=None if self_cond_all is None else self_cond_all[lo:lo + b][s],
                                     frame_weight=None if known_all is None or cfg.data.known_loss
                                     else 1 - cond["frame_mask"], **cond).mean() / accum
                loss.backward()
            loss_sum += loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        loss_sum, stop = distributed.all_sum([loss_sum, float(signals.received is not None)], ctx)
        loss_value = loss_sum / ctx.world
        finite = math.isfinite(loss_value) and bool(torch.isfinite(grad_norm))
        if finite:
            opt.step()
            ema.update(net)
            bad_in_a_row = 0
        else:
            skipped += 1
            bad_in_a_row += 1
        step += 1
        clips_since += Bs
        seen["images" if image_step else "clips"] += Bs
        losses.append(loss_value)

        # 4. Log, checkpoint, preview; stop cleanly on a signal or a run of non-finite steps.
        if ctx.main and (step % cfg.log_every == 0 or step == total):
            rate = clips_since / (time.time() - t_since)
            recent = [v for v in losses[-cfg.log_every:] if math.isfinite(v)]
            mean_loss = float(np.mean(recent)) if recent else float("nan")
            bar.set_postfix(loss=f"{mean_loss:.4f}", clips_s=f"{rate:.1f}", **({"skipped": skipped} if skipped else {}))
            with open(log_path, "a") as f:
                f.write(json.dumps({"step": step, "loss": mean_loss, "lr": learning_rate(step - 1, cfg),
                                    "clips_per_s": rate, "clips_seen": seen["clips"],
                                    "images_seen": seen["images"], "skipped_steps": skipped,
                                    "elapsed_s": elapsed()}) + "\n")
            clips_since, t_since = 0, time.time()
        bar.update(1)
        if bad_in_a_row >= cfg.optim.max_bad_steps:
            # Skipped steps left the weights alone: this checkpoint holds the last good ones.
            checkpoint(step, export=False)
            bar.close()
            raise TrainingStopped(f"{bad_in_a_row} steps in a row had a non-finite loss or gradient "
                                  f"(step {step}); the weights from before are saved in "
                                  f"{run_dir / 'checkpoints'}; lower optim.lr or check the data", 3)
        if stop:
            checkpoint(step)
            bar.close()
            name = "SIGINT" if signals.received in (None, signal.SIGINT) else "SIGTERM"
            raise TrainingStopped(f"stopped by {name} at step {step}; checkpoint saved in "
                                  f"{run_dir / 'checkpoints'}; continue with --resume",
                                  130 if name == "SIGINT" else 143)
        if step % cfg.save_every == 0 or step == total:
            checkpoint(step)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == total):
            ema_net = plain_ema(ema.model, cfg, ctx)
            if ctx.main:
                write_preview(run_dir, step, ema_net, cfg, text)
            distributed.barrier(ctx)
    bar.close()
    if skipped and ctx.main:
        print(f"{skipped} steps skipped for a non-finite loss or gradient")
    report_data(only_if_skipped=True)     # files that broke mid-run included
    return losses


def attention_kernel(kind):
    """Pin scaled_dot_product_attention to its math kernel, or leave it free to pick a fused one."""
    return sdpa_kernel(SDPBackend.MATH) if kind == "math" else nullcontext()


def truncate_log(log_path, step):
    if log_path.is_file():
        lines = [line for line in log_path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["step"] <= step]
        log_path.write_text("".join(line + "\n" for line in kept))


def plain_ema(ema_model, cfg, ctx, tensors=None):
    """The EMA weights as an ordinary module on process 0 (gathered from shards under FSDP,
    unless the caller already holds them as `tensors`)."""
    if ctx.mode != "fsdp" or ctx.world == 1:
        return ema_model
    if tensors is None:
        tensors = distributed.full_state(ema_model)      # collective: every process calls it
    if not ctx.main:
        return None
    net = VideoUNet(cfg.model)
    net.load_state_dict(tensors)
    return net.eval()


def save_checkpoint(run_dir, step, model, ema, opt, cfg, ctx, extra, export=True, text=None):
    # Gathering is collective; only process 0 writes.
    weights, ema_weights = distributed.full_state(model), distributed.full_state(ema.model)
    tensors, groups = distributed.full_optimizer_state(model, opt)
    if ctx.main:
        def write(tmp):
            save_tensors(weights, tmp / "model.safetensors")
            save_tensors(ema_weights, tmp / "ema.safetensors")
            save_tensors(tensors, tmp / "optim.safetensors")
            save_json({"step": step, "ema_updates": ema.updates, "param_groups": groups, **extra},
                      tmp / "state.json")

        atomic_dir(Path(run_dir) / "checkpoints" / f"step_{step:07d}", write)
        prune_checkpoints(run_dir, cfg.keep_checkpoints)
        if export:
            export_model(run_dir, plain_ema(ema.model, cfg, ctx, ema_weights), cfg, text)
    distributed.barrier(ctx)


def write_preview(run_dir, step, ema_net, cfg, text):
    from ..io.video import save_video
    from ..pipeline import VideoPipeline

    pipe = VideoPipeline.from_train_config(ema_net, cfg, text)
    video = pipe(PREVIEW_PROMPTS, generator=torch.Generator().manual_seed(0))   # (N, F, H, W, 3)
    grid = np.concatenate(list(video), axis=2)                                  # (F, H, N W, 3)
    save_video(grid, Path(run_dir) / "samples" / f"step_{step:07d}.gif", scale=4)
