"""Does the model read the speed of the frames it is given? Continuation probed two ways.

    python benchmarks/velocity.py [MODEL_DIR] [--limit N]

True clips of the evaluation stream (vidiff eval --task extend's), first half given, only those
whose object moves straight through the second half (no bounce), so the true speed over frames
7 -> 15 is one number. For each, the model's speed over the same frames, measured
  - from its one-step guess: the denoiser's x0 for the new frames from pure noise (t = 1), where
    nothing but the given frames and the prompt says where the object is (noise shared across
    frames as the model was trained); centres are the
    brightness-weighted centroids (the guess is a blur);
  - from a sampled continuation (pipe.extend, the model's settings), centres as the detector finds them.
A model that reads the speed has slope 1 and correlation 1 against the true speed; one that
draws a typical speed whatever it is shown has slope 0.
Output appended to benchmarks/results/velocity.txt.
"""

import argparse

import numpy as np
import torch

from vidiff.data.captions import canonical
from vidiff.data.shapes import ShapesWorld
from vidiff.diffusion.noise import video_noise
from vidiff.eval.shapes_metric import detect_frame
from vidiff.eval.tasks import EVAL_SEED, task_items
from vidiff.pipeline import VideoPipeline, video_to_tensor

from _results import append_results


def centroid(x0):
    """Brightness-weighted centre (x, y) of one predicted frame (C, H, W) in [-1, 1]."""
    w = ((x0.clamp(-1, 1) + 1) / 2).mean(0)                  # (H, W), 0 = black
    w = (w - 0.1).clamp(min=0)
    ys, xs = torch.meshgrid(torch.arange(w.shape[0]) + 0.5, torch.arange(w.shape[1]) + 0.5, indexing="ij")
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


def fit(true, model):
    """(slope, intercept, correlation) of model speed on true speed."""
    slope, intercept = np.polyfit(true, model, 1)
    return slope, intercept, np.corrcoef(true, model)[0, 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--limit", type=int, default=48, help="sampled continuations, 0 = none (the one-step guess uses all)")
    args = ap.parse_args()
    pipe = VideoPipeline.from_pretrained(args.model)
    T, half = pipe.frames, pipe.frames // 2
    world = ShapesWorld(EVAL_SEED, T, pipe.size, pipe.size)
    clips = []
    for colour, shape, direction, index in task_items():
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        steps = np.diff(clip.centres[half - 1:], axis=0)
        if (np.sign(steps) == np.sign(steps[0])).all():      # straight through the new frames
            clips.append((clip, canonical(colour, shape, direction), index))
    speed = lambda start, end: np.hypot(*(np.asarray(end) - start)) / (T - half)     # px per frame
    true = np.array([speed(c.centres[half - 1], c.centres[T - 1]) for c, _, _ in clips])

    # One-step guess from pure noise, with the frames and the prompt (no guidance).
    guess = []
    with torch.no_grad():
        for i in range(0, len(clips), 16):
            part = clips[i:i + 16]
            x = torch.zeros(len(part), 3, T, pipe.size, pipe.size)
            for j, (c, _, _) in enumerate(part):
                x[j, :, :half] = video_to_tensor(c.video[:half])[0]
            cond, _ = pipe._text([p for _, p, _ in part])
            mask = (torch.arange(T) < half).float().expand(len(part), -1)
            noise = video_noise(x.shape, pipe.diffusion.shared_noise, torch.Generator().manual_seed(i))   # as trained
            x0 = pipe.denoiser(noise, torch.ones(len(part)), frames=x, frame_mask=mask, **cond)
            guess += [speed(c.centres[half - 1], centroid(x0[j, :, T - 1])) for j, (c, _, _) in enumerate(part)]
    lines = [f"model: {args.model or 'default'}; {len(clips)} straight continuations of "
             f"{len(task_items())} (first {half} frames given)"]
    s, b, r = fit(true, np.array(guess))
    lines.append(f"one-step guess (t = 1):   slope {s:.2f}  intercept {b:.2f} px/frame  correlation {r:.2f}")

    sampled, kept = [], []
    for k, (c, prompt, index) in enumerate(clips[:args.limit]):
        video = pipe.extend(c.video[:half], prompt, T - half, generator=torch.Generator().manual_seed(index))[0]
        d0, d1 = detect_frame(video[half - 1]), detect_frame(video[T - 1])
        if d0.found and d1.found:
            sampled.append(speed(np.asarray(d0.centre), d1.centre))
            kept.append(k)
    if kept:
        s, b, r = fit(true[kept], np.array(sampled))
        lines.append(f"sampled ({len(kept)} clips):      slope {s:.2f}  intercept {b:.2f} px/frame  correlation {r:.2f}"
                     f"  | true speeds {true.min():.2f}-{true.max():.2f} px/frame")
    print("\n".join(lines))
    append_results("velocity.txt", lines)


if __name__ == "__main__":
    main()
