"""The centre-frame correction of the temporal denoiser, and its truth-free self-check.

The temporal network predicts frame t from its neighbours only, so it cannot learn frame
t's noise, but it also cannot see what changed in frame t alone (a fast transient's
onset, a low frame rate). Its residual against the frame, ``r = x_t - f_t``, is that
missed signal plus frame t's noise, and the two are independent (``f_t`` never saw
``x_t``). So the best linear estimate of the missed signal from ``r`` is a Wiener filter
with ``h(w) = 1 - P_n(w) / P_r(w)`` per spatial frequency ``w``: ``P_r`` is the residual's
power spectrum, ``P_n`` the noise's. ``P_n`` is measured on the recording itself, from
second temporal differences ``x_t - (x_{t-1} + x_{t+1}) / 2`` (noise power x 1.5 plus a
little signal curvature, which only makes the filter more cautious), so spatially
correlated noise (motion correction, detector bandwidth) is handled as measured: where
the noise has power, ``h`` is small. The filter is stored as a small spatial kernel and
applied as ``out = f_t + k * (x_t - f_t)``.

Whether the correction helps is checked on held-out frames: the filter is fitted on half
of the check frames and scored on the other half, where the error of a gain ``h`` is
``|1 - h|^2 (P_r - P_n) + h^2 P_n`` (no truth needed). Where the recording's residual is
too close to its noise for the spectra to say which bands hold signal (very low light,
nearly pure noise), the fitted filter adds noise, and the correction is left out.

What a stationary filter cannot do is follow a transient: its gain is set by the
residual's power averaged over the whole recording, where a transient's onset (a frame
that rises above its neighbours at a low frame rate) is rare, so at the scale of a cell it
is mostly filtered out. A last, nonlinear step takes what is left of the residual at that
scale, ``b = G_sigma * (x_t - out)`` (``sigma`` = TRANSIENT_SIGMA pixels), and adds back
the part of it that stands out of the noise, ``soft(b, TRANSIENT_TAU * sd_b)``, where
``sd_b`` is the noise's standard deviation in that band: the recording's noise (second
temporal differences) is passed through the same correction and band to measure it. The
band is computed at half resolution (2x2 mean, then the Gaussian): 4x cheaper.

The same spectra give a self-check without ground truth: with the Wiener filter, the
error left at frequency ``w`` is ``(P_r - P_n)_+ * P_n / P_r``. It is computed for the
network and for the best Gaussian filter of the neighbours (temporal and spatial widths
tuned on the same criterion), both followed by the same kind of correction, so the user
sees whether the network is worth it on this very recording.
"""

from __future__ import annotations

import math

import numpy as np

#: side of the correction kernel (pixels); the Wiener filter of the residual is smooth
KERNEL = 11
#: frames used to estimate the spectra (fewer for large frames: about CHECK_PIXELS in all)
CHECK_FRAMES = 48
CHECK_PIXELS = 2**21
#: share of the training budget kept at least for the correction and the self-check
CHECK_SHARE = 0.05
#: the checks' cost per check pixel, in units of a training step's time per batch pixel
#: (measured on 2 cores at 128x128 and 512x512, rounded up): the net's prediction per
#: ensemble member, one long-context fit (two are made: the full and the causal step), and
#: the rest (spectra, folds, the threshold)
CHECK_COST_NET, CHECK_COST_CONTEXT, CHECK_COST_REST = 0.3, 1.1, 0.5
#: the transient step: Gaussian width (pixels, about a soma's radius) of the band, and the
#: threshold in noise standard deviations of that band (measured on the benchmark's
#: regimes and recordings: 7.5 Hz +2.0 dB and trace r 0.916 -> 0.970, base +0.13 dB)
TRANSIENT_SIGMA = 2.5
TRANSIENT_TAU = 2.0
#: folds of the cross-validation that decides whether the correction is kept
CV_FOLDS = 8


def check_frames(frame_shape) -> int:
    return int(max(8, min(CHECK_FRAMES, CHECK_PIXELS // max(1, frame_shape[0] * frame_shape[1]))))


def check_times(n: int, k: int, frame_shape) -> np.ndarray:
    """The check frames of a training segment of ``n`` frames (window half-width ``k``):
    up to :func:`check_frames`, evenly spread, each with its neighbours inside."""
    return np.unique(np.linspace(max(k, 1), n - 1 - max(k, 1),
                                 check_frames(frame_shape)).round().astype(int))


def check_seconds(step_per_pixel: float, check_pixels: int, members: int,
                  context: bool) -> float:
    """Estimated time of the checks after training: the net's prediction of the check
    frames (``members`` passes each), the long-context fits (when ``context``) and the
    correction's spectra, from the training step's time per batch pixel (measured on this
    machine at its present load)."""
    cost = CHECK_COST_NET * members + CHECK_COST_REST + (2 * CHECK_COST_CONTEXT if context else 0)
    return step_per_pixel * check_pixels * cost


def _periodogram(frames: np.ndarray) -> np.ndarray:
    """Mean power spectrum (rfft2) of (n, h, w) frames with a Hann taper (less leakage)."""
    return _frame_periodograms(frames).mean(0)


def noise_spectrum(prev: np.ndarray, centre: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Noise power spectrum of ``centre`` from second temporal differences."""
    return _periodogram(centre - 0.5 * (prev + nxt)) / 1.5


def wiener_gain(p_resid: np.ndarray, p_noise: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - p_noise / np.maximum(p_resid, 1e-12), 0.0, 1.0)


def _mean_power(spec: np.ndarray, shape: tuple[int, int]) -> float:
    """Mean power per pixel of a signal from its rfft2 power spectrum (Parseval)."""
    h, w = shape
    col = np.full(spec.shape[1], 2.0)
    col[0] = 1.0
    if w % 2 == 0:
        col[-1] = 1.0
    return float((spec * col).sum() / (h * w) ** 2)


def left_error(p_resid: np.ndarray, p_noise: np.ndarray, shape: tuple[int, int]) -> float:
    """Mean squared error per pixel left after the Wiener correction."""
    e = np.clip(p_resid - p_noise, 0, None) * p_noise / np.maximum(p_resid, 1e-12)
    return _mean_power(e, shape)


def kernel_from_gain(gain: np.ndarray, shape: tuple[int, int], size: int = KERNEL) -> np.ndarray:
    """The spatial kernel (size x size) of a gain given on an rfft2 grid of ``shape``; on
    frames narrower than ``size`` the largest odd size that fits them."""
    size = min(size, 2 * ((min(shape) - 1) // 2) + 1)
    k = np.fft.fftshift(np.fft.irfft2(gain, s=shape))
    cy, cx = shape[0] // 2, shape[1] // 2
    r = size // 2
    k = k[cy - r:cy + r + 1, cx - r:cx + r + 1]
    # a soft edge where the kernel is cut (less ringing than a hard crop)
    win = np.outer(np.hanning(size + 2)[1:-1], np.hanning(size + 2)[1:-1])
    return (k * win).astype(np.float32)


def kernel_response(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The real frequency response, on an rfft2 grid of ``shape``, of a centred symmetric
    kernel applied by correlation."""
    r = kernel.shape[-1] // 2
    full = np.zeros(shape, np.float64)
    full[:kernel.shape[0], :kernel.shape[1]] = kernel
    return np.real(np.fft.rfft2(np.roll(full, (-r, -r), (0, 1))))


def applied_error(p_resid: np.ndarray, p_noise: np.ndarray, response, shape) -> float:
    """Mean squared error per pixel of ``f + h * (x - f)`` for a gain ``h`` (``response``,
    or 0): ``|1 - h|^2 (P_r - P_n) + h^2 P_n`` summed over frequencies."""
    h = np.asarray(response, np.float64)
    return _mean_power((1 - h) ** 2 * (p_resid - p_noise) + h**2 * p_noise, shape)


def _frame_periodograms(frames: np.ndarray) -> np.ndarray:
    """Power spectrum (rfft2, Hann taper) of each of (n, h, w) frames: (n, h, w // 2 + 1)."""
    h, w = frames.shape[-2:]
    taper = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    taper /= math.sqrt(float((taper**2).mean()))
    return np.abs(np.fft.rfft2(frames * taper)) ** 2


def correction_cv(frames: np.ndarray, ts: np.ndarray, predicted: np.ndarray,
                  folds: int = CV_FOLDS) -> float | None:
    """Change of the mean squared error per pixel that the correction brings, by K-fold
    cross-validation over the check frames (the filter fitted on the other folds, scored
    on each): below 0 when it helps. None with fewer than 4 check frames."""
    if len(ts) < 4:
        return None
    shape = frames.shape[-2:]
    p_r = _frame_periodograms(frames[ts] - predicted)
    p_n = _frame_periodograms(frames[ts] - 0.5 * (frames[ts - 1] + frames[ts + 1])) / 1.5
    fold = np.arange(len(ts)) % min(folds, len(ts))
    tot_r, tot_n = p_r.sum(0), p_n.sum(0)
    change = 0.0
    for f in np.unique(fold):
        held = fold == f
        n_fit = float((~held).sum())
        gain = wiener_gain((tot_r - p_r[held].sum(0)) / n_fit, (tot_n - p_n[held].sum(0)) / n_fit)
        h = kernel_response(kernel_from_gain(gain, shape), shape)
        pr, pn = p_r[held].mean(0), p_n[held].mean(0)
        change += held.sum() * (applied_error(pr, pn, h, shape) - applied_error(pr, pn, 0.0, shape))
    return float(change / len(ts))


def polyphase_kernel(kernel: np.ndarray) -> tuple[np.ndarray, int]:
    """``kernel`` ((2R+1)^2, applied by cross-correlation at full resolution) as a 4 -> 4
    channel kernel on 2x2-unshuffled images, and the full-resolution padding P it needs
    (R rounded up to even). Correlating the unshuffled, P-padded residual with it (no
    further padding) gives the unshuffled full-resolution result exactly; a CPU runs this
    multi-channel convolution several times faster than the single-channel one."""
    r = kernel.shape[-1] // 2
    pad = r + r % 2
    taps = pad + 1
    out = np.zeros((4, 4, taps, taps), np.float32)
    j = np.arange(taps)
    for a in range(4):
        for b in range(4):
            dy = 2 * (j - pad // 2) + b // 2 - a // 2
            dx = 2 * (j - pad // 2) + b % 2 - a % 2
            oky, okx = np.abs(dy) <= r, np.abs(dx) <= r
            out[a, b][np.ix_(oky, okx)] = kernel[np.ix_(r + dy[oky], r + dx[okx])]
    return out, pad


def _blind_gaussian(frames: np.ndarray, t: int, sigma_t: float, sigma_xy: float) -> np.ndarray:
    """Gaussian filter of the neighbours of frame ``t`` (its own weight 0, renormalised)."""
    from scipy.ndimage import gaussian_filter

    k = max(1, int(math.ceil(3 * sigma_t)))
    lo, hi = max(0, t - k), min(len(frames), t + k + 1)
    wts = np.exp(-0.5 * ((np.arange(lo, hi) - t) / sigma_t) ** 2)
    wts[t - lo] = 0
    est = np.tensordot(wts / wts.sum(), frames[lo:hi], axes=1)
    return gaussian_filter(est, sigma_xy) if sigma_xy > 0 else est


#: the self-check's Gaussian filters (sigma_t, sigma_xy), most likely first (the widest
#: sigma_t sets spec.GAUSS_HALO)
GAUSS_GRID = [(3.0, 0.5), (2.0, 0.5), (4.0, 0.5), (3.0, 0.0), (2.0, 0.0), (1.0, 0.5),
              (4.0, 0.0), (3.0, 1.0), (1.0, 0.0), (2.0, 1.0), (4.0, 1.0), (1.0, 1.0),
              (6.0, 1.0), (6.0, 2.0), (6.0, 3.0)]


def tune_gaussian(frames: np.ndarray, ts: np.ndarray, deadline: float | None = None) -> dict:
    """The best blind Gaussian filter of the neighbours (:data:`GAUSS_GRID`) by the error
    left after the ideal correction, on frames ``ts`` of normalised ``frames``.
    ``deadline`` (a ``time.perf_counter()`` value) ends the search early, most likely
    widths first (``gauss_searched`` says how many were tried)."""
    import time

    centre = frames[ts]
    p_noise = noise_spectrum(frames[ts - 1], centre, frames[ts + 1])
    shape = centre.shape[-2:]
    best = None
    tried = 0
    for st, sxy in GAUSS_GRID:
        if tried and deadline is not None and time.perf_counter() > deadline:
            break
        tried += 1
        g = np.stack([_blind_gaussian(frames, int(t), st, sxy) for t in ts])
        err = left_error(_periodogram(centre - g), p_noise, shape)
        if best is None or err < best[0]:
            best = (err, st, sxy, float(((centre - g) ** 2).mean()))
    return dict(gauss_error=best[0], gauss_sigma_t=best[1], gauss_sigma_xy=best[2],
                gauss_blind_mse=best[3], gauss_searched=tried)


def estimate(frames: np.ndarray, ts: np.ndarray, predicted: np.ndarray,
             gaussian: bool = True, deadline: float | None = None,
             tuned: dict | None = None) -> dict:
    """Correction kernel and self-check from normalised frames.

    ``frames`` (n, h, w) hold the frames ``ts`` and their neighbours ``ts +- 1`` (indices
    into ``frames``); ``predicted`` (len(ts), h, w) is the network's blind prediction of
    each. ``gaussian``: compare with the best Gaussian filter (``tuned``, the result of
    :func:`tune_gaussian`, or searched here until ``deadline``).
    Returns ``{"kernel": list, or None where held-out frames say the correction does not
    help, "check": {...}}``.
    """
    centre = frames[ts]
    p_noise = noise_spectrum(frames[ts - 1], centre, frames[ts + 1])
    p_net = _periodogram(centre - predicted)
    gain = wiener_gain(p_net, p_noise)
    kernel = kernel_from_gain(gain, centre.shape[-2:])
    shape = centre.shape[-2:]
    cv = correction_cv(frames, ts, predicted)
    use = cv is None or cv < 0
    check = {"noise_var": _mean_power(p_noise, shape),
             "net_blind_mse": float(((centre - predicted) ** 2).mean()),
             "correction_cv": cv, "corrected": bool(use),
             # as for the Gaussian below: the error left by the ideal correction; with the
             # correction left out, the residual's power above the noise's (unbiased; the
             # ideal correction's error is a floor where that estimate is lost in noise)
             "net_error": (left_error(p_net, p_noise, shape) if use else
                           max(_mean_power(p_net - p_noise, shape),
                               left_error(p_net, p_noise, shape)))}
    if gaussian:
        check.update(tuned or tune_gaussian(frames, ts, deadline))
        check["gain_db"] = 10 * math.log10(max(check["gauss_error"], 1e-12)
                                           / max(check["net_error"], 1e-12))
    return {"kernel": kernel.tolist() if use else None, "check": check}


def format_check(check: dict | None) -> str:
    """One line for the CLI, the widget and the report."""
    if not check or "gain_db" not in check:
        return "self-check: not available"
    g = check["gain_db"]
    gauss = f"sigma_t={check['gauss_sigma_t']:g}, sigma_xy={check['gauss_sigma_xy']:g}"
    out, n = check.get("output"), check.get("held_out_frames")
    verdict = ("the network is worth it" if g >= 0.3 else
               "about the same as a Gaussian filter" if g > -0.3 else
               "a Gaussian filter would do better on this recording")
    if out == "gaussian":  # see .held
        verdict = (f"the network was no better than this Gaussian filter on {n} frames held "
                   f"out of training, so the output is the Gaussian filter (then the same "
                   f"fitted steps)")
    elif out == "blend":
        a = float(check.get("gauss_weight", 0))
        verdict = (f"the output is {1 - a:.2f} x network + {a:.2f} x this Gaussian filter, "
                   f"the blend fitted on {n} frames held out of training")
    notes = []
    if out == "network" and check.get("output_forced"):
        notes.append("output: the network (as set: without 'never worse than a Gaussian' "
                     "or the long context, no blend with the Gaussian filter)")
    elif out == "network" and n:
        notes.append(f"output: the network (better than the Gaussian filter on {n} frames "
                     f"held out of training)")
    if check.get("registered"):
        notes.append("frame-to-frame motion found: each prediction is registered to its frame")
    if check.get("corrected") is False:
        notes.append("centre-frame correction left out: it did not help on held-out frames")
    return (f"self-check (no ground truth; held-out noise of this recording): estimated "
            f"{g:+.1f} dB over the best Gaussian filter ({gauss}): {verdict}"
            + "".join(f"; {n}" for n in notes))
