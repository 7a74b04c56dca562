r"""Draws from the posterior of a fitted model: the target, the back-end table, the checks.

With the covariate encoder (the default) the sampled target is
:func:`bayes_prsn.models.linearised_glm`: the parts all samples share
(the encoder, the dictionary :math:`Q`, the offset :math:`\bar\theta`) are
the unknowns, each sample's pooled residual code and the covariate weights
:math:`\phi` are held at the MAP, and the model is linearised in the shared
parts at the MAP, so that at the MAP every sample's coefficients are
``coef_``. Each pooled residual code (the mean of its neighbours' MAP
residuals) then enters the draws with its standard error, drawn apart from
the shared parts (:func:`bayes_prsn.predict.pooled_residuals`; a
two-stage approximation: the shared parts' posterior is conditioned on the
pooled residuals). The scales that set the width, the prior precision of every block
of shared parts and the gaussian noise scale, are learned by type-II
maximum likelihood (:mod:`bayes_prsn.evidence`); nothing is fixed by the
held-out smoothing choice. ``"laplace"`` draws from the Gaussian
approximation at the MAP, ``"nuts"`` samples the target (and the noise
scale) exactly, ``"vi"`` fits a Gaussian to it
(:mod:`bayes_prsn.shared_posterior`).

Without the encoder (``encoder_width=0``) the target is the joint density
of the fitted model with :math:`Q` and :math:`\bar\theta` held at their MAP
values: the draws are of the codes :math:`Z` and of :math:`\phi`, the
gaussian noise scale is the held-out root mean squared error of the chosen
smoothing and :math:`\gamma` is rescaled to keep the chosen smoothing
(:mod:`bayes_prsn.posterior`); its width is not learned.

:func:`sample_posterior` checks the request, estimates its memory, runs the
back-end, builds the ArviZ data
(:func:`bayes_prsn.inference_data.to_inference_data`) and the convergence
report, and returns a :class:`~bayes_prsn.state.PosteriorState`.
"""

from __future__ import annotations

import os

import numpy as np

from . import arviz_compat, posterior
from .diagnostics import convergence_report
from .inference_data import to_inference_data
from .inputs import check_positive
from .models import family
from .predict import encoder_output, residual_spread_draws
from .shared_posterior import SHARED_BACKENDS
from .state import FittedState, PosteriorState

__all__ = [
    "AUTO_LAPLACE_FAMILIES",
    "BACKENDS",
    "MEMORY_FRACTION",
    "auto_method",
    "default_num_samples",
    "sample_posterior",
    "posterior_memory_gb",
    "target",
]

#: The posterior back-ends by ``method`` name.
BACKENDS = {"nuts": posterior.run_nuts, "laplace": posterior.run_laplace, "vi": posterior.run_vi}
#: ``sample_posterior`` refuses to start when its draws would need more than this share
#: of the machine's memory (unless ``max_memory_gb`` says otherwise).
MEMORY_FRACTION = 0.5
#: Values of the hidden layer (draws x samples x units) computed at once for the
#: shared target's coefficients (about 200 MB of float32 with their tangents).
_LINEARISED_VALUES = 25_000_000


#: Families whose default posterior (``method="auto"``, with the encoder) is the
#: Gaussian approximation: for 0/1 data the exact posterior of the linearised target
#: (NUTS) is centred away from its mode, the MAP, and covers less. make_logistic,
#: default fits, seeds 100-104, medians: 200 samples, 90% intervals covered 0.714
#: with NUTS (50%: 0.312; posterior mean 1.64x ``coef_``'s error) and 0.881 with
#: Laplace (50%: 0.443; 1.01x); 1,000 samples, 3 refits pooled: NUTS 0.784,
#: Laplace 0.885 and 0.880 (``benchmarks/README.md``, "The default method for 0/1
#: data"). Count data keep NUTS (poisson, pooled, six data sets: 0.510 / 0.806 /
#: 0.902 / 0.950); binomial was not measured with NUTS.
AUTO_LAPLACE_FAMILIES = ("bernoulli",)


def auto_method(state: FittedState) -> str:
    """The back-end of ``method="auto"``: ``"laplace"`` for the families of
    :data:`AUTO_LAPLACE_FAMILIES` on the default target (with the encoder),
    else ``"nuts"``."""
    if state.family in AUTO_LAPLACE_FAMILIES and state.params.encoder_weights is not None:
        return "laplace"
    return "nuts"


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
            f"{limit:.2f} GB. Draw fewer (num_samples, num_chains, refits), keep every k-th "
            "NUTS draw (thinning=k), use method='vi' or 'laplace' with fewer draws, or raise "
            "max_memory_gb."
        )


def target(state: FittedState):
    """The code target (no encoder): model arguments, gaussian noise scale (model units), gamma."""
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


def default_num_samples(method: str) -> int:
    """``num_samples=None``: 2,000 draws per chain for NUTS, 1,000 for Laplace and VI."""
    return 2000 if method == "nuts" else 1000


def _draw_counts(method, num_samples, num_warmup, num_chains, thinning) -> tuple:
    """``num_samples`` with its default, checked counts, and the total number of draws."""
    if num_samples is None:
        num_samples = default_num_samples(method)
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
    fits: int = 1,
    threads: int = 1,
) -> PosteriorState:
    """Run the back-end ``method`` on the fitted model's target (see the module docstring).

    ``fits``: the number of fits whose draws will be pooled (the memory
    check counts all of them, before any is drawn). ``threads``: NUTS chains
    side by side on the default target (:func:`~bayes_prsn.shared_posterior.run_shared_nuts`).
    """
    import jax

    if method not in BACKENDS:
        raise ValueError(f"method must be 'auto' or one of {posterior.METHODS}; got {method!r}.")
    num_samples, total_draws = _draw_counts(method, num_samples, num_warmup, num_chains, thinning)
    _check_memory(state, total_draws * fits, max_memory_gb)
    key = jax.random.PRNGKey(int(random_state))
    static = {"progress_bar": progress_bar}
    if method == "nuts":
        static.update(num_warmup=num_warmup, num_chains=num_chains, thinning=thinning)
    run = _sample_shared if state.params.encoder_weights is not None else _sample_codes
    if method == "nuts" and run is _sample_shared:
        static["threads"] = int(threads)
    return run(state, method, key, num_samples, static, options, int(random_state))


def likelihood_inputs(state: FittedState, parameters: dict | None = None) -> dict:
    """The likelihood's arguments for the ArviZ groups: ``parameters`` (df, concentration;
    default the fit's) and the trials."""
    inputs = {site: state.settings[site] for site in family(state.family).parameters}
    inputs.update(parameters or {})
    if "trials" in state.data:
        inputs["trials"] = np.asarray(state.data["trials"])
    return inputs


def _attrs(method: str, draws, conditioned_on: str) -> dict:
    from .version import __version__

    return {
        "inference_library": "bayes_prsn",
        "inference_library_version": __version__,
        "method": method,
        "conditioned_on": conditioned_on,
        "sampling_time": draws.seconds,
    }


def _sample_shared(state, method, key, num_samples, static, options, seed) -> PosteriorState:
    """The default target: the shared parts, with learned scales (:mod:`bayes_prsn.evidence`)."""
    from .evidence import flatten, shared_target, unflatten

    target = shared_target(state)
    draws = SHARED_BACKENDS[method](key, target, num_samples=num_samples, **static, **options)
    flat = np.asarray(draws.samples["shared"], dtype=np.float32)
    shape = flat.shape[:2]
    centre = flatten(target.sites, target.shapes)
    deltas = unflatten((flat - centre).reshape(-1, flat.shape[-1]), target.shapes)

    coefficients = _coefficient_draws(state, target, deltas, seed)
    noise = state.scaling.noise_to_original(target.noise_scale)
    noise_draws = None
    if "noise_scale" in draws.samples:
        noise_draws = state.scaling.noise_to_original(1.0) * np.asarray(
            draws.samples["noise_scale"], dtype=float
        )
    scales = {
        "precisions": dict(target.precisions),
        "effective_parameters": target.effective_parameters,
        "iterations": target.iterations,
    }
    parameters = {site: float(target.extras[site]) for site in family(state.family).parameters}
    if parameters:
        # The likelihood's df or concentration the posterior conditions on.
        scales["likelihood"] = parameters
    constant = {f"prior_precision_{name}": (value, ()) for name, value in target.precisions.items()}
    constant["effective_parameters"] = (target.effective_parameters, ())
    constant["covariate_weights"] = (state.params.covariate_weights, ("covariate",))
    constant.update({site: (value, ()) for site, value in parameters.items()})
    if noise is not None:
        constant["noise_scale"] = (noise, ())
    fixed_noise = noise is not None and "df" in state.settings  # student_t: the fit's scale
    learned = "prior precisions" + (
        " and noise scale" if noise is not None and not fixed_noise else ""
    )
    attrs = _attrs(
        method,
        draws,
        f"pooled residual codes, covariate weights (MAP); {learned} learned by type-II "
        "maximum likelihood",
    )
    idata = to_inference_data(
        draws,
        coefficients=coefficients,
        shape=shape,
        to_original_units=state.to_original_units,
        X=state.X,
        y=state.y,
        family=state.family,
        noise_scale=noise if noise_draws is None else noise_draws,
        sample_index=state.sample_index,
        feature_names=state.feature_labels,
        covariate_names=state.encoder.feature_names,
        fit_intercept=state.fit_intercept,
        constant=constant,
        seed=seed + 1,
        attrs=attrs,
        aux=likelihood_inputs(state, parameters),
        eta_offset=np.asarray(state.data.get("eta_offset", 0.0)),
    )
    diagnostics = convergence_report(arviz_compat.group(idata, "posterior"), draws, stacklevel=4)
    return PosteriorState(
        idata,
        None,
        method,
        noise,
        None,
        diagnostics,
        shared_draws={
            k: v.reshape(*shape, *v.shape[1:]).astype(np.float32) for k, v in deltas.items()
        },
        shared_centre=target.sites,
        noise_draws=noise_draws,
        input_scales=np.asarray(target.input_scales, dtype=float),
        scales=scales,
    )


def _coefficient_draws(state, target, deltas: dict, seed: int):
    """``coefficients(start, stop)``: the coefficients of pooled draws start:stop.

    The shared parts' draws through the linearised model, plus a draw of
    each pooled residual code's error (its standard error, see
    :func:`bayes_prsn.predict.pooled_residuals`), seeded by ``seed``
    and the draw's index, so that the draws do not depend on the chunking.
    """
    import jax

    from .models import linearised_coefficients

    linearised = jax.jit(linearised_coefficients)
    width = max(int(target.input_scales.shape[0]), state.params.dictionary.shape[1])
    # Draws per call: the hidden layer of every draw and sample is held at once.
    per_call = max(1, int(_LINEARISED_VALUES // (state.n_samples * width)))

    def coefficients(start, stop):
        parts = []
        for begin in range(start, stop, per_call):
            part = {k: v[begin : min(begin + per_call, stop)] for k, v in deltas.items()}
            theta = np.asarray(
                linearised(
                    target.sites,
                    part,
                    target.features,
                    target.residual_codes,
                    target.input_scales,
                ),
                dtype=float,
            )
            shape = target.residual_spread.shape[:2]
            noise = np.stack(
                [
                    np.random.default_rng([seed, draw]).standard_normal(shape)
                    for draw in range(begin, begin + theta.shape[0])
                ]
            )
            spread = residual_spread_draws(
                target.residual_spread, target.sites["dictionary"], noise
            )
            parts.append(theta + spread)
        return np.concatenate(parts)

    return coefficients


def _sample_codes(state, method, key, num_samples, static, options, seed) -> PosteriorState:
    """Without the encoder: the codes and covariate weights given the MAP dictionary and offset."""
    model_kwargs, noise_scale, gamma = target(state)
    params = state.params
    fixed = {"dictionary": params.dictionary}
    if state.offset:
        fixed["offset"] = params.offset
    init = {"embedding": params.embedding, "covariate_weights": params.covariate_weights}
    static = dict(
        static, family=state.family, rank=state.rank, prior=state.prior, offset=state.offset
    )
    draws = BACKENDS[method](
        key, model_kwargs, init, fixed, num_samples=num_samples, **static, **options
    )
    noise_original = state.scaling.noise_to_original(noise_scale)
    attrs = _attrs(method, draws, "dictionary, offset (MAP); noise_scale and gamma fixed")
    idata = _inference_data(state, draws, noise_original, gamma, seed + 1, attrs)
    diagnostics = convergence_report(arviz_compat.group(idata, "posterior"), draws, stacklevel=4)
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
    codes = np.asarray(draws.samples["embedding"])
    flat_codes = codes.reshape(-1, *codes.shape[2:])

    def coefficients(start, stop):
        return params.offset + flat_codes[start:stop] @ params.dictionary

    return to_inference_data(
        draws,
        coefficients=coefficients,
        shape=codes.shape[:2],
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
        aux=likelihood_inputs(state),
        eta_offset=np.asarray(state.data.get("eta_offset", 0.0)),
    )
