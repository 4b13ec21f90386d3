"""Real (z, y, x) volumes as a truth for the volume benchmarks (numbers only).

A real volume is only a truth for axial restoration if its structure is as sharp along z
as along y and x: the restorer learns the lateral sharpness, so a truth whose z is blurrier
(a light-sheet or confocal PSF elongated in z) scores a correct restoration as an error.
:func:`isotropic_truth` measures the structure's width along each axis from the
autocorrelation at lags 1 and 2 (white noise, which only adds to lag 0, cancels in their
ratio) and blurs y and x by a Gaussian so that they match z. The volumes used and their
sources are listed in benchmarks/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter


def read_volume(path: str | Path) -> np.ndarray:
    """A (z, y, x) TIFF as float32 (raises SystemExit with one line if it is not 3D)."""
    import tifffile

    v = np.asarray(tifffile.imread(str(path)), np.float32)
    if v.ndim != 3:
        raise SystemExit(f"{path}: expected a (z, y, x) volume, got shape {v.shape}")
    return v


def normalise(v: np.ndarray, lo: float = 0.5, hi: float = 99.9) -> np.ndarray:
    """Percentiles ``lo`` .. ``hi`` to 0 .. 1 (clipped at 0): the simulation's intensity
    scale, so the same photon count per unit gives the same noise level."""
    a, b = np.percentile(v, [lo, hi])
    return np.clip((v - a) / max(float(b - a), 1e-12), 0, None).astype(np.float32)


def structure_sigma2(v: np.ndarray, axis: int) -> float:
    """Squared Gaussian width (pixels^2) of the structure along ``axis``: for Gaussian
    structure the autocorrelation is A exp(-d^2 / (4 s^2)), so lag 2 over lag 1 gives
    s^2 = -3 / (4 ln(ac2 / ac1)). A broad background (Gaussian, sigma 8) is removed first."""
    h = np.moveaxis(v.astype(np.float64) - gaussian_filter(v.astype(np.float64), 8), axis, 0)
    a1 = float(np.mean(h[1:] * h[:-1]))
    a2 = float(np.mean(h[2:] * h[:-2]))
    q = float(np.clip(a2 / a1, 1e-3, 0.999)) if a1 > 0 else 1e-3
    return -3.0 / (4.0 * np.log(q))


def isotropy_blur(v: np.ndarray) -> tuple[float, float, float]:
    """(lateral Gaussian sigma that makes y and x as wide as z, width^2 along z, along y/x)."""
    sz = structure_sigma2(v, 0)
    sl = 0.5 * (structure_sigma2(v, 1) + structure_sigma2(v, 2))
    return float(np.sqrt(max(sz - sl, 0.0))), sz, sl


def isotropic_truth(v: np.ndarray, lateral_blur: float | None = None
                    ) -> tuple[np.ndarray, float]:
    """Normalised ``v`` blurred laterally to match its axial width (``lateral_blur``: a
    given sigma instead of the measured one); returns (truth, the sigma used)."""
    s = isotropy_blur(v)[0] if lateral_blur is None else float(lateral_blur)
    t = normalise(v)
    if s > 0:
        t = gaussian_filter(t, (0, s, s)).astype(np.float32)
    return t, s
