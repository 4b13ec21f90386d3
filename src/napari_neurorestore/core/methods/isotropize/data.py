"""Training data of axial isotropization: the volume's lateral slices held for training
(and, for the learned degradation, its z-interpolated axial slices), and the degrader that
turns sharp lateral crops into pixel-aligned (degraded, sharp) pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...io import check_finite
from .axial import _mirror, cubic_weights, interp_z

#: bytes of float32 lateral slices kept in memory for training (a larger volume is sampled)
TRAIN_CACHE_BYTES = 512 * 2**20
#: one lateral slice in this many is held out of training for the self-check (when at least
#: twice as many slices are kept)
HOLDOUT_EVERY = 8
#: a shorter stack than 2 HOLDOUT_EVERY holds out its middle slice if it has at least this many
MIN_SLICES_FOR_HOLDOUT = 6
#: the fraction of training crops squeezed along the degraded axis (``squeeze_augment``)
SQUEEZE_FRACTION = 0.5


def _is_integer(r: float) -> bool:
    return abs(r - round(r)) < 1e-9


class _Degrader:
    """Make (degraded, sharp) training pairs from sharp lateral crops, in torch.

    A crop ``S`` (B, Hs, P) (degraded axis first, Hs = P + 2 * margin) is blurred along
    axis 1, sampled at rows phase + j R, topped up with noise, interpolated back to the
    fine rows margin .. margin + P with the inference's Keys interpolation, and returned
    with the sharp rows margin .. margin + P as the target.
    """

    def __init__(self, ratio: float, patch: int, margin: int, noise: tuple[float, float],
                 rng: np.random.Generator, device: torch.device):
        self.r = float(ratio)
        self.p = patch
        self.m = margin
        self.hs = patch + 2 * margin
        self.noise = noise
        self.rng = rng
        self.device = device

    def _phase(self) -> float:
        if _is_integer(self.r):
            return float(self.rng.integers(0, int(round(self.r))))
        return float(self.rng.uniform(0, self.r))

    def _geometry(self, phase: float):
        n = int(math.floor((self.hs - 1 - phase) / self.r)) + 1
        s = phase + self.r * np.arange(n)
        rows = np.arange(self.m, self.m + self.p)
        idx, w = cubic_weights((rows - phase) / self.r, n)
        up = np.zeros((self.p, n))
        np.add.at(up, (np.repeat(np.arange(self.p), 4), idx.ravel()), w.ravel())
        return s, torch.from_numpy(up.astype(np.float32)).to(self.device)

    def gaussian_matrix(self, s: np.ndarray, sigma: float) -> torch.Tensor:
        i = np.arange(self.hs)
        d = s[:, None] - i[None, :]
        if sigma > 0:
            a = np.exp(-0.5 * (d / sigma) ** 2)
        else:  # no blur: linear interpolation at s
            a = np.clip(1 - np.abs(d), 0, None)
        a /= a.sum(1, keepdims=True)
        return torch.from_numpy(a.astype(np.float32)).to(self.device)

    def kernel_matrix(self, s: np.ndarray, kernel: torch.Tensor) -> torch.Tensor:
        """Rows = the blurred (by ``kernel``, centred, odd length) signal at ``s``; linear
        interpolation between fine rows; differentiable in ``kernel``."""
        q = (kernel.shape[0] - 1) // 2
        i = torch.arange(self.hs, device=self.device)
        d = i[None, :] - i[:, None] + q  # K[r, i] = k[i - r + q]
        inside = (d >= 0) & (d <= 2 * q)
        conv = torch.where(inside, kernel[d.clamp(0, 2 * q)], torch.zeros((), device=self.device))
        conv = conv / conv.sum(1, keepdim=True)
        lin = np.clip(1 - np.abs(s[:, None] - np.arange(self.hs)[None, :]), 0, None)
        lin = torch.from_numpy(lin.astype(np.float32)).to(self.device)
        return lin @ conv

    def __call__(self, sharp: torch.Tensor, sigma: float | None = None,
                 kernel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        s, up = self._geometry(self._phase())
        a = self.gaussian_matrix(s, sigma) if kernel is None else self.kernel_matrix(s, kernel)
        t = a @ sharp  # (B, n, P) the acquired rows
        na, nb = self.noise
        if na > 0 or nb > 0:
            # blurring averaged the noise down by sum(a^2); top it up to the data's level
            var = (na * t.detach() + nb).clamp_min(0) * (1 - (a.detach() ** 2).sum(1)).clamp_min(0)[:, None]
            gen = torch.Generator(device="cpu").manual_seed(int(self.rng.integers(2**31)))
            eps = torch.randn(t.shape, generator=gen).to(self.device)
            t = t + var.sqrt() * eps
        x = up @ t
        y = sharp[:, self.m:self.m + self.p]
        return x, y


class _Source:
    """The normalised volume held for training: lateral slices (reflect-padded by the
    degradation margin) and, for the learned mode, z-interpolated axial slices."""

    def __init__(self, data: Any, ratio: float, patch: int, margin: int,
                 rng: np.random.Generator, need_axial: bool):
        n, h, w = data.shape
        slice_bytes = 4 * h * w
        keep = max(1, min(n, TRAIN_CACHE_BYTES // max(slice_bytes, 1)))
        zs = np.unique(np.linspace(0, n - 1, keep).round().astype(int))
        vol = np.stack([np.asarray(data[z], np.float32) for z in zs])
        check_finite(vol)
        sample = vol[:, ::max(1, h // 128), ::max(1, w // 128)]
        self.mean = float(sample.mean())
        self.std = float(sample.std()) or 1.0
        self.raw_stats = (self.mean, self.std)
        vol = (vol - self.mean) / self.std
        self.patch = max(4, min(patch, h, w) // 4 * 4)
        self.margin = margin
        # every HOLDOUT_EVERY-th slice is kept out of training for the self-check (the
        # middle one of a short stack: on the training slices the check ran 6 dB high)
        held = np.zeros(len(vol), bool)
        if len(vol) >= 2 * HOLDOUT_EVERY:
            held[HOLDOUT_EVERY // 2::HOLDOUT_EVERY] = True
        elif len(vol) >= MIN_SLICES_FOR_HOLDOUT:
            held[len(vol) // 2] = True
        self.held_out = bool(held.any())
        pad = ((0, 0), (margin, margin), (margin, margin))
        self.slices = np.pad(vol[~held], pad, mode="reflect")
        self.check_slices = np.pad(vol[held], pad, mode="reflect") if self.held_out else self.slices
        self.h, self.w = h, w
        self.rng = rng
        self.squeeze = 1.0  # lowest squeeze factor of the training crops (1: none)
        self.axial = None
        if need_axial:
            side = 160
            y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
            crop = np.asarray(data[:, y0:y0 + side, x0:x0 + side], np.float32)
            self.axial = (interp_z(crop, ratio) - self.mean) / self.std

    def lateral(self, batch: int, check: bool = False,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """Sharp crops (B, P + 2 margin, P), the degraded axis first (y or x at random);
        from the held-out slices with ``check`` (the training slices if none are held)."""
        p, m = self.patch, self.margin
        hs = p + 2 * m
        rng = self.rng if rng is None else rng
        slices = self.check_slices if check else self.slices
        out = np.empty((batch, hs, p), np.float32)
        for b in range(batch):
            if not check and self.squeeze < 1 and rng.random() < SQUEEZE_FRACTION:
                out[b] = self._squeezed(slices, rng.uniform(self.squeeze, 1.0), rng)
                continue
            z = rng.integers(len(slices))
            y0 = rng.integers(0, self.h - p + 1)
            x0 = rng.integers(0, self.w - p + 1)
            if rng.random() < 0.5:  # degrade along y
                out[b] = slices[z, y0:y0 + hs, x0 + m:x0 + m + p]
            else:  # degrade along x: transpose so the degraded axis comes first
                out[b] = slices[z, y0 + m:y0 + m + p, x0:x0 + hs].T
        return out

    def _squeezed(self, slices: np.ndarray, factor: float, rng: np.random.Generator
                  ) -> np.ndarray:
        """A crop (P + 2 margin, P) whose degraded axis is ``1 / factor`` times as many
        source lines averaged down (mirrored past the slice's edge): structure finer along
        that axis than the lateral slices show, as z has it when its step is coarser than
        the stated ratio or the structure is not alike along z and laterally."""
        p, m = self.patch, self.margin
        hs = p + 2 * m
        n = int(math.ceil(hs / factor))
        sl = slices[rng.integers(len(slices))]
        if rng.random() < 0.5:  # degrade along x: that axis first
            sl = sl.T
        rows = _mirror(rng.integers(0, sl.shape[0]) + np.arange(n), sl.shape[0])
        x0 = m + rng.integers(0, sl.shape[1] - 2 * m - p + 1)
        crop = torch.from_numpy(np.ascontiguousarray(sl[rows, x0:x0 + p]))[None, None]
        return F.interpolate(crop, size=(hs, p), mode="area")[0, 0].numpy()

    def axial_crops(self, batch: int, size: int) -> np.ndarray:
        """Real axial crops (B, size, size) from xz and yz slices of the interpolated volume."""
        a = self.axial
        nz, h, w = a.shape
        sz, sl = min(size, nz), min(size, h, w)
        out = np.empty((batch, sz, sl), np.float32)
        for b in range(batch):
            z0 = self.rng.integers(0, nz - sz + 1)
            if self.rng.random() < 0.5:
                y = self.rng.integers(h)
                x0 = self.rng.integers(0, w - sl + 1)
                out[b] = a[z0:z0 + sz, y, x0:x0 + sl]
            else:
                x = self.rng.integers(w)
                y0 = self.rng.integers(0, h - sl + 1)
                out[b] = a[z0:z0 + sz, y0:y0 + sl, x]
        return out


def _flip(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
    if rng.random() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if rng.random() < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    return x, y
