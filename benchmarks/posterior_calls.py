"""Time of ``sample_posterior`` calls on a fitted model: the first, and the ones after it.

Each repeat runs in a fresh Python process: a default fit of ``make_low_rank``
(p = 10, data seed 100 + repeat), then ``--calls`` default calls of
``sample_posterior(method)`` on it (``random_state`` 0, 1, ...; gaussian data,
so the default pools no refits, see ``pooling.auto_refits``). For every call
the script records its wall time and the XLA compilation time inside it
(``jax.monitoring``). A call after the first should compile next to nothing:
the data and the shapes are the same. ``--tree`` runs another checkout (for a
before/after table: ``git worktree add /tmp/before <commit>`` then ``--tree
/tmp/before``); its package must be importable from that folder.

    python benchmarks/posterior_calls.py
    python benchmarks/posterior_calls.py --tree /tmp/before --label before

Results: a markdown table on stdout and ``results/posterior_calls_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

CHILD = """
import json, sys, time, warnings
import jax.monitoring
compile_seconds = [0.0]

def on_duration(event, seconds, **_):
    if event.endswith("backend_compile_duration"):
        compile_seconds[0] += seconds

jax.monitoring.register_event_duration_secs_listener(on_duration)
from bayes_prsn import PersonalizedRegression, simulate

n_samples, seed, method, calls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data = simulate.make_low_rank(n_samples=n_samples, random_state=seed)
rows = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    estimator = PersonalizedRegression(random_state=0)
    estimator.fit(data.X, data.y, covariates=data.covariates)
    for call in range(calls):
        compile_seconds[0] = 0.0
        start = time.perf_counter()
        estimator.sample_posterior(method, random_state=call)
        rows.append({"seconds": time.perf_counter() - start, "xla": compile_seconds[0]})
print(json.dumps(rows))
"""


def run(tree: Path, n_samples: int, seed: int, method: str, calls: int) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(n_samples), str(seed), method, str(calls)],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--method", default="laplace")
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    records = []
    for n_samples in args.sizes:
        for repeat in range(args.repeats):
            calls = run(args.tree, n_samples, 100 + repeat, args.method, args.calls)
            records.append({"n_samples": n_samples, "repeat": repeat, "calls": calls})
            print(n_samples, repeat, calls, file=sys.stderr, flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"posterior_calls_{args.label}.json"
    out.write_text(json.dumps({"method": args.method, "tree": str(args.tree), "runs": records}))
    print("| N | first call s (median) | later calls s (median) | XLA in later calls s (median) |")
    print("|---|---|---|---|")
    for n_samples in args.sizes:
        runs = [r["calls"] for r in records if r["n_samples"] == n_samples]
        first = statistics.median(c[0]["seconds"] for c in runs)
        later = [call for c in runs for call in c[1:]]
        line = f"| {n_samples:,} | {first:.2f} | "
        if later:
            line += f"{statistics.median(c['seconds'] for c in later):.2f} | "
            line += f"{statistics.median(c['xla'] for c in later):.2f} |"
        else:
            line += "— | — |"
        print(line)
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
