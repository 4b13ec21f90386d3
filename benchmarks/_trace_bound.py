"""An oracle bound for ROI trace fidelity from a given set of acquired pixels: sparse
non-negative deconvolution of each ROI's raw trace with the simulator's own model (numpy
and scipy only; used by bench_sparse.py's trace error budget).

Each ROI's mean raw trace y (over its acquired pixels) is fitted as
``y = conv(s) + b0 + b1 * slow``, ``s >= 0`` (spikes), ``conv`` the simulator's calcium
kernel (``(1 - exp(-k / rise)) exp(-k / tau)``, a second-order recursive filter),
``slow`` the simulator's neuropil
drift (a sine of period n / 2), minimising ``|y - fit|^2 / 2 + lam * sum(s)`` (FISTA, the
baseline refitted every 20 iterations), with ``lam`` a multiple of the trace's noise picked
with the truth. It knows what no restoration of the movie knows (the kernel, the drift,
the truth to tune on), so its trace NRMSE is a floor for what the acquired photons allow:
a restoration whose traces come from those pixels cannot be expected to beat it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

#: multiples of the trace's noise standard deviation tried as the sparsity weight
LAMBDAS = (0.5, 1.0, 2.0, 4.0)


def kernel_filter(tau: float, rise: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the recursive filter whose impulse response is the simulator's kernel
    ``exp(-k / tau) - exp(-k (1 / tau + 1 / rise))`` (up to its scale)."""
    g1, g2 = np.exp(-1.0 / tau), np.exp(-1.0 / tau - 1.0 / rise)
    return np.array([0.0, g1 - g2]), np.convolve([1.0, -g1], [1.0, -g2])


def _deconvolve(y: np.ndarray, lam: float, kernel: tuple, basis: np.ndarray,
                iters: int = 400) -> np.ndarray:
    b_k, a_k = kernel

    def conv(s):
        return lfilter(b_k, a_k, s)

    def conv_t(r):
        return lfilter(b_k, a_k, r[::-1])[::-1]

    impulse = conv(np.eye(1, len(y))[0])
    step = 1.0 / float(np.abs(impulse).sum()) ** 2  # 1 / a Lipschitz bound of conv_t(conv)
    s = np.zeros_like(y)
    z, tk = s.copy(), 1.0
    b = np.linalg.lstsq(basis, y, rcond=None)[0]
    for it in range(iters):
        grad = conv_t(conv(z) + basis @ b - y)
        s_new = np.maximum(z - step * (grad + lam), 0.0)
        t_new = (1.0 + np.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
        z = s_new + (tk - 1.0) / t_new * (s_new - s)
        s, tk = s_new, t_new
        if it % 20 == 19:
            b = np.linalg.lstsq(basis, y - conv(s), rcond=None)[0]
    return conv(s) + basis @ b


def oracle_traces(f: np.ndarray, tau_frames: float, rise_frames: float, score) -> tuple:
    """Deconvolve the traces ``f`` (n_rois, t) with each sparsity weight and keep the one
    that ``score`` (fitted traces -> mean NRMSE against the truth) likes best: returns
    (score, the weight as a multiple of the noise)."""
    t = f.shape[1]
    basis = np.stack([np.ones(t), np.sin(2 * np.pi * np.arange(t) / max(t / 2.0, 1.0))], 1)
    kernel = kernel_filter(tau_frames, rise_frames)
    noise = np.std(np.diff(f, axis=1), axis=1) / np.sqrt(2.0)
    best = (np.inf, None)
    for mult in LAMBDAS:
        fit = np.stack([_deconvolve(y, mult * n, kernel, basis) for y, n in zip(f, noise, strict=True)])
        best = min(best, (score(fit), mult), key=lambda v: v[0])
    return best
