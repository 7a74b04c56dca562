"""Per-sample inputs besides ``X``, ``y`` and the covariates: exposure, trials and weights.

:func:`check_sample_inputs` checks them once at the edge of ``fit`` and
returns a :class:`SampleInputs`: the log exposure as a known part of each
linear predictor (rate families), the binomial family's trials and the
weight of each sample's log-likelihood. Samples of weight zero are dropped
before anything else sees them, as if they had not been passed
(scikit-learn's convention); :func:`take_rows` drops them from the other
inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "EXPOSURE_FAMILIES",
    "MODEL_ARRAYS",
    "PER_SAMPLE",
    "drop_unweighted",
    "SampleInputs",
    "check_length",
    "check_sample_inputs",
    "log_exposure",
    "take_rows",
]

#: The per-sample arguments of ``fit`` this module checks.
PER_SAMPLE = ("exposure", "trials", "sample_weight")
#: The model's per-sample arguments they become (:meth:`SampleInputs.model_arrays`).
MODEL_ARRAYS = ("eta_offset", "trials", "sample_weight")
#: Families whose log link takes an exposure (``eta + log(exposure)``).
EXPOSURE_FAMILIES = ("poisson", "negative_binomial", "gamma")


class SampleInputs(NamedTuple):
    """Checked per-sample inputs (None where not given), in the order of the samples kept."""

    exposure: np.ndarray | None = None
    trials: np.ndarray | None = None
    sample_weight: np.ndarray | None = None

    def take(self, index) -> SampleInputs:
        """The inputs of the samples at ``index``."""
        return SampleInputs(*(None if v is None else v[index] for v in self))

    def model_arrays(self) -> dict:
        """The model's arguments: ``eta_offset`` (log exposure), ``trials``, ``sample_weight``."""
        arrays = {}
        if self.exposure is not None:
            arrays["eta_offset"] = np.log(self.exposure)
        if self.trials is not None:
            arrays["trials"] = self.trials
        if self.sample_weight is not None:
            arrays["sample_weight"] = self.sample_weight
        return arrays


def _vector(values, name: str, n_samples: int, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric ({what}): {err}") from err
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have one value per sample, shape ({n_samples},); got shape {array.shape}."
        )
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(
            f"{name} contains NaN or infinite values at positions {first}; {name} must hold "
            f"{what} for every sample."
        )
    return array


def check_sample_inputs(
    family: str, n_samples: int, *, exposure=None, trials=None, sample_weight=None
) -> tuple[SampleInputs, np.ndarray | None]:
    """``(inputs of the samples kept, positions kept or None)``, each input checked.

    Raises a ``ValueError`` naming the argument: an exposure for a family
    without a log link, non-positive or missing exposures, trials for
    another family than binomial, trials that are not positive integers,
    weights of the wrong length, negative or all zero. (Missing trials of a
    binomial fit are the family's check of the response, with the counts.)
    """
    if exposure is not None:
        if family not in EXPOSURE_FAMILIES:
            raise ValueError(
                f"exposure applies to the log-link families {EXPOSURE_FAMILIES}; got "
                f"family={family!r}. For a gaussian response subtract a known offset from y."
            )
        exposure = _vector(exposure, "exposure", n_samples, "positive exposures")
        if np.any(exposure <= 0):
            raise ValueError(
                "exposure must be positive (the model adds log(exposure) to the linear "
                f"predictor); {int(np.sum(exposure <= 0))} value(s) are zero or negative."
            )
    if trials is not None:
        if family != "binomial":
            raise ValueError(f"trials applies to family='binomial' only; got family={family!r}.")
        trials = _vector(trials, "trials", n_samples, "positive integer numbers of trials")
        if np.any(trials < 1) or np.any(trials != np.round(trials)):
            raise ValueError("trials must hold positive integer numbers of trials (>= 1).")
    keep = None
    if sample_weight is not None:
        sample_weight = _vector(sample_weight, "sample_weight", n_samples, "weights >= 0")
        if np.any(sample_weight < 0):
            raise ValueError("sample_weight must be non-negative; negative weights were passed.")
        if n_samples and not np.any(sample_weight > 0):
            raise ValueError("sample_weight is zero for every sample; nothing would be fitted.")
        if np.any(sample_weight == 0):
            keep = np.flatnonzero(sample_weight > 0)
    inputs = SampleInputs(exposure, trials, sample_weight)
    return (inputs if keep is None else inputs.take(keep)), keep


def check_length(y, n_samples: int) -> None:
    """A ``ValueError`` unless ``y`` has ``n_samples`` rows (checked before rows are dropped)."""
    if y is not None and np.ndim(y) >= 1 and len(y) != n_samples:
        raise ValueError(
            f"X and y have different numbers of samples ({n_samples} and {len(y)}); pass one "
            "response per row of X."
        )


def take_rows(inputs: tuple, keep: np.ndarray | None, n_samples: int) -> tuple:
    """Rows ``keep`` of each of ``inputs`` (arrays, lists, Series, DataFrames; None stays).

    ``inputs`` unchanged when ``keep`` is None; else the response (the last
    input) must first have ``n_samples`` rows.
    """
    if keep is None:
        return inputs
    check_length(inputs[-1], n_samples)

    def take(values):
        if values is None:
            return None
        if isinstance(values, pd.DataFrame | pd.Series):
            return values.iloc[keep]
        return np.asarray(values)[keep]

    return tuple(take(values) for values in inputs)


def drop_unweighted(family: str, inputs: tuple, per_sample: dict):
    """``(*inputs, SampleInputs)``: ``per_sample`` checked, zero-weight rows dropped from all.

    ``inputs`` are the predictors, the covariates and the response, as passed.
    """
    first = inputs[0]
    n_rows = len(first) if hasattr(first, "__len__") else len(np.asarray(first))
    sample_inputs, keep = check_sample_inputs(family, n_rows, **per_sample)
    return (*take_rows(inputs, keep, n_rows), sample_inputs)


def log_exposure(family: str, exposure, n_samples: int) -> np.ndarray | float:
    """Log of a new samples' ``exposure`` for prediction (0 without one: per unit of exposure)."""
    if exposure is None:
        return 0.0
    inputs, _ = check_sample_inputs(family, n_samples, exposure=exposure)
    return np.log(inputs.exposure)
