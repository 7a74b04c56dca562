r"""Posteriors pooled over refits: the share of the error one fit's posterior cannot see.

A fit's posterior is local to its MAP. The held-out split that chose the
smoothing, the start of the optimisation and the random pairs of distance
matching are fixed by ``random_state``, and the MAP depends on them: from
1,000 samples on, ``coef_`` varies between fits of the same data that
differ only in ``random_state`` by 0.4 to 0.65 of the posterior variance
(``benchmarks/README.md``, "error_budget.py"), and the intervals of one fit
cover less than they say by about that much.

``sample_posterior(refits=k)`` (:func:`pooled_posterior`; by default
``refits="auto"``, :func:`auto_refits`: 3 for count and binary data where
one held-out split chose the smoothing, up to 20,000 samples, and for gaussian
data of 5,000 to 20,000 samples, else 0) fits the same
data ``k`` more times with other random states (:func:`refit_seeds`), draws
each fit's posterior with the same back-end and settings, and pools the
draws in equal shares: a mixture of the fits' posteriors (Wilson and
Izmailov 2020, "Bayesian deep learning and a probabilistic perspective of
generalization", MultiSWAG; Eschenhagen et al. 2021, "Mixtures of Laplace
approximations for improved post-hoc uncertainty in deep learning"). Each
fit's chains become chains of the pooled ArviZ data, the estimator's own
fit first, so its draws are those of ``refits=0`` with the same
``random_state``. The pooled posterior's mean averages the fits and is usually the
more accurate than one of them; with ``refits="auto"`` the fits pooled are the
ones the estimator averaged into ``coef_`` (``n_fits``,
:mod:`bayes_prsn.averaging`), so that mean is ``coef_``. Refits beyond
those (or without them) are fresh fits, and the pooled mean then is not
``coef_``.

The convergence diagnostics are each fit's (the chains of different fits
sample different targets, so R-hat across them measures the fits'
disagreement, not the sampler's). Each refit's MAP and draws are kept
(:attr:`~bayes_prsn.state.PosteriorState.refits`), so that posterior
predictions for new samples draw from every fit's posterior in the same
shares (:func:`bayes_prsn.predict.predictive_draws`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import arviz_compat
from .fitting import MINIBATCH_ABOVE
from .state import FittedState, PosteriorState, published_attributes

__all__ = [
    "AUTO_REFITS",
    "AUTO_REFITS_GAUSSIAN_FROM",
    "AUTO_REFIT_FAMILIES",
    "AUTO_REFITS_MAX_SAMPLES",
    "SHARED_DRAWS_ABOVE",
    "auto_refits",
    "check_refits",
    "draws_per_fit",
    "member_estimator",
    "one_split_refits",
    "pooled_posterior",
    "refit",
    "refit_seeds",
]

#: Refits of ``refits="auto"`` (:func:`auto_refits`): 90% intervals of negative
#: binomial counts (2,000 samples, three seeds, Laplace) covered 0.908 / 0.957 /
#: 0.890 of the true coefficients pooled over 4 fits against 0.835 / 0.832 /
#: 0.837 from one; poisson at 1,000 samples 0.664 against 0.597, logistic 0.882
#: against 0.829 (``benchmarks/README.md``, "Pooling refits"). Each refit costs a
#: fit and a back-end run.
AUTO_REFITS = 3
#: The families that ``refits="auto"`` pools: those whose one-fit intervals
#: were too narrow wherever measured. Not the gaussian family below
#: :data:`AUTO_REFITS_GAUSSIAN_FROM` samples: there one fit's
#: intervals were right on some data and pooled ones too wide (NUTS, 1,000
#: samples, ``make_small_low_rank``, three seeds: 90% coverage 0.85-0.97 alone,
#: 0.90-0.98 pooled, 50% 0.50-0.59 and 0.58-0.67), and too narrow on others
#: (low_rank, p = 10: 0.79 alone, 0.85 pooled; 0.70 and 0.83 at 5,000 samples).
#: Not student_t (its intervals already over-cover) or gamma (not measured).
AUTO_REFIT_FAMILIES = ("bernoulli", "binomial", "poisson", "negative_binomial")
#: Gaussian fits are pooled from this many samples on (``make_small_low_rank``,
#: 20,000 samples, seeds 100-102, Laplace: 90% coverage 0.69 from one fit, 0.86
#: from four; low_rank, p = 10, 5,000 samples: 0.70 and 0.85). Where one fit was
#: right, four are too wide (``make_small_low_rank``, 5,000 samples: 0.92 and
#: 0.95; ``benchmarks/README.md``, "Gaussian fits pooled from 5,000 samples").
AUTO_REFITS_GAUSSIAN_FROM = 5_000
#: ``refits="auto"`` pools only fits of at most this many samples (the
#: full-batch fits, :data:`~bayes_prsn.fitting.MINIBATCH_ABOVE`): a minibatch fit
#: of 100,000 samples takes 22 to 40 s, four of them 94 to 105 s at p = 3 and
#: about four times 40 s at ``benchmarks/scale.py``'s p = 20, over its target of
#: two minutes. Gaussian data of 100,000 samples, ``n_fits=4``
#: (``make_small_low_rank``, seeds 100-102, Laplace): 90% coverage 0.93 against
#: 0.74 from one fit, 50% 0.57 against 0.36 (too wide on two data sets of three),
#: and ``coef_`` 14% less accurate on average (on one data set two of the four
#: fits chose a worse smoothing on their 2,000 validation samples).
AUTO_REFITS_MAX_SAMPLES = MINIBATCH_ABOVE
#: Above this many samples (the minibatch fits) a pooled posterior's default
#: draws are shared among its fits (:func:`draws_per_fit`): four fits' draws of
#: 100,000 samples at the default 1,000 each would need about 24 GB, more than
#: the default memory limit of a 24 GB machine; 250 each take one fit's.
SHARED_DRAWS_ABOVE = MINIBATCH_ABOVE


def one_split_refits(state: FittedState) -> int:
    """:data:`AUTO_REFITS` for a fit of one of :data:`AUTO_REFIT_FAMILIES` (or a
    gaussian fit of at least :data:`AUTO_REFITS_GAUSSIAN_FROM` samples) whose
    smoothing one held-out split chose (from
    :data:`~bayes_prsn.smoothing.CROSS_VALIDATE_BELOW` samples on), where
    ``coef_`` depends on the split by a large share of its error, with at most
    :data:`AUTO_REFITS_MAX_SAMPLES` samples; else 0. Below, every sample is
    held out once in K folds and refits hardly differ (low_rank, 200 samples:
    between-fit variance 0.000176, ``error_budget.py``); with ``noise_scale``
    given nothing is chosen.
    """
    report = state.validation_scores
    one_split = report is not None and report.get("folds") == 1
    gaussian = state.family == "gaussian" and state.n_samples >= AUTO_REFITS_GAUSSIAN_FROM
    family_pooled = state.family in AUTO_REFIT_FAMILIES or gaussian
    pooled = family_pooled and state.n_samples <= AUTO_REFITS_MAX_SAMPLES
    return AUTO_REFITS if one_split and pooled else 0


def draws_per_fit(state: FittedState, num_samples, default: int, fits: int):
    """Each pooled fit's draws: ``num_samples`` where given (each fit draws as many);
    by default (None) ``default`` for each fit, or, above :data:`SHARED_DRAWS_ABOVE`
    samples, ``default`` shared among the ``fits`` fits (rounded up), so that the
    pooled draws take one fit's memory."""
    if num_samples is not None or fits <= 1 or state.n_samples <= SHARED_DRAWS_ABOVE:
        return num_samples
    return -(-int(default) // int(fits))


def auto_refits(state: FittedState) -> int:
    """The refits of ``refits="auto"`` for the fit ``state``: its members, the fits
    averaged into ``coef_`` (``n_fits``, :mod:`bayes_prsn.averaging`), where it has
    any; else :func:`one_split_refits` (``n_fits=1`` on data that ``"auto"`` averages).
    """
    return len(state.members) if state.members else one_split_refits(state)


def check_refits(refits, state: FittedState) -> int:
    """``refits`` as an int (``"auto"``: :func:`auto_refits`); a clear error unless it
    is ``"auto"`` or a whole number >= 0."""
    if isinstance(refits, str) and refits == "auto":
        return auto_refits(state)
    if isinstance(refits, bool) or not isinstance(refits, int | np.integer) or refits < 0:
        raise ValueError(
            f"refits must be 'auto' or a whole number >= 0 (the fits pooled besides this "
            f"one); got {refits!r}."
        )
    return int(refits)


def refit_seeds(random_state: int, refits: int) -> list[int]:
    """The ``random_state`` of each refit, derived from the sampler's ``random_state``."""
    sequence = np.random.SeedSequence([int(random_state), 7919])
    return [int(value) for value in sequence.generate_state(refits) % (2**31 - 1)]


def _twin(estimator, random_state: int):
    """An unfitted copy of ``estimator`` for one fit of its data: ``random_state``, the
    covariates passed apart (as ``state`` holds them) and one fit, not an average."""
    from sklearn.base import clone

    return clone(estimator).set_params(
        random_state=int(random_state), covariate_columns=None, n_fits=1
    )


def refit(estimator, state: FittedState, random_state: int):
    """A fit of ``state``'s training data by a copy of ``estimator`` with ``random_state``.

    The data are the fitted samples as ``state`` holds them (predictors,
    response, covariates, exposure, trials and weights), in the same order,
    so the refit's samples are the estimator's sample for sample.
    """
    twin = _twin(estimator, random_state)
    data = state.data
    twin.fit(
        state.X,
        state.y,
        state.covariates_frame,
        exposure=np.exp(data["eta_offset"]) if "eta_offset" in data else None,
        trials=data.get("trials"),
        sample_weight=data.get("sample_weight"),
    )
    fitted = twin.fit_state_
    if fitted.n_samples != state.n_samples or not np.array_equal(fitted.X, state.X):
        raise RuntimeError(
            "a refit's samples do not match the estimator's; please report this as a bug."
        )
    return twin


def pooled_posterior(
    estimator, state: FittedState, own: PosteriorState, *, refits: int, random_state: int, **sample
) -> PosteriorState:
    """``own`` (the estimator's posterior) pooled with those of ``refits`` refits.

    ``sample`` holds ``sample_posterior``'s arguments (method, draw counts,
    options), given to every refit's ``sample_posterior`` with a seed of its own.
    """
    posteriors, params = [own], []
    # The fits averaged into coef_ first (their seeds), then fresh refits.
    members = state.members[:refits]
    seeds = [*state.member_seeds[:refits], *refit_seeds(random_state, refits - len(members))]
    for index, seed in enumerate(seeds):
        if index < len(members):
            twin = member_estimator(estimator, members[index], seed)
        else:
            twin = refit(estimator, state, seed)
        twin.sample_posterior(random_state=seed + index + 1, refits=0, **sample)
        posteriors.append(twin.posterior_state_)
        params.append(twin.fit_state_.params)
    return pool(posteriors, params, seeds)


def member_estimator(estimator, member: FittedState, seed: int):
    """A copy of ``estimator`` fitted to ``member`` (one of the fits averaged into ``coef_``)."""
    twin = _twin(estimator, seed)
    twin.__dict__.update(published_attributes(member))
    return twin


def _noise_draws(posterior: PosteriorState) -> np.ndarray | None:
    """Each draw's noise scale (chain, draw) in the units of ``y``; None without one."""
    if posterior.noise_draws is not None:
        return np.asarray(posterior.noise_draws, dtype=float)
    if posterior.noise_scale is None:
        return None
    shape = tuple(arviz_compat.group(posterior.idata, "posterior")["coef"].shape[:2])
    return np.full(shape, float(posterior.noise_scale))


def _diagnostics(posteriors: list[PosteriorState]) -> dict:
    """The pooled report: each fit's, with the worst of them and the totals on top."""
    reports = [dict(p.diagnostics) for p in posteriors]
    pooled = {
        "method": reports[0]["method"],
        "seconds": float(sum(r.get("seconds", 0.0) for r in reports)),
        "num_draws": int(sum(r.get("num_draws", 0) for r in reports)),
        "fits": len(reports),
    }
    if "max_rhat" in reports[0]:
        pooled.update(
            max_rhat=float(np.nanmax([r["max_rhat"] for r in reports])),
            min_ess_bulk=float(np.nanmin([r["min_ess_bulk"] for r in reports])),
            min_ess_tail=float(np.nanmin([r["min_ess_tail"] for r in reports])),
            divergences=int(sum(r["divergences"] for r in reports)),
            converged=all(r.get("converged", True) for r in reports),
        )
    pooled["per_fit"] = reports
    return pooled


def pool(posteriors: list[PosteriorState], params: list, seeds: list[int]) -> PosteriorState:
    """The mixture of ``posteriors`` (the estimator's first) in equal shares.

    ``params`` holds the refits' MAPs (:class:`~bayes_prsn.state.MapParams`), in
    the order of ``posteriors[1:]``.
    """
    own = posteriors[0]
    idata = arviz_compat.concat_chains([p.idata for p in posteriors])
    arviz_compat.update_attrs(
        idata, {"posterior_fits": len(posteriors), "refit_random_states": list(seeds)}
    )
    noise = [_noise_draws(p) for p in posteriors]
    scales = dict(own.scales or {})
    scales["refits"] = [p.scales for p in posteriors[1:]]
    # The refits' draws without their ArviZ data (the pooled data hold them).
    refits = tuple(
        (fit, dataclasses.replace(p, idata=None, noise_draws=None))
        for fit, p in zip(params, posteriors[1:], strict=True)
    )
    return dataclasses.replace(
        own,
        idata=idata,
        diagnostics=_diagnostics(posteriors),
        noise_draws=None if noise[0] is None else np.concatenate(noise, axis=0),
        scales=scales,
        refits=refits,
    )
