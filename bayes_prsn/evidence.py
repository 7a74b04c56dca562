r"""The posterior's scales, learned from the data, and its Gaussian approximation.

The target is :func:`bayes_prsn.models.shared_parts`: the shared parts of
the fitted model (encoder, dictionary, offset) are the unknowns, each
sample's pooled residual code is held at what ``coef_`` uses, so the
target's coefficients at the MAP are ``coef_``. Its scales, the prior
precision :math:`\alpha_b` of every block of shared parts and the gaussian
noise scale :math:`\sigma`, are chosen by type-II maximum likelihood: they
maximise the Laplace (Gauss-Newton) approximation of the marginal
likelihood at the MAP, by MacKay's fixed point (MacKay 1992, "Bayesian
interpolation"):

.. math::

    H = J^\top W J + \mathrm{diag}(\alpha), \quad
    \gamma_b = n_b - \alpha_b \operatorname{tr}(H^{-1})_{bb}, \quad
    \alpha_b \leftarrow \frac{\gamma_b}{\lVert w_b \rVert^2}, \quad
    \sigma^2 \leftarrow \frac{\lVert y - \eta \rVert^2}{N - \sum_b \gamma_b},

with :math:`J = \partial \eta / \partial w` the Jacobian of the linear
predictors with respect to the shared parts at the MAP and :math:`W` the
likelihood's curvature in :math:`\eta` (:math:`1/\sigma^2` for gaussian,
:math:`\mu(1-\mu)` for bernoulli, :math:`\mu` for poisson). The result,
:class:`SharedTarget`, holds the learned scales, the effective number of
parameters :math:`\sum_b \gamma_b` and the covariance :math:`H^{-1}` of the
Gaussian (linearised Laplace) approximation centred at the MAP; the Laplace
back-end draws from it and NUTS uses it to precondition its moves. The
prior of the sampled target is centred where its mode is the MAP
(:func:`prior_centre`), so every back-end describes one posterior around
``coef_``.

Cost: :math:`N` rows of :math:`J` with :math:`D` columns (the number of
shared unknowns, a few hundred; not growing with :math:`N`), built in
blocks of rows, and a :math:`D \times D` Cholesky factor per iteration.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .models import SHARED_SITES, encoder_input_scales, family
from .predict import pooled_residuals
from .sample_inputs import MODEL_ARRAYS

__all__ = [
    "MAX_ITERATIONS",
    "SharedTarget",
    "flatten",
    "likelihood_extras",
    "mackay_scales",
    "precision_vector",
    "prior_centre",
    "shared_target",
    "unflatten",
]

#: MacKay iterations at most (they stop earlier when no scale moves by 1e-4).
MAX_ITERATIONS = 200
#: Prior precision of the offset before learning (the MAP's N(0, 10^2)); 1 elsewhere.
_START_PRECISION = {"offset": 0.01}
#: Bounds of a learned precision (a block that the data do not use ends at the top).
_PRECISION_BOUNDS = (1e-8, 1e8)


class SharedTarget(NamedTuple):
    """The sampled target with its learned scales (see the module docstring).

    Attributes
    ----------
    family : str
        The likelihood family.
    X, y : ndarray
        Predictors and response in model units.
    features : ndarray (n_samples, n_inputs)
        The encoder's input.
    residual_codes : ndarray (n_samples, rank)
        Each training sample's pooled residual code (the MAP of the target).
    residual_spread : ndarray (n_samples, rank, rank)
        Cholesky factor of each pooled residual code's standard error
        (:func:`bayes_prsn.predict.pooled_residuals`).
    input_scales : ndarray (width,)
        The hidden units' prior scales (``encoder_in`` times these is :math:`W_1`).
    sites : dict
        MAP value of every shared site.
    shapes : dict
        Shape of every shared site.
    precisions : dict
        Learned prior precision of every shared site.
    noise_scale : float or None
        Learned gaussian noise scale (model units); None for other families.
    effective_parameters : float
        :math:`\\sum_b \\gamma_b`, how many of the shared unknowns the data determine.
    covariance : ndarray (D, D)
        Covariance of the Gaussian approximation, in the order of :func:`flatten`.
    eta : ndarray (n_samples,)
        Linear predictors at the MAP (model units).
    jacobian : ndarray (n_samples, D)
        Their derivatives with respect to the shared parts (float32).
    iterations : int
        MacKay iterations run.
    prior_mean : ndarray (D,) or None
        Centre of the shared parts' prior (:func:`prior_centre`); None: zero.
    extras : dict or None
        The likelihood's other arguments, as the model takes them: the log
        exposure (``eta_offset``), ``trials``, ``sample_weight`` and the
        family's ``df`` or ``concentration`` at the MAP (None: none of them).
    """

    family: str
    X: np.ndarray
    y: np.ndarray
    features: np.ndarray
    residual_codes: np.ndarray
    residual_spread: np.ndarray
    input_scales: np.ndarray
    sites: dict
    shapes: dict
    precisions: dict
    noise_scale: float | None
    effective_parameters: float
    covariance: np.ndarray
    iterations: int
    eta: np.ndarray
    jacobian: np.ndarray
    prior_mean: np.ndarray | None = None
    extras: dict | None = None


def prior_centre(jacobian, residual, flat, precision) -> np.ndarray:
    r"""The prior centre :math:`\mu` at which the linearised target's mode is the MAP.

    The fit's own penalties on the shared parts (the code prior, distance
    matching, the encoder's priors) are not a zero-mean Gaussian; at the
    MAP :math:`\hat w` their gradient balances the likelihood's,
    :math:`g = J^\top r` with :math:`r` the likelihood's derivative in
    :math:`\eta` (:math:`(y - \eta)/\sigma^2` for gaussian, :math:`y - \mu`
    otherwise). The Gaussian prior with the learned precisions
    :math:`\alpha` and centre :math:`\mu = \hat w - g / \alpha` has the same
    gradient there, so :math:`\hat w` stays the posterior mode of the
    linearised model: the Laplace approximation, NUTS and VI then describe
    one posterior around ``coef_``. With the centre at zero, NUTS's posterior
    mean sat a Newton step away from the MAP (issue 15: median
    :math:`|\text{coef\_} - \text{mean}|/\text{sd}` 0.27 to 0.33; logistic
    theta-MSE 1.19 against ``coef_``'s 0.41).
    """
    gradient = np.asarray(jacobian, dtype=float).T @ np.asarray(residual, dtype=float)
    return np.asarray(flat, dtype=float) - gradient / np.asarray(precision, dtype=float)


def flatten(sites: dict, shapes: dict) -> np.ndarray:
    """The sites as one vector (leading batch axes kept), in :data:`SHARED_SITES` order."""
    parts = []
    for name in SHARED_SITES:
        if name in shapes:
            value = np.asarray(sites[name])
            batch = value.shape[: value.ndim - len(shapes[name])]
            parts.append(value.reshape(*batch, -1))
    return np.concatenate(parts, axis=-1)


def unflatten(flat, shapes: dict) -> dict:
    """Inverse of :func:`flatten` (works on NumPy and JAX arrays with batch axes)."""
    sites, start = {}, 0
    batch = flat.shape[:-1]
    for name in SHARED_SITES:
        if name in shapes:
            size = int(np.prod(shapes[name], dtype=int))
            sites[name] = flat[..., start : start + size].reshape(*batch, *shapes[name])
            start += size
    return sites


def _map_sites(state) -> dict:
    params = state.params
    w_in, bias, out = params.encoder_weights
    scales = np.asarray(
        encoder_input_scales(float(state.settings["encoder_scale"]), w_in.shape[1]), dtype=float
    )
    sites = {
        "encoder_in": w_in / scales,
        "encoder_bias": bias,
        "encoder_out": out,
        "dictionary": params.dictionary,
    }
    if state.offset:
        sites["offset"] = params.offset
    return {name: np.asarray(value, dtype=float) for name, value in sites.items()}, scales


@functools.lru_cache(maxsize=1)
def _jacobian_block():
    """``block(flat, X, features, residual, input_scales, shapes=...)``: eta and its Jacobian.

    Compiled once per process and shapes (``shapes`` is static): as a closure
    made in every call of :func:`_jacobian_blocks` it compiled again for every
    posterior (0.3-0.5 s each, and each pooled refit's).
    """
    import jax
    import jax.numpy as jnp

    from .models import shared_coefficients

    @functools.partial(jax.jit, static_argnames="shapes")
    def block(flat, X_part, features_part, residual_part, input_scales, *, shapes):
        shapes = dict(shapes)

        def eta(flat):
            theta = shared_coefficients(
                unflatten(flat, shapes), features_part, residual_part, input_scales
            )
            return jnp.sum(X_part * theta, axis=-1)

        return eta(flat), jax.jacfwd(eta)(flat)

    return block


def _jacobian_blocks(sites, shapes, X, features, residual_codes, input_scales):
    """Rows of :math:`J = \\partial\\eta/\\partial w` at ``sites``, a block at a time, and eta."""
    import jax.numpy as jnp

    flat = jnp.asarray(flatten(sites, shapes), dtype=jnp.float32)
    n_samples, dimension = X.shape[0], flat.shape[0]
    rows = int(min(n_samples, max(256, 4_000_000 // max(dimension, 1))))
    block = _jacobian_block()
    static_shapes = tuple((name, tuple(shape)) for name, shape in shapes.items())
    scales = np.asarray(input_scales, dtype=np.float32)

    for start in range(0, n_samples, rows):
        stop = min(start + rows, n_samples)
        pad = rows - (stop - start)

        def part(array, pad=pad, start=start, stop=stop):
            array = np.asarray(array[start:stop], dtype=np.float32)
            return np.pad(array, [(0, pad)] + [(0, 0)] * (array.ndim - 1))

        eta, jac = block(
            flat, part(X), part(features), part(residual_codes), scales, shapes=static_shapes
        )
        yield (
            start,
            stop,
            np.asarray(eta, dtype=float)[: stop - start],
            np.asarray(jac, dtype=float)[: stop - start],
        )


def shared_target(state) -> SharedTarget:
    """The target of the fitted model ``state`` with its scales learned (module docstring)."""
    from .preprocessing import encoder_features

    if state.params.encoder_weights is None:
        raise ValueError(
            "the shared-parts posterior needs the covariate encoder (encoder_width > 0)."
        )
    sites, input_scales = _map_sites(state)
    shapes = {name: value.shape for name, value in sites.items()}
    X = np.asarray(state.data["X"], dtype=float)
    y = np.asarray(state.data["y"], dtype=float)
    features = np.asarray(encoder_features(state.encoded), dtype=float)
    residual_codes, residual_spread = pooled_residuals(state, state.encoded)
    likelihood = family(state.family)
    extras = likelihood_extras(state)
    offset, weights = extras.get("eta_offset"), extras.get("sample_weight")
    aux = {k: v for k, v in extras.items() if k in ("trials", *likelihood.parameters)}
    # Only the gaussian noise scale is learned here (MacKay); student_t's is the fit's.
    exact = likelihood.has_noise_scale and not likelihood.parameters
    if likelihood.has_noise_scale and not exact:
        aux["noise_scale"] = float(state.posterior_noise_scale)
    dimension = sum(int(np.prod(s, dtype=int)) for s in shapes.values())
    gram = np.zeros((dimension, dimension))
    eta = np.empty(X.shape[0])
    jacobian = np.empty((X.shape[0], dimension), dtype=np.float32)
    for start, stop, eta_part, jac in _jacobian_blocks(
        sites, shapes, X, features, residual_codes, input_scales
    ):
        eta[start:stop], jacobian[start:stop] = eta_part, jac
        rows = slice(start, stop)
        if exact:
            weight = np.ones(stop - start)
        else:
            if offset is not None:
                eta_part = eta_part + offset[rows]
            part = {k: v[rows] if np.ndim(v) else v for k, v in aux.items()}
            weight = likelihood.fisher(eta_part, y[rows], **part)[1]
        if weights is not None:
            weight = weight * weights[rows]
        gram += jac.T @ (weight[:, None] * jac)
    squared_error = float(np.sum((y - eta) ** 2 if weights is None else weights * (y - eta) ** 2))
    flat = flatten(sites, shapes)
    precisions, noise_variance, effective, covariance, iterations = mackay_scales(
        gram, squared_error, flat, shapes, exact, X.shape[0]
    )
    # The likelihood's derivative in eta: (y - mu) / noise variance for a
    # canonical link, the variance being 1 for the families without a noise scale.
    full = eta if offset is None else eta + offset
    residual = likelihood.fisher(full, y, **aux)[0] / noise_variance
    if weights is not None:
        residual = residual * weights
    mean = prior_centre(jacobian, residual, flat, precision_vector(precisions, shapes))
    return SharedTarget(
        family=state.family,
        X=X,
        y=y,
        features=features,
        residual_codes=residual_codes,
        residual_spread=residual_spread,
        input_scales=input_scales,
        sites=sites,
        shapes=shapes,
        precisions=precisions,
        noise_scale=float(np.sqrt(noise_variance)) if exact else aux.get("noise_scale"),
        effective_parameters=float(effective),
        covariance=covariance,
        iterations=iterations,
        eta=eta,
        jacobian=jacobian,
        prior_mean=mean,
        extras=extras or None,
    )


def likelihood_extras(state) -> dict:
    """The fitted model's likelihood arguments besides ``eta``, ``y`` and the noise scale."""
    extras = {
        name: np.asarray(state.data[name], dtype=float)
        for name in MODEL_ARRAYS
        if name in state.data
    }
    likelihood = family(state.family)
    extras.update({site: float(state.settings[site]) for site in likelihood.parameters})
    if likelihood.grid is not None:
        # The held-out choice of the gamma shape sets the smoothing, not the noise:
        # the posterior takes the Pearson estimate at the fit, as the gaussian
        # family's takes its noise scale from the data, not from the smoothing.
        eta = np.sum(np.asarray(state.data["X"]) * state.theta, axis=1)
        mu = likelihood.mean(eta + extras.get("eta_offset", 0.0))
        extras["concentration"] = likelihood.moment_concentration(np.asarray(state.data["y"]), mu)
    return extras


def precision_vector(precisions: dict, shapes: dict) -> np.ndarray:
    """The prior precision of every entry of the flat shared parts (:func:`flatten` order)."""
    return np.concatenate(
        [
            np.full(int(np.prod(shapes[name], dtype=int)), precisions[name])
            for name in SHARED_SITES
            if name in shapes
        ]
    )


def mackay_scales(gram, squared_error, flat, shapes, has_noise: bool, n_samples: int):
    """MacKay's fixed point for the precisions (and the noise variance), then the covariance.

    ``gram`` is :math:`J^\top W J` without the noise (``has_noise``: W = 1),
    ``squared_error`` the residual sum of squares at ``flat`` (the MAP,
    flat), ``shapes`` the blocks' shapes in :func:`flatten` order. Returns
    the precisions, the noise variance (1 without noise), the effective
    number of parameters, the covariance and the iterations run.
    """
    index, start = {}, 0
    for name in SHARED_SITES:
        if name in shapes:
            size = int(np.prod(shapes[name], dtype=int))
            index[name] = slice(start, start + size)
            start += size
    precisions = {name: _START_PRECISION.get(name, 1.0) for name in shapes}
    noise_variance = max(squared_error / n_samples, 1e-12) if has_noise else 1.0
    iterations, effective = 0, 0.0
    while iterations < MAX_ITERATIONS:
        iterations += 1
        covariance = _inverse(gram / noise_variance + np.diag(precision_vector(precisions, shapes)))
        effective, moved = 0.0, 0.0
        for name, rows in index.items():
            gamma = rows.stop - rows.start - precisions[name] * np.trace(covariance[rows, rows])
            gamma = max(gamma, 1e-8)
            effective += gamma
            new = np.clip(gamma / max(float(flat[rows] @ flat[rows]), 1e-12), *_PRECISION_BOUNDS)
            moved = max(moved, abs(np.log(new / precisions[name])))
            precisions[name] = float(new)
        if has_noise:
            new_variance = max(squared_error / max(n_samples - effective, 1.0), 1e-12)
            moved = max(moved, abs(np.log(new_variance / noise_variance)))
            noise_variance = new_variance
        if moved < 1e-4:
            break
    covariance = _inverse(gram / noise_variance + np.diag(precision_vector(precisions, shapes)))
    return precisions, noise_variance, effective, covariance, iterations


def _inverse(precision: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix through its Cholesky factor."""
    from scipy.linalg import cho_factor, cho_solve

    factor = cho_factor(0.5 * (precision + precision.T), lower=True)
    return cho_solve(factor, np.eye(precision.shape[0]))
