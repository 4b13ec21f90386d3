"""The output's data type (``--dtype``; the API's ``dtype=``): float32 (the default), uint16
or int16.

An integer output keeps the input's units and offset: each value is rounded to the nearest
integer and clipped to the type's range (uint16 0..65535, int16 -32768..32767). A value
the method leaves undefined (NaN) is written as 0. How many values were clipped (below and
above) and how many were NaN goes into the output's provenance, under
``neurorestore.output_type``, and a run that clipped any warns once. A float32 output is
written as before (its unwritten voxels read as NaN); an integer output has no NaN: what a
stopped run did not write reads as 0, and the output still says it is unfinished (a TIFF
keeps its ``.incomplete`` name, a zarr store's progress record says ``complete: false``
with the frame ranges written, a suite2p folder has no ``ops.npy``).

numpy only (tifffile and zarr when a file's metadata is updated); no torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

#: the output types a restoration writes
OUTPUT_DTYPES = ("float32", "uint16", "int16")


def output_dtype(dtype: Any, default: str = "float32") -> np.dtype:
    """The numpy dtype of ``dtype`` (a name or a numpy dtype; None: ``default``), refusing
    any other than :data:`OUTPUT_DTYPES` with one line."""
    if dtype is None:
        dtype = default
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in OUTPUT_DTYPES:
        raise InputError(f"--dtype {dtype}: unknown output type; use "
                         f"{', '.join(OUTPUT_DTYPES)}")
    return dt


class IntegerOutput:
    """An integer output array seen as one the methods write float values into: each write
    is rounded to nearest, clipped to the type's range (counted) and NaN written as 0
    (counted). Reads return the stored integers. ``array`` is the wrapped output."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.dtype = np.dtype(array.dtype)
        self.shape = tuple(array.shape)
        self.ndim = len(self.shape)
        info = np.iinfo(self.dtype)
        self.lo, self.hi = float(info.min), float(info.max)
        self.below = self.above = self.nan = 0

    def __len__(self) -> int:
        return self.shape[0]

    def __setitem__(self, key: Any, value: Any) -> None:
        v = np.array(value, dtype=np.float32, copy=True)
        np.rint(v, out=v)
        bad = np.isnan(v)
        n_nan = int(bad.sum())
        if n_nan:
            v[bad] = 0
            self.nan += n_nan
        self.below += int(np.count_nonzero(v < self.lo))
        self.above += int(np.count_nonzero(v > self.hi))
        np.clip(v, self.lo, self.hi, out=v)
        self.array[key] = v.astype(self.dtype)

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = np.asarray(self.array)
        return a if dtype is None else a.astype(dtype)

    def flush(self) -> None:
        if hasattr(self.array, "flush"):
            self.array.flush()

    @property
    def clipped(self) -> int:
        return self.below + self.above

    def record(self) -> dict[str, Any]:
        """What goes into the provenance (``neurorestore.output_type``)."""
        return {"dtype": self.dtype.name, "rounding": "to nearest",
                "range": [int(self.lo), int(self.hi)], "clipped_below": self.below,
                "clipped_above": self.above, "nan_as_zero": self.nan}

    def warning(self) -> str | None:
        """The one warning of a run that clipped (None when nothing was clipped)."""
        if not self.clipped:
            return None
        n = int(np.prod(self.shape)) or 1
        return (f"warning: {self.clipped} value(s) ({100 * self.clipped / n:.3g}%) fell "
                f"outside the {self.dtype.name} range [{int(self.lo)}, {int(self.hi)}] and "
                f"were clipped ({self.below} below, {self.above} above); the output's "
                f"neurorestore.output_type records it (--dtype float32 keeps them)")


def wrap(out: Any, dtype: np.dtype) -> Any:
    """``out`` as the methods write into it: itself for float32, an :class:`IntegerOutput`
    for an integer type."""
    return out if np.dtype(dtype) == np.float32 else IntegerOutput(out)


def unwrap(out: Any) -> Any:
    return out.array if isinstance(out, IntegerOutput) else out


def record_output_type(out: Any, raw: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Write an integer output's record (:meth:`IntegerOutput.record`) into the provenance of
    the file at ``path`` (``raw``: the opened output; a TIFF still under its temporary
    name, a zarr store, a suite2p folder's memmap) and return it ({} for float32)."""
    if not isinstance(out, IntegerOutput):
        return {}
    rec = out.record()
    extra = getattr(raw, "__dict__", {})
    if "_metadata" in extra:  # a suite2p plane folder: its neurorestore.json, at the end
        extra["_metadata"].setdefault("neurorestore", {})["output_type"] = rec
    elif "_temp_path" in extra:
        raw.flush()
        _tiff_record(Path(extra["_temp_path"]), rec)
    elif type(raw).__module__.split(".")[0] == "zarr":
        _zarr_record(Path(path), rec)
    return rec


def _tiff_record(path: Path, rec: dict[str, Any]) -> None:
    """Add ``rec`` to a TIFF's JSON description (or ImageJ ``Info``) in place."""
    import tifffile

    with tifffile.TiffFile(path, mode="r+b") as tf:
        page = tf.pages.first
        ij = tf.imagej_metadata
        if ij is not None and "Info" in ij:
            info = json.loads(ij["Info"])
            info.setdefault("neurorestore", {})["output_type"] = rec
            keep = {k: v for k, v in ij.items() if k in ("Labels", "Ranges", "LUTs", "Plot",
                                                         "ROI", "Overlays", "Properties")}
            for code, dt, _n, value, _w in tifffile.imagej_metadata_tag(
                    {**keep, "Info": json.dumps(info)}, tf.byteorder):
                page.tags[code].overwrite(value, dtype=dt)
            return
        tag = page.tags.get(270)
        try:
            md = json.loads(tag.value) if tag is not None else None
        except ValueError:
            md = None
        if isinstance(md, dict):
            md.setdefault("neurorestore", {})["output_type"] = rec
            tag.overwrite(json.dumps(md))


def _zarr_record(path: Path, rec: dict[str, Any]) -> None:
    import zarr

    node = zarr.open(str(path), mode="r+")
    md = dict(node.attrs.get("neurorestore") or {})
    md["output_type"] = rec
    node.attrs["neurorestore"] = md


def check_target(src: Any, output: Any, in_shape: tuple[int, ...],
                 out_shape: tuple[int, ...], dtype: Any, overwrite: bool) -> np.dtype:
    """The checks of an output before any work (type, disk space, zarr; a suite2p plane
    folder: its input and frame size, see :mod:`.suite2p_out`); returns its dtype."""
    from .paths import check_output_target
    from .suite2p_out import check_plane_input, check_plane_target, is_plane_target

    if is_plane_target(output):
        dt = output_dtype(dtype, "int16")
        check_plane_input(src, in_shape, out_shape, dt, output)
        check_plane_target(output, int(np.prod(out_shape)) * 2, overwrite)
        return dt
    dt = output_dtype(dtype)
    check_output_target(output, out_shape, overwrite)
    return dt


def check_out_array(out: Any, dtype: np.dtype) -> None:
    """The API's ``out``: an array of the requested output type."""
    dt = getattr(out, "dtype", None)
    if dt is None or np.dtype(dt) != dtype:
        raise TypeError(f"out: expected a {dtype.name} array, got "
                        f"{dt if dt is not None else type(out).__name__}; results are "
                        f"{dtype.name} (allocate out with dtype=numpy.{dtype.name})")
