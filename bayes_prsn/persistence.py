"""Save and load fitted models in an open format (no pickle, no code execution).

:func:`save` writes a fitted estimator's records (its
:class:`~bayes_prsn.state.FittedState`, parameters and posterior) and
:func:`load` reads them back; the estimators' ``save``/``load`` and
:func:`bayes_prsn.load` call them. This module imports neither estimator class.

A saved model is one ZIP archive holding

- ``metadata.json``: format name and version, the package version, the
  estimator class and parameters, every scalar and list attribute, the
  covariate coding, and a SHA-256 checksum of every other member;
- ``arrays/<name>.npy``: every fitted array in NumPy's ``.npy`` format,
  read back with ``allow_pickle=False``;
- ``posterior.nc``: the ArviZ data of ``sample_posterior`` (netCDF-4), when
  there is a posterior, with the draws its predictions use among the
  arrays: ``_posterior_embedding`` (the codes, without the encoder) or, from
  format version 2 on, ``_posterior_shared.<site>`` and
  ``_posterior_centre.<site>`` (the shared parts' draws and their centre),
  ``_posterior_input_scales`` and, where drawn, ``_posterior_noise_draws``;
  from version 3 on, a posterior pooled over refits
  (``sample_posterior(refits=...)``) is marked by ``posterior_fits_`` in the
  metadata and keeps only its noise draws among the arrays (its
  predictions come from its ArviZ data); from version 4 on, the other fits
  averaged into ``coef_`` (``n_fits``) are stored under ``_member<i>.`` (their
  MAP, training coefficients and loss) and their scalars in ``_members``.
  Files of versions 1 to 3 load unchanged.

The archive is written to a temporary file beside the target and renamed
into place, so an interrupted save never leaves a half-written model. On
loading, the checksums, the format version and the shapes of all arrays are
checked before anything is used; any problem raises :class:`ModelFileError`
with a one-line message.
"""

from __future__ import annotations

import dataclasses
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

from . import arviz_compat
from .models import ENCODER_SITES
from .predict import neighbour_tree
from .preprocessing import CovariateEncoder, EncodedCovariates, Standardizer, encoder_features
from .sample_inputs import MODEL_ARRAYS
from .scaling import Scaling
from .smoothing import posterior_noise_scale
from .state import (
    FittedState,
    MapParams,
    PosteriorState,
    fitted_state,
    has_posterior,
    posterior_state,
    published_attributes,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "save", "load"]

#: Name stored in every saved model.
FORMAT = "bayes_prsn-model"
#: Version of the layout written here; files with a larger version are refused
#: (2: the posterior's draws of the shared parts; 3: a posterior pooled over
#: refits, ``posterior_fits_``; files of versions 1 and 2 load).
FORMAT_VERSION = 4

#: The estimator classes a saved model may hold.
ESTIMATOR_CLASSES = ("PersonalizedRegression", "PersonalizedClassifier")
_TRAIN_DATA = ("X", "pairs", "pair_distances", "pair_weights", "y")
# Published arrays that are stored but derived from the state on loading (checked only).
_CHECKED_ONLY = ("coef_", "intercept_", "dictionary_")
_ENCODER = ("names_in_", "numeric_names_", "categorical_names_", "centers_", "scales_", "levels_")
_MAX_MEMBER_BYTES = 2**34
#: A refit's MAP fields stored besides its encoder weights (pooled posteriors).
_REFIT_PARAMS = ("dictionary", "offset", "embedding", "covariate_weights")


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


# Published attributes stored as .npy, and as JSON values, in format version 1.
_PUBLISHED_ARRAYS = (
    "coef_",
    "intercept_",
    "population_coef_",
    "covariate_weights_",
    "embedding_",
    "dictionary_",
    "loss_history_",
)
_PUBLISHED_VALUES = (
    "family_",
    "n_features_in_",
    "n_predictors_",
    "feature_names_",
    "covariate_names_",
    "covariate_names_used_",
    "noise_scale_",
    "likelihood_scale_",
    "prior_scale_",
    "n_steps_",
    "converged_",
    "population_intercept_",
    "validation_scores_",
)


def _state_arrays(state: FittedState, published: dict, posterior) -> dict:
    """The fitted arrays, under the names format version 1 gives them."""
    params = state.params
    arrays = {name: published[name] for name in _PUBLISHED_ARRAYS}
    arrays.update(
        {
            "_dictionary_internal": params.dictionary,
            "_offset_internal": params.offset,
            "_theta_internal": state.theta,
            "_train_X": state.X,
            "_train_y": state.y,
        }
    )
    if state.classes is not None:
        arrays["classes_"] = state.classes
    if posterior is not None:
        arrays.update(_posterior_arrays(posterior))
    # The log exposure, trials and weights are stored only where the fit had them.
    for name in _TRAIN_DATA + tuple(n for n in MODEL_ARRAYS if n in state.data):
        arrays[f"train_data.{name}"] = state.data[name]
    for name, scaler in (("x_scaler_", state.scaling.x), ("y_scaler_", state.scaling.y)):
        arrays[f"{name}.center"], arrays[f"{name}.scale"] = scaler.center, scaler.scale
    if params.encoder_weights is not None:
        for site, value in zip(ENCODER_SITES, params.encoder_weights, strict=True):
            arrays[f"covariate_encoder.{site}"] = value
    arrays["train_encoded.numeric"] = state.encoded.numeric
    arrays["train_encoded.categorical"] = state.encoded.categorical
    for index, member in enumerate(state.members, start=1):
        arrays.update(_params_arrays(f"_member{index}.", member.params))
        arrays[f"_member{index}.theta"] = member.theta
        arrays[f"_member{index}.loss_history"] = member.loss_history
    return arrays


def _posterior_arrays(posterior) -> dict:
    """The draws behind a posterior's predictions: the codes (format 1) or the shared parts (2).

    A posterior pooled over refits (format 3) adds each refit's MAP and draws
    under ``_refit<i>.`` (:func:`_refit_arrays`).
    """
    arrays = _draw_arrays(posterior)
    if posterior.noise_draws is not None:
        arrays["_posterior_noise_draws"] = posterior.noise_draws
    for index, (params, refit) in enumerate(posterior.refits, start=1):
        arrays.update(_refit_arrays(f"_refit{index}.", params, refit))
    return arrays


def _draw_arrays(posterior, prefix: str = "") -> dict:
    if posterior.code_draws is not None:
        return {f"{prefix}_posterior_embedding": posterior.code_draws}
    arrays = {f"{prefix}_posterior_input_scales": posterior.input_scales}
    for site, value in posterior.shared_draws.items():
        arrays[f"{prefix}_posterior_shared.{site}"] = value
        arrays[f"{prefix}_posterior_centre.{site}"] = np.asarray(posterior.shared_centre[site])
    return arrays


def _params_arrays(prefix: str, params: MapParams) -> dict:
    """A MAP's arrays, ``<prefix>params.<field>`` (and its encoder's sites)."""
    arrays = {f"{prefix}params.{name}": np.asarray(getattr(params, name)) for name in _REFIT_PARAMS}
    for site, value in zip(ENCODER_SITES, params.encoder_weights or (), strict=False):
        arrays[f"{prefix}params.{site}"] = value
    return arrays


def _refit_arrays(prefix: str, params: MapParams, refit) -> dict:
    """A refit's MAP (``<prefix>params.<field>``) and its draws (``<prefix>_posterior...``)."""
    return {**_params_arrays(prefix, params), **_draw_arrays(refit, prefix)}


def _state_values(state: FittedState, published: dict, posterior) -> dict:
    """The fitted scalars and lists, under the names format version 1 gives them."""
    values = {name: published[name] for name in _PUBLISHED_VALUES}
    values["_fit_settings"] = state.settings
    if state.members:
        values["_members"] = [
            {
                "seed": seed,
                "settings": member.settings,
                "validation_scores": member.validation_scores,
                "n_steps": member.n_steps,
                "converged": member.converged,
            }
            for seed, member in zip(state.member_seeds, state.members, strict=True)
        ]
    if posterior is not None:
        values.update(
            posterior_method_=posterior.method,
            posterior_noise_scale_=posterior.noise_scale,
            posterior_gamma_=posterior.gamma,
            posterior_diagnostics_=posterior.diagnostics,
            posterior_scales_=posterior.scales,
        )
        if posterior.fits > 1:
            values["posterior_fits_"] = posterior.fits
    if state.feature_names_in is not None:
        values["feature_names_in_"] = state.feature_names_in
    return {name: _plain(value) for name, value in values.items()}


def save(estimator, path) -> Path:
    """Write a fitted estimator to ``path`` (see the module docstring for the layout).

    Reads the estimator's parameters and its records (``fit_state_``, and
    ``posterior_state_`` when there is a posterior). Returns the path
    written. The file appears only once it is complete.
    """
    from .version import __version__

    state = fitted_state(estimator)
    posterior = posterior_state(estimator) if has_posterior(estimator) else None
    params = estimator.get_params(deep=False)
    path = Path(path)
    for name, value in params.items():
        plain = _plain(value)
        if plain != value and not isinstance(value, tuple | list):
            raise ValueError(
                f"cannot save parameter {name}={value!r}: only numbers, strings, lists and None "
                "can be saved; set it to one of those first."
            )
    published = published_attributes(state, posterior)
    arrays = _state_arrays(state, published, posterior)
    encoder = state.encoder
    encoder_state = {name: _plain(getattr(encoder, name)) for name in _ENCODER[:-1]}
    encoder_state["levels_"] = [_labels(levels) for levels in encoder.levels_]
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bayes_prsn_version": __version__,
        "class": type(estimator).__name__,
        "params": _plain(params),
        "values": _state_values(state, published, posterior),
        "encoder": encoder_state,
        "n_levels": list(state.encoded.n_levels),
        "sample_index": dict(_labels(state.sample_index), name=state.sample_index_name),
        "target_name": state.target_name,
        "covariates_frame": _frame_state(state.covariates_frame, arrays),
    }
    members = {f"arrays/{name}.npy": _npy_bytes(value) for name, value in arrays.items()}
    if posterior is not None:
        with tempfile.TemporaryDirectory() as folder:
            netcdf = Path(folder) / "posterior.nc"
            arviz_compat.to_netcdf(posterior.idata, netcdf)
            members["posterior.nc"] = netcdf.read_bytes()
    metadata["checksums"] = {
        name: hashlib.sha256(content).hexdigest() for name, content in members.items()
    }
    members = {"metadata.json": json.dumps(metadata, indent=1).encode(), **members}
    _write_atomically(path, members)
    return path


def _write_atomically(path: Path, members: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, content in members.items():
                    archive.writestr(name, content)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file readable by its owner only; a model file gets the
        # permissions of any new file (the umask), like the CSV and PNG files beside it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        # Interrupted or failed: remove the partial file, keep any older model at ``path``.
        Path(temporary).unlink(missing_ok=True)
        raise


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
        from .version import __version__

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


def load(path, cls=None, *, classes: dict | None = None):
    """Load an estimator saved by :func:`save`.

    Parameters
    ----------
    path : str or Path
        The saved file, or a folder written by ``bayes-prsn fit`` (holding
        ``model.bprsn``).
    cls : class, optional
        Expected estimator class; a file holding another class is refused.
    classes : dict, optional
        The estimator classes by name, one of which the file may hold (what
        :func:`bayes_prsn.load` passes); needed when ``cls`` is not given.

    Raises
    ------
    ModelFileError
        When the file is missing, truncated, damaged, tampered with, from a
        newer format version, or holds another estimator class.
    """
    if cls is None and classes is None:
        raise TypeError("name the estimator class (cls=...), or load with bayes_prsn.load(path).")
    classes = dict(classes or {})
    if cls is not None:
        classes.setdefault(cls.__name__, cls)
    path = Path(path)
    metadata, members = _read_members(path)
    stored = metadata.get("class")
    if stored not in ESTIMATOR_CLASSES:
        _fail(path, f"unknown estimator class {stored!r}.")
    if cls is not None and stored != cls.__name__:
        _fail(
            path,
            f"it holds a {stored}, not a {cls.__name__}; use {stored}.load or bayes_prsn.load.",
        )
    try:
        estimator = classes[stored](**metadata["params"])
        state = _read_state(metadata, members, path)
        state = _with_members(metadata["values"], members, state, path)
        published = {name: _array(members, name, path) for name in _CHECKED_ONLY}
        for fit in state.fits:
            _check_consistent(fit, published, metadata["values"]["n_predictors_"], path)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        _fail(path, f"metadata.json is incomplete or inconsistent ({type(err).__name__}: {err}).")
    posterior = _read_posterior(metadata["values"], members, path)
    estimator.__dict__.update(published_attributes(state, posterior))
    return estimator


def _read_encoder(state: dict) -> CovariateEncoder:
    encoder = CovariateEncoder()
    for name in _ENCODER[:-1]:
        setattr(encoder, name, list(state[name]))
    encoder.levels_ = [list(levels["values"]) for levels in state["levels_"]]
    return encoder


def _read_state(metadata: dict, members: dict, path) -> FittedState:
    values, params = metadata["values"], metadata["params"]

    def array(name):
        return _array(members, name, path)

    def optional(name):
        return array(name) if f"arrays/{name}.npy" in members else None

    encoded = EncodedCovariates(
        array("train_encoded.numeric"),
        array("train_encoded.categorical"),
        tuple(int(n) for n in metadata["n_levels"]),
    )
    encoder_weights = None
    if params["encoder_width"]:
        encoder_weights = tuple(array(f"covariate_encoder.{site}") for site in ENCODER_SITES)
    map_params = MapParams(
        dictionary=array("_dictionary_internal"),
        offset=array("_offset_internal"),
        embedding=array("embedding_"),
        covariate_weights=array("covariate_weights_"),
        encoder_weights=encoder_weights,
    )
    frame_arrays = {
        member[len("arrays/") : -len(".npy")]: array(member[len("arrays/") : -len(".npy")])
        for member in members
        if member.startswith("arrays/covariates.")
    }
    names_in = values.get("feature_names_in_")
    scalers = [
        Standardizer(array(f"{name}.center"), array(f"{name}.scale"))
        for name in ("x_scaler_", "y_scaler_")
    ]
    settings = values["_fit_settings"]
    return FittedState(
        family=values["family_"],
        rank=params["rank"],
        prior=params["prior"],
        offset=params["offset"],
        encoder_width=params["encoder_width"],
        n_neighbors=params["n_neighbors"],
        scaling=Scaling(*scalers, bool(params["fit_intercept"])),
        encoder=_read_encoder(metadata["encoder"]),
        encoded=encoded,
        covariates_frame=_frame_from_state(metadata["covariates_frame"], frame_arrays),
        sample_index=list(metadata["sample_index"]["values"]),
        feature_names=values["feature_names_"],
        n_features_in=values["n_features_in_"],
        feature_names_in=None if names_in is None else np.asarray(names_in, dtype=object),
        classes=optional("classes_"),
        X=array("_train_X"),
        y=array("_train_y"),
        data={
            name: array(f"train_data.{name}")
            for name in _TRAIN_DATA + MODEL_ARRAYS
            if f"arrays/train_data.{name}.npy" in members
        },
        settings=settings,
        validation_scores=values["validation_scores_"],
        posterior_noise_scale=posterior_noise_scale(settings, values["validation_scores_"]),
        params=map_params,
        theta=array("_theta_internal"),
        population_coef=array("population_coef_"),
        population_intercept=values["population_intercept_"],
        loss_history=array("loss_history_"),
        n_steps=values["n_steps_"],
        converged=values["converged_"],
        neighbours=neighbour_tree(encoded, map_params.covariate_weights),
        # Both added in 0.x without a format change: older files have neither.
        sample_index_name=metadata["sample_index"].get("name"),
        target_name=metadata.get("target_name"),
    )


def _read_posterior(values: dict, members: dict, path) -> PosteriorState | None:
    if "posterior.nc" not in members:
        return None
    sites = [name for name in members if name.startswith("arrays/_posterior_shared.")]
    fits = values.get("posterior_fits_", 1)
    if not isinstance(fits, int) or isinstance(fits, bool) or fits < 1:
        _fail(path, f"its posterior_fits_ is {fits!r}, not a whole number >= 1.")
    if "arrays/_posterior_embedding.npy" not in members and not sites:
        _fail(path, "it holds a posterior without its draws.")
    with tempfile.TemporaryDirectory() as folder:
        netcdf = Path(folder) / "posterior.nc"
        netcdf.write_bytes(members["posterior.nc"])
        try:
            idata = arviz_compat.from_netcdf(netcdf)
        except Exception as err:  # noqa: BLE001 - any reader failure means a bad file
            _fail(path, f"posterior.nc cannot be read ({type(err).__name__}: {err}).")
    common = (
        values.get("posterior_method_"),
        values.get("posterior_noise_scale_"),
        values.get("posterior_gamma_"),
        values.get("posterior_diagnostics_"),
    )
    noise = (
        _array(members, "_posterior_noise_draws", path)
        if "arrays/_posterior_noise_draws.npy" in members
        else None
    )
    refits = tuple(_read_refit(members, f"_refit{i}.", path) for i in range(1, fits))
    draws = {"code_draws": None, **_read_draws(members, "", path)}
    if draws["code_draws"] is None:
        draws["scales"] = values.get("posterior_scales_")
    code_draws = draws.pop("code_draws")
    return PosteriorState(idata, code_draws, *common, noise_draws=noise, refits=refits, **draws)


def _read_draws(members: dict, prefix: str, path) -> dict:
    """One fit's draws (``PosteriorState`` fields) stored under ``prefix``."""
    start = f"arrays/{prefix}_posterior_shared."
    sites = [name[len(start) : -len(".npy")] for name in members if name.startswith(start)]
    if not sites:
        return {"code_draws": _array(members, f"{prefix}_posterior_embedding", path)}
    return {
        "shared_draws": {s: _array(members, f"{prefix}_posterior_shared.{s}", path) for s in sites},
        "shared_centre": {
            s: _array(members, f"{prefix}_posterior_centre.{s}", path) for s in sites
        },
        "input_scales": _array(members, f"{prefix}_posterior_input_scales", path),
    }


def _read_params(members: dict, prefix: str, path) -> MapParams:
    """A MAP stored by :func:`_params_arrays` under ``prefix``."""
    fields = {name: _array(members, f"{prefix}params.{name}", path) for name in _REFIT_PARAMS}
    encoder = None
    if f"arrays/{prefix}params.{ENCODER_SITES[0]}.npy" in members:
        encoder = tuple(_array(members, f"{prefix}params.{site}", path) for site in ENCODER_SITES)
    return MapParams(encoder_weights=encoder, **fields)


def _read_refit(members: dict, prefix: str, path) -> tuple:
    """A refit's ``(MapParams, PosteriorState)`` of a pooled posterior (format 3)."""
    draws = {"code_draws": None, **_read_draws(members, prefix, path)}
    refit = PosteriorState(None, draws.pop("code_draws"), None, None, None, {}, **draws)
    return _read_params(members, prefix, path), refit


def _with_members(values: dict, members: dict, state: FittedState, path) -> FittedState:
    """``state`` with the fits averaged into ``coef_`` (format 4's ``_members``), if any."""
    fits, stored_members = [], values.get("_members") or []
    for index, stored in enumerate(stored_members, start=1):
        prefix = f"_member{index}."
        params = _read_params(members, prefix, path)
        settings, scores = stored["settings"], stored["validation_scores"]
        member = dataclasses.replace(
            state,
            params=params,
            theta=_array(members, f"{prefix}theta", path),
            settings=settings,
            validation_scores=scores,
            posterior_noise_scale=posterior_noise_scale(settings, scores),
            loss_history=_array(members, f"{prefix}loss_history", path),
            n_steps=stored["n_steps"],
            converged=stored["converged"],
            neighbours=neighbour_tree(state.encoded, params.covariate_weights),
        )
        fits.append(member)
    seeds = tuple(int(stored["seed"]) for stored in stored_members)
    return dataclasses.replace(state, members=tuple(fits), member_seeds=seeds)


def _check_consistent(state: FittedState, published: dict, p: int, path) -> None:
    """Shapes and values of the loaded arrays agree with each other and are finite.

    ``published`` are the stored published arrays (the estimator derives its
    own from the state) and ``p`` the stored number of predictors.
    """
    n, rank = state.n_samples, state.rank
    columns = p + int(bool(state.fit_intercept))
    params = state.params
    expected = {
        "coef_": (published["coef_"], (n, p)),
        "intercept_": (published["intercept_"], (n,)),
        "population_coef_": (state.population_coef, (p,)),
        "covariate_weights_": (params.covariate_weights, (len(state.encoder.feature_names),)),
        "embedding_": (params.embedding, (n, rank)),
        "dictionary_": (published["dictionary_"], (rank, p)),
        "_dictionary_internal": (params.dictionary, (rank, columns)),
        "_offset_internal": (params.offset, (columns,)),
        "_theta_internal": (state.theta, (n, columns)),
        "_train_X": (state.X, (n, p)),
        "_train_y": (state.y, (n,)),
    }
    for name, (value, shape) in expected.items():
        if value.shape != shape:
            _fail(path, f"array {name} has shape {value.shape}, expected {shape}.")
        if not np.all(np.isfinite(value)):
            _fail(path, f"array {name} holds non-finite values.")
    encoded = state.encoded
    if params.encoder_weights is not None:
        width = state.encoder_width
        n_inputs = encoder_features(encoded).shape[1]
        shapes = ((n_inputs, width), (width,), (width, rank))
        stored = zip(ENCODER_SITES, params.encoder_weights, shapes, strict=True)
        for site, value, shape in stored:
            if value.shape != shape or not np.all(np.isfinite(value)):
                _fail(path, f"the covariate encoder's {site} is damaged (shape {value.shape}).")
    if encoded.numeric.shape[0] != n or encoded.categorical.shape[0] != n:
        _fail(path, "the training covariates do not have one row per sample.")
    if len(state.encoder.numeric_names_) != encoded.numeric.shape[1]:
        _fail(path, "the covariate coding does not match the training covariates.")
    if not isinstance(state.n_features_in, numbers.Integral):
        _fail(path, "n_features_in_ is not an integer.")
