"""Forward models: a method's output brought back onto the input's grid (keep every M-th
row, bin, blur and sub-sample in z), so that it can be compared with the raw data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .common import _f32, _meta, _method_of

__all__ = ["to_input_grid"]


def _blur_z(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along axis 0 (mirror borders), numpy only."""
    if sigma <= 0:
        return x
    h = int(math.ceil(4 * sigma))
    k = np.exp(-0.5 * (np.arange(-h, h + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(h, h)] + [(0, 0)] * (x.ndim - 1), mode="reflect")
    out = np.zeros_like(x, dtype=np.float64)
    for i, w in enumerate(k):
        out += w * pad[i:i + x.shape[0]]
    return out


def to_input_grid(restored: Any, input_shape: Sequence[int], metadata: dict | None = None,
                  *, method: str | None = None, index: slice | None = None) -> np.ndarray:
    """The restoration brought back to the input's grid by the method's forward model.

    * denoise (or another tool's output of the input's shape): unchanged;
    * sparse (factor M along y or x): the restored lines at the acquired positions;
    * upsample (factors f): the mean of each f-block (area sampling);
    * isotropize (ratio R, axial sigma): blurred along z like the acquisition, then sampled
      at the acquired slices (positions i * R of the output).

    ``index`` restricts the result to a range of the first axis (frames of a movie) for the
    methods that keep that axis (denoise, sparse, 2-D/lateral upsampling of movies).
    Returns float32.
    """
    md = _meta(metadata)
    method = method or _method_of(md)
    params = dict(md.get("params", {}))
    input_shape = tuple(int(s) for s in input_shape)
    shape = tuple(restored.shape)
    sl = index or slice(None)

    def _fail(why: str):
        raise ValueError(f"cannot bring the restored array {shape} back to the input's grid "
                         f"{input_shape}: {why}")

    if method in (None, "denoise") or shape == input_shape and method != "isotropize":
        if shape != input_shape:
            _fail("the shapes differ; say which method made it (sparse, upsample, isotropize)")
        return _f32(restored[sl])
    if method == "sparse":
        m = int(md.get("factor", params.get("factor", 0)) or 0)
        axis = str(params.get("axis", "y"))
        if m <= 0:
            ax = -2 if axis == "y" else -1
            m = shape[ax] // max(input_shape[ax], 1)
        s = [slice(None)] * len(shape)
        s[0] = sl
        s[-2 if axis == "y" else -1] = slice(0, None, m)
        out = _f32(restored[tuple(s)])
        want = list(input_shape)
        if index is not None:
            want[0] = out.shape[0]
        if tuple(out.shape) != tuple(want):
            _fail(f"keeping every {m}-th line gives {out.shape}")
        return out
    if method == "upsample":
        factors = md.get("factors")
        if not factors:
            factors = [s // max(i, 1) for s, i in zip(shape, input_shape, strict=False)]
        factors = [int(f) for f in factors]
        if len(factors) != len(shape) or any(s != i * f for s, i, f in
                                             zip(shape, input_shape, factors, strict=True)):
            _fail(f"binning by {factors} does not give the input's shape")
        if index is not None:
            if factors[0] != 1:
                _fail("a frame range needs a first axis that was not upsampled")
            r = _f32(restored[sl])
        else:
            r = _f32(restored)
        new = []
        for n, f in zip(r.shape, factors, strict=True):
            new += [n // f, f]
        return r.reshape(new).mean(axis=tuple(range(1, 2 * len(factors), 2)), dtype=np.float64
                                   ).astype(np.float32)
    if method == "isotropize":
        ratio = float(md.get("z_ratio", params.get("z_ratio") or 0) or 0)
        if ratio <= 0:
            ratio = (shape[0] - 1) / max(input_shape[0] - 1, 1)
        sigma = md.get("sigma_z", params.get("sigma_z"))
        r = _blur_z(_f32(restored), float(sigma or 0.0))
        pos = np.arange(input_shape[0]) * ratio
        lo = np.clip(np.floor(pos).astype(int), 0, shape[0] - 1)
        hi = np.clip(lo + 1, 0, shape[0] - 1)
        w = (pos - lo)[:, None, None]
        out = ((1 - w) * r[lo] + w * r[hi]).astype(np.float32)
        if out.shape[1:] != input_shape[1:]:
            _fail("the lateral shapes differ")
        return out
    _fail(f"unknown method {method!r}")
    return np.empty(0)  # unreachable
