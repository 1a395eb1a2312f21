"""Can the model pick its own best continuation? Best of K samples by the model's denoising error.

    python benchmarks/rerank.py [MODEL_DIR] [--candidates K] [--limit N] [--save FILE.json]
    python benchmarks/rerank.py --load FILE.json        # summarise a saved run again

For each clip of `vidiff eval --task extend` (first half given), K continuations are sampled with
the model's settings (candidate 0 is the one `vidiff eval` makes for that clip). Each whole clip
(given half + new half) is then noised at a few times, with the same noise for every candidate, and
denoised by the model; the lower the x0 error, the more the model itself finds the clip likely
(the error is a bound on the negative log-likelihood, up to constants and weighting). Two scores:
  - text:   the prompt only, every frame noised: does the clip hang together as one clip?
  - frames: the given half in the frame stem as in sampling, the error on the new frames only.
Scored by the task's scorer (every new centre within 1.5 px of the truth). The scorer's truth is
never used to choose: only the model's own errors are. Output appended to
benchmarks/results/rerank.txt.
"""

import argparse
import json

import numpy as np
import torch
from tqdm.auto import tqdm

from vidiff.data.captions import canonical
from vidiff.data.shapes import ShapesWorld
from vidiff.diffusion.noise import video_noise
from vidiff.eval.tasks import EVAL_SEED, EXTEND_TOL, centre_error, task_items
from vidiff.pipeline import VideoPipeline, video_to_tensor

from _results import append_results

TIMES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DRAWS = 4                   # noise draws per time


@torch.no_grad()
def model_errors(pipe, videos, prompt, given, seed):
    """x0 errors (mode, time, candidate, frame) of each clip in uint8 videos (K, F, H, W, 3), the same
    noise for all; mode 0 = text only, 1 = the given half in the frame stem too."""
    x0 = video_to_tensor(videos)                                             # (K, C, F, H, W)
    K, F = x0.shape[0], x0.shape[2]
    text = pipe.text([prompt] * K)
    mask = (torch.arange(F) < given).float().expand(K, -1)
    frames = {"frames": x0 * mask[:, None, :, None, None], "frame_mask": mask}
    errs = torch.zeros(2, len(TIMES), K, F, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    for i, t in enumerate(TIMES):
        for _ in range(DRAWS):
            noise = video_noise((1, *x0.shape[1:]), pipe.diffusion.shared_noise, generator=g).expand_as(x0)
            tt = torch.full((K,), float(t))
            x_t = pipe.schedule.add_noise(x0, noise, tt)
            for mode, cond in enumerate((text, {**text, **frames})):
                errs[mode, i] += (pipe.denoiser(x_t, tt, **cond) - x0).pow(2).mean((1, 3, 4)).double() / DRAWS
    return errs.numpy()


def summarise(records, given, times, title):
    """Lines: how often each way of choosing picks a right continuation, overall and per time."""
    centre = np.array([r["centre_error"] for r in records])                     # (N, K)
    right = centre <= EXTEND_TOL
    errs = np.array([r["errors"] for r in records])                             # (N, mode, time, K, F)
    rows = np.arange(len(records))
    picked = lambda score: 100 * right[rows, score.argmin(1)].mean()            # score (N, K)
    lines = [title,
             f"  {'candidate 0 (as vidiff eval)':<34}{100 * right[:, 0].mean():6.1f}%",
             f"  {'least text error':<34}{picked(errs[:, 0].mean((1, 3))):6.1f}%",
             f"  {'least frames error, new frames':<34}{picked(errs[:, 1, :, :, given:].mean((1, 3))):6.1f}%",
             f"  {'any candidate (oracle)':<34}{100 * right.any(1).mean():6.1f}%",
             "  one time alone: % right picked by (text, all frames / new frames; frames, all / new), and the",
             "  mean within-clip correlation of that error with the centre error"]
    finite = np.isfinite(centre).all(1)
    for i, t in enumerate(times):
        cells = []
        for mode in (0, 1):
            for part in (slice(None), slice(given, None)):
                score = errs[:, mode, i, :, part].mean(-1)                       # (N, K)
                r = np.mean([np.corrcoef(score[n], centre[n])[0, 1] for n in rows[finite]])
                cells.append(f"{picked(score):5.1f}% r {r:+.2f}")
        lines.append(f"  t = {t:.1f}  " + "  ".join(cells))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--start", type=int, default=0, help="first clip of the extend task's items")
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--save", default=None, help="also write every candidate's errors and scores to this .json")
    ap.add_argument("--load", default=None, help="summarise a --save file again instead of sampling")
    args = ap.parse_args()
    if args.load:
        with open(args.load) as f:
            saved = json.load(f)
        records, given = saved["clips"], saved["given"]
        title = f"rerank.py --load {args.load}: {len(records)} clips, {len(records[0]['centre_error'])} candidates"
        lines = summarise(records, given, saved["times"], title)
        print("\n".join(lines))
        append_results("rerank.txt", lines)
        return
    pipe = VideoPipeline.from_pretrained(args.model)
    T, given, scale = pipe.frames, pipe.frames // 2, pipe.size / 32
    world = ShapesWorld(EVAL_SEED, T, pipe.size, pipe.size)
    records = []
    for colour, shape, direction, index in tqdm(task_items()[args.start:args.start + args.limit], desc="rerank",
                                                dynamic_ncols=True):
        clip = world.clip(index, colour=colour, shape=shape, direction=direction)
        prompt = canonical(colour, shape, direction)
        videos = []
        for k in range(args.candidates):      # one generator per candidate: candidate 0 is eval's clip
            g = torch.Generator().manual_seed(index if k == 0 else 7_000_003 * k + index)
            videos.append(pipe.extend(clip.video[:given], prompt, T - given, generator=g)[0])
        videos = np.stack(videos)
        centre = [centre_error(v, clip.centres, range(given, T), scale) for v in videos]
        records.append({"prompt": prompt, "centre_error": centre,
                        "errors": model_errors(pipe, videos, prompt, given, seed=index).tolist()})
    title = (f"rerank.py {args.model or 'default'}: continuation within {EXTEND_TOL} px, clips {args.start}-"
             f"{args.start + len(records) - 1}, {args.candidates} candidates, errors at t = {TIMES} x {DRAWS} draws")
    lines = summarise(records, given, TIMES, title)
    print("\n".join(lines))
    append_results("rerank.txt", lines)
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"times": TIMES, "given": given, "clips": records}, f)


if __name__ == "__main__":
    main()
