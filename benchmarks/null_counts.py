"""Small count and binary data with no heterogeneity: does bayes_prsn invent per-sample models?

The counterpart of ``small_data.py`` for the families whose smoothing choice
tries the narrower psi scales before falling back (``smoothing.PRIOR_SCALE_GRID``).
One coefficient vector for everyone, (0.3, -0.2, 0.1) on three standard-normal
predictors, intercept 1 (poisson) or 0 (bernoulli), three uniform covariates
that carry nothing; data seed ``7000 + seed + 100 * n``, ``random_state=seed``.
For each default fit: theta-MSE of ``coef_`` against the truth, its ratio to the
fit's own population GLM (``population_coef_``), whether it fell back.

    python benchmarks/null_counts.py                                  # 150 and 400; 8 seeds
    python benchmarks/null_counts.py --output results/null_counts_x.json

Results: a markdown table on stdout and ``results/null_counts.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_prsn import PersonalizedRegression
from bayes_prsn.smoothing import is_fallback

RESULTS = Path(__file__).resolve().parent / "results"
COEF = np.array([0.3, -0.2, 0.1])


def null_data(family: str, n_samples: int, seed: int):
    """``(X, y, covariates)`` with the same model for every sample."""
    rng = np.random.default_rng(7000 + seed + 100 * n_samples)
    X = rng.standard_normal((n_samples, COEF.size))
    eta = X @ COEF + (1.0 if family == "poisson" else 0.0)
    if family == "poisson":
        y = rng.poisson(np.exp(eta))
    else:
        y = (rng.uniform(size=n_samples) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    covariates = pd.DataFrame(rng.uniform(-1, 1, (n_samples, 3)), columns=["u0", "u1", "u2"])
    return X, y, covariates


def run_one(family: str, n_samples: int, seed: int) -> dict:
    X, y, covariates = null_data(family, n_samples, seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = PersonalizedRegression(family=family, random_state=seed).fit(
            X, y, covariates=covariates
        )
    mse = float(np.mean((est.coef_ - COEF) ** 2))
    population = float(np.mean((est.population_coef_ - COEF) ** 2))
    report = est.validation_scores_
    return {
        "family": family,
        "n_samples": n_samples,
        "seed": seed,
        "ratio": mse / population,
        "fell_back": is_fallback(report),
        "prior_scale": None if is_fallback(report) else float(est.prior_scale_),
        "fit_seconds": time.perf_counter() - start,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| family | n | seeds | theta-MSE ratio (mean) | max | fell back |",
        "|---|---|---|---|---|---|",
    ]
    for key in dict.fromkeys((r["family"], r["n_samples"]) for r in rows):
        group = [r for r in rows if (r["family"], r["n_samples"]) == key]
        ratios = [r["ratio"] for r in group]
        lines.append(
            f"| {key[0]} | {key[1]} | {len(group)} | {np.mean(ratios):.3f} | "
            f"{max(ratios):.3f} | {sum(r['fell_back'] for r in group)} of {len(group)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="poisson,bernoulli")
    parser.add_argument("--sizes", default="150,400")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--output", default=str(RESULTS / "null_counts.json"))
    args = parser.parse_args(argv)
    rows = []
    for family in args.families.split(","):
        for n_samples in (int(n) for n in args.sizes.split(",")):
            for seed in range(args.seeds):
                rows.append(run_one(family, n_samples, seed))
                row = rows[-1]
                print(
                    f"  {family} n={n_samples} seed={seed}: ratio {row['ratio']:.3f}"
                    + (" (population model)" if row["fell_back"] else ""),
                    flush=True,
                )
    print(table(rows))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
