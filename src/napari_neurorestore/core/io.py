"""TIFF input/output, input validation and output-path safety (tifffile, numpy; no torch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


class InputError(ValueError):
    """The user's data cannot be processed as given (the message says why)."""


def check_dtype(data: Any) -> None:
    dt = np.dtype(getattr(data, "dtype", np.float32))
    if dt.kind not in "uif":
        raise InputError(
            f"unsupported data type {dt}: expected integer or floating-point intensities"
        )


def check_finite(block: np.ndarray, where: str = "the input") -> None:
    if block.dtype.kind == "f" and not np.isfinite(block).all():
        raise InputError(f"{where} contains NaN or infinite values; fix or mask them first")


def check_movie(data: Any, min_frames: int) -> None:
    """Validate a (t, y, x) or (t, z, y, x) movie for temporal methods."""
    check_dtype(data)
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) not in (3, 4):
        raise InputError(
            f"expected a movie with axes (t, y, x) or (t, z, y, x), got {len(shape)}D data "
            f"of shape {shape}"
        )
    if shape[0] < min_frames:
        raise InputError(
            f"the movie has {shape[0]} frame(s) but the temporal window needs at least "
            f"{min_frames}; use a smaller window or a longer recording"
        )
    if shape[-1] < 4 or shape[-2] < 4:
        raise InputError(f"frames of {shape[-2]}x{shape[-1]} pixels are too small (min 4x4)")
    # Small in-memory inputs are checked whole up front; large ones chunk by chunk later.
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap) and data.nbytes < 2**31:
        check_finite(data)


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to overwrite an existing file unless asked; check the folder is writable."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; choose another name or pass --overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output folder {parent} is not writable")
    return p


def read_tiff(path: str | os.PathLike, lazy: bool = True) -> tuple[Any, str]:
    """Open a TIFF stack; return (array, axes).

    With ``lazy`` an uncompressed file is memory-mapped (nothing is read until used);
    other files are read into memory. ``axes`` is tifffile's series axes string
    (e.g. "TYX", "ZYX", "QYX" when unknown).
    """
    import tifffile

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    with tifffile.TiffFile(p) as tf:
        series = tf.series[0]
        axes = series.axes
    data = None
    if lazy:
        try:
            data = tifffile.memmap(p, mode="r")
        except Exception:  # compressed or non-contiguous: fall back to reading
            data = None
    if data is None:
        data = tifffile.imread(p)
    return data, axes


def open_output_tiff(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                     metadata: dict | None = None) -> np.memmap:
    """Create a float32 TIFF of ``shape`` on disk and return it memory-mapped for writing.

    Results are written chunk by chunk, so the output never needs to fit in memory.
    """
    import tifffile

    p = check_output_path(path, overwrite)
    if p.exists():
        p.unlink()
    nbytes = int(np.prod(shape)) * 4
    md = {"axes": "TYX" if len(shape) == 3 else ("TZYX" if len(shape) == 4 else None)}
    if metadata:
        md.update(metadata)
    md = {k: v for k, v in md.items() if v is not None}
    return tifffile.memmap(p, shape=shape, dtype=np.float32, bigtiff=nbytes > 2**31 - 2**25,
                           metadata=md)
