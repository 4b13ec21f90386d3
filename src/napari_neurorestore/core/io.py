"""TIFF and zarr input/output, input validation and output-path safety (tifffile, numpy;
no torch).

Large recordings are never loaded whole: uncompressed TIFFs are memory-mapped, compressed or
tiled TIFFs and zarr/OME-Zarr stores are opened lazily (a zarr view, or a dask array for
napari), and outputs are written chunk by chunk to a memory-mapped TIFF or a zarr store.
zarr and dask are optional (the ``large`` extra) and imported only when needed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

#: compressed TIFFs larger than this (uncompressed bytes) are opened lazily, not read whole
LAZY_MIN_BYTES = 256 * 2**20
#: zarr attribute in which streamed outputs record how far they got
PROGRESS_ATTR = "neurorestore_progress"


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

    With ``lazy`` an uncompressed file is memory-mapped (nothing is read until used) and a
    compressed or tiled file larger than ``LAZY_MIN_BYTES`` becomes a dask array over
    tifffile's zarr view (read chunk by chunk when sliced; needs zarr and dask); smaller
    files are read into memory. ``axes`` is tifffile's series axes string (e.g. "TYX",
    "ZYX", "QYX" when unknown).
    """
    import tifffile

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    with tifffile.TiffFile(p) as tf:
        series = tf.series[0]
        axes = series.axes
        nbytes = int(np.prod(series.shape)) * np.dtype(series.dtype).itemsize
    data = None
    if lazy:
        try:
            data = tifffile.memmap(p, mode="r")
        except Exception:  # compressed or non-contiguous: a lazy zarr view when large
            data = None
        if data is None and nbytes > LAZY_MIN_BYTES:
            data = _as_dask(_tiff_zarr(p))
    if data is None:
        data = tifffile.imread(p)
    return data, axes


def _require(module: str) -> Any:
    """Import an optional dependency of the ``large`` extra, with a clear message."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed for large recordings (lazy compressed TIFF, zarr input/output, "
            f"dask clusters): pip install 'napari-neurorestore[large]'"
        ) from e


def _tiff_zarr(path: Path) -> Any:
    """tifffile's zarr view of the first series (full resolution) as a read-only zarr array."""
    import tifffile

    zarr = _require("zarr")
    store = tifffile.imread(path, aszarr=True, series=0, level=0)
    z = zarr.open(store, mode="r")
    if not hasattr(z, "shape"):  # a multiscale group: level 0
        z = z["0"]
    return z


def _as_dask(z: Any) -> Any:
    """A dask array over a zarr array, chunked whole frames along the leading axes."""
    da = _require("dask.array")
    chunks = tuple(z.chunks[:-2]) + tuple(z.shape[-2:]) if z.ndim >= 2 else z.chunks
    return da.from_zarr(z, chunks=chunks)


def is_zarr_path(path: str | os.PathLike) -> bool:
    """True for ``*.zarr`` paths and for folders that hold a zarr store."""
    p = Path(path)
    if p.suffix.lower() == ".zarr":
        return True
    return p.is_dir() and any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json"))


def _ome_axes(attrs: dict) -> tuple[str, list[dict]] | None:
    """(path of level 0, axes) of an OME-Zarr (NGFF 0.4 or 0.5) multiscales group."""
    ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    if not ms:
        return None
    m = ms[0]
    axes = m.get("axes") or []
    axes = [a if isinstance(a, dict) else {"name": a} for a in axes]
    return m["datasets"][0]["path"], axes


def open_zarr(path: str | os.PathLike) -> tuple[Any, str]:
    """Open a zarr array, an OME-Zarr image or our own output store read-only.

    Returns (array, axes): a zarr array (or, for OME-Zarr with singleton channel/z axes, a
    lazy dask view without them) and an axes string such as "TYX" ("Q" for unknown axes).
    """
    zarr = _require("zarr")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    node = zarr.open(str(p), mode="r")
    axes = None
    if not hasattr(node, "shape"):  # a group: OME-Zarr multiscales, else its only array
        ome = _ome_axes(dict(node.attrs))
        if ome is not None:
            level0, ax = ome
            arr = node[level0]
            names = "".join(str(a.get("name", "q"))[:1].upper() for a in ax)
            drop = [i for i, n in enumerate(names) if n in "CZ" and arr.shape[i] == 1
                    and arr.ndim - 1 > 2]
            if len(names) == arr.ndim and drop:
                dask_arr = _as_dask(arr)
                key = tuple(0 if i in drop else slice(None) for i in range(arr.ndim))
                names = "".join(n for i, n in enumerate(names) if i not in drop)
                return dask_arr[key], names
            return arr, names if len(names) == arr.ndim else _default_axes(arr.ndim)
        arrays = list(node.array_keys())
        if len(arrays) != 1:
            raise InputError(f"{p} is a zarr group without OME-Zarr multiscales metadata and "
                             f"{len(arrays)} arrays; open one of them ({', '.join(arrays)})")
        node = node[arrays[0]]
    ax = node.attrs.get("axes")
    if isinstance(ax, str) and len(ax) == node.ndim:
        axes = ax.upper()
    return node, axes or _default_axes(node.ndim)


def _default_axes(ndim: int) -> str:
    return {2: "YX", 3: "TYX", 4: "TZYX"}.get(ndim, "Q" * (ndim - 2) + "YX")


def open_array(path: str | os.PathLike) -> tuple[Any, str]:
    """Open a TIFF stack or zarr store for chunked processing, without reading it.

    Returns (array, axes): a zarr array (a TIFF through tifffile's zarr view, or a zarr
    store), a lazy dask view (OME-Zarr without its singleton axes), or without zarr
    installed a memmap (uncompressed TIFF) or the data read whole (small compressed TIFF);
    each returns numpy when sliced.
    """
    p = Path(path)
    if is_zarr_path(p):
        return open_zarr(p)
    if p.suffix.lower() not in (".tif", ".tiff", ".btf", ".tf8"):
        raise InputError(f"{p}: unsupported file type (expected a TIFF stack or a .zarr store)")
    import tifffile

    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    with tifffile.TiffFile(p) as tf:
        series = tf.series[0]
        axes = series.axes
        nbytes = int(np.prod(series.shape)) * np.dtype(series.dtype).itemsize
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
        return tifffile.imread(p), axes


def read_array(path: str | os.PathLike, lazy: bool = True) -> tuple[Any, str]:
    """Open a TIFF stack or a zarr/OME-Zarr store; return (array, axes).

    TIFFs as :func:`read_tiff`; zarr stores as a dask array when ``lazy`` (the napari
    reader's choice: napari slices dask arrays lazily), else read into memory.
    """
    p = Path(path)
    if is_zarr_path(p):
        arr, axes = open_zarr(p)
        if lazy:
            return (arr if hasattr(arr, "dask") else _as_dask(arr)), axes
        return np.asarray(arr), axes
    return read_tiff(p, lazy=lazy)


def open_output_tiff(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                     metadata: dict | None = None) -> np.memmap:
    """Create a float32 TIFF of ``shape`` on disk and return it memory-mapped for writing.

    Results are written chunk by chunk, so the output never needs to fit in memory.
    """
    import tifffile

    p = check_output_path(path, overwrite)
    nbytes = int(np.prod(shape)) * 4
    check_free_space(p.parent if str(p.parent) else ".", nbytes, str(p))
    if p.exists():
        p.unlink()
    md = {"axes": "TYX" if len(shape) == 3 else ("TZYX" if len(shape) == 4 else None)}
    if metadata:
        md.update(metadata)
    md = {k: v for k, v in md.items() if v is not None}
    mm = tifffile.memmap(p, shape=shape, dtype=np.float32, bigtiff=nbytes > 2**31 - 2**25,
                         metadata=md)
    return mm.view(ReleasingMemmap)


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


def check_free_space(folder: str | os.PathLike, nbytes: int, what: str = "the output",
                     fraction: float = 1.0) -> None:
    """Refuse to start when ``folder``'s disk has less than ``fraction * nbytes`` free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < fraction * nbytes:
        raise OSError(f"not enough free disk space for {what}: needs about "
                      f"{nbytes / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free in {folder}")


def check_output_target(path: str | os.PathLike, shape: tuple[int, ...],
                        overwrite: bool = False, compress: bool = True) -> Path:
    """All the checks :func:`open_output` makes, without creating anything: call it before
    training so a bad output path, a missing zarr or a full disk fail before any work."""
    p = check_output_path(path, overwrite)
    nbytes = int(np.prod(shape)) * 4
    folder = p.parent if str(p.parent) else Path(".")
    if is_zarr_path(p) and p.suffix.lower() not in (".tif", ".tiff"):
        _require("zarr")
        if p.is_dir() and not any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json")):
            raise FileExistsError(f"{p} is a folder that is not a zarr store; refusing to "
                                  f"replace it (choose another output name)")
        check_free_space(folder, nbytes, str(p), fraction=0.5 if compress else 1.0)
    else:
        check_free_space(folder, nbytes, str(p))
    return p


def _remove_existing(p: Path) -> None:
    """Delete an existing output (``--overwrite``): a file, or a folder that is a zarr store."""
    if p.is_dir():
        if not any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json")):
            raise FileExistsError(f"{p} is a folder that is not a zarr store; refusing to "
                                  f"delete it (choose another output name)")
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


def _json_safe(d: dict | None) -> dict:
    return json.loads(json.dumps(d or {}, default=str))


def open_output(path: str | os.PathLike, shape: tuple[int, ...], overwrite: bool = False,
                chunks: int = 64, metadata: dict | None = None, axes: str | None = None,
                compress: bool = True, chunk_shape: tuple[int, ...] | None = None,
                unit: str = "frames", total: int | None = None) -> Any:
    """Create the output of a streamed run and return it for chunk-by-chunk writing.

    ``*.zarr`` -> a float32 zarr array chunked ``chunks`` frames along time (whole frames,
    one plane per chunk for (t, z, y, x)), so writers of different time chunks never share
    a chunk; or chunked ``chunk_shape`` when given (clipped to ``shape``; for tiled
    methods: one chunk per tile). Unwritten voxels read as NaN; ``metadata`` and ``axes`` go into its attributes
    with a progress record (see :class:`ChunkRecorder`). Compressed with blosc-lz4 (fast)
    unless ``compress`` is False. Anything else -> a memory-mapped float32 (Big)TIFF
    (:func:`open_output_tiff`). An existing output is replaced only with ``overwrite``;
    a missing/unwritable folder or too little disk space fails here, before any work.
    """
    p = Path(path)
    if not is_zarr_path(p) or p.suffix.lower() in (".tif", ".tiff"):
        md = dict(metadata or {})
        if axes and len(axes) == len(shape):
            md["axes"] = axes
        return open_output_tiff(p, shape, overwrite, metadata=md)
    zarr = _require("zarr")
    p = check_output_target(p, shape, overwrite, compress)
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
    attrs["axes"] = axes or _default_axes(len(shape))
    attrs[PROGRESS_ATTR] = {f"{unit}_done": 0,
                            f"{unit}_total": int(shape[0] if total is None else total),
                            "done_ranges": [], "complete": False}
    kw: dict[str, Any] = {"compressors": None}
    if compress:
        kw["compressors"] = zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")
    return zarr.create_array(store=str(p), shape=shape, chunks=chunk_shape, dtype="float32",
                             fill_value=float("nan"), attributes=attrs, **kw)


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
        z, _ = open_zarr(z)
    attrs = getattr(z, "attrs", None)
    return dict(attrs[PROGRESS_ATTR]) if attrs is not None and PROGRESS_ATTR in attrs else None


def release_pages(mm: np.memmap) -> None:
    """Write a memory-mapped output's dirty pages to disk and drop them from this process's
    resident memory (they are re-read from the file if touched again), so that streaming a
    result larger than memory into a memmapped TIFF keeps the resident set bounded."""
    import mmap

    mm.flush()
    m = getattr(mm, "_mmap", None)
    if m is None:
        base = mm.base
        while base is not None and not isinstance(base, mmap.mmap):
            base = getattr(base, "base", None)
        m = base
    if isinstance(m, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass
