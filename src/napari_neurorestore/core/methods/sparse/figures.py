"""Simulation figures of sparse-axis reconstruction (numpy only): ROI ΔF/F traces, PSNR,
SSIM and trace NRMSE against the full stack, and their text form (for the CLI and the
widget)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...metrics import nrmse, psnr
from ...traces.rois import auto_rois as most_active_tiles

#: below this estimated gain over cubic interpolation (the self-check, :mod:`.check`) the
#: skip factor is reported as past what the method restores on the recording
MIN_GAIN_DB = 1.0
#: ... or when the restored lines miss more than this share of the signal's variance
MAX_UNEXPLAINED = 0.5
#: noise correlated between neighbouring pixels beyond this: no verdict (thunder_mouse,
#: lag-1 0.4: +8.3 dB over cubic estimated at M=4, -0.5 dB measured on the rows left out)
MAX_NOISE_LAG1 = 0.2
#: ... or when the lines are further apart than this many times the active structures'
#: measured width (check.structure_width: 9-12 px on 200-frame simulations of somata
#: 8-14 px wide, 6-13.5 px on 40-100 frames of a small field: the margin keeps M = 8
#: from being flagged on those)
WIDTH_TOLERANCE = 1.25
#: with the first stage, a signal that decorrelates within this many frames (or fewer)
#: gets a warning about its ROI traces (check.signal_frames; a 7.5-Hz GCaMP6f simulation
#: read 4 frames, and its traces at M=8 were 11.1 % off against cubic's 7.2 %)
SHORT_SIGNAL_FRAMES = 4


def auto_rois(full: Any, n_rois: int = 20, size: int = 8) -> np.ndarray:
    """ROIs for trace figures when none are given: :func:`...traces.rois.auto_rois` (the most
    active tiles) over at most the first 2000 frames of a (t, y, x) stack; no ROI (all 0)
    for other shapes."""

    if np.ndim(full) != 3:
        return np.zeros(full.shape[-2:], np.int32)
    return most_active_tiles(np.asarray(full[: min(len(full), 2000)], np.float32), n_rois, size)


def roi_dff(movie: np.ndarray, labels: np.ndarray, pct: float = 20.0) -> np.ndarray:
    """ΔF/F of each labelled ROI of a (t, y, x) movie, F0 = the ``pct`` percentile."""
    ids = [i for i in np.unique(labels) if i > 0]
    flat = np.asarray(movie, np.float64).reshape(len(movie), -1)
    lab = labels.ravel()
    f = np.stack([flat[:, lab == i].mean(1) for i in ids]) if ids else np.zeros((0, len(movie)))
    return dff(f, pct)


def dff(f: np.ndarray, pct: float = 20.0) -> np.ndarray:
    """ΔF/F of fluorescence traces ``f`` (n, t), F0 = each trace's ``pct`` percentile."""
    f0 = np.percentile(f, pct, axis=1, keepdims=True)
    return (f - f0) / np.where(f0 == 0, np.nan, f0)


def fidelity(restored: np.ndarray, full: np.ndarray, labels: np.ndarray | None = None
             ) -> dict[str, Any]:
    """PSNR and SSIM against the full stack (its range) and the mean ROI ΔF/F trace NRMSE
    (RMSE over the range of the restored trace; None for single images)."""
    from ...metrics import ssim

    rng = float(np.max(full) - np.min(full))
    figs: dict[str, Any] = {"psnr": psnr(restored, full, rng), "ssim": ssim(restored, full, rng)}
    if full.ndim == 3 and len(full) >= 10:
        lab = auto_rois(full) if labels is None else np.asarray(labels)
        d_ref, d_out = roi_dff(full, lab), roi_dff(restored, lab)
        vals = [nrmse(o, r) for o, r in zip(d_out, d_ref, strict=True)
                if np.isfinite(o).all() and np.isfinite(r).all()]
        figs["trace_nrmse"] = float(np.mean(vals)) if vals else None
        figs["n_rois"] = len(vals)
        figs["rois"] = "labels" if labels is not None else "auto (most active 8x8 tiles)"
    else:
        figs["trace_nrmse"] = None
    return figs


def format_simulation(figs: dict[str, Any]) -> str:
    """The simulation figures as a few lines of text (for the CLI and the widget)."""
    def row(name, f):
        t = f.get("trace_nrmse")
        return (f"{name:28s} PSNR {f['psnr']:6.2f} dB  SSIM {f['ssim']:.3f}  trace NRMSE "
                + ("   n/a" if t is None else f"{100 * t:5.2f} %"))
    lines = [f"simulated skip factor M={figs['factor']} along {figs['axis']} "
             f"(against the full stack; traces: {figs['cubic'].get('rois', 'n/a')}, "
             f"{figs.get('n_rois', 0)} ROIs)",
             row("sparse-axis reconstruction", figs), row("cubic interpolation", figs["cubic"])]
    return "\n".join(lines)


def verdict(check: dict) -> str:
    g, f, u = check["gain_db"], check["vs_full_scan_db"], check.get("unexplained", 0.0)
    if check.get("noise_lag1", 0.0) > MAX_NOISE_LAG1:
        return (f"the noise is correlated between neighbouring pixels (lag-1 "
                f"{check['noise_lag1']:.2f}): a dropped column shares noise with the kept "
                f"ones, so these figures are unreliable (optimistic)")
    if check.get("signal_var", check["noise_var"]) < 0.1 * check["noise_var"]:
        return ("the signal between the kept lines is too weak against the noise to judge "
                "the reconstruction (these figures are unreliable)")
    w = check.get("structure_px")
    if w is not None and check["factor"] > WIDTH_TOLERANCE * w:
        return (f"M={check['factor']} looks past what the method can restore on this "
                f"recording (its active structures are about {w:.0f} px wide along the fully "
                f"sampled axis: where they are as small along the sparse one, whole objects "
                f"fall between acquired lines {check['factor']} px apart, and these figures "
                f"cannot see them)")
    if g < MIN_GAIN_DB or u > MAX_UNEXPLAINED:
        why = ("hardly better than cubic interpolation" if g < MIN_GAIN_DB else
               f"{100 * min(u, 1):.0f} % of the signal between the kept lines is missed")
        return (f"M={check['factor']} looks past what the method can restore on this "
                f"recording ({why})")
    if f < 0:
        return "the restored lines are estimated noisier than a fully sampled scan"
    return "the restored lines are estimated less noisy than a fully sampled scan"


def format_check(check: dict | None) -> str | None:
    """One line for the CLI, the widget and the trust report (None: no check)."""
    if not check or "gain_db" not in check:
        return None
    more = "at least " if check.get("at_floor") else ""
    line = (f"self-check (no ground truth; {check['frames']} held-out frames, columns "
            f"dropped 1 in {check['factor']}): estimated {more}{check['gain_db']:+.1f} dB "
            f"over cubic interpolation and {more}{check['vs_full_scan_db']:+.1f} dB over a "
            f"fully sampled raw scan: {verdict(check)}")
    h = check.get("signal_frames")
    if check.get("staged") and h is not None and h <= SHORT_SIGNAL_FRAMES:
        line += (f"; the signal decorrelates within about {h} frames, and the first stage's "
                 f"temporal denoising flattens such short transients: ROI traces may be "
                 f"further from the truth than cubic interpolation's (a 7.5-Hz simulation "
                 f"at M=8: 11.1 % against 7.2 %)")
    return line
