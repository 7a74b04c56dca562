"""The joint log-density: sites, shapes, finiteness at the start, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from bayes_prsn.models import FAMILIES, distance_potential, pair_potential, personalized_regression
from numpyro import handlers
from numpyro.infer.util import log_density


def _family_inputs(family, y, n=30):
    """``(y, options, site values)`` valid for ``family`` (from 0/1 values ``y``)."""
    options, sites = {}, {}
    if family == "binomial":
        options["trials"] = jnp.full(n, 3.0)
    if family == "gamma":
        y, options["concentration"] = y + 0.5, 2.0
    if family == "negative_binomial":
        sites["concentration"] = jnp.asarray(3.0)
    if family == "student_t":
        sites["df"] = jnp.asarray(4.0)
    return y, options, sites


def _inputs(n=30, p=3, m=2, n_pairs=60, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.standard_normal((n, p)), np.ones(n)])
    pairs = np.stack([rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)], axis=1)
    distances = np.abs(rng.standard_normal((n_pairs, m)))
    return X, pairs, distances


@pytest.mark.parametrize("family", FAMILIES)
def test_sites_and_shapes(family):
    X, pairs, distances = _inputs()
    y, options, _ = _family_inputs(family, np.ones(X.shape[0]))
    with handlers.seed(rng_seed=0):
        trace = handlers.trace(personalized_regression).get_trace(
            X, pairs, distances, y, family=family, rank=2, **options
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
    assert ("noise_scale" in trace) == (family in ("gaussian", "student_t"))


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
    if family in ("gaussian", "student_t"):
        params["noise_scale"] = jnp.asarray(0.5)
    y, options, sites = _family_inputs(family, y)
    params.update(sites)

    def value(p):
        return log_density(
            personalized_regression,
            (X, pairs, distances, y),
            {"family": family, "rank": 2, "prior": prior, **options},
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


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_pair_potential_is_distance_potential_in_another_layout(rank, weighted):
    """The full-batch model's potential: the same value and gradients as the plain sum."""
    rng = np.random.default_rng(rank)
    n, n_pairs, m = 50, 400, 3
    pairs = jnp.asarray(rng.integers(0, n, (n_pairs, 2)))
    distances = jnp.asarray(np.abs(rng.normal(size=(n_pairs, m))), dtype=jnp.float32)
    pair_weights = jnp.asarray(rng.uniform(0.1, 1.0, n_pairs)) if weighted else None
    embedding = jnp.asarray(rng.normal(size=(n, rank)), dtype=jnp.float32)
    weights = jnp.asarray([0.5, 1.0, 2.0])

    def plain(embedding, weights):
        return distance_potential(
            embedding[pairs[:, 0]],
            embedding[pairs[:, 1]],
            distances @ weights,
            0.7,
            pair_weights=pair_weights,
        )

    def fast(embedding, weights):
        return pair_potential(embedding, pairs, distances, weights, 0.7, pair_weights=pair_weights)

    expected = jax.value_and_grad(plain, argnums=(0, 1))(embedding, weights)
    got = jax.value_and_grad(fast, argnums=(0, 1))(embedding, weights)
    # float32 sums in another order: a few ulps of the largest terms.
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
    for g, e in zip(got[1], expected[1], strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(e))))


def test_bad_family_and_prior():
    X, pairs, distances = _inputs()
    with handlers.seed(rng_seed=0), pytest.raises(ValueError, match="family must be one of"):
        personalized_regression(X, pairs, distances, np.zeros(30), family="tweedie")
    with handlers.seed(rng_seed=0), pytest.raises(ValueError, match="prior must be one of"):
        personalized_regression(X, pairs, distances, np.zeros(30), prior="horseshoe")


@pytest.mark.parametrize("encoder_width", [0, 4])
@pytest.mark.parametrize("family", FAMILIES)
def test_minibatch_density_is_unbiased(family, encoder_width):
    """With every sample and pair in the batch the minibatch density is the full one;
    over random batches its mean matches the full density (and so does the gradient)."""
    from bayes_prsn.models import personalized_regression_minibatch

    X, pairs, distances = (jnp.asarray(a) for a in _inputs())
    n, n_pairs = X.shape[0], pairs.shape[0]
    rng = np.random.default_rng(2)
    y, extra_options, sites = _family_inputs(family, rng.integers(0, 2, n).astype(float))
    y = jnp.asarray(y)
    features = jnp.asarray(rng.standard_normal((n, 3)))
    code_site = "code_residual" if encoder_width else "embedding"
    params = {
        code_site: jnp.asarray(0.3 * rng.standard_normal((n, 2))),
        "dictionary": jnp.asarray(rng.standard_normal((2, 4))),
        "covariate_weights": jnp.ones(2),
        "offset": jnp.zeros(4),
    }
    if encoder_width:
        params["encoder_in"] = jnp.asarray(rng.standard_normal((3, encoder_width)))
        params["encoder_bias"] = jnp.asarray(rng.standard_normal(encoder_width))
        params["encoder_out"] = jnp.asarray(rng.standard_normal((encoder_width, 2)))
    options = {
        "family": family,
        "rank": 2,
        "gamma": 2.0,
        "embedding_scale": 0.5,
        "noise_scale": 0.7,
        "encoder_width": encoder_width,
        "covariate_features": features,
        "pair_weights": jnp.linspace(0.5, 1.0, n_pairs),
        **extra_options,
    }
    params.update(sites)
    full = float(log_density(personalized_regression, (X, pairs, distances, y), options, params)[0])

    def minibatch(batch, pair_batch, p=params):
        args = (X, pairs, distances, y, batch, pair_batch)
        return log_density(personalized_regression_minibatch, args, options, p)[0]

    everything = float(minibatch(jnp.arange(n), jnp.arange(n_pairs)))
    np.testing.assert_allclose(everything, full, rtol=1e-5)
    # The gradient of the whole batch equals the full model's gradient.
    full_grad = jax.grad(
        lambda p: log_density(personalized_regression, (X, pairs, distances, y), options, p)[0]
    )(params)
    batch_grad = jax.grad(lambda p: minibatch(jnp.arange(n), jnp.arange(n_pairs), p))(params)
    for name in params:
        np.testing.assert_allclose(batch_grad[name], full_grad[name], rtol=1e-4, atol=1e-4)
    # A site local to the batch (``positions``, as run_svi passes it) gives
    # the same density, and each sample's gradient is its row's gradient.
    batch, pair_batch = jnp.asarray([3, 0, 3, 7]), jnp.asarray([1, 4, 4])
    ends = np.asarray(pairs)[np.asarray(pair_batch)]
    touched = np.concatenate([np.asarray(batch), ends[:, 0], ends[:, 1]])
    rows, positions = np.unique(touched, return_inverse=True)
    # The site has one row per touched entry; rows past the unique ones are unused.
    site = jnp.zeros((touched.size, 2)).at[: rows.size].set(params[code_site][rows])
    local = dict(params, **{code_site: site})

    def local_density(p):
        args = (X, pairs, distances, y, batch, pair_batch)
        opts = dict(options, positions=jnp.asarray(positions))
        return log_density(personalized_regression_minibatch, args, opts, p)[0]

    np.testing.assert_allclose(
        float(local_density(local)), float(minibatch(batch, pair_batch)), rtol=1e-6
    )
    dense_grad = jax.grad(lambda p: minibatch(batch, pair_batch, p))(params)[code_site]
    local_grad = jax.grad(local_density)(local)[code_site]
    np.testing.assert_allclose(local_grad[: rows.size], dense_grad[rows], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(local_grad)[rows.size :] == 0)
    untouched = np.setdiff1d(np.arange(n), rows)
    assert np.all(np.asarray(dense_grad)[untouched] == 0)
    # Mean over many random batches (with replacement, as in run_svi); the
    # likelihood's scaling is the same for every family, so one suffices.
    if family != "gaussian":
        return
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    batches = jax.vmap(lambda k: jax.random.randint(k, (5,), 0, n))(keys)
    pair_batches = jax.vmap(lambda k: jax.random.randint(k, (7,), 0, n_pairs))(keys[::-1])
    values = jax.vmap(minibatch)(batches, pair_batches)
    standard_error = float(values.std()) / np.sqrt(len(values))
    assert abs(float(values.mean()) - full) < 4 * standard_error


def test_encoder_input_scales():
    """The units' prior scales run geometrically from 1 to encoder_scale (all 1 at 1)."""
    from bayes_prsn.models import encoder_input_scales

    scales = np.asarray(encoder_input_scales(100.0, 5))
    np.testing.assert_allclose(scales, [1.0, 100**0.25, 10.0, 100**0.75, 100.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(encoder_input_scales(1.0, 4)), np.ones(4))


def test_encoder_input_weights_are_non_centred():
    """The site holds W_1 divided by each unit's prior scale, with a N(0, 1) prior.

    The codes are the encoder's output with the rescaled weights plus the
    residual, and the site's log-prior is the standard normal's whatever the
    encoder_scale.
    """
    from bayes_prsn.models import encode_covariates, encoder_input_scales

    X, pairs, distances = _inputs()
    features = np.random.default_rng(1).standard_normal((X.shape[0], 2))
    with handlers.seed(rng_seed=0):
        trace = handlers.trace(personalized_regression).get_trace(
            X,
            pairs,
            distances,
            np.ones(X.shape[0]),
            rank=2,
            covariate_features=features,
            encoder_width=3,
            encoder_scale=4.0,
        )
    w_raw = trace["encoder_in"]["value"]
    np.testing.assert_allclose(
        float(trace["encoder_in"]["fn"].log_prob(w_raw)),
        float(dist.Normal(0.0, 1.0).log_prob(w_raw).sum()),
        rtol=1e-6,
    )
    weights = encoder_input_scales(4.0, 3) * w_raw
    codes = encode_covariates(
        features, weights, trace["encoder_bias"]["value"], trace["encoder_out"]["value"]
    )
    codes = codes + trace["code_residual"]["value"]
    deviation = codes @ trace["dictionary"]["value"]
    # coef_prior is log N(deviation; 0, prior_scale = 1) summed.
    np.testing.assert_allclose(
        float(trace["coef_prior"]["fn"].log_factor),
        float(dist.Normal(0.0, 1.0).log_prob(deviation).sum()),
        rtol=1e-5,
    )
