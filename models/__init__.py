"""The probabilistic programs of bayes_prsn: joint log-densities, no inference.

Installed as :mod:`bayes_prsn.models` (never as a top-level ``models``).
``personalized`` is the joint log-density, ``families`` the likelihood
families, ``encoder`` the covariate encoder and its sites, and ``shared``
the posterior's target (the shared parts of a fitted model as unknowns).
"""

from .encoder import (
    CODE_SITES,
    ENCODER_SCALE,
    ENCODER_SITES,
    code_site,
    codes_from_sites,
    encode_covariates,
    encoder_input_scales,
    fitted_encoder_weights,
)
from .families import FAMILIES, FAMILY, LOG_RATE_BOUND, LOGIT_BOUND, family
from .personalized import (
    PRIORS,
    code_log_prior,
    coef_log_prior,
    distance_potential,
    pair_potential,
    personalized_regression,
    personalized_regression_minibatch,
)
from .shared import SHARED_SITES, linearised_coefficients, linearised_glm, shared_coefficients

__all__ = [
    "CODE_SITES",
    "ENCODER_SCALE",
    "ENCODER_SITES",
    "FAMILIES",
    "FAMILY",
    "LOG_RATE_BOUND",
    "LOGIT_BOUND",
    "PRIORS",
    "SHARED_SITES",
    "code_site",
    "code_log_prior",
    "codes_from_sites",
    "coef_log_prior",
    "distance_potential",
    "encode_covariates",
    "encoder_input_scales",
    "family",
    "fitted_encoder_weights",
    "pair_potential",
    "personalized_regression",
    "personalized_regression_minibatch",
    "linearised_coefficients",
    "linearised_glm",
    "shared_coefficients",
]
