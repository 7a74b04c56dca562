"""Data preparation: input checks, internal scaling, covariate metric, neighbour graph.

Everything here is plain NumPy (and scikit-learn's neighbour search); the
model in :mod:`bayes_prsn.models` only sees the arrays these functions make.

Covariate distances
-------------------
For covariate :math:`l` the per-covariate distance between samples
:math:`i` and :math:`j` is

* numeric: :math:`d_l = |a_l - b_l| / s_l`, where :math:`s_l` is a robust
  scale of the column (the interquartile range divided by 1.349, falling back
  to the standard deviation, then to the mean absolute deviation);
* categorical: :math:`d_l = 1[a_l \\ne b_l]` (a level never seen in training
  is treated as missing, with a warning naming the column, the level and the
  number of rows).

A covariate missing in either sample contributes nothing. So that pairs with
missing values are not pulled artificially close, the observed distances of
a pair are rescaled by :math:`m / m_{ij}`, where :math:`m` is the number of
covariates and :math:`m_{ij}` the number observed in both samples (a pair
with no covariate observed in common has distance zero).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.exceptions import DataConversionWarning

from .models import family as family_of

__all__ = [
    "CovariateEncoder",
    "EncodedCovariates",
    "Standardizer",
    "check_array",
    "check_response",
    "pair_distances",
    "build_neighbour_pairs",
    "encoder_features",
    "neighbour_space",
    "NeighbourSearch",
]


def check_dense(X, name: str) -> None:
    """Reject a missing (None) or sparse ``X`` with an error naming ``name``."""
    if X is None:
        raise ValueError(f"{name} is required but None was given.")
    if scipy.sparse.issparse(X):
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported. Pass a dense array "
            f"({name}.toarray())."
        )


def check_two_dimensional(values: np.ndarray, name: str) -> None:
    """Reject an array that is not 2-D (n_samples, n_features), saying how to reshape it."""
    if values.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features); got a 1-D array. "
            "Reshape your data: X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for "
            "a single sample."
        )
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got an array with {values.ndim} dimensions.")


def check_array(X, name: str, *, n_samples: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Return ``X`` as a finite 2-D float array and its column names.

    Raises ``ValueError`` or ``TypeError`` naming ``name`` when the input is
    empty, not numeric, not 2-D, contains NaN or inf, or has a different
    number of rows than ``n_samples``.
    """
    check_dense(X, name)
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        bad = [
            c
            for c, dt in zip(names, X.dtypes, strict=True)
            if not pd.api.types.is_numeric_dtype(dt)
        ]
        if bad:
            raise TypeError(
                f"{name} must be numeric; column(s) {bad} are not. Encode them as numbers "
                "or pass them as covariates instead."
            )
        values = X.to_numpy(dtype=float, na_value=np.nan)
    else:
        if np.iscomplexobj(np.asarray(X)):
            raise ValueError(
                f"{name} contains complex numbers: Complex data not supported; pass real values."
            )
        try:
            values = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array: {err}") from err
        names = None
    check_two_dimensional(values, name)
    if values.shape[0] == 0:
        raise ValueError(
            f"{name} is empty: 0 sample(s) (shape={values.shape}) while a minimum of 1 is required."
        )
    if values.shape[1] == 0:
        raise ValueError(
            f"{name} is empty: 0 feature(s) (shape={values.shape}) while a minimum of 1 is "
            "required."
        )
    if n_samples is not None and values.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {values.shape[0]} rows but y has {n_samples}; they must match."
        )
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s); remove or impute them first."
        )
    if names is None:
        names = [f"x{j}" for j in range(values.shape[1])]
    return values, names


def column_to_1d(values: np.ndarray) -> np.ndarray:
    """A column vector (n, 1) as (n,), with scikit-learn's DataConversionWarning."""
    if values.ndim == 2 and values.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it is used as "
            "y.ravel(). Pass a 1-D y of shape (n_samples,) to silence this.",
            DataConversionWarning,
            stacklevel=4,
        )
        return values[:, 0]
    return values


def _all_numbers(values: np.ndarray) -> bool:
    """Whether an object array holds only numbers (or None/NaN), not text or booleans."""
    import numbers

    return all(
        v is None
        or v is pd.NA
        or (isinstance(v, numbers.Number) and not isinstance(v, bool | np.bool_))
        for v in values.ravel().tolist()
    )


def check_response(y, family: str, *, trials=None) -> np.ndarray:
    """Return ``y`` as a finite 1-D float array valid for ``family``."""
    if y is None:
        raise ValueError(
            "this estimator requires y to be passed, but the target y is None; pass the "
            "response of every sample."
        )
    if np.iscomplexobj(np.asarray(y)):
        raise ValueError(
            "y contains complex numbers: Complex data not supported; pass a real response."
        )
    raw = np.asarray(y)
    if raw.dtype.kind in "OSUb" and not (raw.dtype.kind == "O" and _all_numbers(raw)):
        # Text such as "1.5" would convert silently; a response must be numbers.
        what = "booleans" if raw.dtype.kind == "b" else f"values such as {raw.ravel()[:3].tolist()}"
        raise TypeError(
            f"y must be numeric; got {what} (dtype {raw.dtype}). Convert it to numbers first "
            "(for two class labels use PersonalizedClassifier)."
        )
    try:
        values = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"y must be numeric: {err}") from err
    values = column_to_1d(values)
    if values.ndim != 1:
        raise ValueError(f"y must be 1-D with shape (n_samples,); got shape {values.shape}.")
    if values.shape[0] == 0:
        raise ValueError("y is empty.")
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"y contains NaN or infinite values in {int(bad.sum())} of {values.shape[0]} "
            f"samples (positions {first}{'...' if bad.sum() > 5 else ''}); remove those samples "
            "first."
        )
    family_of(family).check_response(values, **({} if trials is None else {"trials": trials}))
    return values


@dataclass(frozen=True)
class Standardizer:
    """Affine scaling ``(a - center) / scale`` of columns, kept to map results back."""

    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, *, center: bool = True) -> Standardizer:
        values = np.asarray(values, dtype=float)
        mean = values.mean(axis=0) if center else np.zeros(values.shape[1:])
        std = values.std(axis=0)
        # A constant column stays as it is (scale 1) rather than dividing by 0.
        scale = np.where(std > 1e-12 * (1.0 + np.abs(mean)), std, 1.0)
        if not center:
            rms = np.sqrt(np.mean(values**2, axis=0))
            scale = np.where(rms > 0, rms, 1.0)
        return cls(np.asarray(mean, dtype=float), np.asarray(scale, dtype=float))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=float) - self.center) / self.scale


@dataclass(frozen=True)
class EncodedCovariates:
    """Covariates in the internal coding.

    ``numeric`` holds robust-scaled numeric columns (NaN where missing);
    ``categorical`` holds integer level codes (``-1`` where missing; a level
    never seen in training is coded as missing, with a warning).
    """

    numeric: np.ndarray
    categorical: np.ndarray
    n_levels: tuple = ()

    @property
    def n_samples(self) -> int:
        return max(self.numeric.shape[0], self.categorical.shape[0])

    def take(self, index) -> EncodedCovariates:
        return EncodedCovariates(self.numeric[index], self.categorical[index], self.n_levels)


def _robust_scale(column: np.ndarray) -> float:
    finite = column[np.isfinite(column)]
    q1, q3 = np.percentile(finite, [25, 75])
    for scale in ((q3 - q1) / 1.349, finite.std(), np.mean(np.abs(finite - np.median(finite)))):
        if scale > 1e-12 * (1.0 + abs(float(np.median(finite)))):
            return float(scale)
    return 0.0


class CovariateEncoder:
    """Learn the covariate coding on training data and apply it to new data.

    Numeric columns are centred on their median and divided by a robust scale;
    object, string, category and bool columns of a DataFrame are categorical.
    Columns that are constant (or entirely missing) carry no information:
    they are dropped with a warning.
    """

    def fit(self, covariates, *, n_samples: int) -> CovariateEncoder:
        frame = self._as_frame(covariates, "covariates")
        if frame.shape[0] != n_samples:
            raise ValueError(
                f"covariates has {frame.shape[0]} rows but X has {n_samples}; they must match."
            )
        self.names_in_ = [str(c) for c in frame.columns]
        self.numeric_names_, self.categorical_names_ = [], []
        self.centers_, self.scales_, self.levels_ = [], [], []
        dropped = []
        for name in frame.columns:
            column = frame[name]
            if self._is_categorical(column):
                levels = pd.unique(column.dropna())
                if len(levels) < 2:
                    dropped.append(str(name))
                    continue
                self.categorical_names_.append(str(name))
                self.levels_.append(list(levels))
            else:
                values = self._numeric(column, name)
                if np.isinf(values).any():
                    raise ValueError(
                        f"covariates column {name!r} contains infinite values; "
                        "use NaN for missing values."
                    )
                if not np.isfinite(values).any():
                    dropped.append(str(name))
                    continue
                scale = _robust_scale(values)
                if scale == 0.0:
                    dropped.append(str(name))
                    continue
                self.numeric_names_.append(str(name))
                self.centers_.append(float(np.nanmedian(values)))
                self.scales_.append(scale)
        if dropped:
            warnings.warn(
                f"covariate column(s) {dropped} are constant or entirely missing and are ignored.",
                UserWarning,
                stacklevel=3,
            )
        if not self.numeric_names_ and not self.categorical_names_:
            raise ValueError(
                "covariates hold no usable column: every column is constant or missing. "
                "Personalization needs at least one covariate that varies across samples."
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        """Names of the covariates in use, numeric first, then categorical."""
        return self.numeric_names_ + self.categorical_names_

    def transform(self, covariates) -> EncodedCovariates:
        frame = self._as_frame(covariates, "covariates")
        names = [str(c) for c in frame.columns]
        # Columns are matched by their names as text (fit stores them so).
        frame.columns = names
        if isinstance(covariates, pd.DataFrame):
            missing = [c for c in self.names_in_ if c not in names]
            if missing:
                raise ValueError(f"covariates lack column(s) {missing} that were used in fit.")
        elif len(names) != len(self.names_in_):
            raise ValueError(
                f"covariates has {len(names)} columns but {len(self.names_in_)} were used in fit."
            )
        else:
            frame.columns = self.names_in_
        n = frame.shape[0]
        numeric = np.empty((n, len(self.numeric_names_)))
        for j, name in enumerate(self.numeric_names_):
            values = self._numeric(frame[name], name)
            numeric[:, j] = (values - self.centers_[j]) / self.scales_[j]
        numeric[~np.isfinite(numeric)] = np.nan
        categorical = np.empty((n, len(self.categorical_names_)), dtype=np.int64)
        unseen = []
        for j, name in enumerate(self.categorical_names_):
            levels = self.levels_[j]
            lookup = {level: code for code, level in enumerate(levels)}
            column = frame[name]
            codes = [
                -1 if pd.isna(v) else lookup.get(v, lookup.get(str(v), len(levels)))
                for v in column.tolist()
            ]
            categorical[:, j] = codes
            new_rows = categorical[:, j] == len(levels)
            if new_rows.any():
                new_levels = sorted({str(v) for v in column[new_rows].tolist()})
                unseen.append(f"{name!r}: {new_levels} in {int(new_rows.sum())} row(s)")
                # A level the fit never saw says nothing about the model: it counts as missing.
                categorical[new_rows, j] = -1
        if unseen:
            warnings.warn(
                "covariate level(s) never seen in fit: "
                + "; ".join(unseen)
                + ". They are treated as missing values, so those rows' models come from "
                "their other covariates alone; check them, or add such samples to the training "
                "data.",
                UserWarning,
                stacklevel=4,
            )
        return EncodedCovariates(numeric, categorical, tuple(len(v) for v in self.levels_))

    @staticmethod
    def _as_frame(covariates, name: str) -> pd.DataFrame:
        if covariates is None:
            raise ValueError(
                f"{name} is required: pass the per-sample covariates (n_samples, "
                "n_covariates) that define which samples are alike."
            )
        if isinstance(covariates, pd.Series):
            covariates = covariates.to_frame()
        if isinstance(covariates, pd.DataFrame):
            frame = covariates.reset_index(drop=True)
        else:
            values = np.asarray(covariates)
            if values.ndim == 1:
                values = values[:, None]
            if values.ndim != 2:
                raise ValueError(
                    f"{name} must be 2-D (n_samples, n_covariates); got {values.ndim} dims."
                )
            frame = pd.DataFrame(values, columns=[f"u{j}" for j in range(values.shape[1])])
        if frame.shape[1] == 0:
            raise ValueError(f"{name} has zero columns; pass at least one covariate.")
        if frame.shape[0] == 0:
            raise ValueError(f"{name} is empty.")
        return frame

    @staticmethod
    def _is_categorical(column: pd.Series) -> bool:
        dtype = column.dtype
        return (
            isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
        )

    @staticmethod
    def _numeric(column: pd.Series, name) -> np.ndarray:
        try:
            return pd.to_numeric(column).to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise TypeError(f"covariates column {name!r} is not numeric: {err}") from err


def pair_distances(a: EncodedCovariates, b: EncodedCovariates) -> np.ndarray:
    """Per-covariate distances between rows of ``a`` and ``b`` (same length).

    Returns an array of shape (n_pairs, n_numeric + n_categorical); missing
    values contribute 0 and each row is rescaled by ``m / m_observed``.
    """
    numeric = np.abs(a.numeric - b.numeric)
    numeric_seen = np.isfinite(numeric)
    categorical = (a.categorical != b.categorical).astype(float)
    categorical_seen = (a.categorical >= 0) & (b.categorical >= 0)
    distances = np.concatenate(
        [np.where(numeric_seen, numeric, 0.0), np.where(categorical_seen, categorical, 0.0)],
        axis=1,
    )
    seen = np.concatenate([numeric_seen, categorical_seen], axis=1).sum(axis=1)
    factor = np.where(seen > 0, distances.shape[1] / np.maximum(seen, 1), 0.0)
    return distances * factor[:, None]


def neighbour_space(encoded: EncodedCovariates, weights: np.ndarray) -> np.ndarray:
    """Coordinates whose L1 distance is the weighted covariate distance.

    Numeric columns are multiplied by their weight (missing values sit at the
    median, 0); each categorical column becomes a one-hot block times half its
    weight, so two different levels are ``weight`` apart. Used only to *find*
    neighbours; the distances used by the model come from
    :func:`pair_distances`.
    """
    n_numeric = encoded.numeric.shape[1]
    blocks = [np.nan_to_num(encoded.numeric, nan=0.0) * weights[:n_numeric]]
    for j in range(encoded.categorical.shape[1]):
        codes = encoded.categorical[:, j]
        # One slot per training level plus one for levels never seen in training.
        width = encoded.n_levels[j] + 1
        one_hot = np.zeros((codes.shape[0], width))
        seen = codes >= 0
        one_hot[np.flatnonzero(seen), codes[seen]] = 1.0
        blocks.append(one_hot * 0.5 * weights[n_numeric + j])
    return np.concatenate(blocks, axis=1)


def encoder_features(encoded: EncodedCovariates) -> np.ndarray:
    """The covariate encoder's input: numeric covariates (robust-scaled, missing at 0), levels."""
    return neighbour_space(encoded, np.ones(encoded.numeric.shape[1] + len(encoded.n_levels)))


def build_neighbour_pairs(
    encoded: EncodedCovariates,
    weights: np.ndarray,
    n_neighbors: int,
    n_random: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse graph of each sample's ``n_neighbors`` nearest samples.

    ``n_random`` further pairs per sample join it to random other samples:
    without them every pair would agree on a covariate that splits the
    samples into groups (a categorical one, say), and its weight could not be
    learned.

    Returns
    -------
    pairs : int ndarray (n_pairs, 2)
        ``i < j``, no duplicate pair; O(n_samples * (n_neighbors + n_random))
        memory.
    is_random : bool ndarray (n_pairs,)
        Whether the pair is a random one (and not also a neighbour pair).
    """
    space = neighbour_space(encoded, weights)
    n = space.shape[0]
    index = NeighbourSearch(space).query(space, n_neighbors + 1)
    neighbours = _unique_pairs(np.repeat(np.arange(n), n_neighbors + 1), index.ravel())
    if n_random == 0:
        return neighbours, np.zeros(len(neighbours), dtype=bool)
    rng = np.random.default_rng(rng)
    extra = _unique_pairs(np.repeat(np.arange(n), n_random), rng.integers(0, n, n * n_random))
    known = neighbours[:, 0] * n + neighbours[:, 1]  # sorted: _unique_pairs sorts its keys
    extra = extra[~_sorted_contains(known, extra[:, 0] * n + extra[:, 1])]
    is_random = np.r_[np.zeros(len(neighbours), dtype=bool), np.ones(len(extra), dtype=bool)]
    return np.concatenate([neighbours, extra]), is_random


def _unique_pairs(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    keep = rows != cols
    low, high = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    # One int64 key per pair: a 1-D unique is several times faster than unique(axis=0).
    n = int(high.max()) + 1 if high.size else 1
    keys = _sorted_unique(low.astype(np.int64) * n + high)
    return np.stack([keys // n, keys % n], axis=1)


# NumPy 2.3+ computes np.unique and np.isin of integers through a hash table,
# which is 30 to 60 times slower than sorting for the millions of pair keys
# built here (2.6e6 keys: 3.1 s against 0.05 s).
def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


def _sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys`` (ascending, unique)."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys


class NeighbourSearch:
    """Exact nearest neighbours under the L1 distance (a k-d tree).

    SciPy's tree on all cores: for 1e5 samples and 26 neighbours it takes 3 s
    where scikit-learn's ``NearestNeighbors`` (one core) takes 20 s.
    """

    def __init__(self, space: np.ndarray):
        from scipy.spatial import cKDTree

        self.n_samples = space.shape[0]
        self._tree = cKDTree(np.ascontiguousarray(space, dtype=float))

    def query(self, points: np.ndarray, n_neighbors: int) -> np.ndarray:
        """Indices (n_points, n_neighbors) of the nearest samples, nearest first."""
        k = min(int(n_neighbors), self.n_samples)
        _, index = self._tree.query(
            np.ascontiguousarray(points, dtype=float), k=list(range(1, k + 1)), p=1, workers=-1
        )
        return np.asarray(index, dtype=np.int64).reshape(points.shape[0], k)
