"""Few-step sampling: which sampler and time grid keep the most quality at 10 steps.

    python benchmarks/few_steps.py [--model DIR] [--steps 10] [--limit N] [--only NAME ...]

Scores each setting below with `vidiff eval`'s prompts and detector (canonical wording, one
clip per colour x shape x direction, the model's guidance settings) and prints right-on-
everything beside each criterion. A grid `power p` puts the times at t_i = (i / N)^p: p > 1
spends more steps at low noise, p < 1 at high noise. Results are appended to
benchmarks/results/few_steps.txt and written to few_steps.json.
"""

import argparse
import json
from functools import partial

from vidiff.diffusion.samplers import sample_ddim
from vidiff.diffusion.schedules import sampling_times
from vidiff.eval.shapes_metric import CRITERIA
from vidiff.pipeline import VideoPipeline

from _results import RESULTS, append_results
from curves import score          # the same prompts (and --limit subset) as the steps curve

# name: (sampler name or function, grid power, guidance_min_t or None for the model's)
SETTINGS = {
    "ddpm": ("ddpm", 1.0, None),
    "sde": ("dpmpp_2m_sde", 1.0, None),
    "sde power 1.5": ("dpmpp_2m_sde", 1.5, None),
    "sde power 0.7": ("dpmpp_2m_sde", 0.7, None),
    "sde min_t 0.5": ("dpmpp_2m_sde", 1.0, 0.5),
    "ddpm power 1.5": ("ddpm", 1.5, None),
    "ddpm power 0.7": ("ddpm", 0.7, None),
    "ddpm power 0.5": ("ddpm", 0.5, None),
    # How much fresh noise an ancestral step adds: DDIM's eta (1 = DDPM; the most, every step's
    # guess noised afresh, x_next = alpha_next x0 + sigma_next z).
    "eta 0.7 power 0.7": (partial(sample_ddim, eta=0.7), 0.7, None),
    "eta 1.3 power 0.7": (partial(sample_ddim, eta=1.3), 0.7, None),
    "renoise power 0.7": (partial(sample_ddim, eta=1e6), 0.7, None),
}


def describe(setting):
    """A setting as JSON can hold it (a sampler function by its name and keywords)."""
    sampler, *rest = setting
    if callable(sampler):
        sampler = f"{sampler.func.__name__}({', '.join(f'{k}={v}' for k, v in sampler.keywords.items())})"
    return [sampler, *rest]


class WithTimes:
    """The pipeline with a fixed time grid: evaluate() asks for steps, this answers with `times`."""

    def __init__(self, pipe, times):
        self.pipe, self.times, self.holdout = pipe, times, pipe.holdout

    def __call__(self, prompts, num_inference_steps=None, **kw):
        return self.pipe(prompts, timesteps=self.times, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    ap.add_argument("--steps", type=int, default=10, help="sampling steps")
    ap.add_argument("--limit", type=int, default=0, help="a fixed random N of the 168 prompts (0: all)")
    ap.add_argument("--only", nargs="+", default=None, choices=list(SETTINGS), help="settings to run")
    args = ap.parse_args()

    pipe = VideoPipeline.from_pretrained(args.model)
    results = {}
    for name in args.only or SETTINGS:
        sampler, p, min_t = SETTINGS[name]
        times = sampling_times(args.steps, power=p)
        summary = score(WithTimes(pipe, times), args.limit, sampler=sampler, guidance_min_t=min_t)
        results[name] = summary
        print(f"{name:<18} everything {summary['all'] * 100:5.1f}%", flush=True)

    head = f"{'setting':<18}" + "".join(f"{c:>11}" for c in CRITERIA + ("all",))
    clips = next(iter(results.values()))["clips"]
    lines = [f"model {args.model or 'default'}, {args.steps} steps, {clips} clips", head]
    for name, s in results.items():
        lines.append(f"{name:<18}" + "".join(f"{s[c] * 100:>10.1f}%" for c in CRITERIA + ("all",)))
    print("\n".join(lines))
    append_results("few_steps.txt", lines)
    out = RESULTS / "few_steps.json"
    old = json.loads(out.read_text()) if out.is_file() else []
    old.append({"model": args.model or "default", "steps": args.steps, "clips": clips,
                "settings": {k: describe(SETTINGS[k]) for k in results}, "summary": results})
    out.write_text(json.dumps(old, indent=2))


if __name__ == "__main__":
    main()
