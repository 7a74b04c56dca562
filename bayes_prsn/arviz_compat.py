"""Every difference between the ArviZ lines lives here.

Python 3.11 resolves ArviZ 0.23 (``InferenceData``); Python 3.12 and later
resolve ArviZ 1.x (``xarray.DataTree``, a new ``from_dict`` signature,
diagnostics from ``arviz_stats`` taking ``chain_axis``/``draw_axis``). The
rest of the package calls these functions only. ArviZ is imported lazily (it
takes seconds) and its 0.x deprecation banner is silenced.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

__all__ = [
    "arviz",
    "is_arviz_1",
    "from_dict",
    "concat_chains",
    "update_attrs",
    "group",
    "group_names",
    "to_netcdf",
    "from_netcdf",
    "rhat",
    "ess",
]


@functools.cache
def arviz():
    """The ``arviz`` module (imported on first use)."""
    with warnings.catch_warnings():
        # ArviZ 0.2x prints a FutureWarning about its refactor at import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def is_arviz_1() -> bool:
    """Whether the installed ArviZ is 1.x or later (DataTree based)."""
    return int(arviz().__version__.split(".")[0]) >= 1


def from_dict(groups: dict, *, coords: dict, dims: dict, attrs: dict | None = None):
    """Build ArviZ data from ``{group: {variable: array}}``.

    Returns ``arviz.InferenceData`` on ArviZ 0.x and ``xarray.DataTree`` on 1.x.
    """
    az = arviz()
    groups = {name: values for name, values in groups.items() if values}
    if is_arviz_1():
        # ArviZ 1.x takes attributes per group ("/" is the root).
        attrs = {"/": dict(attrs or {}), "posterior": dict(attrs or {})}
        return az.from_dict(groups, coords=coords, dims=dims, attrs=attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(**groups, coords=coords, dims=dims, attrs=attrs)


def group_names(data) -> list[str]:
    """Names of the groups held by ArviZ data."""
    if is_arviz_1():
        return [name for name in data.children]
    return list(data.groups())


def group(data, name: str):
    """One group of ArviZ data as an ``xarray.Dataset``."""
    if name not in group_names(data):
        raise KeyError(f"the ArviZ data has no {name!r} group.")
    if is_arviz_1():
        return data[name].to_dataset()
    return getattr(data, name)


def concat_chains(datas: list):
    """ArviZ data whose groups with a ``chain`` dimension join those of ``datas`` along it.

    The chains are renumbered 0, 1, ...; every other coordinate (the samples'
    labels, say) is the first's, and the dimensions must have the same sizes.
    The groups without chains (observed and constant data) and the
    attributes are the first's.
    """
    import xarray as xr

    first = datas[0]
    groups = {}
    for name in group_names(first):
        parts = [group(data, name) for data in datas]
        if "chain" in parts[0].dims:
            labels = {
                dim: parts[0][dim].values
                for dim in parts[0].dims
                if dim not in ("chain", "draw") and dim in parts[0].coords
            }
            parts = [part.assign_coords(labels) for part in parts]
            joined = xr.concat(parts, dim="chain", combine_attrs="override", join="exact")
            parts[0] = joined.assign_coords(chain=np.arange(joined.sizes["chain"]))
        groups[name] = parts[0]
    if is_arviz_1():
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = dict(first.attrs)
        return tree
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return arviz().InferenceData(**groups)


def update_attrs(data, attrs: dict) -> None:
    """Add ``attrs`` to the posterior group's attributes (and the root's on ArviZ 1.x)."""
    if is_arviz_1():
        data["posterior"].attrs.update(attrs)
        data.attrs.update(attrs)
    else:
        data.posterior.attrs.update(attrs)


def to_netcdf(data, path) -> None:
    """Write ArviZ data to a netCDF-4 file (h5netcdf engine, readable by ArviZ and xarray)."""
    # InferenceData (0.x) and DataTree (1.x) share this call.
    data.to_netcdf(str(path), engine="h5netcdf")


def from_netcdf(path):
    """Read ArviZ data written by :func:`to_netcdf` fully into memory (the file can go)."""
    az = arviz()
    if is_arviz_1():
        import xarray as xr

        with xr.open_datatree(str(path), engine="h5netcdf") as tree:
            return tree.load().copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with az.rc_context({"data.load": "eager"}):
            return az.InferenceData.from_netcdf(str(path), engine="h5netcdf")


def _as_chain_draw(array) -> np.ndarray:
    array = np.asarray(array, dtype=float)
    if array.ndim < 2:
        raise ValueError("draws must have shape (chain, draw, ...).")
    return array


def rhat(array) -> np.ndarray:
    """ArviZ's rank-normalised split R-hat of draws shaped (chain, draw, ...).

    The package computes its diagnostics with :mod:`bayes_prsn.diagnostics`
    (vectorised); this and :func:`ess` are the ArviZ reference it is tested
    against on both ArviZ lines.
    """
    array = _as_chain_draw(array)
    az = arviz()
    if is_arviz_1():
        return np.asarray(az.rhat(array, chain_axis=0, draw_axis=1, method="rank"))
    dataset = az.convert_to_dataset({"x": array})
    return np.asarray(az.rhat(dataset, method="rank")["x"].values)


def ess(array, method: str = "bulk") -> np.ndarray:
    """Effective sample size (``"bulk"`` or ``"tail"``) of draws shaped (chain, draw, ...)."""
    array = _as_chain_draw(array)
    az = arviz()
    if is_arviz_1():
        # 1.x needs the tail quantiles spelled out for plain arrays.
        prob = (0.05, 0.95) if method == "tail" else None
        return np.asarray(az.ess(array, chain_axis=0, draw_axis=1, method=method, prob=prob))
    dataset = az.convert_to_dataset({"x": array})
    return np.asarray(az.ess(dataset, method=method)["x"].values)
