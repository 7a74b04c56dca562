"""bayes_prsn: Bayesian low-rank personalized regression on NumPyro/JAX.

One regression model per sample, tied together through the samples'
covariates; see :class:`PersonalizedRegression`.
"""

from .estimator import PersonalizedClassifier, PersonalizedRegression, load
from .exceptions import ConvergenceWarning, NotFittedError, NumericalWarning
from .persistence import ModelFileError
from .version import __version__

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
