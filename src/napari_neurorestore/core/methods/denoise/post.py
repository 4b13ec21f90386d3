"""The denoiser's torch steps after its network, on (B, 1, H, W) normalised frames: the
centre-frame correction ``out = f + k * (x_t - f)`` and the transient step (both described
in :mod:`.centre`, which fits them), and the measurement of the transient step's
threshold at training time."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn.functional import conv2d, pixel_shuffle, pixel_unshuffle

from . import centre as denoise_centre
from .centre import TRANSIENT_SIGMA, TRANSIENT_TAU


def centre_correction(kernel: Any, dev: torch.device):
    """The function ``r -> k * r`` (reflect-padded cross-correlation) of a model's centre
    kernel, on (B, 1, H, W) residuals; None without a kernel. Frames larger than the
    kernel use its 4-channel polyphase form (the same result, several times faster)."""
    if kernel is None:
        return None
    k = torch.tensor(kernel, dtype=torch.float32, device=dev)[None, None]
    kr = k.shape[-1] // 2
    kp, pad = denoise_centre.polyphase_kernel(np.asarray(kernel, np.float32))
    kp = torch.from_numpy(kp).to(dev)

    def correct(r: torch.Tensor) -> torch.Tensor:
        if min(r.shape[-2:]) <= pad:
            return conv2d(torch.nn.functional.pad(r, [kr] * 4, mode="reflect"), k)
        ru = pixel_unshuffle(torch.nn.functional.pad(r, [pad] * 4, mode="reflect"), 2)
        return pixel_shuffle(conv2d(ru, kp), 2)

    return correct


def band(res: torch.Tensor, sigma: float) -> torch.Tensor:
    """The transient step's band of (B, 1, H, W) residuals: a 2x2 mean, a Gaussian of width
    sigma / 2 at that half resolution, and a bilinear return to full size (4x cheaper than
    the full-resolution Gaussian, and nearly the same band)."""
    h, w = res.shape[-2:]
    half = blur(torch.nn.functional.avg_pool2d(res, 2, ceil_mode=True), sigma / 2)
    return torch.nn.functional.interpolate(half, size=(h, w), mode="bilinear", align_corners=False)


def blur(x: torch.Tensor, s: float) -> torch.Tensor:
    """Separable Gaussian of width ``s`` (pixels; cut at 3 s, reflect-padded) of
    (B, 1, H, W) images."""
    r = max(1, int(math.ceil(3 * s)))
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / s) ** 2)
    g = g / g.sum()
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    x = conv2d(torch.nn.functional.pad(x, [0, 0, r, r], mode=mode), g.view(1, 1, -1, 1))
    return conv2d(torch.nn.functional.pad(x, [r, r, 0, 0], mode=mode), g.view(1, 1, 1, -1))


def gauss_halo(spec: Any) -> int:
    """Frames each side that a model's blend with the Gaussian (:mod:`.held`) reads
    (0 without one)."""
    if not spec or float(spec.get("weight", 0)) <= 0:
        return 0
    return max(1, int(math.ceil(3 * float(spec["sigma_t"]))))


def blind_gaussian(block: torch.Tensor, ts, first: int, n_total: int, sigma_t: float,
                   sigma_xy: float) -> torch.Tensor:
    """The blind Gaussian filter of frames ``ts`` (movie indices): a Gaussian mean of
    width ``sigma_t`` over the neighbours within 3 sigma_t (the frame itself weighted 0,
    cut at the movie's ends, renormalised), then a spatial Gaussian of width ``sigma_xy``.
    ``block`` (n, H, W) holds movie frames ``first:first + n`` of a movie of ``n_total``.
    Returns (len(ts), 1, H, W)."""
    ts = np.asarray(ts)
    r = max(1, int(math.ceil(3 * sigma_t)))
    lo, hi = max(0, int(ts.min()) - r), min(n_total, int(ts.max()) + r + 1)
    if lo < first or hi > first + len(block):
        raise ValueError("the block does not hold the Gaussian's frames")
    d = np.arange(lo, hi)[None, :] - ts[:, None]
    wts = np.where((np.abs(d) <= r) & (d != 0), np.exp(-0.5 * (d / sigma_t) ** 2), 0.0)
    wts = torch.from_numpy((wts / wts.sum(1, keepdims=True)).astype(np.float32)).to(block.device)
    frames = block[lo - first:hi - first]
    g = (wts @ frames.reshape(len(frames), -1).to(wts)).reshape(len(ts), 1, *frames.shape[-2:])
    return blur(g, sigma_xy) if sigma_xy > 0 else g


def transient_step(spec: Any):
    """The function ``(out, x_t) -> out + soft(band(x_t - out), threshold)`` of a model's
    transient step (see :mod:`.centre`), on (B, 1, H, W); None without one."""
    if not spec:
        return None
    sigma, thr = float(spec["sigma"]), float(spec["threshold"])

    def step(out: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        b = band(centre - out, sigma)
        # soft(b, thr) = sign(b) max(|b| - thr, 0) = b - clip(b, -thr, thr): two passes
        return b.sub_(b.clamp(-thr, thr)).add_(out)

    return step


def transient_threshold(seg: np.ndarray, ts: np.ndarray, kernel) -> float:
    """TRANSIENT_TAU standard deviations of the noise in the transient step's band: the
    recording's noise (second temporal differences of frames ``ts``) through the same
    centre-frame correction and band."""
    d = (seg[ts] - 0.5 * (seg[ts - 1] + seg[ts + 1])) / math.sqrt(1.5)
    n = torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32))[:, None]
    correct = centre_correction(kernel, torch.device("cpu"))
    if correct is not None:
        n = n - correct(n)
    b = band(n, TRANSIENT_SIGMA)
    return float(TRANSIENT_TAU * b.std())
