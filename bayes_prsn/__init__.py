"""bayes_prsn: Bayesian low-rank personalized regression on NumPyro/JAX.

One regression model per sample, tied together through the samples'
covariates; see :class:`PersonalizedRegression`.
"""

__version__ = "0.1.0"

from .estimator import NotFittedError, PersonalizedClassifier, PersonalizedRegression
from .persistence import ModelFileError, load
from .svi import ConvergenceWarning, NumericalWarning

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
