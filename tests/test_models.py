"""The joint log-density: sites, shapes, finiteness at the start, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from bayes_prsn.models import FAMILIES, personalized_regression
from numpyro import handlers
from numpyro.infer.util import log_density


def _inputs(n=30, p=3, m=2, n_pairs=60, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.standard_normal((n, p)), np.ones(n)])
    pairs = np.stack([rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)], axis=1)
    distances = np.abs(rng.standard_normal((n_pairs, m)))
    return X, pairs, distances


@pytest.mark.parametrize("family", FAMILIES)
def test_sites_and_shapes(family):
    X, pairs, distances = _inputs()
    y = np.ones(X.shape[0])
    with handlers.seed(rng_seed=0):
        trace = handlers.trace(personalized_regression).get_trace(
            X, pairs, distances, y, family=family, rank=2
        )
    assert trace["embedding"]["value"].shape == (30, 2)
    assert trace["dictionary"]["value"].shape == (2, 4)
    assert trace["covariate_weights"]["value"].shape == (2,)
    # y is the only observed site with a real likelihood; the psi prior and the
    # potential are separate factor sites (observed Unit distributions).
    observed = [name for name, site in trace.items() if site.get("is_observed")]
    likelihoods = [n for n in observed if not isinstance(trace[n]["fn"], dist.Unit)]
    assert likelihoods == ["y"]
    assert sorted(set(observed) - {"y"}) == ["coef_prior", "distance_matching"]
    assert ("noise_scale" in trace) == (family == "gaussian")


@pytest.mark.parametrize("prior", ["normal", "laplace"])
@pytest.mark.parametrize("family", FAMILIES)
def test_log_density_and_gradient_finite(family, prior):
    X, pairs, distances = _inputs()
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, X.shape[0]).astype(float)
    params = {
        "embedding": jnp.zeros((30, 2)),  # all codes equal: the norm's kink at zero
        "dictionary": jnp.asarray(rng.standard_normal((2, 4))),
        "covariate_weights": jnp.ones(2),
        "offset": jnp.zeros(4),
    }
    if family == "gaussian":
        params["noise_scale"] = jnp.asarray(0.5)

    def value(p):
        return log_density(
            personalized_regression,
            (X, pairs, distances, y),
            {"family": family, "rank": 2, "prior": prior},
            p,
        )[0]

    assert np.isfinite(float(value(params)))
    grads = jax.grad(value)(params)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf)))


def test_distance_matching_value():
    """The potential equals -(gamma/2) sum (rho - ||Z_i - Z_j||)^2 (up to epsilon)."""
    X, pairs, distances = _inputs(n=5, n_pairs=4)
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    distances = np.ones((4, 2))
    embedding = jnp.arange(10.0).reshape(5, 2)
    params = {
        "embedding": embedding,
        "dictionary": jnp.zeros((2, 4)),
        "covariate_weights": jnp.array([0.5, 1.0]),
        "offset": jnp.zeros(4),
        "noise_scale": jnp.asarray(1.0),
    }
    with handlers.substitute(data=params):
        trace = handlers.trace(personalized_regression).get_trace(
            X, pairs, distances, np.zeros(5), rank=2, gamma=3.0
        )
    gap = np.sqrt(8.0)  # consecutive codes differ by (2, 2)
    expected = -0.5 * 3.0 * 4 * (1.5 - gap) ** 2
    got = float(trace["distance_matching"]["fn"].log_prob(None))
    assert got == pytest.approx(expected, rel=1e-4)


def test_bad_family_and_prior():
    X, pairs, distances = _inputs()
    with handlers.seed(rng_seed=0), pytest.raises(ValueError, match="family must be one of"):
        personalized_regression(X, pairs, distances, np.zeros(30), family="gamma")
    with handlers.seed(rng_seed=0), pytest.raises(ValueError, match="prior must be one of"):
        personalized_regression(X, pairs, distances, np.zeros(30), prior="horseshoe")
