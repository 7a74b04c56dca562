"""Vectorised convergence diagnostics: rank-normalised split R-hat, bulk and tail ESS.

The definitions are those of Vehtari et al. (2021, "Rank-normalization,
folding, and localization: an improved R-hat") as implemented in ArviZ;
here they run on all coefficients at once (NumPyro's vectorised
autocorrelation), which matters with thousands of per-sample coefficients.
Every function takes draws shaped ``(chain, draw, ...)`` and returns one
value per trailing element.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpyro.diagnostics import effective_sample_size, gelman_rubin
from scipy.special import ndtri

from .exceptions import ConvergenceWarning

__all__ = ["rhat", "ess_bulk", "ess_tail", "convergence_report", "RHAT_LIMIT", "ESS_PER_CHAIN"]


def _split_chains(draws: np.ndarray) -> np.ndarray:
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]], axis=0)


def _z_scale(draws: np.ndarray) -> np.ndarray:
    shape = draws.shape
    # Elements first, so each one's draws are contiguous for the sort.
    flat = np.ascontiguousarray(draws.reshape(shape[0] * shape[1], -1).T)
    # Ordinal ranks by a double argsort (fast, vectorised); ArviZ averages tied
    # ranks, which only differs for draws that repeat exactly.
    ranks = np.empty(flat.shape)
    np.put_along_axis(ranks, np.argsort(flat, axis=1), np.arange(1.0, flat.shape[1] + 1), 1)
    return ndtri((ranks.T - 0.375) / (flat.shape[1] + 0.25)).reshape(shape)


def _prepare(draws) -> np.ndarray:
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim < 2:
        raise ValueError("draws must have shape (chain, draw, ...).")
    if draws.shape[1] < 4:
        raise ValueError("diagnostics need at least 4 draws per chain.")
    return draws


#: Draws (chain x draw x elements) handled per chunk: about 64 MB of float64.
_CHUNK_VALUES = 8_000_000


def _chunked(function):
    """Apply ``function`` to blocks of trailing elements so memory stays bounded."""

    def wrapper(draws) -> np.ndarray:
        draws = np.asarray(draws)
        shape = draws.shape
        flat = draws.reshape(shape[0], shape[1], -1)
        step = max(1, _CHUNK_VALUES // (shape[0] * shape[1]))
        parts = [
            function(_prepare(flat[:, :, i : i + step])) for i in range(0, flat.shape[2], step)
        ]
        return np.concatenate(parts).reshape(shape[2:]) if parts else np.zeros(shape[2:])

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _constant(draws: np.ndarray) -> np.ndarray:
    return np.all(draws == draws[:1, :1], axis=(0, 1))


@_chunked
def rhat(draws) -> np.ndarray:
    """Rank-normalised split R-hat (the larger of the bulk and folded-tail versions)."""
    bulk = gelman_rubin(_z_scale(_split_chains(draws)))
    folded = np.abs(draws - np.median(draws, axis=(0, 1)))
    tail = gelman_rubin(_z_scale(_split_chains(folded)))
    return np.where(_constant(draws), np.nan, np.maximum(bulk, tail))


@_chunked
def ess_bulk(draws) -> np.ndarray:
    """Bulk effective sample size (of the rank-normalised split chains)."""
    value = effective_sample_size(_z_scale(_split_chains(draws)))
    return np.where(_constant(draws), np.nan, value)


@_chunked
def ess_tail(draws) -> np.ndarray:
    """Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators."""
    values = []
    for q in (0.05, 0.95):
        cut = np.quantile(draws, q, axis=(0, 1))
        indicator = (draws <= cut).astype(np.float64)
        values.append(effective_sample_size(_split_chains(indicator)))
    return np.where(_constant(draws), np.nan, np.minimum(*values))


#: NUTS is reported as not converged above this split R-hat on any coefficient ...
RHAT_LIMIT = 1.01
#: ... or below this bulk or tail ESS per chain, or after any divergence.
ESS_PER_CHAIN = 100


def convergence_report(posterior, draws, *, stacklevel: int = 2) -> dict:
    """R-hat, ESS and divergences of the coefficients; warns when NUTS did not converge.

    ``posterior`` is the ArviZ posterior group (``coef``, ``intercept``) and
    ``draws`` the back-end's :class:`~bayes_prsn.posterior.PosteriorDraws`.
    The approximations' draws are independent: only their count and time
    are reported.
    """
    report = {"method": draws.method, "seconds": float(draws.seconds)}
    n_chains, n_draws = int(posterior.sizes["chain"]), int(posterior.sizes["draw"])
    report["num_draws"] = n_chains * n_draws
    if draws.method != "nuts" or n_draws < 4:
        return report
    arrays = [posterior["coef"].values.reshape(n_chains, n_draws, -1)]
    if "intercept" in posterior:
        arrays.append(posterior["intercept"].values)
    theta = np.concatenate(arrays, axis=-1)
    divergences = int(np.sum(draws.sample_stats["diverging"]))
    report.update(
        max_rhat=float(np.nanmax(rhat(theta))) if n_chains > 1 else float("nan"),
        min_ess_bulk=float(np.nanmin(ess_bulk(theta))),
        min_ess_tail=float(np.nanmin(ess_tail(theta))),
        divergences=divergences,
    )
    problems = []
    if n_chains > 1 and report["max_rhat"] > RHAT_LIMIT:
        problems.append(f"max split R-hat {report['max_rhat']:.3f} > {RHAT_LIMIT}")
    ess_limit = ESS_PER_CHAIN * n_chains
    low = min(report["min_ess_bulk"], report["min_ess_tail"])
    if low < ess_limit:
        problems.append(f"min ESS {low:.0f} < {ess_limit}")
    if divergences:
        problems.append(f"{divergences} divergent transitions")
    report["converged"] = not problems
    if problems:
        warnings.warn(
            "NUTS did not converge on the per-sample coefficients: "
            + "; ".join(problems)
            + ". Draw more (num_warmup, num_samples), raise target_accept_prob, or check "
            "posterior_diagnostics_.",
            ConvergenceWarning,
            stacklevel=stacklevel + 1,
        )
    return report
