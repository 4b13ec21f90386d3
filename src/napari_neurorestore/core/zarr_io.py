"""zarr and OME-Zarr stores: opening them for reading (with their axes and pixel sizes),
creating streamed outputs (``*.zarr``: one array; ``*.ome.zarr``: an NGFF 0.4 image whose
level 0 is the array at path "0"), and the progress record that streamed outputs keep.
zarr and dask are optional (the ``large`` extra) and imported only when needed; the names
here are also importable from :mod:`napari_neurorestore.core.io`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import PROGRESS_ATTR, _as_dask, _default_axes, _json_safe, release_pages
from .errors import InputError
from .errors import require as _require
from .ome import ngff_geometry, ngff_multiscales
from .paths import _remove_existing, check_output_target


def is_ome_zarr_path(path: str | os.PathLike) -> bool:
    """True for ``*.ome.zarr`` names (written as NGFF 0.4 images)."""
    return str(path).rstrip("/\\").lower().endswith(".ome.zarr")


def _open_node(path: str | os.PathLike) -> tuple[Any, Any, dict | None]:
    """(the store's root node, its data array, the NGFF geometry of the root or None)."""
    zarr = _require("zarr")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    node = zarr.open(str(p), mode="r")
    if hasattr(node, "shape"):
        return node, node, None
    geo = ngff_geometry(dict(node.attrs))
    if geo is not None:
        return node, node[geo["path"]], geo
    arrays = list(node.array_keys())
    if len(arrays) != 1:
        raise InputError(f"{p} is a zarr group without OME-Zarr multiscales metadata and "
                         f"{len(arrays)} arrays; open one of them ({', '.join(arrays)})")
    return node, node[arrays[0]], None


def _singletons(names: str, arr: Any) -> list[int]:
    """Axes of an OME-Zarr level that we drop: singleton channel/z axes (keeping >= 2 axes)."""
    if len(names) != arr.ndim:
        return []
    return [i for i, n in enumerate(names) if n in "CZ" and arr.shape[i] == 1 and arr.ndim - 1 > 2]


def open_zarr(path: str | os.PathLike) -> tuple[Any, str]:
    """Open a zarr array, an OME-Zarr image or our own output store read-only.

    Returns (array, axes): a zarr array (or, for OME-Zarr with singleton channel/z axes, a
    lazy dask view without them) and an axes string such as "TYX" ("Q" for unknown axes).
    """
    _root, arr, geo = _open_node(path)
    if geo is not None:
        names = geo["axes"]
        drop = _singletons(names, arr)
        if drop:
            key = tuple(0 if i in drop else slice(None) for i in range(arr.ndim))
            names = "".join(n for i, n in enumerate(names) if i not in drop)
            return _as_dask(arr)[key], names
        return arr, names if len(names) == arr.ndim else _default_axes(arr.ndim)
    ax = arr.attrs.get("axes")
    if isinstance(ax, str) and len(ax) == arr.ndim:
        return arr, ax.upper()
    return arr, _default_axes(arr.ndim)


def zarr_geometry(path: str | os.PathLike) -> dict[str, Any] | None:
    """Pixel sizes of an OME-Zarr image, per axis of what :func:`open_zarr` returns:
    ``{"axes", "scale", "translate", "units"}``; None for stores without NGFF metadata."""
    _root, arr, geo = _open_node(path)
    if geo is None or len(geo["axes"]) != arr.ndim:
        return None
    keep = [i for i in range(arr.ndim) if i not in _singletons(geo["axes"], arr)]
    return {"axes": "".join(geo["axes"][i] for i in keep),
            "scale": [geo["scale"][i] for i in keep],
            "translate": [geo["translate"][i] for i in keep], "units": geo["units"]}


def zarr_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """A store's attributes: the root's, with its data array's (the progress record of an
    ``*.ome.zarr`` output lives on the array at "0") merged in underneath."""
    root, arr, _geo = _open_node(path)
    attrs = dict(arr.attrs) if arr is not root else {}
    attrs.update(dict(root.attrs))
    return attrs


def output_array(path: str | os.PathLike, mode: str = "r+") -> Any:
    """The data array of an output store, opened for writing by other processes (dask
    workers): the store itself for ``*.zarr``, its level 0 ("0") for ``*.ome.zarr``."""
    zarr = _require("zarr")
    node = zarr.open(str(path), mode=mode)
    if hasattr(node, "shape"):
        return node
    geo = ngff_geometry(dict(node.attrs))
    return node[geo["path"] if geo else "0"]


def create_zarr_output(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                       chunks: int = 64, metadata: dict | None = None, axes: str | None = None,
                       compress: bool = True, chunk_shape: tuple[int, ...] | None = None,
                       unit: str = "frames", total: int | None = None,
                       scale: Sequence[float] | None = None,
                       translate: Sequence[float] | None = None,
                       space_unit: str | None = None, time_unit: str | None = None,
                       dtype: Any = "float32") -> Any:
    """The zarr part of :func:`core.io.open_output` (see there)."""
    zarr = _require("zarr")
    p = check_output_target(path, shape, overwrite, compress)
    dtype = np.dtype(dtype)  # an integer output has no NaN: unwritten voxels read as 0
    fill = float("nan") if dtype.kind == "f" else 0
    ome = is_ome_zarr_path(p)
    if ome:  # validate the metadata before deleting anything
        ms = ngff_multiscales(shape, axes, scale, translate, space_unit, time_unit,
                              name=p.name[: -len(".ome.zarr")])
    if p.exists():
        _remove_existing(p)
    shape = tuple(int(s) for s in shape)
    if chunk_shape is not None:
        if len(chunk_shape) != len(shape):
            raise ValueError(f"chunk_shape {tuple(chunk_shape)} does not match shape {shape}")
        chunk_shape = tuple(max(1, min(int(c), s)) for c, s in zip(chunk_shape, shape,
                                                                    strict=True))
    elif len(shape) < 3:  # an image: one chunk
        chunk_shape = shape
    else:
        chunk_shape = ((max(1, min(int(chunks), shape[0])),) + (1,) * (len(shape) - 3)
                       + shape[-2:])
    attrs = _json_safe(metadata)
    progress = {f"{unit}_done": 0, f"{unit}_total": int(shape[0] if total is None else total),
                "done_ranges": [], "complete": False}
    if not ome:
        attrs["axes"] = axes or _default_axes(len(shape))
        attrs[PROGRESS_ATTR] = progress
        kw: dict[str, Any] = {"compressors": None}
        if compress:
            kw["compressors"] = zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")
        return zarr.create_array(store=str(p), shape=shape, chunks=chunk_shape,
                                 dtype=dtype, fill_value=fill, attributes=attrs,
                                 **kw)
    # NGFF 0.4 is zarr format 2 with "/" chunk keys; provenance on the image (root) group,
    # the progress record on the array that the writers update
    from numcodecs import Blosc

    root = zarr.open_group(str(p), mode="w", zarr_format=2)
    root.attrs.update({**attrs, **ms})
    comp = Blosc(cname="lz4", clevel=1, shuffle=Blosc.SHUFFLE) if compress else None
    return root.create_array("0", shape=shape, chunks=chunk_shape, dtype=dtype,
                             fill_value=fill, compressors=comp,
                             chunk_key_encoding={"name": "v2", "separator": "/"},
                             attributes={PROGRESS_ATTR: progress})


def _is_zarr_array(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "zarr" and hasattr(a, "attrs")


class ChunkRecorder:
    """Records which ranges of an output are finished (call it after each chunk).

    Ranges count ``unit``: frames along the first axis by default; tiled methods count
    tiles (their index in C order over the tile grid, which ``extra`` describes, e.g.
    ``{"tile_shape": [...], "tile_grid": [...]}`` in output voxels).
    For a zarr output the record is kept in its attributes under ``PROGRESS_ATTR``:
    ``<unit>_done``, ``<unit>_total``, ``done_ranges`` ([[start, stop], ...], merged),
    ``complete`` and ``extra``'s items, so a cancelled or interrupted run leaves a store
    that says how far it got. Other outputs (numpy, memmapped TIFF) are only counted.
    """

    def __init__(self, out: Any, total: int | None = None, unit: str = "frames",
                 extra: dict | None = None):
        self.total = int(out.shape[0] if total is None else total)
        self.unit = unit
        self.extra = _json_safe(extra)
        self.ranges: list[list[int]] = []
        self._zarr = out if _is_zarr_array(out) else None
        self._memmap = out if isinstance(out, np.memmap) else None

    @property
    def frames_done(self) -> int:
        return int(sum(b - a for a, b in self.ranges))

    def __call__(self, a: int, b: int) -> None:
        rs = sorted([*self.ranges, [int(a), int(b)]])
        merged: list[list[int]] = []
        for r in rs:
            if merged and r[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(list(r))
        self.ranges = merged
        if self._memmap is not None:
            release_pages(self._memmap)
        if self._zarr is not None:
            self._zarr.attrs[PROGRESS_ATTR] = {
                f"{self.unit}_done": self.frames_done, f"{self.unit}_total": self.total,
                "done_ranges": self.ranges, "complete": self.frames_done >= self.total,
                **self.extra}

    @property
    def done(self) -> int:
        """Units finished (frames, or tiles)."""
        return self.frames_done

    def describe(self) -> str:
        return f"{self.frames_done} of {self.total} {self.unit}"


def output_progress(path_or_array: Any) -> dict | None:
    """The progress record of a zarr output (None for other outputs)."""
    z = path_or_array
    if isinstance(z, (str, os.PathLike)):
        attrs = zarr_attrs(z)
        return dict(attrs[PROGRESS_ATTR]) if PROGRESS_ATTR in attrs else None
    attrs = getattr(z, "attrs", None)
    return dict(attrs[PROGRESS_ATTR]) if attrs is not None and PROGRESS_ATTR in attrs else None
