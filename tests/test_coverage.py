"""Coverage of the true per-sample coefficients by default ``fit`` and ``sample_posterior`` calls.

On a simulation whose truth is known (seeds the benchmarks do not use). Its
own file, apart from ``test_calibration.py``, so that the two longest
statistical tests run on different workers (``pytest -n 2 --dist loadfile``).
"""

import dataclasses
import warnings

import numpy as np
import pytest

from bayes_prsn import (
    ConvergenceWarning,
    PersonalizedClassifier,
    PersonalizedRegression,
    arviz_compat,
    sampling,
    simulate,
)


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


@pytest.mark.slow
def test_default_posterior_of_binary_data_covers_at_every_level():
    """0/1 data, N = 200, four data sets (seeds 21-24, not the benchmarks'): the
    default call (``method="auto"``: Laplace for the bernoulli family) covers the
    true coefficients and intercepts within issue 15's +-0.07 of 50, 80, 90 and
    95% on average. NUTS, the default before, covered 0.31 / 0.58 / 0.71 / 0.81
    on the benchmark's seeds (``benchmarks/README.md``, "The default method for
    0/1 data"); its mean is off the MAP."""
    coverages, coherence = [], []
    for seed in (21, 22, 23, 24):
        data = simulate.make_logistic(n_samples=200, random_state=seed)
        estimator = PersonalizedClassifier(random_state=seed).fit(
            data.X, data.y, covariates=data.covariates
        )
        assert sampling.auto_method(estimator.fit_state_) == "laplace"
        estimator.sample_posterior(random_state=seed)
        assert estimator.posterior_state_.method == "laplace"
        coverage, _ = _coverage(estimator, data)
        coverages.append(coverage)
        posterior = arviz_compat.group(estimator.idata_, "posterior")["coef"].values
        draws = posterior.reshape(-1, *estimator.coef_.shape)
        gap = np.abs(draws.mean(axis=0) - estimator.coef_) / draws.std(axis=0)
        coherence.append(float(np.median(gap)))
    for level in coverages[0]:
        found = np.mean([coverage[level] for coverage in coverages])
        assert abs(found - level) <= 0.07, (level, found, coverages)
    assert max(coherence) < 0.25, coherence


def test_auto_method_is_nuts_except_for_binary_data(fitted_toy, fitted_classifier):
    state = fitted_classifier.fit_state_
    assert sampling.auto_method(fitted_toy.fit_state_) == "nuts"
    assert sampling.auto_method(state) == "laplace"
    # Without the encoder (the code target) 0/1 data keep NUTS: not measured there.
    without = dataclasses.replace(state, params=state.params._replace(encoder_weights=None))
    assert sampling.auto_method(without) == "nuts"
