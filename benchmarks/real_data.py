"""Real data sets with published reference figures (../shared/ANCHORS.md), as arrays.

Each loader returns ``(X, y, covariates, all_columns)``: predictors,
standardised response, the covariates as a DataFrame, and every variable as
one array (for least squares on all of them). Georgia comes from libpysal's
example files: imported when libpysal is installed here, otherwise found
through the GWR environment's Python (mgwr depends on libpysal), otherwise
given with ``--georgia-csv``.

* ``diabetes``: scikit-learn's 442 patients; covariates age, sex, bmi; the
  other seven variables are the predictors.
* ``georgia_mgwr``: 159 counties, mgwr's notebook set-up: standardised
  PctFB, PctBlack, PctRural as predictors of PctBach; covariates the
  projected coordinates X, Y.
* ``georgia_gwr4``: GWR4's set-up: raw PctRural, PctPov, PctBlack as
  predictors of PctBach; covariates the coordinates.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

GEORGIA_FILE = "GData_utm.csv"
GEORGIA_PREDICTORS = {
    "georgia_mgwr": ["PctFB", "PctBlack", "PctRural"],
    "georgia_gwr4": ["PctRural", "PctPov", "PctBlack"],
}


def _standardise(values: np.ndarray) -> np.ndarray:
    return (values - values.mean(axis=0)) / values.std(axis=0)


def georgia_path(gwr_python: str | None, given: str | None) -> Path | None:
    """Where libpysal keeps Georgia's data, or None when no libpysal is found."""
    if given:
        return Path(given)
    script = f"import libpysal; print(libpysal.examples.get_path({GEORGIA_FILE!r}))"
    try:
        import libpysal

        return Path(libpysal.examples.get_path(GEORGIA_FILE))
    except ImportError:
        pass
    if gwr_python is None:
        return None
    out = subprocess.run([gwr_python, "-c", script], capture_output=True, text=True)
    path = Path(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    return path if path is not None and path.exists() else None


def load_diabetes():
    import pandas as pd
    from sklearn.datasets import load_diabetes

    raw = load_diabetes(as_frame=True, scaled=False)
    frame, target = raw.data, raw.target.to_numpy(float)
    covariate_names = ["age", "sex", "bmi"]
    predictors = [c for c in frame.columns if c not in covariate_names]
    covariates = frame[covariate_names].copy()
    covariates["sex"] = pd.Categorical(covariates["sex"].astype(int))
    return (
        frame[predictors].to_numpy(float),
        _standardise(target),
        covariates.reset_index(drop=True),
        frame.to_numpy(float),
    )


def load_georgia(name: str, path: Path):
    import pandas as pd

    frame = pd.read_csv(path)
    X = frame[GEORGIA_PREDICTORS[name]].to_numpy(float)
    if name == "georgia_mgwr":
        X = _standardise(X)
    covariates = frame[["X", "Y"]].astype(float).reset_index(drop=True)
    return (
        X,
        _standardise(frame["PctBach"].to_numpy(float)),
        covariates,
        np.column_stack([X, covariates.to_numpy()]),
    )


def load(name: str, georgia: Path | None):
    """The data set ``name`` (see the module docstring)."""
    if name == "diabetes":
        return load_diabetes()
    if georgia is None:
        raise FileNotFoundError(
            f"{name} needs libpysal's {GEORGIA_FILE}: install libpysal, give --gwr-python, "
            "or pass --georgia-csv."
        )
    return load_georgia(name, georgia)


NAMES = ("diabetes", "georgia_mgwr", "georgia_gwr4")
