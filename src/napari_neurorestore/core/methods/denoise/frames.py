"""The denoiser's frames for training and inference: each frame's neighbours (the temporal
blind spot's window), the frames per forward pass, reading and padding a plane's frames,
the chunk reader that keeps each chunk's halo for the next one, the network's input
built from a chunk (the 2x2 unshuffle, once per chunk, and each window's gather), and
the network's prediction of a window, alone or averaged over flips and rotations."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.functional import pixel_shuffle, pixel_unshuffle

from ...io import check_finite


def neighbour_index(ts: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """Frame indices of the neighbours of frames ``ts`` in a movie of ``n`` frames.

    A neighbour beyond either end is replaced by its mirror about the centre frame
    (t - k -> t + k), so edge frames get a full window and the centre frame itself is
    never an input (mirroring about the movie's end would return it: t - 2t = -t -> t).
    Needs ``n >= 2 * max|offset| + 1``. Returns an array of shape (len(ts), len(offsets)).
    """
    ts = np.asarray(ts)[:, None]
    idx = ts + offsets[None, :]
    outside = (idx < 0) | (idx >= n)
    return np.where(outside, ts - offsets[None, :], idx)


def neighbour_offsets(window: int) -> np.ndarray:
    """Temporal offsets of the input frames: -K..-1, 1..K (the centre is excluded)."""
    k = window // 2
    return np.concatenate([np.arange(-k, 0), np.arange(1, k + 1)])


def auto_batch_size(frame_shape, device) -> int:
    """Frames per forward pass. On a CPU, about 64k pixels per batch keeps the activations in
    cache (measured at 512x512 on 2 cores: 1 frame/batch 70 fps, 2: 64, 4: 48, 8: 31; at
    128x128, 4 frames/batch was fastest); on a GPU, larger batches (about 4 M pixels)."""
    pixels = int(frame_shape[0]) * int(frame_shape[1])
    target = 2**22 if getattr(device, "type", str(device)) != "cpu" else 2**16
    return int(min(64, max(1, round(target / max(pixels, 1)))))


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


class Scratch:
    """Tensors kept by name and made again only when their shape changes: a chunk's large
    buffers (tens to hundreds of MB), reused by the next chunk. A fresh allocation that
    large pays a page fault per page on first touch: filling 64 fresh 512x512 frames took
    28 ms here, filling kept ones 3.3 ms."""

    def __init__(self):
        self.held: dict = {}

    def get(self, name: str, shape) -> torch.Tensor:
        t = self.held.get(name)
        if t is None or tuple(t.shape) != tuple(shape):
            t = self.held[name] = torch.empty(tuple(shape), dtype=torch.float32)
        return t


def unshuffle(block: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """(n, H, W) normalised frames -> (H/2, W/2, n, 4): the 2x2 unshuffle with
    time inside each pixel, so a window's frames are one slice per pixel (``2 i + j`` holds
    pixel (2y+i, 2x+j)). One pass, in torch (which copies on all its threads), into
    ``scratch``'s buffers when given (the result is then valid until its next call)."""
    n, h, w = block.shape
    cells = block.reshape(n, h // 2, 2, w // 2, 2).to(torch.float32)
    # two transposes, each with long contiguous runs, are 2x faster than the one
    # 5-d permute (1.2 against 2.8 ms per 512x512 frame on 2 threads)
    shapes = (h // 2, n, 2, w // 2, 2), (h // 2, w // 2, n, 2, 2)
    rows, out = ((scratch.get(f"unshuffle{i}", sh) for i, sh in enumerate(shapes)) if scratch
                 else (torch.empty(sh) for sh in shapes))
    rows.copy_(cells.permute(1, 0, 2, 3, 4))  # (H/2, n, 2, W/2, 2)
    out.copy_(rows.permute(0, 3, 1, 2, 4))  # (H/2, W/2, n, 2, 2)
    return out.reshape(h // 2, w // 2, n, 4)


class ChunkFrames:
    """Normalised, padded frames ``lo:hi`` of one plane of ``data`` for consecutive chunks:
    the part a chunk shares with the one before (its halo) is kept rather than read again
    (when ``keep``), so inference reads each frame about once. The frames are converted and
    normalised in place in two kept buffers per plane that take turns (a chunk's block is
    valid until the next-but-one :meth:`get` of its plane; without ``keep``, one buffer for
    all planes: until the next :meth:`get`). The caller's own array is never written to."""

    def __init__(self, data: Any, mean: float, std: float, keep: bool):
        self.data, self.mean, self.std, self.keep = data, mean, std, keep
        self.held: dict = {}
        self.spare: dict = {}

    def _buffer(self, plane: int | None, shape) -> torch.Tensor:
        t = self.spare.pop(plane if self.keep else None, None)
        return t if t is not None and tuple(t.shape) == tuple(shape) else torch.empty(shape)

    def _load(self, dst: torch.Tensor, lo: int, hi: int, plane: int | None) -> None:
        raw = np.asarray(self.data[lo:hi] if plane is None else self.data[lo:hi, plane])
        d = dst.numpy()
        if raw.shape == d.shape:
            np.copyto(d, raw, casting="unsafe")  # converted in one pass, into kept memory
        else:
            d[...] = pad4(raw.astype(np.float32, copy=False))
        if raw.dtype.kind == "f":
            check_finite(d, f"frames {lo}-{hi - 1}")
        dst.sub_(self.mean).div_(self.std)

    def get(self, plane: int | None, lo: int, hi: int) -> torch.Tensor:
        h, w = self.data.shape[-2:]
        block = self._buffer(plane, (hi - lo, h + (-h) % 4, w + (-w) % 4))
        prev = self.held.get(plane)
        if prev is not None and prev[0] <= lo < prev[1] <= hi:
            n_old = prev[1] - lo
            block[:n_old].copy_(prev[2][lo - prev[0]:])
            if hi > prev[1]:
                self._load(block[n_old:], prev[1], hi, plane)
        else:
            self._load(block, lo, hi, plane)
        if self.keep:
            if prev is not None:
                self.spare[plane] = prev[2]
            self.held[plane] = (lo, hi, block)
        else:
            self.spare[None] = block
        return block


def gather(frames: torch.Tensor, idx: np.ndarray, buf: torch.Tensor) -> torch.Tensor:
    """The net's input for windows ``idx`` (B, m) of unshuffled ``frames``, built in
    ``buf`` (>= B, H/2, W/2, m, 4): (B, 4 m, H/2, W/2) in channels-last memory, which the
    first convolution reads twice as fast as the (B, C, H, W) layout, with no reorder."""
    for row, dst in zip(idx, buf, strict=False):
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
