"""A test double for lazy arrays (shared by the streaming and widget tests)."""

from __future__ import annotations

import numpy as np


class CountingArray:
    """An array wrapper that counts the elements read through ``__getitem__`` and refuses
    to be materialised whole (as a lazy dask/zarr/TIFF array should never be)."""

    def __init__(self, a: np.ndarray):
        self.a = a
        self.shape, self.dtype, self.ndim = a.shape, a.dtype, a.ndim
        self.reads: list[int] = []

    def __getitem__(self, key):
        block = np.asarray(self.a[key])
        self.reads.append(block.size)
        return block

    def __len__(self):
        return len(self.a)

    def __array__(self, dtype=None, copy=None):  # pragma: no cover - must never be called
        raise AssertionError("the whole array was materialised")
