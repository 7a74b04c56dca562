"""The population model: one ridge-stabilised GLM for all samples.

It is the starting point of every sample's model and the baseline against
which personalization is measured. Fitted by Newton's method (iteratively
reweighted least squares) on the internally scaled data.
"""

from __future__ import annotations

import numpy as np

from .models import LOG_RATE_BOUND
from .models import family as family_of

__all__ = ["fit_population", "fit_population_glm", "mean_function"]


def mean_function(eta: np.ndarray, family: str) -> np.ndarray:
    """Inverse link: the mean response for linear predictor ``eta``."""
    return family_of(family).mean(eta)


def fit_population_glm(
    X: np.ndarray,
    y: np.ndarray,
    family: str,
    *,
    penalty: np.ndarray | float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-10,
    eta_offset: np.ndarray | None = None,
    trials: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    r"""Ridge-penalised GLM.

    :math:`\hat\beta = \arg\max_\beta\, \ell(\beta) - \tfrac{1}{2}\beta^\top \Lambda \beta`.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        Predictors (with a column of ones for an intercept, which should get a
        zero entry in ``penalty``).
    y : ndarray (n_samples,)
    family : str
        One of :data:`~bayes_prsn.models.FAMILIES`.
    penalty : float or ndarray (n_features,)
        Diagonal of :math:`\Lambda`; keeps the fit finite under collinearity,
        ``p > n`` and perfect separation.
    eta_offset, trials, sample_weight : ndarray (n_samples,), optional
        A known part of the linear predictor (log exposure), the binomial
        family's trials and the weight of each sample's log-likelihood.

    Returns
    -------
    ndarray (n_features,)
    """
    return fit_population(
        X,
        y,
        family,
        penalty=penalty,
        max_iter=max_iter,
        tol=tol,
        eta_offset=eta_offset,
        trials=trials,
        sample_weight=sample_weight,
    )[0]


def fit_population(
    X,
    y,
    family: str,
    *,
    penalty=1.0,
    max_iter: int = 100,
    tol: float = 1e-10,
    eta_offset=None,
    trials=None,
    sample_weight=None,
) -> tuple[np.ndarray, dict]:
    """:func:`fit_population_glm` and the estimates of the family's learned parameters.

    Returns ``(beta, extra)``: ``extra`` holds a starting value of each of the
    family's :attr:`learned` parameters (a moment estimate of the negative
    binomial or gamma concentration; 10 degrees of freedom for student_t).
    """
    n_features = X.shape[1]
    penalty = np.broadcast_to(np.asarray(penalty, dtype=float), (n_features,))
    # A tiny floor keeps the system solvable for an unpenalised constant column.
    ridge = np.diag(penalty + 1e-8 * X.shape[0])
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    if family in ("gaussian", "student_t") and eta_offset is None:
        Xw = X if sample_weight is None else X * weights[:, None]
        beta = np.linalg.solve(Xw.T @ X + ridge, Xw.T @ y)
        if family == "gaussian":
            return beta, {}
        return _student_t(X, y, beta, ridge, penalty, weights), {"df": 10.0}
    likelihood = family_of(family)
    aux = {} if trials is None else {"trials": np.asarray(trials, dtype=float)}
    beta = _newton(X, y, likelihood, aux, ridge, penalty, eta_offset, sample_weight, max_iter, tol)
    extra = {}
    if "concentration" in likelihood.parameters:
        offset = 0.0 if eta_offset is None else eta_offset
        mu = likelihood.mean(X @ beta + offset)
        aux["concentration"] = likelihood.moment_concentration(y, mu)
        if family == "negative_binomial":
            # The poisson fit above, then NB2's weights at the moment estimate.
            beta = _newton(
                X, y, likelihood, aux, ridge, penalty, eta_offset, sample_weight, max_iter, tol
            )
        extra["concentration"] = aux["concentration"]
    return beta, extra


def _newton(X, y, likelihood, aux, ridge, penalty, eta_offset, sample_weight, max_iter, tol):
    """Damped Newton (Fisher scoring) steps of the penalised log-likelihood from zero."""
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = X @ beta if eta_offset is None else X @ beta + eta_offset
        eta = np.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND)
        residual, weight = likelihood.working(eta, y, **aux)
        if sample_weight is not None:
            residual, weight = sample_weight * residual, sample_weight * weight
        gradient = X.T @ residual - penalty * beta
        hessian = (X * weight[:, None]).T @ X + ridge
        step = np.linalg.solve(hessian, gradient)
        # Damped Newton: halve the step until it does not overshoot wildly.
        scale = min(1.0, 5.0 / max(np.max(np.abs(step)), 1e-12))
        beta = beta + scale * step
        if np.max(np.abs(scale * step)) < tol * (1.0 + np.max(np.abs(beta))):
            break
    return beta


def _student_t(X, y, beta, ridge, penalty, weights, df: float = 4.0, n_iter: int = 30):
    """Iteratively reweighted least squares for t noise (``df`` 4), from least squares."""
    likelihood = family_of("student_t")
    for _ in range(n_iter):
        residual = y - X @ beta
        scale = max(1.4826 * np.median(np.abs(residual - np.median(residual))), 1e-8)
        _, weight = likelihood.working(X @ beta, y, df=df, noise_scale=scale)
        weight = weight * weights
        beta = np.linalg.solve((X * weight[:, None]).T @ X + ridge, (X * weight[:, None]).T @ y)
    return beta
