"""Recovery of per-sample coefficients: bayes_prsn (defaults) against the population GLM.

For every generator in :mod:`bayes_prsn.simulate` and several seeds, the
script simulates training and held-out samples, fits the population GLM and
bayes_prsn with default settings, and reports

* theta-MSE: mean squared error of the per-sample coefficients against the
  truth, on training samples (``coef_``) and on held-out samples
  (``predict_coef``), and its ratio to the population model's;
* held-out predictive error (each family's ``predictive_loss``: MSE for
  gaussian, mean absolute error for student_t, log-loss for bernoulli and
  binomial, mean Poisson deviance for poisson and negative_binomial, mean
  gamma deviance for gamma), and its ratio;
* fit time of ``fit`` in this process (compiled code is reused across fits of
  the same shapes; see ``--cold`` for a fit in a fresh process).

Results: a markdown table on stdout and JSON under ``benchmarks/results/``.

    python benchmarks/recovery.py                 # all generators, 3 seeds
    python benchmarks/recovery.py --generators toy,null --seeds 1
    python benchmarks/recovery.py --cold 3        # fresh-process fit time, N=2000, p=10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bayes_prsn.models import family as family_of

from bayes_prsn import PersonalizedClassifier, PersonalizedRegression, simulate

RESULTS = Path(__file__).resolve().parent / "results"
HELD_OUT = 0.2


def _link(X, coef, intercept):
    return np.sum(X * coef, axis=1) + intercept


def run_one(name: str, seed: int) -> dict:
    generator = simulate.GENERATORS[name]
    n_train = generator.__defaults__[0]
    n_total = int(round(n_train / (1 - HELD_OUT)))
    data = generator(n_samples=n_total, random_state=1000 + seed)
    train, test = data.subset(np.arange(n_train)), data.subset(np.arange(n_train, n_total))
    if data.family == "bernoulli":
        est = PersonalizedClassifier(random_state=seed)
    else:
        est = PersonalizedRegression(family=data.family, random_state=seed)
    start = time.perf_counter()
    est.fit(train.X, train.y, covariates=train.covariates, **train.fit_inputs)
    seconds = time.perf_counter() - start

    pop_coef, pop_intercept = est.population_coef_, est.population_intercept_
    new_coef, new_intercept = (
        est.predict_coef(test.covariates),
        est.predict_intercept(test.covariates),
    )
    # The held-out samples' log exposure and trials, where the generator has them.
    shift = 0.0 if test.exposure is None else np.log(test.exposure)
    aux = {} if test.trials is None else {"trials": test.trials}
    row = {
        "generator": name,
        "seed": seed,
        "n_train": n_train,
        "n_features": data.X.shape[1],
        "family": data.family,
        "fit_seconds": seconds,
        "steps": int(est.n_steps_),
        "theta_mse_train": float(np.mean((est.coef_ - train.coef) ** 2)),
        "theta_mse_train_population": float(np.mean((pop_coef - train.coef) ** 2)),
        "theta_mse_test": float(np.mean((new_coef - test.coef) ** 2)),
        "theta_mse_test_population": float(np.mean((pop_coef - test.coef) ** 2)),
        "pred_error_test": family_of(data.family).predictive_loss(
            _link(test.X, new_coef, new_intercept) + shift, test.y, **aux
        ),
        "pred_error_test_population": family_of(data.family).predictive_loss(
            _link(test.X, pop_coef, pop_intercept) + shift, test.y, **aux
        ),
    }
    row["theta_ratio_train"] = row["theta_mse_train"] / row["theta_mse_train_population"]
    row["theta_ratio_test"] = row["theta_mse_test"] / row["theta_mse_test_population"]
    row["pred_ratio_test"] = row["pred_error_test"] / row["pred_error_test_population"]
    return row


COLD_SCRIPT = """
import time
from bayes_prsn import PersonalizedRegression, simulate
data = simulate.make_low_rank(n_samples=2000, n_features=10, random_state={seed})
start = time.perf_counter()
PersonalizedRegression(random_state=0).fit(data.X, data.y, covariates=data.covariates)
print(time.perf_counter() - start)
"""


def cold_fit_seconds(repeats: int) -> list[float]:
    """Fit time of N=2000, p=10 in fresh processes (JAX compilation included)."""
    times = []
    for seed in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT.format(seed=seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def table(rows: list[dict]) -> str:
    lines = [
        "| generator | n | theta-MSE train (pop) | ratio | theta-MSE held-out (pop) | ratio "
        "| pred. error held-out (pop) | ratio | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["generator"] for r in rows):
        group = [r for r in rows if r["generator"] == name]

        def med(key, group=group):
            return float(np.median([r[key] for r in group]))

        lines.append(
            f"| {name} | {group[0]['n_train']} "
            f"| {med('theta_mse_train'):.4g} ({med('theta_mse_train_population'):.4g}) "
            f"| {med('theta_ratio_train'):.3f} "
            f"| {med('theta_mse_test'):.4g} ({med('theta_mse_test_population'):.4g}) "
            f"| {med('theta_ratio_test'):.3f} "
            f"| {med('pred_error_test'):.4g} ({med('pred_error_test_population'):.4g}) "
            f"| {med('pred_ratio_test'):.3f} | {med('fit_seconds'):.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default=",".join(simulate.GENERATORS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cold", type=int, default=0, help="fresh-process timing repeats")
    parser.add_argument("--out", default=str(RESULTS / "recovery.json"))
    args = parser.parse_args(argv)

    rows = []
    for name in args.generators.split(","):
        for seed in range(args.seeds):
            row = run_one(name, seed)
            rows.append(row)
            print(
                f"{name} seed={seed}: theta ratio train {row['theta_ratio_train']:.3f}, "
                f"held-out {row['theta_ratio_test']:.3f}, pred ratio "
                f"{row['pred_ratio_test']:.3f}, {row['fit_seconds']:.1f} s",
                file=sys.stderr,
            )
    report = {"rows": rows, "table": table(rows), "medians_over_seeds": True}
    print(report["table"])
    if args.cold:
        cold = cold_fit_seconds(args.cold)
        report["cold_fit_seconds_n2000_p10"] = cold
        print(
            f"\nfit N=2000, p=10 in a fresh process (compilation included): median "
            f"{np.median(cold):.1f} s, runs {[round(t, 1) for t in cold]}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
