r"""The fit averaged over refits: ``n_fits``, one point estimate for a pooled posterior.

Where one held-out split chooses the smoothing (from 1,000 samples on),
``coef_`` depends on that split, the start and the random pairs by a large
share of its error: fits of the same data with other ``random_state`` differ
by 0.4 to 0.65 of the posterior variance (``benchmarks/README.md``,
"error_budget.py"). :mod:`bayes_prsn.pooling` pools the posteriors of such
refits; their mixture's mean is the average of the fits, so with ``coef_``
one of them the point estimate and the posterior disagreed (issue 15's
coherence: 0.19 to 0.44 posterior sd on count data).

``n_fits=k`` fits the data ``k`` times (this ``random_state`` first, the
others with the seeds of :func:`member_seeds`) and averages the fits:
``coef_`` and ``intercept_`` are the mean of the fits' training
coefficients, and a new sample's coefficients the mean of each fit's
(:func:`bayes_prsn.predict.predict_mean_theta`). The other
fits are kept as ``FittedState.members``; ``sample_posterior(refits="auto")``
then pools exactly their posteriors, so the pooled mean is ``coef_``.
``n_fits="auto"`` (:func:`auto_n_fits`) averages four fits where
``sample_posterior`` pooled three refits by default (count and 0/1 data with
one held-out split, up to 20,000 samples, and gaussian data of 5,000 to 20,000;
:data:`bayes_prsn.pooling.AUTO_REFITS`)
and one fit elsewhere. The attributes of the fit itself (``embedding_``,
``dictionary_``, ``covariate_weights_``, ``loss_history_``,
``validation_scores_``) are the first fit's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .state import FittedState

__all__ = ["auto_n_fits", "fit_members", "member_seeds"]


def auto_n_fits(state: FittedState) -> int:
    """``n_fits="auto"``: 1 + the refits that ``sample_posterior`` pools by default
    (:func:`bayes_prsn.pooling.one_split_refits`)."""
    from .pooling import one_split_refits

    return 1 + one_split_refits(state)


def member_seeds(random_state, count: int) -> list[int]:
    """The ``random_state`` of each averaged fit after the first."""
    from .pooling import refit_seeds

    if random_state is None:
        random_state = int(np.random.default_rng().integers(2**31 - 1))
    return refit_seeds(int(random_state), count)


def fit_members(estimator, state: FittedState) -> FittedState:
    """``state`` with the other fits of ``estimator.n_fits`` as its members (unchanged at 1)."""
    from .pooling import refit

    n_fits = auto_n_fits(state) if estimator.n_fits == "auto" else int(estimator.n_fits)
    if n_fits <= 1:
        return state
    seeds = member_seeds(estimator.random_state, n_fits - 1)
    members = tuple(refit(estimator, state, seed).fit_state_ for seed in seeds)
    return dataclasses.replace(state, members=members, member_seeds=tuple(seeds))
