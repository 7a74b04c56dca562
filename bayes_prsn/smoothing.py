"""How much to smooth, chosen on held-out samples: the noise scale and the encoder's smoothness.

A random ``validation_fraction`` of the samples is left out of the
likelihood; their codes follow from the covariate encoder and the
distance-matching potential alone, as for new samples. Each candidate is
scored by the held-out predictive loss of its family. First the noise scale
is chosen from :data:`NOISE_SCALE_GRID` (bernoulli and poisson fits have one
candidate, the full likelihood; see :data:`LIKELIHOOD_SCALE_GRID`) with the
encoder's input-weight prior scale at ``ENCODER_SCALE``; then, at the chosen
noise scale, the other :data:`ENCODER_SCALE_GRID` values are tried (a
smoother or a steeper encoder). The population GLM (fitted on the same
training part) is scored too. When no candidate beats it, the fit uses a much
stronger smoothing (:data:`FALLBACK_NOISE_SCALE`,
:data:`FALLBACK_LIKELIHOOD_SCALE`), which keeps every model near the
population's.

:func:`choose_smoothing` returns a :class:`Smoothing`: the chosen settings
(in the model's units), the chosen candidate's MAP to start the final fit
from, the report published as ``validation_scores_``, and the noise scale
the posterior samples at.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .fitting import run_map
from .inputs import FitConfig
from .models import ENCODER_SCALE, codes_from_sites, family
from .population import fit_population_glm
from .problem import Problem, build_problem, population_penalty

__all__ = [
    "NOISE_SCALE_GRID",
    "LIKELIHOOD_SCALE_GRID",
    "ENCODER_SCALE_GRID",
    "FALLBACK_NOISE_SCALE",
    "FALLBACK_LIKELIHOOD_SCALE",
    "VALIDATION_SAMPLES",
    "Smoothing",
    "choose_smoothing",
    "posterior_noise_scale",
]

#: Noise scales (in units of the standardised response) tried by ``noise_scale="auto"``.
NOISE_SCALE_GRID = (0.25, 0.5, 1.0, 2.0)
#: Likelihood powers tried for the bernoulli and poisson families. Only the full
#: likelihood: held-out log-loss of plug-in predictions favours powers below 1,
#: which attenuate every coefficient (logistic simulator: 0.27 with the power
#: chosen from (1, 0.5, 0.25, 0.125) against 0.14 at 1). A weaker power is used
#: only as the fallback, when the population GLM predicts better.
LIKELIHOOD_SCALE_GRID = (1.0,)
#: Largest prior scale of the covariate encoder's input weights (the units'
#: scales spread from 1 up to it; see ``models.encoder_input_scales``) tried at
#: the chosen noise scale, after ``ENCODER_SCALE`` (5): 1 keeps every unit
#: smooth (diabetes 5-fold MSE 0.500 against 0.509 with 5 alone), 100 gives a
#: few units steep enough for a jump (toy: 0.0037 against 0.0079).
ENCODER_SCALE_GRID = (1.0, 5.0, 100.0)
#: Used when the population GLM beats every candidate on the held-out samples:
#: noise scale (gaussian, standardised units) and likelihood power (other families).
FALLBACK_NOISE_SCALE = 4.0
FALLBACK_LIKELIHOOD_SCALE = 1.0 / 16.0
#: Minibatch fits choose their smoothing on a random subset of this many samples
#: (5,000 until the encoder's smoothness joined the choice: with its two more
#: validation fits the N = 1e5 fit took 105 s instead of 79 s).
VALIDATION_SAMPLES = 2_000


class Smoothing(NamedTuple):
    """The chosen smoothing.

    Attributes
    ----------
    settings : dict
        ``noise_scale`` (model units; None for bernoulli and poisson),
        ``likelihood_scale`` and ``encoder_scale`` of the final fit.
    start : dict or None
        The chosen candidate's MAP, where the final fit starts (None when
        nothing was fitted, or for the fallback).
    report : dict or None
        ``candidates``, their held-out ``scores``, the ``population`` GLM's
        score and the index ``chosen`` (model units; the fallback, when
        chosen, is the last candidate and has no score). None when nothing
        was compared.
    posterior_noise_scale : float or None
        Gaussian noise scale (model units) of the posterior's likelihood:
        the held-out root mean squared error of the chosen smoothing, or the
        chosen noise scale when none was measured.
    """

    settings: dict
    start: dict | None
    report: dict | None
    posterior_noise_scale: float | None


def posterior_noise_scale(settings: dict, report: dict | None) -> float | None:
    """The posterior's gaussian noise scale (see :class:`Smoothing`)."""
    if settings.get("noise_scale") is None:
        return None
    if report is None:
        return float(settings["noise_scale"])
    chosen = report["chosen"]
    # The fallback has no score of its own: its fit is population-like.
    score = report["scores"][chosen] if chosen < len(report["scores"]) else report["population"]
    return float(np.sqrt(score))


def _result(settings: dict, start, report) -> Smoothing:
    return Smoothing(settings, start, report, posterior_noise_scale(settings, report))


def choose_smoothing(problem: Problem, config: FitConfig, *, on_subset: bool) -> Smoothing:
    """The smoothing of the final fit; ``on_subset`` chooses it on a random subset of samples."""
    if on_subset:
        return _choose_on_subset(problem, config)
    return _choose(problem, config)


def _candidates(problem: Problem, config: FitConfig):
    """The first-stage candidates, or the settings to use when nothing is compared."""
    fixed = {"likelihood_scale": 1.0, "encoder_scale": ENCODER_SCALE}
    if family(config.family).has_noise_scale:
        if config.noise_scale != "auto":
            return [], dict(
                fixed, noise_scale=problem.scaling.noise_to_internal(config.noise_scale)
            )
        return [dict(fixed, noise_scale=s) for s in NOISE_SCALE_GRID], None
    return [dict(fixed, noise_scale=None, likelihood_scale=w) for w in LIKELIHOOD_SCALE_GRID], None


def _fallback(config: FitConfig) -> dict:
    fixed = {"likelihood_scale": 1.0, "encoder_scale": ENCODER_SCALE}
    if family(config.family).has_noise_scale:
        return dict(fixed, noise_scale=FALLBACK_NOISE_SCALE)
    return dict(fixed, noise_scale=None, likelihood_scale=FALLBACK_LIKELIHOOD_SCALE)


def _choose(problem: Problem, config: FitConfig) -> Smoothing:
    """The smoothing chosen on held-out samples of the whole problem (full-batch fits)."""
    candidates, given = _candidates(problem, config)
    if given is not None:
        return _result(given, None, None)
    data = problem.data
    n_samples = data["X"].shape[0]
    held_out = problem.rng.random(n_samples) < config.validation_fraction
    if config.validation_fraction == 0 or held_out.sum() < 10 or (~held_out).sum() < 10:
        return _result(candidates[len(candidates) // 2], None, None)
    X, y = data["X"], data["y"]
    loss = family(config.family).predictive_loss
    n_total = len(candidates) + (len(ENCODER_SCALE_GRID) - 1 if config.encoder_width else 0)
    scores, fits = [], []

    def score(candidate):
        result = run_map(
            problem.key,
            data,
            dict(problem.settings, **candidate),
            problem.init,
            config,
            warn=False,
            mask=~held_out,
            description=f"choosing smoothing {len(scores) + 1}/{n_total}",
        )
        params = result.params
        shared = params["offset"] if config.offset else 0.0
        codes = codes_from_sites(params, data.get("covariate_features"), candidate["encoder_scale"])
        theta = shared + codes @ params["dictionary"]
        eta = np.sum(X[held_out] * theta[held_out], axis=1)
        scores.append(loss(eta, y[held_out]))
        fits.append(params)

    for candidate in candidates:
        score(candidate)
    if config.encoder_width:
        chosen = candidates[int(np.argmin(scores))]
        for scale in ENCODER_SCALE_GRID:
            if scale != ENCODER_SCALE:
                candidates.append(dict(chosen, encoder_scale=scale))
                score(candidates[-1])
    train = ~held_out
    population_train = fit_population_glm(
        X[train],
        y[train],
        config.family,
        penalty=population_penalty(X.shape[1], config.fit_intercept),
    )
    population_score = loss(X[held_out] @ population_train, y[held_out])
    best = int(np.argmin(scores))
    start = fits[best]
    if scores[best] >= population_score:
        # No candidate beats one model for everyone: smooth so strongly
        # that every sample's model stays at the population's.
        candidates = [*candidates, _fallback(config)]
        best, start = len(candidates) - 1, None
    report = {
        "candidates": candidates,
        "scores": scores,
        "population": population_score,
        "chosen": best,
    }
    return _result(candidates[best], start, report)


def _choose_on_subset(problem: Problem, config: FitConfig) -> Smoothing:
    """The smoothing chosen on a random subset of :data:`VALIDATION_SAMPLES` samples.

    Used with minibatch fits: the validation fits then cost what a full-batch
    fit of that many samples costs, whatever the data's size. The choice is
    made in the subset's own units and converted to the whole problem's.
    """
    n_samples = problem.X.shape[0]
    size = min(n_samples, VALIDATION_SAMPLES)
    index = np.sort(problem.rng.choice(n_samples, size, replace=False))
    sub_config = dataclasses.replace(config, batch_size=None)
    sub = build_problem(
        problem.X[index], problem.y[index], problem.covariates_frame.iloc[index], sub_config
    )
    chosen = _choose(sub, sub_config)
    settings, report = chosen.settings, chosen.report
    if family(config.family).has_noise_scale:
        # From the subset's model units to the whole problem's.
        units = problem.scaling
        settings = dict(
            settings, noise_scale=units.noise_from(sub.scaling, settings["noise_scale"])
        )
        if report is not None:
            report = dict(
                report,
                candidates=[
                    dict(c, noise_scale=units.noise_from(sub.scaling, c["noise_scale"]))
                    for c in report["candidates"]
                ],
                scores=[units.squared_error_from(sub.scaling, v) for v in report["scores"]],
                population=units.squared_error_from(sub.scaling, report["population"]),
            )
    return _result(settings, None, report)
