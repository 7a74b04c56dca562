"""Uncertainty on every sample's model: NUTS from the MAP fit, intervals, ArviZ.

    python examples/uncertainty.py                 # N=200, 4 chains x 2000 draws
    python examples/uncertainty.py --n-samples 80 --num-warmup 100 --num-samples 100

Fits the MAP, samples the posterior with NUTS (every chain starts at the
MAP), prints the convergence diagnostics on the coefficients, the share of
true coefficients inside their 90% intervals and a summary of two samples,
then writes the standard plots to ``uncertainty_output/``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from bayes_prsn import ConvergenceWarning, PersonalizedRegression, simulate


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=200)
    parser.add_argument("--num-warmup", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=2000)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--out", default="uncertainty_output")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # Three predictors whose coefficients vary smoothly with two covariates.
    data = simulate.make_small_low_rank(n_samples=args.n_samples, random_state=args.seed)
    est = PersonalizedRegression(random_state=args.seed).fit(
        data.X, data.y, covariates=data.covariates
    )

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.sample_posterior(
            method="nuts",
            num_warmup=args.num_warmup,
            num_samples=args.num_samples,
            num_chains=args.num_chains,
            random_state=args.seed,
        )
    seconds = time.perf_counter() - start
    for warning in caught:
        print(f"warning: {warning.message}")

    lower, upper = est.coef_interval(prob=0.9)
    inside = np.mean((data.coef >= lower) & (data.coef <= upper))
    diagnostics = est.posterior_diagnostics_
    lines = [
        f"NUTS: {args.num_chains} chains x {args.num_samples} draws in {seconds:.1f} s",
        f"  max split R-hat over coefficients: {diagnostics['max_rhat']:.4f}",
        f"  min bulk ESS: {diagnostics['min_ess_bulk']:.0f}, divergences: "
        f"{diagnostics['divergences']}",
        f"  true coefficients inside their 90% HDI: {inside:.3f}",
        "",
        str(est.summary(samples=[0, 1]).round(3)),
    ]
    text = "\n".join(lines)
    print(text)
    (out / "summary.txt").write_text(text + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayes_prsn import plots

    figures = {
        "forest.png": plots.plot_coefficients(est, samples=[0, 1, 2, 3, 4])[0],
        "trace.png": plots.plot_trace(est, samples=[0], features=[0, 1])[0],
        "coefficient_vs_covariate.png": plots.plot_coefficient_vs_covariate(
            est, 0, data.covariates.columns[0], truth=data.coef[:, 0]
        )[0],
        "ppc.png": plots.plot_ppc(est)[0],
    }
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)
        plt.close(figure)
    print(f"wrote {', '.join(figures)} to {out}/")


if __name__ == "__main__":
    main()
