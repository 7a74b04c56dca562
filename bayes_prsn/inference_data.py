"""ArviZ data from posterior draws, and the interval and summary helpers that read it.

:func:`to_inference_data` is the one function that builds ArviZ data; the
estimator, the summaries and the plots read what it builds. Per-sample
coefficients are computed from the draws of the target's unknowns (the
shared parts, or the codes) in chunks of draws, so no intermediate larger
than the final ``coef`` array is held.
"""

from __future__ import annotations

import numpy as np

from . import arviz_compat
from .models import family as family_of

__all__ = [
    "SAMPLE_DIM",
    "FEATURE_DIM",
    "COVARIATE_DIM",
    "INTERVAL_KINDS",
    "to_inference_data",
    "interval",
    "check_prob",
    "check_sample_labels",
    "summary_table",
    "posterior_interval",
    "pooled_draws",
]

#: Dimension of per-sample quantities ("sample" would collide with ArviZ's draw dimension).
SAMPLE_DIM = "obs_id"
FEATURE_DIM = "feature"
COVARIATE_DIM = "covariate"
INTERVAL_KINDS = ("hdi", "eti")

#: Draws converted per chunk.
_CHUNK = 256


def check_prob(prob) -> float:
    if isinstance(prob, bool) or not isinstance(prob, int | float | np.floating):
        raise ValueError(f"prob must be a number in (0, 1); got {prob!r}.")
    if not 0.0 < float(prob) < 1.0:
        raise ValueError(f"prob must be in (0, 1) (e.g. 0.9 for 90% intervals); got {prob!r}.")
    return float(prob)


def interval(draws: np.ndarray, prob: float, kind: str = "hdi") -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of a credible interval over the first axis of ``draws``.

    ``kind="hdi"`` gives the highest-density interval (the shortest interval
    holding ``prob`` of the draws), ``"eti"`` the equal-tailed one.
    """
    prob = check_prob(prob)
    if kind not in INTERVAL_KINDS:
        raise ValueError(f"kind must be one of {INTERVAL_KINDS}; got {kind!r}.")
    draws = np.asarray(draws)
    if kind == "eti":
        lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return lower, upper
    n = draws.shape[0]
    inside = min(max(int(np.floor(prob * n)), 1), n - 1)
    ordered = np.sort(draws, axis=0)
    widths = ordered[inside:] - ordered[: n - inside]
    start = np.argmin(widths, axis=0)[None]
    lower = np.take_along_axis(ordered, start, axis=0)[0]
    upper = np.take_along_axis(ordered, start + inside, axis=0)[0]
    return lower, upper


def to_inference_data(
    draws,
    *,
    coefficients,
    shape: tuple,
    to_original_units,
    X: np.ndarray,
    y: np.ndarray,
    family: str,
    noise_scale,
    sample_index,
    feature_names,
    covariate_names,
    fit_intercept: bool,
    constant: dict,
    seed: int,
    attrs: dict,
    aux: dict | None = None,
    eta_offset=0.0,
):
    """ArviZ data (``InferenceData`` or ``DataTree``) from posterior draws.

    Parameters
    ----------
    draws : PosteriorDraws
        Back-end output; its ``covariate_weights`` draws, where sampled, go
        into the posterior group.
    coefficients : callable
        ``coefficients(start, stop)`` gives the coefficients (internal
        units) of the pooled draws ``start:stop``, shape (stop - start,
        n_samples, n_columns).
    shape : (int, int)
        Chains and draws per chain.
    to_original_units : callable
        Maps internal coefficients (m, n_columns) to ``(coef, intercept)`` in
        the user's units.
    X, y : ndarray
        Predictors and response in the user's units.
    family : str
    noise_scale : float, ndarray (chain, draw) or None
        Gaussian noise scale in the units of ``y``: fixed, or drawn (then it
        is a variable of the posterior group).
    sample_index, feature_names, covariate_names : sequences
        Coordinates.
    fit_intercept : bool
    constant : dict
        Fixed quantities stored in ``constant_data`` (name -> (value, dims)).
    seed : int
        Seed of the posterior predictive draws.
    attrs : dict
        Attributes stored with the data.
    aux : dict, optional
        The family's other likelihood arguments (``trials``, ``df``,
        ``concentration``; see :mod:`bayes_prsn.models.families`).
    eta_offset : float or ndarray (n_samples,)
        Known part of each linear predictor (the log exposure).

    Returns
    -------
    InferenceData (ArviZ 0.x) or DataTree (ArviZ 1.x) with groups
    ``posterior`` (``coef``, ``intercept``, ``covariate_weights``),
    ``log_likelihood`` (``y`` only), ``posterior_predictive``,
    ``observed_data``, ``constant_data`` and, for NUTS, ``sample_stats``.
    """
    n_chains, n_draws = shape
    n_samples, n_features = X.shape
    total = n_chains * n_draws
    drawn_noise = noise_scale is not None and np.ndim(noise_scale) > 0
    flat_noise = np.reshape(noise_scale, (-1, 1)) if drawn_noise else noise_scale
    coef = np.empty((total, n_samples, n_features), dtype=np.float32)
    intercept = np.empty((total, n_samples), dtype=np.float32)
    log_lik = np.empty((total, n_samples), dtype=np.float32)
    real = family in ("gaussian", "student_t", "gamma")
    replicated = np.empty((total, n_samples), dtype=np.float64 if real else int)
    aux = {} if aux is None else aux
    rng = np.random.default_rng(seed)
    likelihood = family_of(family)
    for start in range(0, total, _CHUNK):
        stop = min(start + _CHUNK, total)
        theta = coefficients(start, stop)
        c, b = to_original_units(theta.reshape(-1, theta.shape[-1]))
        c = c.reshape(stop - start, n_samples, n_features)
        b = b.reshape(stop - start, n_samples)
        eta = np.sum(X * c, axis=-1) + b
        coef[start:stop], intercept[start:stop] = c, b
        noise = flat_noise[start:stop] if drawn_noise else flat_noise
        eta = eta + eta_offset
        log_lik[start:stop] = likelihood.log_likelihood(eta, y, noise, **aux)
        replicated[start:stop] = likelihood.replicate(eta, noise, rng, **aux)

    def shaped(array):
        return array.reshape(n_chains, n_draws, *array.shape[1:])

    posterior = {"coef": shaped(coef)}
    if fit_intercept:
        posterior["intercept"] = shaped(intercept)
    if "covariate_weights" in draws.samples:
        posterior["covariate_weights"] = np.asarray(draws.samples["covariate_weights"])
    if drawn_noise:
        posterior["noise_scale"] = np.asarray(noise_scale)
    constant_data = {"X": X}
    dims = {
        "coef": [SAMPLE_DIM, FEATURE_DIM],
        "intercept": [SAMPLE_DIM],
        "covariate_weights": [COVARIATE_DIM],
        "y": [SAMPLE_DIM],
        "X": [SAMPLE_DIM, FEATURE_DIM],
    }
    for name, (value, value_dims) in constant.items():
        constant_data[name] = np.asarray(value)
        dims[name] = list(value_dims)
    coords = {
        SAMPLE_DIM: list(sample_index),
        FEATURE_DIM: list(feature_names),
        COVARIATE_DIM: list(covariate_names),
    }
    groups = {
        "posterior": posterior,
        "sample_stats": dict(draws.sample_stats),
        "log_likelihood": {"y": shaped(log_lik)},
        "posterior_predictive": {"y": shaped(replicated)},
        "observed_data": {"y": np.asarray(y)},
        "constant_data": constant_data,
    }
    return arviz_compat.from_dict(groups, coords=coords, dims=dims, attrs=attrs)


def check_sample_labels(samples, labels: list) -> None:
    """Raise a ``ValueError`` naming the entries of ``samples`` that are not in ``labels``."""
    missing = [s for s in samples if s not in labels]
    if missing:
        raise ValueError(
            f"samples {missing[:5]} are not sample labels; use labels of the training data's "
            f"index (obs_id), for example {labels[:3]}."
        )


def summary_table(
    posterior,
    *,
    mcmc: bool,
    var_names=None,
    samples=None,
    prob: float = 0.9,
    kind: str = "hdi",
    fits: int = 1,
):
    """ArviZ-style table of posterior summaries of a posterior group (see ``summary``).

    ``mcmc`` says whether the draws come from chains (ESS and R-hat are
    computed) or are independent (NaN). ``fits``: the chains are those of
    that many fits pooled (:mod:`bayes_prsn.pooling`), each fit's chains in
    turn; ESS and R-hat are then each fit's, the worst of them.
    """
    import pandas as pd

    prob = check_prob(prob)
    available = list(posterior.data_vars)
    if var_names is None:
        var_names = available
    elif isinstance(var_names, str):
        var_names = [var_names]
    unknown = [name for name in var_names if name not in available]
    if unknown:
        raise ValueError(f"var_names {unknown} are not in the posterior; choose from {available}.")
    if samples is not None:
        check_sample_labels(samples, list(posterior[SAMPLE_DIM].values))
        posterior = posterior.sel({SAMPLE_DIM: list(samples)})
    percent = f"{100 * (1 - prob) / 2:g}%", f"{100 * (1 + prob) / 2:g}%"
    mcmc = mcmc and int(posterior.sizes["draw"]) >= 4
    frames = []
    for name in var_names:
        array = posterior[name]
        values = array.values.reshape(*array.shape[:2], -1)
        flat = values.reshape(-1, values.shape[-1])
        lower, upper = interval(flat, prob, kind)
        columns = {
            "mean": flat.mean(axis=0),
            "sd": flat.std(axis=0, ddof=1),
            f"{kind}_{percent[0]}": lower,
            f"{kind}_{percent[1]}": upper,
            **_chain_diagnostics(values, mcmc, fits),
        }
        frames.append(pd.DataFrame(columns, index=_element_labels(name, array)))
    return pd.concat(frames)


def _chain_diagnostics(values: np.ndarray, mcmc: bool, fits: int) -> dict:
    """``ess_bulk``, ``ess_tail`` and ``r_hat`` of (chain, draw, element) ``values``.

    For ``fits`` pooled fits, each fit's chains are diagnosed on their own and
    the worst is kept (the smallest ESS, the largest R-hat): R-hat over the
    chains of different fits would measure how much the fits differ, not
    whether each fit's sampler mixed.
    """
    from . import diagnostics

    if not mcmc:
        return {"ess_bulk": np.nan, "ess_tail": np.nan, "r_hat": np.nan}
    found = [diagnostics.diagnose(g) for g in np.split(values, fits, axis=0)]
    per_chain = values.shape[0] // fits
    return {
        "ess_bulk": np.min([f["ess_bulk"] for f in found], axis=0),
        "ess_tail": np.min([f["ess_tail"] for f in found], axis=0),
        "r_hat": np.max([f["rhat"] for f in found], axis=0) if per_chain > 1 else np.nan,
    }


def _element_labels(name: str, array) -> list[str]:
    """``name[a, b]`` for every element of a variable beyond its chain and draw dims."""
    extra_dims = array.dims[2:]
    if not extra_dims:
        return [name]
    grids = np.meshgrid(*[array[d].values for d in extra_dims], indexing="ij")
    size = int(np.prod(array.shape[2:]))
    return [f"{name}[{', '.join(str(g.ravel()[i]) for g in grids)}]" for i in range(size)]


def pooled_draws(idata, name: str, group: str = "posterior") -> np.ndarray:
    """The draws of variable ``name`` with the chains pooled: shape (draws, ...)."""
    values = arviz_compat.group(idata, group)[name].values
    return values.reshape(-1, *values.shape[2:])


def posterior_interval(idata, name: str, prob: float, kind: str):
    """Credible interval of every element of posterior variable ``name`` over all draws."""
    return interval(pooled_draws(idata, name), prob, kind)
