"""Coverage of the true per-sample coefficients by default ``fit`` and ``sample_posterior`` calls.

On a simulation whose truth is known (seeds the benchmarks do not use). Its
own file, apart from ``test_calibration.py``, so that the two longest
statistical tests run on different workers (``pytest -n 2 --dist loadfile``).
"""

import warnings

import numpy as np
import pytest

from bayes_prsn import ConvergenceWarning, PersonalizedRegression, simulate


def _coverage(estimator, data, levels=(0.5, 0.8, 0.9, 0.95)):
    from bayes_prsn import arviz_compat

    posterior = arviz_compat.group(estimator.idata_, "posterior")
    draws = np.concatenate(
        [posterior["coef"].values, posterior["intercept"].values[..., None]], axis=-1
    )
    draws = draws.reshape(-1, *draws.shape[2:])
    truth = np.column_stack([data.coef, data.intercept])
    found = {}
    for level in levels:
        lower, upper = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
        found[level] = float(np.mean((truth >= lower) & (truth <= upper)))
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    sharpness = np.sqrt(np.mean((mean - truth) ** 2)) / np.sqrt(np.mean(sd**2))
    return found, float(sharpness)


@pytest.mark.slow
def test_default_nuts_covers_at_every_level():
    """Default fit and NUTS on the issue-3 setting, N = 200, four data sets (seeds 11-14).

    Issue 15's targets, on the average over the data sets: each of the
    50/80/90/95% intervals covers within +-0.05 of its level and posterior
    mean RMSE / posterior sd is in 0.8-1.25. One data set's coverage
    scatters around the average with a standard deviation of about 0.05
    (nine benchmark seeds), so the targets are checked on the mean of four.
    Every run must also converge by the issue's measure: max split R-hat
    <= 1.01, min bulk ESS >= 400, no divergences. Intervals must stay
    informative: 90% intervals narrower on average than 60% of the spread
    of the true coefficients across samples.
    """
    coverages, sharpness = [], []
    for seed in (11, 12, 13, 14):
        data = simulate.make_small_low_rank(n_samples=200, random_state=seed)
        estimator = PersonalizedRegression(random_state=seed).fit(
            data.X, data.y, covariates=data.covariates
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            estimator.sample_posterior(random_state=seed)
        diagnostics = estimator.posterior_diagnostics_
        assert diagnostics["divergences"] == 0
        assert diagnostics["max_rhat"] <= 1.01
        assert diagnostics["min_ess_bulk"] >= 400
        coverage, sharp = _coverage(estimator, data)
        coverages.append(coverage)
        sharpness.append(sharp)
        lower, upper = estimator.coef_interval(0.9)
        spread = 0.6 * 2 * 1.645 * data.coef.std(axis=0)
        assert np.all((upper - lower).mean(axis=0) < spread)
    for level in coverages[0]:
        found = np.mean([coverage[level] for coverage in coverages])
        assert abs(found - level) <= 0.05, (level, found)
    assert 0.8 <= np.mean(sharpness) <= 1.25, sharpness
