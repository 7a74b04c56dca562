r"""The shared parts of a fitted model as the unknowns: the target of ``sample_posterior``.

Every sample's coefficients are a function of the parts all samples share,
the encoder :math:`g` (weights :math:`W_1, b_1, W_2`), the dictionary
:math:`Q` and the shared offset :math:`\bar\theta`, and of its own residual
code :math:`\bar r_i`:

.. math::

    \theta_i = \bar\theta + Q^\top \big(g(u_i) + \bar r_i\big).

Here :math:`\bar r_i` is held fixed at the pooled residual that ``coef_``
uses (the mean MAP residual of the sample's nearest training samples under
the learned metric; the posterior adds its standard error apart from this
density, see :mod:`bayes_prsn.sampling`), and the shared parts :math:`w` are the unknowns, each
block :math:`b` with a normal prior :math:`N(\mu_b, \alpha_b^{-1})` whose
precision :math:`\alpha_b` is learned from the data and whose centre
:math:`\mu` makes the MAP the target's mode (:mod:`bayes_prsn.evidence`).
The posterior's target is this model linearised in :math:`w` at the MAP
:math:`\hat w` (:func:`linearised_glm`): a generalised linear model in
:math:`w`, whose coefficients are
:math:`\theta_i(\hat w) + J_{\theta_i}(w - \hat w)`
(:func:`linearised_coefficients`). Pushing a Gaussian around :math:`\hat w`
through the network itself instead would move hidden units that the data
leave free (their output weights are near zero) and give functions far
from the data; the linearised model is the one whose Laplace approximation
is exact for gaussian responses (Immer, Korzepa and Bauer 2021, "Improving
predictions of Bayesian neural nets via local linearization").

The sites are named as in :func:`~bayes_prsn.models.personalized_regression`
(``encoder_in`` holds :math:`W_1` divided by each unit's prior scale), so a
MAP fit's site values are the centre.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from . import families
from .personalized import SAMPLE_PLATE, likelihood_parameters, observe

__all__ = ["SHARED_SITES", "shared_coefficients", "linearised_coefficients", "linearised_glm"]

#: The sites of :func:`shared_parts`, in a fixed order (``offset`` only with one).
SHARED_SITES = ("encoder_in", "encoder_bias", "encoder_out", "dictionary", "offset")


def shared_coefficients(sites: dict, features, residual_codes, input_scales):
    r""":math:`\theta_i = \bar\theta + Q^\top (g(u_i) + \bar r_i)` for every row of ``features``.

    ``sites`` holds the values of :data:`SHARED_SITES` (``offset`` may be
    missing: zero); ``input_scales`` are the hidden units' prior scales that
    turn ``encoder_in`` into :math:`W_1`. Leading batch axes of the sites
    (draws) are kept: the result has shape ``(*batch, n_rows, n_columns)``.
    """
    w_in = input_scales * sites["encoder_in"]
    hidden = jnp.tanh(
        jnp.einsum("nm,...mh->...nh", features, w_in) + sites["encoder_bias"][..., None, :]
    )
    codes = jnp.einsum("...nh,...hk->...nk", hidden, sites["encoder_out"]) + residual_codes
    theta = jnp.einsum("...nk,...kp->...np", codes, sites["dictionary"])
    if "offset" in sites:
        theta = theta + sites["offset"][..., None, :]
    return theta


def linearised_coefficients(sites: dict, deltas: dict, features, residual_codes, input_scales):
    r"""The coefficients linearised at ``sites``: :math:`\theta(w) + J_\theta(w)\,\delta`.

    ``deltas`` holds a displacement of every site with leading draw axes
    (the same keys as ``sites``); the result has shape ``(*draws, n_rows,
    n_columns)``. One forward-mode pass per draw; the Jacobian is never
    formed.
    """
    import jax

    def theta(values):
        return shared_coefficients(values, features, residual_codes, input_scales)

    name = next(iter(deltas))
    batch = deltas[name].shape[: jnp.ndim(deltas[name]) - jnp.ndim(sites[name])]
    flat = {k: v.reshape(-1, *jnp.shape(sites[k])) for k, v in deltas.items()}
    base = theta(sites)
    tangent = jax.vmap(lambda d: jax.jvp(theta, (sites,), (d,))[1])(flat)
    return (base + tangent).reshape(*batch, *base.shape)


def linearised_glm(
    eta,
    jacobian,
    centre,
    precision,
    y=None,
    *,
    family: str,
    noise_scale=None,
    prior_mean=None,
    eta_offset=None,
    trials=None,
    sample_weight=None,
    df=None,
    concentration=None,
):
    r"""The target: a GLM in the shared parts, the model linearised at the MAP.

    .. math::

        w \sim N(\mu, \mathrm{diag}(\alpha)^{-1}), \qquad
        y_i \sim \mathrm{family}\big(\eta_i + J_i (w - \hat w)\big),

    with :math:`\hat w` = ``centre`` (the MAP of the shared parts, flat),
    :math:`\eta` the linear predictors there and :math:`J` = ``jacobian``
    (n_samples, D) their derivatives; ``precision`` holds :math:`\alpha`
    for every entry of :math:`w` (site ``"shared"``) and ``prior_mean``
    :math:`\mu` (None: zero). The gaussian noise scale is sampled
    (``HalfNormal(1)``) when ``noise_scale`` is None. ``eta_offset``,
    ``trials``, ``sample_weight``, ``df`` and ``concentration`` are those of
    :func:`~bayes_prsn.models.personalized_regression`.
    """
    scale = 1.0 / jnp.sqrt(precision)
    loc = 0.0 if prior_mean is None else prior_mean
    shared = numpyro.sample("shared", dist.Normal(loc, scale).to_event(1))
    likelihood = families.family(family)
    noise_scale, aux = likelihood_parameters(family, noise_scale, trials, df, concentration)
    linear = eta + jacobian @ (shared - centre)
    if eta_offset is not None:
        linear = linear + eta_offset
    with numpyro.plate(SAMPLE_PLATE, eta.shape[0]):
        observe(likelihood.likelihood(linear, noise_scale, **aux), y, sample_weight)
