"""The probabilistic programs of bayes_prsn: joint log-densities, no inference.

Installed as :mod:`bayes_prsn.models` (never as a top-level ``models``).
"""

from .personalized import (
    FAMILIES,
    PRIORS,
    encode_covariates,
    encoder_input_scales,
    personalized_regression,
    personalized_regression_minibatch,
)

__all__ = [
    "FAMILIES",
    "PRIORS",
    "encode_covariates",
    "encoder_input_scales",
    "personalized_regression",
    "personalized_regression_minibatch",
]
