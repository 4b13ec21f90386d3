"""Baselines and ΔF/F: :class:`TraceParams`, the ``--f0`` spec, F0 modes, (F - F0) / F0.

F0 is a percentile of the whole trace, a sliding-window percentile (for drifting
baselines), the mean of the first N frames, or a fixed value (:func:`compute_f0`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .extract import CHUNK_BYTES

__all__ = ["F0_MODES", "TraceParams", "parse_f0", "sliding_percentile", "compute_f0",
           "delta_f_over_f"]

F0_MODES = ("percentile", "sliding", "first", "fixed")


@dataclass(frozen=True)
class TraceParams:
    """How ΔF/F is computed.

    f0_mode : "percentile" (a percentile of the whole trace), "sliding" (the percentile over
        a sliding window centred on each frame, for drifting baselines), "first" (the mean
        of the first ``f0_first_frames`` frames) or "fixed" (``f0_value``).
    f0_percentile : the percentile (0-100, linear interpolation) for "percentile"/"sliding".
    f0_window, f0_window_unit : the sliding window's length, in seconds ("s", needs ``fps``)
        or in frames ("frames"). Frame t's window is frames [t - w//2, t - w//2 + w),
        truncated at the ends of the movie.
    f0_first_frames : N for "first".
    f0_value : F0 for "fixed", in the movie's intensity units.
    neuropil : subtract ``neuropil_coef`` x the mean of the background annulus from F
        before F0 and ΔF/F are computed.
    neuropil_inner, neuropil_outer : the annulus holds the pixels whose distance (in
        pixels, in-plane, between pixel centres) to the nearest ROI pixel is in
        (inner, outer]; pixels of any ROI are left out. The annulus is also the "adjacent
        background" of the SNR, so it is computed whether or not ``neuropil`` is set.
    offset : the camera's dark level (offset), subtracted from every intensity (ROI and
        annulus) before neuropil subtraction, F0, ΔF/F and the SNR; 0 leaves them as they are.
    fps : frames per second (None: unknown; time is then in frames).
    """

    f0_mode: str = "percentile"
    f0_percentile: float = 20.0
    f0_window: float = 30.0
    f0_window_unit: str = "s"
    f0_first_frames: int = 30
    f0_value: float = 100.0
    neuropil: bool = False
    neuropil_coef: float = 0.7
    neuropil_inner: float = 2.0
    neuropil_outer: float = 8.0
    offset: float = 0.0
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.f0_mode not in F0_MODES:
            raise ValueError(f"f0_mode must be one of {F0_MODES}, got {self.f0_mode!r}")
        if not 0.0 <= float(self.f0_percentile) <= 100.0:
            raise ValueError(f"f0_percentile must be between 0 and 100, got {self.f0_percentile}")
        if self.f0_window_unit not in ("s", "frames"):
            raise ValueError(f"f0_window_unit must be 's' or 'frames', got {self.f0_window_unit!r}")
        if not self.f0_window > 0:
            raise ValueError(f"f0_window must be positive, got {self.f0_window}")
        if isinstance(self.f0_first_frames, bool) or int(self.f0_first_frames) != self.f0_first_frames \
                or self.f0_first_frames < 1:
            raise ValueError(f"f0_first_frames must be an integer >= 1, got {self.f0_first_frames}")
        if not (math.isfinite(self.f0_value) and self.f0_value > 0):
            raise ValueError(f"f0_value must be a positive number, got {self.f0_value}")
        if not (math.isfinite(self.neuropil_coef) and self.neuropil_coef >= 0):
            raise ValueError(f"neuropil_coef must be >= 0, got {self.neuropil_coef}")
        if not 0 <= self.neuropil_inner < self.neuropil_outer:
            raise ValueError(
                "the annulus needs 0 <= neuropil_inner < neuropil_outer, got "
                f"{self.neuropil_inner} and {self.neuropil_outer}"
            )
        if not math.isfinite(self.offset):
            raise ValueError(f"offset must be a finite number, got {self.offset}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number or None, got {self.fps}")
        if self.f0_mode == "sliding" and self.f0_window_unit == "s" and self.fps is None:
            raise ValueError("a sliding window in seconds needs the frame rate (fps)")

    def window_frames(self) -> int:
        """The sliding window's length in frames (at least 1)."""
        if self.f0_window_unit == "frames":
            return max(1, int(round(self.f0_window)))
        if self.fps is None:
            raise ValueError("a sliding window in seconds needs the frame rate (fps)")
        return max(1, int(round(self.f0_window * self.fps)))

    def f0_key(self) -> tuple:
        """What F0/ΔF/F depend on (besides F): used as a cache key."""
        m = self.f0_mode
        key: tuple = (m, float(self.offset), self.neuropil,
                      self.neuropil_coef if self.neuropil else None)
        if m == "percentile":
            return key + (float(self.f0_percentile),)
        if m == "sliding":
            return key + (float(self.f0_percentile), self.window_frames())
        if m == "first":
            return key + (int(self.f0_first_frames),)
        return key + (float(self.f0_value),)


def parse_f0(spec: str) -> dict[str, Any]:
    """Parse the CLI's ``--f0`` spec into :class:`TraceParams` fields.

    ``percentile:20``, ``sliding:20:30s`` (20th percentile over 30 s windows; ``sliding:20:900``
    or ``sliding:20:900f`` for 900 frames), ``first:50`` (mean of the first 50 frames),
    ``fixed:1200`` (F0 = 1200). ``percentile`` alone uses the default 20th percentile.
    """
    parts = [p.strip() for p in str(spec).strip().split(":")]
    mode = parts[0].lower()
    aliases = {"pct": "percentile", "p": "percentile", "window": "sliding", "mean": "first",
               "value": "fixed"}
    mode = aliases.get(mode, mode)
    if mode not in F0_MODES:
        raise ValueError(
            f"unknown F0 mode {parts[0]!r} in {spec!r}: use percentile:P, sliding:P:Ns, "
            "sliding:P:N (frames), first:N or fixed:VALUE"
        )
    try:
        if mode == "percentile":
            if len(parts) > 2:
                raise ValueError
            return {"f0_mode": mode, **({"f0_percentile": float(parts[1])} if len(parts) == 2 else {})}
        if mode == "sliding":
            if len(parts) != 3:
                raise ValueError
            w, unit = parts[2].lower().replace(" ", ""), "frames"
            for suffix, u in (("frames", "frames"), ("sec", "s"), ("s", "s"), ("f", "frames")):
                if w.endswith(suffix):
                    w, unit = w[: -len(suffix)], u
                    break
            return {"f0_mode": mode, "f0_percentile": float(parts[1]), "f0_window": float(w),
                    "f0_window_unit": unit}
        if mode == "first":
            if len(parts) != 2:
                raise ValueError
            n = float(parts[1])
            if n != int(n):
                raise ValueError
            return {"f0_mode": mode, "f0_first_frames": int(n)}
        if len(parts) != 2:
            raise ValueError
        return {"f0_mode": mode, "f0_value": float(parts[1])}
    except ValueError:
        raise ValueError(
            f"cannot read the F0 spec {spec!r}: use percentile:20, sliding:20:30s, "
            "sliding:20:900 (frames), first:50 or fixed:1200"
        ) from None


def _sliding_percentile_sorted(row: np.ndarray, q: float, w: int, out: np.ndarray) -> None:
    """One row of :func:`sliding_percentile` with a sorted window updated frame by frame
    (O(T log w) comparisons instead of O(T w log w)); same interpolation as numpy's."""
    from bisect import bisect_left, insort

    T = row.shape[0]
    h = w // 2
    vals = row.tolist()
    qf = float(np.true_divide(q, 100))
    win: list[float] = []
    a0 = b0 = 0
    for t in range(T):
        a = t - h if t > h else 0
        b = t - h + w
        if b > T:
            b = T
        for j in range(b0, b):
            insort(win, vals[j])
        for j in range(a0, a):
            del win[bisect_left(win, vals[j])]
        a0, b0 = a, b
        n = len(win)
        v = qf * (n - 1)
        lo = int(v)
        if lo + 1 < n:
            g = v - lo
            x0, x1 = win[lo], win[lo + 1]
            d = x1 - x0
            out[t] = x0 + d * g if g < 0.5 else x1 - d * (1 - g)
        else:
            out[t] = win[n - 1]


def sliding_percentile(f: np.ndarray, q: float, window: int) -> np.ndarray:
    """Percentile ``q`` of each row over a sliding window of ``window`` frames.

    Frame t's window is [t - window//2, t - window//2 + window), truncated at both ends
    (numpy's linear-interpolation percentile). ``f`` is (..., T); the result has its shape.
    """
    f = np.asarray(f, np.float64)
    T = f.shape[-1]
    w = int(min(max(1, window), T))
    h = w // 2
    out = np.empty_like(f)
    if T == 0:
        return out
    rows = f.reshape(-1, T)
    res = out.reshape(-1, T)
    finite = np.isfinite(rows).all(axis=1)
    if w > 48:  # long windows: a sorted window per row
        for i in np.flatnonzero(finite):
            _sliding_percentile_sorted(rows[i], q, w, res[i])
        todo = np.flatnonzero(~finite)
    else:
        todo = np.arange(rows.shape[0])
    if todo.size == 0:
        return out
    # short windows (or rows with NaN): numpy on full windows, then the truncated ends
    view = np.lib.stride_tricks.sliding_window_view(rows, w, axis=-1)  # (n, T-w+1, w)
    per_row = max(1, int(CHUNK_BYTES // max(1, w * 8)))
    for i in todo:
        for s in range(0, T - w + 1, per_row):
            e = min(T - w + 1, s + per_row)
            res[i, s + h : e + h] = np.percentile(view[i, s:e], q, axis=-1)
    for t in list(range(0, h)) + list(range(T - w + h + 1, T)):
        a, b = max(0, t - h), min(T, t - h + w)
        res[todo, t] = np.percentile(rows[todo, a:b], q, axis=-1)
    return out


def compute_f0(f: np.ndarray, params: TraceParams) -> np.ndarray:
    """F0 of each trace: (n_rois, n_frames) F -> (n_rois, n_frames) F0 (NaNs ignored)."""
    f = np.atleast_2d(np.asarray(f, np.float64))
    T = f.shape[-1]
    m = params.f0_mode
    if m == "fixed":
        return np.full(f.shape, float(params.f0_value))
    if T == 0:
        return np.empty_like(f)
    if m == "percentile":
        with np.errstate(all="ignore"):
            f0 = np.percentile(f, params.f0_percentile, axis=-1, keepdims=True)
    elif m == "first":
        n = int(params.f0_first_frames)
        if n > T:
            raise InputError(f"F0 from the first {n} frames, but the movie has {T}")
        f0 = f[..., :n].mean(axis=-1, keepdims=True)
    else:
        return sliding_percentile(f, params.f0_percentile, params.window_frames())
    return np.broadcast_to(f0, f.shape).copy()


def delta_f_over_f(f: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """(F - F0) / F0; NaN where F0 <= 0 or is not finite (ΔF/F is undefined there)."""
    f = np.asarray(f, np.float64)
    f0 = np.broadcast_to(np.asarray(f0, np.float64), f.shape)
    ok = np.isfinite(f0) & (f0 > 0)
    out = np.full(f.shape, np.nan)
    np.divide(f - f0, f0, out=out, where=ok)
    return out
