"""bayes_prsn: Bayesian low-rank personalized regression on NumPyro/JAX.

One regression model per sample, tied together through the samples'
covariates; see :class:`PersonalizedRegression`.

The names below are imported on first use (PEP 562), so that ``import
bayes_prsn`` and ``bayes-prsn --help`` do not start JAX and scikit-learn.
"""

from .version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    "PersonalizedClassifier": "estimator",
    "PersonalizedRegression": "estimator",
    "load": "estimator",
    "ConvergenceWarning": "exceptions",
    "NotFittedError": "exceptions",
    "NumericalWarning": "exceptions",
    "ModelFileError": "persistence",
}
_SUBMODULES = ("analysis", "cli", "defaults", "models", "plots", "report", "simulate")

__all__ = [
    "ConvergenceWarning",
    "ModelFileError",
    "NumericalWarning",
    "NotFittedError",
    "PersonalizedClassifier",
    "PersonalizedRegression",
    "__version__",
    "load",
]


def __getattr__(name: str):
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, *_SUBMODULES])
