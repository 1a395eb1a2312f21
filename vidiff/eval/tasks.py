"""Scoring the known-frame tasks on true shapes-world clips: image-to-video, continuation,
long video and interpolation.

Each item is a true clip drawn from an evaluation stream (a seed no training config uses).
The model gets only what the task gives a user (the caption and the given frames); the
clip's other frames and its ground truth are seen by the scorer alone.

    i2v     frame 0 + caption -> a clip of the model's length; right = the text-to-video scorer's
            "everything" (colour, shape, direction, steadiness, physics), frame 0 being the given one
    extend  the first half of a clip -> the second half; right = every new centre within
            1.5 px (at 32 px) of the true clip's, bounces included
    long    caption -> 128 frames made in overlapping windows; right = one steady object of the
            asked colour and shape on a physically plausible path; the seam jump (how far the
            centre moves across a window seam, beyond the clip's median step) is reported apart
    interp  every 4th frame of a clip -> the frames between (x4); right = every centre within 1 px
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.captions import canonical
from ..data.shapes import ShapesWorld, all_combinations
from .shapes_metric import detect_frame, fit_centre, score_clip

TASKS = ("i2v", "extend", "long", "interp")
EVAL_SEED = 10_000_019          # the evaluation stream of true clips
EXTEND_TOL, INTERP_TOL = 1.5, 1.0   # px at 32 px
LONG_FRAMES = 128


def centre_errors(video, truth, frames, scale):
    """Distance (px at 32 px) between the object's centre, fitted below the pixel
    (shapes_metric.fit_centre), and the true one, for each of `frames`; inf where it is missing."""
    errs = []
    for f in frames:
        d = detect_frame(video[f], scale)
        errs.append(np.hypot(*(np.asarray(fit_centre(video[f], d.shape)) - truth[f])) / scale if d.found
                    else np.inf)
    return np.array(errs)


def centre_error(video, truth, frames, scale):
    """The largest of centre_errors over `frames`: the task's error for one clip."""
    return float(centre_errors(video, truth, frames, scale).max())


def seam_jump(video, seams, scale):
    """Largest centre step across a window seam minus the clip's median step (px at 32 px)."""
    centres = np.array([detect_frame(f, scale).centre for f in video])           # (F, 2)
    steps = np.hypot(*np.diff(centres, axis=0).T)                                # (F - 1,)
    if not seams or np.isnan(steps).all():
        return float("nan")
    return float(np.nanmax(steps[[s - 1 for s in seams]]) - np.nanmedian(steps)) / scale


def long_seams(pipe, frames):
    """First frame of every window after the first: where one window's frames meet the last's."""
    from ..pipeline import plan_windows

    starts = list(plan_windows(torch.zeros(frames, dtype=torch.bool), pipe.frames, pipe.frames // 2))
    return [s + pipe.frames // 2 for s in starts[1:]]


def task_items(seeds=1, seed=0):
    """(colour, shape, direction, index) for every combination x seeds."""
    return [(c, s, d, k * 1000 + i) for k in range(seeds) for i, (c, s, d) in enumerate(all_combinations())]


def run_task(pipe, task, items, steps=None, sampler=None, guidance=None, seed=0, progress=True, guidance_min_t=None,
             frame_guidance=None):
    """Run one task over items; returns (summary dict, per-clip rows)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    T, size = pipe.frames, pipe.size
    length = {"i2v": T, "extend": T, "long": 1, "interp": 4 * ((T - 1) // 4) + 1}[task]
    world = ShapesWorld(EVAL_SEED + seed, length, size, size)
    kwargs = dict(num_inference_steps=steps, sampler=sampler, guidance_scale=guidance, guidance_min_t=guidance_min_t,
                  frame_guidance=frame_guidance)
    scale = size / 32
    rows = []
    for colour, shape, direction, index in tqdm(items, desc=task, disable=not progress, dynamic_ncols=True):
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        prompt = canonical(colour, shape, direction)
        g = torch.Generator().manual_seed(seed * 1_000_003 + index)
        row = {"prompt": prompt}
        if task == "i2v":
            video = pipe(prompt, image=clip.video[0], generator=g, **kwargs)[0]
            s = score_clip(video, colour, shape, direction)
            row.update(error=centre_error(video, clip.centres, [0], scale), right=bool(s.all),
                       **{k: bool(getattr(s, k)) for k in ("colour", "shape", "direction", "steady", "motion")})
        elif task == "extend":
            given = T // 2
            video = pipe.extend(clip.video[:given], prompt, T - given, generator=g, **kwargs)[0]
            err = centre_error(video, clip.centres, range(given, T), scale)
            row.update(error=err, right=err <= EXTEND_TOL)
        elif task == "long":
            video = pipe(prompt, num_frames=LONG_FRAMES, generator=g, **kwargs)[0]
            s = score_clip(video, colour, shape, direction)
            row.update(seam_jump=seam_jump(video, long_seams(pipe, LONG_FRAMES), scale),
                       steady=bool(s.steady), motion=bool(s.motion),
                       right=bool(s.colour and s.shape and s.steady and s.motion))
        else:
            video = pipe.interpolate(clip.video[::4], prompt, factor=4, generator=g, **kwargs)[0]
            err = centre_error(video, clip.centres, range(length), scale)
            row.update(error=err, right=err <= INTERP_TOL)
        rows.append(row)
    summary = {"task": task, "clips": len(rows), "right": float(np.mean([r["right"] for r in rows]))}
    if task == "long":
        jumps = [r["seam_jump"] for r in rows if np.isfinite(r["seam_jump"])]
        summary.update(seam_jump_mean=float(np.mean(jumps)) if jumps else float("nan"),
                       seam_jump_max=float(np.max(jumps)) if jumps else float("nan"))
    else:
        summary["median_error"] = float(np.median([r["error"] for r in rows]))
    return summary, rows


def format_task(summary):
    lines = [f"vidiff eval --task {summary['task']}: {summary['clips']} clips",
             f"right       {summary['right'] * 100:6.1f}%"]
    for k in ("median_error", "seam_jump_mean", "seam_jump_max"):
        if k in summary:
            lines.append(f"{k:<12}{summary[k]:6.2f} px")
    return "\n".join(lines)
