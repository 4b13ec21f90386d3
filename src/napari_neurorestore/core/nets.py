"""torch modules. Imported only when a method trains or predicts."""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class TemporalDenoiseNet(nn.Module):
    """Predict the centre frame of a temporal window from its ``n_in`` neighbours.

    The 2x2 pixel-unshuffle in front turns each frame into its four 2x2 neighbour
    sub-images (FAST's spatial sub-sampler, used here as channels): the network works at
    half resolution with 4x the channels, which makes it several times faster on a CPU.
    A two-level U-Net (one down-sampling) predicts a correction to the neighbours' mean.
    Input (B, n_in, H, W) with H, W multiples of 4; output (B, 1, H, W).
    """

    def __init__(self, n_in: int, width: int = 16):
        super().__init__()
        self.n_in = n_in
        w = width
        self.unshuffle = nn.PixelUnshuffle(2)
        self.enc = nn.Sequential(_conv(4 * n_in, w), _conv(w, w))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.mid = _conv(2 * w, 2 * w)
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec = nn.Sequential(_conv(2 * w, w), _conv(w, w))
        self.out = nn.Conv2d(w, 4, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = x.mean(dim=1, keepdim=True)
        e = self.enc(self.unshuffle(x))
        m = self.mid(self.down(e))
        d = self.dec(torch.cat([self.up(m), e], dim=1))
        return base + self.shuffle(self.out(d))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
