r"""Draws from the posterior of a fitted model: the target, the back-end table, the checks.

The sampled target is the joint density of the fitted model with the
dictionary :math:`Q` and the shared offset :math:`\bar\theta` held at their
MAP values, so the draws are of the codes :math:`Z` (hence of every
:math:`\theta_i = \bar\theta + Q^\top Z_i`) and of the covariate weights
:math:`\phi`. Holding :math:`Q` fixes the rotation :math:`(Z, Q) \to (ZR,
R^{-1}Q)` that leaves :math:`\theta` unchanged and stops a sampler over
both from mixing. The likelihood enters at its actual noise level: for the
gaussian family :math:`\sigma` is the held-out root mean squared error of
the chosen smoothing (or the given ``noise_scale``), and :math:`\gamma` is
scaled so that the smoothing chosen at ``fit``, :math:`\gamma\sigma^2`, is
kept (for bernoulli and poisson the chosen likelihood power :math:`w`
becomes :math:`\gamma / w` with power 1). The posterior is therefore centred
on the MAP fit, with a width set by the noise. With the encoder the codes
are sampled given its fitted weights, as given :math:`Q`.

:func:`sample_posterior` checks the request, estimates its memory, runs the
back-end named in :data:`BACKENDS` (:mod:`bayes_prsn.posterior`), builds
the ArviZ data (:func:`bayes_prsn.inference_data.to_inference_data`) and
the convergence report, and returns a :class:`~bayes_prsn.state.PosteriorState`.
"""

from __future__ import annotations

import os

import numpy as np

from . import arviz_compat, posterior
from .diagnostics import convergence_report
from .inference_data import to_inference_data
from .inputs import check_positive
from .predict import encoder_output
from .state import FittedState, PosteriorState

__all__ = ["BACKENDS", "MEMORY_FRACTION", "sample_posterior", "posterior_memory_gb", "target"]

#: The posterior back-ends by ``method`` name.
BACKENDS = {"nuts": posterior.run_nuts, "laplace": posterior.run_laplace, "vi": posterior.run_vi}
#: ``sample_posterior`` refuses to start when its draws would need more than this share
#: of the machine's memory (unless ``max_memory_gb`` says otherwise).
MEMORY_FRACTION = 0.5


def _physical_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 16.0


def posterior_memory_gb(state: FittedState, total_draws: int) -> float:
    """Estimated memory (GB) of ``total_draws`` posterior draws and their ArviZ data.

    Counts the code and covariate-weight draws (float32) and the ArviZ
    groups with one value per draw and sample: ``coef``, ``intercept``,
    ``log_likelihood`` and ``posterior_predictive`` (float64).
    """
    n_samples = state.n_samples
    per_draw = 4 * (n_samples * state.rank + len(state.params.covariate_weights))
    per_draw += 8 * n_samples * (state.n_predictors + 3)
    return float(total_draws) * per_draw / 1e9


def _check_memory(state: FittedState, total_draws: int, max_memory_gb) -> None:
    if max_memory_gb is None:
        limit = MEMORY_FRACTION * _physical_memory_gb()
    else:
        check_positive(max_memory_gb, "max_memory_gb")
        limit = float(max_memory_gb)
    need = posterior_memory_gb(state, total_draws)
    if need > limit:
        raise MemoryError(
            f"sample_posterior would need about {need:.2f} GB for {total_draws} draws of "
            f"{state.n_samples} samples' models, more than the limit of "
            f"{limit:.2f} GB. Draw fewer (num_samples, num_chains), keep every k-th NUTS "
            "draw (thinning=k), use method='vi' or 'laplace' with fewer draws, or raise "
            "max_memory_gb."
        )


def target(state: FittedState):
    """Model arguments of the sampled target, its gaussian noise scale (model units) and gamma."""
    settings = dict(state.settings)
    gamma = float(settings["gamma"])
    noise_scale = state.posterior_noise_scale
    if noise_scale is not None:
        gamma = gamma * (float(settings["noise_scale"]) / noise_scale) ** 2
    else:
        gamma = gamma / float(settings.get("likelihood_scale", 1.0))
    settings.update(gamma=gamma, noise_scale=noise_scale, likelihood_scale=1.0)
    kwargs = dict(state.data, **settings)
    if state.params.encoder_weights is not None:
        # The codes are sampled given the fitted encoder, as given Q and phi.
        kwargs["code_mean"] = encoder_output(state.params.encoder_weights, state.encoded)
    return kwargs, noise_scale, gamma


def _draw_counts(method, num_samples, num_warmup, num_chains, thinning) -> tuple:
    """``num_samples`` with its default, checked counts, and the total number of draws."""
    if num_samples is None:
        num_samples = 2000 if method == "nuts" else 1000
    for name, value in (("num_samples", num_samples), ("num_warmup", num_warmup)):
        check_positive(value, name, integer=True)
    check_positive(num_chains, "num_chains", integer=True)
    check_positive(thinning, "thinning", integer=True)
    if method == "nuts":
        return num_samples, num_chains * -(-num_samples // thinning)
    return num_samples, num_samples


def sample_posterior(
    state: FittedState,
    method: str,
    *,
    num_warmup: int,
    num_samples: int | None,
    num_chains: int,
    random_state: int,
    progress_bar: bool,
    thinning: int,
    max_memory_gb: float | None,
    options: dict,
) -> PosteriorState:
    """Run the back-end ``method`` on the fitted model's target (see the module docstring)."""
    import jax

    from .version import __version__

    if method not in BACKENDS:
        raise ValueError(f"method must be one of {posterior.METHODS}; got {method!r}.")
    num_samples, total_draws = _draw_counts(method, num_samples, num_warmup, num_chains, thinning)
    _check_memory(state, total_draws, max_memory_gb)
    key = jax.random.PRNGKey(int(random_state))
    model_kwargs, noise_scale, gamma = target(state)
    params = state.params
    fixed = {"dictionary": params.dictionary}
    if state.offset:
        fixed["offset"] = params.offset
    init = {"embedding": params.embedding, "covariate_weights": params.covariate_weights}
    static = {
        "family": state.family,
        "rank": state.rank,
        "prior": state.prior,
        "offset": state.offset,
        "progress_bar": progress_bar,
    }
    if method == "nuts":
        static.update(num_warmup=num_warmup, num_chains=num_chains, thinning=thinning)
    draws = BACKENDS[method](
        key, model_kwargs, init, fixed, num_samples=num_samples, **static, **options
    )
    noise_original = state.scaling.noise_to_original(noise_scale)
    attrs = {
        "inference_library": "bayes_prsn",
        "inference_library_version": __version__,
        "method": method,
        "conditioned_on": "dictionary, offset (MAP); noise_scale and gamma fixed",
        "sampling_time": draws.seconds,
    }
    idata = _inference_data(state, draws, noise_original, gamma, int(random_state) + 1, attrs)
    diagnostics = convergence_report(arviz_compat.group(idata, "posterior"), draws, stacklevel=3)
    return PosteriorState(
        idata,
        np.asarray(draws.samples["embedding"], dtype=np.float32),
        method,
        noise_original,
        gamma,
        diagnostics,
    )


def _inference_data(state: FittedState, draws, noise_original, gamma, seed: int, attrs: dict):
    """The ArviZ data of the draws, with the quantities the target held fixed."""
    params = state.params
    offset_coef, offset_intercept = state.to_original_units(params.offset[None])
    constant = {
        "dictionary": (
            state.scaling.dictionary_to_original(params.dictionary),
            ("code", "feature"),
        ),
        "offset_coef": (offset_coef[0], ("feature",)),
        "offset_intercept": (offset_intercept[0], ()),
        "gamma": (gamma, ()),
    }
    if noise_original is not None:
        constant["noise_scale"] = (noise_original, ())
    return to_inference_data(
        draws,
        dictionary=params.dictionary,
        offset=params.offset,
        to_original_units=state.to_original_units,
        X=state.X,
        y=state.y,
        family=state.family,
        noise_scale=noise_original,
        sample_index=state.sample_index,
        feature_names=state.feature_labels,
        covariate_names=state.encoder.feature_names,
        fit_intercept=state.fit_intercept,
        constant=constant,
        seed=seed,
        attrs=attrs,
    )
