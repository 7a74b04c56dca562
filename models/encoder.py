r"""The covariate encoder :math:`g` and how its sites map to fitted weights and codes.

:math:`g(u) = \tanh(u W_1 + b_1) W_2` gives every code its prior mean. The
model writes :math:`W_1` non-centred: the site ``"encoder_in"`` holds
:math:`W_1` divided by each hidden unit's prior scale (see
:func:`encoder_input_scales`), and the codes are the encoder's output plus
the site ``"code_residual"``. The functions here read fitted values of those
sites back as the weights :math:`g` uses and as the codes :math:`Z`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = [
    "ENCODER_SCALE",
    "ENCODER_SITES",
    "encode_covariates",
    "encoder_input_scales",
    "fitted_encoder_weights",
    "codes_from_sites",
    "CODE_SITES",
    "code_site",
]

#: Default largest prior scale of the encoder's input weights.
ENCODER_SCALE = 5.0
#: Sample sites of the covariate encoder, in the order :func:`encode_covariates` takes them.
ENCODER_SITES = ("encoder_in", "encoder_bias", "encoder_out")


#: The sites that can hold each sample's own code (see :func:`code_site`).
CODE_SITES = ("embedding", "code_residual")


def code_site(encoder_width: int) -> str:
    """The site that holds each sample's own code: its residual from g, or the code itself."""
    return CODE_SITES[1] if encoder_width else CODE_SITES[0]


def encode_covariates(features, encoder_in, encoder_bias, encoder_out):
    r"""The covariate encoder :math:`g(u) = \tanh(u W_1 + b_1) W_2`, the codes' prior mean."""
    return jnp.tanh(features @ encoder_in + encoder_bias) @ encoder_out


def encoder_input_scales(encoder_scale, width: int):
    """Prior scale of each hidden unit's input weights: from 1 up to ``encoder_scale``.

    Spread geometrically over the units, so the encoder has smooth units for
    trends and steep ones for jumps (all 1 when ``encoder_scale`` is 1).
    """
    return jnp.exp(jnp.linspace(0.0, jnp.log(encoder_scale), width))


def fitted_encoder_weights(params: dict, encoder_scale: float) -> tuple:
    """(W_1, b_1, W_2) from fitted site values (the ``encoder_in`` site holds W_1 / s_W)."""
    w_raw, bias, out = (params[name] for name in ENCODER_SITES)
    scales = np.asarray(encoder_input_scales(encoder_scale, np.shape(w_raw)[1]))
    return scales * np.asarray(w_raw), bias, out


def codes_from_sites(params: dict, covariate_features, encoder_scale: float) -> np.ndarray:
    """The codes Z from fitted site values: the encoder's output plus the residual, when encoded."""
    if "code_residual" not in params:
        return np.asarray(params["embedding"], dtype=float)
    weights = fitted_encoder_weights(params, encoder_scale)
    mean = encode_covariates(covariate_features, *weights)
    return np.asarray(mean + params["code_residual"], dtype=float)
