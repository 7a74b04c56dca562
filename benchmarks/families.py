"""The newer families at their generators' defaults: robustness to outliers, intervals for
overdispersed counts.

* ``outliers``: :func:`~bayes_prsn.simulate.make_student_t` (2,000 samples,
  t noise with 3 degrees of freedom), clean and with 5% of the responses
  replaced by gross outliers (10 sd); theta-MSE (coefficients and
  intercepts, against the truth) of the student_t and the gaussian family.
* ``coverage``: :func:`~bayes_prsn.simulate.make_negative_binomial`
  (2,000 samples, concentration 5, exposures); the share of the true
  coefficients inside the 50% and 90% intervals of the default posterior
  (Laplace and NUTS) of the negative_binomial and of the poisson family,
  both given the exposure. ``--refits``: ``sample_posterior``'s (``auto``,
  the default, pools 3 refits here, where one split chooses the smoothing;
  ``0`` one fit's posterior); the posterior mean's theta-MSE is reported
  beside ``coef_``'s.

Seeds 2001, 2002, ... (the tests use others). Median over seeds.

    python benchmarks/families.py                       # both, 3 seeds (NUTS: 2)
    python benchmarks/families.py --part coverage --seeds 1
    python benchmarks/families.py --part coverage --refits 0 --nuts-seeds 1
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_prsn import PersonalizedRegression, arviz_compat, simulate

RESULTS = Path(__file__).resolve().parent / "results"


def _theta_mse(estimator, data) -> float:
    fitted = np.column_stack([estimator.coef_, estimator.intercept_])
    return float(np.mean((fitted - np.column_stack([data.coef, data.intercept])) ** 2))


def outliers(seed: int) -> dict:
    row = {"seed": seed}
    clean = simulate.make_student_t(random_state=2000 + seed)
    dirty = simulate.make_student_t(outlier_fraction=0.05, random_state=2000 + seed)
    for name in ("student_t", "gaussian"):
        for label, data in (("clean", clean), ("outliers", dirty)):
            estimator = PersonalizedRegression(family=name, random_state=seed)
            estimator.fit(data.X, data.y, data.covariates)
            row[f"{name}_{label}"] = _theta_mse(estimator, data)
            if name == "student_t":
                row[f"df_{label}"] = float(estimator.fit_state_.settings["df"])
    for name in ("student_t", "gaussian"):
        row[f"{name}_ratio"] = row[f"{name}_outliers"] / row[f"{name}_clean"]
    return row


def _refits(text: str):
    return "auto" if text == "auto" else int(text)


def coverage(seed: int, methods, refits="auto") -> dict:
    data = simulate.make_negative_binomial(random_state=2000 + seed)
    truth = np.column_stack([data.coef, data.intercept])
    row = {"seed": seed}
    for name in ("negative_binomial", "poisson"):
        estimator = PersonalizedRegression(family=name, random_state=seed)
        estimator.fit(data.X, data.y, data.covariates, exposure=data.exposure)
        row[f"{name}_theta_mse"] = _theta_mse(estimator, data)
        row[f"{name}_fallback"] = bool(estimator.likelihood_scale_ != 1.0)
        for method in methods:
            start = time.perf_counter()
            estimator.sample_posterior(method, random_state=seed, refits=refits)
            row[f"{name}_{method}_seconds"] = time.perf_counter() - start
            row[f"{name}_{method}_refits"] = estimator.posterior_state_.fits - 1
            group = arviz_compat.group(estimator.idata_, "posterior")
            mean = np.column_stack(
                [group["coef"].mean(("chain", "draw")), group["intercept"].mean(("chain", "draw"))]
            )
            row[f"{name}_{method}_post_mean_mse"] = float(np.mean((mean - truth) ** 2))
            for prob in (0.5, 0.8, 0.9, 0.95):
                low, high = estimator.coef_interval(prob)
                b_low, b_high = estimator.intercept_interval(prob)
                low, high = np.column_stack([low, b_low]), np.column_stack([high, b_high])
                inside = (truth >= low) & (truth <= high)
                row[f"{name}_{method}_cover{int(100 * prob)}"] = float(inside.mean())
    return row


def _median(rows, key):
    return float(np.median([r[key] for r in rows if key in r]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["outliers", "coverage", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first-seed, ...")
    parser.add_argument("--nuts-seeds", type=int, default=2)
    parser.add_argument("--refits", type=_refits, default="auto", help="auto or a number")
    parser.add_argument("--out", default=str(RESULTS / "families.json"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    report = {}
    if args.part in ("outliers", "both"):
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        rows = [outliers(seed) for seed in seeds]
        report["outliers"] = rows
        print("| family | theta-MSE clean | with 5% outliers | ratio |\n|---|---|---|---|")
        for name in ("student_t", "gaussian"):
            print(
                f"| {name} | {_median(rows, name + '_clean'):.4g} "
                f"| {_median(rows, name + '_outliers'):.4g} "
                f"| {_median(rows, name + '_ratio'):.2f} |"
            )
    if args.part in ("coverage", "both"):
        rows = [
            coverage(
                seed,
                ("laplace", "nuts") if seed <= args.nuts_seeds else ("laplace",),
                args.refits,
            )
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
        report["coverage"] = rows
        print(
            "| family | method | cover 50% | cover 80% | cover 90% | cover 95% | theta-MSE "
            "| post. mean theta-MSE | s |\n|---|---|---|---|---|---|---|---|---|"
        )
        for name in ("negative_binomial", "poisson"):
            for method in ("laplace", "nuts"):
                key = f"{name}_{method}"
                if not any(f"{key}_cover90" in r for r in rows):
                    continue
                print(
                    f"| {name} | {method} | {_median(rows, key + '_cover50'):.3f} "
                    f"| {_median(rows, key + '_cover80'):.3f} "
                    f"| {_median(rows, key + '_cover90'):.3f} "
                    f"| {_median(rows, key + '_cover95'):.3f} "
                    f"| {_median(rows, name + '_theta_mse'):.4g} "
                    f"| {_median(rows, key + '_post_mean_mse'):.4g} "
                    f"| {_median(rows, key + '_seconds'):.1f} |"
                )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
