"""Sub-pixel registration of the temporal denoiser's prediction to the frame it restores.

The temporal network predicts frame t from its neighbours, so it predicts the scene where
the neighbours saw it. When the sample moves from frame to frame (residual motion after
motion correction, or none done), frame t is somewhere else by a fraction of a pixel, and
the prediction is off by ``grad(f) . d`` at every edge: a loss that no amount of training
removes. Here the shift ``d`` of each frame is fitted by least squares between the
low-passed frame and the low-passed prediction (two numbers per frame, from thousands of
pixels, so frame t's noise barely leaks in), and the prediction is moved there with a
Fourier shift.

Whether to do it at all is decided on the recording: :func:`motion_cv` fits the shift on
one half of a frame and scores it on the other half, whose noise is independent. Without
real motion a fitted shift is noise and makes the other half worse, so registration stays
off (it cost 0.2-2 % of the error on real, motion-corrected recordings when forced on).
"""

from __future__ import annotations

import math

import torch

#: width (pixels) of the Gaussian low-pass applied before fitting shifts
LOWPASS_SIGMA = 1.0
#: Gauss-Newton iterations of the shift fit
ITERATIONS = 1
#: reflect padding (pixels) before the Fourier shift; shifts are clipped to half of it
PAD = 8
#: pixels left out at each frame edge when fitting (differences there are one-sided)
EDGE = 3
#: registration is switched on when the held-out half's error drops by more than this share
CV_THRESHOLD = 0.002


def _freqs(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    return fy, fx


def _spectra(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """rfft2 of (B, H, W) frames reflect-padded by PAD (so shifts do not wrap edges)."""
    h, w = x.shape[-2:]
    mode = "reflect" if min(h, w) > PAD else "replicate"
    xp = torch.nn.functional.pad(x[:, None], [PAD] * 4, mode=mode)[:, 0]
    return torch.fft.rfft2(xp), h, w


def _back(spec: torch.Tensor, h: int, w: int) -> torch.Tensor:
    full = torch.fft.irfft2(spec, s=(h + 2 * PAD, w + 2 * PAD))
    return full[:, PAD:PAD + h, PAD:PAD + w]


def _phase(d: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """exp(2 pi i f . d): moves content so that out(p) = in(p + d)."""
    arg = 2 * math.pi * (fy[None] * d[:, 0, None, None] + fx[None] * d[:, 1, None, None])
    return torch.polar(torch.ones_like(arg), arg)


def _gradients(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of (B, H, W), on the interior (EDGE pixels cut at each side)."""
    e = EDGE
    gy = 0.5 * (a[:, e + 1:a.shape[1] - e + 1, e:a.shape[2] - e] - a[:, e - 1:a.shape[1] - e - 1, e:a.shape[2] - e])
    gx = 0.5 * (a[:, e:a.shape[1] - e, e + 1:a.shape[2] - e + 1] - a[:, e:a.shape[1] - e, e - 1:a.shape[2] - e - 1])
    return gy, gx


def _interior(a: torch.Tensor) -> torch.Tensor:
    e = EDGE
    return a[:, e:a.shape[1] - e, e:a.shape[2] - e]


def _solve(gy, gx, r) -> torch.Tensor:
    """Least-squares (dy, dx) per frame of r ~ gy dy + gx dx; 0 where it is ill-posed."""
    dims = (1, 2)
    a, b, c = (gy * gy).sum(dims), (gy * gx).sum(dims), (gx * gx).sum(dims)
    u, v = (gy * r).sum(dims), (gx * r).sum(dims)
    det = a * c - b * b
    ok = det > 1e-9 * (a * c).clamp_min(1e-30)
    det = torch.where(ok, det, torch.ones_like(det))
    dy = torch.where(ok, (c * u - b * v) / det, torch.zeros_like(det))
    dx = torch.where(ok, (a * v - b * u) / det, torch.zeros_like(det))
    return torch.stack([dy, dx], 1)


def _low_passed(centre: torch.Tensor, pred: torch.Tensor):
    """What both the fit and its cross-validation start from: the frequency grid, the
    low-pass, the prediction's spectrum, the low-passed frames and the prediction's
    gradient (the Jacobian at d = 0), all on the interior."""
    h, w = pred.shape[-2:]
    fy, fx = _freqs(h + 2 * PAD, w + 2 * PAD, pred.device)
    lp = torch.exp(-2 * (math.pi * LOWPASS_SIGMA) ** 2 * (fy**2 + fx**2))
    sp, _, _ = _spectra(pred.float())
    sc, _, _ = _spectra(centre.float())
    c_lp, p_lp = _back(sc * lp, h, w), _back(sp * lp, h, w)
    gy, gx = _gradients(p_lp)
    return fy, fx, lp, sp, _interior(c_lp), _interior(p_lp), gy, gx


def register(centre: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each predicted frame onto its centre frame: (B, H, W) each -> (shifted
    prediction (B, H, W), shifts (B, 2) in pixels, (dy, dx))."""
    h, w = pred.shape[-2:]
    if min(h, w) <= 2 * EDGE + 2:
        return pred, torch.zeros((len(pred), 2), dtype=pred.dtype, device=pred.device)
    fy, fx, lp, sp, c_lp, p_lp, gy, gx = _low_passed(centre, pred)
    d = torch.zeros((len(pred), 2), dtype=torch.float32, device=pred.device)
    r = c_lp - p_lp
    for it in range(ITERATIONS):
        d = (d + _solve(gy, gx, r)).clamp(-PAD / 2, PAD / 2)
        if it < ITERATIONS - 1:
            r = c_lp - _interior(_back(sp * lp * _phase(d, fy, fx), h, w))
    out = _back(sp * _phase(d, fy, fx), h, w).to(pred.dtype)
    return out, d


def motion_cv(centre: torch.Tensor, pred: torch.Tensor, gap: int = 4) -> float:
    """Relative change of the held-out half's squared residual (low-passed) when the shift
    fitted on the other half is applied, summed over both halves and all frames: below 0
    when the frames really move against the prediction. (B, H, W) each."""
    h, w = pred.shape[-2:]
    if min(h, w) < 4 * EDGE + 2 * gap + 8:
        return 0.0
    *_, c_lp, p_lp, gy, gx = _low_passed(centre, pred)
    r = c_lp - p_lp
    mid = r.shape[2] // 2
    halves = [slice(0, mid - gap // 2), slice(mid + gap // 2, r.shape[2])]
    change = base = 0.0
    for fit, score in (halves, halves[::-1]):
        d = _solve(gy[..., fit], gx[..., fit], r[..., fit])
        rs = r[..., score]
        moved = rs - gy[..., score] * d[:, 0, None, None] - gx[..., score] * d[:, 1, None, None]
        change += float((moved**2).sum() - (rs**2).sum())
        base += float((rs**2).sum())
    return change / max(base, 1e-30)
