"""MAP fits of the problem, and the fitted state the final one leaves.

:func:`run_map` hands the problem's arrays and the model's static settings
to :func:`bayes_prsn.svi.run_svi`; :func:`minibatch_sizes` is the policy
that picks full-batch or minibatch steps, :func:`resolve_devices` turns the
``devices`` setting into JAX devices, :func:`fit_threads` says how many fits
may run side by side, and :func:`state_from_map` reads the
final fit's sites into a :class:`~bayes_prsn.state.FittedState`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .inputs import FitConfig
from .models import ENCODER_SCALE, codes_from_sites, family, fitted_encoder_weights
from .parallel import resolve_n_jobs
from .predict import neighbour_tree, training_codes
from .state import FittedState, MapParams
from .svi import SVIResult, run_svi

__all__ = [
    "MINIBATCH_ABOVE",
    "AUTO_BATCH_SIZE",
    "minibatch_sizes",
    "fit_threads",
    "population_sites",
    "resolve_devices",
    "run_map",
    "state_from_map",
]

#: The final fit's stopping rule is relative to at most this many nats of
#: loss (:func:`bayes_prsn.svi.stopping_rule`): it stops once 100 steps
#: change the loss by less than ``tol`` times this, 2 nats at the default
#: ``tol``, about what the relative rule allows at 1,000 samples. Relative
#: to the loss itself, which grows with the samples, it let a fit of 20,000
#: samples stop while 100 steps still gained 38 nats; on one such data set
#: the coefficients' squared error was then 5.7 times that of the fit run on
#: to 2 nats (0.00116 against 0.00020; ``benchmarks/README.md``, "The final
#: fit's tolerance").
#: The validation fits keep the relative rule: they only rank candidates.
FINAL_LOSS_SCALE = 2e4

#: ``batch_size="auto"`` takes full-batch steps up to this many samples ...
MINIBATCH_ABOVE = 20_000
#: ... and minibatches of this many samples above it.
AUTO_BATCH_SIZE = 8192


def minibatch_sizes(batch_size, n_samples: int, n_pairs: int) -> tuple[int, int] | None:
    """Samples and pairs per minibatch step, or None for full-batch steps."""
    size = batch_size
    if size == "auto":
        size = None if n_samples <= MINIBATCH_ABOVE else AUTO_BATCH_SIZE
    if size is None or size >= n_samples:
        return None
    # As many pairs as samples per step: the encoder runs on both ends of
    # every pair in the batch, which dominates the cost of a step.
    return int(size), min(int(size), n_pairs)


def resolve_devices(devices):
    """The JAX devices to shard the MAP over (None: one device)."""
    if devices is None:
        return None
    import jax

    available = jax.devices()
    if devices == "all":
        return available
    count = devices
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"devices must be None, 'all' or a number of devices >= 1; got {count!r}.")
    if count > len(available):
        raise ValueError(
            f"devices={count} but JAX sees {len(available)} device(s) "
            f"({available[0].platform}); lower devices, or on a CPU start Python with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N."
        )
    return available[:count]


def fit_threads(config: FitConfig) -> int:
    """Threads for independent fits (``n_jobs``); one when the MAP is sharded over devices."""
    if config.devices is not None and len(resolve_devices(config.devices)) > 1:
        return 1
    return resolve_n_jobs(config.n_jobs)


def run_map(
    key,
    data: dict,
    settings: dict,
    init: dict,
    config: FitConfig,
    *,
    warn: bool,
    mask=None,
    description: str = "MAP (SVI)",
    batch_sizes=None,
    min_steps: int | None = None,
    cancel=None,
    final: bool = False,
) -> SVIResult:
    """The MAP of the model on ``data`` with ``settings``, started at ``init``.

    ``mask`` marks the samples whose response enters the likelihood (the
    others are held out); all of them by default. ``cancel``: see
    :func:`~bayes_prsn.svi.run_svi`. ``final``: the fit behind ``coef_``,
    which stops at the absolute tolerance of :data:`FINAL_LOSS_SCALE`.
    """
    if mask is None:
        # An all-true mask rather than none: the final fit then reuses the
        # code compiled for the validation fits (same argument structure).
        mask = np.ones(data["X"].shape[0], dtype=bool)
    kwargs = dict(data, **settings, likelihood_mask=mask)
    return run_svi(
        key,
        kwargs,
        init,
        family=config.family,
        rank=config.rank,
        prior=config.prior,
        offset=config.offset,
        encoder_width=config.encoder_width,
        step_size=config.step_size,
        max_steps=config.max_steps,
        tol=config.tol,
        loss_scale_cap=FINAL_LOSS_SCALE if final else float("inf"),
        progress_bar=config.progress_bar,
        description=description,
        warn=warn,
        devices=resolve_devices(config.devices),
        batch_sizes=batch_sizes,
        cancel=cancel,
        **({} if min_steps is None else {"min_steps": min_steps}),
    )


def population_sites(params: dict, population: np.ndarray) -> dict:
    """The sites of a fit with every sample's model at the population GLM ``population``.

    The smoothing choice falls back to this when per-sample models do not
    predict held-out samples better than one model for everyone: the shared
    offset is the population GLM, and the dictionary, the encoder's output
    layer and every sample's own code are zero, so nothing is personalised.
    The covariate metric and the encoder's hidden layer of ``params`` (the
    fallback fit) are kept. Needs the shared offset.
    """
    sites = {name: np.asarray(value) for name, value in params.items()}
    sites["offset"] = np.asarray(population, dtype=sites["offset"].dtype)
    for name in ("dictionary", "encoder_out", "code_residual", "embedding"):
        if name in sites:
            sites[name] = np.zeros_like(sites[name])
    return sites


def state_from_map(
    problem, config: FitConfig, smoothing, result: SVIResult, *, inputs: dict
) -> FittedState:
    """The :class:`~bayes_prsn.state.FittedState` of a final MAP fit.

    ``inputs`` holds what only the raw inputs tell: ``n_features_in``,
    ``feature_names_in``, the classifier's ``classes`` and (optional)
    ``sample_index_name`` and ``target_name``.
    """
    settings = dict(problem.settings, **smoothing.settings)
    site_values = result.params
    # The family's likelihood parameters learned with the MAP join the settings
    # (the posterior conditions on them).
    for site in family(config.family).learned:
        if settings.get(site) is None:
            settings[site] = float(site_values[site])
    encoder_scale = float(settings.get("encoder_scale", ENCODER_SCALE))
    covariate_weights = np.asarray(site_values["covariate_weights"], dtype=float)
    encoder_weights = None
    if config.encoder_width:
        encoder_weights = tuple(
            np.asarray(w, dtype=float) for w in fitted_encoder_weights(site_values, encoder_scale)
        )
    n_columns = problem.data["X"].shape[1]
    shared = site_values["offset"] if config.offset else np.zeros(n_columns)
    params = MapParams(
        dictionary=np.asarray(site_values["dictionary"], dtype=float),
        offset=np.asarray(shared, dtype=float),
        embedding=codes_from_sites(
            site_values, problem.data.get("covariate_features"), encoder_scale
        ),
        covariate_weights=covariate_weights,
        encoder_weights=encoder_weights,
    )
    # The neighbour search under the learned metric (used by predict, and
    # by the training samples' coefficients just below).
    tree = neighbour_tree(problem.encoded, covariate_weights)
    codes = training_codes(params, problem.encoded, tree, config.n_neighbors)
    population_coef, population_intercept = problem.scaling.to_original_units(
        problem.population[None, :]
    )
    return FittedState(
        family=config.family,
        rank=config.rank,
        prior=config.prior,
        offset=config.offset,
        encoder_width=config.encoder_width,
        n_neighbors=config.n_neighbors,
        scaling=problem.scaling,
        encoder=problem.encoder,
        encoded=problem.encoded,
        covariates_frame=problem.covariates_frame,
        sample_index=problem.sample_index,
        feature_names=problem.feature_names,
        n_features_in=inputs["n_features_in"],
        feature_names_in=inputs["feature_names_in"],
        classes=inputs["classes"],
        X=problem.X,
        y=problem.y,
        # The MAP target's data for the posterior (the encoder's input is
        # rebuilt from the training covariates).
        data={k: v for k, v in problem.data.items() if k != "covariate_features"},
        settings=settings,
        validation_scores=smoothing.report,
        posterior_noise_scale=smoothing.posterior_noise_scale,
        params=params,
        theta=params.offset + codes @ params.dictionary,
        population_coef=population_coef[0],
        population_intercept=float(population_intercept[0]),
        loss_history=result.losses,
        n_steps=result.num_steps,
        converged=result.converged,
        neighbours=tree,
        sample_index_name=inputs.get("sample_index_name"),
        target_name=inputs.get("target_name"),
    )
