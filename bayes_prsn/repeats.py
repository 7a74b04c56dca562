"""Rows that repeat another row exactly, and weighted fits that do not depend on the row order.

A row that equals an earlier one in every input (predictors, covariates,
response, exposure and trials) is the same sample observed again: it is
fitted as one sample whose weight is the sum of the rows' weights (1 each
without ``sample_weight``). So integer weights and repeated rows give the
same fit, as scikit-learn's convention asks. A per-sample model could not
otherwise honour it: each copy would get its own code and prior, and a copy
would be its own nearest neighbour.

Where that applies, or where the weights are not all one, the distinct rows
are fitted in a fixed order (by a hash of their values), so that the fit is
the same whatever order the rows came in; :func:`distinct_rows` returns that
order and the one to give the fitted samples back in (first occurrences, as
passed); :func:`samples_to_fit` applies it to the inputs of ``fit`` and
:func:`reorder_samples` gives the fitted state back in the order passed.
Unweighted fits of distinct rows are left exactly as they were:
in the order passed, where the random held-out split and the start depend
on the order.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from .inputs import sample_index
from .predict import neighbour_tree
from .sample_inputs import MODEL_ARRAYS, SampleInputs, drop_unweighted, take_rows
from .state import FittedState

__all__ = ["DistinctRows", "distinct_rows", "reorder_samples", "samples_to_fit"]


class DistinctRows(NamedTuple):
    """How the rows passed become the samples fitted.

    ``fitted`` are the positions (in the rows passed) of the samples to
    fit, in the fixed order; ``inputs`` their exposure, trials and summed
    weights; ``restore`` the order (positions in ``fitted``) that gives the
    fitted samples back as first occurrences in the order passed;
    ``n_rows`` the number of rows passed; ``labels`` the labels of the first occurrences
    (the pandas index, else the row positions), in the order restored.
    """

    fitted: np.ndarray
    inputs: SampleInputs
    restore: np.ndarray
    n_rows: int
    labels: list | None = None


def _frame(values, name: str) -> pd.DataFrame | None:
    """``values`` as a frame of columns named ``name0, name1, ...`` (None: not tabular)."""
    if isinstance(values, pd.Series):
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        frame = values.reset_index(drop=True)
    else:
        array = np.asarray(values)
        if array.ndim not in (1, 2):
            return None
        # Not reshape(len, -1): that is ambiguous for no rows.
        frame = pd.DataFrame(array[:, None] if array.ndim == 1 else array)
    frame.columns = [f"{name}{j}" for j in range(frame.shape[1])]
    return frame


def _rows(inputs: dict) -> pd.DataFrame | None:
    """Every input side by side, one row per sample (None where they are not tabular)."""
    frames = []
    for name, values in inputs.items():
        if values is None:
            continue
        frame = _frame(values, name)
        if frame is None or (frames and len(frame) != len(frames[0])):
            return None  # build_problem reports the shape or length error.
        frames.append(frame)
    return pd.concat(frames, axis=1)


def distinct_rows(predictors, covariates, y, inputs: SampleInputs) -> DistinctRows | None:
    """The samples to fit when rows repeat or weights are given; None to fit the rows as passed.

    Warns (``UserWarning``) when rows repeat: ``coef_`` then has one row per
    distinct sample.
    """
    weights = inputs.sample_weight
    rows = _rows(
        {"x": predictors, "c": covariates, "y": y, "e": inputs.exposure, "t": inputs.trials}
    )
    if rows is None:
        return None
    try:
        hashes = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    except (TypeError, ValueError):
        return None  # unhashable values: build_problem reports what it cannot take.
    # np.unique sorts by hash (the fixed order); first holds each hash's first row.
    _, first, group = np.unique(hashes, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    n_repeats = len(hashes) - len(first)
    if n_repeats == 0 and (weights is None or np.all(weights == 1.0)):
        return None
    if n_repeats and int(rows.duplicated().sum()) != n_repeats:
        return None  # a hash shared by different rows: fit the rows as passed.
    if n_repeats:
        warnings.warn(
            f"{n_repeats} row(s) repeat an earlier row exactly (predictors, covariates, "
            "response, exposure and trials); each distinct row is fitted as one sample with "
            "the rows' weights added, so coef_ has one row per distinct sample "
            f"({len(first)}, in the order of their first rows).",
            UserWarning,
            stacklevel=4,
        )
    summed = np.bincount(group, weights=np.ones(len(group)) if weights is None else weights)
    fitted_inputs = inputs.take(first)._replace(sample_weight=summed)
    restore = np.argsort(first, kind="stable")
    return DistinctRows(first, fitted_inputs, restore, len(hashes))


def samples_to_fit(family: str, inputs: tuple, per_sample: dict):
    """``(predictors, covariates, y, SampleInputs, DistinctRows or None)`` of a call to ``fit``.

    ``inputs`` are the predictors, covariates and response as passed,
    ``per_sample`` the exposure, trials and weights: checked, rows of weight
    zero dropped (:func:`~bayes_prsn.sample_inputs.drop_unweighted`), then
    the distinct rows in the fixed order with their summed weights where
    :func:`distinct_rows` applies.
    """
    predictors, covariates, y, checked = drop_unweighted(family, inputs, per_sample)
    distinct = distinct_rows(predictors, covariates, y, checked)
    if distinct is None:
        return predictors, covariates, y, checked, None
    labels = sample_index(distinct.n_rows, predictors, covariates, y)
    first_rows = distinct.fitted[distinct.restore]
    distinct = distinct._replace(labels=[labels[i] for i in first_rows])
    rows = take_rows((predictors, covariates, y), distinct.fitted, distinct.n_rows)
    return (*rows, distinct.inputs, distinct)


def reorder_samples(state: FittedState, distinct: DistinctRows | None) -> FittedState:
    """The fit of ``distinct`` rows with its samples in the order passed (``state`` if None).

    Every per-sample array moves to ``distinct.restore``, the pairs point at
    the new positions, the labels are the first rows' and the neighbour
    search is rebuilt; no fitted value changes.
    """
    if distinct is None:
        return state
    order = distinct.restore
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    data = dict(state.data)
    for name in ("X", "y", *MODEL_ARRAYS):
        if name in data:
            data[name] = np.asarray(data[name])[order]
    pairs = np.asarray(data["pairs"])
    data["pairs"] = position[pairs].astype(pairs.dtype)
    encoded = state.encoded.take(order)
    params = state.params._replace(embedding=np.asarray(state.params.embedding)[order])
    return dataclasses.replace(
        state,
        X=state.X[order],
        y=state.y[order],
        data=data,
        encoded=encoded,
        covariates_frame=state.covariates_frame.iloc[order].reset_index(drop=True),
        sample_index=list(distinct.labels),
        params=params,
        theta=state.theta[order],
        neighbours=neighbour_tree(encoded, params.covariate_weights),
    )
