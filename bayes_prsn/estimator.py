"""The estimators users call: :class:`PersonalizedRegression` and :class:`PersonalizedClassifier`.

A facade: ``fit`` is a short pipeline (check the settings and inputs ->
build the problem (:mod:`bayes_prsn.problem`) -> choose the smoothing
(:mod:`bayes_prsn.smoothing`) -> find the MAP (:mod:`bayes_prsn.fitting`,
:mod:`bayes_prsn.svi`) -> keep one :class:`~bayes_prsn.state.FittedState` ->
publish the scikit-learn attributes); predictions follow the new-sample rule
of :mod:`bayes_prsn.predict`; ``sample_posterior`` runs a back-end through
:mod:`bayes_prsn.sampling`. Results are reported in the user's original units.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from . import persistence
from .averaging import fit_members
from .defaults import DEFAULTS as D
from .exceptions import NotFittedError
from .fitting import AUTO_BATCH_SIZE as AUTO_BATCH_SIZE
from .fitting import MINIBATCH_ABOVE as MINIBATCH_ABOVE
from .fitting import minibatch_sizes, population_sites, run_map, state_from_map
from .inputs import (
    check_feature_names,
    check_new_X,
    check_rows,
    check_settings,
    class_labels,
    input_features,
    input_names,
    split_covariates,
)
from .models import ENCODER_SCALE as ENCODER_SCALE
from .models import family as family_of
from .predict import predict_mean_theta
from .problem import build_problem
from .repeats import reorder_samples, samples_to_fit
from .sample_inputs import PER_SAMPLE, log_exposure
from .smoothing import ENCODER_SCALE_GRID as ENCODER_SCALE_GRID
from .smoothing import FALLBACK_LIKELIHOOD_SCALE as FALLBACK_LIKELIHOOD_SCALE
from .smoothing import FALLBACK_NOISE_SCALE as FALLBACK_NOISE_SCALE
from .smoothing import LIKELIHOOD_SCALE_GRID as LIKELIHOOD_SCALE_GRID
from .smoothing import NOISE_SCALE_GRID as NOISE_SCALE_GRID
from .smoothing import VALIDATION_SAMPLES as VALIDATION_SAMPLES
from .smoothing import WARM_START_MIN_STEPS, choose_smoothing, is_fallback
from .state import FittedState, fitted_state, published_attributes
from .uncertainty import UncertaintyMixin

# The settings' constants above (``NOISE_SCALE_GRID``, ...) are re-exported: they
# were defined here before the estimator was split, and users import them from here.
__all__ = ["PersonalizedRegression", "PersonalizedClassifier", "NotFittedError", "load"]


def _store_parameters(estimator, values: dict) -> None:
    """Set the ``__init__`` arguments in ``values`` (its ``locals()``) as attributes, unchanged."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _PersonalizedBase(UncertaintyMixin, BaseEstimator):
    """Shared implementation of the personalized estimators."""

    _family_fixed: str | None = None

    def __init__(
        self,
        family: str = D["family"],
        *,
        rank: int = D["rank"],
        n_neighbors: int = D["n_neighbors"],
        gamma: float = D["gamma"],
        prior: str = D["prior"],
        prior_scale: float = D["prior_scale"],
        covariate_weight_scale: float = D["covariate_weight_scale"],
        noise_scale: float | str = D["noise_scale"],
        df: float | None = D["df"],
        fit_intercept: bool = D["fit_intercept"],
        offset: bool = D["offset"],
        encoder_width: int = D["encoder_width"],
        predict_method: str = D["predict_method"],
        validation_fraction: float = D["validation_fraction"],
        step_size: float = D["step_size"],
        max_steps: int = D["max_steps"],
        tol: float = D["tol"],
        progress_bar: bool = D["progress_bar"],
        random_state: int | None = D["random_state"],
        covariate_columns: list | str | None = D["covariate_columns"],
        devices: int | str | None = D["devices"],
        batch_size: int | str | None = D["batch_size"],
        n_jobs: int | None = D["n_jobs"],
        n_fits: int | str = D["n_fits"],
    ):
        _store_parameters(self, locals())

    # Under scikit-learn's metadata routing (``sklearn.set_config(
    # enable_metadata_routing=True)``) ``covariates`` is requested by default,
    # so GridSearchCV, cross_val_score and Pipeline pass it on (split by fold).
    __metadata_request__fit = dict.fromkeys(("covariates", *PER_SAMPLE), True)
    __metadata_request__predict = {"covariates": True, "exposure": True}
    __metadata_request__score = {"covariates": True}

    # --------------------------------------------------------------------- fit
    def fit(self, X, y, covariates=None, *, exposure=None, trials=None, sample_weight=None):
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
        exposure, trials, sample_weight : array-like of shape (n_samples,), optional
            Positive exposure (log-link families: the mean is ``exposure``
            times the rate, an offset ``log(exposure)``), trials (binomial,
            required; ``y`` counts successes) and non-negative weights of the
            log-likelihood (weight 0 drops the sample, as if not passed). See
            the README's section on families.

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
            return self._fit(X, y, covariates, exposure, trials, sample_weight)
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
        for name in ("fit_state_", "coef_", "posterior_state_", "idata_", "posterior_diagnostics_"):
            self.__dict__.pop(name, None)

    def _fit(self, X, y, covariates, exposure, trials, sample_weight):
        config = check_settings(self, self._family_fixed or self.family)
        predictors, covariates = split_covariates(X, covariates, self.covariate_columns)
        per_sample = {"exposure": exposure, "trials": trials, "sample_weight": sample_weight}
        # Zero weights dropped; repeated rows are one sample; weighted fits in a fixed order.
        predictors, covariates, y, sample_inputs, distinct = samples_to_fit(
            config.family, (predictors, covariates, y), per_sample
        )
        classes, target = self._prepare_target(y)
        labels = (predictors, covariates, y)
        problem = build_problem(
            predictors, target, covariates, config, labels_from=labels, sample_inputs=sample_inputs
        )
        n_features_in, feature_names_in = input_features(X)
        batch_sizes = minibatch_sizes(
            config.batch_size, problem.data["X"].shape[0], problem.data["pairs"].shape[0]
        )
        smoothing = choose_smoothing(problem, config, on_subset=batch_sizes is not None)
        # From the chosen candidate's MAP (toy data: 0.0037 against 0.0072 started afresh),
        # ``WARM_START_MIN_STEPS`` steps at least, to an absolute tolerance (FINAL_LOSS_SCALE).
        result = run_map(
            problem.key,
            problem.data,
            dict(problem.settings, **smoothing.settings),
            problem.init if smoothing.start is None else smoothing.start,
            config,
            warn=True,
            batch_sizes=batch_sizes,
            min_steps=None if smoothing.start is None else WARM_START_MIN_STEPS,
            final=True,
        )
        if config.offset and is_fallback(smoothing.report):
            result = result._replace(params=population_sites(result.params, problem.population))
        inputs = {
            "n_features_in": n_features_in,
            "feature_names_in": feature_names_in,
            "classes": classes,
            **input_names(problem.X.shape[0], y, predictors, covariates, y),
        }
        state = state_from_map(problem, config, smoothing, result, inputs=inputs)
        self._publish(reorder_samples(state, distinct))
        self._publish(fit_members(self, fitted_state(self)))  # n_fits: the fits averaged
        return self

    def _prepare_target(self, y):  # (classes or None, y as the model takes it)
        return None, y

    def _publish(self, state: FittedState) -> None:
        """Keep the fitted state and set the scikit-learn attributes from it."""
        self.__dict__.pop("feature_names_in_", None)
        self.__dict__.update(published_attributes(state))

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Save the fitted estimator (and its posterior, if any) to one file.

        The format is open and holds no pickle: a ZIP archive with ``metadata.json``
        (settings, scalars, the covariate coding, the package version and checksums),
        the fitted arrays as ``.npy`` and the ArviZ posterior as netCDF, written under
        a temporary name and renamed when complete (:mod:`bayes_prsn.persistence`).

        Returns
        -------
        pathlib.Path
            The path written.
        """
        return persistence.save(self, path)

    @classmethod
    def load(cls, path):
        """Load an estimator written by :meth:`save`; predictions are identical.

        Raises :class:`bayes_prsn.persistence.ModelFileError` (a ``ValueError``) with a
        one-line reason: the file is missing, damaged, modified, newer or of another class.
        """
        return persistence.load(path, cls, classes=ESTIMATORS)

    # ----------------------------------------------------------------- predict
    def predict_coef(self, covariates) -> np.ndarray:
        """Coefficients of new samples from their covariates, shape (n, n_predictors).

        With ``covariate_columns`` set, pass the new samples' ``X`` (covariates taken from it).
        """
        return self._predict_theta(self._encode(self._new_covariates(covariates)))[0]

    def predict_intercept(self, covariates) -> np.ndarray:
        """Intercepts of new samples from their covariates, shape (n,)."""
        return self._predict_theta(self._encode(self._new_covariates(covariates)))[1]

    def _split(self, X, covariates):
        """Predictors and covariates of new samples (``covariate_columns`` applied)."""
        check_feature_names(X, fitted_state(self).feature_names_in, type(self).__name__)
        return split_covariates(
            X,
            covariates,
            self.covariate_columns,
            expected_features=fitted_state(self).n_features_in,
            estimator_name=type(self).__name__,
        )

    def _new_covariates(self, covariates):
        return covariates if self.covariate_columns is None else self._split(covariates, None)[1]

    def _encode(self, covariates):
        """New samples' covariates in the fit's coding."""
        return fitted_state(self).encoder.transform(covariates)

    def _new_samples(self, X, covariates):
        """New samples' predictors (checked float array) and coded covariates, rows matched."""
        X, covariates = self._split(X, covariates)
        X = check_new_X(X, fitted_state(self).n_predictors, type(self).__name__)
        encoded = self._encode(covariates)
        check_rows(X, encoded.n_samples)
        return X, encoded

    def _predict_theta(self, encoded):
        state = fitted_state(self)
        theta = predict_mean_theta(
            state,
            encoded,
            method=self.predict_method,
            n_neighbors=self.n_neighbors,
            gamma=float(self.gamma),
            prior=self.prior,
        )
        return state.to_original_units(theta)

    def _linear_predictor(self, X, covariates, exposure=None) -> np.ndarray:
        X, encoded = self._new_samples(X, covariates)
        coef, intercept = self._predict_theta(encoded)
        shift = log_exposure(fitted_state(self).family, exposure, X.shape[0])
        return np.sum(X * coef, axis=1) + intercept + shift


class PersonalizedRegression(RegressorMixin, _PersonalizedBase):
    r"""Low-rank personalized regression: one model per sample, fitted by MAP.

    Each sample :math:`i` gets its own coefficients
    :math:`\theta_i = \bar\theta + Q^\top Z_i`, tied to the other samples'
    through a distance-matching potential on its covariates (see
    :func:`bayes_prsn.models.personalized_regression` for the joint density).

    Parameters
    ----------
    family : str, default "gaussian"
        Likelihood, one of ``bayes_prsn.models.FAMILIES`` (the README's table).
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
    prior_scale : float or "auto", default "auto"
        Scale of :math:`\psi` (internal units: standardised predictors and,
        for gaussian, response); 10 halved the logistic simulator's slopes.
        ``"auto"``: 100, or for count and binary fits of under 1,000 samples
        that lose to the population model, 1 or 0.1 if one beats it on
        held-out samples (``smoothing.PRIOR_SCALE_GRID``); see ``prior_scale_``.
    covariate_weight_scale : float, default 10
        Scale of the half-normal prior on the covariate weights :math:`\phi`.
    noise_scale : float or "auto", default "auto"
        Gaussian noise scale in the units of ``y``. ``"auto"`` chooses it on
        held-out samples (a MAP of a learned noise scale collapses toward zero
        and overfits, so it is not learned jointly). The scale of the
        student_t family's noise likewise.
    df : float or None, default None
        Degrees of freedom of the student_t family; None learns them.
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
        prior scale of its input weights, from ``ENCODER_SCALE_GRID``).
        Below 1,000 samples every sample is held out once, in
        ``round(1 / validation_fraction)`` folds, and each choice takes the
        smoothest candidate within one standard error of the best. The
        population model wins unless per-sample models beat it by more than one
        standard error (a narrower psi's: at all); then every sample's model is
        the population's (``validation_scores_``; K folds check one split's). 0: off.
    step_size, max_steps, tol : float, int, float
        Adam step size, step cap and relative loss change of the stopping rule (per 100
        steps; the final fit's is relative to at most 2e4 nats: 2 nats at the default tol).
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
        Shard the MAP optimisation over this many JAX devices (GPUs, or host CPU
        devices) with :mod:`jax.sharding`: data parallel, the same code and the same
        MAP as on one device up to floating-point order. None uses one device.
    batch_size : int, "auto" or None, default "auto"
        Samples per minibatch SVI step (as many pairs are drawn), with
        every term rescaled so that each step follows an unbiased estimate of
        the full gradient; memory and time per step no longer grow with the
        number of samples. ``None``: full-batch steps. ``"auto"``: full batch
        up to 20,000 samples, minibatches of 8192 above. With minibatches the
        smoothing is chosen on a random subset of 2,000 samples and the fit
        runs ``max_steps`` steps (the loss is too noisy for the stopping rule).
    n_jobs : int or None, default -1
        Threads for the smoothing choice's validation fits and a NUTS posterior's
        chains, which run side by side (the same results as one after another): -1
        every CPU core, -2 all but one, None or 1 one. Fits: one with ``devices`` > 1.
    n_fits : int or "auto", default "auto"
        Fits averaged into ``coef_`` (own split and start each; ``bayes_prsn.averaging``):
        ``"auto"``: 4 from 1,000 (count, 0/1) or 5,000 (gaussian) to 20,000 samples, else 1.

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
        (same order; on the robust internal scale of each covariate).
        ``summary()`` and :func:`bayes_prsn.analysis.covariate_importance`
        show them by name.
    embedding_ : ndarray (n_samples, rank)
        MAP codes :math:`Z`. With the encoder, ``coef_`` is the encoder's code plus
        the mean MAP residual of the ``n_neighbors`` nearest training samples (the
        rule for new samples: ``predict_coef`` on the training covariates gives ``coef_``).
    dictionary_ : ndarray (rank, n_features)
        Dictionary :math:`Q` in original units (without the intercept column).
    noise_scale_ : float or None
        Gaussian noise scale in units of ``y`` (chosen on held-out samples; it
        sets the amount of smoothing and is not an estimate of the noise).
    likelihood_scale_, prior_scale_ : float
        Power of the likelihood (1, or ``FALLBACK_LIKELIHOOD_SCALE`` for a
        count or binary fit that fell back to the population GLM) and the
        scale of psi used (internal units).
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
        exposure=None,
        return_interval: bool = False,
        prob: float = 0.9,
        random_state: int | None = 0,
    ):
        """Mean response of new samples, shape (n_samples,).

        Parameters
        ----------
        X, covariates
            Predictors and covariates of the new samples. A DataFrame ``X``
            must have the columns of ``fit`` in the same order
            (``feature_names_in_``): predictors are used by position, so a
            reordered, renamed or missing column raises a ``ValueError``.
            Covariates are matched by name; a categorical level never seen in
            ``fit`` is treated as missing, with a warning.
        exposure : array-like of shape (n_samples,), optional
            The new samples' exposure (log-link families); without it the
            prediction is the mean per unit of exposure. The binomial
            family predicts the probability of success per trial.
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
        eta = self._linear_predictor(X, covariates, exposure)
        mean = family_of(fitted_state(self).family).mean(eta)
        if not return_interval:
            return mean
        lower, upper = self._predictive_interval(
            X, covariates, prob, noise=True, seed=random_state, exposure=exposure
        )
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
        rank: int = D["rank"],
        n_neighbors: int = D["n_neighbors"],
        gamma: float = D["gamma"],
        prior: str = D["prior"],
        prior_scale: float = D["prior_scale"],
        covariate_weight_scale: float = D["covariate_weight_scale"],
        fit_intercept: bool = D["fit_intercept"],
        offset: bool = D["offset"],
        encoder_width: int = D["encoder_width"],
        predict_method: str = D["predict_method"],
        validation_fraction: float = D["validation_fraction"],
        step_size: float = D["step_size"],
        max_steps: int = D["max_steps"],
        tol: float = D["tol"],
        progress_bar: bool = D["progress_bar"],
        random_state: int | None = D["random_state"],
        covariate_columns: list | str | None = D["covariate_columns"],
        devices: int | str | None = D["devices"],
        batch_size: int | str | None = D["batch_size"],
        n_jobs: int | None = D["n_jobs"],
        n_fits: int | str = D["n_fits"],
    ):
        # Only the parameters of this signature are set (scikit-learn's rule for clone).
        _store_parameters(self, locals())

    @property
    def family(self) -> str:
        return "bernoulli"

    @property
    def noise_scale(self) -> str:
        return "auto"

    @property
    def df(self) -> None:
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _prepare_target(self, y):
        """Two class labels of any type, coded 0 (``classes_[0]``) and 1 (``classes_[1]``)."""
        return class_labels(y)

    def predict_proba(
        self,
        X,
        covariates=None,
        *,
        return_interval: bool = False,
        prob: float = 0.9,
        random_state: int | None = 0,
    ):
        """Class probabilities of new samples, shape (n_samples, 2).

        With ``return_interval=True`` (after :meth:`sample_posterior`) also
        returns the lower and upper bounds (n_samples,) of an equal-tailed
        credible interval for the probability of class 1; ``random_state``
        seeds its draws of the pooled residual codes' error.
        """
        p1 = family_of("bernoulli").mean(self._linear_predictor(X, covariates))
        proba = np.column_stack([1.0 - p1, p1])
        if not return_interval:
            return proba
        lower, upper = self._predictive_interval(
            X, covariates, prob, noise=False, seed=random_state
        )
        return proba, lower, upper

    def predict(self, X, covariates=None) -> np.ndarray:
        """Predicted labels (values of ``classes_``) of new samples."""
        positive = self.predict_proba(X, covariates)[:, 1] > 0.5
        return self.classes_[positive.astype(int)]

    def score(self, X, y, covariates=None, sample_weight=None) -> float:
        """Accuracy of :meth:`predict` on new samples."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, covariates), sample_weight=sample_weight)


#: The estimator classes a saved model may hold, by name.
ESTIMATORS = {cls.__name__: cls for cls in (PersonalizedRegression, PersonalizedClassifier)}


def load(path):
    """Load a model saved by ``save`` (either estimator class); predictions are identical.

    Raises :class:`bayes_prsn.ModelFileError` when the file is missing,
    damaged, modified or from a newer bayes_prsn.
    """
    return persistence.load(path, classes=ESTIMATORS)
