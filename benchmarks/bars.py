"""Every figure behind the default-model and frame-conditioning bars, for one model, in one run.

    python benchmarks/bars.py MODEL_DIR --name NAME [--quick]

Runs `vidiff eval` once per figure with the model's own sampling settings (about four hours on a
2-core CPU with the medoid of four samples where frames are given, 75 minutes with one), writing
benchmarks/results/eval_NAME_*.json, the file names the README cites. A file that exists is read,
not rerun, so an interrupted run resumes where it stopped. Then prints each figure against its bar
and appends the table to benchmarks/results/bars.txt.
--quick scores 2 clips per figure into a scratch folder: a smoke test of the whole run.
"""

import argparse
import json
import tempfile
from pathlib import Path

from vidiff.cli import main as vidiff

from _results import RESULTS, append_results

EVALS = {  # file suffix -> `vidiff eval` arguments
    "20steps": ["--steps", "20"],
    "10steps": ["--steps", "10", "--seeds", "1"],
    "10steps_seed1": ["--steps", "10", "--seeds", "2", "--seed", "1"],
    "heldout_phrasing": ["--phrasing", "heldout", "--seeds", "1"],
    "32frames_56clips": ["--frames", "32", "--limit", "56"],
    "fit_extend_168clips": ["--task", "extend", "--seeds", "1"],
    "fit_extend_seed1_336clips": ["--task", "extend", "--seeds", "2", "--seed", "1"],
    "fit_interp_168clips": ["--task", "interp", "--seeds", "1"],
    "fit_interp_seed1_336clips": ["--task", "interp", "--seeds", "2", "--seed", "1"],
    "i2v_168clips": ["--task", "i2v", "--seeds", "1"],   # its first 24 were the figure before
    "long_8clips": ["--task", "long", "--limit", "8"],
}
BARS = [  # (figure, files pooled clip by clip, the summary's field, bar)
    ("text to video, 20 steps", ["20steps"], "all", 0.95),
    ("text to video, 10 steps", ["10steps", "10steps_seed1"], "all", 0.90),
    ("held-out combinations, 20 steps", ["20steps"], "held_out.all", 0.90),
    ("wordings training never uses, 20 steps", ["heldout_phrasing"], "all", 0.95),
    ("32 frames (trained on 16)", ["32frames_56clips"], "all", 0.80),
    ("continuation within 1.5 px", ["fit_extend_168clips", "fit_extend_seed1_336clips"], "right", 0.85),
    ("x4 interpolation within 1 px", ["fit_interp_168clips", "fit_interp_seed1_336clips"], "right", 0.90),
    ("image to video", ["i2v_168clips"], "right", 0.90),
    ("128 frames on the physics", ["long_8clips"], "right", 0.80),
]


def right_and_clips(summary, field):
    """(clips right, clips) from an eval summary; `field` may name a nested summary ("held_out.all")."""
    *nest, key = field.split(".")
    for name in nest:
        summary = summary[name]
    return round(summary[key] * summary["clips"]), summary["clips"]


def result_path(folder, name, suffix):
    return folder / f"eval_{name}_{suffix}.json"


def table(folder, name):
    summaries = {s: json.loads(result_path(folder, name, s).read_text())["summary"] for s in EVALS}
    rows = [f"{'figure':<40} {'right':>13} {'bar':>5}  met"]
    for figure, files, field, bar in BARS:
        counts = [right_and_clips(summaries[f], field) for f in files]
        right, clips = sum(r for r, _ in counts), sum(c for _, c in counts)
        share = right / max(clips, 1)
        met = "-" if not clips else "yes" if share >= bar else "no"
        rows.append(f"{figure:<40} {share:6.1%} of {clips:<3} {bar:5.0%}  {met}")
    long = summaries["long_8clips"]
    rows.append(f"128 frames: seam jump mean {long['seam_jump_mean']:.2f} px, max {long['seam_jump_max']:.2f} px")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model directory (model.safetensors + config.json)")
    ap.add_argument("--name", required=True, help="results go to benchmarks/results/eval_NAME_*.json")
    ap.add_argument("--quick", action="store_true", help="2 clips per figure, into a scratch folder")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bars-")) if args.quick else RESULTS
    for suffix, extra in EVALS.items():
        out = result_path(folder, args.name, suffix)
        if out.exists():
            print(f"{out}: already there, read as it is")
            continue
        quick = ["--limit", "2"] if args.quick else []
        code = vidiff(["eval", "--model", args.model, *extra, *quick, "-o", str(out)])
        if code:                         # vidiff printed why (a bad model folder, say): stop there
            raise SystemExit(code)
    rows = [f"model: {args.model}" + (" (--quick: 2 clips per figure)" if args.quick else ""),
            *table(folder, args.name)]
    print("\n".join(rows))
    if not args.quick:
        append_results("bars.txt", rows)


if __name__ == "__main__":
    main()
