"""The two-stage chain's filled-in lines (numpy only; used by :mod:`.heavy`): cubic
interpolation of the first stage's denoised lines plus the network's *static* correction.

With the first stage on, the acquired lines are already denoised, and what the network
adds over cubic interpolation of them is of two kinds: a static part (the shape of
somata and processes between the lines, the same in every frame) and a dynamic part,
the network's time course of each filled-in pixel. The dynamic part is a
mean-squared-error estimate: where a soma's extent between two acquired lines is unknown
it mixes the soma's time course with the neuropil's, so a soma's filled-in rows carried
its acquired row's ΔF/F scaled by 0.5-0.75 (cubic interpolation: 0.7-0.8; the truth:
1.0). The chain therefore keeps only the static part: the filled-in lines are cubic
interpolation of the denoised acquired lines plus the temporal mean, over sample blocks of
frames, of the network's restoration minus that interpolation.

Measured on 600 x 128 x 128 simulations at M = 8 (60 s, idle 2-core CPU, ROI ΔF/F trace
NRMSE against the clean movie): with the first stage's window of 5, the static fill scored
7.49 / 7.73 / 7.79 % against the network's whole fill 8.35 / 8.24 / 8.40 % (simulation
seeds 0 / 1 / 2), PSNR within 0.2 dB; with the window of 15 (now the default), 6.59 / 7.17 %
against 8.18 / 7.94 % (seeds 1 / 2), PSNR 26.02 / 25.07 against 26.03 / 25.25 dB. The
network now runs on the sample blocks only, so inference is faster too (512 x 512 at
M = 8: 111 frames/s).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .lines import cubic_upsample

#: the static correction is averaged over up to FILL_BLOCKS blocks of FILL_BLOCK_FRAMES
#: consecutive frames, spread evenly over the movie
FILL_BLOCKS, FILL_BLOCK_FRAMES = 3, 16


def sample_blocks(n: int) -> list[tuple[int, int]]:
    """The frame blocks (start, stop) the static correction is averaged over: the same
    for any part of the movie that is restored (so dask tasks agree)."""
    if n <= FILL_BLOCKS * FILL_BLOCK_FRAMES:
        return [(0, n)]
    starts = np.linspace(0, n - FILL_BLOCK_FRAMES, FILL_BLOCKS).round().astype(int)
    return [(int(s), int(s) + FILL_BLOCK_FRAMES) for s in starts]


def static_correction(restore: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
                      n: int, m: int) -> np.ndarray:
    """The temporal mean of ``full - cubic(lines)`` over :func:`sample_blocks`, where
    ``restore(a, b)`` returns frames a:b as (the network's restored frames (t, a*m, b), the
    first stage's acquired lines (t, a, b)), in the sparse-axis-first orientation."""
    total, count = None, 0
    for a, b in sample_blocks(n):
        full, lines = restore(a, b)
        diff = (full - cubic_upsample(lines, m, "y")).sum(axis=0, dtype=np.float64)
        total = diff if total is None else total + diff
        count += b - a
    return (total / max(count, 1)).astype(np.float32)


def filled(lines: np.ndarray, m: int, correction: np.ndarray) -> np.ndarray:
    """Frames (t, a*m, b) from the first stage's acquired lines (t, a, b): cubic
    interpolation plus the static correction (zero on the acquired lines themselves, as
    cubic interpolation passes through them)."""
    return cubic_upsample(lines, m, "y") + correction[None]
