"""The geometry of a sparse-axis scan (numpy only): a scan that kept one line in M
(acquired line i at output line i*M), the input checks, the cubic baseline, and uniform
access to its frames with the sparse axis first. :mod:`.spec` (the method's contract),
:mod:`.heavy`, :mod:`.check` and :mod:`.chain` share it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import InputError
from ...io import check_dtype, check_finite


def check_input(data: Any, factor: int, axis: str = "y", *, sparse: bool = True) -> None:
    """Validate a (y, x) image, a (t|z, y, x) stack or a (t, z, y, x) movie.

    ``sparse``: ``data`` holds the acquired lines only (at least 2 of them); otherwise it
    is a fully sampled stack to simulate from (at least 2 * factor lines).
    """
    check_dtype(data)
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) not in (2, 3, 4):
        raise InputError(
            f"expected a (y, x) image, a (t, y, x) or (z, y, x) stack or a (t, z, y, x) movie, "
            f"got {len(shape)}D data of shape {shape}")
    ax = -2 if axis == "y" else -1
    other = -1 if axis == "y" else -2
    n = shape[ax]
    if sparse and n < 2:
        raise InputError(f"only {n} acquired line(s) along {axis}: need at least 2")
    if not sparse and n < 2 * factor:
        raise InputError(
            f"the stack has {n} lines along {axis}; simulating a skip factor of {factor} "
            f"needs at least {2 * factor} (factor {factor} is larger than the data allows)")
    if shape[other] < 2 * factor:
        raise InputError(
            f"the fully sampled axis has {shape[other]} pixels; training with a skip factor of "
            f"{factor} needs at least {2 * factor} (use a smaller factor)")
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap) and data.nbytes < 2**31:
        check_finite(data)


def check_simulation(full: Any, labels: Any = None) -> None:
    """Refuse a simulation input (and its ROI labels) that simulate() cannot take."""
    if np.ndim(full) == 4:
        raise InputError("simulate mode takes a (y, x) image or a (t|z, y, x) stack")
    if labels is not None and tuple(np.shape(labels)) != tuple(np.shape(full)[-2:]):
        raise InputError(f"labels of shape {np.shape(labels)} do not match frames of "
                         f"{tuple(np.shape(full)[-2:])}")


def check_reference(data: Any, reference: Any, factor: int, axis: str = "y") -> None:
    """Refuse a reference stack that is not the fully sampled frames of the same rig as the
    sparse ``data``: its lines, kept every ``factor``-th, give the input's lines (as
    :func:`make_sparse` does), and its lines are as long as the input's."""
    shape, ref = tuple(np.shape(data)), tuple(np.shape(reference))
    ax, other = (-2, -1) if axis == "y" else (-1, -2)
    if len(ref) not in (2, 3, 4):
        raise InputError(f"the reference must be a (y, x) image or a (t|z, y, x) stack of "
                         f"fully sampled frames, got shape {ref}")
    lo, hi = (shape[ax] - 1) * factor + 1, shape[ax] * factor
    if not lo <= ref[ax] <= hi or ref[other] != shape[other]:
        want = f"{lo}-{hi}" if lo < hi else f"{hi}"
        raise InputError(
            f"the reference's frames ({ref[-2]} x {ref[-1]}) do not match the input's: fully "
            f"sampled frames of the same rig have {want} lines along {axis} (the input's "
            f"{shape[ax]} lines x factor {factor}) of {shape[other]} pixels")


def output_shape(shape: tuple[int, ...], factor: int, axis: str = "y") -> tuple[int, ...]:
    """Shape of the reconstruction of sparse data of ``shape``."""
    s = list(shape)
    s[-2 if axis == "y" else -1] *= factor
    return tuple(s)


def scale_factors(ndim: int, factor: int, axis: str = "y") -> tuple[float, ...]:
    """Per-axis factors of the output's pixel size relative to the input's."""
    f = [1.0] * ndim
    f[-2 if axis == "y" else -1] = 1.0 / factor
    return tuple(f)


def make_sparse(full: Any, factor: int, axis: str = "y", phase: int = 0) -> np.ndarray:
    """Keep every ``factor``-th line (from ``phase``) of a fully sampled stack, as a scan
    that skips lines would have acquired it."""
    sl = [slice(None)] * np.ndim(full)
    sl[-2 if axis == "y" else -1] = slice(phase, None, factor)
    return np.ascontiguousarray(np.asarray(full[tuple(sl)]))


def _keys_weights(frac: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic-convolution weights of the samples at offsets -1, 0, 1, 2."""
    d = np.stack([1 + frac, frac, 1 - frac, 2 - frac], axis=-1)
    w = np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                 a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a)
    return w


def cubic_upsample(sparse: np.ndarray, factor: int, axis: str = "y") -> np.ndarray:
    """Classical baseline: cubic (Keys, a = -0.5) interpolation along the sparse axis, with
    acquired line i at output line i * factor (linear extrapolation past the ends)."""
    a = np.asarray(sparse, np.float32)
    ax = a.ndim - 2 if axis == "y" else a.ndim - 1
    a = np.moveaxis(a, ax, -1)
    n = a.shape[-1]
    d0, d1 = a[..., :1] - a[..., 1:2], a[..., -1:] - a[..., -2:-1]  # linear extrapolation
    pad = np.concatenate([a[..., :1] + d0, a, a[..., -1:] + d1, a[..., -1:] + 2 * d1],
                         axis=-1)  # index i -> i + 1
    pos = np.arange(n * factor) / factor
    i0 = np.floor(pos).astype(int)
    w = _keys_weights(pos - i0).astype(np.float32)
    out = sum(pad[..., i0 + k] * w[:, k] for k in range(4))
    return np.ascontiguousarray(np.moveaxis(out.astype(np.float32), -1, ax))


class _Frames:
    """Uniform access to (y, x), (n, y, x) and (t, z, y, x) data as planes of frames
    (n, a, b), with the sparse axis first (a) whatever ``axis`` is."""

    def __init__(self, data: Any, axis: str):
        self.data = data
        self.axis = axis
        self.ndim = len(data.shape)
        self.n = 1 if self.ndim == 2 else data.shape[0]
        self.planes: list[int | None] = [None] if self.ndim <= 3 else list(range(data.shape[1]))
        a, b = data.shape[-2:]
        self.a, self.b = (a, b) if axis == "y" else (b, a)

    def read(self, t0: int, t1: int, plane: int | None) -> np.ndarray:
        if self.ndim == 2:
            block = np.asarray(self.data)[None]
        elif plane is None:
            block = self.data[t0:t1]
        else:
            block = self.data[t0:t1, plane]
        block = np.asarray(block, dtype=np.float32)
        check_finite(block, f"frames {t0}-{t1 - 1}")
        return block if self.axis == "y" else np.swapaxes(block, -1, -2)

    def write(self, out: Any, t0: int, t1: int, plane: int | None, block: np.ndarray) -> None:
        if self.axis == "x":
            block = np.swapaxes(block, -1, -2)
        if self.ndim == 2:
            out[...] = block[0]
        elif plane is None:
            out[t0:t1] = block
        else:
            out[t0:t1, plane] = block


def frame_index(ts: np.ndarray, k: int, n: int) -> np.ndarray:
    """Indices of frames t-k..t+k for centres ``ts`` in ``n`` frames: a neighbour beyond an
    end is mirrored about the centre (t - j -> t + j), then clipped. (len(ts), 2k + 1)."""
    offs = np.arange(-k, k + 1)
    ts = np.asarray(ts)[:, None]
    idx = ts + offs[None]
    idx = np.where((idx < 0) | (idx >= n), ts - offs[None], idx)
    return np.clip(idx, 0, n - 1)
