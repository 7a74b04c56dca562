"""Association between per-sample models and covariates: group codes, eta-squared, Cramér's V.

Plain NumPy and pandas, used by :mod:`bayes_prsn.analysis` to say how much
of the models' spread a covariate explains and how clusters relate to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["covariate_groups", "adjusted_eta_squared", "cramers_v"]


def covariate_groups(values: pd.Series, n_bins: int) -> np.ndarray:
    """Group codes of one covariate: its levels, or quantile bins of a numeric one."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numeric = values.to_numpy(dtype=float, na_value=np.nan)
        finite = numeric[np.isfinite(numeric)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1))[1:-1])
        codes = np.searchsorted(edges, numeric, side="right").astype(float)
        codes[~np.isfinite(numeric)] = np.nan
        return codes
    codes = pd.Categorical(values).codes.astype(float)
    codes[codes < 0] = np.nan
    return codes


def adjusted_eta_squared(target: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of ``target`` (n, m) explained by group means, adjusted for groups."""
    observed = np.isfinite(groups)
    target, groups = target[observed], groups[observed]
    n, levels = target.shape[0], np.unique(groups)
    if n < 3 or len(levels) < 2 or n <= len(levels):
        return 0.0
    total = np.sum((target - target.mean(axis=0)) ** 2)
    within = sum(
        np.sum((target[groups == g] - target[groups == g].mean(axis=0)) ** 2) for g in levels
    )
    if total <= 0:
        return 0.0
    adjusted = 1.0 - (within / (n - len(levels))) / (total / (n - 1))
    return float(max(adjusted, 0.0))


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma, 2013) between two label arrays."""
    observed = np.isfinite(a) & np.isfinite(b)
    table = pd.crosstab(a[observed], b[observed]).to_numpy().astype(float)
    n = table.sum()
    if n < 2 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = np.sum((table - expected) ** 2 / expected) / n
    r, k = table.shape
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corr, k_corr = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corr - 1, r_corr - 1)
    return float(np.sqrt(phi2 / denominator)) if denominator > 0 else 0.0
