"""Shared fixtures: CPU only, fixed seeds, small data, fitted models reused per session."""

import os

# Pin JAX to the CPU before anything imports it (a GPU box must give the same results).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bayes_prsn import PersonalizedClassifier, PersonalizedRegression, simulate  # noqa: E402


@pytest.fixture(scope="session")
def toy():
    return simulate.make_toy(n_samples=240, random_state=0)


@pytest.fixture(scope="session")
def fitted_toy(toy):
    return PersonalizedRegression(random_state=0).fit(toy.X, toy.y, covariates=toy.covariates)


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


@pytest.fixture
def rng():
    return np.random.default_rng(0)
