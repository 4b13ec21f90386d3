"""The residual ``raw - forward(restored)``: in memory for a sample, lazily (dask) for a
whole recording, and the map of where it has structure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .common import _box_var_factor, _f32, _meta, _method_of, _same_grid, box_mean
from .forward import to_input_grid
from .noise import NoiseModel

__all__ = ["LAZY_RESIDUAL_BYTES", "residual", "lazy_residual", "structure_map"]

#: same-grid residuals larger than this (bytes of float32) are built lazily with dask
LAZY_RESIDUAL_BYTES = 256 * 2**20

def residual(raw: Any, restored: Any, metadata: dict | None = None, *,
             method: str | None = None, index: slice | None = None) -> np.ndarray:
    """``raw - forward(restored)`` on the input's grid (float32, the input's units): what the
    restoration removed (positive where it lowered the intensity)."""
    sl = index or slice(None)
    back = to_input_grid(restored, raw.shape, metadata, method=method, index=index)
    return _f32(raw[sl]) - back



def lazy_residual(raw: Any, restored: Any, metadata: dict | None = None, *,
                  method: str | None = None) -> Any:
    """``raw - restored`` for a whole recording without loading it: a dask array computed
    frame chunk by frame chunk when the output is on the input's grid (denoise, other
    tools) and the data are large (or already lazy); otherwise :func:`residual` in memory.
    """
    md = _meta(metadata)
    method = method or _method_of(md)
    same_grid = tuple(restored.shape) == tuple(raw.shape) and _same_grid(method)
    big = 4 * int(np.prod(raw.shape)) > LAZY_RESIDUAL_BYTES
    lazy_in = not isinstance(raw, np.ndarray) or not isinstance(restored, np.ndarray)
    if same_grid and (big or lazy_in):
        try:
            import dask.array as da
        except ImportError:
            da = None
        if da is not None:
            frame = int(np.prod(raw.shape[1:])) * 4
            n = max(1, min(raw.shape[0], (64 * 2**20) // max(frame, 1)))
            chunks = (n,) + tuple(raw.shape[1:])

            def _lazy(a):
                return a if isinstance(a, da.Array) else da.from_array(a, chunks=chunks)

            return _lazy(raw).astype(np.float32) - _lazy(restored).astype(np.float32)
        if big:
            raise MemoryError(f"the residual of {raw.shape} needs "
                              f"{4 * np.prod(raw.shape) / 2**30:.1f} GiB; install dask "
                              "(pip install 'napari-neurorestore[large]') to build it lazily")
    return residual(raw, restored, md, method=method)


def structure_map(r4: np.ndarray, pred: np.ndarray, noise: NoiseModel, temporal: bool
                  ) -> tuple[np.ndarray, float]:
    """Where the residual has structure: box means of the (t, z, y, x) residual ``r4`` in
    units of their noise-only spread (``pred``: the predicted noise variance per voxel),
    averaged over time for movies ((z, y, x)) or over 9 x 9 (x 9) boxes for volumes.
    About 1 where the residual is noise; returns the map and the threshold above which a
    voxel counts as structured."""
    kt, kz, ky, kx = (5, 1, 3, 3) if temporal else (1, 3 if r4.shape[1] >= 3 else 1, 3, 3)
    c = (_box_var_factor(kt, 0.0) * _box_var_factor(kz, 0.0)
         * _box_var_factor(ky, noise.lag1_y if temporal else 0.0)
         * _box_var_factor(kx, noise.lag1_x if temporal else 0.0))
    z2 = box_mean(r4, (kt, kz, ky, kx)) ** 2 / (box_mean(pred, (kt, kz, ky, kx)) * c)
    if temporal:
        smap = z2.mean(axis=0)  # (z, y, x)
        n_eff = max(r4.shape[0] / kt, 1.0)
    else:
        w = (1, min(9, r4.shape[1] | 1), 9, 9)
        smap = box_mean(z2, w)[0]
        n_eff = max(np.prod(w) / (kz * ky * kx), 1.0)
    return smap, max(1.5, 1.0 + 6.0 * math.sqrt(2.0 / n_eff))
