"""The Poisson-Gaussian noise model ``var = gain * (mean - offset) + read_var``, fitted
from the raw data itself (temporal second differences of a movie, spatial ones of a
volume), with the noise's own lag-1 spatial correlation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .common import _f32, _lag1, box_mean

__all__ = ["NoiseModel", "estimate_noise"]


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian noise ``var = gain * (mean - offset) + read_var``.

    ``gain`` is in intensity units per photon (the slope of variance against mean);
    ``offset`` the intensity at zero photons. The variance line alone cannot tell the
    offset from the read noise (a read noise of r units moves its zero-variance intercept
    r^2/gain below the offset), so the offset comes from the noise's skewness: the third
    cumulant of Poisson noise is gain^2 (mean - offset) and Gaussian read noise has none.
    When the skewness does not look like Poisson noise, the zero-variance intercept is used
    (``read_var`` = 0). A given offset is used as is. ``lag1_y``/``lag1_x``: the noise's own lag-1 spatial correlation.
    """

    gain: float
    offset: float
    read_var: float
    source: str  # "temporal" (frame differences) or "spatial" (neighbour differences)
    lag1_y: float = 0.0
    lag1_x: float = 0.0
    n_samples: int = 0
    bin_means: tuple[float, ...] = ()
    bin_vars: tuple[float, ...] = ()

    def variance(self, mean: Any) -> np.ndarray:
        floor = max(self.read_var, 1e-3 * max(self.gain, 1e-6))
        return np.maximum(self.gain * (np.asarray(mean, np.float64) - self.offset)
                          + self.read_var, floor)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bin_means"] = list(self.bin_means)
        d["bin_vars"] = list(self.bin_vars)
        return d

    def summary(self) -> str:
        return (f"noise model ({self.source} differences): gain {self.gain:.4g} units/photon, "
                f"offset {self.offset:.4g}, read-noise variance {self.read_var:.3g}")


def _median_mad(x: np.ndarray) -> tuple[float, float]:
    """The median of ``x`` and its median absolute deviation scaled to a Gaussian's SD."""
    med = float(np.median(x))
    return med, float(np.median(np.abs(x - med))) * 1.4826


def _sample_flat(rng, arrays, max_samples):
    n = arrays[0].size
    if n <= max_samples:
        return [a.ravel() for a in arrays]
    idx = rng.choice(n, size=max_samples, replace=False)
    return [a.ravel()[idx] for a in arrays]


def _fit_line(means, vars_, counts):
    """Weighted least squares of var = a*mean + b (weights n / var^2), dropping bins that
    sit far above the line (structure rather than noise) for a few rounds."""
    keep = np.ones(len(means), bool)
    a = b = float("nan")
    for _ in range(4):
        if keep.sum() < 2:
            break
        m, v, n = means[keep], vars_[keep], counts[keep]
        w = n / np.maximum(v, 1e-12) ** 2
        A = np.stack([m, np.ones_like(m)], 1) * np.sqrt(w)[:, None]
        (a, b), *_ = np.linalg.lstsq(A, v * np.sqrt(w), rcond=None)
        pred = np.maximum(a * means + b, 1e-12)
        se = pred * np.sqrt(2.0 / np.maximum(counts, 1))
        new = (vars_ - pred) < 4 * se + 0.02 * pred
        if (new == keep).all():
            break
        keep = new
    return float(a), float(b)


def _skew_offset(d, m, mx, lo, hi, gain, n_bins: int = 12) -> float | None:
    """Offset from the third cumulant of the differences ``d``: Poisson noise has
    gain^2 (mean - offset) (x 0.75 for second differences), Gaussian read noise none, so it
    locates the offset whatever the read noise. Bins of equal width in the mean (for
    leverage), a weighted line; None when the skewness does not look like Poisson noise of
    that gain (slope off by more than 30 %) or the fit is poorly determined."""
    edges = np.linspace(lo, hi, n_bins + 1)
    which = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, n_bins - 1)
    means, k3, w = [], [], []
    for i in range(n_bins):
        sel = (which == i) & (m >= lo) & (m <= hi)
        n = int(sel.sum())
        if n < 2000:
            continue
        di = d[sel]
        med, mad = _median_mad(di)
        c = di[np.abs(di - med) < 8 * max(mad, 1e-6)]
        c = c - c.mean()
        v = float(np.mean(c * c))
        means.append(float(mx[sel].mean()))
        k3.append(float(np.mean(c ** 3)) / 0.75)
        w.append(math.sqrt(n) / max(v, 1e-12) ** 1.5)  # 1 / standard error of k3
    if len(means) < 3:
        return None
    means_a = np.asarray(means)
    a, c = np.polyfit(means_a, np.asarray(k3), 1, w=np.asarray(w))
    if not (a > 0 and abs(math.sqrt(a) / gain - 1) < 0.3):
        return None
    o3 = -c / a
    return float(o3) if o3 <= float(means_a.min()) else None


def estimate_noise(raw: Any, *, temporal: bool | None = None, offset: float | None = None,
                   max_frames: int = 400, n_bins: int = 24, max_samples: int = 2_000_000,
                   seed: int = 0) -> NoiseModel:
    """Estimate the Poisson-Gaussian noise of ``raw`` from the data itself.

    Movies (``temporal``, the default for 3-D+ data with at least 8 frames): the second
    difference ``x[t] - (x[t-1] + x[t+1]) / 2`` has variance 1.5 sigma^2 wherever the
    signal changes slowly; its local mean comes from other frames (t +- 2, 3) and a 3x3
    neighbourhood, so the noise of the mean is independent of the difference's (no
    regression dilution). Volumes/images: the same along x, with the mean from rows y +- 2
    (less accurate: structure inflates it; a median-based spread limits that).
    Variances are taken in bins of the mean and fitted with a straight line.
    """
    a = np.asarray(raw) if not hasattr(raw, "shape") else raw
    if a.ndim < 2:
        raise ValueError("the noise model needs at least a 2-D image")
    if temporal is None:
        temporal = a.ndim >= 3 and a.shape[0] >= 8
    rng = np.random.default_rng(seed)
    if temporal:
        if a.shape[0] < 7:
            raise ValueError("temporal noise estimation needs at least 7 frames")
        n = min(a.shape[0], max_frames)
        t0 = (a.shape[0] - n) // 2
        x = _f32(a[t0:t0 + n])
        x = x.reshape(n, -1, *x.shape[-2:]) if x.ndim > 3 else x[:, None]
        d = x[3:-3] - 0.5 * (x[2:-4] + x[4:-2])
        m = 0.25 * (x[:-6] + x[1:-5] + x[5:-1] + x[6:])
        m = box_mean(m, (1, 1, 3, 3))
        mx = (x[2:-4] + x[3:-3] + x[4:-2]) / 3.0
        scale = 1.5
        # spatial correlation of the noise from first differences (signal mostly cancels)
        d1 = x[1:] - x[:-1]
        d1 = d1 - d1.mean(axis=(-2, -1), keepdims=True)
        lag_y, lag_x = _lag1(d1, -2), _lag1(d1, -1)
        robust = False
    else:
        x = _f32(a)
        d = x[..., 2:-2, 1:-1] - 0.5 * (x[..., 2:-2, :-2] + x[..., 2:-2, 2:])
        m = (x[..., :-4, :-2] + x[..., :-4, 1:-1] + x[..., :-4, 2:]
             + x[..., 4:, :-2] + x[..., 4:, 1:-1] + x[..., 4:, 2:]) / 6.0
        mx = (x[..., 2:-2, :-2] + x[..., 2:-2, 1:-1] + x[..., 2:-2, 2:]) / 3.0
        scale = 1.5
        lag_y = lag_x = 0.0
        robust = True
    if not np.isfinite(d).all():
        raise ValueError("the data contain NaN or infinite values")
    # bins are chosen by m (noise independent of d's); each bin's mean intensity is taken
    # from mx (the same pixels and frames as d), whose expectation over the bin is the
    # bin's true mean: binning by a noisy mean would otherwise flatten the fitted slope
    d, m, mx = _sample_flat(rng, [d, m, mx], max_samples)
    lo, hi = np.quantile(m, [0.005, 0.995])
    edges = np.unique(np.quantile(m[(m >= lo) & (m <= hi)], np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)
    means, vars_, counts = [], [], []
    for i in range(len(edges) - 1):
        sel = (which == i) & (m >= lo) & (m <= hi)
        if sel.sum() < 200:
            continue
        di = d[sel]
        med, mad = _median_mad(di)
        if robust:
            v = mad * mad
        else:
            keep = np.abs(di - med) < 5 * max(mad, 1e-6)
            v = float(np.mean((di[keep] - di[keep].mean()) ** 2))
        means.append(float(mx[sel].mean()))
        vars_.append(v / scale)
        counts.append(int(sel.sum()))
    if len(means) < 2:
        # flat data: one level; variance only
        v = float(np.var(d) / scale)
        return NoiseModel(0.0, float(np.mean(m)), v, "temporal" if temporal else "spatial",
                          float(lag_y), float(lag_x), int(d.size), tuple(means), tuple(vars_))
    means_a, vars_a, counts_a = map(np.asarray, (means, vars_, counts))
    slope, intercept = _fit_line(means_a, vars_a, counts_a.astype(float))
    slope = max(slope, 0.0)
    if offset is not None:
        off = float(offset)
        read_var = max(intercept + slope * off, 0.0)
    elif slope > 0:
        off = -intercept / slope
        read_var = 0.0
        o3 = _skew_offset(d, m, mx, lo, hi, slope)
        if o3 is not None and o3 >= off - 1e-9:
            off, read_var = o3, max(intercept + slope * o3, 0.0)
    else:
        off = float(np.min(means_a))
        read_var = max(intercept, 0.0)
    return NoiseModel(float(slope), float(off), float(read_var),
                      "temporal" if temporal else "spatial", float(lag_y), float(lag_x),
                      int(d.size), tuple(round(v, 6) for v in means),
                      tuple(round(v, 6) for v in vars_))
