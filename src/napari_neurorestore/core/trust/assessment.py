"""What did a restoration remove? :func:`assess` gathers the figures, the checks and the
pictures into a :class:`TrustReport`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..traces.rois import auto_rois
from .checks import THRESHOLDS, Check, _checks
from .common import (
    _f32,
    _json_safe,
    _lag1,
    _meta,
    _method_obj,
    _method_of,
    _pearson,
    _spectrum,
    box_mean,
)
from .forward import to_input_grid
from .noise import NoiseModel, estimate_noise
from .residuals import structure_map

__all__ = ["TrustReport", "assess"]


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
    m = _method_obj(method)
    if temporal is None:
        temporal = (np.ndim(raw) >= 3 and raw.shape[0] >= 8 and (m is None or m.keeps_time))
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
    keep = m.trust_slices(raw.shape, restored.shape, md) if m is not None else None
    if keep is not None:  # e.g. where a re-blurred output is complete
        raw_s, back = raw_s[keep], back[keep]
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
    smap, map_thr = structure_map(r4, pred, noise, temporal)
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
    from ..traces import TraceParams, compute_f0, delta_f_over_f, extract_traces, rois_from_labels
    from ..traces.transients import transient_fidelity

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
