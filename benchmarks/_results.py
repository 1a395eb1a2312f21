"""Where the benchmark scripts keep their printed results: appended, so earlier runs stay."""

import os
from pathlib import Path

# Next to this file whatever the working directory, and relative to it, because `vidiff eval`
# records its output path in the results it writes: committed files name no machine's folders.
RESULTS = Path(os.path.relpath(Path(__file__).resolve().parent / "results"))


def append_results(name, lines):
    """Append `lines` and a blank line to benchmarks/results/`name`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / name).open("a") as f:
        f.write("\n".join(lines) + "\n\n")
