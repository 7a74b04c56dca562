"""Could the training residuals say how much too narrow the default posterior is?

A measurement for issue 15 (large-N gaussian intervals too narrow), not a
feature. For one data set of a gaussian generator: a default fit and its
default Laplace posterior (``refits=0``), then a regression of each
training sample's squared residual ``r_i^2 = (y_i - x_i^T coef_i -
intercept_i)^2`` on ``v_i``, the posterior variance of its linear
predictor:

    E[r_i^2] = s + k v_i

If the posterior's spread were right up to one factor, ``k`` would be that
factor and ``s`` the noise variance (a quasi-likelihood dispersion, for the
coefficients instead of the noise). Reported beside it, from the known
truth: the factor that makes the linear predictors' mean squared error equal
their mean posterior variance (``oracle``), the coefficients' squared
sharpness, and the coverage of the 50/80/90/95% intervals as drawn, widened
about the posterior mean by ``sqrt(k - 2 se)`` (the estimate's lower
bound, at least 1) and by ``sqrt(oracle)``. A second regression splits
``v_i`` into the coefficients' part and the intercept's.

    python benchmarks/residual_scale.py --generator low_rank --n-samples 5000 --seed 100
    python benchmarks/residual_scale.py --generator toy --n-samples 1000 --seed 100

Data and fits as in ``posterior.py`` (a quarter more samples drawn, the
first ``--n-samples`` fitted). Results:
``results/residual_scale_<generator>_<N>_<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from posterior import _split, coverage, draws_truth_point, make_data

from bayes_prsn import PersonalizedRegression

RESULTS = Path(__file__).resolve().parent / "results"


def _least_squares(columns: list, target: np.ndarray):
    """Coefficients and their standard errors."""
    design = np.column_stack(columns)
    beta, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ beta
    covariance = np.linalg.pinv(design.T @ design) * residual.var()
    return beta, np.sqrt(np.diag(covariance))


def _coverage(draws, truth, factor: float) -> list[float]:
    return [round(found, 3) for found in coverage(draws, truth, factor)]


def run(generator: str, n_samples: int, seed: int) -> dict:
    data = make_data(generator, n_samples, seed)
    if data.family != "gaussian":
        raise SystemExit(f"{generator} is not gaussian: the regression needs a noise variance.")
    (X, y, covariates), _ = _split(data, n_samples)
    start = time.perf_counter()
    estimator = PersonalizedRegression(random_state=seed).fit(X, y, covariates=covariates)
    estimator.sample_posterior("laplace", random_state=seed, refits=0)
    seconds = time.perf_counter() - start
    draws, truth, _ = draws_truth_point(estimator, data, n_samples)
    coef, intercept = draws[..., :-1], draws[..., -1]
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    slopes = np.einsum("snp,np->sn", coef, X)
    variance = (slopes + intercept).var(axis=0)
    fitted = np.einsum("np,np->n", estimator.coef_, X) + estimator.intercept_
    squared = (y - fitted) ** 2
    ones = np.ones(n_samples)
    (noise, factor), (_, factor_se) = _least_squares([ones, variance], squared)
    split, _ = _least_squares([ones, slopes.var(axis=0), intercept.var(axis=0)], squared)
    true_linear = np.einsum("np,np->n", truth[:, :-1], X) + truth[:, -1]
    oracle = float(np.mean((true_linear - fitted) ** 2) / np.mean(variance))
    true_slopes = np.einsum("np,np->n", truth[:, :-1] - estimator.coef_, X)
    lower_bound = max(1.0, float(factor - 2 * factor_se))
    return {
        "generator": generator,
        "n_samples": n_samples,
        "seed": seed,
        "seconds": round(seconds, 1),
        "noise_variance_true": float(data.info.get("noise", np.nan)) ** 2,
        "noise_variance_posterior": float(estimator.posterior_noise_scale_) ** 2,
        "intercept_s": float(noise),
        "factor_k": float(factor),
        "factor_se": float(factor_se),
        "factor_lower_bound": lower_bound,
        "factor_oracle": oracle,
        "sharpness_squared": float(np.mean((mean - truth) ** 2) / np.mean(sd**2)),
        "split_factor_coefficients": float(split[1]),
        "split_factor_intercept": float(split[2]),
        "split_oracle_coefficients": float(np.mean(true_slopes**2) / slopes.var(axis=0).mean()),
        "coverage_as_drawn": _coverage(draws, truth, 1.0),
        "coverage_lower_bound": _coverage(draws, truth, lower_bound),
        "coverage_oracle": _coverage(draws, truth, oracle),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="low_rank")
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    row = run(args.generator, args.n_samples, args.seed)
    print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    name = f"residual_scale_{args.generator}_{args.n_samples}_{args.seed}.json"
    (RESULTS / name).write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
