"""The fitting problem, built once from the inputs: checked and scaled data, pairs, a start.

:func:`build_problem` checks the response and the predictors, codes the
covariates, scales everything into the model's units
(:class:`~bayes_prsn.scaling.Scaling`), builds the neighbour-pair graph,
fits the population GLM and the starting point at which every sample's
model equals it, and returns them as one :class:`Problem`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .inputs import FitConfig, sample_index
from .models import ENCODER_SCALE, FAMILIES, family
from .population import fit_population
from .preprocessing import (
    CovariateEncoder,
    EncodedCovariates,
    build_neighbour_pairs,
    check_array,
    check_response,
    encoder_features,
    neighbour_space,
    pair_distances,
)
from .sample_inputs import SampleInputs
from .scaling import Scaling

__all__ = ["Problem", "build_problem", "population_penalty", "PAIR_BUCKET", "FLAT_PRIOR_SCALE"]

#: Random (far) pairs per sample added to the neighbour graph.
RANDOM_PAIRS = 5
#: Weight of a random pair's term in the potential (neighbour pairs weigh 1).
RANDOM_PAIR_WEIGHT = 0.02
#: The pair list is padded to a multiple of this many pairs at least (see ``pad_pairs``).
PAIR_BUCKET = 256
#: The scale of psi that ``prior_scale="auto"`` gives families with a noise scale or a
#: dispersion grid (their smoothing choice balances the likelihood against the
#: priors), and every family before the smoothing choice: so wide that psi
#: hardly acts (the value of ``prior_scale`` before it could be "auto").
FLAT_PRIOR_SCALE = 100.0
#: Prior scale of each code's residual from the covariate encoder's output, by family.
#: A bernoulli or poisson response says less about one sample than a gaussian one:
#: on the logistic simulator 0.01 instead of 0.1 lowered the coefficient error from
#: 1.07 to 0.71 (psi scale 10, tempered likelihood; poisson: 0.0023 either way).
#: The newer families' values are set on the same grounds (see ``models.families``).
CODE_RESIDUAL_SCALE = {name: family(name).code_residual_scale for name in FAMILIES}


class Problem(NamedTuple):
    """Everything the smoothing choice and the MAP need, in the model's units.

    Attributes
    ----------
    data : dict
        The model's arrays: ``X`` (design), ``pairs``, ``covariate_features``
        (with the encoder), ``pair_distances``, ``pair_weights``, ``y``.
    settings : dict
        The model's fixed settings (``gamma``, prior scales, ``embedding_scale``).
    init : dict
        The population start of every site.
    population : ndarray
        The population GLM (internal units).
    key : jax.random.PRNGKey
        Key of the optimisations.
    rng : numpy.random.Generator
        The fit's generator, advanced past the pair graph and the start; the
        smoothing choice draws its held-out samples from it.
    encoded : EncodedCovariates
        The training covariates in the internal coding.
    encoder : CovariateEncoder
        The covariate coding.
    scaling : Scaling
        The maps into the model's units.
    X, y : ndarray
        Predictors and response as checked, in the user's units.
    feature_names : list of str
        Names of the predictors.
    sample_index : list
        Labels of the samples.
    covariates_frame : DataFrame
        The covariates as passed (index reset).
    sample_inputs : SampleInputs
        Exposure, trials and sample weights as checked (None where not given).
    """

    data: dict
    settings: dict
    init: dict
    population: np.ndarray
    key: object
    rng: np.random.Generator
    encoded: EncodedCovariates
    encoder: CovariateEncoder
    scaling: Scaling
    X: np.ndarray
    y: np.ndarray
    feature_names: list
    sample_index: list
    covariates_frame: pd.DataFrame
    sample_inputs: SampleInputs = SampleInputs()


def population_penalty(n_columns: int, fit_intercept: bool) -> np.ndarray:
    """Ridge penalty of the population GLM: 1 per coefficient, none on the intercept."""
    penalty = np.ones(n_columns)
    if fit_intercept:
        penalty[-1] = 0.0
    return penalty


def build_problem(
    X, y, covariates, config: FitConfig, *, labels_from=(), sample_inputs=None
) -> Problem:
    """Check and scale the inputs, build the pair graph, fit the population GLM and the start.

    ``labels_from`` are the inputs as the user passed them, whose pandas
    index (if any) labels the samples; ``sample_inputs`` the checked
    exposure, trials and weights (:mod:`bayes_prsn.sample_inputs`).
    """
    import jax

    sample_inputs = SampleInputs() if sample_inputs is None else sample_inputs
    y = check_response(y, config.family, trials=sample_inputs.trials)
    X, feature_names = check_array(X, "X", n_samples=y.shape[0])
    n_samples = X.shape[0]
    if n_samples <= config.n_neighbors:
        raise ValueError(
            f"got {n_samples} sample(s) (n_samples = {n_samples}) but n_samples must exceed "
            f"n_neighbors={config.n_neighbors}; lower n_neighbors or pass more samples."
        )
    encoder = CovariateEncoder().fit(covariates, n_samples=n_samples)
    scaling = Scaling.fit(
        X,
        y,
        scale_response=family(config.family).has_noise_scale,
        fit_intercept=config.fit_intercept,
        robust=family(config.family).robust,
    )
    design = scaling.design(X)
    target = scaling.response(y)
    encoded = encoder.transform(covariates)
    rng = np.random.default_rng(config.random_state)
    pairs, is_random = build_neighbour_pairs(
        encoded, np.ones(len(encoder.feature_names)), config.n_neighbors, RANDOM_PAIRS, rng
    )
    distances = pair_distances(encoded.take(pairs[:, 0]), encoded.take(pairs[:, 1]))
    extras = sample_inputs.model_arrays()
    population, learned = fit_population(
        design,
        target,
        config.family,
        penalty=population_penalty(design.shape[1], config.fit_intercept),
        **extras,
    )
    key = jax.random.PRNGKey(int(rng.integers(2**31 - 1)))
    features = encoder_features(encoded) if config.encoder_width else None
    init = population_start(population, encoded, features, pairs, distances, config, rng)
    given = {"df": config.df}
    sites = family(config.family).learned
    init.update({k: v for k, v in learned.items() if k in sites and given.get(k) is None})
    pairs, distances, weights = pad_pairs(
        pairs, distances, np.where(is_random, RANDOM_PAIR_WEIGHT, 1.0)
    )
    data = {"X": design, "pairs": pairs}
    if features is not None:
        data["covariate_features"] = features
    data.update(pair_distances=distances, pair_weights=weights, y=target, **extras)
    settings = {
        "gamma": float(config.gamma),
        "prior_scale": FLAT_PRIOR_SCALE
        if config.prior_scale == "auto"
        else float(config.prior_scale),
        "covariate_weight_scale": float(config.covariate_weight_scale),
        "embedding_scale": CODE_RESIDUAL_SCALE[config.family] if config.encoder_width else 1.0,
    }
    # The family's learned likelihood parameters: None is learned with the MAP.
    settings.update({site: given.get(site) for site in family(config.family).learned})
    if family(config.family).grid is not None:
        # Chosen on held-out samples; the population's moment estimate until then.
        settings.update(learned)
    frame = (
        covariates if isinstance(covariates, pd.DataFrame) else pd.DataFrame(np.asarray(covariates))
    )
    return Problem(
        data,
        settings,
        init,
        population,
        key,
        rng,
        encoded,
        encoder,
        scaling,
        X,
        y,
        feature_names,
        sample_index(n_samples, *labels_from),
        frame.reset_index(drop=True),
        sample_inputs,
    )


def population_start(population, encoded, features, pairs, distances, config, rng) -> dict:
    """Starting point at which every sample's model equals the population GLM.

    The codes ``Z`` start at the leading principal components of the
    covariates (so that distance matching has a sensible layout to refine)
    and the dictionary ``Q`` at tiny random values, so ``theta_i = theta_pop
    + Q^T Z_i`` differs from the population estimate only by a tiny jitter
    that is symmetric about it (``Z`` is centred).
    """
    n_samples, rank = encoded.n_samples, config.rank
    space = neighbour_space(encoded, np.ones(distances.shape[1]))
    space = space - space.mean(axis=0)
    u, s, _ = np.linalg.svd(space, full_matrices=False)
    codes = u[:, :rank] * s[:rank] / np.sqrt(n_samples)
    if codes.shape[1] < rank:
        extra = 1e-3 * rng.standard_normal((n_samples, rank - codes.shape[1]))
        codes = np.column_stack([codes, extra])
    codes = codes - codes.mean(axis=0)
    gaps = np.linalg.norm(codes[pairs[:, 0]] - codes[pairs[:, 1]], axis=1)
    total = distances.sum(axis=1)
    weight = np.median(gaps) / max(np.median(total[total > 0]) if np.any(total > 0) else 1, 1e-6)
    init = {
        "dictionary": 1e-3 * rng.standard_normal((rank, population.shape[0])),
        "covariate_weights": np.full(distances.shape[1], max(weight, 1e-3)),
    }
    if config.offset:
        init["offset"] = population
    else:
        # Without an offset the population model must come from Q^T Z: put
        # it along a constant first code.
        codes[:, 0] = 1.0
        init["dictionary"][0] = population
    width = config.encoder_width
    if width:
        # Random hidden units and a zero output layer: the encoder starts at
        # g = 0, so the codes are the residuals and every sample's model
        # starts where it would without the encoder.
        n_inputs = features.shape[1]
        # The site holds W_1 divided by each unit's prior scale, and starts
        # at the same values for every candidate encoder_scale.
        init["encoder_in"] = (
            2.0 * rng.standard_normal((n_inputs, width)) / np.sqrt(n_inputs) / ENCODER_SCALE
        )
        init["encoder_bias"] = 0.5 * rng.standard_normal(width)
        init["encoder_out"] = np.zeros((width, rank))
        init["code_residual"] = codes
    else:
        init["embedding"] = codes
    return init


def pair_bucket(n_pairs: int) -> int:
    """The multiple the pair list is padded to: :data:`PAIR_BUCKET`, or a 32nd of the power
    of two below ``n_pairs`` when that is larger (at most about 3% padding)."""
    return max(PAIR_BUCKET, 2 ** (max(int(n_pairs), 1).bit_length() - 6))


def pad_pairs(pairs: np.ndarray, distances: np.ndarray, weights: np.ndarray):
    """Pad the pair list to a multiple of :func:`pair_bucket` with weight-0 copies of pair 0.

    The number of distinct pairs varies with the data; padding lets fits of
    the same size (cross-validation folds, grid searches) reuse the compiled
    optimisation instead of compiling again (the samples are padded too, in
    :func:`bayes_prsn.svi.sample_bucket`). A weight-0 pair adds nothing to
    the potential or its gradient.
    """
    extra = -len(pairs) % pair_bucket(len(pairs))
    if extra == 0:
        return pairs, distances, weights
    return (
        np.concatenate([pairs, np.repeat(pairs[:1], extra, axis=0)]),
        np.concatenate([distances, np.repeat(distances[:1], extra, axis=0)]),
        np.concatenate([weights, np.zeros(extra)]),
    )
