"""The population model: one ridge-stabilised GLM for all samples.

It is the starting point of every sample's model and the baseline against
which personalization is measured. Fitted by Newton's method (iteratively
reweighted least squares) on the internally scaled data.
"""

from __future__ import annotations

import numpy as np

from .models import LOG_RATE_BOUND
from .models import family as family_of

__all__ = ["fit_population_glm", "mean_function"]


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
) -> np.ndarray:
    r"""Ridge-penalised GLM.

    :math:`\hat\beta = \arg\max_\beta\, \ell(\beta) - \tfrac{1}{2}\beta^\top \Lambda \beta`.

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
        Predictors (with a column of ones for an intercept, which should get a
        zero entry in ``penalty``).
    y : ndarray (n_samples,)
    family : {"gaussian", "bernoulli", "poisson"}
    penalty : float or ndarray (n_features,)
        Diagonal of :math:`\Lambda`; keeps the fit finite under collinearity,
        ``p > n`` and perfect separation.

    Returns
    -------
    ndarray (n_features,)
    """
    n_features = X.shape[1]
    penalty = np.broadcast_to(np.asarray(penalty, dtype=float), (n_features,))
    # A tiny floor keeps the system solvable for an unpenalised constant column.
    ridge = np.diag(penalty + 1e-8 * X.shape[0])
    if family == "gaussian":
        return np.linalg.solve(X.T @ X + ridge, X.T @ y)
    likelihood = family_of(family)
    beta = np.zeros(n_features)
    for _ in range(max_iter):
        eta = np.clip(X @ beta, -LOG_RATE_BOUND, LOG_RATE_BOUND)
        mu = likelihood.mean(eta)
        weight = likelihood.variance(mu)
        gradient = X.T @ (y - mu) - penalty * beta
        hessian = (X * weight[:, None]).T @ X + ridge
        step = np.linalg.solve(hessian, gradient)
        # Damped Newton: halve the step until it does not overshoot wildly.
        scale = min(1.0, 5.0 / max(np.max(np.abs(step)), 1e-12))
        beta = beta + scale * step
        if np.max(np.abs(scale * step)) < tol * (1.0 + np.max(np.abs(beta))):
            break
    return beta
