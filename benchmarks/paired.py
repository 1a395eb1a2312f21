"""Is model B better or worse than model A, or is the difference noise?

    python benchmarks/paired.py A.json B.json [--what all] [--first N]

Two `vidiff eval` results on the same prompts and seeds score the same clips, so the fair
comparison is paired: count the clips A gets right and B wrong (lost) and the reverse (gained).
Under "no difference" each changed clip is lost or gained with probability 1/2, so McNemar's exact
test gives the two-sided p-value P(|lost - gained| this large) from a binomial(lost + gained, 1/2).
`--first N` compares the first N clips of each: a `--task` run with more seeds starts with the
clips and noise of one with fewer (each clip seeds its own generator). Text-only runs share one
generator per batch of 16, so there only whole batches match.
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
    ap.add_argument("--first", type=int, default=0, help="compare only the first N clips (0 = all)")
    args = ap.parse_args()
    if args.first < 0:
        ap.error("--first: a number of clips, 0 or more")
    rows = [json.load(open(p))["clips"][:args.first or None] for p in (args.a, args.b)]
    # Clips pair by position: eval writes them in prompt-and-seed order (task rows carry no seed).
    same = lambda r, s: (r["prompt"], r.get("seed")) == (s["prompt"], s.get("seed"))
    if len(rows[0]) != len(rows[1]) or not all(same(r, s) for r, s in zip(*rows)):
        raise SystemExit("the two results do not score the same clips (prompts, seeds or --limit differ)")
    if any(args.what not in r for r in rows[0] + rows[1]):
        raise SystemExit(f"--what {args.what}: not a per-clip field of both results (try all, or right for a --task eval)")
    a = [bool(r[args.what]) for r in rows[0]]
    b = [bool(r[args.what]) for r in rows[1]]
    lost = sum(x and not y for x, y in zip(a, b))
    gained = sum(y and not x for x, y in zip(a, b))
    n = len(a)
    first = f" (the first {n} clips of each)" if args.first else ""
    lines = [f"A = {shown(args.a)}", f"B = {shown(args.b)}",
             f"{args.what}{first}: A {sum(a)}/{n} ({100 * sum(a) / n:.1f}%), "
             f"B {sum(b)}/{n} ({100 * sum(b) / n:.1f}%); "
             f"B lost {lost}, gained {gained}; McNemar exact p = {mcnemar(lost, gained):.3f}"]
    print("\n".join(lines))
    append_results("paired.txt", lines)


if __name__ == "__main__":
    main()
