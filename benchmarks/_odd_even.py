"""The odd/even protocol that scores a denoiser on a real recording without truth
(``bench_denoise.py --real``), and a measure of when it can be trusted.

The even frames are restored and compared with the odd frames: their noise is
independent of the even frames', so the error splits into the noise floor (the odd frames'
noise variance) plus the restoration's error against the clean *odd* frame. That is its
error against the clean even frame only if the signal does not change from one frame to
the next: the change ``D = E|c_t - c_t+1|^2`` (and how it correlates with the
restoration's error) is part of every method's excess error. A method sharp in time (one
that follows frame t) pays D in full; a temporal blur is nearer the mean of t and t+1 and
pays less. Where D is comparable to the tuned Gaussian's excess error, the protocol's ratio
says little about the error against the truth (benchmarks/README.md, "Why real recordings
gain less": on a simulation with 0.5 px motion jitter it scored ours 2.7x the Gaussian's
excess error where the truth said 0.41x).
"""

from __future__ import annotations

import numpy as np


def split(movie: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The even and the odd frames of ``movie`` (float32), cut to the same length."""
    movie = np.asarray(movie, np.float32)
    even, odd = movie[0::2], movie[1::2]
    n = min(len(even), len(odd))
    return even[:n], odd[:n]


def noise_floor(odd: np.ndarray) -> float:
    """The variance of the odd frames' noise, from their own second temporal differences
    (1.5 x the noise variance plus a little of the signal's curvature: an overestimate
    where the signal changes fast)."""
    d = odd[1:-1] - 0.5 * (odd[:-2] + odd[2:])
    return float(d.var() / 1.5)


def adjacent_change(movie: np.ndarray) -> tuple[float, float]:
    """(white-noise variance, D): from the half mean squared differences of frames ``L``
    apart, ``V(L) = var + S(L) / 2`` where ``S(L) = E|c_t - c_t+L|^2`` (``S(0) = 0``);
    with ``S`` quadratic in ``L`` over lags 1 to 3 (a smooth drift is ``L^2``, a fast or
    random change ``L``), ``var`` is the fit's value at lag 0 and ``D = S(1) = 2 (V(1) -
    var)``. Needs noise independent from frame to frame; D is the clean signal's mean
    squared change between adjacent frames of ``movie`` (at its full frame rate)."""
    m = np.asarray(movie, np.float32)
    v1, v2, v3 = (float(((m[lag:] - m[:-lag]) ** 2).mean() / 2) for lag in (1, 2, 3))
    var = 3 * v1 - 3 * v2 + v3  # the quadratic through the three, at lag 0
    return var, 2 * (v1 - var)


def excess_ratio(out: np.ndarray, odd: np.ndarray, reference_mse: float, floor: float) -> float:
    """``out``'s excess error over the noise floor against the odd frames, as a share of
    the reference's (a Gaussian's MSE against the odd frames)."""
    ex = reference_mse - floor
    return float((((out - odd) ** 2).mean() - floor) / ex) if ex > 0 else float("nan")


def perfect_ratio(movie: np.ndarray, reference_mse: float, floor: float) -> float:
    """What a perfect restoration (the clean even frames) would score on the protocol,
    estimated without truth: its error against the odd frames is their noise plus D, so
    its excess over the floor is ``D - (floor - var)`` (:func:`adjacent_change`), as a
    share of the reference's excess. On simulations it matched the true figure (7.5 Hz:
    0.546 estimated, 0.541 true; 30 Hz: 0.09 and 0.05), except under random motion jitter,
    which is white in time like the noise (0.08 estimated, 3.17 true)."""
    var, d = adjacent_change(movie)
    ex = reference_mse - floor
    return float((d - (floor - var)) / ex) if ex > 0 else float("nan")
