"""Coefficients for new samples from their covariates.

Two rules, both under the learned covariate metric
:math:`\\rho_\\phi(u, v) = \\sum_l \\phi_l d_l(u_l, v_l)`:

``"neighbors"``
    the mean of the coefficients of the ``n_neighbors`` training samples
    nearest to the new one;
``"embedding"``
    the conditional MAP of the new sample's code :math:`Z_*` under the
    distance-matching potential to those neighbours, the code prior and
    :math:`\\psi`, with :math:`Q`, :math:`\\phi` and the training codes fixed:
    :math:`\\theta_* = \\bar\\theta + Q^\\top Z_*`.

Neighbours are found with a tree search (L1 distance on phi-weighted
coordinates), so memory is O(n_new * n_neighbors).
"""

from __future__ import annotations

import functools

import numpy as np

from .preprocessing import EncodedCovariates, NeighbourSearch, neighbour_space, pair_distances

__all__ = [
    "PREDICT_METHODS",
    "neighbour_search",
    "nearest_training",
    "predict_neighbors",
    "predict_embedding",
]

PREDICT_METHODS = ("neighbors", "embedding")


def neighbour_search(train: EncodedCovariates, weights: np.ndarray, n_neighbors: int):
    """Tree search over the training samples under the phi-weighted metric.

    Returns ``(search, k)``: the tree and how many neighbours each query asks
    for (a query returns at most every training sample).
    """
    return NeighbourSearch(neighbour_space(train, weights)), n_neighbors


def nearest_training(new: EncodedCovariates, search, weights: np.ndarray) -> np.ndarray:
    """Indices (n_new, k) of the nearest training samples of each new sample."""
    tree, k = search
    return tree.query(neighbour_space(new, weights), k)


def predict_neighbors(new, search, theta_train, weights) -> np.ndarray:
    """Mean of the nearest training samples' (internal) coefficients."""
    return theta_train[nearest_training(new, search, weights)].mean(axis=1)


def predict_embedding(
    new,
    search,
    train,
    embedding,
    dictionary,
    offset,
    weights,
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

    index = nearest_training(new, search, weights)
    repeated = new.take(np.repeat(np.arange(new.n_samples), index.shape[1]))
    rho = (pair_distances(repeated, train.take(index.ravel())) @ weights).reshape(index.shape)
    neighbours = embedding[index]  # (n_new, k, rank)
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
    return offset + np.asarray(codes) @ dictionary


@functools.lru_cache(maxsize=8)
def _solver(prior: str, n_steps: int, step_size: float, epsilon: float):
    import jax
    import jax.numpy as jnp

    def negative_log_density(code, neighbours, rho, mean, dictionary, gamma, prior_scale, scale):
        gaps = jnp.sqrt(jnp.sum((neighbours - code) ** 2, axis=-1) + epsilon**2)
        value = 0.5 * gamma * jnp.sum((rho - gaps) ** 2)
        value += 0.5 * jnp.sum(((code - mean) / scale) ** 2)
        deviation = code @ dictionary
        if prior == "normal":
            value += 0.5 * jnp.sum((deviation / prior_scale) ** 2)
        else:
            value += jnp.sum(jnp.abs(deviation) / prior_scale)
        return value

    grad = jax.grad(negative_log_density)

    def solve_one(start, neighbours, rho, mean, dictionary, gamma, prior_scale, scale):
        # Adam, written out to keep the dependency list short.
        def step(carry, t):
            code, m, v = carry
            g = grad(code, neighbours, rho, mean, dictionary, gamma, prior_scale, scale)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            m_hat = m / (1.0 - 0.9 ** (t + 1.0))
            v_hat = v / (1.0 - 0.999 ** (t + 1.0))
            code = code - step_size * m_hat / (jnp.sqrt(v_hat) + 1e-8)
            return (code, m, v), None

        zeros = jnp.zeros_like(start)
        (code, _, _), _ = jax.lax.scan(step, (start, zeros, zeros), jnp.arange(n_steps))
        return code

    return jax.jit(jax.vmap(solve_one, in_axes=(0, 0, 0, 0, None, None, None, None)))
