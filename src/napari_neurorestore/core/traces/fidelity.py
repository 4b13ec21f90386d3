"""Per-layer traces and their fidelity figures against the reference.

Fidelity figures follow the fiberscopy paper: Pearson r and NRMSE (RMSE between the compare
ΔF/F and the reference ΔF/F over the range of the compare ΔF/F) per ROI, and its "SNR",
here called *contrast* = 10 log10(F_ROI / F_annulus), the mean intensity of the ROI over the
mean intensity of the background annulus adjacent to it (less the offset): a property of
the scene, the same for a raw and a denoised movie. The *SNR* is that of the trace:
20 log10(ΔF/F peak / baseline noise std) (:func:`trace_snr_db`), which rises when the noise
falls. Transient fidelity
(:mod:`.transients`) adds, per ROI and compare layer, the number of events detected on the
reference, the restored/reference peak ratio, the onset delay and the "flattened"/"shifted"
flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics import nrmse, pearson, snr_db
from .dff import TraceParams
from .transients import detect_events, transient_fidelity

__all__ = ["LayerTraces", "TraceResult", "fidelity_rows", "trace_snr_db"]


def trace_snr_db(dff: np.ndarray, peak_percentile: float = 99.5) -> float:
    """SNR of a ΔF/F trace in dB: 20 log10(peak / noise), ``peak`` the trace's
    ``peak_percentile`` above its median (the baseline) and ``noise`` the baseline noise std,
    estimated from frame-to-frame differences (median absolute deviation / 0.6745 / √2:
    robust to transients and slow drift). Rises when the noise falls; NaN for a flat or too
    short trace."""
    x = np.asarray(dff, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 4:
        return float("nan")
    d = np.diff(x)
    noise = float(np.median(np.abs(d - np.median(d)))) / 0.6745 / np.sqrt(2.0)
    peak = float(np.percentile(x, peak_percentile) - np.median(x))
    if not (noise > 0 and peak > 0):
        return float("nan")
    return float(20.0 * np.log10(peak / noise))


def _finite_mean(a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


@dataclass
class LayerTraces:
    """Traces of one movie (layer). Arrays are (n_rois, n_frames).

    f : mean intensity in each ROI (as in the movie). background : mean intensity in its
    annulus (NaN when the annulus is empty). f0, dff : baseline and ΔF/F of
    F - offset (- coef x (background - offset) when neuropil subtraction is on).
    offset : the dark level that was subtracted (see :class:`TraceParams`).
    """

    name: str
    f: np.ndarray
    background: np.ndarray
    f0: np.ndarray
    dff: np.ndarray
    role: str = "compare"
    offset: float = 0.0

    def snr_db(self) -> np.ndarray:
        """Per ROI: the SNR of its ΔF/F trace in dB (:func:`trace_snr_db`)."""
        return np.array([trace_snr_db(d) for d in self.dff], np.float64).reshape(-1)

    def contrast_db(self) -> np.ndarray:
        """Per ROI: 10 log10(F_ROI / F_annulus), the mean intensity of the ROI over the mean
        intensity of the annulus adjacent to it (both less ``offset``; the fiberscopy
        paper's "SNR"); NaN when either is not positive."""
        out = np.full(self.f.shape[0], np.nan)
        for i in range(self.f.shape[0]):
            ps = _finite_mean(self.f[i]) - self.offset
            pn = _finite_mean(self.background[i]) - self.offset
            if ps > 0 and pn > 0:  # False for NaN
                out[i] = snr_db(ps, pn)
        return out


@dataclass
class TraceResult:
    """Traces of every layer for the same ROIs; ``layers[0]`` is the reference."""

    roi_ids: list[int]
    layers: list[LayerTraces]
    params: TraceParams
    messages: list[str] = field(default_factory=list)
    roi_sizes: list[int] = field(default_factory=list)
    _fidelity: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_frames(self) -> int:
        return int(self.layers[0].f.shape[1]) if self.layers else 0

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.n_frames)

    @property
    def time(self) -> np.ndarray:
        """Time of each frame in seconds (frames when ``params.fps`` is None)."""
        fps = self.params.fps
        return self.frames / fps if fps else self.frames.astype(np.float64)

    @property
    def reference(self) -> LayerTraces:
        return self.layers[0]

    def layer(self, name: str) -> LayerTraces:
        for lt in self.layers:
            if lt.name == name:
                return lt
        raise KeyError(name)

    def table(self) -> dict[str, np.ndarray]:
        """A tidy (long) table as a dict of equal-length columns: one row per layer, ROI and
        frame, with columns layer, role, roi, frame, time, f, background, f0, dff.
        ``pandas.DataFrame(result.table())`` makes a data frame of it."""
        T, n = self.n_frames, len(self.roi_ids)
        cols: dict[str, list] = {k: [] for k in
                                 ("layer", "role", "roi", "frame", "time", "f", "background", "f0", "dff")}
        for lt in self.layers:
            cols["layer"].append(np.repeat(np.array([lt.name], object), n * T))
            cols["role"].append(np.repeat(np.array([lt.role], object), n * T))
            cols["roi"].append(np.repeat(np.asarray(self.roi_ids, np.int64), T))
            cols["frame"].append(np.tile(self.frames, n))
            cols["time"].append(np.tile(self.time, n))
            for k, a in (("f", lt.f), ("background", lt.background), ("f0", lt.f0), ("dff", lt.dff)):
                cols[k].append(np.asarray(a, np.float64).reshape(-1))
        return {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}

    def wide_columns(self) -> dict[str, np.ndarray]:
        """frame, time, then per layer and ROI its F (and background when neuropil
        subtraction is on) and ΔF/F: the layout of :func:`write_traces_csv`."""
        cols: dict[str, np.ndarray] = {"frame": self.frames}
        cols["time_s" if self.params.fps else "time_frames"] = self.time
        for lt in self.layers:
            for i, rid in enumerate(self.roi_ids):
                cols[f"{lt.name}:roi{rid}:F"] = lt.f[i]
                if self.params.neuropil:
                    cols[f"{lt.name}:roi{rid}:F_neuropil"] = lt.background[i]
                cols[f"{lt.name}:roi{rid}:dFF"] = lt.dff[i]
        return cols

    def fidelity(self, **transient_options: Any) -> list[dict[str, Any]]:
        """See :func:`fidelity_rows` (computed once per set of options, then reused)."""
        key = tuple(sorted(transient_options.items()))
        if key not in self._fidelity:
            self._fidelity[key] = fidelity_rows(self, **transient_options)
        return [{k: (list(v) if isinstance(v, list) else
                     v.copy() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                for r in self._fidelity[key]]


def fidelity_rows(result: TraceResult, **transient_options: Any) -> list[dict[str, Any]]:
    """One row per ROI and layer: roi, layer, role, snr_db (the SNR of its ΔF/F trace:
    20 log10(peak / baseline noise std), see :func:`trace_snr_db`), contrast_db (10
    log10 of the ROI's mean over its annulus's: the fiberscopy paper's "SNR"), and for compare layers pearson_r and nrmse of its ΔF/F against the reference's ΔF/F
    (RMSE over the range of the compare trace; NaN for the reference row).

    Transient fidelity (:func:`~.transients.transient_fidelity`, options passed on, e.g.
    ``smooth_frames``, ``threshold_sd``, ``min_peak_ratio``, ``max_delay``): ``n_events``
    (events detected on the reference's ΔF/F, in every row), ``events`` (their frames),
    and for compare layers ``peak_ratio``, ``onset_delay`` (frames; + = the compare layer
    lags), ``flags`` (list: "flattened", "shifted") and ``flagged_events`` (frames of the
    events whose own ratio is low). The reference row has NaN ratio and delay, no flags.
    """
    ref = result.reference
    snr = [lt.snr_db() for lt in result.layers]
    contrast = [lt.contrast_db() for lt in result.layers]
    det = {k: transient_options[k] for k in ("smooth_frames", "threshold_sd", "min_separation",
                                             "min_peak") if k in transient_options}
    events = [detect_events(np.asarray(ref.dff[i], np.float64), **det)
              for i in range(len(result.roi_ids))]
    trans = {lt.name: transient_fidelity(ref.dff, lt.dff, **transient_options)
             for lt in result.layers if lt.role != "reference"}
    rows = []
    for i, rid in enumerate(result.roi_ids):
        r0 = ref.dff[i]
        for j, lt in enumerate(result.layers):
            row: dict[str, Any] = {"roi": int(rid), "layer": lt.name, "role": lt.role,
                                   "snr_db": float(snr[j][i]),
                                   "contrast_db": float(contrast[j][i])}
            if lt.role == "reference":
                row["pearson_r"] = float("nan")
                row["nrmse"] = float("nan")
                row.update(n_events=int(events[i].size), events=events[i],
                           peak_ratio=float("nan"), onset_delay=float("nan"), flags=[],
                           flagged_events=np.zeros(0, np.int64))
            else:
                x = lt.dff[i]
                ok = np.isfinite(x) & np.isfinite(r0)
                if ok.sum() >= 2:
                    row["pearson_r"] = pearson(x[ok], r0[ok])
                    row["nrmse"] = nrmse(x[ok], r0[ok])
                else:
                    row["pearson_r"] = row["nrmse"] = float("nan")
                t = trans[lt.name][i]
                row.update(n_events=t["n_events"], events=t["events"],
                           peak_ratio=t["peak_ratio"], onset_delay=t["onset_delay"],
                           flags=list(t["flags"]), flagged_events=t["flagged_events"])
            rows.append(row)
    return rows
