r"""Coefficients for new samples from their covariates: the new-sample rule, in one place.

Two rules, both under the learned covariate metric
:math:`\rho_\phi(u, v) = \sum_l \phi_l d_l(u_l, v_l)`:

``"neighbors"``
    the mean of the coefficients of the ``n_neighbors`` training samples
    nearest to the new one. With the covariate encoder, the new code is the
    encoder's output :math:`g(u_*)` plus the mean residual code
    :math:`Z_j - g(u_j)` of those neighbours (the rule that the training
    samples' ``coef_`` follow too);
``"embedding"``
    the conditional MAP of the new sample's code :math:`Z_*` under the
    distance-matching potential to those neighbours, the code prior (centred
    on :math:`g(u_*)`) and :math:`\psi`, with :math:`Q`, :math:`\phi` and the
    training codes fixed: :math:`\theta_* = \bar\theta + Q^\top Z_*`. The
    terms are the model's own (:mod:`bayes_prsn.models`).

Neighbours are found with a tree search (L1 distance on phi-weighted
coordinates), so memory is O(n_new * n_neighbors). The posterior
counterpart, :func:`predictive_draws`, applies the neighbours' rule to every
posterior draw of the codes.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from .adam import adam_update
from .models import (
    code_log_prior,
    coef_log_prior,
    distance_potential,
    encode_covariates,
    family,
)
from .preprocessing import (
    EncodedCovariates,
    NeighbourSearch,
    encoder_features,
    neighbour_space,
    pair_distances,
)

__all__ = [
    "PREDICT_METHODS",
    "NEIGHBOUR_CHUNK",
    "neighbour_tree",
    "nearest_training",
    "encoder_output",
    "training_codes",
    "pooled_residuals",
    "residual_spread_draws",
    "average_theta",
    "predict_mean_theta",
    "predict_theta",
    "predictive_draws",
]

PREDICT_METHODS = ("neighbors", "embedding")
#: Samples whose neighbours' codes are gathered at once (bounds the memory of
#: the (rows, n_neighbors, rank) codes, for ``coef_`` and for predictions).
NEIGHBOUR_CHUNK = 65_536


def neighbour_tree(train: EncodedCovariates, weights: np.ndarray) -> NeighbourSearch:
    """Tree search over the training samples under the phi-weighted metric."""
    return NeighbourSearch(neighbour_space(train, weights))


def nearest_training(new: EncodedCovariates, tree, weights: np.ndarray, k: int) -> np.ndarray:
    """Indices (n_new, k) of the nearest training samples of each new sample."""
    return tree.query(neighbour_space(new, weights), k)


def encoder_output(encoder_weights, encoded: EncodedCovariates) -> np.ndarray:
    """The encoder's output g(u) (model units) for these covariates."""
    return np.asarray(encode_covariates(encoder_features(encoded), *encoder_weights), dtype=float)


def _encoder_shift(params, train, encoded, neighbours: np.ndarray) -> np.ndarray:
    """How far the encoder moves each new code from its neighbours' mean code.

    ``g(u_new)`` minus the mean of ``g`` over the new sample's nearest
    training samples (``neighbours``, shape (n_new, k)); zero without an
    encoder. A new sample's code is its neighbours' mean code plus this,
    i.e. the encoder's output plus the neighbours' mean residual. Only the
    neighbours' rows are encoded, not the whole training set.
    """
    if params.encoder_weights is None:
        return np.zeros((encoded.n_samples, params.embedding.shape[1]))
    around = encoder_output(params.encoder_weights, train.take(neighbours.ravel()))
    around = around.reshape(*neighbours.shape, -1).mean(axis=1)
    return encoder_output(params.encoder_weights, encoded) - around


def _neighbour_chunks(params, tree, encoded, k: int):
    """(rows, their covariates, their ``k`` nearest training samples), ``NEIGHBOUR_CHUNK`` rows
    at a time, which bounds the memory of the gathered (rows, k, rank) codes."""
    for start in range(0, encoded.n_samples, NEIGHBOUR_CHUNK):
        rows = np.arange(start, min(start + NEIGHBOUR_CHUNK, encoded.n_samples))
        part = encoded.take(rows)
        yield rows, part, nearest_training(part, tree, params.covariate_weights, k)


def _neighbour_codes(params, train, tree, encoded, k: int) -> np.ndarray:
    """Codes from the nearest training samples: their mean code plus the encoder's shift.

    I.e. ``g(u)`` plus the neighbours' mean MAP residual.
    """
    codes = np.empty((encoded.n_samples, params.embedding.shape[1]))
    for rows, part, index in _neighbour_chunks(params, tree, encoded, k):
        codes[rows] = params.embedding[index].mean(axis=1) + _encoder_shift(
            params, train, part, index
        )
    return codes


def training_codes(params, train: EncodedCovariates, tree, k: int) -> np.ndarray:
    """The training samples' codes behind ``coef_``.

    Without the encoder, the MAP codes. With it, each sample's code is the
    encoder's output ``g(u_i)`` plus the mean MAP residual of its ``k``
    nearest training samples under the learned metric (itself included):
    the rule new samples get under the default ``predict_method="neighbors"``,
    so ``predict_coef`` on the training covariates then gives ``coef_``. A
    sample's own residual is fitted to its single observation and carries
    its noise; the distance-matching prior says that neighbours share their
    codes, and the mean over them keeps the shared part. Measured on the
    benchmark generators (``benchmarks/peers.py``, training samples'
    theta-MSE, own residual against the neighbours' mean): clustered 0.0067
    against 0.0020, low_rank 0.0015 against 0.0012, raw_units 94 against 78,
    toy 0.00365 against 0.00373, and equal on logistic, poisson and null.
    """
    if params.encoder_weights is None:
        return params.embedding
    return _neighbour_codes(params, train, tree, train, k)


def pooled_residuals(state, encoded: EncodedCovariates) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's pooled residual code and the Cholesky factor of its standard error.

    The pooled residual (n, rank) is the mean MAP residual
    :math:`Z_j - g(u_j)` of the sample's ``n_neighbors`` nearest training
    samples: the code behind ``coef_`` (training samples) and ``predict_coef``
    (new ones) is the encoder's output plus it
    (:mod:`bayes_prsn.models.shared`). Its standard error is those residuals'
    covariance divided by their number (the posterior of a local mean under
    a flat prior, the residuals' covariance plugged in); the factors have
    shape (n, rank, rank), and the posterior adds this uncertainty to that of
    the shared parts (:mod:`bayes_prsn.sampling`). One neighbour search
    serves both. Needs the encoder.
    """
    params = state.params
    train = params.embedding - encoder_output(params.encoder_weights, state.encoded)
    rank = train.shape[1]
    residuals = np.empty((encoded.n_samples, rank))
    factors = np.empty((encoded.n_samples, rank, rank))
    for rows, part, index in _neighbour_chunks(
        params, state.neighbours, encoded, state.n_neighbors
    ):
        codes = params.embedding[index].mean(axis=1) + _encoder_shift(
            params, state.encoded, part, index
        )
        residuals[rows] = codes - encoder_output(params.encoder_weights, part)
        around = train[index]
        k = index.shape[1]
        deviation = around - around.mean(axis=1, keepdims=True)
        covariance = np.einsum("nka,nkb->nab", deviation, deviation) / max(k - 1, 1) / k
        factors[rows] = np.linalg.cholesky(covariance + 1e-12 * np.eye(rank))
    return residuals, factors


def residual_spread_draws(factors, dictionary, noise) -> np.ndarray:
    """Draws (n_draws, n, n_columns) of the coefficients' share of the pooled residuals' error.

    ``noise`` (n_draws, n, rank) holds standard normal draws.
    """
    return np.einsum("nab,dnb->dna", factors, noise) @ dictionary


def average_theta(thetas) -> np.ndarray:
    """The mean of the fits' coefficients (model units; every fit has the same scaling)."""
    thetas = list(thetas)
    return thetas[0] if len(thetas) == 1 else np.mean(thetas, axis=0)


def predict_mean_theta(state, encoded, *, method, n_neighbors, gamma, prior):
    """New samples' coefficients (model units) averaged over the fits of ``coef_``
    (``state.fits``: one, or ``n_fits``; :mod:`bayes_prsn.averaging`)."""
    settings = {"method": method, "n_neighbors": n_neighbors, "gamma": gamma, "prior": prior}
    return average_theta(
        predict_theta(fit, encoded, prior_scale=float(fit.settings["prior_scale"]), **settings)
        for fit in state.fits
    )


def predict_theta(state, encoded, *, method, n_neighbors, gamma, prior, prior_scale):
    """New samples' coefficients (model units) by ``method`` (see the module docstring)."""
    params = state.params
    if method == "neighbors":
        if params.encoder_weights is not None:
            codes = _neighbour_codes(params, state.encoded, state.neighbours, encoded, n_neighbors)
            return params.offset + codes @ params.dictionary
        index = nearest_training(encoded, state.neighbours, params.covariate_weights, n_neighbors)
        return state.theta[index].mean(axis=1)
    index = nearest_training(encoded, state.neighbours, params.covariate_weights, n_neighbors)
    code_mean = None
    if params.encoder_weights is not None:
        code_mean = encoder_output(params.encoder_weights, encoded)
    return _conditional_map(
        encoded,
        index,
        state.encoded,
        params,
        gamma=gamma,
        prior=prior,
        prior_scale=prior_scale,
        code_mean=code_mean,
        code_scale=state.code_scale,
    )


def _conditional_map(
    new,
    index,
    train,
    params,
    *,
    gamma: float,
    prior: str,
    prior_scale: float,
    n_steps: int = 300,
    step_size: float = 0.05,
    epsilon: float = 1e-3,
    code_mean: np.ndarray | None = None,
    code_scale: float = 1.0,
) -> np.ndarray:
    """Conditional MAP of new codes under the distance-matching potential.

    ``code_mean`` (n_new, rank) is the codes' prior mean (the covariate
    encoder's output; zero when omitted) and ``code_scale`` its scale.
    """
    import jax.numpy as jnp

    weights, dictionary = params.covariate_weights, params.dictionary
    repeated = new.take(np.repeat(np.arange(new.n_samples), index.shape[1]))
    rho = (pair_distances(repeated, train.take(index.ravel())) @ weights).reshape(index.shape)
    neighbours = params.embedding[index]  # (n_new, k, rank)
    start = neighbours.mean(axis=1)
    if code_mean is None:
        code_mean = np.zeros_like(start)
    solve = _solver(prior, n_steps, float(step_size), float(epsilon))
    codes = solve(
        jnp.asarray(start),
        jnp.asarray(neighbours),
        jnp.asarray(rho),
        jnp.asarray(code_mean),
        jnp.asarray(dictionary),
        float(gamma),
        float(prior_scale),
        float(code_scale),
    )
    return params.offset + np.asarray(codes) @ dictionary


@functools.lru_cache(maxsize=8)
def _solver(prior: str, n_steps: int, step_size: float, epsilon: float):
    import jax
    import jax.numpy as jnp

    def negative_log_density(code, neighbours, rho, mean, dictionary, gamma, prior_scale, scale):
        # The model's own terms: the potential, the code prior and psi.
        value = distance_potential(neighbours, code, rho, gamma, epsilon=epsilon)
        value -= code_log_prior(code, mean, scale)
        value -= coef_log_prior(code @ dictionary, prior, prior_scale)
        return value

    grad = jax.grad(negative_log_density)

    def solve_one(start, neighbours, rho, mean, dictionary, gamma, prior_scale, scale):
        def step(carry, t):
            code, m, v = carry
            g = grad(code, neighbours, rho, mean, dictionary, gamma, prior_scale, scale)
            return adam_update(code, g, m, v, t + 1.0, step_size), None

        zeros = jnp.zeros_like(start)
        (code, _, _), _ = jax.lax.scan(step, (start, zeros, zeros), jnp.arange(n_steps))
        return code

    return jax.jit(jax.vmap(solve_one, in_axes=(0, 0, 0, 0, None, None, None, None)))


def predictive_draws(
    state,
    posterior,
    X,
    encoded,
    *,
    n_neighbors,
    noise: bool,
    seed,
    eta_offset=0.0,
):
    """Posterior draws (draws, n_new) of new samples' mean response (or response).

    With draws of the shared parts (the default target), a new sample's
    coefficients in each draw are the target's function of its covariates,
    :math:`\bar\theta + Q^\top (g(u_*) + \bar r_*)`, with :math:`\bar r_*`
    its neighbours' pooled residual (:func:`pooled_residuals`). With code
    draws (no encoder) they are the mean of its nearest training samples'
    coefficients in that draw. A posterior pooled over refits
    (:mod:`bayes_prsn.pooling`) gives each fit's draws in turn, this fit's
    first, as its ArviZ data order them. ``noise`` adds the observation noise (the
    drawn noise scale where it was sampled; the family's ``df`` or
    ``concentration`` at the MAP; the binomial family, whose new samples
    have no number of trials, gives the probability of success either
    way). ``eta_offset`` is the new samples' log exposure. Rows are
    processed in blocks so that no intermediate exceeds about 32 MB.
    """
    rng = np.random.default_rng(seed)
    eta = [_draws_eta(state, posterior, X, encoded, n_neighbors, rng)]
    for params, refit in posterior.refits:
        # A refit's MAP on the same training data (bayes_prsn.pooling).
        fit = dataclasses.replace(
            state, params=params, neighbours=neighbour_tree(state.encoded, params.covariate_weights)
        )
        eta.append(_draws_eta(fit, refit, X, encoded, n_neighbors, rng))
    eta = np.concatenate(eta) + eta_offset
    likelihood = family(state.family)
    if not noise or state.family == "binomial":
        return likelihood.mean(eta)
    scale = posterior.noise_scale
    if posterior.noise_draws is not None:
        scale = posterior.noise_draws.reshape(-1)[:, None]
    aux = {site: state.settings[site] for site in likelihood.parameters}
    aux.update((posterior.scales or {}).get("likelihood", {}))
    return likelihood.replicate(eta, scale, np.random.default_rng(seed), **aux)


def _shared_eta(state, posterior, X, encoded, rng) -> np.ndarray:
    from .models import linearised_coefficients

    draws = {k: v.reshape(-1, *v.shape[2:]) for k, v in posterior.shared_draws.items()}
    n_draws = next(iter(draws.values())).shape[0]
    features = encoder_features(encoded)
    residual, spread = pooled_residuals(state, encoded)
    dictionary = posterior.shared_centre["dictionary"]
    scales = posterior.input_scales
    eta = np.empty((n_draws, X.shape[0]))
    block = max(1, int(4e6 // max(n_draws * state.params.dictionary.shape[1], 1)))
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        theta = np.asarray(
            linearised_coefficients(
                posterior.shared_centre, draws, features[rows], residual[rows], scales
            )
        )
        noise = rng.standard_normal((n_draws, theta.shape[1], spread.shape[1]))
        theta = theta + residual_spread_draws(spread[rows], dictionary, noise)
        coef, intercept = state.to_original_units(theta.reshape(-1, theta.shape[-1]))
        coef = coef.reshape(*theta.shape[:2], -1)
        eta[:, rows] = np.sum(X[rows] * coef, axis=-1) + intercept.reshape(theta.shape[:2])
    return eta


def _draws_eta(state, posterior, X, encoded, n_neighbors, rng) -> np.ndarray:
    """Linear predictors (draws, n_new) of one fit's draws."""
    if posterior.shared_draws is not None:
        return _shared_eta(state, posterior, X, encoded, rng)
    return _code_eta(state, posterior, X, encoded, n_neighbors)


def _code_eta(state, posterior, X, encoded, n_neighbors) -> np.ndarray:
    params = state.params
    neighbours = nearest_training(encoded, state.neighbours, params.covariate_weights, n_neighbors)
    codes = posterior.code_draws.reshape(-1, *posterior.code_draws.shape[2:])
    correction = _encoder_shift(params, state.encoded, encoded, neighbours)
    n_draws, n_new = codes.shape[0], X.shape[0]
    block = max(1, int(8e6 // (n_draws * neighbours.shape[1] * codes.shape[2])))
    eta = np.empty((n_draws, n_new))
    for start in range(0, n_new, block):
        rows = slice(start, start + block)
        theta = params.offset + (
            (codes[:, neighbours[rows]].mean(axis=2) + correction[rows]) @ params.dictionary
        )
        coef, intercept = state.to_original_units(theta.reshape(-1, theta.shape[-1]))
        coef = coef.reshape(*theta.shape[:2], -1)
        eta[:, rows] = np.sum(X[rows] * coef, axis=-1) + intercept.reshape(theta.shape[:2])
    return eta
