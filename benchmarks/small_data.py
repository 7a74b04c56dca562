"""Small data with no heterogeneity: does bayes_prsn invent per-sample models?

``make_null`` (one coefficient vector for everyone, covariates pure noise)
at several sizes and seeds (5000 + seed; the tests use others). For each fit
the script reports theta-MSE of ``coef_`` against the truth, its ratio to the
fit's own population GLM (``population_coef_``), whether the smoothing choice
fell back to the population model, and the fit time in this process.

    python benchmarks/small_data.py                      # 50, 150, 500 samples; 4 seeds
    python benchmarks/small_data.py --sizes 150 --seeds 8

Results: a markdown table on stdout and ``results/small_data.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_prsn import PersonalizedRegression, simulate
from bayes_prsn.smoothing import is_fallback

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(n_samples: int, seed: int) -> dict:
    data = simulate.make_null(n_samples=n_samples, random_state=5000 + seed)
    est = PersonalizedRegression(random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(data.X, data.y, covariates=data.covariates)
    seconds = time.perf_counter() - start
    mse = float(np.mean((est.coef_ - data.coef) ** 2))
    population = float(np.mean((est.population_coef_ - data.coef) ** 2))
    return {
        "n_samples": n_samples,
        "seed": seed,
        "theta_mse": mse,
        "theta_mse_population": population,
        "ratio": mse / population,
        "population_model": is_fallback(est.validation_scores_),
        "fit_seconds": seconds,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| n | seeds | theta-MSE ratio to the population model (mean) | per seed "
        "| population model chosen | fit s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for n in dict.fromkeys(r["n_samples"] for r in rows):
        group = [r for r in rows if r["n_samples"] == n]
        ratios = [r["ratio"] for r in group]
        lines.append(
            f"| {n} | {len(group)} | {np.mean(ratios):.3f} | "
            + ", ".join(f"{v:.2f}" for v in ratios)
            + f" | {sum(r['population_model'] for r in group)} of {len(group)} | "
            f"{np.median([r['fit_seconds'] for r in group]):.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,150,500")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--output", default=str(RESULTS / "small_data.json"))
    args = parser.parse_args(argv)
    rows = []
    for n in (int(v) for v in args.sizes.split(",")):
        for seed in range(args.seeds):
            rows.append(run_one(n, seed))
            row = rows[-1]
            print(
                f"  n={n} seed={seed}: ratio {row['ratio']:.3f}"
                f"{' (population model)' if row['population_model'] else ''}",
                flush=True,
            )
    print(table(rows))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "table": table(rows)}, indent=1))


if __name__ == "__main__":
    main()
