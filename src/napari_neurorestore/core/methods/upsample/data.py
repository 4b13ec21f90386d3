"""Training data of zero-shot upsampling: the input (or sampled blocks of it) normalised by
robust percentiles, the optional simulated prior volume, and the sampler of (coarse, fine)
pairs (crops, flipped/transposed, binned by the factors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...io import check_finite
from .net import bin_down
from .spec import UpsampleParams

#: float32 bytes of the input kept in memory for training (larger inputs: sampled blocks)
TRAIN_CACHE_BYTES = 512 * 2**20
#: fraction of each batch drawn from the simulated volume when ``prior="simulated"``
PRIOR_FRACTION = 0.5
#: normalisation percentiles
NORM_PCT = (0.5, 99.9)


def _robust_norm(x: np.ndarray) -> tuple[float, float]:
    flat = x.ravel()
    if flat.size > 2_000_000:
        flat = flat[:: flat.size // 2_000_000]
    lo, hi = np.percentile(flat, NORM_PCT)
    scale = float(hi - lo)
    if not scale > 0:
        scale = float(flat.std()) or 1.0
    return float(lo), scale


def _load_training_volume(data: Any, rng: np.random.Generator, crop: tuple[int, ...]
                          ) -> list[np.ndarray]:
    """The input as float32 (whole when it fits TRAIN_CACHE_BYTES, else random blocks)."""
    n_bytes = 4 * int(np.prod(data.shape))
    if n_bytes <= TRAIN_CACHE_BYTES:
        block = np.asarray(data, np.float32)
        check_finite(block)
        return [block]
    blk = tuple(min(s, max(4 * c, 128)) for s, c in zip(data.shape, crop, strict=True))
    n_blocks = max(1, TRAIN_CACHE_BYTES // (4 * int(np.prod(blk))))
    out = []
    for _ in range(n_blocks):
        start = [int(rng.integers(0, s - b + 1)) for s, b in zip(data.shape, blk, strict=True)]
        sl = tuple(slice(a, a + b) for a, b in zip(start, blk, strict=True))
        block = np.asarray(data[sl], np.float32)
        check_finite(block)
        out.append(block)
    return out


class _PairSampler:
    """Random (coarse, fine) training pairs: a crop, flipped/transposed, binned by the
    factors. Sources are lists of normalised float32 arrays."""

    def __init__(self, sources: list[np.ndarray], factors: tuple[int, ...], patch: int,
                 rng: np.random.Generator):
        self.sources = sources
        self.factors = factors
        self.rng = rng
        self.crop = tuple(max(f, (patch // f) * f) for f in factors)
        # a volume thinner than a crop (few z-slices) is mirrored to the crop's size, as
        # inference mirrors it: training crops then see the context inference will see
        padded = []
        for src in sources:
            pad = [((c - n + 1) // 2, (c - n) // 2 + 1) if n < c else (0, 0)
                   for n, c in zip(src.shape, self.crop, strict=True)]
            padded.append(np.pad(src, pad, mode="symmetric") if any(map(sum, pad)) else src)
        sources = self.sources = padded
        sizes = np.array([s.size for s in sources], float)
        self.p = sizes / sizes.sum()
        self.scale_augment = False

    def _zoom(self, block: np.ndarray, u: float) -> np.ndarray:
        """Interpolate ``block`` up by ``u`` along the upsampled axes; centre-crop to
        ``self.crop``."""
        t = torch.from_numpy(np.ascontiguousarray(block))[None, None]
        size = [c if f == 1 else max(c, int(round(b * u)))
                for b, c, f in zip(block.shape, self.crop, self.factors, strict=True)]
        mode = "trilinear" if block.ndim == 3 else "bicubic"
        z = torch.nn.functional.interpolate(t, size=size, mode=mode, align_corners=False)[0, 0]
        off = [(s - c) // 2 for s, c in zip(size, self.crop, strict=True)]
        return z[tuple(slice(o, o + c) for o, c in zip(off, self.crop, strict=True))].numpy()

    def sample(self, n: int) -> np.ndarray:
        """``n`` fine-grid targets (n, 1, *crop); the network inputs are their binning."""
        rng, nd = self.rng, len(self.factors)
        ys = np.empty((n, 1, *self.crop), np.float32)
        # scale augmentation: a smaller crop interpolated up by u in [1, f] (per batch), so
        # that structures also appear at the size they have at the scale we apply the net
        u = 1.0
        if self.scale_augment and rng.random() < 0.5:
            u = float(rng.uniform(1.0, max(self.factors)))
        crop = self.crop
        if u > 1.0:
            crop = tuple(c if f == 1 else min(c, int(np.ceil(c / u)) + 1)
                         for c, f in zip(self.crop, self.factors, strict=True))
        for i in range(n):
            src = self.sources[int(rng.choice(len(self.sources), p=self.p))]
            st = [int(rng.integers(0, s - c + 1)) for s, c in zip(src.shape, crop, strict=True)]
            block = src[tuple(slice(a, a + c) for a, c in zip(st, crop, strict=True))]
            if u > 1.0:
                block = self._zoom(block, u)
            ys[i, 0] = block
        # one random flip set / transpose per batch (same for input and target)
        for ax in range(nd):
            if rng.random() < 0.5:
                ys = np.flip(ys, axis=2 + ax)
        if self.crop[-1] == self.crop[-2] and self.factors[-1] == self.factors[-2] \
                and rng.random() < 0.5:
            ys = np.swapaxes(ys, -1, -2)
        return np.ascontiguousarray(ys)


def _make_batches(params: UpsampleParams, sampler: _PairSampler, prior: _PairSampler | None,
                  factors: tuple[int, ...], device: torch.device):
    def sample_batch():
        b = params.batch_size
        if prior is not None:
            n_prior = int(round(b * PRIOR_FRACTION))
            parts = []
            if b - n_prior:
                parts.append(sampler.sample(b - n_prior))
            if n_prior:
                parts.append(prior.sample(n_prior))
            y = np.concatenate(parts) if len(parts) > 1 else parts[0]
        else:
            y = sampler.sample(b)
        yt = torch.from_numpy(y).to(device)
        return bin_down(yt, factors), yt

    return sample_batch
