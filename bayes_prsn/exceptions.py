"""The warnings and errors bayes_prsn raises (as scikit-learn keeps its own in one module)."""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as SklearnNotFittedError

__all__ = ["ConvergenceWarning", "NumericalWarning", "NotFittedError"]


class NumericalWarning(RuntimeWarning):
    """SVI met a non-finite loss, or diverged, and restarted with smaller steps."""


class ConvergenceWarning(UserWarning):
    """The optimisation stopped at its step cap before the stopping rule was met."""


class NotFittedError(SklearnNotFittedError):
    """The estimator was used before ``fit`` (a scikit-learn ``NotFittedError``)."""
