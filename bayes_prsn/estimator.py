"""The estimators users call: :class:`PersonalizedRegression` and :class:`PersonalizedClassifier`.

``fit`` prepares the data (:mod:`bayes_prsn.preprocessing`), fits the
population GLM (:mod:`bayes_prsn.population`), chooses the amount of
smoothing on held-out samples and finds the MAP of the joint log-density
(:mod:`bayes_prsn.models`) through SVI (:mod:`bayes_prsn.svi`). Results are
reported in the user's original units.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from .models import FAMILIES, PRIORS
from .population import fit_population_glm, mean_function
from .predict import PREDICT_METHODS, neighbour_search, predict_embedding, predict_neighbors
from .preprocessing import (
    CovariateEncoder,
    Standardizer,
    build_neighbour_pairs,
    check_array,
    check_response,
    neighbour_space,
    pair_distances,
)
from .svi import run_svi

__all__ = ["PersonalizedRegression", "PersonalizedClassifier", "NotFittedError"]

#: Noise scales (in units of the standardised response) tried by ``noise_scale="auto"``.
NOISE_SCALE_GRID = (0.25, 0.5, 1.0, 2.0)
#: Random (far) pairs per sample added to the neighbour graph.
RANDOM_PAIRS = 5
#: Weight of a random pair's term in the potential (neighbour pairs weigh 1).
RANDOM_PAIR_WEIGHT = 0.02
#: Likelihood powers tried for the bernoulli and poisson families.
LIKELIHOOD_SCALE_GRID = (1.0, 0.5, 0.25, 0.125)


class _Problem(NamedTuple):
    data: dict
    settings: dict
    init: dict
    population: np.ndarray
    key: object
    rng: np.random.Generator
    encoded: object


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit``."""


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
        gamma: float = 10.0,
        prior: str = "normal",
        prior_scale: float = 10.0,
        covariate_weight_scale: float = 10.0,
        noise_scale: float | str = "auto",
        fit_intercept: bool = True,
        offset: bool = True,
        predict_method: str = "neighbors",
        validation_fraction: float = 0.2,
        step_size: float = 0.02,
        max_steps: int = 3000,
        tol: float = 1e-4,
        progress_bar: bool = False,
        random_state: int | None = None,
    ):
        self.family = family
        self.rank = rank
        self.n_neighbors = n_neighbors
        self.gamma = gamma
        self.prior = prior
        self.prior_scale = prior_scale
        self.covariate_weight_scale = covariate_weight_scale
        self.noise_scale = noise_scale
        self.fit_intercept = fit_intercept
        self.offset = offset
        self.predict_method = predict_method
        self.validation_fraction = validation_fraction
        self.step_size = step_size
        self.max_steps = max_steps
        self.tol = tol
        self.progress_bar = progress_bar
        self.random_state = random_state

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
        for name in ("gamma", "prior_scale", "covariate_weight_scale", "step_size", "tol"):
            _check_positive(getattr(self, name), name)
        _check_positive(self.noise_scale, "noise_scale", allow=("auto",))
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1); got {self.validation_fraction!r}."
            )
        return family

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
        """
        # A failed refit must not leave the attributes of an earlier fit behind.
        self.__dict__.pop("coef_", None)
        problem = self._setup(X, y, covariates)
        data, settings, init = problem.data, problem.settings, problem.init
        population, key, rng = problem.population, problem.key, problem.rng
        family, design, encoded = self.family_, data["X"], problem.encoded
        smoothing = self._choose_smoothing(data, settings, init, population, key, rng)
        settings.update(smoothing)
        result = self._run(key, data, settings, init, warn=True)

        params = result.params
        self.loss_history_ = result.losses
        self.n_steps_ = result.num_steps
        self.converged_ = result.converged
        self.covariate_weights_ = np.asarray(params["covariate_weights"], dtype=float)
        self.embedding_ = np.asarray(params["embedding"], dtype=float)
        self._dictionary_internal = np.asarray(params["dictionary"], dtype=float)
        shared = params["offset"] if self.offset else np.zeros(design.shape[1])
        self._offset_internal = np.asarray(shared, dtype=float)
        theta = self._offset_internal + self.embedding_ @ self._dictionary_internal
        self.coef_, self.intercept_ = self._to_original_units(theta)
        pop_coef, pop_intercept = self._to_original_units(population[None, :])
        self.population_coef_, self.population_intercept_ = pop_coef[0], float(pop_intercept[0])
        self.dictionary_ = self._dictionary_internal[:, : self.n_features_in_] * (
            self.y_scaler_.scale[0] / self.x_scaler_.scale
        )
        self.noise_scale_ = (
            float(settings["noise_scale"]) * float(self.y_scaler_.scale[0])
            if family == "gaussian"
            else None
        )
        self.likelihood_scale_ = float(settings.get("likelihood_scale", 1.0))
        self.covariate_names_used_ = self.encoder_.feature_names
        self._train_encoded = encoded
        self._theta_internal = theta
        self._search = None
        return self

    def _setup(self, X, y, covariates) -> _Problem:
        """Check and scale the inputs, build the pair graph, fit the population GLM.

        Returns everything the optimisation needs, including the starting
        point (see :meth:`_population_start`).
        """
        import jax

        family = self._check_settings()
        y = self._prepare_target(y)
        y = check_response(y, family)
        X, feature_names = check_array(X, "X", n_samples=y.shape[0])
        n_samples = X.shape[0]
        encoder = CovariateEncoder().fit(covariates, n_samples=n_samples)
        if n_samples <= self.n_neighbors:
            raise ValueError(
                f"n_samples={n_samples} must exceed n_neighbors={self.n_neighbors}; "
                "lower n_neighbors or pass more samples."
            )
        self.family_ = family
        self.n_features_in_ = X.shape[1]
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

        data = {
            "X": design,
            "pairs": pairs,
            "pair_distances": distances,
            "pair_weights": np.where(is_random, RANDOM_PAIR_WEIGHT, 1.0),
            "y": target,
        }
        settings = {
            "gamma": float(self.gamma),
            "prior_scale": float(self.prior_scale),
            "covariate_weight_scale": float(self.covariate_weight_scale),
        }
        return _Problem(data, settings, init, population, key, rng, encoded)

    def _prepare_target(self, y):
        return y

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
        p = self.n_features_in_
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
            "embedding": codes,
            "dictionary": 1e-3 * rng.standard_normal((self.rank, n_columns)),
            "covariate_weights": np.full(distances.shape[1], max(weight, 1e-3)),
        }
        if self.offset:
            init["offset"] = population
        else:
            # Without an offset the population model must come from Q^T Z: put
            # it along a constant first code.
            codes[:, 0] = 1.0
            init["embedding"] = codes
            init["dictionary"][0] = population
        return init

    def _run(self, key, data, settings, init, *, warn, mask=None, description="MAP (SVI)"):
        kwargs = dict(data, **settings, likelihood_mask=mask)
        return run_svi(
            key,
            kwargs,
            init,
            family=self.family_,
            rank=self.rank,
            prior=self.prior,
            offset=self.offset,
            step_size=self.step_size,
            max_steps=self.max_steps,
            tol=self.tol,
            progress_bar=self.progress_bar,
            description=description,
            warn=warn,
        )

    def _choose_smoothing(self, data, settings, init, population, key, rng) -> dict:
        """Choose the noise scale (gaussian) or likelihood power on held-out samples.

        A random ``validation_fraction`` of the samples is left out of the
        likelihood; their codes follow from the distance-matching potential
        alone, exactly as for new samples. Each candidate is scored by the
        held-out predictive loss; the population GLM (fitted on the same
        training part) is scored too, and a candidate must beat it to be
        chosen over the strongest smoothing.
        """
        family = self.family_
        fixed = {"likelihood_scale": 1.0}
        if family == "gaussian":
            if self.noise_scale != "auto":
                return dict(fixed, noise_scale=float(self.noise_scale) / self.y_scaler_.scale[0])
            candidates = [dict(fixed, noise_scale=s) for s in NOISE_SCALE_GRID]
        else:
            candidates = [
                {"noise_scale": None, "likelihood_scale": w} for w in LIKELIHOOD_SCALE_GRID
            ]
        n_samples = data["X"].shape[0]
        held_out = rng.random(n_samples) < self.validation_fraction
        if self.validation_fraction == 0 or held_out.sum() < 10 or (~held_out).sum() < 10:
            self.validation_scores_ = None
            return candidates[len(candidates) // 2]
        X, y = data["X"], data["y"]
        scores = []
        for number, candidate in enumerate(candidates, start=1):
            result = self._run(
                key,
                data,
                dict(settings, **candidate),
                init,
                warn=False,
                mask=~held_out,
                description=f"choosing smoothing {number}/{len(candidates)}",
            )
            params = result.params
            shared = params["offset"] if self.offset else 0.0
            theta = shared + params["embedding"] @ params["dictionary"]
            eta = np.sum(X[held_out] * theta[held_out], axis=1)
            scores.append(_predictive_loss(eta, y[held_out], family))
        train = ~held_out
        population_train = fit_population_glm(
            X[train],
            y[train],
            family,
            penalty=self._population_penalty(X.shape[1]),
        )
        population_score = _predictive_loss(X[held_out] @ population_train, y[held_out], family)
        self.validation_scores_ = {
            "candidates": candidates,
            "scores": scores,
            "population": population_score,
        }
        best = int(np.argmin(scores))
        if scores[best] >= population_score:
            best = len(candidates) - 1
        return candidates[best]

    # ----------------------------------------------------------------- predict
    def predict_coef(self, covariates) -> np.ndarray:
        """Coefficients of new samples from their covariates, shape (n, n_features)."""
        return self._predict_theta(covariates)[0]

    def predict_intercept(self, covariates) -> np.ndarray:
        """Intercepts of new samples from their covariates, shape (n,)."""
        return self._predict_theta(covariates)[1]

    def _predict_theta(self, covariates):
        self._check_fitted()
        encoded = self.encoder_.transform(covariates)
        search = self._neighbour_search()
        if self.predict_method == "neighbors":
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
            )
        return self._to_original_units(theta)

    def _neighbour_search(self):
        """The training samples' search tree, built once per fit (and n_neighbors)."""
        cached = self.__dict__.get("_search")
        if cached is None or cached[0] != self.n_neighbors:
            search = neighbour_search(
                self._train_encoded, self.covariate_weights_, self.n_neighbors
            )
            self._search = cached = (self.n_neighbors, search)
        return cached[1]

    def _linear_predictor(self, X, covariates) -> np.ndarray:
        self._check_fitted()
        X, _ = check_array(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features but the model was fitted with {self.n_features_in_}."
            )
        coef, intercept = self._predict_theta(covariates)
        if coef.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but covariates has {coef.shape[0]}; they must match."
            )
        return np.sum(X * coef, axis=1) + intercept


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
    gamma : float, default 10
        Strength of the distance-matching potential.
    prior : {"normal", "laplace"}, default "normal"
        Form of :math:`\psi`, the prior on each sample's deviation from the
        shared model.
    prior_scale : float, default 10
        Scale of :math:`\psi` (internal units).
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
    predict_method : {"neighbors", "embedding"}, default "neighbors"
        How new samples get coefficients: the mean of the nearest training
        samples' coefficients under the learned metric, or the conditional MAP
        of the new code under the distance-matching potential.
    validation_fraction : float, default 0.2
        Share of samples held out to choose the amount of smoothing (0 turns
        the choice off).
    step_size, max_steps, tol : float, int, float
        Adam step size, step cap and relative loss change of the stopping rule.
    progress_bar : bool, default False
        Show progress of the optimisation.
    random_state : int or None
        Seed for the validation split, the start and the optimiser.

    Attributes
    ----------
    coef_ : ndarray (n_samples, n_features)
        Per-sample coefficients, original units.
    intercept_ : ndarray (n_samples,)
        Per-sample intercepts (zeros when ``fit_intercept=False``).
    population_coef_, population_intercept_ : ndarray, float
        The population GLM.
    covariate_weights_ : ndarray (n_covariates_used,)
        Learned :math:`\phi`, one per covariate in ``covariate_names_used_``
        (on the robust internal scale of each covariate).
    embedding_ : ndarray (n_samples, rank)
        Codes :math:`Z`.
    dictionary_ : ndarray (rank, n_features)
        Dictionary :math:`Q` in original units (without the intercept column).
    noise_scale_ : float or None
        Gaussian noise scale in units of ``y`` (chosen on held-out samples; it
        sets the amount of smoothing and is not an estimate of the noise).
    likelihood_scale_ : float
        Power of the likelihood chosen on held-out samples (bernoulli and
        poisson; 1 for gaussian).
    loss_history_ : ndarray
        Loss after every SVI step of the final fit.
    converged_ : bool
        Whether the stopping rule was met.
    """

    def predict(self, X, covariates=None) -> np.ndarray:
        """Mean response of new samples, shape (n_samples,)."""
        return mean_function(self._linear_predictor(X, covariates), self.family_)

    def score(self, X, y, covariates=None, sample_weight=None) -> float:
        """:math:`R^2` of :meth:`predict` on new samples."""
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(X, covariates), sample_weight=sample_weight)


class PersonalizedClassifier(ClassifierMixin, _PersonalizedBase):
    """Personalized logistic regression (bernoulli family, logit link).

    Takes the same parameters as :class:`PersonalizedRegression` except
    ``family``. ``y`` must hold 0 and 1 (or False and True).
    """

    _family_fixed = "bernoulli"

    def __init__(
        self,
        *,
        rank: int = 3,
        n_neighbors: int = 25,
        gamma: float = 10.0,
        prior: str = "normal",
        prior_scale: float = 10.0,
        covariate_weight_scale: float = 10.0,
        fit_intercept: bool = True,
        offset: bool = True,
        predict_method: str = "neighbors",
        validation_fraction: float = 0.2,
        step_size: float = 0.02,
        max_steps: int = 3000,
        tol: float = 1e-4,
        progress_bar: bool = False,
        random_state: int | None = None,
    ):
        super().__init__(
            "bernoulli",
            rank=rank,
            n_neighbors=n_neighbors,
            gamma=gamma,
            prior=prior,
            prior_scale=prior_scale,
            covariate_weight_scale=covariate_weight_scale,
            noise_scale="auto",
            fit_intercept=fit_intercept,
            offset=offset,
            predict_method=predict_method,
            validation_fraction=validation_fraction,
            step_size=step_size,
            max_steps=max_steps,
            tol=tol,
            progress_bar=progress_bar,
            random_state=random_state,
        )

    def _prepare_target(self, y):
        self.classes_ = np.array([0, 1])
        return y

    def predict_proba(self, X, covariates=None) -> np.ndarray:
        """Class probabilities of new samples, shape (n_samples, 2)."""
        p1 = mean_function(self._linear_predictor(X, covariates), "bernoulli")
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X, covariates=None) -> np.ndarray:
        """Predicted labels (0 or 1) of new samples."""
        return (self.predict_proba(X, covariates)[:, 1] > 0.5).astype(int)

    def score(self, X, y, covariates=None, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` on new samples."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, covariates), sample_weight=sample_weight)
