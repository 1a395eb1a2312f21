"""Where the benchmark scripts keep their printed results: appended, so earlier runs stay."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"   # whatever the working directory


def append_results(name, lines):
    """Append `lines` and a blank line to benchmarks/results/`name`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / name).open("a") as f:
        f.write("\n".join(lines) + "\n\n")
