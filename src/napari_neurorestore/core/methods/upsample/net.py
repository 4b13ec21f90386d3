"""Upsampling's network and its fixed operators (torch). Imported only when it trains or
predicts."""

from __future__ import annotations

import torch
from torch import nn


# ----------------------------------------------------------------------------- upsampling
def _keys(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel (a = -0.5)."""
    t = t.abs()
    return torch.where(t <= 1, 1.5 * t**3 - 2.5 * t**2 + 1,
                       torch.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2,
                                   torch.zeros_like(t)))


def interp_weights(f: int, kind: str = "cubic") -> torch.Tensor:
    """(f, 5) weights of input taps -2..2 for the f output phases of one input pixel.

    Area-sampling convention: output pixel ``i * f + p`` sits at input coordinate
    ``i + (p + 0.5) / f - 0.5`` (pixel centres; input pixel i covers [i - 0.5, i + 0.5)).
    """
    d = (torch.arange(f, dtype=torch.float64) + 0.5) / f - 0.5
    k = torch.arange(-2, 3, dtype=torch.float64)
    t = k[None, :] - d[:, None]
    w = _keys(t) if kind == "cubic" else (1 - t.abs()).clamp(min=0)
    return (w / w.sum(1, keepdim=True)).float()


def interp_upsample(x: torch.Tensor, factors: tuple[int, ...], kind: str = "cubic") -> torch.Tensor:
    """Separable cubic (Keys) or linear upsampling of (B, C, *spatial) by integer ``factors``
    (one per spatial axis), aligned to the area-sampling convention; the border is replicated."""
    nsp = len(factors)
    conv = torch.nn.functional.conv3d if nsp == 3 else torch.nn.functional.conv2d
    lead = x.shape[:-nsp]
    x = x.reshape(-1, 1, *x.shape[-nsp:])
    for ax, f in enumerate(factors):
        if f == 1:
            continue
        dim = 2 + ax
        n = x.shape[dim]
        ks = [1] * nsp
        ks[ax] = 5
        pad = [0] * (2 * nsp)
        pad[2 * (nsp - 1 - ax)] = pad[2 * (nsp - 1 - ax) + 1] = 2
        xp = torch.nn.functional.pad(x, pad, mode="replicate")
        w = interp_weights(f, kind).to(x.device, x.dtype).reshape(f, 1, *ks)
        y = conv(xp, w).movedim(1, dim)  # (B, 1?, ..., n, f, ...) with the phase after n
        shape = list(x.shape)
        shape[dim] = n * f
        x = y.reshape(shape)
    return x.reshape(*lead, *x.shape[-nsp:])


def bin_down(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Mean over non-overlapping ``factors`` blocks of the spatial axes of (B, C, *spatial)."""
    nsp = len(factors)
    if nsp == 2:
        return torch.nn.functional.avg_pool2d(x, factors)
    return torch.nn.functional.avg_pool3d(x, factors)


def pixel_shuffle_nd(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """(B, prod(f), *spatial) -> (B, 1, *(spatial * f)) (sub-pixel convolution's shuffle)."""
    b = x.shape[0]
    sp = x.shape[2:]
    nd = len(factors)
    x = x.reshape(b, *factors, *sp)
    # (b, f0.., fn, s0.., sn) -> (b, s0, f0, s1, f1, ...)
    order = [0] + [v for i in range(nd) for v in (1 + nd + i, 1 + i)]
    x = x.permute(*order)
    return x.reshape(b, 1, *[s * f for s, f in zip(sp, factors, strict=True)])


class UpsampleNet(nn.Module):
    """Self-Vision-like light network, post-upsampling: every convolution runs on the coarse
    grid; a sub-pixel convolution (``prod(factors)`` output channels + shuffle) makes the
    fine grid. It predicts a residual added to cubic/linear interpolation of the input, and
    the last layer starts at zero, so an untrained net returns the interpolation.

    Dense 3x3(x3) convolutions with LeakyReLU instead of the paper's 5^3 extraction,
    1x1 shrinking and grouped convolutions: grouped convolutions are slow on CPUs.
    Input (B, 1, *spatial) normalised intensities; output (B, 1, *(spatial * factors)).
    """

    def __init__(self, factors: tuple[int, ...], width: int = 32, depth: int = 4,
                 base: str = "cubic"):
        super().__init__()
        self.factors = tuple(int(f) for f in factors)
        self.base = base
        conv = nn.Conv3d if len(self.factors) == 3 else nn.Conv2d
        act = lambda: nn.LeakyReLU(0.1, inplace=True)  # noqa: E731
        self.head = nn.Sequential(conv(1, width, 3, padding=1), act())
        body = []
        for _ in range(depth):
            body += [conv(width, width, 3, padding=1), act()]
        self.body = nn.Sequential(*body)
        n_out = 1
        for f in self.factors:
            n_out *= f
        self.tail = conv(width, n_out, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        self.depth = depth

    @property
    def radius(self) -> int:
        """Receptive-field radius in coarse pixels (for tile halos)."""
        return self.depth + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        r = pixel_shuffle_nd(self.tail(h), self.factors)
        return interp_upsample(x, self.factors, self.base) + r
