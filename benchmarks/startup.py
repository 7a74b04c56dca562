"""Start-up time: import bayes_prsn, the estimator import, bayes-prsn --help and --version.

Each command runs in a fresh Python process, ``--repeats`` times (default 5);
the script reports the minimum, median and maximum wall time of the whole
process (interpreter start included). ``--tree`` runs them against another
checkout (for a before/after table: ``git worktree add /tmp/before <commit>``
then ``--tree /tmp/before``); its package must be importable from that
folder (the command runs there, so ``bayes_prsn`` resolves to it).

    python benchmarks/startup.py
    python benchmarks/startup.py --tree /tmp/before --label before

Results: a markdown table on stdout and ``results/startup_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

COMMANDS = {
    "import bayes_prsn": ["-c", "import bayes_prsn"],
    "from bayes_prsn import PersonalizedRegression": [
        "-c",
        "from bayes_prsn import PersonalizedRegression",
    ],
    "bayes-prsn --help": ["-m", "bayes_prsn", "--help"],
    "bayes-prsn --version": ["-m", "bayes_prsn", "--version"],
}


def measure(arguments: list[str], tree: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, *arguments], cwd=tree, check=True, capture_output=True, text=True
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    rows = {}
    for name, arguments in COMMANDS.items():
        times = measure(arguments, args.tree, args.repeats)
        rows[name] = {
            "min_s": min(times),
            "median_s": statistics.median(times),
            "max_s": max(times),
        }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"startup_{args.label}.json").write_text(
        json.dumps({"repeats": args.repeats, "results": rows}, indent=1)
    )
    print(f"| command ({args.label}) | min s | median s | max s |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| `{name}` | {row['min_s']:.2f} | {row['median_s']:.2f} | {row['max_s']:.2f} |")


if __name__ == "__main__":
    main()
