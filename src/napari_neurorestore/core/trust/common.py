"""Small helpers shared by the trust modules: float32 views, the layer's metadata, box
means, lag-1 and Pearson correlations, spectra and JSON-safe figures. numpy only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["box_mean"]


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def box_mean(x: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Moving average with an odd box per axis (edge-replicated borders), via cumulative
    sums: O(n) per axis whatever the box size. ``sizes`` of 1 leave an axis alone."""
    out = np.asarray(x, dtype=np.float64)
    for ax, k in enumerate(sizes):
        k = int(k)
        if k <= 1 or out.shape[ax] == 1:
            continue
        if k % 2 == 0:
            raise ValueError("box sizes must be odd")
        h = k // 2
        pad = [(0, 0)] * out.ndim
        pad[ax] = (h + 1, h)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=ax)
        n = out.shape[ax]
        hi = np.take(c, np.arange(k, k + n), axis=ax)
        lo = np.take(c, np.arange(0, n), axis=ax)
        out = (hi - lo) / k
    return out


def _lag1(x: np.ndarray, axis: int) -> float:
    """Lag-1 autocorrelation of ``x`` along ``axis`` (x already centred)."""
    if x.shape[axis] < 2:
        return float("nan")
    a = np.take(x, np.arange(x.shape[axis] - 1), axis=axis)
    b = np.take(x, np.arange(1, x.shape[axis]), axis=axis)
    den = math.sqrt(float(np.mean(a * a)) * float(np.mean(b * b)))
    return float(np.mean(a * b) / den) if den > 0 else float("nan")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.mean(a * a)) * float(np.mean(b * b)))
    return float(np.mean(a * b) / den) if den > 0 else float("nan")


def _meta(metadata: dict | None) -> dict:
    md = dict(metadata or {})
    return dict(md.get("neurorestore", md))


def _method_of(md: dict) -> str | None:
    m = md.get("method")
    return str(m) if m else None


def _method_obj(method: str | None) -> Any:
    """The registered :class:`~..methods.base.Method` called ``method`` (None: none or an
    unknown name, e.g. another tool's)."""
    from ..methods import get, names

    return get(method) if method in names() else None


def _same_grid(method: str | None) -> bool:
    """Whether ``method``'s output lies on the input's grid (None: another tool's output,
    taken to)."""
    m = _method_obj(method)
    return method is None or (m is not None and m.identity_forward)


def _box_var_factor(k: int, rho: float) -> float:
    """Variance of the mean of k neighbours of a series with lag-1 correlation rho only,
    relative to one sample's."""
    return (k + 2 * (k - 1) * rho) / (k * k) if k > 1 else 1.0


def _spectrum(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[axis]
    p = np.abs(np.fft.rfft(x, axis=axis)) ** 2 / n
    axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    return np.fft.rfftfreq(n), p.mean(axis=axes)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json_safe(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)
