"""Sparse reconstruction's truth-free self-check (torch; imported by :mod:`.heavy`).

On held-out frames, columns of the fully sampled axis are dropped as in training (one in
M kept) and restored twice: by the trained chain and by cubic interpolation. Both are
scored against the *measured* dropped samples, whose noise is independent of either
estimate, so ``error = mean squared error against the measurement - noise variance``
(the noise variance from the frames before and after: ``x_t - (x_t-1 + x_t+1) / 2`` has
1.5 times the variance of white noise). A fully sampled raw scan's error is the noise
variance itself. The dropped columns lie between kept ones that are themselves M lines
apart along the sparse axis. The figures are a preview, not a measurement of the output,
and they are optimistic, more so at large M: on the 600 x 128 x 128 simulation (30 s of
training, loaded CPU) the estimated error of the restored lines was 1.9 / 5.4 / 10.7
against 2.3 / 8.2 / 18.5 measured on the rows left out at M = 4 / 8 / 16 (noise variance
10.4); at M=16 one 60 s run estimated +5.0 dB over a raw full scan where the truth was
-1.9 dB. (Not the network's geometry: applying it phase by phase instead of to whole
frames changed the result by 0.1-0.2.) With the first stage, the restored lines are scored
as the chain fills them in (:mod:`.fill`): cubic interpolation of the inputs plus the
network's correction averaged over the checked frames. Its text:
:func:`.figures.format_check`.

The scores cannot see objects that fall whole between acquired lines, so the check also
measures how wide the active structures are along the fully sampled axis
(:func:`structure_width`), and the verdict says M is past what the method restores when
the lines are further apart than that (with a margin: ``figures.WIDTH_TOLERANCE``) (the simulation's somata, 8-14 px wide: 10.5-12 px; at M = 16 a
third of them crossed no acquired line and the ROI traces were 42 % off, against 19 % for
cubic interpolation, while the scores read +4.5 dB over cubic).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from .lines import _Frames, cubic_upsample, frame_index

#: held-out frames scored (at most)
CHECK_FRAMES = 16
#: share of the training budget kept for the check (at least; at most 10 %)
CHECK_SHARE = 0.05


def reserve(params: Any, src: Any, staged: bool):
    """The time to keep of the training budget for :func:`estimate`, from the step time:
    its frames (with the first stage, about 10 x CHECK_FRAMES frames denoised M times
    over narrower phases) against a step's crops; None without a budget."""
    if params.train_seconds is None:
        return None
    n_a, n_b = src.segments[0].shape[-2:]
    frames = CHECK_FRAMES * ((10 if staged else 0) + 2 * src.k + 1)
    ratio = frames * n_a * n_b / (params.batch_size * params.patch_size**2)

    def keep(step_seconds: float) -> float:  # inference: ~10x cheaper a pixel than a step
        return max(CHECK_SHARE * params.train_seconds,
                   min(0.1 * params.train_seconds, step_seconds * ratio / 10))
    return keep


#: frames (at most) of the training data the structure width is measured on, and the
#: largest distance (px) its correlation is measured at
WIDTH_FRAMES, WIDTH_MAX_LAG = 600, 27
#: fewer frames than this: no width (too few transients to measure it)
WIDTH_MIN_FRAMES = 50


def structure_width(seg: np.ndarray) -> float | None:
    """About the width in pixels of the active structures along the fully sampled (last)
    axis of ``seg`` (t, a, b): 1.5 times the distance at which the correlation between
    pixels' time courses falls to half its value at 2 px (calibrated on the simulated
    somata, 8-14 px wide, 11 on average: half at 7-8 px). The time courses lose their slow
    drift (a 61-frame running mean) and a little noise (3 frames); the correlation that
    never falls (drift, motion shared by the whole field) is its level at 24-27 px (or
    the largest lags the lines allow). Lag 1 is skipped (noise correlated between
    neighbours). None when the movie or its lines are too short, or when nothing
    correlates beyond that level."""
    n, _, nb = seg.shape
    top = min(WIDTH_MAX_LAG, nb // 2)
    if n < WIDTH_MIN_FRAMES or top < 12:
        return None
    t0 = max(0, n // 2 - WIDTH_FRAMES // 2)
    x = np.asarray(seg[t0:t0 + WIDTH_FRAMES], np.float32)
    x = x - uniform_filter1d(x, min(61, len(x) // 2 * 2 - 1), axis=0, mode="nearest")
    x = uniform_filter1d(x, 3, axis=0, mode="nearest")
    x = x / (x.std(axis=0, keepdims=True) + 1e-6)
    corr = {d: float(np.mean(x[..., :-d] * x[..., d:])) for d in range(2, top + 1)}
    level = float(np.mean([corr[d] for d in range(top - 3, top + 1)]))
    ref = corr[2] - level
    if not ref > 0.01:
        return None
    half = next((d for d in range(3, top - 3) if corr[d] - level < 0.5 * ref), top - 3)
    return 1.5 * half


def signal_frames(x: np.ndarray, max_lag: int = 30) -> int | None:
    """Frames over which the signal of a (t, a, b) movie stays correlated: the lag at
    which the temporal autocovariance of its most variable pixels (top 10 %) falls to half
    its value at lag 1 (lag 0 holds the noise; a slow drift only lengthens it). None under
    WIDTH_MIN_FRAMES frames. Simulated GCaMP decays of 2 / 3 / 5 / 15 frames read 2 / 4-5
    / 5 / 14 on 200-600 frames; the regime generator's GCaMP6f at 7.5 / 30 / 60 Hz 4 /
    11 / 21."""
    if len(x) < WIDTH_MIN_FRAMES:
        return None
    y = np.asarray(x, np.float32).reshape(len(x), -1)
    y = y - y.mean(axis=0)
    v = y.var(axis=0)
    y = y[:, v >= np.quantile(v, 0.9)]
    lags = min(max_lag, len(x) // 3)
    cov = [float(np.mean(y[:-d] * y[d:])) for d in range(1, lags + 1)]
    if not cov[0] > 0:
        return None
    return next((d + 1 for d in range(1, lags) if cov[d] < 0.5 * cov[0]), lags)


def _measured(raw: _Frames, t0: int, n: int, plane: int | None) -> np.ndarray:
    """Up to WIDTH_FRAMES measured frames from the middle of frames t0 .. t0 + n (the
    structure width is measured on the measurement: the first stage's output, smoothed
    in time, reads narrower, 7.5 px against 10.5 on the simulation)."""
    lo = t0 + max(0, n // 2 - WIDTH_FRAMES // 2)
    return np.asarray(raw.read(lo, min(t0 + n, lo + WIDTH_FRAMES), plane), np.float32)


def _db(a: float, b: float) -> float:
    return float(10 * np.log10(max(a, 1e-12) / max(b, 1e-12)))


def estimate(net: Any, src: Any, raw: _Frames, device: torch.device,
             inputs: _Frames | None = None) -> dict | None:
    """The self-check on up to CHECK_FRAMES consecutive held-out frames of the training
    ``src`` (one frame in 10; from the middle of the segment with the most) against the
    measured frames ``raw``; the network's inputs are ``src``'s frames, or ``inputs``'
    (the first stage's output denoised phase by phase: no input column then carries
    anything of a dropped one), read once for all the frames. None when no frame is held
    out or the movie has fewer than 3 frames."""
    m, k = src.m, src.k
    if src.reference or not any(len(h) for h in src.held):
        return None
    s = int(np.argmax([len(h) for h in src.held]))
    seg, (t0, plane) = src.segments[s], src.origins[s]
    held = [int(t) for t in src.held[s] if 1 <= t < len(seg) - 1]
    if not held:
        return None
    first = max(0, len(held) // 2 - CHECK_FRAMES // 2)
    ts = held[first:first + CHECK_FRAMES]
    lo, hi = max(0, ts[0] - k), min(len(seg), ts[-1] + k + 1)
    frames = seg if inputs is None else np.concatenate(
        [np.zeros((lo, *seg.shape[1:]), np.float32),
         (inputs.read(t0 + lo, t0 + hi, plane) - src.mean) / src.std])
    n_a, n_b = seg.shape[-2:]
    lp = n_b // m
    if lp < 4:
        return None
    se = {"net": 0.0, "cubic": 0.0, "noise": 0.0, "signal": 0.0, "lag1": 0.0}
    count = 0
    net.eval()
    preds, bases, meas_all = [], [], []
    for t in ts:
        meas_all.append(raw.read(t0 + t - 1, t0 + t + 2, plane)[:, :, :lp * m])  # (3, a, b)
        x = frames[frame_index(np.array([t]), k, len(seg))[0]][:, :, :lp * m:m]
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(device)
            y = net(xt[None])[0].float().cpu().numpy()  # (m, lp, n_a)
        preds.append(y.transpose(2, 1, 0).reshape(n_a, lp * m) * src.std + src.mean)
        if inputs is not None:  # the chain keeps the network's static part (fill.py)
            bases.append(cubic_upsample(x[k] * src.std + src.mean, m, "x"))
    if bases:
        static = np.mean([p - b for p, b in zip(preds, bases, strict=True)], axis=0)
        preds = [b + static for b in bases]
    for pred, meas in zip(preds, meas_all, strict=True):
        cub = cubic_upsample(meas[1, :, ::m], m, "x")
        drop = np.ones(lp * m, bool)
        drop[::m] = False
        drop[-m:] = False  # past the last kept column cubic extrapolates: left out
        tgt = meas[1][:, drop]
        se["net"] += float(np.sum((pred[:, drop] - tgt) ** 2))
        se["cubic"] += float(np.sum((cub[:, drop] - tgt) ** 2))
        d = tgt - 0.5 * (meas[0][:, drop] + meas[2][:, drop])
        se["noise"] += float(np.sum(d**2)) / 1.5
        se["signal"] += float(np.sum((tgt - tgt.mean()) ** 2))
        dd = meas[1] - 0.5 * (meas[0] + meas[2])  # the noise's neighbour correlation
        se["lag1"] += float(np.mean(dd[:, 1:] * dd[:, :-1]) / max(np.mean(dd**2), 1e-12))
        count += tgt.size
    if count == 0:
        return None
    measured = _measured(raw, t0, len(seg), plane)
    noise, net_e, cub_e, var = (se[key] / count for key in ("noise", "net", "cubic", "signal"))
    floor = 0.01 * noise
    err_net, err_cubic = max(net_e - noise, floor), max(cub_e - noise, floor)
    return {"factor": m, "frames": len(ts), "noise_var": noise,
            "net_error": err_net, "cubic_error": err_cubic,
            "at_floor": bool(net_e - noise <= floor),
            # the share of the signal's variance between the kept columns left unexplained
            "unexplained": float(err_net / max(var - noise, floor)),
            "signal_var": float(var - noise),
            "noise_lag1": se["lag1"] / len(ts),
            "structure_px": structure_width(measured),
            "signal_frames": signal_frames(measured), "staged": inputs is not None,
            "gain_db": _db(err_cubic, err_net), "vs_full_scan_db": _db(noise, err_net)}
