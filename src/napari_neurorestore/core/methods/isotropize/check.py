"""The truth-free self-check of axial isotropization (torch).

Lateral slices held out of training are degraded the way z is (the same blur, sampling,
noise and interpolation as the training pairs) and restored by the trained network; the
check compares its error with that of the cubic interpolation it starts from. It is the
one place where the volume itself shows what the restorer gains on this structure at this
ratio and blur, so it says when a setting is past what the method can restore here. Its
numbers are about lateral structure degraded by the model of z that training used: a wrong
model of the axial blur (e.g. a misestimated sigma_z) is not seen by it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .data import _Degrader, _Source

#: crops of the check and the border left out of its score (the zero-padded convolutions'
#: edge, which inference never uses: its blocks carry context)
CHECK_CROPS = 32
CHECK_BORDER = 8


def held_out_check(net: torch.nn.Module, src: _Source, ratio: float,
                   noise: tuple[float, float], device: torch.device, sigma: float | None,
                   kernel: torch.Tensor | None = None, seed: int = 0) -> dict[str, Any]:
    """Gain of the restorer over cubic interpolation on held-out lateral slices.

    Returns ``gain_db`` (10 log10 of the cubic's over the restorer's mean squared error
    against the sharp slices: the PSNR gain, whatever the range), ``gain_signal_db`` (the
    same with the sharp slices' own noise variance, from the noise model, taken out of both
    errors: the gain against noise-free structure; None when the restorer's error is within
    the noise), ``held_out`` (whether the slices were kept out of training) and ``crops``.
    """
    rng = np.random.default_rng(seed)
    deg = _Degrader(ratio, src.patch, src.margin, noise, rng, device)
    sharp = torch.from_numpy(src.lateral(CHECK_CROPS, check=True, rng=rng)).to(device)
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        x, y = deg(sharp, sigma=sigma, kernel=kernel)
        xin = x[:, None]
        if device.type == "cpu":
            xin = xin.contiguous(memory_format=torch.channels_last)
        pred = net(xin)[:, 0]
    net.train(was_training)
    b = CHECK_BORDER if min(y.shape[-2:]) > 4 * CHECK_BORDER else 0
    inner = (slice(None), slice(b, y.shape[-2] - b), slice(b, y.shape[-1] - b))
    x, y, pred = (t[inner].double().cpu().numpy() for t in (x, y, pred))
    mse_c = float(np.mean((x - y) ** 2))
    mse_n = float(np.mean((pred - y) ** 2))
    na, nb = noise
    nv = float(np.mean(np.clip(na * y + nb, 0, None)))
    gain = 10 * math.log10(mse_c / mse_n) if mse_n > 0 and mse_c > 0 else float("nan")
    clean = None
    if mse_n > 1.05 * nv and mse_c > mse_n:
        clean = 10 * math.log10((mse_c - nv) / (mse_n - nv))
    return {"gain_db": round(gain, 2), "gain_signal_db": None if clean is None else round(clean, 2),
            "held_out": bool(src.held_out), "crops": CHECK_CROPS,
            "noise_fraction": round(nv / mse_c, 3) if mse_c > 0 else None}
