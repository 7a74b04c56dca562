r"""Likelihood families: everything the package knows about one family, in one place.

A family is its likelihood of ``y`` given the linear predictor
:math:`\eta = x^\top \theta` (a NumPyro distribution, for the model), its
mean function (the inverse link), its log-likelihood, its held-out
predictive loss, draws of replicated responses and the check that a
response is valid for it. Adding a family means adding one class here and
naming it in :data:`FAMILY`.

The linear predictor is clipped where the inverse link would overflow:
at :data:`LOG_RATE_BOUND` before an exponential (poisson rates, and the
population GLM's Newton steps) and at :data:`LOGIT_BOUND` in the logistic
function, whose probabilities are exactly 0 or 1 in float64 well before it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

__all__ = [
    "FAMILIES",
    "FAMILY",
    "LOG_RATE_BOUND",
    "LOGIT_BOUND",
    "Gaussian",
    "Bernoulli",
    "Poisson",
    "family",
]

#: Bound on the linear predictor before ``exp`` (poisson rates; the population GLM).
LOG_RATE_BOUND = 30.0
#: Bound on the linear predictor in the logistic function (guards ``exp`` from overflow).
LOGIT_BOUND = 50.0


class Gaussian:
    """Identity link, normal noise with scale :math:`\\sigma` (the ``noise_scale``)."""

    name = "gaussian"
    has_noise_scale = True

    @staticmethod
    def likelihood(eta, noise_scale):
        return dist.Normal(eta, noise_scale)

    @staticmethod
    def mean(eta: np.ndarray) -> np.ndarray:
        return eta

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    @staticmethod
    def log_likelihood(eta, y, noise_scale) -> np.ndarray:
        return -0.5 * ((y - eta) / noise_scale) ** 2 - np.log(noise_scale * np.sqrt(2 * np.pi))

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Squared error of every sample."""
        return (y - eta) ** 2

    @classmethod
    def predictive_loss(cls, eta: np.ndarray, y: np.ndarray) -> float:
        """Mean squared error."""
        return float(np.mean(cls.pointwise_loss(eta, y)))

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator) -> np.ndarray:
        return eta + noise_scale * rng.standard_normal(eta.shape)

    @staticmethod
    def check_response(values: np.ndarray) -> None:
        pass


class Bernoulli:
    """Logit link, 0/1 responses."""

    name = "bernoulli"
    has_noise_scale = False

    @staticmethod
    def likelihood(eta, noise_scale):
        return dist.Bernoulli(logits=eta)

    @staticmethod
    def mean(eta: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(eta, -LOGIT_BOUND, LOGIT_BOUND)))

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu)

    @staticmethod
    def log_likelihood(eta, y, noise_scale) -> np.ndarray:
        return y * eta - np.logaddexp(0.0, eta)

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-loss of every sample."""
        return np.logaddexp(0.0, eta) - y * eta

    @classmethod
    def predictive_loss(cls, eta: np.ndarray, y: np.ndarray) -> float:
        """Mean log-loss."""
        return float(np.mean(cls.pointwise_loss(eta, y)))

    @classmethod
    def replicate(cls, eta, noise_scale, rng: np.random.Generator) -> np.ndarray:
        return (rng.random(eta.shape) < cls.mean(eta)).astype(np.int64)

    @staticmethod
    def check_response(values: np.ndarray) -> None:
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("y must hold only 0 and 1 for the bernoulli family.")
        if np.unique(values).size < 2:
            raise ValueError("y holds a single class; a classifier needs both 0 and 1.")


class Poisson:
    """Log link, counts."""

    name = "poisson"
    has_noise_scale = False

    @staticmethod
    def likelihood(eta, noise_scale):
        return dist.Poisson(jnp.exp(jnp.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND)))

    @staticmethod
    def mean(eta: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND))

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return mu

    @classmethod
    def log_likelihood(cls, eta, y, noise_scale) -> np.ndarray:
        from scipy.special import gammaln

        mu = cls.mean(eta)
        return y * np.log(mu) - mu - gammaln(y + 1.0)

    @classmethod
    def pointwise_loss(cls, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Poisson deviance of every sample."""
        mu = cls.mean(eta)
        ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2.0 * (ratio - (y - mu))

    @classmethod
    def predictive_loss(cls, eta: np.ndarray, y: np.ndarray) -> float:
        """Mean Poisson deviance."""
        return float(np.mean(cls.pointwise_loss(eta, y)))

    @classmethod
    def replicate(cls, eta, noise_scale, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(np.minimum(cls.mean(eta), 1e12))

    @staticmethod
    def check_response(values: np.ndarray) -> None:
        if np.any(values < 0) or np.any(values != np.round(values)):
            raise ValueError("y must hold non-negative integer counts for the poisson family.")


#: Every family by name.
FAMILY = {f.name: f for f in (Gaussian, Bernoulli, Poisson)}
#: Names of the families, as accepted by ``family=``.
FAMILIES = tuple(FAMILY)


def family(name: str):
    """The family called ``name``; a clear error for an unknown one."""
    try:
        return FAMILY[name]
    except (KeyError, TypeError):
        raise ValueError(f"family must be one of {FAMILIES}; got {name!r}.") from None
