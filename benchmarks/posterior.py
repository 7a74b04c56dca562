"""Posterior back-ends: time, convergence on the coefficients and interval coverage.

Data: ``simulate.make_low_rank`` with p = 3 predictors, two informative
covariates, rank 2, noise 0.3 (the setting named in issue 3). For each seed
the MAP is fitted with default settings, then the posterior is sampled with
the default ``sample_posterior`` settings of the method.

Reported per run: sampling time (wall, compilation included, fresh JAX
caches only for the first run of a process), max split R-hat and min bulk
and tail ESS over every coefficient and intercept, divergences, and the
share of true coefficients (and intercepts) inside the 90% HDI.

    python benchmarks/posterior.py --method nuts --n-samples 200 --seeds 0 1 2
    python benchmarks/posterior.py --method vi --n-samples 20000 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bayes_prsn import PersonalizedRegression, simulate


def run(method: str, n_samples: int, seed: int, prob: float = 0.9) -> dict:
    data = simulate.make_low_rank(
        n_samples=n_samples,
        n_features=3,
        n_informative=2,
        n_noise_covariates=0,
        rank=2,
        noise=0.3,
        random_state=seed,
    )
    start = time.perf_counter()
    estimator = PersonalizedRegression(random_state=seed).fit(
        data.X, data.y, covariates=data.covariates
    )
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    estimator.sample_posterior(method=method, random_state=seed)
    seconds = time.perf_counter() - start
    lower, upper = estimator.coef_interval(prob)
    inside = (data.coef >= lower) & (data.coef <= upper)
    ilower, iupper = estimator.intercept_interval(prob)
    inside_intercept = (data.intercept >= ilower) & (data.intercept <= iupper)
    from bayes_prsn import arviz_compat

    posterior_mean = arviz_compat.group(estimator.idata_, "posterior")["coef"].values.mean(
        axis=(0, 1)
    )
    diagnostics = estimator.posterior_diagnostics_
    return {
        "method": method,
        "n_samples": n_samples,
        "seed": seed,
        "fit_seconds": round(fit_seconds, 2),
        "posterior_seconds": round(seconds, 2),
        "max_rhat": diagnostics.get("max_rhat"),
        "min_ess_bulk": diagnostics.get("min_ess_bulk"),
        "min_ess_tail": diagnostics.get("min_ess_tail"),
        "divergences": diagnostics.get("divergences"),
        "coverage_coef": float(inside.mean()),
        "coverage_intercept": float(inside_intercept.mean()),
        "coverage_all": float(np.concatenate([inside.ravel(), inside_intercept]).mean()),
        "theta_mse_map": float(np.mean((estimator.coef_ - data.coef) ** 2)),
        "theta_mse_posterior_mean": float(
            np.mean((posterior_mean.reshape(data.coef.shape) - data.coef) ** 2)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="nuts", choices=["nuts", "laplace", "vi"])
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="JSON file (default under results/)")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        row = run(args.method, args.n_samples, seed)
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["posterior_seconds", "max_rhat", "min_ess_bulk", "coverage_coef", "coverage_all"]
    medians = {
        key: float(np.median([r[key] for r in rows if r[key] is not None]))
        for key in keys
        if any(r[key] is not None for r in rows)
    }
    print("median:", json.dumps(medians))
    out = (
        Path(args.out)
        if args.out
        else (Path(__file__).parent / "results" / f"posterior_{args.method}_{args.n_samples}.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": rows, "median": medians}, indent=2) + "\n")


if __name__ == "__main__":
    main()
