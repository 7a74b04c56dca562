r"""Low-rank personalized regression as one NumPyro joint log-density.

For samples :math:`i = 1..N` with predictors :math:`x_i \in \mathbb{R}^P`
(a column of ones included when an intercept is fitted), covariate distances
:math:`d_{ij} \in \mathbb{R}^m_{\ge 0}` on a sparse set of neighbour pairs
:math:`E` and rank :math:`K`:

.. math::

    \phi_l &\sim \mathrm{HalfNormal}(s_\phi), \qquad
    Q_{kp} \sim N(0, 1), \qquad \bar\theta_p \sim N(0, 10^2),
    \qquad Z_{i} \sim N(g(u_i), s_Z^2 I),\\
    \theta_i &= \bar\theta + Q^\top Z_i, \\
    \log p \mathrel{+}= &\sum_i \log \psi_\tau(\theta_i - \bar\theta)
        \quad (\psi = \text{normal or laplace, scale } \tau), \\
    \log p \mathrel{+}= &-\frac{\gamma}{2} \sum_{(i,j) \in E} w_{ij}
        \Big(\rho_\phi(u_i, u_j) - \sqrt{\lVert Z_i - Z_j \rVert^2 + \epsilon^2}\Big)^2,
        \qquad \rho_\phi(u_i, u_j) = \textstyle\sum_l \phi_l\, d_{ij,l}, \\
    y_i &\sim \mathrm{family}(x_i^\top \theta_i)
        \quad (\text{gaussian with scale } \sigma,\ \text{bernoulli/logit},\
        \text{poisson/log}).

:math:`g(u) = \tanh(u W_1 + b_1) W_2` is a covariate encoder (one hidden layer
of ``encoder_width`` units; normal priors on the input weights whose scales
spread geometrically over the units from 1 up to ``encoder_scale``, so that a
few units can form steep steps while the others stay smooth, and N(0, 1) on
the others) that gives
each code a prior mean, so that samples with similar covariates share the
bulk of their model through :math:`g` and keep only a residual
:math:`Z_i - g(u_i)` of their own; ``encoder_width=0`` removes it
(:math:`g = 0`, or a fixed ``code_mean``). The codes are written non-centred
when the encoder is on (site ``"code_residual"``).

:math:`\epsilon` smooths the kink of the Euclidean norm at zero so that the
gradient stays finite when two codes coincide. Without the shared offset
(``offset=False``) :math:`\theta_i = Q^\top Z_i` and :math:`\psi` is centred at
zero, as in the 2019 reference; with it, :math:`\psi` shrinks every sample's
model toward the shared one.

The likelihood of ``y`` is the only ``obs`` site (``"y"``); the coefficient
prior and the distance-matching potential are separate ``factor`` sites
(``"coef_prior"``, ``"distance_matching"``).
"""

from __future__ import annotations

import contextlib

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from . import families
from .encoder import ENCODER_SCALE, encode_covariates, encoder_input_scales
from .families import FAMILIES

__all__ = [
    "FAMILIES",
    "PRIORS",
    "SAMPLE_PLATE",
    "code_log_prior",
    "coef_log_prior",
    "distance_potential",
    "likelihood_parameters",
    "observe",
    "pair_potential",
    "personalized_regression",
    "personalized_regression_minibatch",
]

PRIORS = ("normal", "laplace")

#: Name of the plate over samples ("sample" would collide with ArviZ's draw dim).
SAMPLE_PLATE = "samples"


def code_log_prior(codes, mean, scale):
    """Log-density of the codes' prior :math:`N(\\text{mean}, \\text{scale}^2)` (summed)."""
    return dist.Normal(mean, scale).log_prob(codes).sum()


def coef_log_prior(deviation, prior: str, scale, sample_mask=None):
    r"""Log-density of :math:`\psi`, the prior on each sample's deviation (summed).

    ``sample_mask`` (rows of ``deviation``; optional) leaves the rows where
    it is false out of the sum.
    """
    if prior == "normal":
        log_density = dist.Normal(0.0, scale).log_prob(deviation)
    elif prior == "laplace":
        log_density = dist.Laplace(0.0, scale).log_prob(deviation)
    else:
        raise ValueError(f"prior must be one of {PRIORS}; got {prior!r}.")
    if sample_mask is not None:
        log_density = jnp.where(sample_mask[:, None], log_density, 0.0)
    return log_density.sum()


def distance_potential(code_i, code_j, rho, gamma, *, pair_weights=None, epsilon=1e-3, scale=1.0):
    r"""The distance-matching potential of pairs, :math:`\tfrac{\gamma}{2} s \sum w_{ij}
    (\rho_{ij} - \sqrt{\lVert Z_i - Z_j \rVert^2 + \epsilon^2})^2`.

    ``rho`` holds each pair's covariate distance :math:`\rho_\phi(u_i, u_j)`;
    ``scale`` :math:`s` rescales a subsample of pairs. The model adds its
    negative as the ``"distance_matching"`` factor; prediction minimises it
    for a new code.
    """
    code_distance = jnp.sqrt(jnp.sum((code_i - code_j) ** 2, axis=-1) + epsilon**2)
    return _matching(code_distance, rho, gamma, pair_weights, scale)


def _matching(code_distance, rho, gamma, pair_weights, scale=1.0):
    r""":math:`\tfrac{\gamma}{2} s \sum w_{ij} (\rho_{ij} - \text{code distance}_{ij})^2`."""
    mismatch = (rho - code_distance) ** 2
    if pair_weights is not None:
        mismatch = pair_weights * mismatch
    return 0.5 * gamma * scale * jnp.sum(mismatch)


def pair_potential(
    embedding, pairs, pair_distances, weights, gamma, *, pair_weights=None, epsilon=1e-3
):
    r""":func:`distance_potential` of every pair of ``pairs`` (full batch), in a faster layout.

    The same sum, computed with the codes as the columns of a
    ``(rank, n_samples)`` array and the covariate distances as
    :math:`\phi^\top d^\top`: XLA's CPU kernels gather columns and add up
    ``rank`` rows of ``n_pairs`` numbers much faster than they reduce a
    ``rank``-wide last axis. A step of the full-batch fit took 0.57 ms
    instead of 0.88 ms (N = 2,000, 39,680 pairs, rank 3, 2 cores); the value
    and gradients agree with :func:`distance_potential` to float32 rounding.
    """
    codes = embedding.T
    difference = jnp.take(codes, pairs[:, 0], axis=1) - jnp.take(codes, pairs[:, 1], axis=1)
    squared = difference[0] ** 2
    for row in range(1, difference.shape[0]):
        squared = squared + difference[row] ** 2
    code_distance = jnp.sqrt(squared + epsilon**2)
    return _matching(code_distance, weights @ pair_distances.T, gamma, pair_weights)


def _encoder_weights(n_inputs: int, width: int, rank: int, input_scale=ENCODER_SCALE):
    # Non-centred: the site holds W_1 divided by each unit's prior scale, N(0, 1),
    # so that an optimiser's step moves a weight in proportion to its prior
    # scale (a steep step in g needs weights of tens, out of reach of small
    # steps on W_1 itself).
    w_raw = numpyro.sample(
        "encoder_in", dist.Normal(0.0, 1.0).expand([n_inputs, width]).to_event(2)
    )
    w_in = encoder_input_scales(input_scale, width) * w_raw
    b_in = numpyro.sample("encoder_bias", dist.Normal(0.0, 1.0).expand([width]).to_event(1))
    w_out = numpyro.sample("encoder_out", dist.Normal(0.0, 1.0).expand([width, rank]).to_event(2))
    return w_in, b_in, w_out


def _shared_sites(n_covariates: int, n_features: int, rank: int, weight_scale, offset: bool):
    """phi, Q and the shared offset (zero without one)."""
    weights = numpyro.sample(
        "covariate_weights",
        dist.HalfNormal(weight_scale).expand([n_covariates]).to_event(1),
    )
    dictionary = numpyro.sample(
        "dictionary", dist.Normal(0.0, 1.0).expand([rank, n_features]).to_event(2)
    )
    shared = (
        numpyro.sample("offset", dist.Normal(0.0, 10.0).expand([n_features]).to_event(1))
        if offset
        else jnp.zeros(n_features)
    )
    return weights, dictionary, shared


def personalized_regression(
    X,
    pairs,
    pair_distances,
    y=None,
    *,
    family: str = "gaussian",
    rank: int = 2,
    gamma=1.0,
    prior: str = "normal",
    prior_scale=1.0,
    covariate_weight_scale=1.0,
    embedding_scale=1.0,
    noise_scale=None,
    offset: bool = True,
    likelihood_mask=None,
    likelihood_scale=1.0,
    pair_weights=None,
    epsilon: float = 1e-3,
    covariate_features=None,
    encoder_width: int = 0,
    encoder_scale=ENCODER_SCALE,
    code_mean=None,
    eta_offset=None,
    trials=None,
    sample_weight=None,
    df=None,
    concentration=None,
    sample_mask=None,
):
    """Joint log-density of low-rank personalized regression.

    Parameters
    ----------
    X : array (n_samples, n_features)
        Predictors (internally scaled; include a column of ones for intercepts).
    pairs : int array (n_pairs, 2)
        Neighbour pairs :math:`(i, j)`.
    pair_distances : array (n_pairs, n_covariates)
        Per-covariate distances :math:`d_{ij,l}` of each pair.
    y : array (n_samples,), optional
        Response; ``None`` to sample it.
    family : str
        Likelihood family, one of :data:`FAMILIES` (see :mod:`.families`).
    rank : int
        Rank :math:`K` of the code :math:`Z`.
    gamma : float
        Strength :math:`\\gamma` of the distance-matching potential.
    prior : {"normal", "laplace"}
        Form of :math:`\\psi`, the prior on each sample's coefficients.
    prior_scale : float
        Scale :math:`\\tau` of :math:`\\psi`.
    covariate_weight_scale : float
        Scale :math:`s_\\phi` of the half-normal prior on covariate weights.
    embedding_scale : float
        Scale :math:`s_Z` of the normal prior on the codes.
    noise_scale : float or None
        Gaussian noise scale :math:`\\sigma`; ``None`` samples it
        (``HalfNormal(1)``).
    offset : bool
        Include the shared offset :math:`\\bar\\theta`.
    likelihood_mask : bool array (n_samples,), optional
        Samples whose response enters the likelihood (the others are held out
        and linked to the rest through the potential only).
    likelihood_scale : float
        Power :math:`w` of the likelihood, :math:`p(y \\mid \theta)^w`
        (1 is the ordinary posterior; smaller values smooth more).
    pair_weights : array (n_pairs,), optional
        Weight :math:`w_{ij}` of each pair's term in the potential (default 1;
        also the place to rescale the potential when pairs are subsampled).
    epsilon : float
        Smoothing of :math:`\\lVert Z_i - Z_j \\rVert` at zero.
    covariate_features : array (n_samples, n_inputs), optional
        Covariates as the encoder's input (needed when ``encoder_width > 0``).
    encoder_width : int
        Hidden units of the covariate encoder :math:`g`; 0 for none.
    encoder_scale : float
        Largest prior scale of the encoder's input weights :math:`W_1` (the
        units' scales spread from 1 up to it; larger: steeper steps in
        :math:`g` are cheaper). See :func:`encoder_input_scales`.
    code_mean : array (n_samples, rank), optional
        Fixed prior mean of the codes when there is no encoder (used to
        sample the codes given a fitted encoder).
    eta_offset : array (n_samples,), optional
        A known part of each linear predictor (the log exposure of a rate).
    trials : array (n_samples,), optional
        Trials of each sample (the binomial family).
    sample_weight : array (n_samples,), optional
        Positive weight of each sample's log-likelihood.
    df, concentration : float, optional
        The student_t family's degrees of freedom; the negative_binomial or
        gamma family's concentration. ``None`` samples them (sites ``"df"``,
        ``"concentration"``) where the family has them.
    sample_mask : bool array (n_samples,), optional
        Rows that are samples; the others are padding (rows added so that
        fits of nearby sizes share one compiled program): their codes'
        prior, coefficient prior and likelihood are left out, and no pair
        may touch them, so they add nothing to the density or its gradient.
    """
    n_samples, n_features = X.shape
    rows = _mask(sample_mask)
    weights, dictionary, shared = _shared_sites(
        pair_distances.shape[1], n_features, rank, covariate_weight_scale, offset
    )
    if encoder_width:
        # Non-centred: the codes are the encoder's output plus a residual.
        encoder = _encoder_weights(covariate_features.shape[1], encoder_width, rank, encoder_scale)
        code_mean = encode_covariates(covariate_features, *encoder)
        with numpyro.plate(SAMPLE_PLATE, n_samples), rows():
            residual = numpyro.sample(
                "code_residual", dist.Normal(0.0, embedding_scale).expand([rank]).to_event(1)
            )
        embedding = code_mean + residual
    else:
        if code_mean is None:
            code_mean = jnp.zeros((n_samples, rank))
        with numpyro.plate(SAMPLE_PLATE, n_samples), rows():
            embedding = numpyro.sample(
                "embedding", dist.Normal(code_mean, embedding_scale).to_event(1)
            )
    deviation = embedding @ dictionary
    coef = shared + deviation
    numpyro.factor(
        "coef_prior",
        coef_log_prior(deviation if offset else coef, prior, prior_scale, sample_mask),
    )
    potential = pair_potential(
        embedding,
        pairs,
        pair_distances,
        weights,
        gamma,
        pair_weights=pair_weights,
        epsilon=epsilon,
    )
    numpyro.factor("distance_matching", -potential)

    noise_scale, aux = likelihood_parameters(family, noise_scale, trials, df, concentration)
    eta = jnp.sum(X * coef, axis=-1)
    if eta_offset is not None:
        eta = eta + eta_offset
    with numpyro.plate(SAMPLE_PLATE, n_samples), numpyro.handlers.scale(scale=likelihood_scale):
        likelihood = families.family(family).likelihood(eta, noise_scale, **aux)
        if likelihood_mask is not None:
            likelihood = likelihood.mask(likelihood_mask)
        with rows():
            observe(likelihood, y, sample_weight)


def _mask(sample_mask):
    """A context factory that leaves the rows where ``sample_mask`` is false out (None: none)."""
    if sample_mask is None:
        return contextlib.nullcontext
    return lambda: numpyro.handlers.mask(mask=sample_mask)


def likelihood_parameters(family, noise_scale, trials, df, concentration):
    """``(noise_scale, aux)``: the family's noise scale and other likelihood arguments.

    A noise scale, ``df`` or ``concentration`` that is not given (None) and
    that the family has is a site of the model, sampled from its prior.
    """
    family = families.family(family)
    if family.has_noise_scale and noise_scale is None:
        noise_scale = numpyro.sample("noise_scale", dist.HalfNormal(1.0))
    given = {"df": df, "concentration": concentration}
    aux = {
        site: numpyro.sample(site, family.prior(site)) if given[site] is None else given[site]
        for site in family.parameters
    }
    if trials is not None:
        aux["trials"] = trials
    return noise_scale, aux


def observe(likelihood, y, sample_weight) -> None:
    """The ``"y"`` site; ``sample_weight`` (positive) multiplies each sample's log-likelihood."""
    if sample_weight is None:
        numpyro.sample("y", likelihood, obs=y)
        return
    with numpyro.handlers.scale(scale=sample_weight):
        numpyro.sample("y", likelihood, obs=y)


def personalized_regression_minibatch(
    X,
    pairs,
    pair_distances,
    y,
    batch,
    pair_batch,
    *,
    family: str = "gaussian",
    rank: int = 2,
    gamma=1.0,
    prior: str = "normal",
    prior_scale=1.0,
    covariate_weight_scale=1.0,
    embedding_scale=1.0,
    noise_scale=None,
    offset: bool = True,
    likelihood_mask=None,
    likelihood_scale=1.0,
    pair_weights=None,
    epsilon: float = 1e-3,
    covariate_features=None,
    encoder_width: int = 0,
    encoder_scale=ENCODER_SCALE,
    positions=None,
    eta_offset=None,
    trials=None,
    sample_weight=None,
    df=None,
    concentration=None,
):
    r"""The same joint density, estimated on a minibatch of samples and of pairs.

    ``batch`` (B,) indexes samples and ``pair_batch`` (B_p,) indexes pairs,
    both drawn uniformly. Every per-sample term (code prior, :math:`\psi`,
    likelihood) is summed over the batch and multiplied by :math:`N / B`,
    and the pair potential over the pair batch times :math:`|E| / B_p` (by
    hand: ``numpyro.factor`` is not rescaled by a subsampled plate), so the
    log-density and its gradient are unbiased estimates of those of
    :func:`personalized_regression` with the same arguments. The codes of all
    samples form one site with a flat base measure whose prior enters through
    the rescaled factor. For MAP (the result is the same optimum); not for
    sampling.

    ``positions`` (B + 2 B_p,) makes the code site local to the batch: the
    site then has shape (B + 2 B_p, rank) and holds the codes of the samples
    the batch touches, and ``positions`` gives the site row of each sample in
    ``batch``, then of the first and of the second sample of each pair in
    ``pair_batch`` (a sample met twice has one row). The density is the same
    function of the codes; a step then touches O(B + B_p) values instead of
    O(N K) (:func:`bayes_prsn.svi.run_svi` gathers and writes back those rows).
    ``None``: the site holds every sample's code.
    """
    from numpyro.distributions import constraints

    n_samples, n_features = X.shape
    weights, dictionary, shared = _shared_sites(
        pair_distances.shape[1], n_features, rank, covariate_weight_scale, offset
    )
    encoder = (
        _encoder_weights(covariate_features.shape[1], encoder_width, rank, encoder_scale)
        if encoder_width
        else None
    )
    site = "code_residual" if encoder_width else "embedding"
    n_rows = n_samples if positions is None else positions.shape[0]
    own = numpyro.sample(
        site, dist.ImproperUniform(constraints.real, (), event_shape=(n_rows, rank))
    )
    chosen = pairs[pair_batch]
    if positions is None:
        rows = (batch, chosen[:, 0], chosen[:, 1])
    else:
        n_batch, n_pair_batch = batch.shape[0], pair_batch.shape[0]
        rows = (
            positions[:n_batch],
            positions[n_batch : n_batch + n_pair_batch],
            positions[n_batch + n_pair_batch :],
        )

    def codes(index, row):
        if encoder is None:
            return own[row]
        return own[row] + encode_covariates(covariate_features[index], *encoder)

    sample_scale = n_samples / batch.shape[0]
    pair_scale = pairs.shape[0] / pair_batch.shape[0]
    embedding = codes(batch, rows[0])
    numpyro.factor(
        "code_prior",
        sample_scale * code_log_prior(own[rows[0]], 0.0, embedding_scale),
    )
    deviation = embedding @ dictionary
    coef = shared + deviation
    numpyro.factor(
        "coef_prior",
        sample_scale * coef_log_prior(deviation if offset else coef, prior, prior_scale),
    )
    potential = distance_potential(
        codes(chosen[:, 0], rows[1]),
        codes(chosen[:, 1], rows[2]),
        pair_distances[pair_batch] @ weights,
        gamma,
        pair_weights=None if pair_weights is None else pair_weights[pair_batch],
        epsilon=epsilon,
        scale=pair_scale,
    )
    numpyro.factor("distance_matching", -potential)

    noise_scale, aux = likelihood_parameters(
        family, noise_scale, None if trials is None else trials[batch], df, concentration
    )
    eta = jnp.sum(X[batch] * coef, axis=-1)
    if eta_offset is not None:
        eta = eta + eta_offset[batch]
    with (
        numpyro.plate("batch", batch.shape[0]),
        numpyro.handlers.scale(scale=likelihood_scale * sample_scale),
    ):
        likelihood = families.family(family).likelihood(eta, noise_scale, **aux)
        if likelihood_mask is not None:
            likelihood = likelihood.mask(likelihood_mask[batch])
        observe(likelihood, y[batch], None if sample_weight is None else sample_weight[batch])
