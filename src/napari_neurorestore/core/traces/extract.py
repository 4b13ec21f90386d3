"""Chunked trace extraction: the mean of each ROI in every frame.

Vectorised (one gather and one segmented sum per chunk of frames) and read in chunks of
frames, so numpy memmaps and dask arrays are never materialised whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .rois import Roi

__all__ = ["CHUNK_BYTES", "check_trace_movie", "extract_traces"]

CHUNK_BYTES = 64 * 2**20  # bound on the memory one chunk of frames may take while extracting


def check_trace_movie(movie: Any, what: str = "the movie") -> tuple[int, tuple[int, ...]]:
    shape = tuple(int(s) for s in getattr(movie, "shape", ()))
    dt = np.dtype(getattr(movie, "dtype", np.float64))
    if dt.kind not in "uifb":
        raise InputError(f"{what} has data type {dt}; expected integer or float intensities")
    if len(shape) < 3:
        kind = "a single frame" if len(shape) == 2 else f"{len(shape)}D data"
        raise InputError(
            f"{what} is {kind} of shape {shape}: traces need a time axis, "
            "(t, y, x) or (t, z, y, x)"
        )
    if len(shape) > 4:
        raise InputError(f"{what} has {len(shape)} axes {shape}: expected (t, y, x) or (t, z, y, x)")
    return shape[0], shape[1:]


def extract_traces(movie: Any, rois: Sequence[Roi], *, chunk_bytes: int = CHUNK_BYTES,
                   cancel: Any = None) -> np.ndarray:
    """Mean intensity of each ROI in every frame: an (n_rois, n_frames) float64 array.

    ``movie`` is (t, y, x) or (t, z, y, x): a numpy array, a numpy memmap or any lazy array
    that supports basic slicing (dask, zarr): it is read in chunks of frames (at most about
    ``chunk_bytes`` at a time); for a C-contiguous numpy array or memmap only the ROIs' pixels
    are touched. Empty ROIs give NaN. ``cancel``: an optional CancelToken, checked per chunk.
    """
    n_frames, spatial = check_trace_movie(movie)
    n = len(rois)
    out = np.full((n, n_frames), np.nan)
    for r in rois:
        if r.spatial_shape != spatial:
            raise InputError(
                f"ROI {r.id} was made for frames of {r.spatial_shape} but the movie's frames "
                f"are {spatial}"
            )
    use = [i for i, r in enumerate(rois) if r.size]
    if not use or n_frames == 0:
        return out
    sizes = np.array([rois[i].size for i in use])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    idx = np.concatenate([rois[i].index for i in use])
    itemsize = np.dtype(movie.dtype).itemsize
    rows = np.asarray(use)
    if isinstance(movie, np.ndarray) and movie.flags.c_contiguous:
        # gather straight from the frames: only the ROI pixels are read
        step = max(1, int(chunk_bytes // max(1, idx.size * (8 + itemsize))))
        flat_len = int(np.prod(spatial))

        def read(t0: int, t1: int) -> np.ndarray:
            return movie[t0:t1].reshape(t1 - t0, flat_len)
    else:
        # lazy or strided arrays: read the ROIs' bounding box, a chunk of frames at a time
        coords = np.unravel_index(idx, spatial)
        lo = [int(c.min()) for c in coords]
        hi = [int(c.max()) + 1 for c in coords]
        box = tuple(h - a for a, h in zip(lo, hi, strict=False))
        idx = np.ravel_multi_index(tuple(c - a for c, a in zip(coords, lo, strict=False)), box)
        sl = tuple(slice(a, h) for a, h in zip(lo, hi, strict=False))
        step = max(1, int(chunk_bytes // max(1, int(np.prod(box)) * max(itemsize, 8))))

        def read(t0: int, t1: int) -> np.ndarray:
            return np.asarray(movie[(slice(t0, t1),) + sl]).reshape(t1 - t0, -1)
    for t0 in range(0, n_frames, step):
        if cancel is not None:
            cancel.check()
        t1 = min(n_frames, t0 + step)
        g = np.take(read(t0, t1), idx, axis=1)
        sums = np.add.reduceat(g, starts, axis=1, dtype=np.float64)
        out[rows, t0:t1] = (sums / sizes).T
    return out
