"""Where the error of ``coef_`` comes from, against the width of the default posterior.

For one data set of a generator, fits with several ``random_state`` values
(which draw the held-out split, the random pairs and the start) and, for
each, the default Laplace posterior. Reported, averaged over coefficients
and intercepts (original units):

- ``error2``: mean squared error of ``coef_`` against the truth;
- ``posterior_var``: mean posterior variance (Laplace draws);
- ``between_var``: variance of ``coef_`` between the random states on the
  same data (the optimisation's and the held-out choice's share of the
  error, which no posterior of one fit sees);
- ``cover90``: share of the truth inside the 90% equal-tailed intervals,
  with the learned (type-II maximum likelihood) prior precisions of the
  shared parts, and ``cover90_flat`` with those precisions divided by
  ``1e6`` (a flat prior: the spread of the shared parts is then their
  likelihood's alone), each fit's mean.

    python benchmarks/error_budget.py --generator negative_binomial --seed 2001
    python benchmarks/error_budget.py --generator issue3 --n-samples 1000 --seed 100

``issue3`` is ``make_small_low_rank`` (as in ``posterior.py``). The
``cover90_flat`` variant replaces :func:`bayes_prsn.evidence.mackay_scales`
inside this process only. Results: ``results/error_budget_<generator>_<N>_<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: Factor dividing the learned prior precisions in the ``flat`` variant.
FLAT = 1e6


def _data(generator: str, n_samples: int, seed: int):
    from bayes_prsn import simulate

    if generator == "issue3":
        return simulate.make_small_low_rank(n_samples=n_samples, random_state=seed)
    return simulate.GENERATORS[generator](n_samples=n_samples, random_state=seed)


def _flat_scales(original):
    """``mackay_scales`` with the learned precisions divided by :data:`FLAT`."""
    from bayes_prsn import evidence

    def scales(gram, squared_error, flat, shapes, has_noise, n_samples):
        precisions, noise, effective, _, iterations = original(
            gram, squared_error, flat, shapes, has_noise, n_samples
        )
        precisions = {name: value / FLAT for name, value in precisions.items()}
        precision = gram / noise + np.diag(evidence.precision_vector(precisions, shapes))
        covariance = np.linalg.inv(0.5 * (precision + precision.T))
        return precisions, noise, effective, 0.5 * (covariance + covariance.T), iterations

    return scales


def _posterior(est, truth, seed):
    idata = est.sample_posterior("laplace", random_state=seed)
    post = idata.posterior
    draws = np.concatenate([post["coef"].values, post["intercept"].values[..., None]], axis=-1)
    draws = draws.reshape(-1, *truth.shape)
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    return float(np.mean((truth >= low) & (truth <= high))), draws.var(axis=0)


def run(generator: str, n_samples: int, seed: int, states) -> dict:
    from bayes_prsn import PersonalizedRegression, evidence

    data = _data(generator, n_samples, seed)
    truth = np.column_stack([data.coef, data.intercept])
    learned = evidence.mackay_scales
    rows, fits = [], []
    for state in states:
        est = PersonalizedRegression(family=data.family, random_state=state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(data.X, data.y, data.covariates, **data.fit_inputs)
            fitted = np.column_stack([est.coef_, est.intercept_])
            cover, variance = _posterior(est, truth, state)
            evidence.mackay_scales = _flat_scales(learned)
            try:
                cover_flat, variance_flat = _posterior(est, truth, state)
            finally:
                evidence.mackay_scales = learned
        fits.append(fitted)
        row = {
            "random_state": state,
            "error2": float(np.mean((fitted - truth) ** 2)),
            "posterior_var": float(np.mean(variance)),
            "posterior_var_flat": float(np.mean(variance_flat)),
            "cover90": cover,
            "cover90_flat": cover_flat,
            "fallback": est.validation_scores_ is not None
            and est.validation_scores_["chosen"] >= len(est.validation_scores_["scores"]),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    between = float(np.mean(np.var(np.array(fits), axis=0, ddof=1)))
    summary = {
        key: float(np.mean([r[key] for r in rows]))
        for key in ("error2", "posterior_var", "posterior_var_flat", "cover90", "cover90_flat")
    }
    summary["between_var"] = between
    return {
        "generator": generator,
        "n_samples": n_samples,
        "seed": seed,
        "fits": rows,
        "summary": summary,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="negative_binomial")
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2001)
    parser.add_argument("--states", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    result = run(args.generator, args.n_samples, args.seed, args.states)
    RESULTS.mkdir(exist_ok=True)
    name = f"error_budget_{args.generator}_{args.n_samples}_{args.seed}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1))
    s = result["summary"]
    print(
        "| generator | N | seed | fits | error^2 | posterior var | between random states "
        "| error^2 / posterior var | cover 90% | posterior var, flat | cover 90%, flat |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {args.generator} | {args.n_samples} | {args.seed} | {len(result['fits'])} "
        f"| {s['error2']:.3g} | {s['posterior_var']:.3g} | {s['between_var']:.3g} "
        f"| {s['error2'] / s['posterior_var']:.2f} | {s['cover90']:.3f} "
        f"| {s['posterior_var_flat']:.3g} | {s['cover90_flat']:.3f} |"
    )


if __name__ == "__main__":
    main()
