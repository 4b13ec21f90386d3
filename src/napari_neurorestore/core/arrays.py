"""Helpers shared by the readers and writers of :mod:`.io` and :mod:`.zarr_io` (below both:
it imports neither): default axes, JSON-safe metadata, dask views of zarr arrays and the
page release of memory-mapped outputs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .errors import require as _require

#: zarr attribute in which streamed outputs record how far they got
PROGRESS_ATTR = "neurorestore_progress"


def _default_axes(ndim: int) -> str:
    return {2: "YX", 3: "TYX", 4: "TZYX"}.get(ndim, "Q" * (ndim - 2) + "YX")


def _json_safe(d: dict | None) -> dict:
    return json.loads(json.dumps(d or {}, default=str))


def _as_dask(z: Any) -> Any:
    """A dask array over a zarr array, chunked whole frames along the leading axes."""
    da = _require("dask.array")
    chunks = tuple(z.chunks[:-2]) + tuple(z.shape[-2:]) if z.ndim >= 2 else z.chunks
    return da.from_zarr(z, chunks=chunks)


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
