"""What the user passes, checked once at the edge: settings, predictors and covariates, labels.

:func:`check_settings` turns an estimator's parameters into a frozen
:class:`FitConfig` (or raises a clear error); :func:`split_covariates`
takes the covariates out of ``X`` when ``covariate_columns`` names them;
:func:`class_labels` codes a classifier's two labels as 0 and 1.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

import numpy as np
import pandas as pd

from .models import FAMILIES, PRIORS
from .parallel import check_n_jobs
from .predict import PREDICT_METHODS
from .preprocessing import check_array, check_dense, check_response, check_two_dimensional

__all__ = [
    "FitConfig",
    "check_positive",
    "check_settings",
    "split_covariates",
    "sample_index",
    "input_names",
    "check_feature_names",
    "class_labels",
    "check_new_X",
    "check_rows",
]


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """The checked settings of one fit (the estimator's parameters, ``family`` resolved)."""

    family: str
    rank: int
    n_neighbors: int
    gamma: float
    prior: str
    prior_scale: float | str
    covariate_weight_scale: float
    noise_scale: float | str
    fit_intercept: bool
    offset: bool
    encoder_width: int
    predict_method: str
    validation_fraction: float
    step_size: float
    max_steps: int
    tol: float
    progress_bar: bool
    random_state: int | None
    devices: int | str | None
    batch_size: int | str | None
    n_jobs: int | None = None
    df: float | None = None


def check_positive(value, name: str, *, integer: bool = False, allow=()) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is positive (or in ``allow``)."""
    if value in allow:
        return
    if integer:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    elif (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")


def check_settings(estimator, family: str) -> FitConfig:
    """The estimator's parameters as a :class:`FitConfig`, each checked."""
    if isinstance(family, str):
        family = family.lower()
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}.")
    if estimator.prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}; got {estimator.prior!r}.")
    if estimator.predict_method not in PREDICT_METHODS:
        raise ValueError(
            f"predict_method must be one of {PREDICT_METHODS}; got {estimator.predict_method!r}."
        )
    check_positive(estimator.rank, "rank", integer=True)
    check_positive(estimator.n_neighbors, "n_neighbors", integer=True)
    check_positive(estimator.max_steps, "max_steps", integer=True)
    if estimator.batch_size not in ("auto", None):
        check_positive(estimator.batch_size, "batch_size", integer=True)
    check_n_jobs(estimator.n_jobs)
    n_fits = estimator.n_fits
    if not (isinstance(n_fits, str) and n_fits == "auto"):
        if isinstance(n_fits, bool) or not isinstance(n_fits, numbers.Integral) or n_fits < 1:
            raise ValueError(
                f"n_fits must be 'auto' or a whole number >= 1 (the fits averaged into coef_); "
                f"got {n_fits!r}."
            )
    width = estimator.encoder_width
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 0:
        raise ValueError(
            f"encoder_width must be an integer >= 0 (0 for no encoder); got {width!r}."
        )
    for name in ("gamma", "covariate_weight_scale", "step_size", "tol"):
        check_positive(getattr(estimator, name), name)
    check_positive(estimator.prior_scale, "prior_scale", allow=("auto",))
    check_positive(estimator.noise_scale, "noise_scale", allow=("auto",))
    check_positive(estimator.df, "df", allow=(None,))
    if estimator.df is not None and family != "student_t":
        raise ValueError(
            f"df (degrees of freedom) applies to family='student_t' only; got family={family!r}."
        )
    if not 0.0 <= estimator.validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be in [0, 1); got {estimator.validation_fraction!r}."
        )
    names = [field.name for field in dataclasses.fields(FitConfig) if field.name != "family"]
    return FitConfig(family=family, **{name: getattr(estimator, name) for name in names})


def _column_positions(columns, names: list, width: int, is_frame: bool) -> list[int]:
    """Positions in X of the columns named (or numbered) by ``covariate_columns``."""
    if isinstance(columns, str | numbers.Integral):
        columns = [columns]
    positions, unknown = [], []
    for column in columns:
        if column in names:
            positions.append(names.index(column))
        elif (
            isinstance(column, numbers.Integral)
            and not isinstance(column, bool)
            and -width <= column < width
        ):
            positions.append(int(column) % width)
        else:
            unknown.append(column)
    if unknown or not positions:
        what = "columns of X" if is_frame else "positions in X (an array has no names)"
        raise ValueError(
            f"covariate_columns {unknown or columns!r} are not {what}; "
            f"X has {names[:10]}{'...' if width > 10 else ''}."
        )
    return positions


def split_covariates(X, covariates, columns, *, expected_features=None, estimator_name=""):
    """Predictors and covariates of a call; ``covariate_columns`` takes the covariates from X.

    With ``columns=None`` both are returned as given. With a list of column
    names (DataFrame) or positions, those columns of ``X`` are the
    covariates and the others the predictors; with ``"all"`` every column of
    ``X`` is both. ``expected_features`` (after fit) is the number of
    columns ``X`` must have.
    """
    if columns is None:
        return X, covariates
    if covariates is not None:
        raise ValueError(
            "covariates were passed although covariate_columns is set; either pass "
            "covariates=... or name the covariate columns of X, not both."
        )
    check_dense(X, "X")
    frame = X if isinstance(X, pd.DataFrame) else None
    if frame is None:
        values = np.asarray(X)
        check_two_dimensional(values, "X")
        width = values.shape[1]
    else:
        width = frame.shape[1]
    if expected_features is not None and width != expected_features:
        raise ValueError(
            f"X has {width} features, but {estimator_name} is expecting "
            f"{expected_features} features as input."
        )
    if isinstance(columns, str) and columns == "all":
        return X, (X if frame is not None else values)
    names = list(frame.columns) if frame is not None else list(range(width))
    positions = _column_positions(columns, names, width, frame is not None)
    rest = [j for j in range(width) if j not in positions]
    if not rest:
        raise ValueError(
            "covariate_columns takes every column of X, leaving no predictor; use "
            'covariate_columns="all" to use the predictors as covariates too.'
        )
    if frame is not None:
        predictors = frame.iloc[:, rest]
        text = [
            str(c) for c in predictors.columns if not pd.api.types.is_numeric_dtype(predictors[c])
        ]
        if text:
            raise TypeError(
                f"X must be numeric; column(s) {text} are not. With covariate_columns="
                f"{columns!r} every other column of X is a predictor, and predictors must be "
                "numeric: name those columns in covariate_columns (covariates may be "
                "categorical) or drop them from X."
            )
        return predictors, frame.iloc[:, positions]
    return values[:, rest], values[:, positions]


def input_features(X) -> tuple[int, np.ndarray | None]:
    """``n_features_in_`` and ``feature_names_in_`` (None unless X has string column names)."""
    if isinstance(X, pd.DataFrame):
        names = None
        if all(isinstance(c, str) for c in X.columns):
            names = np.asarray(X.columns, dtype=object)
        return X.shape[1], names
    return np.asarray(X).shape[1], None


def _first_index(n_samples: int, candidates) -> pd.Index | None:
    """The index of the first pandas input with ``n_samples`` rows, or None."""
    for candidate in candidates:
        index = getattr(candidate, "index", None)
        if isinstance(index, pd.Index) and len(index) == n_samples:
            return index
    return None


def sample_index(n_samples: int, *candidates) -> list:
    """Labels of the samples: the index of the first pandas input, else 0..n-1."""
    index = _first_index(n_samples, candidates)
    if index is None:
        return list(range(n_samples))
    return [item.item() if isinstance(item, np.generic) else item for item in index]


def input_names(n_samples: int, y, *candidates) -> dict:
    """``sample_index_name`` (first pandas input with ``n_samples`` rows) and ``target_name``."""
    index = _first_index(n_samples, candidates)
    index_name = None if index is None or index.name is None else str(index.name)
    target = getattr(y, "name", None)
    return {"sample_index_name": index_name, "target_name": None if target is None else str(target)}


def class_labels(y) -> tuple[np.ndarray | None, np.ndarray]:
    """Two class labels of any type: ``(classes, y coded 0 for classes[0], 1 for classes[1])``."""
    from sklearn.utils.multiclass import type_of_target

    from .preprocessing import column_to_1d

    if y is None or np.iscomplexobj(np.asarray(y)):
        return None, check_response(y, "gaussian")
    values = column_to_1d(np.asarray(y))
    if values.ndim != 1:
        raise ValueError(f"y must be 1-D with shape (n_samples,); got shape {values.shape}.")
    if values.shape[0] == 0:
        raise ValueError("y is empty.")
    if values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
        raise ValueError("y contains NaN or infinite values; remove those samples first.")
    if values.dtype.kind == "O" and pd.isna(values).any():
        raise ValueError("y contains missing labels; remove those samples first.")
    kind = type_of_target(values)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"Unknown label type: {kind}. PersonalizedClassifier needs class labels (0/1, "
            "bool, or two labels of any type); for a numeric response use "
            "PersonalizedRegression."
        )
    classes = np.unique(values)
    if classes.size < 2:
        raise ValueError("y holds a single class (one class); a classifier needs two.")
    if classes.size > 2:
        raise ValueError(
            f"Only binary classification is supported. The type of the target is {kind} "
            f"({classes.size} classes); fit one classifier per class (one-vs-rest)."
        )
    return classes, (values == classes[1]).astype(float)


def _listed(names) -> str:
    shown = "".join(f"- {name}\n" for name in names[:5])
    return shown + ("- ...\n" if len(names) > 5 else "")


def check_feature_names(X, fitted_names, estimator_name: str) -> None:
    """Raise unless a DataFrame ``X`` has the columns of ``fit`` in the same order.

    Predictors are used by position, so a reordered or renamed frame would
    give silently wrong predictions. As in scikit-learn: a ``ValueError``
    listing the unseen, missing or reordered names; a ``UserWarning`` when
    only one of ``fit`` and this call had feature names.
    """
    names = input_features(X)[1] if isinstance(X, pd.DataFrame) else None
    if fitted_names is None:
        if names is not None:
            warnings.warn(
                f"X has feature names, but {estimator_name} was fitted without feature names",
                UserWarning,
                stacklevel=4,
            )
        return
    fitted = [str(name) for name in fitted_names]
    if names is None:
        warnings.warn(
            f"X does not have valid feature names, but {estimator_name} was fitted with "
            f"feature names {fitted}; its columns are taken in that order.",
            UserWarning,
            stacklevel=4,
        )
        return
    names = [str(name) for name in names]
    if names == fitted:
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = [name for name in names if name not in fitted]
    missing = [name for name in fitted if name not in names]
    if unseen:
        message += "Feature names unseen at fit time:\n" + _listed(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + _listed(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    message += (
        f"Pass the columns in fit's order: X[{fitted}] (estimator.feature_names_in_); "
        "predictors are used by position."
    )
    raise ValueError(message)


def check_new_X(X, n_predictors: int, estimator_name: str) -> np.ndarray:
    """New samples' predictors as a float array with the fitted number of features."""
    X, _ = check_array(X, "X")
    if X.shape[1] != n_predictors:
        raise ValueError(
            f"X has {X.shape[1]} features, but {estimator_name} is expecting "
            f"{n_predictors} features as input."
        )
    return X


def check_rows(X: np.ndarray, n_covariate_rows: int) -> None:
    if n_covariate_rows != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but covariates has {n_covariate_rows}; they must match."
        )
