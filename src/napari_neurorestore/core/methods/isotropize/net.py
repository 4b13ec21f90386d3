"""Isotropic restoration's networks (torch): the axial restorer and the adversarial
critic. Imported only when it trains or predicts."""

from __future__ import annotations

import torch
from torch import nn

from ...nets import conv_block


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
        self.e0 = nn.Sequential(conv_block(1, w), conv_block(w, w))
        self.d1 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                nn.LeakyReLU(0.1, inplace=True), conv_block(2 * w, 2 * w))
        self.d2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
                                nn.LeakyReLU(0.1, inplace=True), conv_block(4 * w, 4 * w))
        self.u2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.c1 = nn.Sequential(conv_block(4 * w, 2 * w), conv_block(2 * w, 2 * w))
        self.u1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.c0 = nn.Sequential(conv_block(2 * w, w), conv_block(w, w))
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
