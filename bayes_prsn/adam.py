"""Adam's update, written once for the optimisations numpyro's optimisers cannot run.

Two places need it outside numpyro's ``optim.Adam`` (which keeps one step
count for everything): the minibatch MAP, where every code row keeps its
own moments and its own count of updates (:mod:`bayes_prsn.minibatch`),
and the conditional MAP of a new sample's code at prediction time
(:mod:`bayes_prsn.predict`). The constants are numpyro's defaults.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["BETA1", "BETA2", "EPSILON", "adam_update"]

BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8


def adam_update(value, grad, m, v, count, step_size):
    """One Adam step: ``(new value, new m, new v)``.

    ``count`` is the number of updates including this one (the bias
    correction's exponent); it broadcasts against ``m`` (one count per row, or
    one for all).
    """
    m = BETA1 * m + (1 - BETA1) * grad
    v = BETA2 * v + (1 - BETA2) * grad**2
    m_hat = m / (1 - BETA1**count)
    v_hat = v / (1 - BETA2**count)
    return value - step_size * m_hat / (jnp.sqrt(v_hat) + EPSILON), m, v
