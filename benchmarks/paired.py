"""Is model B better or worse than model A, or is the difference noise?

    python benchmarks/paired.py A.json B.json [--and A2.json B2.json ...] [--what all] [--first N] [--held-out]

Two `vidiff eval` results on the same prompts and seeds score the same clips, so the fair
comparison is paired: count the clips A gets right and B wrong (lost) and the reverse (gained).
Under "no difference" each changed clip is lost or gained with probability 1/2, so McNemar's exact
test gives the two-sided p-value P(|lost - gained| this large) from a binomial(lost + gained, 1/2).
`--first N` compares the first N clips of each: a `--task` run with more seeds starts with the
clips and noise of one with fewer (each clip seeds its own generator). Text-only runs share one
generator per batch of 16, so there only whole batches match.
`--and` pools more pairs clip by clip (the `--seeds 1` and `--seeds 2 --seed 1` runs of one figure);
`--held-out` keeps only the clips of combinations training never showed.
Output appended to benchmarks/results/paired.txt.
"""

import argparse
import json
from math import comb
from pathlib import Path

from _results import RESULTS, append_results


def mcnemar(lost, gained):
    """Two-sided exact p-value of lost vs gained changed clips under a fair coin."""
    n, k = lost + gained, min(lost, gained)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def shown(path):
    """A result's name as paired.txt lists it: relative to benchmarks/results when it is in there."""
    p = Path(path).resolve()
    return str(p.relative_to(RESULTS.resolve())) if p.is_relative_to(RESULTS.resolve()) else path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--what", default="all", help="the per-clip field compared (all, right, motion, ...)")
    ap.add_argument("--and", dest="more", nargs=2, action="append", default=[], metavar=("A2", "B2"),
                    help="another pair of results, pooled clip by clip with the first")
    ap.add_argument("--first", type=int, default=0, help="compare only the first N clips of each pair (0 = all)")
    ap.add_argument("--held-out", action="store_true", help="only the clips of held-out combinations")
    args = ap.parse_args()
    if args.first < 0:
        ap.error("--first: a number of clips, 0 or more")
    pairs = [(args.a, args.b), *map(tuple, args.more)]
    missing = [p for pair in pairs for p in pair if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"no such results file: {', '.join(missing)}")
    # Clips pair by position: eval writes them in prompt-and-seed order (task rows carry no seed).
    same = lambda r, s: (r["prompt"], r.get("seed")) == (s["prompt"], s.get("seed"))
    rows = [[], []]
    for pair in pairs:
        pair_rows = [json.load(open(p))["clips"][:args.first or None] for p in pair]
        if len(pair_rows[0]) != len(pair_rows[1]) or not all(same(r, s) for r, s in zip(*pair_rows)):
            raise SystemExit(f"{pair[0]} and {pair[1]} do not score the same clips (prompts, seeds or --limit differ)")
        for side, r in zip(rows, pair_rows):
            side += r
    if args.held_out:
        if any("held_out" not in r for r in rows[0] + rows[1]):
            raise SystemExit("--held-out: the results do not mark held-out clips (a text eval of a model with data.holdout)")
        rows = [[r for r in side if r["held_out"]] for side in rows]
    if not rows[0]:
        raise SystemExit("no clips to compare")
    if any(args.what not in r for r in rows[0] + rows[1]):
        raise SystemExit(f"--what {args.what}: not a per-clip field of both results (try all, or right for a --task eval)")
    a = [bool(r[args.what]) for r in rows[0]]
    b = [bool(r[args.what]) for r in rows[1]]
    lost = sum(x and not y for x, y in zip(a, b))
    gained = sum(y and not x for x, y in zip(a, b))
    n = len(a)
    which = (f" (the first {args.first} clips of each pair)" if args.first else "") + \
        (" (held-out combinations)" if args.held_out else "")
    lines = [f"A = {' + '.join(shown(a) for a, _ in pairs)}", f"B = {' + '.join(shown(b) for _, b in pairs)}",
             f"{args.what}{which}: A {sum(a)}/{n} ({100 * sum(a) / n:.1f}%), "
             f"B {sum(b)}/{n} ({100 * sum(b) / n:.1f}%); "
             f"B lost {lost}, gained {gained}; McNemar exact p = {mcnemar(lost, gained):.3f}"]
    print("\n".join(lines))
    append_results("paired.txt", lines)


if __name__ == "__main__":
    main()
