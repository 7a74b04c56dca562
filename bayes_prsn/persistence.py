"""Save and load fitted estimators in an open format (no pickle, no code execution).

A saved model is one ZIP archive holding

- ``metadata.json``: format name and version, the package version, the
  estimator class and parameters, every scalar and list attribute, the
  covariate coding, and a SHA-256 checksum of every other member;
- ``arrays/<name>.npy``: every fitted array in NumPy's ``.npy`` format,
  read back with ``allow_pickle=False``;
- ``posterior.nc``: the ArviZ data of ``sample_posterior`` (netCDF-4), when
  there is a posterior.

The archive is written to a temporary file beside the target and renamed
into place, so an interrupted save never leaves a half-written model. On
loading, the checksums, the format version and the shapes of all arrays are
checked before anything is used; any problem raises :class:`ModelFileError`
with a one-line message.
"""

from __future__ import annotations

import hashlib
import io
import json
import numbers
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "save", "load"]

#: Name stored in every saved model.
FORMAT = "bayes_prsn-model"
#: Version of the layout written here; files with a larger version are refused.
FORMAT_VERSION = 1

# Fitted arrays saved as .npy (attribute name -> stored name).
_ARRAYS = (
    "coef_",
    "intercept_",
    "population_coef_",
    "covariate_weights_",
    "embedding_",
    "dictionary_",
    "loss_history_",
    "_dictionary_internal",
    "_offset_internal",
    "_theta_internal",
    "_train_X",
    "_train_y",
)
_OPTIONAL_ARRAYS = ("classes_", "_posterior_embedding")
# Scalars, strings and lists saved in metadata.json.
_VALUES = (
    "family_",
    "n_features_in_",
    "n_predictors_",
    "feature_names_",
    "covariate_names_",
    "covariate_names_used_",
    "noise_scale_",
    "likelihood_scale_",
    "n_steps_",
    "converged_",
    "population_intercept_",
    "validation_scores_",
    "_fit_settings",
)
_OPTIONAL_VALUES = (
    "posterior_method_",
    "posterior_noise_scale_",
    "posterior_gamma_",
    "posterior_diagnostics_",
)
_TRAIN_DATA = ("X", "pairs", "pair_distances", "pair_weights", "y")
_ENCODER = ("names_in_", "numeric_names_", "categorical_names_", "centers_", "scales_", "levels_")
_MAX_MEMBER_BYTES = 2**34


class ModelFileError(ValueError):
    """A saved model cannot be read: missing, damaged, tampered with, or from a newer format."""


def _plain(value):
    """``value`` with NumPy scalars and tuples turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _labels(values) -> dict:
    """Sample labels or category levels as JSON, keeping str/int/float/bool as they are."""
    items = [v.item() if isinstance(v, np.generic) else v for v in values]
    if all(isinstance(v, str | bool | int | float) for v in items):
        return {"as_text": False, "values": items}
    return {"as_text": True, "values": [str(v) for v in items]}


def _frame_state(frame: pd.DataFrame, arrays: dict) -> dict:
    """A covariate DataFrame as numeric arrays plus JSON for the other columns."""
    columns = []
    for j, name in enumerate(frame.columns):
        column = frame.iloc[:, j]
        entry = {"name": _plain(name)}
        if pd.api.types.is_bool_dtype(column.dtype) and not column.isna().any():
            entry["kind"] = "bool"
            arrays[f"covariates.{j}"] = column.to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(column.dtype):
            entry["kind"] = "numeric"
            arrays[f"covariates.{j}"] = column.to_numpy(dtype=float, na_value=np.nan)
        else:
            entry["kind"] = "category" if isinstance(column.dtype, pd.CategoricalDtype) else "text"
            entry["values"] = [None if pd.isna(v) else _plain(v) for v in column.tolist()]
        columns.append(entry)
    return {"columns": columns}


def _frame_from_state(state: dict, arrays: dict) -> pd.DataFrame:
    data = {}
    for j, entry in enumerate(state["columns"]):
        if entry["kind"] in ("numeric", "bool"):
            values = arrays[f"covariates.{j}"]
        else:
            values = pd.array(entry["values"], dtype=object)
            if entry["kind"] == "category":
                values = pd.Categorical(values)
        data[j] = values
    frame = pd.DataFrame(data)
    frame.columns = [entry["name"] for entry in state["columns"]]
    return frame


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def save(estimator, path) -> Path:
    """Write a fitted estimator to ``path`` (see the module docstring for the layout).

    Returns the path written. The file appears only once it is complete.
    """
    from . import __version__, _arviz
    from .estimator import ENCODER_SITES

    estimator._check_fitted()
    path = Path(path)
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        plain = _plain(value)
        if plain != value and not isinstance(value, tuple | list):
            raise ValueError(
                f"cannot save parameter {name}={value!r}: only numbers, strings, lists and None "
                "can be saved; set it to one of those first."
            )
    arrays = {name: getattr(estimator, name) for name in _ARRAYS}
    for name in _OPTIONAL_ARRAYS:
        if name in estimator.__dict__:
            arrays[name] = getattr(estimator, name)
    for name in _TRAIN_DATA:
        arrays[f"train_data.{name}"] = estimator._train_data[name]
    for name in ("x_scaler_", "y_scaler_"):
        scaler = getattr(estimator, name)
        arrays[f"{name}.center"], arrays[f"{name}.scale"] = scaler.center, scaler.scale
    if estimator._encoder_params is not None:
        for site, value in zip(ENCODER_SITES, estimator._encoder_params, strict=True):
            arrays[f"covariate_encoder.{site}"] = value
    encoded = estimator._train_encoded
    arrays["train_encoded.numeric"] = encoded.numeric
    arrays["train_encoded.categorical"] = encoded.categorical
    values = {name: _plain(getattr(estimator, name)) for name in _VALUES}
    for name in _OPTIONAL_VALUES:
        if name in estimator.__dict__:
            values[name] = _plain(getattr(estimator, name))
    if "feature_names_in_" in estimator.__dict__:
        values["feature_names_in_"] = _plain(estimator.feature_names_in_)
    encoder = estimator.encoder_
    encoder_state = {name: _plain(getattr(encoder, name)) for name in _ENCODER[:-1]}
    encoder_state["levels_"] = [_labels(levels) for levels in encoder.levels_]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bayes_prsn_version": __version__,
        "class": type(estimator).__name__,
        "params": _plain(params),
        "values": values,
        "encoder": encoder_state,
        "n_levels": list(encoded.n_levels),
        "sample_index": _labels(estimator._sample_index),
        "covariates_frame": _frame_state(estimator._covariates_frame, arrays),
    }
    members = {f"arrays/{name}.npy": _npy_bytes(value) for name, value in arrays.items()}
    if "idata_" in estimator.__dict__:
        with tempfile.TemporaryDirectory() as folder:
            netcdf = Path(folder) / "posterior.nc"
            _arviz.to_netcdf(estimator.idata_, netcdf)
            members["posterior.nc"] = netcdf.read_bytes()
    metadata["checksums"] = {
        name: hashlib.sha256(content).hexdigest() for name, content in members.items()
    }
    members = {"metadata.json": json.dumps(metadata, indent=1).encode(), **members}

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, content in members.items():
                    archive.writestr(name, content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        # Interrupted or failed: remove the partial file, keep any older model at ``path``.
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _fail(path, reason: str):
    raise ModelFileError(f"cannot load a bayes_prsn model from {str(path)!r}: {reason}")


def _read_members(path: Path) -> tuple[dict, dict]:
    """Metadata and raw members of a saved model, with every checksum verified."""
    if not path.exists():
        _fail(path, "no such file.")
    if path.is_dir():
        candidate = path / "model.bprsn"
        if not candidate.exists():
            _fail(path, "it is a folder without a model.bprsn file.")
        path = candidate
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "metadata.json" not in names:
                _fail(path, "it holds no metadata.json; it is not a saved bayes_prsn model.")
            for info in archive.infolist():
                if info.file_size > _MAX_MEMBER_BYTES:
                    _fail(path, f"member {info.filename} claims {info.file_size} bytes.")
            metadata = json.loads(archive.read("metadata.json").decode("utf-8"))
            members = {name: archive.read(name) for name in names if name != "metadata.json"}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        _fail(path, f"the file is damaged or truncated ({err}).")
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        _fail(path, f"metadata.json is not valid JSON ({err}).")
    except (zlib.error, OSError, ValueError, NotImplementedError, RuntimeError) as err:
        _fail(path, f"the file is damaged or cannot be read ({type(err).__name__}: {err}).")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        _fail(path, "it is not a saved bayes_prsn model (wrong format name).")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        _fail(path, "its format version is missing.")
    if version > FORMAT_VERSION:
        from . import __version__

        _fail(
            path,
            f"it was written by bayes_prsn {metadata.get('bayes_prsn_version')} in format "
            f"version {version}, newer than this bayes_prsn ({__version__}) reads "
            f"({FORMAT_VERSION}); upgrade bayes_prsn.",
        )
    checksums = metadata.get("checksums")
    if not isinstance(checksums, dict) or set(checksums) != set(members):
        _fail(path, "its list of members does not match the checksums in metadata.json.")
    for name, content in members.items():
        if hashlib.sha256(content).hexdigest() != checksums[name]:
            _fail(path, f"member {name} fails its checksum (the file was modified or damaged).")
    return metadata, members


def _array(members: dict, name: str, path) -> np.ndarray:
    key = f"arrays/{name}.npy"
    if key not in members:
        _fail(path, f"array {name} is missing.")
    try:
        array = np.lib.format.read_array(io.BytesIO(members[key]), allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - NumPy's header parser raises several types
        _fail(path, f"array {name} cannot be read ({type(err).__name__}: {err}).")
    if array.dtype.kind not in "biuf":
        _fail(path, f"array {name} has dtype {array.dtype}, not a number type.")
    return array


def load(path, cls=None):
    """Load an estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or Path
        The saved file, or a folder written by ``bayes-prsn fit`` (holding
        ``model.bprsn``).
    cls : class, optional
        Expected estimator class; a file holding another class is refused.

    Raises
    ------
    ModelFileError
        When the file is missing, truncated, damaged, tampered with, from a
        newer format version, or holds another estimator class.
    """
    from . import _arviz
    from .estimator import ENCODER_SITES, PersonalizedClassifier, PersonalizedRegression
    from .preprocessing import CovariateEncoder, EncodedCovariates, Standardizer

    path = Path(path)
    metadata, members = _read_members(path)
    classes = {c.__name__: c for c in (PersonalizedRegression, PersonalizedClassifier)}
    stored = metadata.get("class")
    if stored not in classes:
        _fail(path, f"unknown estimator class {stored!r}.")
    if cls is not None and classes[stored] is not cls:
        _fail(
            path,
            f"it holds a {stored}, not a {cls.__name__}; use {stored}.load or bayes_prsn.load.",
        )
    try:
        estimator = classes[stored](**metadata["params"])
        values = metadata["values"]
        for name in _VALUES:
            setattr(estimator, name, values[name])
        for name in _OPTIONAL_VALUES + ("feature_names_in_",):
            if name in values:
                setattr(estimator, name, values[name])
        if "feature_names_in_" in values:
            estimator.feature_names_in_ = np.asarray(values["feature_names_in_"], dtype=object)
        for name in _ARRAYS:
            setattr(estimator, name, _array(members, name, path))
        for name in _OPTIONAL_ARRAYS:
            if f"arrays/{name}.npy" in members:
                setattr(estimator, name, _array(members, name, path))
        estimator._train_data = {
            name: _array(members, f"train_data.{name}", path) for name in _TRAIN_DATA
        }
        for name in ("x_scaler_", "y_scaler_"):
            scaler = Standardizer(
                _array(members, f"{name}.center", path), _array(members, f"{name}.scale", path)
            )
            setattr(estimator, name, scaler)
        encoder = CovariateEncoder()
        state = metadata["encoder"]
        for name in _ENCODER[:-1]:
            setattr(encoder, name, list(state[name]))
        encoder.levels_ = [list(levels["values"]) for levels in state["levels_"]]
        estimator.encoder_ = encoder
        estimator._train_encoded = EncodedCovariates(
            _array(members, "train_encoded.numeric", path),
            _array(members, "train_encoded.categorical", path),
            tuple(int(n) for n in metadata["n_levels"]),
        )
        estimator._encoder_params = (
            tuple(_array(members, f"covariate_encoder.{site}", path) for site in ENCODER_SITES)
            if estimator.encoder_width
            else None
        )
        estimator._sample_index = list(metadata["sample_index"]["values"])
        frame_arrays = {}
        for member in members:
            if member.startswith("arrays/covariates."):
                name = member[len("arrays/") : -len(".npy")]
                frame_arrays[name] = _array(members, name, path)
        estimator._covariates_frame = _frame_from_state(metadata["covariates_frame"], frame_arrays)
        estimator._search = None
        estimator._neighbour_search()
        _check_consistent(estimator, path)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        _fail(path, f"metadata.json is incomplete or inconsistent ({type(err).__name__}: {err}).")
    if "posterior.nc" in members:
        if "_posterior_embedding" not in estimator.__dict__:
            _fail(path, "it holds a posterior without its code draws.")
        with tempfile.TemporaryDirectory() as folder:
            netcdf = Path(folder) / "posterior.nc"
            netcdf.write_bytes(members["posterior.nc"])
            try:
                estimator.idata_ = _arviz.from_netcdf(netcdf)
            except Exception as err:  # noqa: BLE001 - any reader failure means a bad file
                _fail(path, f"posterior.nc cannot be read ({type(err).__name__}: {err}).")
    return estimator


def _check_consistent(estimator, path) -> None:
    """Shapes and values of the loaded arrays agree with each other and are finite."""
    from .estimator import ENCODER_SITES, _encoder_features

    n = len(estimator._sample_index)
    p = estimator.n_predictors_
    columns = p + int(bool(estimator.fit_intercept))
    rank = estimator.rank
    n_covariates = len(estimator.covariate_names_used_)
    expected = {
        "coef_": (n, p),
        "intercept_": (n,),
        "population_coef_": (p,),
        "covariate_weights_": (n_covariates,),
        "embedding_": (n, rank),
        "dictionary_": (rank, p),
        "_dictionary_internal": (rank, columns),
        "_offset_internal": (columns,),
        "_theta_internal": (n, columns),
        "_train_X": (n, p),
        "_train_y": (n,),
    }
    for name, shape in expected.items():
        actual = getattr(estimator, name).shape
        if actual != shape:
            _fail(path, f"array {name} has shape {actual}, expected {shape}.")
        if not np.all(np.isfinite(getattr(estimator, name))):
            _fail(path, f"array {name} holds non-finite values.")
    encoded = estimator._train_encoded
    if estimator._encoder_params is not None:
        width = estimator.encoder_width
        n_inputs = _encoder_features(encoded).shape[1]
        shapes = ((n_inputs, width), (width,), (width, rank))
        stored = zip(ENCODER_SITES, estimator._encoder_params, shapes, strict=True)
        for site, value, shape in stored:
            if value.shape != shape or not np.all(np.isfinite(value)):
                _fail(path, f"the covariate encoder's {site} is damaged (shape {value.shape}).")
    if encoded.numeric.shape[0] != n or encoded.categorical.shape[0] != n:
        _fail(path, "the training covariates do not have one row per sample.")
    if len(estimator.encoder_.numeric_names_) != encoded.numeric.shape[1]:
        _fail(path, "the covariate coding does not match the training covariates.")
    if not isinstance(estimator.n_features_in_, numbers.Integral):
        _fail(path, "n_features_in_ is not an integer.")
