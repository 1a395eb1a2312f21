"""The training loop: one flat function, phases numbered.

Determinism: the data stream is indexed (batch k is clips k*B ... k*B+B-1 of the
seeded shapes world) and every step draws its noise from a generator seeded by
(seed, step), so a resumed run sees exactly what an uninterrupted one would.
"""

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from ..config import TrainConfig, to_dict
from ..data.captions import canonical
from ..data.shapes import ShapesWorld
from ..diffusion.denoiser import Denoiser
from ..diffusion.schedules import Schedule
from ..diffusion.timesteps import sample_t
from ..models.unet import VideoUNet
from ..text.encoders import TextEncoder
from .checkpoint import (CheckpointError, atomic_dir, list_checkpoints, load_optimizer, load_weights,
                         optimizer_tensors, prune_checkpoints, save_json, save_tensors)
from .ema import EMA

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


def export_model(run_dir, ema_net, cfg: TrainConfig, text_encoder):
    """The EMA weights as a loadable model directory: run_dir/model."""
    from ..pipeline import VideoPipeline

    pipe = VideoPipeline(ema_net, cfg.diffusion, cfg.sample, cfg.data.frames, cfg.data.size, text_encoder)
    pipe.text_encoder_path = cfg.text_encoder
    pipe.save_pretrained(Path(run_dir) / "model")
    return pipe


def train(cfg: TrainConfig, resume=False, max_steps=None, progress=True):
    """Train (or resume) a run in cfg.out_dir; returns the list of logged losses.

    `max_steps` stops early (used by tests and time-boxed runs) without changing the schedule.
    """
    run_dir = Path(cfg.out_dir)
    ckpts = list_checkpoints(run_dir)
    if ckpts and not resume:
        raise CheckpointError(f"{run_dir} already holds checkpoints; pass --resume to continue it "
                              "or choose another out_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    # 1. Model (optionally warm-started), parameterisation, EMA, optimiser.
    net = VideoUNet(cfg.model)
    if cfg.init_from and not (resume and ckpts):
        new = load_weights(net, cfg.init_from, allow_missing=True)
        print(f"initialised from {cfg.init_from}; {len(new)} new tensors" + (f", e.g. {new[0]}" if new else ""))
    schedule = Schedule(cfg.diffusion.schedule, cfg.diffusion.shift)
    denoiser = Denoiser(net, schedule, cfg.diffusion.objective, cfg.diffusion.min_snr_gamma or None)
    ema = EMA(net, cfg.optim.ema_decay)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                            betas=(0.9, 0.99))
    text = TextEncoder(cfg.text_encoder or None)
    world = ShapesWorld(cfg.data.seed, cfg.data.frames, cfg.data.size, cfg.data.size,
                        exclude=cfg.data.holdout)
    save_json(to_dict(cfg), run_dir / "config.json")

    # 2. Resume from the newest complete checkpoint.
    step = 0
    if resume and ckpts:
        last = ckpts[-1]
        load_weights(net, last / "model.safetensors")
        load_weights(ema.model, last / "ema.safetensors")
        state = json.loads((last / "state.json").read_text())
        load_optimizer(opt, load_file(str(last / "optim.safetensors")), state["param_groups"])
        step, ema.updates = state["step"], state["ema_updates"]
        print(f"resumed from {last} at step {step}")

    n_params = sum(p.numel() for p in net.parameters())
    total = min(cfg.optim.steps, max_steps) if max_steps else cfg.optim.steps
    log_path = run_dir / "log.jsonl"
    losses = []
    bar = tqdm(total=total, initial=step, disable=not progress, desc=f"train {n_params / 1e6:.1f}M",
               dynamic_ncols=True)
    t_start, clips_since, t_since = time.time(), 0, time.time()
    B = cfg.optim.batch_size
    while step < total:
        # 3. Batch: clips, captions (some dropped to ""), times and noise, all from (seed, step).
        g = step_generator(cfg.seed, step)
        x0, captions = world.batch(step * B, B)
        drop = torch.rand(B, generator=g) < cfg.data.caption_dropout
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        cond = text(captions)
        t = sample_t(B, cfg.diffusion.time_sampling, generator=g)
        noise = torch.randn(x0.shape, generator=g)

        # 4. Forward, backward, clip, step, EMA.
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.optim.bf16):
            loss = denoiser.loss(x0, t, noise, **cond).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"non-finite gradient at step {step}; lower optim.lr")
        opt.step()
        ema.update(net)
        step += 1
        clips_since += B
        losses.append(loss.item())

        # 5. Log, checkpoint, preview.
        if step % cfg.log_every == 0 or step == total:
            rate = clips_since / (time.time() - t_since)
            bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every:]):.4f}", clips_s=f"{rate:.1f}")
            with open(log_path, "a") as f:
                f.write(json.dumps({"step": step, "loss": float(np.mean(losses[-cfg.log_every:])),
                                    "lr": learning_rate(step - 1, cfg), "clips_per_s": rate,
                                    "clips_seen": step * B, "elapsed_s": time.time() - t_start}) + "\n")
            clips_since, t_since = 0, time.time()
        bar.update(1)
        if step % cfg.save_every == 0 or step == total:
            save_checkpoint(run_dir, step, net, ema, opt, cfg)
            export_model(run_dir, ema.model, cfg, text)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == total):
            write_preview(run_dir, step, ema.model, cfg, text)
    bar.close()
    return losses


def save_checkpoint(run_dir, step, net, ema, opt, cfg):
    def write(tmp):
        save_tensors(net.state_dict(), tmp / "model.safetensors")
        save_tensors(ema.model.state_dict(), tmp / "ema.safetensors")
        tensors, groups = optimizer_tensors(opt)
        save_tensors(tensors, tmp / "optim.safetensors")
        save_json({"step": step, "ema_updates": ema.updates, "param_groups": groups}, tmp / "state.json")

    atomic_dir(Path(run_dir) / "checkpoints" / f"step_{step:07d}", write)
    prune_checkpoints(run_dir, cfg.keep_checkpoints)


def write_preview(run_dir, step, ema_net, cfg, text):
    from ..io.video import save_video
    from ..pipeline import VideoPipeline

    pipe = VideoPipeline(ema_net, cfg.diffusion, cfg.sample, cfg.data.frames, cfg.data.size, text)
    video = pipe(PREVIEW_PROMPTS, generator=torch.Generator().manual_seed(0))   # (N, F, H, W, 3)
    grid = np.concatenate(list(video), axis=2)                                  # (F, H, N W, 3)
    save_video(grid, Path(run_dir) / "samples" / f"step_{step:07d}.gif", scale=4)
