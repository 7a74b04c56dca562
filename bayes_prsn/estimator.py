"""The estimators users call: :class:`PersonalizedRegression` and :class:`PersonalizedClassifier`.

``fit`` prepares the data (:mod:`bayes_prsn.preprocessing`), fits the
population GLM (:mod:`bayes_prsn.population`), chooses the amount of
smoothing on held-out samples and finds the MAP of the joint log-density
(:mod:`bayes_prsn.models`) through SVI (:mod:`bayes_prsn.svi`). Results are
reported in the user's original units.
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from .models import FAMILIES, PRIORS, encode_covariates, encoder_input_scales
from .population import fit_population_glm, mean_function
from .predict import (
    PREDICT_METHODS,
    nearest_training,
    neighbour_search,
    predict_embedding,
    predict_neighbors,
)
from .preprocessing import (
    CovariateEncoder,
    Standardizer,
    build_neighbour_pairs,
    check_array,
    check_dense,
    check_response,
    check_two_dimensional,
    neighbour_space,
    pair_distances,
)
from .svi import ConvergenceWarning, run_svi

__all__ = ["PersonalizedRegression", "PersonalizedClassifier", "NotFittedError"]

#: Noise scales (in units of the standardised response) tried by ``noise_scale="auto"``.
NOISE_SCALE_GRID = (0.25, 0.5, 1.0, 2.0)
#: ``batch_size="auto"`` takes full-batch steps up to this many samples ...
MINIBATCH_ABOVE = 20_000
#: ... and minibatches of this many samples above it.
AUTO_BATCH_SIZE = 8192
#: Minibatch fits choose their smoothing on a random subset of this many samples
#: (5,000 until the encoder's smoothness joined the choice: with its two more
#: validation fits the N = 1e5 fit took 105 s instead of 79 s).
VALIDATION_SAMPLES = 2_000

#: Samples whose neighbours' codes are gathered at once (bounds the memory of
#: the (rows, n_neighbors, rank) codes, for ``coef_`` and for predictions).
NEIGHBOUR_CHUNK = 65_536
#: Used when the population GLM beats every candidate on the held-out samples:
#: noise scale (gaussian, standardised units) and likelihood power (other families).
FALLBACK_NOISE_SCALE = 4.0
FALLBACK_LIKELIHOOD_SCALE = 1.0 / 16.0
#: Random (far) pairs per sample added to the neighbour graph.
RANDOM_PAIRS = 5
#: Weight of a random pair's term in the potential (neighbour pairs weigh 1).
RANDOM_PAIR_WEIGHT = 0.02
#: NUTS is reported as not converged above this split R-hat on any coefficient ...
RHAT_LIMIT = 1.01
#: ... or below this bulk or tail ESS per chain, or after any divergence.
ESS_PER_CHAIN = 100
#: The pair list is padded to a multiple of this many pairs (see ``_pad_pairs``).
PAIR_BUCKET = 256
#: Likelihood powers tried for the bernoulli and poisson families. Only the full
#: likelihood: held-out log-loss of plug-in predictions favours powers below 1,
#: which attenuate every coefficient (logistic simulator: 0.27 with the power
#: chosen from (1, 0.5, 0.25, 0.125) against 0.14 at 1). A weaker power is used
#: only as the fallback, when the population GLM predicts better.
LIKELIHOOD_SCALE_GRID = (1.0,)
#: Largest prior scale of the covariate encoder's input weights (the units'
#: scales spread from 1 up to it; see ``models.encoder_input_scales``) in the
#: first stage of the validation choice, and the values tried at the chosen
#: noise scale: 1 keeps every unit smooth (diabetes 5-fold MSE 0.500 against
#: 0.509 with 5 alone), 100 gives a few units steep enough for a jump (toy:
#: 0.0037 against 0.0079).
ENCODER_SCALE = 5.0
ENCODER_SCALE_GRID = (1.0, 5.0, 100.0)
#: Prior scale of each code's residual from the covariate encoder's output, by family.
#: A bernoulli or poisson response says less about one sample than a gaussian one:
#: on the logistic simulator 0.01 instead of 0.1 lowered the coefficient error from
#: 1.07 to 0.71 (psi scale 10, tempered likelihood; poisson: 0.0023 either way).
CODE_RESIDUAL_SCALE = {"gaussian": 0.1, "bernoulli": 0.01, "poisson": 0.01}
#: Sample sites of the covariate encoder, in the order ``encode_covariates`` takes them.
ENCODER_SITES = ("encoder_in", "encoder_bias", "encoder_out")


#: ``sample_posterior`` refuses to start when its draws would need more than this share
#: of the machine's memory (unless ``max_memory_gb`` says otherwise).
MEMORY_FRACTION = 0.5


def _physical_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 16.0


class _Problem(NamedTuple):
    data: dict
    settings: dict
    init: dict
    population: np.ndarray
    key: object
    rng: np.random.Generator
    encoded: object
    X: np.ndarray
    y: np.ndarray
    sample_index: list
    covariates_frame: object


class NotFittedError(SklearnNotFittedError):
    """The estimator was used before ``fit`` (a scikit-learn ``NotFittedError``)."""


def _store_parameters(estimator, values: dict) -> None:
    """Set the ``__init__`` arguments in ``values`` (its ``locals()``) as attributes, unchanged."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


def _check_positive(value, name: str, *, integer: bool = False, allow=()) -> None:
    if value in allow:
        return
    if integer:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    elif (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")


class _PersonalizedBase(BaseEstimator):
    """Shared implementation of the personalized estimators."""

    _family_fixed: str | None = None

    def __init__(
        self,
        family: str = "gaussian",
        *,
        rank: int = 3,
        n_neighbors: int = 25,
        gamma: float = 0.1,
        prior: str = "normal",
        prior_scale: float = 100.0,
        covariate_weight_scale: float = 10.0,
        noise_scale: float | str = "auto",
        fit_intercept: bool = True,
        offset: bool = True,
        encoder_width: int = 16,
        predict_method: str = "neighbors",
        validation_fraction: float = 0.2,
        step_size: float = 0.02,
        max_steps: int = 3000,
        tol: float = 1e-4,
        progress_bar: bool = False,
        random_state: int | None = None,
        covariate_columns: list | str | None = None,
        devices: int | str | None = None,
        batch_size: int | str | None = "auto",
    ):
        _store_parameters(self, locals())

    # Under scikit-learn's metadata routing (``sklearn.set_config(
    # enable_metadata_routing=True)``) ``covariates`` is requested by default,
    # so GridSearchCV, cross_val_score and Pipeline pass it on (split by fold).
    __metadata_request__fit = {"covariates": True}
    __metadata_request__predict = {"covariates": True}
    __metadata_request__score = {"covariates": True}

    # ------------------------------------------------------------------ checks
    def _check_settings(self) -> str:
        family = self._family_fixed or self.family
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}; got {family!r}.")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}; got {self.prior!r}.")
        if self.predict_method not in PREDICT_METHODS:
            raise ValueError(
                f"predict_method must be one of {PREDICT_METHODS}; got {self.predict_method!r}."
            )
        _check_positive(self.rank, "rank", integer=True)
        _check_positive(self.n_neighbors, "n_neighbors", integer=True)
        _check_positive(self.max_steps, "max_steps", integer=True)
        if self.batch_size not in ("auto", None):
            _check_positive(self.batch_size, "batch_size", integer=True)
        width = self.encoder_width
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 0:
            raise ValueError(
                f"encoder_width must be an integer >= 0 (0 for no encoder); got {width!r}."
            )
        for name in ("gamma", "prior_scale", "covariate_weight_scale", "step_size", "tol"):
            _check_positive(getattr(self, name), name)
        _check_positive(self.noise_scale, "noise_scale", allow=("auto",))
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1); got {self.validation_fraction!r}."
            )
        return family

    def _split_X(self, X, covariates, *, fitting: bool = False):
        """Predictors and covariates of a call; ``covariate_columns`` takes the covariates from X.

        With ``covariate_columns=None`` both are returned as given. With a
        list of column names (DataFrame) or positions, those columns of ``X``
        are the covariates and the others the predictors; with ``"all"`` every
        column of ``X`` is both.
        """
        columns = self.covariate_columns
        if columns is None:
            return X, covariates
        if covariates is not None:
            raise ValueError(
                "covariates were passed although covariate_columns is set; either pass "
                "covariates=... or name the covariate columns of X, not both."
            )
        check_dense(X, "X")
        frame = X if isinstance(X, pd.DataFrame) else None
        if frame is None:
            values = np.asarray(X)
            check_two_dimensional(values, "X")
            width = values.shape[1]
        else:
            width = frame.shape[1]
        if not fitting and width != self.n_features_in_:
            raise ValueError(
                f"X has {width} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if isinstance(columns, str) and columns == "all":
            return X, (X if frame is not None else values)
        if isinstance(columns, str | numbers.Integral):
            columns = [columns]
        names = list(frame.columns) if frame is not None else list(range(width))
        positions, unknown = [], []
        for column in columns:
            if column in names:
                positions.append(names.index(column))
            elif (
                isinstance(column, numbers.Integral)
                and not isinstance(column, bool)
                and -width <= column < width
            ):
                positions.append(int(column) % width)
            else:
                unknown.append(column)
        if unknown or not positions:
            what = "columns of X" if frame is not None else "positions in X (an array has no names)"
            raise ValueError(
                f"covariate_columns {unknown or columns!r} are not {what}; "
                f"X has {names[:10]}{'...' if width > 10 else ''}."
            )
        rest = [j for j in range(width) if j not in positions]
        if not rest:
            raise ValueError(
                "covariate_columns takes every column of X, leaving no predictor; use "
                'covariate_columns="all" to use the predictors as covariates too.'
            )
        if frame is not None:
            return frame.iloc[:, rest], frame.iloc[:, positions]
        return values[:, rest], values[:, positions]

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, y, covariates=...) "
                "first."
            )

    # --------------------------------------------------------------------- fit
    def fit(self, X, y, covariates=None):
        """Fit one regression model per sample.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Predictors.
        y : array-like of shape (n_samples,)
            Response.
        covariates : array-like or DataFrame of shape (n_samples, n_covariates)
            What makes samples alike: their models are tied through the
            distance between their covariates. In a DataFrame, object, string,
            category and bool columns are categorical; NaN marks a missing
            value.

        Returns
        -------
        self

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) during ``fit`` leaves the estimator
        unfitted, with a warning, and passes the interrupt on; a non-finite
        loss restarts the optimisation from its last finite state with
        smaller steps (:class:`~bayes_prsn.NumericalWarning`) or stops with
        ``FloatingPointError``; non-finite coefficients are never returned.
        The same ``random_state`` gives bit-identical results on the same
        machine and software versions (see the README for what can differ
        across machines).
        """
        # A failed refit must not leave the attributes of an earlier fit behind.
        self._forget_fit()
        try:
            return self._fit(X, y, covariates)
        except KeyboardInterrupt:
            # Ctrl-C: nothing half-fitted stays behind; the interrupt goes on to the caller.
            self._forget_fit()
            warnings.warn(
                f"fit was interrupted; this {type(self).__name__} is not fitted.",
                UserWarning,
                stacklevel=2,
            )
            raise

    def _forget_fit(self) -> None:
        for name in ("coef_", "idata_", "posterior_diagnostics_", "_posterior_embedding"):
            self.__dict__.pop(name, None)

    def _fit(self, X, y, covariates):
        problem = self._setup(X, y, covariates)
        data, settings, init = problem.data, problem.settings, problem.init
        population, key, rng = problem.population, problem.key, problem.rng
        family, design, encoded = self.family_, data["X"], problem.encoded
        batch_sizes = self._batch_sizes(data)
        if batch_sizes is None:
            smoothing, start = self._choose_smoothing(data, settings, init, population, key, rng)
        else:
            smoothing, start = self._choose_smoothing_on_subset(problem), None
        settings.update(smoothing)
        if start is not None:
            # Continue from the chosen candidate's MAP: the final fit only adds
            # the held-out samples' likelihood (a steep encoder unit takes
            # thousands of steps to form; toy data: 0.0037 against 0.0072 when
            # started afresh with the same step cap).
            init = start
        result = self._run(key, data, settings, init, warn=True, batch_sizes=batch_sizes)

        params = result.params
        self.loss_history_ = result.losses
        self.n_steps_ = result.num_steps
        self.converged_ = result.converged
        self.covariate_weights_ = np.asarray(params["covariate_weights"], dtype=float)
        encoder_scale = float(settings.get("encoder_scale", ENCODER_SCALE))
        self.embedding_ = _codes(params, data, encoder_scale)
        # The encoder's weights as g uses them (the site holds W_1 / s_W).
        self._encoder_params = (
            tuple(
                np.asarray(w, dtype=float) for w in _fitted_encoder_weights(params, encoder_scale)
            )
            if self.encoder_width
            else None
        )
        self._dictionary_internal = np.asarray(params["dictionary"], dtype=float)
        shared = params["offset"] if self.offset else np.zeros(design.shape[1])
        self._offset_internal = np.asarray(shared, dtype=float)
        # The neighbour search under the learned metric (used by predict, and
        # by the training samples' coefficients just below).
        self._train_encoded = encoded
        self._search = None
        self._neighbour_search()
        theta = self._offset_internal + self._training_codes(encoded) @ self._dictionary_internal
        self.coef_, self.intercept_ = self._to_original_units(theta)
        pop_coef, pop_intercept = self._to_original_units(population[None, :])
        self.population_coef_, self.population_intercept_ = pop_coef[0], float(pop_intercept[0])
        self.dictionary_ = self._dictionary_internal[:, : self.n_predictors_] * (
            self.y_scaler_.scale[0] / self.x_scaler_.scale
        )
        self.noise_scale_ = (
            float(settings["noise_scale"]) * float(self.y_scaler_.scale[0])
            if family == "gaussian"
            else None
        )
        self.likelihood_scale_ = float(settings.get("likelihood_scale", 1.0))
        self.covariate_names_used_ = self.encoder_.feature_names
        self._theta_internal = theta
        # Kept for sample_posterior: the data and settings of the MAP target
        # (the encoder's input is rebuilt from the training covariates).
        self._train_data = {k: v for k, v in data.items() if k != "covariate_features"}
        self._fit_settings = settings
        self._train_X, self._train_y = problem.X, problem.y
        self._sample_index = problem.sample_index
        self._covariates_frame = problem.covariates_frame
        return self

    def _setup(self, X, y, covariates) -> _Problem:
        """Check and scale the inputs, build the pair graph, fit the population GLM.

        Returns everything the optimisation needs, including the starting
        point (see :meth:`_population_start`).
        """
        import jax

        family = self._check_settings()
        X_full = X
        X, covariates = self._split_X(X, covariates, fitting=True)
        X_in, y_in = X, y
        y = self._prepare_target(y)
        y = check_response(y, family)
        X, feature_names = check_array(X, "X", n_samples=y.shape[0])
        n_samples = X.shape[0]
        if n_samples <= self.n_neighbors:
            raise ValueError(
                f"got {n_samples} sample(s) (n_samples = {n_samples}) but n_samples must exceed "
                f"n_neighbors={self.n_neighbors}; lower n_neighbors or pass more samples."
            )
        encoder = CovariateEncoder().fit(covariates, n_samples=n_samples)
        self.family_ = family
        # Columns of X as passed (predictors, plus covariates named by covariate_columns).
        self.n_features_in_ = (
            X_full.shape[1] if isinstance(X_full, pd.DataFrame) else np.asarray(X_full).shape[1]
        )
        self.__dict__.pop("feature_names_in_", None)
        if isinstance(X_full, pd.DataFrame) and all(isinstance(c, str) for c in X_full.columns):
            self.feature_names_in_ = np.asarray(X_full.columns, dtype=object)
        self.n_predictors_ = X.shape[1]
        self.feature_names_ = feature_names
        self.covariate_names_ = encoder.names_in_
        self.encoder_ = encoder

        # Internal scaling: every quantity the model sees is O(1).
        self.x_scaler_ = Standardizer.fit(X, center=self.fit_intercept)
        design = self._design(X)
        if family == "gaussian":
            self.y_scaler_ = Standardizer.fit(y[:, None], center=self.fit_intercept)
        else:
            self.y_scaler_ = Standardizer(np.zeros(1), np.ones(1))
        target = self.y_scaler_.transform(y[:, None])[:, 0]

        encoded = encoder.transform(covariates)
        n_covariates = len(encoder.feature_names)
        rng = np.random.default_rng(self.random_state)
        pairs, is_random = build_neighbour_pairs(
            encoded, np.ones(n_covariates), self.n_neighbors, RANDOM_PAIRS, rng
        )
        distances = pair_distances(encoded.take(pairs[:, 0]), encoded.take(pairs[:, 1]))

        population = fit_population_glm(
            design, target, family, penalty=self._population_penalty(design.shape[1])
        )
        key = jax.random.PRNGKey(int(rng.integers(2**31 - 1)))
        init = self._population_start(population, encoded, pairs, distances, rng)

        pairs, distances, weights = _pad_pairs(
            pairs, distances, np.where(is_random, RANDOM_PAIR_WEIGHT, 1.0)
        )
        data = {
            "X": design,
            "pairs": pairs,
            **self._encoder_data(encoded),
            "pair_distances": distances,
            "pair_weights": weights,
            "y": target,
        }
        settings = {
            "gamma": float(self.gamma),
            "prior_scale": float(self.prior_scale),
            "covariate_weight_scale": float(self.covariate_weight_scale),
            **self._encoder_settings(),
        }
        frame = (
            covariates
            if isinstance(covariates, pd.DataFrame)
            else pd.DataFrame(np.asarray(covariates))
        )
        return _Problem(
            data,
            settings,
            init,
            population,
            key,
            rng,
            encoded,
            X,
            y,
            _sample_index(n_samples, X_in, covariates, y_in),
            frame.reset_index(drop=True),
        )

    def _prepare_target(self, y):
        return y

    def _encoder_data(self, encoded) -> dict:
        if not self.encoder_width:
            return {}
        return {"covariate_features": _encoder_features(encoded)}

    def _encoder_settings(self) -> dict:
        scale = CODE_RESIDUAL_SCALE[self.family_] if self.encoder_width else 1.0
        return {"embedding_scale": scale}

    def _code_mean(self, encoded) -> np.ndarray | None:
        """The encoder's output g(u) (internal code units) for these covariates."""
        if self._encoder_params is None:
            return None
        return np.asarray(
            encode_covariates(_encoder_features(encoded), *self._encoder_params), dtype=float
        )

    def _encoder_shift(self, encoded, neighbours: np.ndarray) -> np.ndarray:
        """How far the encoder moves each new code from its neighbours' mean code.

        ``g(u_new)`` minus the mean of ``g`` over the new sample's nearest
        training samples (``neighbours``, shape (n_new, k)); zero without an
        encoder. A new sample's code is its neighbours' mean code plus this,
        i.e. the encoder's output plus the neighbours' mean residual. Only the
        neighbours' rows are encoded, not the whole training set.
        """
        if self._encoder_params is None:
            return np.zeros((encoded.n_samples, self.rank))
        around = self._code_mean(self._train_encoded.take(neighbours.ravel()))
        around = around.reshape(*neighbours.shape, -1).mean(axis=1)
        return self._code_mean(encoded) - around

    def _training_codes(self, encoded) -> np.ndarray:
        """The training samples' codes behind ``coef_``.

        Without the encoder, the MAP codes. With it, each sample's code is the
        encoder's output ``g(u_i)`` plus the mean MAP residual of its
        ``n_neighbors`` nearest training samples under the learned metric
        (itself included): the rule new samples get under the default
        ``predict_method="neighbors"``, so ``predict_coef`` on the training
        covariates then gives ``coef_``. A sample's own residual is
        fitted to its single observation and carries its noise; the
        distance-matching prior says that neighbours share their codes, and
        the mean over them keeps the shared part. Measured on the benchmark
        generators (``benchmarks/peers.py``, training samples' theta-MSE, own
        residual against the neighbours' mean): clustered 0.0067 against
        0.0020, low_rank 0.0015 against 0.0012, raw_units 94 against 78, toy
        0.00365 against 0.00373, and equal on logistic, poisson and null.
        """
        if self._encoder_params is None:
            return self.embedding_
        return self._neighbour_codes(encoded)

    def _neighbour_codes(self, encoded) -> np.ndarray:
        """Codes from the nearest training samples: their mean code plus the encoder's shift.

        I.e. ``g(u)`` plus the neighbours' mean MAP residual; used for new
        samples (``predict_method="neighbors"``) and for the training
        samples' ``coef_``. Rows are looked up ``NEIGHBOUR_CHUNK`` at a time,
        which bounds the memory of the gathered (rows, n_neighbors, rank)
        codes.
        """
        search = self._neighbour_search()
        codes = np.empty((encoded.n_samples, self.rank))
        for start in range(0, encoded.n_samples, NEIGHBOUR_CHUNK):
            rows = np.arange(start, min(start + NEIGHBOUR_CHUNK, encoded.n_samples))
            part = encoded.take(rows)
            index = nearest_training(part, search, self.covariate_weights_)
            codes[rows] = self.embedding_[index].mean(axis=1) + self._encoder_shift(part, index)
        return codes

    def _population_penalty(self, n_columns: int) -> np.ndarray:
        """Ridge penalty of the population GLM: 1 per coefficient, none on the intercept."""
        penalty = np.ones(n_columns)
        if self.fit_intercept:
            penalty[-1] = 0.0
        return penalty

    def _design(self, X: np.ndarray) -> np.ndarray:
        scaled = self.x_scaler_.transform(X)
        if self.fit_intercept:
            scaled = np.column_stack([scaled, np.ones(scaled.shape[0])])
        return scaled

    def _to_original_units(self, theta: np.ndarray):
        """Map internal coefficients (and intercepts) back to the user's units."""
        theta = np.atleast_2d(theta)
        p = self.n_predictors_
        sy, my = self.y_scaler_.scale[0], self.y_scaler_.center[0]
        coef = theta[:, :p] * sy / self.x_scaler_.scale
        if self.fit_intercept:
            shift = theta[:, :p] @ (self.x_scaler_.center / self.x_scaler_.scale)
            intercept = sy * (theta[:, p] - shift) + my
        else:
            intercept = np.zeros(theta.shape[0])
        return coef, intercept

    def _population_start(self, population, encoded, pairs, distances, rng) -> dict:
        """Starting point at which every sample's model equals the population GLM.

        The codes ``Z`` start at the leading principal components of the
        covariates (so that distance matching has a sensible layout to refine)
        and the dictionary ``Q`` at tiny random values, so ``theta_i = theta_pop
        + Q^T Z_i`` differs from the population estimate only by a tiny jitter
        that is symmetric about it (``Z`` is centred).
        """
        n_samples = encoded.n_samples
        space = neighbour_space(encoded, np.ones(distances.shape[1]))
        space = space - space.mean(axis=0)
        u, s, _ = np.linalg.svd(space, full_matrices=False)
        codes = u[:, : self.rank] * s[: self.rank] / np.sqrt(n_samples)
        if codes.shape[1] < self.rank:
            extra = 1e-3 * rng.standard_normal((n_samples, self.rank - codes.shape[1]))
            codes = np.column_stack([codes, extra])
        codes = codes - codes.mean(axis=0)
        gaps = np.linalg.norm(codes[pairs[:, 0]] - codes[pairs[:, 1]], axis=1)
        total = distances.sum(axis=1)
        weight = np.median(gaps) / max(
            np.median(total[total > 0]) if np.any(total > 0) else 1, 1e-6
        )
        n_columns = population.shape[0]
        init = {
            "dictionary": 1e-3 * rng.standard_normal((self.rank, n_columns)),
            "covariate_weights": np.full(distances.shape[1], max(weight, 1e-3)),
        }
        if self.offset:
            init["offset"] = population
        else:
            # Without an offset the population model must come from Q^T Z: put
            # it along a constant first code.
            codes[:, 0] = 1.0
            init["dictionary"][0] = population
        width = self.encoder_width
        if width:
            # Random hidden units and a zero output layer: the encoder starts at
            # g = 0, so the codes are the residuals and every sample's model
            # starts where it would without the encoder.
            n_inputs = _encoder_features(encoded).shape[1]
            # The site holds W_1 divided by each unit's prior scale, and starts
            # at the same values for every candidate encoder_scale.
            init["encoder_in"] = (
                2.0 * rng.standard_normal((n_inputs, width)) / np.sqrt(n_inputs) / ENCODER_SCALE
            )
            init["encoder_bias"] = 0.5 * rng.standard_normal(width)
            init["encoder_out"] = np.zeros((width, self.rank))
            init["code_residual"] = codes
        else:
            init["embedding"] = codes
        return init

    def _batch_sizes(self, data) -> tuple[int, int] | None:
        """Samples and pairs per minibatch step, or None for full-batch steps."""
        n_samples, n_pairs = data["X"].shape[0], data["pairs"].shape[0]
        size = self.batch_size
        if size == "auto":
            size = None if n_samples <= MINIBATCH_ABOVE else AUTO_BATCH_SIZE
        if size is None or size >= n_samples:
            return None
        # As many pairs as samples per step: the encoder runs on both ends of
        # every pair in the batch, which dominates the cost of a step.
        return int(size), min(int(size), n_pairs)

    def _choose_smoothing_on_subset(self, problem) -> dict:
        """Choose the smoothing on a random subset of samples (full-batch fits).

        Used with minibatch fits: the validation fits then cost what a fit of
        ``VALIDATION_SAMPLES`` samples costs, whatever the data's size.
        """
        from sklearn.base import clone

        n_samples = problem.X.shape[0]
        size = min(n_samples, VALIDATION_SAMPLES)
        index = np.sort(problem.rng.choice(n_samples, size, replace=False))
        helper = clone(self).set_params(batch_size=None, covariate_columns=None)
        sub = helper._setup(
            problem.X[index], problem.y[index], problem.covariates_frame.iloc[index]
        )
        smoothing, _ = helper._choose_smoothing(
            sub.data, sub.settings, sub.init, sub.population, sub.key, sub.rng
        )
        scores = helper.validation_scores_
        if self.family_ == "gaussian":
            # From the subset's standardised units to the full data's.
            ratio = float(helper.y_scaler_.scale[0] / self.y_scaler_.scale[0])
            smoothing = dict(smoothing, noise_scale=smoothing["noise_scale"] * ratio)
            if scores is not None:
                scores = dict(
                    scores,
                    candidates=[
                        dict(c, noise_scale=c["noise_scale"] * ratio) for c in scores["candidates"]
                    ],
                    scores=[v * ratio**2 for v in scores["scores"]],
                    population=scores["population"] * ratio**2,
                )
        self.validation_scores_ = scores
        return smoothing

    def _run(
        self,
        key,
        data,
        settings,
        init,
        *,
        warn,
        mask=None,
        description="MAP (SVI)",
        batch_sizes=None,
    ):
        if mask is None:
            # An all-true mask rather than none: the final fit then reuses the
            # code compiled for the validation fits (same argument structure).
            mask = np.ones(data["X"].shape[0], dtype=bool)
        kwargs = dict(data, **settings, likelihood_mask=mask)
        return run_svi(
            key,
            kwargs,
            init,
            family=self.family_,
            rank=self.rank,
            prior=self.prior,
            offset=self.offset,
            encoder_width=self.encoder_width,
            step_size=self.step_size,
            max_steps=self.max_steps,
            tol=self.tol,
            progress_bar=self.progress_bar,
            description=description,
            warn=warn,
            devices=self._devices(),
            batch_sizes=batch_sizes,
        )

    def _devices(self):
        """The JAX devices to shard the MAP over (None: one device)."""
        if self.devices is None:
            return None
        import jax

        available = jax.devices()
        if self.devices == "all":
            return available
        count = self.devices
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
            raise ValueError(
                f"devices must be None, 'all' or a number of devices >= 1; got {count!r}."
            )
        if count > len(available):
            raise ValueError(
                f"devices={count} but JAX sees {len(available)} device(s) "
                f"({available[0].platform}); lower devices, or on a CPU start Python with "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N."
            )
        return available[:count]

    def _choose_smoothing(self, data, settings, init, population, key, rng) -> tuple:
        """Choose the noise scale (gaussian) and the encoder's smoothness on held-out samples.

        A random ``validation_fraction`` of the samples is left out of the
        likelihood; their codes follow from the covariate encoder and the
        distance-matching potential alone, as for new samples. Each candidate
        is scored by the held-out predictive loss. First the noise scale is
        chosen from ``NOISE_SCALE_GRID`` (bernoulli and poisson fits have one
        candidate, the full likelihood; see ``LIKELIHOOD_SCALE_GRID``) with
        the encoder's input-weight prior scale at ``ENCODER_SCALE``; then, at
        the chosen noise scale, the other ``ENCODER_SCALE_GRID`` values are
        tried (a smoother or a steeper encoder). The population GLM (fitted on
        the same training part) is scored too. When no candidate beats it,
        the fit uses a much stronger smoothing (``FALLBACK_NOISE_SCALE``,
        ``FALLBACK_LIKELIHOOD_SCALE``), which keeps every model near the
        population's.

        Returns the chosen settings and the chosen candidate's MAP parameters
        (None when nothing was fitted or the fallback was chosen), from which
        the final fit starts.
        """
        family = self.family_
        fixed = {"likelihood_scale": 1.0, "encoder_scale": ENCODER_SCALE}
        if family == "gaussian":
            if self.noise_scale != "auto":
                self.validation_scores_ = None
                chosen = dict(fixed, noise_scale=float(self.noise_scale) / self.y_scaler_.scale[0])
                return chosen, None
            candidates = [dict(fixed, noise_scale=s) for s in NOISE_SCALE_GRID]
        else:
            candidates = [
                dict(fixed, noise_scale=None, likelihood_scale=w) for w in LIKELIHOOD_SCALE_GRID
            ]
        n_samples = data["X"].shape[0]
        held_out = rng.random(n_samples) < self.validation_fraction
        if self.validation_fraction == 0 or held_out.sum() < 10 or (~held_out).sum() < 10:
            self.validation_scores_ = None
            return candidates[len(candidates) // 2], None
        X, y = data["X"], data["y"]
        n_total = len(candidates) + (len(ENCODER_SCALE_GRID) - 1 if self.encoder_width else 0)
        scores, fits = [], []

        def score(candidate):
            result = self._run(
                key,
                data,
                dict(settings, **candidate),
                init,
                warn=False,
                mask=~held_out,
                description=f"choosing smoothing {len(scores) + 1}/{n_total}",
            )
            params = result.params
            shared = params["offset"] if self.offset else 0.0
            theta = shared + _codes(params, data, candidate["encoder_scale"]) @ params["dictionary"]
            eta = np.sum(X[held_out] * theta[held_out], axis=1)
            scores.append(_predictive_loss(eta, y[held_out], family))
            fits.append(params)

        for candidate in candidates:
            score(candidate)
        if self.encoder_width:
            chosen = candidates[int(np.argmin(scores))]
            for scale in ENCODER_SCALE_GRID:
                if scale != ENCODER_SCALE:
                    candidates.append(dict(chosen, encoder_scale=scale))
                    score(candidates[-1])
        train = ~held_out
        population_train = fit_population_glm(
            X[train],
            y[train],
            family,
            penalty=self._population_penalty(X.shape[1]),
        )
        population_score = _predictive_loss(X[held_out] @ population_train, y[held_out], family)
        best = int(np.argmin(scores))
        start = fits[best]
        if scores[best] >= population_score:
            # No candidate beats one model for everyone: smooth so strongly
            # that every sample's model stays at the population's.
            fallback = (
                dict(fixed, noise_scale=FALLBACK_NOISE_SCALE)
                if family == "gaussian"
                else dict(fixed, noise_scale=None, likelihood_scale=FALLBACK_LIKELIHOOD_SCALE)
            )
            candidates = [*candidates, fallback]
            best, start = len(candidates) - 1, None
        self.validation_scores_ = {
            "candidates": candidates,
            "scores": scores,
            "population": population_score,
            "chosen": best,
        }
        return candidates[best], start

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Save the fitted estimator (and its posterior, if any) to one file.

        The format is open and holds no pickle: a ZIP archive with
        ``metadata.json`` (settings, scalars, the covariate coding, the
        package version and checksums), the fitted arrays as ``.npy`` and the
        ArviZ posterior as netCDF. The file is written under a temporary name
        and renamed when complete. See :mod:`bayes_prsn.persistence`.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        from .persistence import save

        return save(self, path)

    @classmethod
    def load(cls, path):
        """Load an estimator written by :meth:`save`; predictions are identical.

        Raises :class:`bayes_prsn.persistence.ModelFileError` (a ``ValueError``)
        with a one-line reason when the file is missing, damaged, modified,
        from a newer bayes_prsn or holds another estimator class.
        """
        from .persistence import load

        return load(path, cls)

    # --------------------------------------------------------------- posterior
    def sample_posterior(
        self,
        method: str = "nuts",
        *,
        num_warmup: int = 1000,
        num_samples: int | None = None,
        num_chains: int = 4,
        random_state: int | None = None,
        progress_bar: bool | None = None,
        thinning: int = 1,
        max_memory_gb: float | None = None,
        **options,
    ):
        r"""Draw from the posterior of every sample's model; sets and returns ``idata_``.

        The sampled target is the joint density of the fitted model with the
        dictionary :math:`Q` and the shared offset :math:`\bar\theta` held at
        their MAP values, so the draws are of the codes :math:`Z` (hence of
        every :math:`\theta_i = \bar\theta + Q^\top Z_i`) and of the covariate
        weights :math:`\phi`. Holding :math:`Q` fixes the rotation
        :math:`(Z, Q) \to (ZR, R^{-1}Q)` that leaves :math:`\theta` unchanged and
        stops a sampler over both from mixing. The likelihood enters at its
        actual noise level: for the gaussian family :math:`\sigma` is the
        held-out root mean squared error of the chosen smoothing (or the
        given ``noise_scale``), and :math:`\gamma` is scaled so that the
        smoothing chosen at ``fit``, :math:`\gamma\sigma^2`, is kept (for
        bernoulli and poisson the chosen likelihood power :math:`w` becomes
        :math:`\gamma / w` with power 1). The posterior is therefore centred on
        the MAP fit, with a width set by the noise.

        Parameters
        ----------
        method : {"nuts", "laplace", "vi"}, default "nuts"
            ``"nuts"``: NUTS, every chain started at (or near) the MAP; diagonal
            mass for the centred codes and dense for :math:`\phi` and the
            codes' common shift. ``"laplace"``: a Gaussian at the MAP with the
            inverse Hessian as covariance (dense up to 4000 unknowns, each
            sample's code block given its neighbours beyond). ``"vi"``: a
            low-rank-plus-diagonal Gaussian fitted by SVI (large N).
        num_warmup : int, default 1000
            Warm-up iterations per chain (NUTS only).
        num_samples : int, optional
            Draws per chain for NUTS (default 2000: with 1000 the largest of
            ~800 split R-hats reached 1.013 on one of three test seeds) or in
            total for ``"laplace"`` and ``"vi"`` (default 1000).
        num_chains : int, default 4
            Chains (NUTS only). They run in parallel when JAX has a device per
            chain (``numpyro.set_host_device_count(4)`` before JAX starts) and
            one after another otherwise.
        random_state : int or None
            Seed of the sampler; ``None`` derives one from the estimator's.
        progress_bar : bool or None
            Show progress; ``None`` follows the estimator's ``progress_bar``.
        thinning : int, default 1
            Keep every ``thinning``-th NUTS draw (saves memory for large N).
        max_memory_gb : float or None
            Refuse to start when the draws and their ArviZ conversion would
            need more memory than this (estimated before sampling; default
            half of the machine's memory, see :data:`MEMORY_FRACTION`).
        **options
            Passed to the back-end (:func:`bayes_prsn.posterior.run_nuts`,
            ``run_laplace`` or ``run_vi``), e.g. ``target_accept_prob``,
            ``chain_method``, ``num_steps``, ``guide_rank``.

        Returns
        -------
        ArviZ ``InferenceData`` (ArviZ 0.x) or ``DataTree`` (ArviZ 1.x).
        Groups: ``posterior`` (``coef`` with dims (chain, draw, obs_id,
        feature), ``intercept`` (chain, draw, obs_id), ``covariate_weights``),
        ``log_likelihood`` (``y`` only, so ``az.loo`` works),
        ``posterior_predictive``, ``observed_data``, ``constant_data`` (``X``
        and the quantities held fixed: ``dictionary``, ``offset_coef``,
        ``offset_intercept``, ``noise_scale``, ``gamma``) and, for NUTS,
        ``sample_stats``.

        Warns
        -----
        ConvergenceWarning
            For NUTS, when any coefficient has split R-hat above 1.01, bulk
            or tail ESS below 100 per chain, or when a transition diverged;
            the numbers are in the message and in ``posterior_diagnostics_``.
        """
        import jax

        from .inference_data import to_inference_data
        from .posterior import METHODS, run_laplace, run_nuts, run_vi

        self._check_fitted()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
        if num_samples is None:
            num_samples = 2000 if method == "nuts" else 1000
        for name, value in (("num_samples", num_samples), ("num_warmup", num_warmup)):
            _check_positive(value, name, integer=True)
        _check_positive(num_chains, "num_chains", integer=True)
        _check_positive(thinning, "thinning", integer=True)
        if method == "nuts":
            options["thinning"] = thinning
            total_draws = num_chains * -(-num_samples // thinning)
        else:
            total_draws = num_samples
        self._check_memory(total_draws, max_memory_gb)
        if progress_bar is None:
            progress_bar = bool(self.progress_bar)
        if random_state is None:
            random_state = np.random.default_rng(self.random_state).integers(2**31 - 1)
        key = jax.random.PRNGKey(int(random_state))
        model_kwargs, noise_scale, gamma = self._posterior_target()
        fixed = {"dictionary": self._dictionary_internal}
        if self.offset:
            fixed["offset"] = self._offset_internal
        init = {"embedding": self.embedding_, "covariate_weights": self.covariate_weights_}
        static = {
            "family": self.family_,
            "rank": self.rank,
            "prior": self.prior,
            "offset": self.offset,
            "progress_bar": progress_bar,
        }
        if method == "nuts":
            draws = run_nuts(
                key,
                model_kwargs,
                init,
                fixed,
                num_warmup=num_warmup,
                num_samples=num_samples,
                num_chains=num_chains,
                **static,
                **options,
            )
        else:
            backend = run_laplace if method == "laplace" else run_vi
            draws = backend(
                key, model_kwargs, init, fixed, num_samples=num_samples, **static, **options
            )

        offset_coef, offset_intercept = self._to_original_units(self._offset_internal[None])
        noise_original = None if noise_scale is None else noise_scale * self.y_scaler_.scale[0]
        constant = {
            "dictionary": (self.dictionary_, ("code", "feature")),
            "offset_coef": (offset_coef[0], ("feature",)),
            "offset_intercept": (offset_intercept[0], ()),
            "gamma": (gamma, ()),
        }
        if noise_original is not None:
            constant["noise_scale"] = (noise_original, ())
        from . import __version__

        idata = to_inference_data(
            draws,
            dictionary=self._dictionary_internal,
            offset=self._offset_internal,
            to_original_units=self._to_original_units,
            X=self._train_X,
            y=self._train_y,
            family=self.family_,
            noise_scale=noise_original,
            sample_index=self._sample_index,
            feature_names=self._feature_labels(),
            covariate_names=self.covariate_names_used_,
            fit_intercept=self.fit_intercept,
            constant=constant,
            seed=int(random_state) + 1,
            attrs={
                "inference_library": "bayes_prsn",
                "inference_library_version": __version__,
                "method": method,
                "conditioned_on": "dictionary, offset (MAP); noise_scale and gamma fixed",
                "sampling_time": draws.seconds,
            },
        )
        self.idata_ = idata
        self._posterior_embedding = np.asarray(draws.samples["embedding"], dtype=np.float32)
        self.posterior_method_ = method
        self.posterior_noise_scale_ = noise_original
        self.posterior_gamma_ = gamma
        self.posterior_diagnostics_ = self._diagnose(draws)
        return idata

    def posterior_memory_gb(self, total_draws: int) -> float:
        """Estimated memory (GB) of ``total_draws`` posterior draws and their ArviZ data.

        Counts the code and covariate-weight draws (float32) and the ArviZ
        groups with one value per draw and sample: ``coef``, ``intercept``,
        ``log_likelihood`` and ``posterior_predictive`` (float64).
        """
        self._check_fitted()
        n_samples = len(self._sample_index)
        per_draw = 4 * (n_samples * self.rank + len(self.covariate_weights_))
        per_draw += 8 * n_samples * (self.n_predictors_ + 3)
        return float(total_draws) * per_draw / 1e9

    def _check_memory(self, total_draws: int, max_memory_gb) -> None:
        if max_memory_gb is None:
            limit = MEMORY_FRACTION * _physical_memory_gb()
        else:
            _check_positive(max_memory_gb, "max_memory_gb")
            limit = float(max_memory_gb)
        need = self.posterior_memory_gb(total_draws)
        if need > limit:
            raise MemoryError(
                f"sample_posterior would need about {need:.2f} GB for {total_draws} draws of "
                f"{len(self._sample_index)} samples' models, more than the limit of "
                f"{limit:.2f} GB. Draw fewer (num_samples, num_chains), keep every k-th NUTS "
                "draw (thinning=k), use method='vi' or 'laplace' with fewer draws, or raise "
                "max_memory_gb."
            )

    def _posterior_target(self):
        """Model arguments of the sampled target, its gaussian noise scale and gamma."""
        settings = dict(self._fit_settings)
        gamma = float(settings["gamma"])
        noise_scale = None
        if self.family_ == "gaussian":
            chosen = float(settings["noise_scale"])
            noise_scale = chosen
            scores = getattr(self, "validation_scores_", None)
            if self.noise_scale == "auto" and scores is not None:
                chosen_score = (
                    scores["scores"][scores["chosen"]]
                    if scores["chosen"] < len(scores["scores"])
                    else scores["population"]  # the fallback: population-like fit
                )
                noise_scale = float(np.sqrt(chosen_score))
            gamma = gamma * (chosen / noise_scale) ** 2
        else:
            gamma = gamma / float(settings.get("likelihood_scale", 1.0))
        settings.update(gamma=gamma, noise_scale=noise_scale, likelihood_scale=1.0)
        kwargs = dict(self._train_data, **settings)
        if self._encoder_params is not None:
            # The codes are sampled given the fitted encoder, as given Q and phi.
            kwargs["code_mean"] = self._code_mean(self._train_encoded)
        return kwargs, noise_scale, gamma

    def _diagnose(self, draws) -> dict:
        """R-hat, ESS and divergences of the coefficients; warns when NUTS did not converge."""
        from . import _arviz, diagnostics

        posterior = _arviz.group(self.idata_, "posterior")
        diagnostics_ = {"method": draws.method, "seconds": float(draws.seconds)}
        n_chains, n_draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
        diagnostics_["num_draws"] = n_chains * n_draws
        if draws.method != "nuts" or n_draws < 4:
            # The approximations give independent draws: nothing to diagnose.
            return diagnostics_
        arrays = [posterior["coef"].values.reshape(n_chains, n_draws, -1)]
        if "intercept" in posterior:
            arrays.append(posterior["intercept"].values)
        theta = np.concatenate(arrays, axis=-1)
        divergences = int(np.sum(draws.sample_stats["diverging"]))
        diagnostics_.update(
            max_rhat=float(np.nanmax(diagnostics.rhat(theta))) if n_chains > 1 else float("nan"),
            min_ess_bulk=float(np.nanmin(diagnostics.ess_bulk(theta))),
            min_ess_tail=float(np.nanmin(diagnostics.ess_tail(theta))),
            divergences=divergences,
        )
        problems = []
        if n_chains > 1 and diagnostics_["max_rhat"] > RHAT_LIMIT:
            problems.append(f"max split R-hat {diagnostics_['max_rhat']:.3f} > {RHAT_LIMIT}")
        ess_limit = ESS_PER_CHAIN * n_chains
        low = min(diagnostics_["min_ess_bulk"], diagnostics_["min_ess_tail"])
        if low < ess_limit:
            problems.append(f"min ESS {low:.0f} < {ess_limit}")
        if divergences:
            problems.append(f"{divergences} divergent transitions")
        diagnostics_["converged"] = not problems
        if problems:
            warnings.warn(
                "NUTS did not converge on the per-sample coefficients: "
                + "; ".join(problems)
                + ". Draw more (num_warmup, num_samples), raise target_accept_prob, or check "
                "posterior_diagnostics_.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return diagnostics_

    def _check_posterior(self) -> None:
        self._check_fitted()
        if "idata_" not in self.__dict__:
            raise NotFittedError(
                "no posterior yet: call sample_posterior() after fit() before asking for intervals."
            )

    def _feature_labels(self) -> list:
        if self.feature_names_ is not None:
            return list(self.feature_names_)
        return [f"x{j}" for j in range(self.n_predictors_)]

    def coef_interval(self, prob: float = 0.9, kind: str = "hdi"):
        """Credible interval of every sample's coefficients.

        Parameters
        ----------
        prob : float, default 0.9
            Posterior probability inside the interval.
        kind : {"hdi", "eti"}, default "hdi"
            Highest-density or equal-tailed interval.

        Returns
        -------
        lower, upper : ndarray of shape (n_samples, n_features)
        """
        from . import _arviz
        from .inference_data import interval

        self._check_posterior()
        coef = _arviz.group(self.idata_, "posterior")["coef"].values
        return interval(coef.reshape(-1, *coef.shape[2:]), prob, kind)

    def intercept_interval(self, prob: float = 0.9, kind: str = "hdi"):
        """Credible interval of every sample's intercept; each bound has shape (n_samples,)."""
        from . import _arviz
        from .inference_data import interval

        self._check_posterior()
        if not self.fit_intercept:
            raise ValueError("the model has no intercept (fit_intercept=False).")
        draws = _arviz.group(self.idata_, "posterior")["intercept"].values
        return interval(draws.reshape(-1, draws.shape[-1]), prob, kind)

    def summary(self, var_names=None, samples=None, prob: float = 0.9, kind: str = "hdi"):
        """ArviZ-style table of posterior summaries.

        Parameters
        ----------
        var_names : list of str, optional
            Variables of the posterior group (default: all of ``coef``,
            ``intercept``, ``covariate_weights``).
        samples : list, optional
            Labels (``obs_id`` coordinates, i.e. the index of the training
            data) of the samples to include; default all.
        prob, kind
            Interval as in :meth:`coef_interval`.

        Returns
        -------
        pandas.DataFrame
            One row per scalar, named like ``coef[obs_id, feature]``, with
            columns ``mean``, ``sd``, the interval bounds (``hdi_5%``,
            ``hdi_95%`` at ``prob=0.9``), ``ess_bulk``, ``ess_tail`` and
            ``r_hat`` (rank-normalised split R-hat, as in ArviZ; NaN for one
            chain, and ESS and R-hat are NaN for ``"laplace"`` and ``"vi"``,
            whose draws are independent).
        """
        from . import _arviz, diagnostics
        from .inference_data import SAMPLE_DIM, check_prob, interval

        self._check_posterior()
        prob = check_prob(prob)
        posterior = _arviz.group(self.idata_, "posterior")
        available = list(posterior.data_vars)
        if var_names is None:
            var_names = available
        elif isinstance(var_names, str):
            var_names = [var_names]
        unknown = [name for name in var_names if name not in available]
        if unknown:
            raise ValueError(
                f"var_names {unknown} are not in the posterior; choose from {available}."
            )
        if samples is not None:
            labels = list(posterior[SAMPLE_DIM].values)
            missing = [s for s in samples if s not in labels]
            if missing:
                raise ValueError(
                    f"samples {missing[:5]} are not sample labels; use labels of the "
                    "training data's index (obs_id)."
                )
            posterior = posterior.sel({SAMPLE_DIM: list(samples)})
        percent = f"{100 * (1 - prob) / 2:g}%", f"{100 * (1 + prob) / 2:g}%"
        frames = []
        n_chains = int(posterior.sizes["chain"])
        mcmc = self.posterior_method_ == "nuts" and int(posterior.sizes["draw"]) >= 4
        for name in var_names:
            array = posterior[name]
            extra_dims = array.dims[2:]
            values = array.values.reshape(*array.shape[:2], -1)
            flat = values.reshape(-1, values.shape[-1])
            lower, upper = interval(flat, prob, kind)
            if extra_dims:
                grids = np.meshgrid(*[array[d].values for d in extra_dims], indexing="ij")
                labels = [
                    f"{name}[{', '.join(str(g.ravel()[i]) for g in grids)}]"
                    for i in range(values.shape[-1])
                ]
            else:
                labels = [name]
            frames.append(
                pd.DataFrame(
                    {
                        "mean": flat.mean(axis=0),
                        "sd": flat.std(axis=0, ddof=1),
                        f"{kind}_{percent[0]}": lower,
                        f"{kind}_{percent[1]}": upper,
                        "ess_bulk": diagnostics.ess_bulk(values) if mcmc else np.nan,
                        "ess_tail": diagnostics.ess_tail(values) if mcmc else np.nan,
                        "r_hat": diagnostics.rhat(values) if mcmc and n_chains > 1 else np.nan,
                    },
                    index=labels,
                )
            )
        return pd.concat(frames)

    def _predictive_draws(self, X, covariates, *, noise: bool, seed) -> np.ndarray:
        """Posterior draws (draws, n_new) of new samples' mean response (or response).

        In each draw a new sample's coefficients are the mean of its nearest
        training samples' coefficients in that draw (the posterior
        counterpart of the ``"neighbors"`` rule); ``noise`` adds the
        observation noise. Rows are processed in blocks so that the
        neighbours' code draws never exceed about 32 MB.
        """
        from .inference_data import replicate
        from .predict import nearest_training

        self._check_posterior()
        X, covariates = self._split_X(X, covariates)
        X = self._check_new_X(X)
        encoded = self.encoder_.transform(covariates)
        self._check_rows(X, encoded.n_samples)
        neighbours = nearest_training(encoded, self._neighbour_search(), self.covariate_weights_)
        codes = self._posterior_embedding.reshape(-1, *self._posterior_embedding.shape[2:])
        correction = self._encoder_shift(encoded, neighbours)
        n_draws, n_new = codes.shape[0], X.shape[0]
        block = max(1, int(8e6 // (n_draws * neighbours.shape[1] * codes.shape[2])))
        eta = np.empty((n_draws, n_new))
        for start in range(0, n_new, block):
            rows = slice(start, start + block)
            theta = self._offset_internal + (
                (codes[:, neighbours[rows]].mean(axis=2) + correction[rows])
                @ self._dictionary_internal
            )
            coef, intercept = self._to_original_units(theta.reshape(-1, theta.shape[-1]))
            coef = coef.reshape(*theta.shape[:2], -1)
            eta[:, rows] = np.sum(X[rows] * coef, axis=-1) + intercept.reshape(theta.shape[:2])
        if not noise:
            return mean_function(eta, self.family_)
        return replicate(
            eta, self.family_, self.posterior_noise_scale_, np.random.default_rng(seed)
        )

    def _predictive_interval(self, X, covariates, prob, *, noise: bool, seed):
        """Equal-tailed interval (lower, upper) of :meth:`_predictive_draws`."""
        from .inference_data import check_prob

        prob = check_prob(prob)
        draws = self._predictive_draws(X, covariates, noise=noise, seed=seed)
        lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return lower, upper

    # ----------------------------------------------------------------- predict
    def predict_coef(self, covariates) -> np.ndarray:
        """Coefficients of new samples from their covariates, shape (n, n_predictors).

        With ``covariate_columns`` set, pass the new samples' ``X`` (the
        covariate columns are taken from it).
        """
        return self._predict_theta(self._new_covariates(covariates))[0]

    def predict_intercept(self, covariates) -> np.ndarray:
        """Intercepts of new samples from their covariates, shape (n,)."""
        return self._predict_theta(self._new_covariates(covariates))[1]

    def _new_covariates(self, covariates):
        if self.covariate_columns is None:
            return covariates
        self._check_fitted()
        return self._split_X(covariates, None)[1]

    def _predict_theta(self, covariates):
        self._check_fitted()
        encoded = self.encoder_.transform(covariates)
        search = self._neighbour_search()
        if self._encoder_params is not None and self.predict_method == "neighbors":
            codes = self._neighbour_codes(encoded)
            theta = self._offset_internal + codes @ self._dictionary_internal
        elif self.predict_method == "neighbors":
            theta = predict_neighbors(
                encoded, search, self._theta_internal, self.covariate_weights_
            )
        else:
            theta = predict_embedding(
                encoded,
                search,
                self._train_encoded,
                self.embedding_,
                self._dictionary_internal,
                self._offset_internal,
                self.covariate_weights_,
                gamma=float(self.gamma),
                prior=self.prior,
                prior_scale=float(self.prior_scale),
                code_mean=self._code_mean(encoded),
                code_scale=float(self._fit_settings.get("embedding_scale", 1.0)),
            )
        return self._to_original_units(theta)

    def _neighbour_search(self):
        """The training samples' search tree, built once per fit (and n_neighbors)."""
        cached = self.__dict__.get("_search")
        if cached is not None and cached[0] == self.n_neighbors:
            return cached[1]
        search = neighbour_search(self._train_encoded, self.covariate_weights_, self.n_neighbors)
        if cached is None:
            # Built at the end of fit (and load): predict never changes the estimator.
            self._search = (self.n_neighbors, search)
        return search

    def _check_new_X(self, X) -> np.ndarray:
        """New samples' predictors as a float array with the fitted number of features."""
        X, _ = check_array(X, "X")
        if X.shape[1] != self.n_predictors_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_predictors_} features as input."
            )
        return X

    @staticmethod
    def _check_rows(X: np.ndarray, n_covariate_rows: int) -> None:
        if n_covariate_rows != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but covariates has {n_covariate_rows}; they must match."
            )

    def _linear_predictor(self, X, covariates) -> np.ndarray:
        self._check_fitted()
        X, covariates = self._split_X(X, covariates)
        X = self._check_new_X(X)
        coef, intercept = self._predict_theta(covariates)
        self._check_rows(X, coef.shape[0])
        return np.sum(X * coef, axis=1) + intercept


def _encoder_features(encoded) -> np.ndarray:
    """The encoder's input: numeric covariates (robust-scaled, missing at 0) and one-hot levels."""
    return neighbour_space(encoded, np.ones(encoded.numeric.shape[1] + len(encoded.n_levels)))


def _fitted_encoder_weights(params, encoder_scale: float) -> tuple:
    """(W_1, b_1, W_2) from the SVI parameters (the ``encoder_in`` site holds W_1 / s_W)."""
    w_raw, bias, out = (params[name] for name in ENCODER_SITES)
    scales = np.asarray(encoder_input_scales(encoder_scale, np.shape(w_raw)[1]))
    return scales * np.asarray(w_raw), bias, out


def _codes(params, data, encoder_scale: float) -> np.ndarray:
    """MAP codes Z from the SVI parameters (encoder output plus residual when encoded)."""
    if "code_residual" not in params:
        return np.asarray(params["embedding"], dtype=float)
    weights = _fitted_encoder_weights(params, encoder_scale)
    mean = encode_covariates(data["covariate_features"], *weights)
    return np.asarray(mean + params["code_residual"], dtype=float)


def _pad_pairs(pairs: np.ndarray, distances: np.ndarray, weights: np.ndarray):
    """Pad the pair list to a multiple of :data:`PAIR_BUCKET` with weight-0 copies of pair 0.

    The number of distinct pairs varies with the data; padding lets fits of
    the same size (cross-validation folds, grid searches) reuse the compiled
    optimisation instead of compiling again. A weight-0 pair adds nothing to
    the potential or its gradient.
    """
    extra = -len(pairs) % PAIR_BUCKET
    if extra == 0:
        return pairs, distances, weights
    return (
        np.concatenate([pairs, np.repeat(pairs[:1], extra, axis=0)]),
        np.concatenate([distances, np.repeat(distances[:1], extra, axis=0)]),
        np.concatenate([weights, np.zeros(extra)]),
    )


def _sample_index(n_samples: int, *candidates) -> list:
    """Labels of the samples: the index of the first pandas input, else 0..n-1."""
    for candidate in candidates:
        index = getattr(candidate, "index", None)
        if isinstance(index, pd.Index) and len(index) == n_samples:
            return [item.item() if isinstance(item, np.generic) else item for item in index]
    return list(range(n_samples))


def _predictive_loss(eta: np.ndarray, y: np.ndarray, family: str) -> float:
    """Mean held-out loss: squared error, log-loss or Poisson deviance."""
    if family == "gaussian":
        return float(np.mean((y - eta) ** 2))
    if family == "bernoulli":
        return float(np.mean(np.logaddexp(0.0, eta) - y * eta))
    mu = mean_function(eta, "poisson")
    ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return float(np.mean(2.0 * (ratio - (y - mu))))


class PersonalizedRegression(RegressorMixin, _PersonalizedBase):
    r"""Low-rank personalized regression: one model per sample, fitted by MAP.

    Each sample :math:`i` gets its own coefficients
    :math:`\theta_i = \bar\theta + Q^\top Z_i`, tied to the other samples'
    through a distance-matching potential on its covariates (see
    :func:`bayes_prsn.models.personalized_regression` for the joint density).

    Parameters
    ----------
    family : {"gaussian", "poisson", "bernoulli"}, default "gaussian"
        Likelihood family (identity, log and logit links).
    rank : int, default 3
        Rank :math:`K` of the sample codes.
    n_neighbors : int, default 25
        Neighbours per sample in the distance-matching graph.
    gamma : float, default 0.1
        Strength of the distance-matching potential. With the covariate
        encoder on, the encoder carries most of the sharing between samples
        and a weak potential works best (10 suits ``encoder_width=0``).
    prior : {"normal", "laplace"}, default "normal"
        Form of :math:`\psi`, the prior on each sample's deviation from the
        shared model.
    prior_scale : float, default 100
        Scale of :math:`\psi` (internal units: standardised predictors and,
        for gaussian, response). It acts on every sample, so its pull on the
        shared dictionary and encoder adds up over the samples: 10 halved the
        coefficients of the logistic simulator (slope 0.55 against the truth).
    covariate_weight_scale : float, default 10
        Scale of the half-normal prior on the covariate weights :math:`\phi`.
    noise_scale : float or "auto", default "auto"
        Gaussian noise scale in the units of ``y``. ``"auto"`` chooses it on
        held-out samples (a MAP of a learned noise scale collapses toward zero
        and overfits, so it is not learned jointly).
    fit_intercept : bool, default True
        Fit a per-sample intercept.
    offset : bool, default True
        Include the shared offset :math:`\bar\theta`.
    encoder_width : int, default 16
        Hidden units of the covariate encoder :math:`g` that gives each code
        its prior mean, :math:`Z_i \sim N(g(u_i), s_Z^2 I)` (:math:`s_Z` 0.1,
        or 0.01 for bernoulli and poisson): samples share the
        smooth part of their models through :math:`g` and keep a small
        residual of their own. 0 turns it off (:math:`Z_i \sim N(0, I)`, the
        2019 model).
    predict_method : {"neighbors", "embedding"}, default "neighbors"
        How new samples get coefficients: the mean of the nearest training
        samples' coefficients under the learned metric, or the conditional MAP
        of the new code under the distance-matching potential. With the
        encoder, ``"neighbors"`` takes the encoder's output at the new
        covariates plus the mean residual code of the nearest training
        samples, and ``"embedding"`` centres the code prior on that output.
    validation_fraction : float, default 0.2
        Share of samples held out to choose the amount of smoothing: the
        noise scale (gaussian) and then the encoder's smoothness (the largest
        prior scale of its input weights, from ``ENCODER_SCALE_GRID``); 0
        turns the choice off.
    step_size, max_steps, tol : float, int, float
        Adam step size, step cap and relative loss change of the stopping rule.
    progress_bar : bool, default False
        Show progress of the optimisation.
    random_state : int or None
        Seed for the validation split, the start and the optimiser.
    covariate_columns : list of str or int, "all" or None, default None
        ``None``: covariates are passed as ``covariates=`` to ``fit``,
        ``predict`` and ``score`` (scikit-learn's metadata routing passes them
        through ``GridSearchCV``, ``cross_val_score`` and ``Pipeline``). A list
        of column names (DataFrame ``X``) or positions: those columns of ``X``
        are the covariates and the others the predictors, so that the
        estimator works with any scikit-learn tool without routing. ``"all"``:
        every column of ``X`` is both a predictor and a covariate.
    devices : int, "all" or None, default None
        Shard the MAP optimisation over this many JAX devices (GPUs, or host
        CPU devices) with :mod:`jax.sharding`: data parallel, the same code
        and the same MAP as on one device up to floating-point order. None
        uses one device.
    batch_size : int, "auto" or None, default "auto"
        Samples per minibatch SVI step (as many pairs are drawn), with
        every term rescaled so that each step follows an unbiased estimate of
        the full gradient; memory and time per step no longer grow with the
        number of samples. ``None``: full-batch steps. ``"auto"``: full batch
        up to 20,000 samples, minibatches of 8192 above. With minibatches the
        smoothing is chosen on a random subset of 2,000 samples and the fit
        runs ``max_steps`` steps (the loss is too noisy for the stopping rule).

    Attributes
    ----------
    coef_ : ndarray (n_samples, n_predictors)
        Per-sample coefficients, original units (see ``embedding_`` for how
        they use the codes).
    n_features_in_ : int
        Columns of ``X`` seen in ``fit`` (covariate columns included when
        ``covariate_columns`` names some).
    feature_names_in_ : ndarray of str
        Column names of ``X`` when it was a DataFrame with string names.
    n_predictors_, feature_names_ : int, list of str
        Number and names of the predictors (the columns of ``coef_``).
    intercept_ : ndarray (n_samples,)
        Per-sample intercepts (zeros when ``fit_intercept=False``).
    population_coef_, population_intercept_ : ndarray, float
        The population GLM.
    covariate_weights_ : ndarray (n_covariates_used,)
        Learned :math:`\phi`, one per covariate in ``covariate_names_used_``
        (on the robust internal scale of each covariate).
    embedding_ : ndarray (n_samples, rank)
        MAP codes :math:`Z`. With the encoder (``encoder_width > 0``),
        ``coef_`` is not ``embedding_ @ dictionary_`` plus the offset: each
        training sample's coefficients use the encoder's code plus the mean
        MAP residual of its ``n_neighbors`` nearest training samples, the same
        rule as for new samples under the default
        ``predict_method="neighbors"`` (``predict_coef`` on the training
        covariates then gives ``coef_``).
    dictionary_ : ndarray (rank, n_features)
        Dictionary :math:`Q` in original units (without the intercept column).
    noise_scale_ : float or None
        Gaussian noise scale in units of ``y`` (chosen on held-out samples; it
        sets the amount of smoothing and is not an estimate of the noise).
    likelihood_scale_ : float
        Power of the likelihood: 1, or ``FALLBACK_LIKELIHOOD_SCALE`` for a
        bernoulli or poisson fit in which the population GLM predicted the
        held-out samples better (1 for gaussian).
    loss_history_ : ndarray
        Loss after every SVI step of the final fit.
    converged_ : bool
        Whether the stopping rule was met.
    """

    def predict(
        self,
        X,
        covariates=None,
        *,
        return_interval: bool = False,
        prob: float = 0.9,
        random_state: int | None = 0,
    ):
        """Mean response of new samples, shape (n_samples,).

        Parameters
        ----------
        X, covariates
            Predictors and covariates of the new samples.
        return_interval : bool, default False
            Also return a posterior predictive interval for the response (needs
            :meth:`sample_posterior` first). It holds the uncertainty of the
            neighbours' coefficients and, for the gaussian family, the noise.
        prob : float, default 0.9
            Probability inside the predictive interval (equal-tailed).
        random_state : int or None, default 0
            Seed of the predictive draws.

        Returns
        -------
        mean : ndarray (n_samples,)
            The MAP prediction (as without ``return_interval``).
        lower, upper : ndarray (n_samples,)
            Only with ``return_interval=True``.
        """
        mean = mean_function(self._linear_predictor(X, covariates), self.family_)
        if not return_interval:
            return mean
        lower, upper = self._predictive_interval(X, covariates, prob, noise=True, seed=random_state)
        return mean, lower, upper

    def score(self, X, y, covariates=None, sample_weight=None) -> float:
        """:math:`R^2` of :meth:`predict` on new samples."""
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(X, covariates), sample_weight=sample_weight)


class PersonalizedClassifier(ClassifierMixin, _PersonalizedBase):
    """Personalized logistic regression (bernoulli family, logit link).

    Takes the same parameters as :class:`PersonalizedRegression` except
    ``family``. ``y`` holds two class labels of any type (0/1, bool,
    strings); ``classes_`` lists them and ``predict_proba[:, 1]`` is the
    probability of ``classes_[1]``.
    """

    _family_fixed = "bernoulli"

    def __init__(
        self,
        *,
        rank: int = 3,
        n_neighbors: int = 25,
        gamma: float = 0.1,
        prior: str = "normal",
        prior_scale: float = 100.0,
        covariate_weight_scale: float = 10.0,
        fit_intercept: bool = True,
        offset: bool = True,
        encoder_width: int = 16,
        predict_method: str = "neighbors",
        validation_fraction: float = 0.2,
        step_size: float = 0.02,
        max_steps: int = 3000,
        tol: float = 1e-4,
        progress_bar: bool = False,
        random_state: int | None = None,
        covariate_columns: list | str | None = None,
        devices: int | str | None = None,
        batch_size: int | str | None = "auto",
    ):
        # Only the parameters of this signature are set (scikit-learn's rule for clone).
        _store_parameters(self, locals())

    @property
    def family(self) -> str:
        return "bernoulli"

    @property
    def noise_scale(self) -> str:
        return "auto"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _prepare_target(self, y):
        """Two class labels of any type, coded 0 (``classes_[0]``) and 1 (``classes_[1]``)."""
        from sklearn.utils.multiclass import type_of_target

        from .preprocessing import check_response, column_to_1d

        if y is None or np.iscomplexobj(np.asarray(y)):
            return check_response(y, "gaussian")
        values = column_to_1d(np.asarray(y))
        if values.ndim != 1:
            raise ValueError(f"y must be 1-D with shape (n_samples,); got shape {values.shape}.")
        if values.shape[0] == 0:
            raise ValueError("y is empty.")
        if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
            raise ValueError("y contains NaN or infinite values; remove those samples first.")
        if values.dtype.kind == "O" and pd.isna(values).any():
            raise ValueError("y contains missing labels; remove those samples first.")
        kind = type_of_target(values)
        if kind not in ("binary", "multiclass"):
            raise ValueError(
                f"Unknown label type: {kind}. PersonalizedClassifier needs class labels (0/1, "
                "bool, or two labels of any type); for a numeric response use "
                "PersonalizedRegression."
            )
        classes = np.unique(values)
        if classes.size < 2:
            raise ValueError("y holds a single class (one class); a classifier needs two.")
        if classes.size > 2:
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {kind} "
                f"({classes.size} classes); fit one classifier per class (one-vs-rest)."
            )
        self.classes_ = classes
        return (values == classes[1]).astype(float)

    def predict_proba(
        self, X, covariates=None, *, return_interval: bool = False, prob: float = 0.9
    ):
        """Class probabilities of new samples, shape (n_samples, 2).

        With ``return_interval=True`` (after :meth:`sample_posterior`) also
        returns the lower and upper bounds (n_samples,) of an equal-tailed
        credible interval for the probability of class 1.
        """
        p1 = mean_function(self._linear_predictor(X, covariates), "bernoulli")
        proba = np.column_stack([1.0 - p1, p1])
        if not return_interval:
            return proba
        lower, upper = self._predictive_interval(X, covariates, prob, noise=False, seed=None)
        return proba, lower, upper

    def predict(self, X, covariates=None) -> np.ndarray:
        """Predicted labels (values of ``classes_``) of new samples."""
        positive = self.predict_proba(X, covariates)[:, 1] > 0.5
        return self.classes_[positive.astype(int)]

    def score(self, X, y, covariates=None, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` on new samples."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, covariates), sample_weight=sample_weight)
