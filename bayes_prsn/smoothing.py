"""How much to smooth, chosen on held-out samples: the noise scale and the encoder's smoothness.

Held-out samples are left out of the likelihood; their codes follow from
the covariate encoder and the distance-matching potential alone, as for new
samples, and every validation fit starts from the population GLM of its own
training part (:meth:`_Scorer.start`), so no held-out response reaches it.
Below :data:`CROSS_VALIDATE_BELOW` samples every sample is held out once, in
``round(1 / validation_fraction)`` folds; above, one random
``validation_fraction`` is (:func:`held_out_masks`). Each candidate is
scored by the held-out predictive loss of its family, sample by sample.
First the noise scale is chosen from :data:`NOISE_SCALE_GRID` (the gamma
family's shape from its grid; bernoulli, poisson, negative_binomial and
binomial fits, which have neither, have one candidate, the full likelihood
with a flat psi, see :data:`LIKELIHOOD_SCALE_GRID` and
:data:`PRIOR_SCALE_GRID`) with the encoder's input-weight prior scale at
``ENCODER_SCALE``; then, at the chosen noise scale, the other
:data:`ENCODER_SCALE_GRID` values are tried (a smoother or a steeper
encoder). With K folds each choice takes the smoothest candidate within
one standard error of the best (:func:`one_standard_error`); with one split
the best. The population GLM (fitted on the same training part) is scored
too, and it wins unless the chosen per-sample candidate beats it by more
than one standard error (before that, with K folds and ``prior_scale="auto"``,
those four families try the narrower psi scales of :data:`PRIOR_SCALE_GRID`
the same way; a candidate of those only has to beat it,
:data:`RESCUED_MARGIN`). With one split, a comparison that favours the population GLM
is checked on the other folds of a K-fold partition first
(:func:`confirmation_masks`: the chosen candidate refitted from the
problem's start on each; one split's comparison is noisy, and it threw away
per-sample models that were 2 to 5 times more accurate). If the population
GLM still wins, a much stronger smoothing (:data:`FALLBACK_NOISE_SCALE` or
:data:`FALLBACK_LIKELIHOOD_SCALE`) is scored on the same held-out samples
(:func:`_smoothed_fallback`): if it beats the population GLM by more than one
standard error its fit is the model (weak heterogeneity), else every
sample's model is the population GLM
(:func:`bayes_prsn.fitting.population_sites`; without the shared offset the
strongly smoothed fit, which keeps every model near it, unchecked).

:func:`choose_smoothing` returns a :class:`Smoothing`: the chosen settings
(in the model's units), the chosen candidate's MAP to start the final fit
from, the report published as ``validation_scores_``, and the noise scale
the posterior samples at.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .fitting import fit_threads, run_map
from .inputs import FitConfig
from .models import ENCODER_SCALE, codes_from_sites, family
from .parallel import run_in_threads
from .population import fit_population_glm
from .problem import FLAT_PRIOR_SCALE, Problem, build_problem, population_penalty
from .sample_inputs import MODEL_ARRAYS

__all__ = [
    "NOISE_SCALE_GRID",
    "LIKELIHOOD_SCALE_GRID",
    "PRIOR_SCALE_GRID",
    "RESCUED_MARGIN",
    "ENCODER_SCALE_GRID",
    "FALLBACK_NOISE_SCALE",
    "FALLBACK_LIKELIHOOD_SCALE",
    "VALIDATION_SAMPLES",
    "WARM_START_MIN_STEPS",
    "Smoothing",
    "CROSS_VALIDATE_BELOW",
    "choose_smoothing",
    "confirmation_masks",
    "CONFIRM_HELD_OUT_BELOW",
    "held_out_masks",
    "is_fallback",
    "one_standard_error",
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
#: Scales of psi (the prior on each sample's deviation from the shared model, in
#: the model's units: standardised predictors, the linear predictor's scale)
#: of ``prior_scale="auto"`` for the families with neither a noise scale nor a
#: dispersion grid (bernoulli, poisson, negative_binomial, binomial). The first,
#: flat, is the fit's; below :data:`CROSS_VALIDATE_BELOW` samples, where it loses
#: to the population model, the others are tried (one-standard-error rule, then
#: the encoder's smoothness at the choice) before falling back to it. A full
#: likelihood is the only other weight in the balance, and a flat psi lets every
#: per-sample model follow its own counts: Tokyo mortality (262 municipalities,
#: Poisson with the expected deaths as exposure, 5 folds of ``benchmarks/tokyo.py``)
#: fell back on every fold (held-out deviance 425.0, the GLM's), 407.1 with this (GWR
#: 415.9; 413.3 with the validation fits started from their own training part's GLM and
#: :data:`RESCUED_MARGIN`). Tried on every fit instead, held-out predictions favoured
#: psi 1 where the flat psi already beat the population model, while the coefficients
#: got worse (make_poisson, N = 1,000, seeds 101 and 102: theta-MSE 0.00518 and 0.01135
#: against 0.00443 and 0.00988 flat; N = 800, seed 14: 0.0133 against 0.0070;
#: make_logistic, N = 500, seed 12: 0.498 against 0.313).
#: Families with a noise scale or a dispersion grid keep psi flat
#: (:data:`~bayes_prsn.problem.FLAT_PRIOR_SCALE`): their grid already sets how far
#: each model moves.
PRIOR_SCALE_GRID = (FLAT_PRIOR_SCALE, 1.0, 0.1)
#: Standard errors by which a candidate of the narrower psi scales must beat the
#: population GLM on the folds (one for every other candidate): it only has to be
#: better. Such a candidate stays close to the population model, so choosing it on
#: data without heterogeneity costs little, while falling back throws away what it
#: found. With the validation fits started from their own training part's GLM (no
#: held-out response in the start), one standard error sent Tokyo mortality's
#: fifth fold back to the GLM (held-out deviance 80.3 against 68.8 personalised;
#: 5 folds 423.7 against 413.3, GWR 415.9): ``benchmarks/README.md``,
#: "Held-out responses reach the validation fits".
RESCUED_MARGIN = 0.0
#: Largest prior scale of the covariate encoder's input weights (the units'
#: scales spread from 1 up to it; see ``models.encoder_input_scales``) tried at
#: the chosen noise scale, after ``ENCODER_SCALE`` (5): 1 keeps every unit
#: smooth (diabetes 5-fold MSE 0.500 against 0.509 with 5 alone), 100 gives a
#: few units steep enough for a jump (toy: 0.0037 against 0.0079).
ENCODER_SCALE_GRID = (1.0, 5.0, 100.0)
#: Used when the population GLM wins the held-out comparison, for the fit that
#: keeps the covariate metric (its coefficients are then the population's) or,
#: without the shared offset, as the fit: noise scale (gaussian, standardised
#: units) and likelihood power (other families).
FALLBACK_NOISE_SCALE = 4.0
FALLBACK_LIKELIHOOD_SCALE = 1.0 / 16.0
#: Fewest SVI steps of a fit that starts from a neighbouring fit's MAP instead of
#: the problem's start (the SVI default is 500): a noise-scale candidate after
#: the first, started from the previous candidate's MAP on the same fold, and
#: the final fit, started from the chosen candidate's MAP. The stopping rule
#: then ends such a fit after 300 to 400 steps instead of 600. low_rank,
#: N = 2,000, seeds 100-108: a fit 3.1-3.3 s instead of 4.6-6.7 s, theta-MSE
#: 0.00366 against 0.00345 on average (per seed up and down by the amount that
#: a 1e-6 perturbation of the data moves it); toy, N = 1,000, seeds 100-103:
#: the same theta-MSE, 3.2-4.2 s instead of 3.9-6.7 s. The encoder-smoothness
#: candidates start afresh: started from the chosen noise scale's MAP, a steep
#: encoder unit had too few steps to form (low_rank seed 107: 0.0075 against
#: 0.0013).
WARM_START_MIN_STEPS = 100
#: Below this many samples the smoothing is chosen by K-fold cross-validation
#: (every sample held out once) instead of one split: a 20% split of a few
#: hundred samples is too noisy a choice. Georgia (mgwr's set-up, 127
#: training counties per fold of ``benchmarks/peers.py``): test MSE 0.526
#: with one split and the best candidate, 0.417 with K folds and the
#: one-standard-error rule (least squares 0.495, GWR 0.433).
CROSS_VALIDATE_BELOW = 1_000
#: With one split holding out fewer samples than this (fewer than about 5,000
#: samples at the default ``validation_fraction``), a comparison that favours
#: the population GLM is checked on the other folds of a K-fold partition
#: (:func:`confirmation_masks`) before the per-sample models are discarded.
#: On 400 held-out counts the paired comparison is noisy: make_poisson and
#: make_negative_binomial, 2,000 samples, 27 fits over data seeds and
#: random states, fell back 6 times, 3 of them discarding per-sample models
#: 2.4 to 4.4 times more accurate than the population GLM
#: (``benchmarks/fallback.py``); with the check those 3 keep them, and
#: make_null keeps the population model (4 of 4 fits). The check costs four
#: more validation fits, only in the fits whose split favours the population
#: model (N = 1,000 to 2,000: about 1.2 to 1.5 s); above this many held-out
#: samples one split's comparison is less noisy and those fits cost more.
CONFIRM_HELD_OUT_BELOW = 1_000
#: Fewest held-out (and training) samples of a validation fit.
MIN_HELD_OUT = 10
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
        ``candidates``, their mean held-out ``scores``, the ``population``
        GLM's, the index ``chosen`` (model units; the fallback to the
        population model, when chosen, is the last candidate and has no
        score), the number of ``folds`` and of ``held_out`` scores; where
        the per-sample candidates lost, ``smoothed_fallback`` (the strongly
        smoothed fit's held-out ``score`` against the ``population``'s and
        whether it was ``kept``, :func:`_smoothed_fallback`). None when
        nothing was compared.
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
    if report is None or "df" in settings:
        # student_t (the one family with ``df``) scores held-out samples by absolute error.
        return float(settings["noise_scale"])
    # The fallback has no score of its own: its fit is the population's.
    score = report["population"] if is_fallback(report) else report["scores"][report["chosen"]]
    return float(np.sqrt(score))


def _result(settings: dict, start, report) -> Smoothing:
    return Smoothing(settings, start, report, posterior_noise_scale(settings, report))


def choose_smoothing(problem: Problem, config: FitConfig, *, on_subset: bool) -> Smoothing:
    """The smoothing of the final fit; ``on_subset`` chooses it on a random subset of samples."""
    if on_subset:
        return _choose_on_subset(problem, config)
    return _choose(problem, config)


def _candidates(problem: Problem, config: FitConfig):
    """``(first, rescue, given)``: the first-stage candidates, those tried only where the
    choice among ``first`` loses to the population model (the narrower psi scales, see
    :data:`PRIOR_SCALE_GRID`), or the settings to use when nothing is compared."""
    fixed = {"likelihood_scale": 1.0, "encoder_scale": ENCODER_SCALE}
    if family(config.family).has_noise_scale:
        if config.noise_scale != "auto":
            noise = problem.scaling.noise_to_internal(config.noise_scale)
            return [], [], dict(fixed, noise_scale=noise)
        return [dict(fixed, noise_scale=s) for s in NOISE_SCALE_GRID], [], None
    if family(config.family).grid is not None:
        site, values = family(config.family).grid
        return [dict(fixed, noise_scale=None, **{site: v}) for v in values], [], None
    if config.prior_scale == "auto" and len(problem.X) < CROSS_VALIDATE_BELOW:
        flat, *narrower = (dict(fixed, noise_scale=None, prior_scale=s) for s in PRIOR_SCALE_GRID)
        return [flat], narrower, None
    likelihood = [dict(fixed, noise_scale=None, likelihood_scale=w) for w in LIKELIHOOD_SCALE_GRID]
    return likelihood, [], None


def _fallback(config: FitConfig) -> dict:
    fixed = {"likelihood_scale": 1.0, "encoder_scale": ENCODER_SCALE}
    if family(config.family).has_noise_scale:
        return dict(fixed, noise_scale=FALLBACK_NOISE_SCALE)
    if family(config.family).grid is not None:
        # The smoothest candidate (its coefficients are the population's anyway).
        site, values = family(config.family).grid
        return dict(fixed, noise_scale=None, **{site: min(values)})
    return dict(fixed, noise_scale=None, likelihood_scale=FALLBACK_LIKELIHOOD_SCALE)


def held_out_masks(rng, n_samples: int, validation_fraction: float) -> list[np.ndarray]:
    """The held-out samples of every validation fit (empty: too few samples to compare).

    Below :data:`CROSS_VALIDATE_BELOW` samples, K-fold cross-validation with
    ``K = round(1 / validation_fraction)`` folds (every sample held out
    once); from there on one random split holding out ``validation_fraction``.
    """
    if validation_fraction == 0:
        return []
    if n_samples < CROSS_VALIDATE_BELOW:
        n_folds = _n_folds(validation_fraction)
        fold = rng.permutation(n_samples) % n_folds
        masks = [fold == k for k in range(n_folds)]
    else:
        masks = [rng.random(n_samples) < validation_fraction]
    return _large_enough(masks)


def _n_folds(validation_fraction: float) -> int:
    """K of the K-fold partitions: ``round(1 / validation_fraction)``, at least 2."""
    return max(2, int(round(1.0 / validation_fraction)))


def _large_enough(masks: list[np.ndarray]) -> list[np.ndarray]:
    """``masks``, or none when a fold holds out or trains on too few samples."""
    if any(m.sum() < MIN_HELD_OUT or (~m).sum() < MIN_HELD_OUT for m in masks):
        return []
    return masks


def one_standard_error(losses: list[np.ndarray], multiple: float = 1.0) -> int:
    """The simplest candidate within one standard error of the best one.

    ``losses`` holds every candidate's held-out losses of the same samples,
    simplest (smoothest) candidate first. The one-standard-error rule
    (Hastie, Tibshirani and Friedman, *The Elements of Statistical
    Learning*, 7.10), with the standard error of each candidate's paired
    difference from the best: a rougher candidate, or per-sample models
    instead of one population model, must beat the simpler one by more than
    the noise of the comparison. Without it the choice favours rough models
    on data with little or no heterogeneity (``make_null``, 150 samples:
    theta-MSE up to 3.7x the population model's). ``multiple``: the
    rule with that many standard errors instead of one (0: the best).
    """
    best = _best(losses)
    for index, loss in enumerate(losses):
        difference = loss - losses[best]
        if index == best or np.mean(difference) <= multiple * _standard_error(difference):
            return index
    return best


def _best(losses: list[np.ndarray]) -> int:
    return int(np.argmin([np.mean(loss) for loss in losses]))


def _standard_error(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(values.size))


def _choose(problem: Problem, config: FitConfig) -> Smoothing:
    """The smoothing chosen on held-out samples of the whole problem (full-batch fits)."""
    first, rescue, given = _candidates(problem, config)
    if given is not None:
        return _result(given, None, None)
    masks = held_out_masks(problem.rng, problem.data["X"].shape[0], config.validation_fraction)
    if not masks:
        # The middle noise scale (or shape); the flat psi.
        return _result(first[len(first) // 2], None, None)
    scorer = _Scorer(problem, config, masks)
    # Between smoothings: the one-standard-error rule where the choice is
    # noisy (cross-validated, below CROSS_VALIDATE_BELOW samples), the best
    # from there on. At N = 1,000 to 20,000 the rule picked smoother fits
    # whose held-out loss was within the noise of the responses but whose
    # coefficients were worse (low_rank, p = 10, N = 1,000: theta-MSE 0.0045
    # against 0.0035) and whose intervals under-covered (N = 20,000: 0.78
    # against 0.85 at 90%).
    choose = one_standard_error if len(masks) > 1 else _best
    best = scorer.stages(first, choose)
    population = scorer.population_losses()
    # How many standard errors the per-sample models must win by (see RESCUED_MARGIN).
    margin = 1.0
    if rescue and one_standard_error([population, scorer.losses[best]]) == 0:
        best = scorer.stages(rescue, choose)
        margin = RESCUED_MARGIN
    tried, start = scorer.tried, scorer.fits[best]
    # The losses the fallback is decided on: the split's, and the check's folds too.
    personal, compared, confirmed, extra = scorer.losses[best], population, 0, None
    if (
        len(masks) == 1
        and masks[0].sum() < CONFIRM_HELD_OUT_BELOW
        and one_standard_error([population, personal], margin) == 0
    ):
        # One split says the population model: score the chosen candidate on
        # the rest of a K-fold partition before discarding the per-sample models.
        more = confirmation_masks(problem.rng, masks[0], config.validation_fraction)
        if more:
            extra = _Scorer(problem, config, more)
            personal = np.concatenate([personal, extra.score_one(tried[best])])
            compared = np.concatenate([population, extra.population_losses()])
            confirmed = len(more)
    smoothed_check = None
    if one_standard_error([compared, personal], margin) == 0:
        # No candidate beats one model for everyone: the fallback's strongly
        # smoothed fit, if it does, else the population's model for every sample
        # (see ``population_sites``; the fallback is the last candidate, unscored).
        fallback, kept = _fallback(config), False
        if config.offset:
            kept, smoothed_check = _smoothed_fallback(scorer, extra, fallback, compared)
        if kept:
            best, start = len(scorer.tried) - 1, scorer.fits[-1]
        else:
            tried = [*tried, fallback]
            best, start = len(tried) - 1, None
    report = {
        "candidates": tried,
        "scores": [float(np.mean(loss)) for loss in scorer.losses],
        "population": float(np.mean(population)),
        "chosen": best,
        "folds": len(masks),
        "held_out": int(sum(mask.sum() for mask in masks)),
        # Standard errors the per-sample models had to beat the population by.
        "margin": margin,
    }
    if confirmed:
        report["confirmation"] = {
            "folds": confirmed + 1,
            "held_out": int(personal.size),
            "score": float(np.mean(personal)),
            "population": float(np.mean(compared)),
        }
    if smoothed_check is not None:
        report["smoothed_fallback"] = smoothed_check
    return _result(tried[best], start, report)


def _smoothed_fallback(scorer, extra, fallback: dict, compared: np.ndarray):
    """``(kept, check)``: whether the fallback's fit beats the population GLM (``compared``).

    The fallback's smoothing (:func:`_fallback`) is scored on the same held-out
    samples (and on the confirmation's folds, ``extra``, where they ran). If its
    fit beats the population GLM by more than one standard error, that fit is the
    model (its scores stay in ``scorer``, the last candidate): per-sample models
    too rough to beat one model for everyone, smoothed that much, can still
    describe weak heterogeneity (make_poisson, 1,000 samples, seed 101:
    theta-MSE 0.0025 against the population GLM's 0.0088, and calibrated
    intervals instead of 0.37 at 90%). Else its scores are dropped again and
    every sample's model becomes the population GLM (``population_sites``):
    unchecked, that smoothed fit invented heterogeneity on null data
    (make_null, 150 samples: 1.28 times the population's theta-MSE; 400 null
    counts: up to 2.5 times), where it never beat the population GLM
    (``benchmarks/README.md``). ``check`` records the comparison.
    """
    smoothed = scorer.score_one(fallback)
    if extra is not None:
        smoothed = np.concatenate([smoothed, extra.score_one(fallback)])
    kept = one_standard_error([compared, smoothed]) == 1
    check = {
        "held_out": int(smoothed.size),
        "score": float(np.mean(smoothed)),
        "population": float(np.mean(compared)),
        "kept": kept,
    }
    if not kept:
        for scores in (scorer.tried, scorer.losses, scorer.fits):
            scores.pop()
    return kept, check


def confirmation_masks(rng, mask: np.ndarray, validation_fraction: float) -> list[np.ndarray]:
    """The other folds of a K-fold partition whose first fold is the split ``mask``.

    The training part of the one split is divided at random into ``K - 1``
    folds (``K = round(1 / validation_fraction)``), so that with ``mask``
    every sample is held out once. Empty when a fold would be too small.
    """
    n_folds = _n_folds(validation_fraction)
    rest = np.flatnonzero(~mask)
    fold = rng.permutation(rest.size) % (n_folds - 1)
    masks = []
    for k in range(n_folds - 1):
        held = np.zeros_like(mask)
        held[rest[fold == k]] = True
        masks.append(held)
    return _large_enough(masks)


class _Scorer:
    """Validation fits of candidates on every fold, and the choice among them.

    ``tried``, ``losses`` (each candidate's held-out losses, folds joined) and
    ``fits`` (its first fold's MAP, where the final fit starts) grow together.
    """

    def __init__(self, problem: Problem, config: FitConfig, masks):
        self.problem, self.config, self.masks = problem, config, masks
        self.tried, self.losses, self.fits = [], [], []
        self.planned = 0  # validation fits planned so far (for the progress bar)
        # The population GLM of each fold's training part: the validation fits'
        # start (see ``start``) and the model they are compared with.
        self.glms = _population_glms(problem.data, masks, config)
        self._starts = {}  # each fold's start (see ``start``)

    def stages(self, first: list[dict], choose) -> int:
        """Score ``first``, choose among them, then the encoder's smoothness at the choice.

        Returns the index (in ``tried``) of the chosen candidate.
        """
        begin = len(self.tried)
        extra = len(ENCODER_SCALE_GRID) - 1 if self.config.encoder_width else 0
        self.planned += len(self.masks) * (len(first) + extra)
        # Each candidate after the first starts from the previous one's MAP
        # on the same fold.
        warm_starts = None
        for candidate in first:
            warm_starts = self.score(candidate, warm_starts)
        # Smoothest first: the largest noise scale (or likelihood power's
        # inverse, or the narrowest psi).
        order = sorted(range(begin, len(self.tried)), key=lambda i: -_smoothness(self.tried[i]))
        best = order[choose([self.losses[i] for i in order])]
        if not self.config.encoder_width:
            return best
        chosen = self.tried[best]
        by_scale = {ENCODER_SCALE: best}
        others = [scale for scale in ENCODER_SCALE_GRID if scale != ENCODER_SCALE]
        # Independent fits (each starts from its fold's start): side by side.
        self.score_all([dict(chosen, encoder_scale=scale) for scale in others])
        for index, scale in enumerate(others, start=len(self.tried) - len(others)):
            by_scale[scale] = index
        # Smoothest encoder (the smallest input-weight scale) first.
        order = [by_scale[scale] for scale in sorted(by_scale)]
        return order[choose([self.losses[i] for i in order])]

    def start(self, fold: int) -> dict:
        """The problem's start with the population GLM of ``fold``'s training part.

        The problem's own start holds the population GLM of every sample,
        held-out ones included: a validation fit started there began with
        their responses in its shared offset, and kept some of them (on
        make_null, 150 samples, per-sample models predicted the held-out
        responses better than fresh draws of the same truth;
        ``tests/test_smoothing.py``). The start of a learned negative
        binomial concentration still comes from every sample (one number,
        the fit learns it).
        """
        if fold not in self._starts:
            init = dict(self.problem.init)
            if "offset" in init:
                dtype = np.asarray(init["offset"]).dtype
                init["offset"] = np.asarray(self.glms[fold], dtype=dtype)
            self._starts[fold] = init
        return self._starts[fold]

    def score_one(self, candidate: dict) -> np.ndarray:
        """Score one more ``candidate`` (counted for the progress bar); its held-out losses."""
        self.planned += len(self.masks)
        self.score(candidate)
        return self.losses[-1]

    def population_losses(self) -> np.ndarray:
        """Held-out losses of the population GLM of every fold (folds joined)."""
        data = self.problem.data
        pointwise = family(self.config.family).pointwise_loss
        return np.concatenate(
            [
                held_out_loss(pointwise, data, data["X"][mask] @ coef, mask)
                for mask, coef in zip(self.masks, self.glms, strict=True)
            ]
        )

    def score(self, candidate: dict, warm_starts=None) -> list:
        """Held-out losses of ``candidate`` and its MAP on every fold (see :meth:`score_all`)."""
        return self.score_all([candidate], warm_starts)[0]

    def score_all(self, candidates: list[dict], warm_starts=None) -> list[list]:
        """Held-out losses of each of ``candidates`` and its MAP on every fold.

        The validation fits of every candidate and fold are independent and run
        side by side on :func:`~bayes_prsn.fitting.fit_threads` threads
        (:mod:`bayes_prsn.parallel`; the same results as one after another).
        ``warm_starts``: each fold's MAP of a neighbouring candidate to start
        from (see :data:`WARM_START_MIN_STEPS`); else the fold's start. Returns
        each candidate's MAPs, fold by fold.
        """
        problem, config, data = self.problem, self.config, self.problem.data
        pointwise = family(config.family).pointwise_loss
        n_folds, done = len(self.masks), len(self.tried) * len(self.masks)
        tasks = [(c, fold) for c in range(len(candidates)) for fold in range(n_folds)]

        def fit(task, cancel):
            number, fold = task
            candidate, mask = candidates[number], self.masks[fold]
            result = run_map(
                problem.key,
                data,
                dict(problem.settings, **candidate),
                self.start(fold) if warm_starts is None else warm_starts[fold],
                config,
                warn=False,
                mask=~mask,
                min_steps=None if warm_starts is None else WARM_START_MIN_STEPS,
                description=f"choosing smoothing {done + number * n_folds + fold + 1}"
                f"/{self.planned}",
                cancel=cancel,
            )
            params = result.params
            shared = params["offset"] if config.offset else 0.0
            codes = codes_from_sites(
                params, data.get("covariate_features"), candidate["encoder_scale"]
            )
            theta = shared + codes @ params["dictionary"]
            eta = np.sum(data["X"][mask] * theta[mask], axis=1)
            return held_out_loss(pointwise, data, eta, mask), params

        for fold in range(n_folds):
            self.start(fold)  # made here, not in the threads
        results = run_in_threads(fit, tasks, fit_threads(config))
        maps = []
        for number, candidate in enumerate(candidates):
            losses, params = zip(*results[number * n_folds : (number + 1) * n_folds], strict=True)
            self.tried.append(candidate)
            self.losses.append(np.concatenate(losses))
            # The final fit starts from the first split's MAP.
            self.fits.append(params[0])
            maps.append(list(params))
        return maps


def _population_glms(data: dict, masks, config: FitConfig) -> list[np.ndarray]:
    """The population GLM fitted on each fold's training part."""
    X, y = data["X"], data["y"]
    penalty = population_penalty(X.shape[1], config.fit_intercept)
    return [
        fit_population_glm(X[~mask], y[~mask], config.family, penalty=penalty, **_rows(data, ~mask))
        for mask in masks
    ]


def _rows(data: dict, rows) -> dict:
    """The per-sample extras of ``data`` (log exposure, trials, weights) at ``rows``."""
    return {name: data[name][rows] for name in MODEL_ARRAYS if name in data}


def held_out_loss(pointwise, data: dict, eta: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each held-out sample's loss (times its weight relative to the mean weight).

    ``eta`` is the held-out samples' linear predictor without the log
    exposure, which is added here.
    """
    extras = _rows(data, mask)
    if "eta_offset" in extras:
        eta = eta + extras["eta_offset"]
    aux = {"trials": extras["trials"]} if "trials" in extras else {}
    loss = pointwise(eta, data["y"][mask], **aux)
    if "sample_weight" in extras:
        loss = loss * extras["sample_weight"] / np.mean(data["sample_weight"])
    return loss


def _smoothness(candidate: dict) -> float:
    """Larger for a candidate that keeps the models closer to the population's."""
    if candidate["noise_scale"] is not None:
        return float(candidate["noise_scale"])
    if "prior_scale" in candidate:
        return 1.0 / float(candidate["prior_scale"])
    if candidate.get("concentration") is not None:
        # A gamma shape: the coefficient of variation 1 / sqrt(k).
        return 1.0 / np.sqrt(float(candidate["concentration"]))
    return 1.0 / float(candidate["likelihood_scale"])


def is_fallback(report: dict | None) -> bool:
    """Whether the choice ``report`` fell back to the population model."""
    return report is not None and report["chosen"] >= len(report["scores"])


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
        problem.X[index],
        problem.y[index],
        problem.covariates_frame.iloc[index],
        sub_config,
        sample_inputs=problem.sample_inputs.take(index),
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
            for name in ("confirmation", "smoothed_fallback"):
                if name in report:
                    check = report[name]
                    report[name] = dict(
                        check,
                        score=units.squared_error_from(sub.scaling, check["score"]),
                        population=units.squared_error_from(sub.scaling, check["population"]),
                    )
    return _result(settings, None, report)
