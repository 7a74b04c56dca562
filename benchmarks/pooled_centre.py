"""A pooled posterior's centre: the mixture of the fits as drawn, or shifted onto ``coef_``?

A measurement for issue 15's coherence target, not a feature. With
``refits=3`` the pooled posterior's mean averages four fits, while
``coef_`` is the estimator's own fit, so the two disagree by a fraction of
a posterior sd (coherence 0.2 to 0.55 below). One way to make them agree
is to shift every pooled draw by ``coef_ - pooled mean`` (the spread
between the fits is kept, the centre becomes ``coef_``). For one data set:
a default fit, ``sample_posterior(method, refits=3)``, and for the draws as
they are and shifted: coverage of the true coefficients and intercepts at
50/80/90/95%, sharpness (RMSE of the mean / root mean variance), coherence
(median ``|coef_ - mean| / sd``) and the mean's theta-MSE (coefficients).

    python benchmarks/pooled_centre.py --generator poisson --n-samples 1000 --seed 100

Data as in ``posterior.py``. Results: ``results/pooled_centre.json`` (one
row per run, appended).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from posterior import _split, coverage, default_estimator, draws_truth_point, make_data

RESULTS = Path(__file__).resolve().parent / "results" / "pooled_centre.json"


def _summary(draws, truth, point) -> dict:
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    return {
        "coverage": [round(found, 3) for found in coverage(draws, truth)],
        "sharpness": round(float(np.sqrt(np.mean((mean - truth) ** 2) / np.mean(sd**2))), 3),
        "coherence": round(float(np.median(np.abs(point - mean) / sd)), 3),
        "mse_mean": float(np.mean((mean[:, :-1] - truth[:, :-1]) ** 2)),
    }


def run(generator: str, n_samples: int, seed: int, method: str) -> dict:
    data = make_data(generator, n_samples, seed)
    (X, y, covariates), _ = _split(data, n_samples)
    estimator = default_estimator(data, seed)
    estimator.fit(X, y, covariates=covariates)
    estimator.sample_posterior(method, random_state=seed, refits=3)
    draws, truth, point = draws_truth_point(estimator, data, n_samples)
    shifted = draws + (point - draws.mean(axis=0))
    return {
        "generator": generator,
        "n_samples": n_samples,
        "seed": seed,
        "method": method,
        "pooled": _summary(draws, truth, point),
        "recentred": _summary(shifted, truth, point),
        "mse_coef": float(np.mean((point[:, :-1] - truth[:, :-1]) ** 2)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="poisson")
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--method", default="laplace", choices=["laplace", "nuts", "vi"])
    args = parser.parse_args()
    row = run(args.generator, args.n_samples, args.seed, args.method)
    print(json.dumps(row), flush=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps([*rows, row], indent=2) + "\n")


if __name__ == "__main__":
    main()
