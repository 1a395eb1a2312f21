"""`vidiff eval`: generate clips for a prompt set and score them with the shapes-world detector.

The model sees only the prompt text; the colour, shape and direction the prompt
names are used by the scorer alone.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.captions import SPLITS, caption, canonical
from ..data.shapes import all_combinations
from .shapes_metric import CRITERIA, score_clip, summarise

PHRASINGS = ("canonical", *SPLITS)


@dataclass
class EvalItem:
    prompt: str
    colour: str
    shape: str
    direction: str
    seed: int


def eval_prompts(phrasing="canonical", seeds=2, combos=None, seed=0):
    """Every (colour, shape, direction) x seeds; wording canonical or drawn from a caption split."""
    if phrasing not in PHRASINGS:
        raise ValueError(f"phrasing must be one of {PHRASINGS}, got {phrasing!r}")
    combos = combos if combos is not None else all_combinations()
    rng = np.random.default_rng(seed)
    items = []
    for s in range(seeds):
        for colour, shape, direction in combos:
            prompt = canonical(colour, shape, direction) if phrasing == "canonical" else \
                caption(rng, colour, shape, direction, split=phrasing)
            items.append(EvalItem(prompt, colour, shape, direction, seed * 100_000 + s))
    return items


def evaluate(pipe, items, num_frames=None, steps=None, sampler=None, guidance=None, batch_size=16,
             save_dir=None, progress=True, guidance_min_t=None, frame_guidance=None):
    """Generate one clip per item (batched) and score it; returns (summary dict, per-clip rows)."""
    rows, scores = [], []
    bar = tqdm(total=len(items), desc="eval", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        # One generator per batch, seeded from its items: results do not depend on batch boundaries' history.
        g = torch.Generator().manual_seed(chunk[0].seed * 7919 + start)
        videos = pipe([it.prompt for it in chunk], num_frames=num_frames, num_inference_steps=steps,
                      sampler=sampler, guidance_scale=guidance, guidance_min_t=guidance_min_t,
                      frame_guidance=frame_guidance, generator=g)
        for k, (it, video) in enumerate(zip(chunk, videos)):
            s = score_clip(video, it.colour, it.shape, it.direction)
            scores.append(s)
            rows.append({"prompt": it.prompt, "seed": it.seed,
                         "asked": {"colour": it.colour, "shape": it.shape, "direction": it.direction},
                         **{c: bool(getattr(s, c)) for c in CRITERIA}, "all": bool(s.all),
                         "detected": {k2: (float(v) if isinstance(v, (float, np.floating)) else v)
                                      for k2, v in s.detail.items()}})
            if save_dir is not None:
                from ..io.video import save_video

                save_video(video, Path(save_dir) / f"{start + k:04d}.gif", scale=4)
        bar.update(len(chunk))
        bar.set_postfix(all=f"{summarise(scores)['all']:.2f}")
    bar.close()
    summary = summarise(scores)
    held = {tuple(h) for h in getattr(pipe, "holdout", ())}
    if held:
        # Compositional generalisation: combinations never trained on, scored apart from the rest.
        unseen = [(it.colour, it.shape, it.direction) in held for it in items]
        for row, flag in zip(rows, unseen):
            row["held_out"] = flag
        summary["held_out"] = summarise([s for s, u in zip(scores, unseen) if u])
        summary["trained_on"] = summarise([s for s, u in zip(scores, unseen) if not u])
    return summary, rows


def format_table(summary, title=""):
    lines = [title] if title else []
    lines.append(f"{'criterion':<12}{'accuracy':>10}")
    for c in CRITERIA + ("all",):
        lines.append(f"{c if c != 'all' else 'everything':<12}{summary[c] * 100:>9.1f}%")
    if "direction_45" in summary:
        lines.append(f"{'dir ±45°':<12}{summary['direction_45'] * 100:>9.1f}%   (chance 37.5%)")
    lines.append(f"{'clips':<12}{summary['clips']:>10d}")
    if "held_out" in summary:
        seen, unseen = summary["trained_on"], summary["held_out"]
        lines.append(f"{'everything':<12}{seen['all'] * 100:>9.1f}% on the {seen['clips']} clips of combinations "
                     f"trained on, {unseen['all'] * 100:.1f}% on the {unseen['clips']} held out")
    return "\n".join(lines)


def write_results(path, summary, rows, settings):
    from ..training.checkpoint import save_json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_json({"summary": summary, "settings": settings, "clips": rows}, path)
