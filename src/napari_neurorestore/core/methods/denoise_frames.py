"""The denoiser's frames for training and inference: reading and padding a plane's frames,
the chunk reader that keeps each chunk's halo for the next one, the network's input
built from a chunk (the 2x2 unshuffle, once per chunk, and each window's gather), and
the network's prediction of a window, alone or averaged over flips and rotations."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.functional import pixel_shuffle, pixel_unshuffle

from ..io import check_finite


def pad4(block: np.ndarray) -> np.ndarray:
    """Reflect-pad the last two axes up to multiples of 4 (odd sizes: pad, don't crop)."""
    h, w = block.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    if not (ph or pw):
        return block
    mode = "reflect" if h > ph and w > pw else "edge"
    return np.pad(block, [(0, 0)] * (block.ndim - 2) + [(0, ph), (0, pw)], mode=mode)


def read(data: Any, t0: int, t1: int, plane: int | None) -> np.ndarray:
    block = data[t0:t1] if plane is None else data[t0:t1, plane]
    return np.asarray(block, dtype=np.float32)


def planes(data: Any) -> list[int | None]:
    return [None] if data.ndim == 3 else list(range(data.shape[1]))


def unshuffle(block: torch.Tensor) -> torch.Tensor:
    """(n, H, W) normalised frames -> (H/2, W/2, n, 4): the 2x2 unshuffle with
    time inside each pixel, so a window's frames are one slice per pixel (``2 i + j`` holds
    pixel (2y+i, 2x+j)). One pass, in torch (which copies on all its threads)."""
    n, h, w = block.shape
    cells = block.reshape(n, h // 2, 2, w // 2, 2).to(torch.float32)
    # two transposes, each with long contiguous runs, are 2x faster than the one
    # 5-d permute (1.2 against 2.8 ms per 512x512 frame on 2 threads)
    rows = cells.permute(1, 0, 2, 3, 4).contiguous()  # (H/2, n, 2, W/2, 2)
    out = rows.permute(0, 3, 1, 2, 4).contiguous()  # (H/2, W/2, n, 2, 2)
    return out.reshape(h // 2, w // 2, n, 4)


class ChunkFrames:
    """Normalised, padded frames ``lo:hi`` of one plane of ``data`` for consecutive chunks:
    the part a chunk shares with the one before (its halo) is kept rather than read again
    (when ``keep``), so inference reads each frame about once. Always a new tensor: the
    caller's own float32 array is never written to."""

    def __init__(self, data: Any, mean: float, std: float, keep: bool):
        self.data, self.mean, self.std, self.keep = data, mean, std, keep
        self.held: dict = {}

    def _load(self, lo: int, hi: int, plane: int | None) -> torch.Tensor:
        block = read(self.data, lo, hi, plane)
        check_finite(block, f"frames {lo}-{hi - 1}")
        return torch.from_numpy(pad4(block)).sub(self.mean).div_(self.std)

    def get(self, plane: int | None, lo: int, hi: int) -> torch.Tensor:
        prev = self.held.get(plane)
        if prev is not None and prev[0] <= lo < prev[1] <= hi:
            old = prev[2][lo - prev[0]:]
            block = old if hi == prev[1] else torch.cat([old, self._load(prev[1], hi, plane)])
        else:
            block = self._load(lo, hi, plane)
        if self.keep:
            self.held[plane] = (lo, hi, block)
        return block


def gather(frames: torch.Tensor, idx: np.ndarray, buf: torch.Tensor) -> torch.Tensor:
    """The net's input for windows ``idx`` (B, m) of unshuffled ``frames``, built in
    ``buf`` (>= B, H/2, W/2, m, 4): (B, 4 m, H/2, W/2) in channels-last memory, which the
    first convolution reads twice as fast as the (B, C, H, W) layout, with no reorder."""
    for row, dst in zip(idx, buf):
        j = 0
        for run in np.split(row, np.flatnonzero(np.diff(row) != 1) + 1):
            dst[:, :, j:j + len(run)].copy_(frames[:, :, run[0]:run[-1] + 1])
            j += len(run)
    b = buf[:len(idx)]
    return b.reshape(*b.shape[:3], -1).permute(0, 3, 1, 2)


def predict_windows(net: Any, xu: torch.Tensor, size: int = 1) -> torch.Tensor:
    """The net's prediction (B, 1, H, W) of the centre frames of windows ``xu`` (its
    unshuffled input, (B, 4 m, H/2, W/2)), averaged over ``size`` flips and rotations:
    1 (a single pass), 4 (the flips in x and y) or 8 (and the transpose; square frames
    only). Each transform is applied to the whole window at full resolution and undone on
    its prediction, so the average is as blind to the centre frame as one pass is; the
    network was trained on the same transforms (the batches' augmentation)."""
    if size == 1:
        return pixel_shuffle(net.forward_unshuffled(xu), 2)
    if size not in (4, 8):
        raise ValueError(f"an ensemble has 1, 4 or 8 members, not {size}")
    x = pixel_shuffle(xu, 2)
    if size == 8 and x.shape[-1] != x.shape[-2]:
        raise ValueError("the transposed members of the ensemble need square frames")
    acc = None
    for i in range(size):
        dims = [d for d, bit in ((-1, 1), (-2, 2)) if i & bit]
        y = x.flip(dims) if dims else x
        if i & 4:
            y = y.transpose(-1, -2)
        u = pixel_unshuffle(y, 2).contiguous(memory_format=torch.channels_last)
        o = pixel_shuffle(net.forward_unshuffled(u), 2)
        if i & 4:
            o = o.transpose(-1, -2)
        if dims:
            o = o.flip(dims)
        acc = o.clone() if acc is None else acc.add_(o)
    return acc.div_(size)
