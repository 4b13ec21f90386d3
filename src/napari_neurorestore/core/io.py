"""TIFF and zarr input/output, input validation and output-path safety (tifffile, numpy;
no torch).

Large recordings are never loaded whole: uncompressed TIFFs are memory-mapped, compressed or
tiled TIFFs and zarr/OME-Zarr stores are opened lazily (a zarr view, or a dask array for
napari), and outputs are written chunk by chunk to a memory-mapped TIFF, a zarr store or an
OME-Zarr (NGFF 0.4) image. zarr and dask are optional (the ``large`` extra) and imported
only when needed.

This module holds the checks, TIFF I/O and :func:`open_output`; the zarr stores and the
progress record live in :mod:`core.zarr_io`, the output-path rules in :mod:`core.paths`, the
array helpers in :mod:`core.arrays` and the pixel-size metadata in :mod:`core.ome`; import
their names from there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arrays import _as_dask, _default_axes, _json_safe, release_pages
from .errors import InputError
from .errors import require as _require
from .paths import (
    INCOMPLETE,
    _remove_existing,
    check_free_space,
    check_output_path,
    incomplete_path,
    is_zarr_path,
)
from .zarr_io import create_zarr_output, open_zarr, output_progress

#: compressed TIFFs larger than this (uncompressed bytes) are opened lazily, not read whole
LAZY_MIN_BYTES = 256 * 2**20


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


def _check_readable_tiff(tf: Any, p: Path) -> None:
    """Refuse a truncated TIFF (a page's data past the end of the file) up front."""
    size = p.stat().st_size
    for page in tf.pages:
        offs = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        if any(o + c > size for o, c in zip(offs, counts, strict=False)):
            raise InputError(f"{p} is truncated or corrupt (its image data ends past the "
                             f"end of the file)")


def _tiff_header(p: Path) -> tuple[str, Any, int]:
    """(axes, series shape, nbytes) of a TIFF, refusing missing, empty, truncated and
    non-TIFF files with a message naming the file."""
    import tifffile

    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a TIFF file")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty (0 bytes)")
    import logging

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)  # its warnings about a bad file: our message says it
    try:
        with tifffile.TiffFile(p) as tf:
            if not tf.series:
                raise InputError(f"{p} holds no images")
            series = tf.series[0]
            _check_readable_tiff(tf, p)
            axes, shape = series.axes, tuple(series.shape)
            nbytes = int(np.prod(shape)) * np.dtype(series.dtype).itemsize
    except InputError:
        raise
    except Exception as e:  # tifffile's own errors: not a TIFF, bad header
        raise InputError(f"{p} is not a readable TIFF file ({type(e).__name__}: {e})") from e
    finally:
        log.setLevel(level)
    return axes, shape, nbytes


def read_tiff(path: str | os.PathLike, lazy: bool = True) -> tuple[Any, str]:
    """Open a TIFF stack; return (array, axes).

    With ``lazy`` an uncompressed file is memory-mapped (nothing is read until used) and a
    compressed or tiled file larger than ``LAZY_MIN_BYTES`` becomes a dask array over
    tifffile's zarr view (read chunk by chunk when sliced; needs zarr and dask); smaller
    files are read into memory. ``axes`` is tifffile's series axes string (e.g. "TYX",
    "ZYX", "QYX" when unknown).
    """
    import tifffile

    p = Path(path)
    axes, _shape, nbytes = _tiff_header(p)
    data = None
    if lazy:
        try:
            data = tifffile.memmap(p, mode="r")
        except Exception:  # compressed or non-contiguous: a lazy zarr view when large
            data = None
        if data is None and nbytes > LAZY_MIN_BYTES:
            data = _as_dask(_tiff_zarr(p))
    if data is None:
        try:
            data = tifffile.imread(p)
        except Exception as e:
            raise InputError(f"{p} cannot be read ({type(e).__name__}: {e})") from e
    return data, axes


def _tiff_zarr(path: Path) -> Any:
    """tifffile's zarr view of the first series (full resolution) as a read-only zarr array."""
    import tifffile

    zarr = _require("zarr")
    store = tifffile.imread(path, aszarr=True, series=0, level=0)
    z = zarr.open(store, mode="r")
    if not hasattr(z, "shape"):  # a multiscale group: level 0
        z = z["0"]
    return z


def open_array(path: str | os.PathLike) -> tuple[Any, str]:
    """Open a TIFF stack or zarr store for chunked processing, without reading it; also a
    suite2p plane folder, one channel (and plane) of a ScanImage TIFF or a Scanbox file,
    chosen with a ``:cN``/``:zN`` suffix (see :mod:`.acquisition`).

    Returns (array, axes): a zarr array (a TIFF through tifffile's zarr view, or a zarr
    store), a lazy dask view (OME-Zarr without its singleton axes), or without zarr
    installed a memmap (uncompressed TIFF) or the data read whole (small compressed TIFF);
    each returns numpy when sliced.
    """
    from .acquisition import open_acquisition

    opened = open_acquisition(path)  # suite2p plane folder, ScanImage channels/planes, .sbx
    if opened is not None:
        return opened
    p = Path(path)
    if is_zarr_path(p):
        return open_zarr(p)
    if p.suffix.lower() not in (".tif", ".tiff", ".btf", ".tf8"):
        raise InputError(f"{p}: unsupported file type (expected a TIFF stack or a .zarr store)")
    import tifffile

    axes, _shape, nbytes = _tiff_header(p)
    # tifffile's zarr view reads with plain file reads: memory stays bounded however long
    # the movie (pages of a memory map count as resident until the map is dropped)
    try:
        return _tiff_zarr(p), axes
    except ImportError:
        pass
    try:
        return tifffile.memmap(p, mode="r"), axes
    except Exception:
        if nbytes > LAZY_MIN_BYTES:
            _require("zarr")  # raises with the install hint
        try:
            return tifffile.imread(p), axes
        except Exception as e:
            raise InputError(f"{p} cannot be read ({type(e).__name__}: {e})") from e


def read_array(path: str | os.PathLike, lazy: bool = True) -> tuple[Any, str]:
    """Open a TIFF stack or a zarr/OME-Zarr store; return (array, axes). Acquisition formats
    (:mod:`.acquisition`) as :func:`open_array`.

    TIFFs as :func:`read_tiff`; zarr stores as a dask array when ``lazy`` (the napari
    reader's choice: napari slices dask arrays lazily), else read into memory.
    """
    from .acquisition import open_acquisition

    opened = open_acquisition(path)  # suite2p plane folder, ScanImage channels/planes, .sbx
    if opened is not None:
        return (opened if lazy else (np.asarray(opened[0]), opened[1]))
    p = Path(path)
    if is_zarr_path(p):
        arr, axes = open_zarr(p)
        if lazy:
            return (arr if hasattr(arr, "dask") else _as_dask(arr)), axes
        return np.asarray(arr), axes
    return read_tiff(p, lazy=lazy)


def open_output_tiff(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                     metadata: dict | None = None, scale: Sequence[float] | None = None,
                     space_unit: str | None = None, time_unit: str | None = None,
                     temporary: bool = False, dtype: Any = np.float32) -> np.memmap:
    """Create a float32 (or ``dtype``: uint16, int16; see :mod:`.out_types`) TIFF of ``shape`` on disk and return it memory-mapped for writing.

    Results are written chunk by chunk, so the output never needs to fit in memory.
    ``metadata`` (with ``"axes"``) goes into the description as JSON. With ``scale`` (the
    pixel size per axis) the file is an ImageJ hyperstack instead, which Fiji opens with its
    scale: resolution tags for x/y, ``spacing`` for z, ``unit`` (``space_unit``),
    ``finterval`` for t (with ``time_unit``); ``metadata`` then goes, as JSON, into its
    ``Info`` property (Image > Show Info in Fiji). With ``temporary`` the file is created
    as ``OUT.incomplete.tif`` (:func:`incomplete_path`), filled with NaN, and renamed into
    place by :func:`finish_output` when complete: an existing ``OUT.tif`` stays as it is until
    then, and a run that stops leaves a file that says it is not finished.
    """
    import tifffile

    from .ome import tiff_scale_kwargs

    p = check_output_path(path, overwrite)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    check_free_space(p.parent if str(p.parent) else ".", nbytes, str(p))
    md = {"axes": "TYX" if len(shape) == 3 else ("TZYX" if len(shape) == 4 else None)}
    if metadata:
        md.update(metadata)
    md = {k: v for k, v in md.items() if v is not None}
    axes = str(md.get("axes") or _default_axes(len(shape))).upper()
    kw = tiff_scale_kwargs(axes, scale, space_unit, time_unit) if scale is not None else {}
    if kw and not _imagej_axes(axes, len(shape)):  # not an ImageJ hyperstack: tags only
        kw = {"resolution": kw["resolution"]}
    elif kw:
        info = {k: v for k, v in md.items() if k != "axes"}
        md = {"axes": axes, **kw.pop("metadata")}
        if info:
            md["Info"] = json.dumps(_json_safe(info))
    target = incomplete_path(p) if temporary else p
    if target.exists():
        target.unlink()
    mm = tifffile.memmap(target, shape=shape, dtype=dtype,
                         bigtiff=nbytes > 2**31 - 2**25, photometric="minisblack",
                         metadata=md, **kw)
    mm = mm.view(ReleasingMemmap)
    if temporary:
        if dtype.kind == "f":  # an integer output has no NaN: unwritten reads as 0
            _fill_nan(mm)
        mm.__dict__["_final_path"] = p
        mm.__dict__["_temp_path"] = target
    return mm


def _fill_nan(mm: np.memmap) -> None:
    """Unwritten voxels of a TIFF output read as NaN (not 0), a block of frames at a time."""
    if mm.ndim == 0:
        return
    step = max(1, (64 * 2**20) // max(1, int(np.prod(mm.shape[1:])) * 4))
    for i in range(0, mm.shape[0], step):
        mm[i:i + step] = np.nan


def finish_output(out: Any) -> Path | None:
    """A complete output goes into place: a TIFF written under its temporary name (see
    :func:`open_output_tiff`'s ``temporary``) is flushed and renamed to its final name.
    Returns the final path (None for outputs that need nothing)."""
    final = getattr(out, "__dict__", {}).get("_final_path")
    if final is None:
        return None
    temp = out.__dict__["_temp_path"]
    out.flush()
    os.replace(temp, final)
    done = out.__dict__.get("_on_finish")  # a suite2p plane folder: its ops, written last
    if done is not None:
        done()
    return Path(final)


def discard_output(out: Any, path: str | os.PathLike) -> None:
    """Remove an output that a failed run created (nothing in it is a result): the
    temporary TIFF, or the zarr store at ``path``."""
    temp = getattr(out, "__dict__", {}).get("_temp_path")
    try:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        elif is_zarr_path(path) and Path(path).is_dir():
            _remove_existing(Path(path))
    except OSError:
        pass


def _imagej_axes(axes: str, ndim: int) -> bool:
    """Whether ImageJ's hyperstack order (TZCYX) holds ``axes``."""
    if len(axes) != ndim or axes[-2:] != "YX" or len(set(axes)) != ndim:
        return False
    rest = axes[:-2]
    return set(rest) <= set("TZC") and list(rest) == sorted(rest, key="TZC".index)


#: a :class:`ReleasingMemmap` hands its written pages back every this many bytes written
RELEASE_BYTES = 256 * 2**20


class ReleasingMemmap(np.memmap):
    """A writable memmap that flushes its written pages and drops them from the resident set
    every ``RELEASE_BYTES`` written (see :func:`release_pages`), so a method that streams a
    result larger than memory into it keeps its memory bounded. Reads are unaffected."""

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        try:
            written = int(getattr(super().__getitem__(key), "nbytes", 0))
        except Exception:
            written = 0
        pending = self.__dict__.get("_pending", 0) + written
        if pending >= RELEASE_BYTES:
            release_pages(self)
            pending = 0
        self.__dict__["_pending"] = pending


def open_output(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                chunks: int = 64, metadata: dict | None = None, axes: str | None = None,
                compress: bool = True, chunk_shape: tuple[int, ...] | None = None,
                unit: str = "frames", total: int | None = None,
                scale: Sequence[float] | None = None, translate: Sequence[float] | None = None,
                space_unit: str | None = None, time_unit: str | None = None,
                temporary: bool = False, dtype: Any = np.float32) -> Any:
    """Create the output of a streamed run and return it for chunk-by-chunk writing.

    ``*.zarr`` -> a float32 zarr array chunked ``chunks`` frames along time (whole frames,
    one plane per chunk for (t, z, y, x)), so writers of different time chunks never share
    a chunk; or chunked ``chunk_shape`` when given (clipped to ``shape``; for tiled
    methods: one chunk per tile). Unwritten voxels read as NaN; ``metadata`` and ``axes``
    go into its attributes with a progress record (see :class:`core.zarr_io.ChunkRecorder`;
    ``unit`` and ``total`` are what it counts). Compressed with blosc-lz4 (fast) unless ``compress`` is
    False. ``*.ome.zarr`` -> the same array as level "0" of an OME-Zarr (NGFF 0.4, zarr
    format 2) image: ``multiscales`` with the axes (t/c/z/y/x, their types and units) and
    ``coordinateTransformations`` (``scale``: pixel size per axis; ``translate``: where
    pixel 0's centre lies, e.g. the origin shift of upsampling), ``metadata`` (provenance)
    in the image's attributes, the progress record in the array's. Anything else -> a
    memory-mapped float32 (Big)TIFF (:func:`open_output_tiff`; with ``scale``, Fiji reads
    the pixel size). ``space_unit`` (e.g. "micrometer", "um") is the unit of z/y/x,
    ``time_unit`` (e.g. "second") of t. An existing output is replaced only with
    ``overwrite``; a missing/unwritable folder, bad metadata or too little disk space fails
    here, before any work. ``temporary``: a TIFF is written under a temporary name and
    filled with NaN (see :func:`open_output_tiff`; :func:`finish_output` puts it in place).
    ``dtype``: uint16 or int16 instead of float32 (unwritten voxels then read as 0; see
    :mod:`.out_types`); a folder (no extension) or ``.../data.bin``: a suite2p plane folder
    (:mod:`.suite2p_out`).
    """
    p = Path(path)
    from .suite2p_out import is_plane_target, open_plane_output

    if is_plane_target(path):
        return open_plane_output(path, shape, overwrite, metadata=metadata, dtype=dtype,
                                 memmap_class=ReleasingMemmap)
    if not is_zarr_path(p) or p.suffix.lower() in (".tif", ".tiff"):
        md = dict(metadata or {})
        if axes and len(axes) == len(shape):
            md["axes"] = axes
        return open_output_tiff(p, shape, overwrite, metadata=md, scale=scale,
                                space_unit=space_unit, time_unit=time_unit,
                                temporary=temporary, dtype=dtype)
    return create_zarr_output(p, shape, overwrite, chunks=chunks, metadata=metadata, axes=axes,
                              compress=compress, chunk_shape=chunk_shape, unit=unit,
                              total=total, scale=scale, translate=translate,
                              space_unit=space_unit, time_unit=time_unit, dtype=dtype)


def is_incomplete(path: str | os.PathLike) -> str | None:
    """Why the result at ``path`` is not a finished one (None when it is, or cannot tell):
    a zarr output whose progress record says ``complete: false``, a TIFF still under its
    temporary name, or a TIFF next to a leftover temporary one (a later run that stopped)."""
    p = Path(path)
    if is_zarr_path(p):
        try:
            rec = output_progress(p)
        except Exception:
            return None
        if rec is not None and not rec.get("complete", True):
            done = {k: v for k, v in rec.items() if k.endswith(("_done", "_total"))}
            return (f"{p} is an incomplete result (its neurorestore_progress record says "
                    f"complete: false; {done})")
        return None
    if INCOMPLETE in p.name.lower():
        return f"{p} is an incomplete result (a run that stopped before it was finished)"
    left = incomplete_path(p)
    if left.exists():
        return (f"{left} is left over from a run that stopped: {p} may not be the result "
                f"you expect")
    return None
