"""torch modules. Imported only when a method trains or predicts."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.LeakyReLU(0.1, inplace=True))


def ready_for_inference(net: nn.Module, state_dict: dict, device: torch.device) -> nn.Module:
    """Load trained weights, switch to eval mode and move to ``device`` (channels_last on a
    CPU, where the 2D convolutions run faster in that layout)."""
    net.load_state_dict(state_dict)
    net.eval().to(device)
    if device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


class AxialRestoreNet(nn.Module):
    """Restore a slice whose axis 0 (rows) is blurred and coarsely sampled (the axial
    direction after interpolation) and whose axis 1 is sharp: a three-level U-Net (full,
    1/2 and 1/4 resolution) that predicts a residual over its input. Input (B, 1, H, W)
    with H, W multiples of 4; output (B, 1, H, W). Plain convolutions with zero padding,
    so a tile's centre equals the whole-slice result once the tile has
    :data:`AXIAL_NET_HALO` pixels of context on each side (and starts at a multiple of 4).
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.e0 = nn.Sequential(_conv(1, w), _conv(w, w))
        self.d1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                nn.LeakyReLU(0.1, inplace=True), _conv(2 * w, 2 * w))
        self.d2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
                                nn.LeakyReLU(0.1, inplace=True), _conv(4 * w, 4 * w))
        self.u2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.c1 = nn.Sequential(_conv(4 * w, 2 * w), _conv(2 * w, 2 * w))
        self.u1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.c0 = nn.Sequential(_conv(2 * w, w), _conv(w, w))
        self.out = nn.Conv2d(w, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.e0(x)
        e1 = self.d1(e0)
        e2 = self.d2(e1)
        d1 = self.c1(torch.cat([self.u2(e2), e1], dim=1))
        d0 = self.c0(torch.cat([self.u1(d1), e0], dim=1))
        return x + self.out(d0)


#: context (pixels) a tile needs on each side for :class:`AxialRestoreNet` to give exactly
#: the whole-slice result in its centre (receptive-field radius, rounded up to a multiple of 4)
AXIAL_NET_HALO = 24


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: one real/fake score per ~22x22-pixel patch of a slice."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
