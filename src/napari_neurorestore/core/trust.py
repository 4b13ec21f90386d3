"""Trust checks: did a restoration remove only noise, or also signal?

numpy only, for any pair (raw, restored), whether the restoration came from this plugin or
from another tool. The pieces:

* :func:`estimate_noise` fits the Poisson-Gaussian model ``var = gain * (mean - offset) +
  read_var`` of the raw data from the data itself (temporal second differences of a movie,
  spatial ones of a volume), and the noise's own lag-1 spatial correlation.
* :func:`to_input_grid` brings a restoration back onto the input's grid with the method's
  own forward model (keep every M-th row, bin, blur and sub-sample in z).
* :func:`assess` computes the residual ``raw - forward(restored)`` on a sample of frames and
  checks it against the noise model: its variance (about 1 x the noise when exactly the
  noise was removed), its lag-1 autocorrelations, its correlation with the restored signal,
  a map of where it has structure, the intensity shift, and transient fidelity of ROI
  ΔF/F traces (:mod:`.transients`; the given ROIs or the most active tiles).
  Each check has a value, a threshold and a status ``"pass"`` or ``"warn"``; warnings are
  collected in ``flags``.

The thresholds were calibrated on simulated Poisson-Gaussian movies (see
``benchmarks/bench_trust.py``, which prints every figure for a clean output, the raw movie,
an over-smoothing Gaussian, halved transients and the plugin's denoiser). They assume noise
that is independent from frame to frame; the noise's spatial correlation is measured and
accounted for (movies only; volumes are assumed spatially white).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "NoiseModel", "Check", "TrustReport", "THRESHOLDS", "estimate_noise", "to_input_grid",
    "residual", "assess", "box_mean", "DENOISING_METHODS",
]

#: methods whose purpose includes removing noise: "removed nothing" is a warning for them.
#: ``None`` (an output of another tool on the same grid) counts as a denoiser.
DENOISING_METHODS = (None, "denoise", "sparse")

#: Thresholds of the checks (calibrated in benchmarks/bench_trust.py; documented in README).
THRESHOLDS: dict[str, float] = {
    # residual variance / the noise model's prediction
    "variance_ratio_nothing": 0.1,   # below: the output is (almost) the input
    "variance_ratio_low": 0.5,       # below: much of the noise was left
    "variance_ratio_high": 1.3,     # above: more than the noise was removed
    # lag-1 autocorrelation of the residual minus that of the noise, largest over the axes
    # (one-sided: smooth structure correlates positively; a denoiser that mixes in the
    # noise of neighbouring frames or pixels makes it negative, which is not signal loss)
    "autocorr": 0.05,
    # Pearson r between the residual and the restored signal's fluctuations (one-sided:
    # negative when the output carries noise from neighbouring frames)
    "signal_correlation": 0.15,
    # fraction of the field of view whose residual has structure (map above its threshold)
    "structure_fraction": 0.02,
    # mean residual / mean signal above the offset
    "intensity_shift": 0.05,
    # transient fidelity (median over ROIs with events)
    "peak_ratio": 0.8,
    "onset_delay": 1.0,
}


# ----------------------------------------------------------------------------- helpers
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


# ----------------------------------------------------------------------------- noise model
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
        med = float(np.median(di))
        mad = float(np.median(np.abs(di - med))) * 1.4826
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
        med = float(np.median(di))
        mad = float(np.median(np.abs(di - med))) * 1.4826
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


# ----------------------------------------------------------------------------- forward models
def _meta(metadata: dict | None) -> dict:
    md = dict(metadata or {})
    return dict(md.get("neurorestore", md))


def _method_of(md: dict) -> str | None:
    m = md.get("method")
    return str(m) if m else None


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
    input_shape = tuple(int(s) for s in input_shape)
    shape = tuple(restored.shape)
    if method in (None, "denoise") or shape == input_shape and method != "isotropize":
        method = "denoise"  # the identity (another tool's output on the input's grid too)
    from .methods import get, names

    if method not in names():
        raise ValueError(f"cannot bring the restored array {shape} back to the input's grid "
                         f"{input_shape}: unknown method {method!r}")
    return get(method).to_input_grid(restored, input_shape, md, index)


def residual(raw: Any, restored: Any, metadata: dict | None = None, *,
             method: str | None = None, index: slice | None = None) -> np.ndarray:
    """``raw - forward(restored)`` on the input's grid (float32, the input's units): what the
    restoration removed (positive where it lowered the intensity)."""
    sl = index or slice(None)
    back = to_input_grid(restored, raw.shape, metadata, method=method, index=index)
    return _f32(raw[sl]) - back


# ----------------------------------------------------------------------------- the report
@dataclass
class Check:
    """One figure with its threshold and a pass/warn verdict."""

    name: str
    value: float | None
    threshold: str
    status: str  # "pass", "warn" or "n/a"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrustReport:
    """Everything :func:`assess` measured. ``figures`` and ``flags`` are JSON-safe; the
    arrays are for pictures (sampled frames on the input's grid)."""

    method: str | None
    metadata: dict
    noise: NoiseModel
    checks: list[Check]
    figures: dict[str, Any]
    flags: list[str]
    frames: tuple[int, int] | None  # the sampled frame range of a movie, None for volumes
    raw: np.ndarray = field(repr=False)  # sampled raw data (input grid)
    restored: np.ndarray = field(repr=False)  # the restoration on the input's grid
    residual: np.ndarray = field(repr=False)  # raw - restored (input grid)
    structure_map: np.ndarray = field(repr=False)  # (y, x) for movies, (z, y, x) for volumes
    spectra: dict[str, Any] = field(default_factory=dict, repr=False)
    transients: list[dict] | None = None
    traces: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        tr = None
        if self.transients is not None:
            tr = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()}
                  for row in self.transients]
        return _json_safe({"method": self.method, "flags": list(self.flags),
                           "checks": [c.to_dict() for c in self.checks],
                           "figures": self.figures, "noise_model": self.noise.to_dict(),
                           "frames": self.frames, "transients": tr,
                           "metadata": self.metadata})


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


def auto_rois(movie: np.ndarray, n_rois: int = 20, size: int = 8) -> np.ndarray:
    """ROIs when none are given: the ``n_rois`` most active ``size`` x ``size`` tiles of a
    (t, y, x) movie (largest temporal std of the tile mean). A (y, x) label image."""
    h, w = movie.shape[-2:]
    size = max(1, min(size, h // 2, w // 2))
    ny, nx = h // size, w // size
    lab = np.zeros((h, w), np.int32)
    if ny * nx == 0 or movie.ndim != 3:
        return lab
    tiles = _f32(movie[:, :ny * size, :nx * size]).reshape(len(movie), ny, size, nx, size)
    score = tiles.mean((2, 4)).std(0).ravel()
    for i, j in enumerate(np.argsort(score)[::-1][:n_rois]):
        r, c = divmod(int(j), nx)
        lab[r * size:(r + 1) * size, c * size:(c + 1) * size] = i + 1
    return lab


def _box_var_factor(k: int, rho: float) -> float:
    """Variance of the mean of k neighbours of a series with lag-1 correlation rho only,
    relative to one sample's."""
    return (k + 2 * (k - 1) * rho) / (k * k) if k > 1 else 1.0


def _spectrum(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[axis]
    p = np.abs(np.fft.rfft(x, axis=axis)) ** 2 / n
    axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
    return np.fft.rfftfreq(n), p.mean(axis=axes)


def _is_denoising(method: str | None, md: dict) -> bool:
    if method == "sparse":
        return bool(dict(md.get("params", {})).get("denoise", True))
    return method in DENOISING_METHODS


def _sample_range(n_frames: int, frame_voxels: int, max_voxels: int) -> tuple[int, int]:
    n = int(min(n_frames, max(16, max_voxels // max(frame_voxels, 1))))
    t0 = (n_frames - n) // 2
    return t0, t0 + n


def assess(raw: Any, restored: Any, metadata: dict | None = None, *,
           method: str | None = None, rois: Any = None, noise: NoiseModel | None = None,
           temporal: bool | None = None, offset: float | None = None,
           max_voxels: int = 24_000_000, transients: bool = True,
           thresholds: dict[str, float] | None = None) -> TrustReport:
    """Check what ``restored`` removed from ``raw`` (see the module's docstring).

    ``metadata``: the restored layer's metadata (``{"neurorestore": {...}}``, as this plugin
    writes it) or a plain dict with ``method``/``params``; ``method`` overrides it
    (``None``: an output of the input's shape, e.g. another tool's denoiser). ``rois``: a
    (y, x) label image for the transient checks (default: the most active 8x8 tiles).
    ``temporal``: whether the first axis is time (default: yes for 3-D/4-D data with at
    least 8 frames, except for upsample/isotropize). Large movies are assessed on a
    contiguous block of frames of at most ``max_voxels`` voxels.
    """
    th = dict(THRESHOLDS, **(thresholds or {}))
    md = _meta(metadata)
    method = method or _method_of(md)
    if np.ndim(raw) < 2:
        raise ValueError("the raw data must be at least 2-D")
    if temporal is None:
        temporal = (np.ndim(raw) >= 3 and raw.shape[0] >= 8
                    and method not in ("upsample", "isotropize"))
    if temporal:
        t0, t1 = _sample_range(raw.shape[0], int(np.prod(raw.shape[1:])), max_voxels)
        idx = slice(t0, t1)
        frames = (t0, t1)
    else:
        idx, frames = None, None
    sl = idx or slice(None)
    raw_s = _f32(raw[sl])
    if not np.isfinite(raw_s).all():
        raise ValueError("the raw data contain NaN or infinite values")
    back = to_input_grid(restored, raw.shape, md, method=method, index=idx)
    if not np.isfinite(back).all():
        raise ValueError("the restored data contain NaN or infinite values (an unfinished "
                         "output store?)")
    if method == "isotropize":
        # the re-blurred output is only complete where the axial blur's support lies
        # inside the output: leave out the end slices where it does not
        ratio = (restored.shape[0] - 1) / max(raw.shape[0] - 1, 1)
        reach = 3.0 * float(md.get("sigma_z") or dict(md.get("params", {})).get("sigma_z")
                            or 0.0)
        pos = np.arange(raw.shape[0]) * ratio
        inside = np.nonzero((pos >= reach) & (pos <= restored.shape[0] - 1 - reach))[0]
        if len(inside) >= 3:
            raw_s, back = raw_s[inside[0]:inside[-1] + 1], back[inside[0]:inside[-1] + 1]
    res = raw_s - back
    if noise is None:
        noise = estimate_noise(raw_s, temporal=temporal, offset=offset)

    # work in (t, z, y, x) for movies and (1, z, y, x) for volumes / images
    def _4d(a):
        if temporal:
            return a.reshape(a.shape[0], -1, *a.shape[-2:]) if a.ndim > 3 else a[:, None]
        return a[None] if a.ndim == 3 else a[None, None]

    r4, raw4, back4 = _4d(res), _4d(raw_s), _4d(back)
    mu = box_mean(raw4, (3 if temporal else 1, 1 if temporal else 3, 3, 3))
    pred = noise.variance(mu)
    pred_mean = float(pred.mean())
    figs: dict[str, Any] = {}
    figs["residual_rms"] = float(np.sqrt(np.mean(res.astype(np.float64) ** 2)))
    figs["noise_rms_predicted"] = math.sqrt(pred_mean)
    vr = float(np.mean(r4.astype(np.float64) ** 2) / pred_mean)
    figs["variance_ratio"] = vr
    above = float(np.mean(raw4) - noise.offset)
    figs["intensity_shift"] = float(np.mean(r4)) / above if above > 0 else float("nan")

    zero = figs["residual_rms"] <= 1e-6 * max(math.sqrt(pred_mean), 1e-12)
    # lag-1 autocorrelations: time about each pixel's mean, space about each frame's mean
    if zero:
        lags = {"t": float("nan"), "y": float("nan"), "x": float("nan")}
    else:
        rc_t = r4 - r4.mean(axis=0, keepdims=True)
        rc_s = r4 - r4.mean(axis=(-2, -1), keepdims=True)
        lags = {"t": _lag1(rc_t, 0) if temporal else float("nan"),
                "y": _lag1(rc_s, -2), "x": _lag1(rc_s, -1)}
        if not temporal and r4.shape[1] > 1:
            lags["z"] = _lag1(rc_s, 1)
    noise_lag = {"t": 0.0, "z": 0.0, "y": noise.lag1_y, "x": noise.lag1_x}
    for k, v in lags.items():
        figs[f"residual_lag1_{k}"] = v
    excess = {k: v - noise_lag[k] for k, v in lags.items() if math.isfinite(v)}
    figs["autocorr_excess"] = max(excess.values(), default=float("nan"))

    # correlation of the residual with the restored signal's fluctuations
    if temporal:
        hp = back4 - back4.mean(axis=0, keepdims=True)
    else:
        hp = back4 - box_mean(back4, (1, 1 if back4.shape[1] < 7 else 7, 7, 7))
    figs["signal_correlation"] = float("nan") if zero else _pearson(r4, hp)

    # structure map: box means of the residual in units of their noise-only spread
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
    map_thr = max(1.5, 1.0 + 6.0 * math.sqrt(2.0 / n_eff))
    figs["structure_map_threshold"] = map_thr
    figs["structure_fraction"] = float(np.mean(smap > map_thr))
    figs["structure_mean"] = float(np.mean(smap))
    smap = smap.astype(np.float32)
    if temporal and np.ndim(raw) == 3:
        smap = smap[0]
    elif not temporal and np.ndim(raw) == 2:
        smap = smap[0]

    # spectra of the residual along each axis, in units of the predicted noise variance
    spectra = {}
    for name, ax in ((("t", 0),) if temporal else ()) + (("y", -2), ("x", -1)):
        if r4.shape[ax] >= 8:
            f, p = _spectrum(r4, ax)
            spectra[name] = (f, p / pred_mean)

    # transients (movies): ΔF/F of ROIs, raw as the reference
    tr_rows = None
    traces = None
    if transients and temporal and raw_s.shape[0] >= 20:
        tr_rows, traces = _transient_rows(raw_s, back, rois, noise)
        good = [r for r in tr_rows if r.get("n_events", 0) > 0]
        figs["transient_rois_with_events"] = len(good)
        ratios = [r["peak_ratio"] for r in good if r.get("peak_ratio") is not None
                  and math.isfinite(r["peak_ratio"])]
        delays = [r["onset_delay"] for r in good if r.get("onset_delay") is not None
                  and math.isfinite(r["onset_delay"])]
        figs["peak_ratio_median"] = float(np.median(ratios)) if ratios else None
        figs["onset_delay_median"] = float(np.median(delays)) if delays else None
        figs["rois_flagged"] = sum(1 for r in good if r.get("flags"))

    checks = _checks(figs, th, method, md, zero, temporal)
    flags = [c.name for c in checks if c.status == "warn"]
    return TrustReport(method, md, noise, checks, _json_safe(figs), flags, frames, raw_s, back,
                       res, smap, spectra, tr_rows, traces)


def _transient_rows(raw_s, back, rois, noise):
    from .traces import TraceParams, compute_f0, delta_f_over_f, extract_traces, rois_from_labels
    from .transients import transient_fidelity

    spatial = raw_s.shape[1:]
    if rois is None:
        if raw_s.ndim != 3:  # (t, z, y, x): no automatic ROIs; give a label volume
            return [], None
        lab = auto_rois(raw_s)
    else:
        lab = np.asarray(rois)
    roi_list = rois_from_labels(lab, spatial, plane=None if lab.ndim == len(spatial) else 0)
    if not roi_list:
        return [], None
    tp = TraceParams(offset=float(noise.offset))
    # ΔF/F of the signal above the dark level (the noise model's offset)
    f_ref = extract_traces(raw_s, roi_list) - tp.offset
    f_out = extract_traces(back, roi_list) - tp.offset
    d_ref = delta_f_over_f(f_ref, compute_f0(f_ref, tp))
    d_out = delta_f_over_f(f_out, compute_f0(f_out, tp))
    rows = transient_fidelity(d_ref, d_out)
    for r, roi in zip(rows, roi_list, strict=True):
        r["roi"] = int(getattr(roi, "id", getattr(roi, "label", 0)) or 0)
    return rows, {"reference": d_ref.astype(np.float32), "restored": d_out.astype(np.float32),
                  "labels": lab}


def _checks(figs, th, method, md, zero, temporal) -> list[Check]:
    out: list[Check] = []
    vr = figs["variance_ratio"]
    if _is_denoising(method, md):
        if vr < th["variance_ratio_nothing"]:
            out.append(Check("removed_nothing", vr, f"< {th['variance_ratio_nothing']}", "warn",
                             f"the residual has {vr:.2f} x the noise's variance: the output is "
                             "almost the input (an identity mapping?)"))
        elif vr < th["variance_ratio_low"]:
            out.append(Check("noise_left", vr, f"< {th['variance_ratio_low']}", "warn",
                             f"only {vr:.2f} x the noise's variance was removed: much noise "
                             "is left"))
        else:
            out.append(Check("noise_removed", vr, f">= {th['variance_ratio_low']}", "pass",
                             f"the residual has {vr:.2f} x the noise's variance"))
    if vr > th["variance_ratio_high"]:
        out.append(Check("signal_removed", vr, f"> {th['variance_ratio_high']}", "warn",
                         f"the residual has {vr:.2f} x the noise's variance: more than the "
                         "noise was removed"))
    else:
        out.append(Check("variance_within_noise", vr, f"<= {th['variance_ratio_high']}",
                         "pass", f"the residual has {vr:.2f} x the noise's variance"))
    sh = figs["intensity_shift"]
    if math.isfinite(sh) and abs(sh) > th["intensity_shift"]:
        out.append(Check("intensity_shift", sh, f"|x| > {th['intensity_shift']}", "warn",
                         f"the output's mean differs from the input's by {100 * sh:+.1f} % of "
                         "the signal above the offset: the intensity scale changed"))
    else:
        out.append(Check("intensity_kept", sh, f"|x| <= {th['intensity_shift']}", "pass",
                         "the output keeps the input's intensity scale"))
    ac = figs["autocorr_excess"]
    if zero or not math.isfinite(ac):
        out.append(Check("residual_autocorrelation", None, f"<= {th['autocorr']}", "n/a",
                         "no residual"))
    else:
        st = "warn" if ac > th["autocorr"] else "pass"
        out.append(Check("residual_autocorrelation", ac, f"<= {th['autocorr']}", st,
                         f"largest lag-1 autocorrelation of the residual beyond the noise's: "
                         f"{ac:.3f}" + (" (structure removed: stripes, blur or edges)"
                                        if st == "warn" else "")))
    sc = figs["signal_correlation"]
    if zero or not math.isfinite(sc):
        out.append(Check("signal_correlation", None, f"<= {th['signal_correlation']}", "n/a",
                         "no residual"))
    else:
        st = "warn" if sc > th["signal_correlation"] else "pass"
        out.append(Check("signal_correlation", sc, f"<= {th['signal_correlation']}", st,
                         f"Pearson r of the residual with the restored signal: {sc:.3f}"
                         + (" (the residual follows the signal: signal was removed)"
                            if st == "warn" else "")))
    sf = figs["structure_fraction"]
    st = "warn" if sf > th["structure_fraction"] else "pass"
    out.append(Check("residual_structure", sf, f"<= {th['structure_fraction']}", st,
                     f"{100 * sf:.1f} % of the field of view has structure in the residual"
                     + (" (see the structure map)" if st == "warn" else "")))
    if figs.get("peak_ratio_median") is not None:
        pr = figs["peak_ratio_median"]
        st = "warn" if pr < th["peak_ratio"] else "pass"
        out.append(Check("flattened_transients", pr, f">= {th['peak_ratio']}", st,
                         f"median restored/raw transient peak: {pr:.2f}"
                         + (" (ΔF/F peaks flattened)" if st == "warn" else "")))
    if figs.get("onset_delay_median") is not None:
        dl = figs["onset_delay_median"]
        st = "warn" if abs(dl) > th["onset_delay"] else "pass"
        out.append(Check("shifted_transients", dl, f"|x| <= {th['onset_delay']} frame", st,
                         f"median onset delay {dl:+.2f} frames"))
    return out


#: same-grid residuals larger than this (bytes of float32) are built lazily with dask
LAZY_RESIDUAL_BYTES = 256 * 2**20


def lazy_residual(raw: Any, restored: Any, metadata: dict | None = None, *,
                  method: str | None = None) -> Any:
    """``raw - restored`` for a whole recording without loading it: a dask array computed
    frame chunk by frame chunk when the output is on the input's grid (denoise, other
    tools) and the data are large (or already lazy); otherwise :func:`residual` in memory.
    """
    md = _meta(metadata)
    method = method or _method_of(md)
    same_grid = tuple(restored.shape) == tuple(raw.shape) and method in (None, "denoise")
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
