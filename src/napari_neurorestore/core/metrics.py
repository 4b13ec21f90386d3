"""Image and trace quality figures (numpy only): PSNR, SSIM, NRMSE, Pearson r, SNR (dB)."""

from __future__ import annotations

import numpy as np


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio of ``x`` against ``ref`` in dB.

    ``data_range`` defaults to the reference's range (max - min).
    """
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    if data_range is None:
        data_range = float(ref.max() - ref.min())
    mse = float(np.mean((x - ref) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(data_range**2 / mse)


def nrmse(x: np.ndarray, ref: np.ndarray) -> float:
    """RMSE between ``x`` and ``ref`` over the range of ``x`` (the fiberscopy paper's
    definition: sqrt(mean((F - F0)^2)) / (max(F) - min(F)), F the restored signal)."""
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    rng = float(x.max() - x.min())
    rmse = float(np.sqrt(np.mean((x - ref) ** 2)))
    return rmse / rng if rng > 0 else float("inf") if rmse > 0 else 0.0


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 1-D signals (nan when either is constant)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def snr_db(signal_power: float, noise_power: float) -> float:
    """SNR = 10 log10(P_signal / P_noise) (the fiberscopy paper's definition)."""
    return float(10.0 * np.log10(signal_power / noise_power))


def _box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` box along the last two axes ('valid' region), via cumulative sums."""
    c = np.cumsum(np.cumsum(np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)]), -1), -2)
    s = size
    tot = c[..., s:, s:] - c[..., :-s, s:] - c[..., s:, :-s] + c[..., :-s, :-s]
    return tot / (s * s)


def ssim(x: np.ndarray, ref: np.ndarray, data_range: float | None = None, win: int = 7) -> float:
    """Mean structural similarity over 2-D planes (uniform ``win`` x ``win`` window, the
    usual constants K1=0.01, K2=0.03). Arrays of any ndim >= 2: planes are the last two axes."""
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    if data_range is None:
        data_range = float(ref.max() - ref.min())
    win = min(win, x.shape[-1], x.shape[-2])
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _box_mean(x, win), _box_mean(ref, win)
    n = win * win
    cov_norm = n / (n - 1) if n > 1 else 1.0
    vx = (_box_mean(x * x, win) - mx * mx) * cov_norm
    vy = (_box_mean(ref * ref, win) - my * my) * cov_norm
    cxy = (_box_mean(x * ref, win) - mx * my) * cov_norm
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
