"""Simulated data with known per-sample coefficients.

Every generator returns a :class:`SimulatedData` holding predictors ``X``,
response ``y``, covariates ``covariates`` and the true per-sample
coefficients ``coef`` and intercepts ``intercept``, so that recovery of the
sample-specific models can be measured against the truth.

The generators follow the kinds of data used to evaluate personalized
regression (Lengerich et al., 2018, 2019): a one-covariate toy with a jump,
smooth low-rank heterogeneity with optional pure-noise covariates, clusters
given by a categorical covariate, a logistic and a Poisson variant, a
raw-units variant on wildly different scales and a null generator with no
heterogeneity at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "SimulatedData",
    "GENERATORS",
    "make_toy",
    "make_low_rank",
    "make_small_low_rank",
    "make_clustered",
    "make_logistic",
    "make_poisson",
    "make_raw_units",
    "make_null",
    "make_student_t",
    "make_negative_binomial",
    "make_binomial",
    "make_gamma",
]


@dataclass(frozen=True)
class SimulatedData:
    """Data simulated with known truth.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        Predictors.
    y : ndarray of shape (n_samples,)
        Response (real for ``"gaussian"``, 0/1 for ``"bernoulli"``, counts for
        ``"poisson"``).
    covariates : DataFrame of shape (n_samples, n_covariates)
        Covariates that drive the heterogeneity (and, where asked, pure-noise
        covariates).
    coef : ndarray of shape (n_samples, n_features)
        True per-sample coefficients, in the units of ``X`` and ``y``.
    intercept : ndarray of shape (n_samples,)
        True per-sample intercepts.
    family : str
        Likelihood family: ``"gaussian"``, ``"bernoulli"`` or ``"poisson"``.
    name : str
        Short name of the generator.
    info : dict
        Generator settings (noise level, informative covariates, ...).
    exposure : ndarray of shape (n_samples,) or None
        Exposure of each sample (rate generators; pass ``exposure=`` to ``fit``).
    trials : ndarray of shape (n_samples,) or None
        Trials of each sample (binomial; pass ``trials=`` to ``fit``).
    """

    X: np.ndarray
    y: np.ndarray
    covariates: pd.DataFrame
    coef: np.ndarray
    intercept: np.ndarray
    family: str
    name: str
    info: dict = field(default_factory=dict)
    exposure: np.ndarray | None = None
    trials: np.ndarray | None = None

    @property
    def fit_inputs(self) -> dict:
        """Keyword arguments of ``fit`` besides ``X``, ``y`` and the covariates."""
        inputs = {"exposure": self.exposure, "trials": self.trials}
        return {name: value for name, value in inputs.items() if value is not None}

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def subset(self, index: np.ndarray) -> SimulatedData:
        """Return the samples at positions ``index``."""
        index = np.asarray(index)
        return SimulatedData(
            X=self.X[index],
            y=self.y[index],
            covariates=self.covariates.iloc[index].reset_index(drop=True),
            coef=self.coef[index],
            intercept=self.intercept[index],
            family=self.family,
            name=self.name,
            info=dict(self.info),
            exposure=None if self.exposure is None else self.exposure[index],
            trials=None if self.trials is None else self.trials[index],
        )


def _rng(random_state) -> np.random.Generator:
    return np.random.default_rng(random_state)


def _respond(eta: np.ndarray, family: str, noise: float, rng) -> np.ndarray:
    if family == "gaussian":
        return eta + noise * rng.standard_normal(eta.shape[0])
    if family == "bernoulli":
        return rng.binomial(1, 1.0 / (1.0 + np.exp(-eta))).astype(float)
    if family == "poisson":
        return rng.poisson(np.exp(eta)).astype(float)
    raise ValueError(f"unknown family {family!r}")


def make_toy(n_samples: int = 1000, noise: float = 0.15, random_state=None) -> SimulatedData:
    r"""Figure-1-like toy: one covariate, two coefficients, a jump.

    :math:`u \sim U(-1, 1)`, :math:`\theta(u) = (u,\; u^2 - 1)` for
    :math:`u < 0` and :math:`(u,\; 1 - u^2)` otherwise, :math:`x \sim U(-1,1)^2`,
    :math:`y = x^\top \theta(u) + \varepsilon`, :math:`\varepsilon \sim
    N(0, \text{noise}^2)`; the intercept is zero.
    """
    rng = _rng(random_state)
    u = rng.uniform(-1.0, 1.0, n_samples)
    coef = np.column_stack([u, np.where(u < 0, u**2 - 1.0, 1.0 - u**2)])
    X = rng.uniform(-1.0, 1.0, (n_samples, 2))
    intercept = np.zeros(n_samples)
    y = _respond(np.sum(X * coef, axis=1), "gaussian", noise, rng)
    return SimulatedData(
        X, y, pd.DataFrame({"u": u}), coef, intercept, "gaussian", "toy", {"noise": noise}
    )


def _smooth_low_rank(n_samples, n_features, n_informative, n_noise_covariates, rank, scale, rng):
    """Coefficients that vary smoothly and in low rank with the covariates."""
    u_inf = rng.uniform(-1.0, 1.0, (n_samples, n_informative))
    u_noise = rng.uniform(-1.0, 1.0, (n_samples, n_noise_covariates))
    # A smooth nonlinear code of the informative covariates, then a random
    # dictionary: theta_i = theta_0 + D^T f(u_i), of rank `rank`.
    mix = rng.standard_normal((n_informative, rank))
    code = np.sin(1.5 * u_inf @ mix) + 0.5 * np.tanh(
        2.0 * u_inf[:, : min(rank, n_informative)]
    ).sum(axis=1, keepdims=True)
    dictionary = rng.standard_normal((rank, n_features + 1)) * scale / np.sqrt(rank)
    base = rng.standard_normal(n_features + 1) * 0.5
    theta = base + code @ dictionary
    columns = {f"u{j}": u_inf[:, j] for j in range(n_informative)}
    columns.update({f"noise{j}": u_noise[:, j] for j in range(n_noise_covariates)})
    return theta[:, :-1], theta[:, -1], pd.DataFrame(columns)


def make_low_rank(
    n_samples: int = 2000,
    n_features: int = 10,
    n_informative: int = 3,
    n_noise_covariates: int = 2,
    rank: int = 3,
    noise: float = 0.3,
    random_state=None,
) -> SimulatedData:
    r"""Smooth low-rank heterogeneity with optional pure-noise covariates.

    Informative covariates :math:`u \sim U(-1,1)^{m}` pass through a smooth
    nonlinear code :math:`f(u) \in \mathbb{R}^{K}` and a random dictionary:
    :math:`(\theta_i, b_i) = \theta_0 + D^\top f(u_i)`. ``n_noise_covariates``
    further covariates are independent of everything. :math:`x \sim N(0, I)`,
    Gaussian noise of scale ``noise``.
    """
    rng = _rng(random_state)
    coef, intercept, covariates = _smooth_low_rank(
        n_samples, n_features, n_informative, n_noise_covariates, rank, 1.0, rng
    )
    X = rng.standard_normal((n_samples, n_features))
    y = _respond(np.sum(X * coef, axis=1) + intercept, "gaussian", noise, rng)
    info = {"noise": noise, "rank": rank, "informative": [f"u{j}" for j in range(n_informative)]}
    return SimulatedData(X, y, covariates, coef, intercept, "gaussian", "low_rank", info)


def make_small_low_rank(n_samples: int = 200, noise: float = 0.3, random_state=None):
    """:func:`make_low_rank` with three predictors, two covariates (both informative), rank 2.

    The small setting of the posterior's coverage tables and tests
    (``benchmarks/posterior.py --generator issue3``, ``tests/test_coverage.py``)
    and of ``examples/uncertainty.py``: few enough unknowns for NUTS in
    seconds. Not in :data:`GENERATORS`, whose generators the benchmarks run at
    their defaults.
    """
    return make_low_rank(
        n_samples=n_samples,
        n_features=3,
        n_informative=2,
        n_noise_covariates=0,
        rank=2,
        noise=noise,
        random_state=random_state,
    )


def _low_rank_glm(
    family,
    name,
    n_samples,
    n_features,
    n_informative,
    n_noise_covariates,
    rank,
    scale,
    random_state,
    coef_factor=1.0,
    intercept_factor=1.0,
    intercept_shift=0.0,
):
    rng = _rng(random_state)
    coef, intercept, covariates = _smooth_low_rank(
        n_samples, n_features, n_informative, n_noise_covariates, rank, scale, rng
    )
    coef = coef_factor * coef
    intercept = intercept_factor * intercept + intercept_shift
    X = rng.standard_normal((n_samples, n_features))
    y = _respond(np.sum(X * coef, axis=1) + intercept, family, 0.0, rng)
    info = {"rank": rank, "informative": [f"u{j}" for j in range(n_informative)]}
    return SimulatedData(X, y, covariates, coef, intercept, family, name, info)


def make_logistic(
    n_samples: int = 2000,
    n_features: int = 5,
    n_informative: int = 2,
    n_noise_covariates: int = 1,
    rank: int = 2,
    random_state=None,
) -> SimulatedData:
    """Smooth low-rank heterogeneity with a Bernoulli response (logit link)."""
    return _low_rank_glm(
        "bernoulli",
        "logistic",
        n_samples,
        n_features,
        n_informative,
        n_noise_covariates,
        rank,
        1.5,
        random_state,
    )


def make_poisson(
    n_samples: int = 2000,
    n_features: int = 5,
    n_informative: int = 2,
    n_noise_covariates: int = 1,
    rank: int = 2,
    random_state=None,
) -> SimulatedData:
    """Smooth low-rank heterogeneity with a Poisson response (log link).

    Coefficients are scaled so that the expected counts stay moderate
    (log-rates mostly within 1 +- 1).
    """
    return _low_rank_glm(
        "poisson",
        "poisson",
        n_samples,
        n_features,
        n_informative,
        n_noise_covariates,
        rank,
        0.4,
        random_state,
        coef_factor=0.5,
        intercept_factor=0.3,
        intercept_shift=1.0,
    )


def make_clustered(
    n_samples: int = 1000,
    n_features: int = 5,
    n_clusters: int = 4,
    noise: float = 0.5,
    random_state=None,
) -> SimulatedData:
    """Clusters of samples sharing a model, given by a categorical covariate.

    Covariates: ``group`` (categorical, the cluster label ``"g0"``, ``"g1"``,
    ...), which determines each sample's coefficients, and ``age`` (numeric,
    pure noise).
    """
    rng = _rng(random_state)
    centres = rng.standard_normal((n_clusters, n_features + 1))
    label = rng.integers(0, n_clusters, n_samples)
    coef = centres[label, :-1]
    intercept = centres[label, -1]
    X = rng.standard_normal((n_samples, n_features))
    y = _respond(np.sum(X * coef, axis=1) + intercept, "gaussian", noise, rng)
    covariates = pd.DataFrame(
        {
            "group": pd.Categorical([f"g{k}" for k in label]),
            "age": rng.uniform(20.0, 80.0, n_samples),
        }
    )
    info = {"noise": noise, "n_clusters": n_clusters, "informative": ["group"]}
    return SimulatedData(X, y, covariates, coef, intercept, "gaussian", "clustered", info)


def make_raw_units(
    n_samples: int = 2000,
    n_features: int = 10,
    noise: float = 0.3,
    random_state=None,
) -> SimulatedData:
    """Low-rank data in raw units: covariates x1000, predictors scaled 0.01 to 100.

    The same process as :func:`make_low_rank` (3 informative and 2 noise
    covariates) with covariates multiplied by 1000 and predictor ``j``
    multiplied by a scale from a log-grid between 0.01 and 100, and the
    response multiplied by 10. The true coefficients are reported in these
    raw units.
    """
    base = make_low_rank(n_samples, n_features, 3, 2, 3, noise, random_state)
    x_scale = np.logspace(-2, 2, n_features)
    y_scale = 10.0
    X = base.X * x_scale
    covariates = base.covariates * 1000.0
    info = dict(base.info, x_scale=x_scale.tolist(), y_scale=y_scale, covariate_scale=1000.0)
    return SimulatedData(
        X,
        base.y * y_scale,
        covariates,
        base.coef * y_scale / x_scale,
        base.intercept * y_scale,
        "gaussian",
        "raw_units",
        info,
    )


def make_null(
    n_samples: int = 1000,
    n_features: int = 6,
    n_noise_covariates: int = 3,
    noise: float = 1.0,
    random_state=None,
) -> SimulatedData:
    """No heterogeneity: one coefficient vector for everyone, covariates pure noise."""
    rng = _rng(random_state)
    theta = rng.standard_normal(n_features + 1)
    coef = np.tile(theta[:-1], (n_samples, 1))
    intercept = np.full(n_samples, theta[-1])
    X = rng.standard_normal((n_samples, n_features))
    y = _respond(X @ theta[:-1] + theta[-1], "gaussian", noise, rng)
    covariates = pd.DataFrame(
        {f"noise{j}": rng.standard_normal(n_samples) for j in range(n_noise_covariates)}
    )
    return SimulatedData(X, y, covariates, coef, intercept, "gaussian", "null", {"noise": noise})


GENERATORS = {
    "toy": make_toy,
    "low_rank": make_low_rank,
    "clustered": make_clustered,
    "logistic": make_logistic,
    "poisson": make_poisson,
    "raw_units": make_raw_units,
    "null": make_null,
}
"""Name -> generator, every generator accepting ``n_samples`` and ``random_state``."""


def _glm_truth(n_samples, n_features, scale, coef_factor, intercept_factor, shift, rng):
    """Smooth low-rank truth (2 informative covariates, 1 noise covariate, rank 2) and X."""
    coef, intercept, covariates = _smooth_low_rank(n_samples, n_features, 2, 1, 2, scale, rng)
    coef = coef_factor * coef
    intercept = intercept_factor * intercept + shift
    X = rng.standard_normal((n_samples, n_features))
    eta = np.sum(X * coef, axis=1) + intercept
    return X, coef, intercept, covariates, eta


def _poisson_truth(n_samples, n_features, rng):
    """The truth of :func:`make_poisson` (log-rates mostly within 1 +- 1) and X."""
    return _glm_truth(n_samples, n_features, 0.4, 0.5, 0.3, 1.0, rng)


def make_student_t(
    n_samples: int = 2000,
    n_features: int = 5,
    df: float = 3.0,
    noise: float = 0.3,
    outlier_fraction: float = 0.0,
    random_state=None,
) -> SimulatedData:
    r"""Smooth low-rank heterogeneity with heavy-tailed noise (Student-t, ``df``).

    ``outlier_fraction`` of the responses are then replaced by gross outliers:
    the response plus or minus 10 standard deviations of ``y`` (mistyped
    values). The truth is that of the clean process.
    """
    rng = _rng(random_state)
    X, coef, intercept, covariates, eta = _glm_truth(n_samples, n_features, 1.0, 1.0, 1.0, 0.0, rng)
    y = eta + noise * rng.standard_t(df, n_samples)
    n_out = int(round(outlier_fraction * n_samples))
    if n_out:
        where = rng.choice(n_samples, n_out, replace=False)
        y[where] += rng.choice([-1.0, 1.0], n_out) * 10.0 * np.std(y)
    info = {"df": df, "noise": noise, "outlier_fraction": outlier_fraction, "rank": 2}
    info["informative"] = ["u0", "u1"]
    return SimulatedData(X, y, covariates, coef, intercept, "student_t", "student_t", info)


def make_negative_binomial(
    n_samples: int = 2000, n_features: int = 5, concentration: float = 5.0, random_state=None
) -> SimulatedData:
    r"""Overdispersed counts (NB2, variance :math:`\mu + \mu^2/\phi`) with an exposure.

    The log-rates are those of :func:`make_poisson`;
    each sample's exposure is log-uniform on [0.5, 5] and multiplies its rate.
    """
    rng = _rng(random_state)
    X, coef, intercept, covariates, eta = _poisson_truth(n_samples, n_features, rng)
    exposure = np.exp(rng.uniform(np.log(0.5), np.log(5.0), n_samples))
    mu = exposure * np.exp(eta)
    y = rng.poisson(rng.gamma(concentration, mu / concentration)).astype(float)
    info = {"concentration": concentration, "rank": 2, "informative": ["u0", "u1"]}
    return SimulatedData(
        X,
        y,
        covariates,
        coef,
        intercept,
        "negative_binomial",
        "negative_binomial",
        info,
        exposure=exposure,
    )


def make_binomial(
    n_samples: int = 2000, n_features: int = 5, max_trials: int = 20, random_state=None
) -> SimulatedData:
    """Successes out of 1 to ``max_trials`` trials, logit link, smooth low-rank heterogeneity."""
    rng = _rng(random_state)
    X, coef, intercept, covariates, eta = _glm_truth(n_samples, n_features, 1.0, 0.5, 0.5, 0.0, rng)
    trials = rng.integers(1, max_trials + 1, n_samples).astype(float)
    y = rng.binomial(trials.astype(np.int64), 1.0 / (1.0 + np.exp(-eta))).astype(float)
    info = {"max_trials": max_trials, "rank": 2, "informative": ["u0", "u1"]}
    return SimulatedData(
        X, y, covariates, coef, intercept, "binomial", "binomial", info, trials=trials
    )


def make_gamma(
    n_samples: int = 2000, n_features: int = 5, shape: float = 5.0, random_state=None
) -> SimulatedData:
    """Positive responses: gamma of shape ``shape``, log link, :func:`make_poisson`'s truth."""
    rng = _rng(random_state)
    X, coef, intercept, covariates, eta = _poisson_truth(n_samples, n_features, rng)
    mu = np.exp(eta)
    y = rng.gamma(shape, mu / shape)
    info = {"shape": shape, "rank": 2, "informative": ["u0", "u1"]}
    return SimulatedData(X, y, covariates, coef, intercept, "gamma", "gamma", info)


#: The generators of the families added later, by name (each accepting ``n_samples``
#: and ``random_state``); kept apart from :data:`GENERATORS`, whose tables are older.
FAMILY_GENERATORS = {
    "student_t": make_student_t,
    "negative_binomial": make_negative_binomial,
    "binomial": make_binomial,
    "gamma": make_gamma,
}
GENERATORS.update(FAMILY_GENERATORS)
