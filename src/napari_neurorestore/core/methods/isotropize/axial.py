"""Geometry and statistics for axial isotropization (numpy only; no torch).

Conventions (shared by the core, the widget and the tests): a volume (z, y, x) whose z
pixel is R times its lateral pixel is resampled onto round((z - 1) R) + 1 slices; output
slice k lies at input slice position k / R (slice 0 on slice 0, the grids share their
origin), so the output layer's z scale is the input's divided by R and its translate is
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import InputError
from ...io import check_dtype, check_finite

#: Keys' cubic convolution parameter (a = -0.5: third-order accurate, interpolating)
KEYS_A = -0.5


def output_slices(n_in: int, ratio: float) -> int:
    """Number of output slices: round((n_in - 1) * ratio) + 1."""
    return int(round((int(n_in) - 1) * float(ratio))) + 1


def output_positions(n_in: int, ratio: float) -> np.ndarray:
    """Input slice positions (in input slice units) of the output slices: k / ratio."""
    return np.arange(output_slices(n_in, ratio), dtype=np.float64) / float(ratio)


def z_ratio_from_scale(scale: Sequence[float] | None) -> float | None:
    """R = z scale / y scale of a napari layer's ``scale`` (the last three axes are
    (z, y, x)); None when the scale has fewer than 3 axes, is not positive, or is the
    default (all ones: most likely not set)."""
    if scale is None:
        return None
    s = [float(v) for v in scale]
    if len(s) < 3:
        return None
    z, y = s[-3], s[-2]
    if not (z > 0 and y > 0) or not np.isfinite(z / y):
        return None
    if all(v == 1.0 for v in s[-3:]):
        return None
    return z / y


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def cubic_weights(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys cubic-convolution taps for sampling a length-``n`` sequence at ``pos``.

    Returns (idx (k, 4) int64, w (k, 4) float64) with mirror boundary: values at
    ``pos`` are ``(seq[idx] * w).sum(-1)``. At integer positions the weights are (0, 1, 0, 0),
    so acquired samples are returned unchanged.
    """
    pos = np.asarray(pos, np.float64)
    base = np.floor(pos).astype(np.int64)
    t = pos - base
    offs = np.arange(-1, 3)
    d = np.abs(t[:, None] - offs[None, :])  # distances to the four taps
    a = KEYS_A
    w = np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                 np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))
    idx = _mirror(base[:, None] + offs[None, :], n)
    return idx, w


def interp_z(block: np.ndarray, ratio: float) -> np.ndarray:
    """Cubic (Keys) interpolation of ``block`` (z, ...) onto the output grid of ``ratio``."""
    block = np.asarray(block, np.float32)
    idx, w = cubic_weights(output_positions(block.shape[0], ratio), block.shape[0])
    out = np.zeros((len(idx), *block.shape[1:]), np.float32)
    for t in range(4):
        wt = w[:, t].astype(np.float32).reshape(-1, *([1] * (block.ndim - 1)))
        out += wt * block[idx[:, t]]
    return out


def check_volume(data: Any) -> None:
    """Validate a (z, y, x) volume for axial isotropization (raises InputError)."""
    check_dtype(data)
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 3:
        raise InputError(
            f"axial isotropization needs a 3D volume with axes (z, y, x), got {len(shape)}D "
            f"data of shape {shape}" + (" (a 2D image has no z axis)" if len(shape) == 2 else "")
        )
    if shape[0] < 3:
        raise InputError(f"the volume has {shape[0]} z slice(s); at least 3 are needed")
    if shape[1] < 16 or shape[2] < 16:
        raise InputError(f"slices of {shape[1]}x{shape[2]} pixels are too small (min 16x16): "
                         "the lateral slices are the training data")
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap) and data.nbytes < 2**31:
        check_finite(data)


def _lateral_crop(data: Any, max_side: int = 256) -> np.ndarray:
    """A central lateral crop (all z) as float32, at most ``max_side`` pixels a side."""
    _, h, w = data.shape
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return np.asarray(data[:, y0:y0 + max_side, x0:x0 + max_side], np.float32)


def _periodogram(vol: np.ndarray, axis: int, pitch: float, seg: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean 1D periodogram along ``axis`` (Hann window, per-segment mean removed), in units
    of per-sample variance; frequencies in cycles per lateral pixel. With ``seg`` the lines
    are cut into segments of ``seg`` samples (the same length and window as a shorter axis,
    so both spectra have the same resolution and leakage)."""
    v = np.moveaxis(vol, axis, -1).astype(np.float64)
    n = v.shape[-1]
    seg = n if seg is None else max(4, min(int(seg), n))
    k = n // seg
    v = v[..., :k * seg].reshape(*v.shape[:-1], k, seg)
    win = np.hanning(seg + 2)[1:-1]
    v = (v - v.mean(-1, keepdims=True)) * win
    p = (np.abs(np.fft.rfft(v, axis=-1)) ** 2).reshape(-1, seg // 2 + 1).mean(0) / (win**2).sum()
    return np.fft.rfftfreq(seg, d=pitch), p


def axial_lateral_spectra(data: Any, ratio: float) -> dict[str, np.ndarray]:
    """Power spectra along z and along the lateral axes (mean of y and x), with frequencies
    in cycles per lateral pixel; the z spectrum is multiplied by ``ratio`` so both are on
    the same density scale (a sampled process's periodogram is its spectrum / pitch).
    The lateral lines are cut to the axial extent (n_z R pixels) so both spectra see the
    same window."""
    vol = _lateral_crop(data)
    fz, pz = _periodogram(vol, 0, ratio)
    seg = int(round(vol.shape[0] * ratio))
    fy, py = _periodogram(vol, 1, 1.0, seg)
    fx, px = _periodogram(vol, 2, 1.0, seg)
    pl = 0.5 * (py + np.interp(fy, fx, px))
    return {"f_z": fz, "p_z": pz, "f_lat": fy, "p_lat": pl}


def spectral_extent(f: np.ndarray, p: np.ndarray, noise: float, frac: float = 0.01) -> float:
    """Highest frequency where the spectrum (noise floor removed) is still ``frac`` of its
    low-frequency level: a resolution figure for the isotropy check."""
    s = np.maximum(p - noise, 0)
    ref = s[1:4].mean() if len(s) > 4 else s.max()
    above = np.nonzero(s[1:] >= frac * ref)[0]
    return float(f[1:][above[-1]]) if len(above) else 0.0


def estimate_sigma_z(data: Any, ratio: float) -> float:
    """Estimate the axial blur beyond the lateral one (a Gaussian sigma in lateral pixels)
    from the ratio of the axial and lateral power spectra of the volume itself.

    For structures with the same statistics along z as along x and y, the axial spectrum is
    the lateral one times G(f)^2 = exp(-4 pi^2 sigma^2 f^2); white noise adds the same floor
    to both (estimated from the top of the lateral band), and sampling every R lateral
    pixels folds the blurred spectrum's aliases (f + m / R) onto f. sigma is the
    least-squares fit (in log power, with a free gain) over the frequencies below 70 % of
    the axial Nyquist frequency where the lateral signal is at least 3x the noise floor.
    """
    ratio = float(ratio)
    s = axial_lateral_spectra(data, ratio)
    fz, pz, fl, pl = s["f_z"], s["p_z"], s["f_lat"], s["p_lat"]
    noise = float(np.median(pl[fl >= 0.4])) if np.any(fl >= 0.4) else float(pl[-1])
    pl_z = np.interp(fz, fl, pl)
    sig_l = pl_z - noise
    sig_z = ratio * (pz - noise)
    ok = (fz > 0) & (fz <= 0.7 * 0.5 / ratio) & (sig_l > 3 * noise) & (sig_z > 0.05 * sig_l)
    ok[:2] = False  # the lowest bins are dominated by the window and the mean removal
    if ok.sum() < 2:
        ok = (fz > 0) & (fz <= 0.5 / ratio) & (sig_l > 0) & (sig_z > 0)
        ok[:1] = False
    if not ok.any():
        return 0.0
    # model the axial spectrum with its aliases: sampling every R lateral pixels folds the
    # blurred spectrum at f + m / R onto f; a gain offset is fitted in closed form
    f = fz[ok]
    target = np.log(np.clip(sig_z[ok], 1e-12, None))
    sl = np.clip(pl - noise, 0, None)
    best = (np.inf, 0.0)
    for sigma in np.arange(0.0, 12.0, 0.02):
        model = np.zeros_like(f)
        for m in range(-3, 4):
            fm = np.abs(f + m / ratio)
            inside = fm <= fl[-1]
            model += np.where(inside, np.interp(fm, fl, sl) * np.exp(-4 * np.pi**2 * sigma**2 * fm**2), 0)
        lm = np.log(np.clip(model, 1e-12, None))
        c = np.mean(target - lm)
        err = float(np.mean((target - lm - c) ** 2))
        if err < best[0]:
            best = (err, float(sigma))
    return best[1]


#: fewer z slices than this give too few axial frequencies to fit the axial blur
MIN_SLICES_TO_MEASURE = 16
#: the axial blur assumed (sigma = this x R lateral pixels) when it cannot be measured: a z
#: step of about the axial blur's half width at half maximum (sampled near Nyquist)
PRIOR_SIGMA_PER_RATIO = 0.6


def axial_blur(data: Any, ratio: float) -> tuple[float, str]:
    """(sigma_z, how it was found): "estimated" from the spectra (:func:`estimate_sigma_z`)
    when the volume has at least :data:`MIN_SLICES_TO_MEASURE` slices, else "prior"
    (:data:`PRIOR_SIGMA_PER_RATIO` x R): on a short stack the fit has a handful of axial
    frequencies and returned 0 (no blur) on real volumes of 11 slices."""
    if data.shape[0] >= MIN_SLICES_TO_MEASURE:
        return estimate_sigma_z(data, ratio), "estimated"
    return round(PRIOR_SIGMA_PER_RATIO * float(ratio), 4), "prior"


def estimate_noise(data: Any, max_slices: int = 16) -> tuple[float, float]:
    """Noise variance model var = a * I + b (Poisson-Gaussian) of the volume, in its units.

    Immerkaer's Laplacian residual on the lateral slices (signal-free for locally smooth
    structure), a robust (median-based) variance per intensity bin and a non-negative
    linear fit.
    """
    n = data.shape[0]
    zs = np.unique(np.linspace(0, n - 1, min(n, max_slices)).astype(int))
    res, mu = [], []
    _, h, w = data.shape
    y0, x0 = max(0, (h - 512) // 2), max(0, (w - 512) // 2)
    for z in zs:  # central crops of at most 512 x 512 bound the memory
        s = np.asarray(data[z, y0:y0 + 512, x0:x0 + 512], np.float64)
        lap = (s[:-2, :-2] + s[:-2, 2:] + s[2:, :-2] + s[2:, 2:]
               - 2 * (s[1:-1, :-2] + s[1:-1, 2:] + s[:-2, 1:-1] + s[2:, 1:-1]) + 4 * s[1:-1, 1:-1])
        m = sum(s[i:i + s.shape[0] - 2, j:j + s.shape[1] - 2] for i in range(3) for j in range(3)) / 9
        res.append(lap.ravel())
        mu.append(m.ravel())
    r = np.concatenate(res)
    m = np.concatenate(mu)
    edges = np.unique(np.quantile(m, np.linspace(0, 1, 13)))
    xs, vs, ws = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (m >= lo) & (m <= hi)
        if sel.sum() < 50:
            continue
        # for Gaussian noise, median(|r|) = 0.6745 sd; var(lap) = 36 var(noise)
        v = (np.median(np.abs(r[sel])) / 0.6745) ** 2 / 36.0
        xs.append(np.median(m[sel]))
        vs.append(v)
        ws.append(sel.sum())
    if not xs:
        return 0.0, 0.0
    x, v = np.array(xs), np.array(vs)
    if len(x) < 2 or np.ptp(x) == 0:
        return 0.0, float(v.mean())
    a, b = np.polyfit(x, v, 1)
    if a < 0:
        return 0.0, float(np.median(v))
    if b < 0:
        a, b = float(np.sum(x * v) / np.sum(x * x)), 0.0
    return float(a), float(b)
