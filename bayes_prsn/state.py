"""What a fit leaves behind, as frozen records read through public names.

:class:`FittedState` is everything ``fit`` found and everything prediction,
the posterior, analysis, plots, the command line and save/load need of it;
:class:`MapParams` is its MAP in the model's units (as dynamax passes
``Params`` into pure functions); :class:`PosteriorState` is what
``sample_posterior`` adds. The estimators keep one of each (``fit_state_``,
``posterior_state_``) and publish the scikit-learn attributes from them;
:func:`fitted_state` and :func:`posterior_state` fetch them with the errors a
user reads when there is none yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from .exceptions import NotFittedError
from .predict import average_theta
from .preprocessing import CovariateEncoder, EncodedCovariates, NeighbourSearch
from .scaling import Scaling

__all__ = [
    "MapParams",
    "FittedState",
    "PosteriorState",
    "fitted_state",
    "posterior_state",
    "has_posterior",
    "published_attributes",
    "posterior_attributes",
]


class MapParams(NamedTuple):
    """The MAP in the model's units.

    Attributes
    ----------
    dictionary : ndarray (rank, n_columns)
        :math:`Q` (the last column is the intercept's when there is one).
    offset : ndarray (n_columns,)
        :math:`\\bar\\theta` (zeros without the shared offset).
    embedding : ndarray (n_samples, rank)
        The MAP codes :math:`Z`.
    covariate_weights : ndarray (n_covariates,)
        :math:`\\phi`.
    encoder_weights : tuple of ndarray or None
        :math:`(W_1, b_1, W_2)` as :math:`g` uses them; None without the encoder.
    """

    dictionary: np.ndarray
    offset: np.ndarray
    embedding: np.ndarray
    covariate_weights: np.ndarray
    encoder_weights: tuple | None


@dataclass(frozen=True)
class FittedState:
    """A fitted model.

    Settings: ``family``, ``rank``, ``prior``, ``offset``, ``encoder_width``
    and ``n_neighbors`` as fitted. Data: ``scaling`` (the maps into model
    units), ``encoder`` (the covariate coding), ``encoded`` (training
    covariates coded), ``covariates_frame`` (as passed), ``sample_index``
    (labels), ``feature_names`` (predictors), ``n_features_in`` and
    ``feature_names_in`` (columns of ``X``), ``classes`` (a classifier's
    labels), ``X`` and ``y`` (user units) and ``data`` (the MAP target's
    arrays in model units: ``X``, ``pairs``, ``pair_distances``,
    ``pair_weights``, ``y``). Fit: ``settings`` (the model's settings,
    smoothing included), ``validation_scores`` (the smoothing choice's
    report), ``posterior_noise_scale`` (model units), ``params``
    (:class:`MapParams`), ``theta`` (training samples' coefficients, model
    units), ``population_coef``/``population_intercept`` (user units),
    ``loss_history``, ``n_steps``, ``converged``. ``neighbours`` is the
    search tree over the training samples under the learned metric.
    ``sample_index_name`` and ``target_name`` are the names of the training
    data's index and of ``y`` (None when they had none). ``members`` are the
    other fits averaged into ``coef_`` (``n_fits``, :mod:`bayes_prsn.averaging`),
    each a ``FittedState`` of the same samples, with their ``member_seeds``.
    """

    family: str
    rank: int
    prior: str
    offset: bool
    encoder_width: int
    n_neighbors: int
    scaling: Scaling
    encoder: CovariateEncoder
    encoded: EncodedCovariates
    covariates_frame: pd.DataFrame
    sample_index: list
    feature_names: list
    n_features_in: int
    feature_names_in: np.ndarray | None
    classes: np.ndarray | None
    X: np.ndarray
    y: np.ndarray
    data: dict
    settings: dict
    validation_scores: dict | None
    posterior_noise_scale: float | None
    params: MapParams
    theta: np.ndarray
    population_coef: np.ndarray
    population_intercept: float
    loss_history: np.ndarray
    n_steps: int
    converged: bool
    neighbours: NeighbourSearch = field(repr=False, compare=False)
    sample_index_name: str | None = None
    target_name: str | None = None
    members: tuple = field(default=(), repr=False, compare=False)
    member_seeds: tuple = ()

    @property
    def fit_intercept(self) -> bool:
        return self.scaling.fit_intercept

    @property
    def n_samples(self) -> int:
        return len(self.sample_index)

    @property
    def n_predictors(self) -> int:
        return self.scaling.n_predictors

    @property
    def feature_labels(self) -> list:
        """Names of the predictors (``x0``, ``x1``, ... when ``X`` had none)."""
        if self.feature_names is not None:
            return list(self.feature_names)
        return [f"x{j}" for j in range(self.n_predictors)]

    @property
    def fits(self) -> tuple:
        """This fit and its members: the fits averaged into ``coef_``."""
        return (self, *self.members)

    @property
    def mean_theta(self) -> np.ndarray:
        """The training samples' coefficients averaged over :attr:`fits` (model units)."""
        return average_theta(fit.theta for fit in self.fits)

    @property
    def code_scale(self) -> float:
        """Prior scale of each code around the encoder's output (or zero)."""
        return float(self.settings.get("embedding_scale", 1.0))

    def to_original_units(self, theta: np.ndarray):
        """Internal coefficients as ``(coef, intercept)`` in the user's units."""
        return self.scaling.to_original_units(theta)


@dataclass(frozen=True)
class PosteriorState:
    """Draws from the posterior of a fitted model.

    ``idata`` is the ArviZ data; ``method`` the back-end; ``diagnostics``
    R-hat, ESS and divergences. For predictions, the draws of the target's
    unknowns: ``shared_draws`` (every shared site's displacement from its
    MAP value ``shared_centre``, chain and draw first, model units; with the
    encoder, the default) with the hidden units' ``input_scales``, or
    ``code_draws`` (the codes' draws (chain, draw, n_samples, rank) as
    float32; without the encoder). ``noise_scale``
    is the gaussian noise scale (user units): learned by type-II maximum
    likelihood, or the fixed one of the code target, whose ``gamma`` was
    fixed too (None for the shared target); ``noise_draws`` its draws where
    NUTS sampled it. ``scales`` are the learned prior precisions and the
    effective number of parameters (:mod:`bayes_prsn.evidence`). ``refits``:
    for a posterior pooled over refits (``sample_posterior(refits=...)``,
    :mod:`bayes_prsn.pooling`), each refit's ``(MapParams, PosteriorState)``
    (its MAP and its draws, without ArviZ data); ``idata`` and
    ``noise_draws`` then hold every fit's draws, this fit's first, and the
    draws above are this fit's.
    """

    idata: object
    code_draws: np.ndarray | None
    method: str
    noise_scale: float | None
    gamma: float | None
    diagnostics: dict
    shared_draws: dict | None = None
    shared_centre: dict | None = None
    noise_draws: np.ndarray | None = None
    input_scales: np.ndarray | None = None
    scales: dict | None = None
    refits: tuple = ()

    @property
    def fits(self) -> int:
        """The number of fits whose draws are pooled (1 without refits)."""
        return 1 + len(self.refits)


def fitted_state(estimator) -> FittedState:
    """The estimator's :class:`FittedState`; :class:`NotFittedError` before ``fit``."""
    state = estimator.__dict__.get("fit_state_")
    if state is None:
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted yet; call fit(X, y, covariates=...) "
            "first."
        )
    return state


def posterior_state(estimator) -> PosteriorState:
    """The estimator's :class:`PosteriorState`; :class:`NotFittedError` without one."""
    fitted_state(estimator)
    state = estimator.__dict__.get("posterior_state_")
    if state is None:
        raise NotFittedError(
            "no posterior yet: call sample_posterior() after fit() before asking for intervals."
        )
    return state


def has_posterior(estimator) -> bool:
    """Whether ``sample_posterior`` has been called on this fit."""
    return estimator.__dict__.get("posterior_state_") is not None


def published_attributes(state: FittedState, posterior: PosteriorState | None = None) -> dict:
    """The scikit-learn attributes of an estimator fitted to ``state`` (user units).

    With ``posterior``, the attributes ``sample_posterior`` sets as well.
    """
    params, scaling = state.params, state.scaling
    coef, intercept = state.to_original_units(state.mean_theta)
    attributes = {
        "fit_state_": state,
        "family_": state.family,
        "n_features_in_": state.n_features_in,
        "n_predictors_": state.n_predictors,
        "feature_names_": state.feature_names,
        "covariate_names_": state.encoder.names_in_,
        "covariate_names_used_": state.encoder.feature_names,
        "encoder_": state.encoder,
        "x_scaler_": scaling.x,
        "y_scaler_": scaling.y,
        "loss_history_": state.loss_history,
        "n_steps_": state.n_steps,
        "converged_": state.converged,
        "validation_scores_": state.validation_scores,
        "covariate_weights_": params.covariate_weights,
        "embedding_": params.embedding,
        "coef_": coef,
        "intercept_": intercept,
        "population_coef_": state.population_coef,
        "population_intercept_": state.population_intercept,
        "dictionary_": scaling.dictionary_to_original(params.dictionary),
        "noise_scale_": scaling.noise_to_original(state.settings.get("noise_scale")),
        "likelihood_scale_": float(state.settings.get("likelihood_scale", 1.0)),
        "prior_scale_": float(state.settings["prior_scale"]),
    }
    if state.feature_names_in is not None:
        attributes["feature_names_in_"] = state.feature_names_in
    if state.classes is not None:
        attributes["classes_"] = state.classes
    if posterior is not None:
        attributes.update(posterior_attributes(posterior))
    return attributes


def posterior_attributes(posterior: PosteriorState) -> dict:
    """The attributes ``sample_posterior`` sets on the estimator."""
    return {
        "posterior_state_": posterior,
        "idata_": posterior.idata,
        "posterior_method_": posterior.method,
        "posterior_noise_scale_": posterior.noise_scale,
        "posterior_gamma_": posterior.gamma,
        "posterior_diagnostics_": posterior.diagnostics,
    }
