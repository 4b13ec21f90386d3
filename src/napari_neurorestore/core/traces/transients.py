"""Transient fidelity: do restored ΔF/F traces keep the reference's calcium events?

numpy only (no scipy, torch, Qt or napari). Pearson r and NRMSE (:mod:`.traces`) say how
close two traces are overall; they do not say whether a restoration flattened the transients
(lower peaks, a classic failure of over-smoothing denoisers) or shifted them in time. This
module answers that, per ROI:

1. Both ΔF/F traces get the same light temporal smoothing (:func:`smooth_trace`, a Gaussian
   of ``smooth_frames`` frames), so that frame-to-frame noise of the reference does not pass
   for peak height.
2. Events are detected on the reference only (:func:`detect_events`): rises of the smoothed
   reference of more than ``threshold_sd`` x its robust noise SD, peaking that much above its
   baseline; events closer than ``min_separation`` frames merge; each event is reported at
   its maximum.
3. For each event (:func:`transient_fidelity`) the amplitude of each smoothed trace is its
   maximum within ``window // 2`` frames of the reference peak, less its own median over the
   few frames before the trough that starts the rise (the same frames for both traces).
   The peak ratio of the ROI is the median over events of restored / reference amplitude.
4. The onset delay is the lag maximising the correlation of the two smoothed traces over
   windows of ±``window`` frames around the events (pooled over events), refined below a
   frame by a parabola through the best lag and its neighbours. Positive: the restored trace
   lags the reference.

Flags: ``"flattened"`` when the peak ratio is below ``min_peak_ratio`` (default 0.8),
``"shifted"`` when the delay exceeds ``max_delay`` frames (default 1) in magnitude. A ROI
without events gets no flag (and NaN figures).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "DEFAULTS",
    "smooth_trace",
    "noise_sd",
    "detect_events",
    "transient_fidelity",
]

#: Defaults of :func:`transient_fidelity` (and of the fidelity rows of :mod:`.traces`).
DEFAULTS: dict[str, Any] = {
    "smooth_frames": 1.0,
    "threshold_sd": 4.0,
    "min_separation": 5,
    "window": 10,
    "min_peak_ratio": 0.8,
    "max_delay": 1.0,
}
_MAD_TO_SD = 1.4826  # MAD -> SD for Gaussian noise
#: events must also rise this fraction of the trace's largest excursion above its baseline
MIN_RELATIVE_PEAK = 0.02
#: an event gains its threshold level within this many frames before its peak
MAX_RISE_FRAMES = 10
#: the local baseline of an event: the median of this many frames just before its trough
PRE_FRAMES = 4


def _as_float(x: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers") from None
    return a


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(4.0 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def smooth_trace(dff: np.ndarray, frames: float = 1.0) -> np.ndarray:
    """Gaussian smoothing of traces along the last axis (time).

    Parameters
    ----------
    dff : ΔF/F trace(s), any shape; time is the last axis.
    frames : the Gaussian's σ in frames (0: no smoothing, a float copy is returned). The
        kernel is truncated at 4σ; the trace is mirrored at its ends (``d c b a | a b c d``,
        as scipy's ``mode="reflect"``).

    NaN-safe: non-finite samples get no weight (the weights of the finite ones are
    renormalised) and stay NaN in the output; a frame with no finite sample within reach
    is NaN.
    """
    x = _as_float(dff, "dff")
    frames = float(frames)
    if not (math.isfinite(frames) and frames >= 0):
        raise ValueError(f"the smoothing width must be a finite number >= 0 frames, got {frames}")
    if x.ndim == 0:
        raise ValueError("dff must have a time axis (at least 1-D)")
    out = x.copy()
    n = x.shape[-1]
    if frames == 0 or n == 0:
        return out
    k = _gauss_kernel(frames)
    r = (len(k) - 1) // 2
    ok = np.isfinite(x)
    v = np.where(ok, x, 0.0)
    w = ok.astype(np.float64)
    pad = [(0, 0)] * (x.ndim - 1) + [(r, r)]
    vp, wp = np.pad(v, pad, mode="symmetric"), np.pad(w, pad, mode="symmetric")
    num = np.zeros(x.shape)
    den = np.zeros(x.shape)
    for j in range(len(k)):
        num += k[j] * vp[..., j : j + n]
        den += k[j] * wp[..., j : j + n]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 1e-12, num / np.where(den > 0, den, 1.0), np.nan)
    out[~ok] = np.nan
    return out


def noise_sd(dff: np.ndarray, smooth_frames: float = 0.0) -> float:
    """Robust SD of the frame-to-frame noise of a 1-D trace: 1.4826 x MAD of the first
    difference / √2 (a slow signal barely changes the differences; the rises of transients
    are outliers the median ignores), scaled to the noise left after :func:`smooth_trace`
    with ``smooth_frames`` (white noise: × √Σk²). NaN samples are skipped; 0 for a trace
    with fewer than 3 finite samples."""
    x = _as_float(dff, "dff").ravel()
    d = np.diff(x)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return 0.0
    sd = _MAD_TO_SD * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
    if smooth_frames > 0:
        k = _gauss_kernel(float(smooth_frames))
        sd *= math.sqrt(float((k * k).sum()))
    return sd


def _baseline(s: np.ndarray, sd: float) -> float:
    """The level of a smoothed trace at rest: its median after dropping, a few times over,
    the samples more than 2 noise SDs above the current estimate (the events)."""
    v = s[np.isfinite(s)]
    if v.size == 0:
        return float("nan")
    b = float(np.median(v))
    for _ in range(8):
        keep = v[v <= b + 2.0 * sd]
        if keep.size == 0:
            break
        nb = float(np.median(keep))
        if nb == b:
            break
        b = nb
    return b


def _check_1d(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim != 1:
        raise ValueError(f"{name} must be one trace (1-D), got shape {x.shape}")
    return x


def _check_params(smooth_frames: float, threshold_sd: float, min_separation: int) -> None:
    if not (math.isfinite(float(smooth_frames)) and smooth_frames >= 0):
        raise ValueError(f"smooth_frames must be >= 0, got {smooth_frames}")
    if not (math.isfinite(float(threshold_sd)) and threshold_sd > 0):
        raise ValueError(f"threshold_sd must be > 0, got {threshold_sd}")
    if isinstance(min_separation, bool) or int(min_separation) != min_separation or min_separation < 0:
        raise ValueError(f"min_separation must be an integer >= 0, got {min_separation}")


def _rises(s: np.ndarray, level: float) -> list[tuple[int, int]]:
    """(trough, peak) pairs of the finite samples of ``s``: every peak rises at least
    ``level`` above the trough before it and falls at least ``level`` before the next
    trough (or the trace ends), so noise wiggles smaller than ``level`` split nothing."""
    idx = np.flatnonzero(np.isfinite(s))
    out: list[tuple[int, int]] = []
    if idx.size == 0:
        return out
    v = s[idx]
    mn_i = mx_i = 0
    trough = 0
    rising = False  # first a rise of `level` above the running minimum
    for j in range(1, v.size):
        x = v[j]
        if rising:
            if x > v[mx_i]:
                mx_i = j
            elif x < v[mx_i] - level:
                out.append((int(idx[trough]), int(idx[mx_i])))
                rising, mn_i = False, j
        else:
            if x < v[mn_i]:
                mn_i = j
            elif x > v[mn_i] + level:
                trough, mx_i, rising = mn_i, j, True
    if rising:
        out.append((int(idx[trough]), int(idx[mx_i])))
    return out


def _detect(ref: np.ndarray, smooth_frames: float, threshold_sd: float, min_separation: int,
            min_peak: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Smoothed reference, event peaks, event onsets (the trough before each rise) and the
    noise SD of the smoothed reference."""
    s = smooth_trace(ref, smooth_frames)
    sd = noise_sd(ref, smooth_frames)
    empty = np.zeros(0, np.int64)
    if not np.isfinite(s).any():
        return s, empty, empty, sd
    base = _baseline(s, sd)
    # temporally correlated noise (a filtered reference) hides from the first difference:
    # the spread of the samples below the baseline (events only go up) catches it
    low = base - s[np.isfinite(s) & (s < base)]
    if low.size >= 10:
        sd_low = _MAD_TO_SD * float(np.median(low))
        if sd_low > sd:
            sd = sd_low
            base = _baseline(s, sd)
    span = float(np.nanmax(np.abs(s)))
    level = threshold_sd * sd
    if min_peak is not None:
        level = max(level, float(min_peak))
    # a noise-free trace (a simulator's truth) has SD ~ 0: its slow baseline wiggles are
    # not events, nor is anything on a flat trace
    level = max(level, MIN_RELATIVE_PEAK * (float(np.nanmax(s)) - base), 1e-9 * max(1.0, span))
    events: list[list[int]] = []
    for a, p in _rises(s, level):
        if not s[p] > base + level:
            continue
        # a transient rises fast: a slow drift (a neuropil or baseline fluctuation) is not one
        if not s[p] - np.nanmin(s[max(a, p - MAX_RISE_FRAMES): p + 1]) >= level:
            continue
        if events and p - events[-1][1] < min_separation:  # too close: one event
            if s[p] > s[events[-1][1]]:
                events[-1][1] = p
            continue
        events.append([a, p])
    peaks = np.asarray([p for _, p in events], np.int64)
    onsets = np.asarray([a for a, _ in events], np.int64)
    return s, peaks, onsets, sd


def detect_events(ref_dff: np.ndarray, *, smooth_frames: float = 1.0, threshold_sd: float = 4.0,
                  min_separation: int = 5, min_peak: float | None = None) -> np.ndarray:
    """Frame indices of the calcium events (transients) of one reference ΔF/F trace.

    The trace is smoothed with :func:`smooth_trace` (``smooth_frames``); frames where it
    exceeds its baseline (a median robust to the events) by more than ``threshold_sd`` x the
    robust noise SD of the smoothed trace (the larger of :func:`noise_sd` and the spread of
    the samples below the baseline, which catches temporally correlated noise), by more than
    ``min_peak`` ΔF/F when given, and by more than 2 % (``MIN_RELATIVE_PEAK``) of the trace's
    largest excursion, are candidate event frames. An event is a rise of at least that same
    level from the trough before it, ending where the trace falls that level below its
    maximum, and gaining that level within the last ``MAX_RISE_FRAMES`` (10) frames before
    its peak: so events riding on the decay of an earlier one count separately, noise
    smaller than the threshold splits nothing, and slow drifts are not events. Events whose peaks are less than
    ``min_separation`` frames apart merge (keeping the higher peak). Each event is reported
    at the frame of its maximum. NaN frames are skipped. Returns a sorted int64 array
    (empty when there are no events).
    """
    x = _check_1d(_as_float(ref_dff, "ref_dff"), "ref_dff")
    _check_params(smooth_frames, threshold_sd, min_separation)
    if min_peak is not None and not (math.isfinite(float(min_peak)) and min_peak >= 0):
        raise ValueError(f"min_peak must be None or a number >= 0, got {min_peak}")
    return _detect(x, smooth_frames, threshold_sd, min_separation, min_peak)[1]


def _parabolic(cm: float, c0: float, cp: float) -> float:
    """Offset in (-0.5, 0.5) of the vertex of the parabola through (-1, cm), (0, c0), (1, cp)."""
    den = cm - 2.0 * c0 + cp
    if not (math.isfinite(den) and den < 0):
        return 0.0
    return float(np.clip(0.5 * (cm - cp) / den, -0.5, 0.5))


def _delay(s_ref: np.ndarray, s_test: np.ndarray, peaks: np.ndarray, window: int,
           max_lag: int) -> float:
    """Lag (frames; + = test lags) of the best correlation of the two smoothed traces over
    ±window frames around each event, pooled over events; sub-frame by a parabola."""
    n = s_ref.size
    rows = []
    for p in peaks:
        t = np.arange(p - window, p + window + 1)
        t = t[(t >= 0) & (t < n)]
        rows.append(t)
    if not rows:
        return float("nan")
    t = np.concatenate(rows)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            return float("nan")
        a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
        den = math.sqrt(float((a * a).sum() * (b * b).sum()))
        return float((a * b).sum()) / den if den > 0 else float("nan")

    lags = np.arange(-max_lag, max_lag + 1)
    c = np.full(lags.size, np.nan)
    for i, lag in enumerate(lags):
        # the windows sit on the reference's events: slide the test by +lag over them and
        # the reference by -lag under them, and average, so that swapping the two traces
        # exactly negates the delay (identical traces: exactly 0)
        u = t + lag
        m = (u >= 0) & (u < n)
        w = t - lag
        k = (w >= 0) & (w < n)
        vals = [corr(s_ref[t[m]], s_test[u[m]]), corr(s_ref[w[k]], s_test[t[k]])]
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            c[i] = sum(vals) / len(vals)
    if not np.isfinite(c).any():
        return float("nan")
    i = int(np.nanargmax(c))
    if 0 < i < lags.size - 1 and np.isfinite(c[i - 1]) and np.isfinite(c[i + 1]):
        return float(lags[i] + _parabolic(c[i - 1], c[i], c[i + 1]))
    return float(lags[i])


def _as_rois(x: Any, name: str) -> np.ndarray:
    a = _as_float(x, name)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be (n_rois, n_frames) or one trace (n_frames,), "
                         f"got shape {a.shape}")
    return a


def transient_fidelity(
    ref_dff: np.ndarray,
    test_dff: np.ndarray,
    *,
    smooth_frames: float = 1.0,
    threshold_sd: float = 4.0,
    window: int | None = None,
    min_peak_ratio: float = 0.8,
    max_delay: float = 1.0,
    min_separation: int = 5,
    min_peak: float | None = None,
) -> list[dict[str, Any]]:
    """Per ROI: do the restored traces keep the reference's transients?

    Parameters
    ----------
    ref_dff, test_dff : ΔF/F, (n_rois, n_frames) or one trace (n_frames,), same shape.
        Events are detected on ``ref_dff`` (see :func:`detect_events`).
    smooth_frames : σ (frames) of the Gaussian smoothing applied to both traces.
    threshold_sd : event threshold in robust noise SDs of the smoothed reference.
    window : half-width (frames) of the window around each event used for the delay; peaks
        are searched within ``window // 2`` frames of the reference peak, and delays up to
        ``window // 2`` frames are measurable. None: 10 frames.
    min_peak_ratio : below this median peak ratio the ROI is flagged ``"flattened"`` (and an
        event with a lower ratio is listed in ``flagged_events``).
    max_delay : above this |onset delay| (frames) the ROI is flagged ``"shifted"``.
    min_separation, min_peak : passed to :func:`detect_events`.

    Returns
    -------
    One dict per ROI: ``n_events``, ``events`` (reference peak frames), ``peak_ratio``
    (median of ``peak_ratios``; NaN without events), ``peak_ratios`` (per event: restored
    amplitude / reference amplitude, each above its own median over the ``PRE_FRAMES``
    frames just before the trough that starts the rise;
    NaN where the reference amplitude is within 2 noise SDs of zero), ``onset_delay``
    (frames, + = restored lags; NaN without events), ``flags`` (list of str) and
    ``flagged_events`` (frames of the events whose ratio < ``min_peak_ratio``).
    """
    ref = _as_rois(ref_dff, "ref_dff")
    test = _as_rois(test_dff, "test_dff")
    if ref.shape != test.shape:
        raise ValueError(f"ref_dff and test_dff must have the same shape, got {ref.shape} "
                         f"and {test.shape}")
    _check_params(smooth_frames, threshold_sd, min_separation)
    if window is None:
        window = int(DEFAULTS["window"])
    if isinstance(window, bool) or int(window) != window or window < 2:
        raise ValueError(f"window must be an integer >= 2 frames, got {window}")
    window = int(window)
    if not (math.isfinite(float(min_peak_ratio)) and min_peak_ratio > 0):
        raise ValueError(f"min_peak_ratio must be > 0, got {min_peak_ratio}")
    if not (math.isfinite(float(max_delay)) and max_delay >= 0):
        raise ValueError(f"max_delay must be >= 0 frames, got {max_delay}")
    if min_peak is not None and not (math.isfinite(float(min_peak)) and min_peak >= 0):
        raise ValueError(f"min_peak must be None or a number >= 0, got {min_peak}")
    half = max(1, window // 2)
    n = ref.shape[1]
    out = []
    for i in range(ref.shape[0]):
        s_ref, peaks, onsets, sd = _detect(ref[i], smooth_frames, threshold_sd,
                                           min_separation, min_peak)
        s_test = smooth_trace(test[i], smooth_frames)
        ratios = np.full(peaks.size, np.nan)
        for k, (p, a) in enumerate(zip(peaks, onsets, strict=True)):
            pre = np.arange(max(0, a - PRE_FRAMES), max(a, 1))  # up to the trough, excluded
            srch = np.arange(max(0, p - half), min(n, p + half + 1))
            amp = []
            for s in (s_ref, s_test):
                b, m = s[pre], s[srch]
                if not (np.isfinite(b).any() and np.isfinite(m).any()):
                    amp.append(np.nan)
                    continue
                amp.append(float(np.nanmax(m)) - float(np.nanmedian(b)))
            if np.isfinite(amp[0]) and amp[0] > max(2.0 * sd, 1e-12) and np.isfinite(amp[1]):
                ratios[k] = amp[1] / amp[0]
        fin = ratios[np.isfinite(ratios)]
        ratio = float(np.median(fin)) if fin.size else float("nan")
        delay = _delay(s_ref, s_test, peaks, window, half) if peaks.size else float("nan")
        flags = []
        if math.isfinite(ratio) and ratio < min_peak_ratio:
            flags.append("flattened")
        if math.isfinite(delay) and abs(delay) > max_delay:
            flags.append("shifted")
        with np.errstate(invalid="ignore"):
            bad = peaks[ratios < min_peak_ratio]
        out.append({
            "n_events": int(peaks.size),
            "events": peaks,
            "peak_ratio": ratio,
            "peak_ratios": ratios,
            "onset_delay": delay,
            "flags": flags,
            "flagged_events": bad,
        })
    return out
