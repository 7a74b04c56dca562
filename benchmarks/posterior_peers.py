"""The posterior mean against ``coef_`` on the datasets of ``peers.py`` (coherence, issue 15).

The same data as ``peers.py`` (each generator at its default size, data seed
1000, the first 80% of samples for training); default ``fit``, then
``sample_posterior(method)`` with its defaults. Reported: theta-MSE
(coefficients, no intercepts, training samples) of ``coef_`` and of the
posterior mean, their ratio, and the median |coef_ - posterior mean| /
posterior sd.

    python benchmarks/posterior_peers.py --method nuts
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_prsn import PersonalizedClassifier, PersonalizedRegression, arviz_compat, simulate

HELD_OUT = 0.2


def run(name: str, method: str) -> dict:
    generator = simulate.GENERATORS[name]
    n_train = generator.__defaults__[0]
    n_total = int(round(n_train / (1 - HELD_OUT)))
    data = generator(n_samples=n_total, random_state=1000)
    X, y, cov = data.X[:n_train], data.y[:n_train], data.covariates.iloc[:n_train]
    truth = data.coef[:n_train]
    if data.family == "bernoulli":
        estimator = PersonalizedClassifier(random_state=0)
    else:
        estimator = PersonalizedRegression(family=data.family, random_state=0)
    estimator.fit(X, y, covariates=cov)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.sample_posterior(method=method, random_state=0)
    seconds = time.perf_counter() - start
    draws = arviz_compat.group(estimator.idata_, "posterior")["coef"].values
    draws = draws.reshape(-1, *draws.shape[2:])
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    mse_map = float(np.mean((estimator.coef_ - truth) ** 2))
    mse_mean = float(np.mean((mean - truth) ** 2))
    # The first fit's own coefficients (coef_ unless n_fits averaged several fits).
    first, _ = estimator.fit_state_.to_original_units(estimator.fit_state_.theta)
    return {
        "dataset": name,
        "n": n_train,
        "method": method,
        "theta_mse_coef": mse_map,
        "theta_mse_posterior_mean": mse_mean,
        "ratio": mse_mean / mse_map,
        "n_fits": len(estimator.fit_state_.fits),
        "fits_pooled": estimator.posterior_state_.fits,
        "theta_mse_first_fit": float(np.mean((first - truth) ** 2)),
        "coherence": float(np.median(np.abs(estimator.coef_ - mean) / sd)),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="nuts", choices=["auto", "nuts", "laplace", "vi"])
    parser.add_argument(
        "--datasets",
        # The newer families' generators: benchmarks/families.py (this script's fits
        # pass no exposure or trials).
        default=",".join(g for g in simulate.GENERATORS if g not in simulate.FAMILY_GENERATORS),
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for name in args.datasets.split(","):
        rows.append(run(name, args.method))
        print(json.dumps(rows[-1]), flush=True)
    name = f"posterior_peers_{args.method}.json"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / name
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
