"""Shared fixtures: CPU only, fixed seeds, small data, fitted models reused per session."""

import os

# Pin JAX to the CPU before anything imports it (a GPU box must give the same results).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import copy  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bayes_prsn import (  # noqa: E402
    ConvergenceWarning,
    PersonalizedClassifier,
    PersonalizedRegression,
    simulate,
)


@pytest.fixture(scope="session")
def toy():
    return simulate.make_toy(n_samples=240, random_state=0)


@pytest.fixture(scope="session")
def fitted_toy(toy):
    return PersonalizedRegression(random_state=0).fit(toy.X, toy.y, covariates=toy.covariates)


@pytest.fixture
def fitted_toy_copy(fitted_toy):
    """A copy of ``fitted_toy`` that a test may change (sample its posterior, say)."""
    return copy.deepcopy(fitted_toy)


@pytest.fixture(scope="session")
def clustered():
    return simulate.make_clustered(n_samples=200, random_state=1)


@pytest.fixture(scope="session")
def fitted_clustered(clustered):
    return PersonalizedRegression(random_state=0).fit(
        clustered.X, clustered.y, covariates=clustered.covariates
    )


@pytest.fixture(scope="session")
def logistic():
    return simulate.make_logistic(n_samples=200, random_state=2)


@pytest.fixture(scope="session")
def fitted_classifier(logistic):
    return PersonalizedClassifier(random_state=0).fit(
        logistic.X, logistic.y, covariates=logistic.covariates
    )


@pytest.fixture(scope="session")
def framed():
    """Small gaussian data as DataFrames with a non-default index."""
    data = simulate.make_small_low_rank(n_samples=120, random_state=5)
    index = pd.Index([f"s{i}" for i in range(data.n_samples)], name="patient")
    X = pd.DataFrame(data.X, columns=["a", "b", "c"], index=index)
    covariates = data.covariates.set_axis(index)
    return data, X, covariates


@pytest.fixture(scope="session")
def short_nuts(framed):
    """A deliberately short NUTS run (it must warn that it did not converge)."""
    data, X, covariates = framed
    estimator = PersonalizedRegression(random_state=0).fit(X, data.y, covariates=covariates)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.sample_posterior(num_warmup=30, num_samples=20, num_chains=2, random_state=1)
    return estimator, [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


#: Test files that take longest, longest first (per-file sums of ``--durations=0``,
#: ``pytest -n 2 --dist loadfile`` at c84ecf9 on the 2-core AVX-512 machine,
#: 2026-12-06). With ``-n 2 --dist loadfile`` each file runs whole on one worker;
#: starting the long ones first (longest processing time first) keeps one worker
#: from finishing a long file alone at the end. Files not listed run last.
LONGEST_FILES = (
    "test_readme.py",
    "test_families.py",
    "test_examples.py",
    "test_posterior.py",
    "test_smoothing.py",
    "test_golden.py",
    "test_models.py",
    "test_reliability.py",
    "test_sklearn_checks.py",
    "test_sklearn.py",
    "test_pooling.py",
    "test_coverage.py",
    "test_properties.py",
    "test_calibration.py",
    "test_estimator.py",
    "test_cli.py",
    "test_svi.py",
    "test_recovery.py",
    "test_sharding.py",
    "test_analysis.py",
    "test_first_hour.py",
    "test_plots.py",
)


def pytest_configure(config):
    # pytest-xdist otherwise queues files by their number of tests, not their length.
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """Run the longest files first (the order of tests within a file is kept)."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
