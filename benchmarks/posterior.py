"""Posterior back-ends: interval coverage at four levels, sharpness, coherence, time, convergence.

For each seed, data come from a ``bayes_prsn.simulate`` generator at its
default settings (``--generator issue3``: ``make_small_low_rank``, that is
``make_low_rank`` with p = 3, two informative covariates, rank 2, noise 0.3,
the setting of the earlier tables), with ``--n-samples`` training samples plus a quarter as many new
samples from the same draw. The MAP is fitted with default settings, then
``sample_posterior(method=...)`` runs with its defaults.

Reported per run:
- coverage: share of the true per-sample coefficients and intercepts inside
  their equal-tailed 50, 80, 90 and 95% intervals;
- sharpness: RMSE of the posterior mean / root mean posterior variance
  (1 when the intervals are as wide as the errors);
- coherence: median |coef_ - posterior mean| / posterior sd;
- theta-MSE (coefficients, no intercepts) of ``coef_`` and of the posterior mean;
- predictive coverage (gaussian): share of the new samples' responses inside
  their 50 and 90% posterior predictive intervals;
- sampling seconds (compilation, the learned scales and the ArviZ
  conversion included), and for NUTS max split R-hat, min bulk and tail ESS
  over every coefficient and intercept, and divergences.

    python benchmarks/posterior.py --generator issue3 --n-samples 200 --method nuts --seeds 100 101
    python benchmarks/posterior.py --generator logistic --n-samples 1000 --method laplace
    python benchmarks/posterior.py --generator low_rank --n-samples 1000 --method laplace --refits 3

``--refits`` is ``sample_posterior``'s: ``auto`` (the default: 3 refits
where one held-out split chose the smoothing, 1,000 to 20,000 samples) or a
number ``k`` of refits with other random states pooled with the fit's
posterior; the sampling seconds include the refits, and each run records
how many were pooled.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_prsn import (
    ConvergenceWarning,
    PersonalizedClassifier,
    PersonalizedRegression,
    arviz_compat,
    simulate,
)

LEVELS = (0.5, 0.8, 0.9, 0.95)


def make_data(generator: str, n_samples: int, seed: int):
    total = n_samples + n_samples // 4
    if generator == "issue3":
        return simulate.make_small_low_rank(n_samples=total, random_state=seed)
    return simulate.GENERATORS[generator](n_samples=total, random_state=seed)


def _split(data, n_samples: int):
    cov = data.covariates
    train = (data.X[:n_samples], data.y[:n_samples], cov.iloc[:n_samples])
    new = (data.X[n_samples:], data.y[n_samples:], cov.iloc[n_samples:].reset_index(drop=True))
    return train, new


def _refits(text: str):
    return "auto" if text == "auto" else int(text)


def default_estimator(data, seed: int, n_fits="auto"):
    """The default estimator for ``data``'s family (the classifier for 0/1 data)."""
    if data.family == "bernoulli":
        return PersonalizedClassifier(random_state=seed, n_fits=n_fits)
    return PersonalizedRegression(family=data.family, random_state=seed, n_fits=n_fits)


def draws_truth_point(estimator, data, n_samples: int):
    """Posterior draws (draw, sample, coefficients + intercept), the truth and ``coef_``
    of the first ``n_samples`` samples, each with the intercept as the last column."""
    posterior = arviz_compat.group(estimator.idata_, "posterior")
    draws = np.concatenate(
        [posterior["coef"].values, posterior["intercept"].values[..., None]], axis=-1
    )
    draws = draws.reshape(-1, *draws.shape[2:])
    truth = np.column_stack([data.coef[:n_samples], data.intercept[:n_samples]])
    point = np.column_stack([estimator.coef_, estimator.intercept_])
    return draws, truth, point


def coverage(draws, truth, factor: float = 1.0) -> list[float]:
    """Share of ``truth`` inside the equal-tailed intervals of ``draws`` at each of
    :data:`LEVELS`, the intervals widened about the draws' mean by ``sqrt(factor)``."""
    mean, widen = draws.mean(axis=0), np.sqrt(factor)
    found = []
    for level in LEVELS:
        lower, upper = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        if factor != 1.0:
            lower, upper = mean + widen * (lower - mean), mean + widen * (upper - mean)
        found.append(float(np.mean((truth >= lower) & (truth <= upper))))
    return found


def run(
    generator: str,
    method: str,
    n_samples: int,
    seed: int,
    refits="auto",
    n_fits="auto",
    num_samples=None,
) -> dict:
    data = make_data(generator, n_samples, seed)
    (X, y, cov), (X_new, y_new, cov_new) = _split(data, n_samples)
    estimator = default_estimator(data, seed, n_fits)
    # Exposures and trials of the training samples (negative_binomial, binomial, gamma).
    extras = {
        name: getattr(data, name)[:n_samples]
        for name in ("exposure", "trials")
        if getattr(data, name, None) is not None
    }
    start = time.perf_counter()
    estimator.fit(X, y, covariates=cov, **extras)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.sample_posterior(
            method=method, random_state=seed, refits=refits, num_samples=num_samples
        )
    seconds = time.perf_counter() - start
    draws, truth, point = draws_truth_point(estimator, data, n_samples)
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    row = {
        "generator": generator,
        "family": data.family,
        "method": method,
        "n_samples": n_samples,
        "seed": seed,
        # The refits pooled ("auto" resolved: 3 where one split chose the smoothing).
        "refits": estimator.posterior_state_.fits - 1,
        # The fits averaged into coef_ ("auto" resolved: 4 where the refits are pooled).
        "n_fits": len(estimator.fit_state_.fits),
        "fit_seconds": round(fit_seconds, 2),
        "posterior_seconds": round(seconds, 2),
    }
    for level, found in zip(LEVELS, coverage(draws, truth), strict=True):
        row[f"coverage_{round(100 * level)}"] = found
    row["sharpness"] = float(np.sqrt(np.mean((mean - truth) ** 2)) / np.sqrt(np.mean(sd**2)))
    row["coherence"] = float(np.median(np.abs(point - mean) / sd))
    row["theta_mse_map"] = float(np.mean((point[:, :-1] - truth[:, :-1]) ** 2))
    row["theta_mse_posterior_mean"] = float(np.mean((mean[:, :-1] - truth[:, :-1]) ** 2))
    # The first fit's own coefficients (coef_ itself unless n_fits averaged several).
    first, _ = estimator.fit_state_.to_original_units(estimator.fit_state_.theta)
    row["theta_mse_first_fit"] = float(np.mean((first - truth[:, :-1]) ** 2))
    if data.family == "gaussian":
        for level in (0.5, 0.9):
            _, lower, upper = estimator.predict(
                X_new, covariates=cov_new, return_interval=True, prob=level
            )
            inside = (y_new >= lower) & (y_new <= upper)
            row[f"predictive_coverage_{round(100 * level)}"] = float(inside.mean())
    diagnostics = estimator.posterior_diagnostics_
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences"):
        row[key] = diagnostics.get(key)
    row["convergence_warnings"] = len(caught)
    scales = estimator.posterior_state_.scales
    if scales is not None:
        row["effective_parameters"] = round(scales["effective_parameters"], 1)
    row["noise_scale"] = estimator.posterior_noise_scale_
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="issue3", choices=["issue3", *simulate.GENERATORS])
    parser.add_argument("--method", default="nuts", choices=["nuts", "laplace", "vi"])
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    parser.add_argument("--refits", type=_refits, default="auto", help="auto or a number")
    parser.add_argument("--n-fits", type=_refits, default="auto", help="auto or a number")
    parser.add_argument(
        "--num-samples", type=int, default=None, help="draws per fit (default: the method's)"
    )
    parser.add_argument("--out", default=None, help="JSON file (default under results/)")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        row = run(
            args.generator,
            args.method,
            args.n_samples,
            seed,
            args.refits,
            args.n_fits,
            args.num_samples,
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    fixed = ("generator", "family", "method", "n_samples", "seed", "refits")
    keys = [k for k in rows[0] if k not in fixed]
    medians = {
        key: float(np.median([r[key] for r in rows if r.get(key) is not None]))
        for key in keys
        if any(r.get(key) is not None for r in rows)
    }
    print("median:", json.dumps(medians))
    pooled = f"_refits{args.refits}" if args.refits != "auto" else ""
    name = f"posterior_{args.generator}_{args.method}_{args.n_samples}{pooled}.json"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": rows, "median": medians}, indent=2) + "\n")


if __name__ == "__main__":
    main()
