"""The denoiser's network (torch). Imported only when it trains or predicts."""

from __future__ import annotations

import torch
from torch import nn

from ...nets import conv_block


class TemporalDenoiseNet(nn.Module):
    """Predict the centre frame of a temporal window from its ``n_in`` neighbours.

    The 2x2 pixel-unshuffle in front turns each frame into its four 2x2 neighbour
    sub-images (FAST's spatial sub-sampler, used here as channels): the network works at
    half resolution with 4x the channels, which makes it several times faster on a CPU.
    A two-level U-Net (one down-sampling) predicts a correction to the neighbours' mean.
    ``light``: the first encoder and the first decoder convolutions (the two widest) are
    1x1, which halves the work per frame. Input (B, n_in, H, W) with H, W multiples of 4;
    output (B, 1, H, W).
    """

    def __init__(self, n_in: int, width: int = 16, light: bool = False):
        super().__init__()
        self.n_in = n_in
        w = width
        k = 1 if light else 3  # light: the two widest convolutions are 1x1 (half the work)
        self.unshuffle = nn.PixelUnshuffle(2)
        self.enc = nn.Sequential(conv_block(4 * n_in, w, k), conv_block(w, w))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.mid = conv_block(2 * w, 2 * w)
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec = nn.Sequential(conv_block(2 * w, w, k), conv_block(w, w))
        self.out = nn.Conv2d(w, 4, 1)
        self.shuffle = nn.PixelShuffle(2)
        self._mean: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.forward_unshuffled(self.unshuffle(x)))

    def forward_unshuffled(self, xu: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` before its unshuffle and after its shuffle: (B, 4 n_in, H/2, W/2)
        in PixelUnshuffle's channel order (``4 c + 2 i + j`` holds pixel (2y+i, 2x+j) of
        frame c) -> (B, 4, H/2, W/2). Inference unshuffles a chunk's frames once instead of
        every window's."""
        # the neighbours' mean as a fixed 1x1 convolution: it reads channels-last input
        # in place (a mean over an unflattened channel axis is several times slower)
        if self._mean is None or self._mean.device != xu.device:
            w = torch.eye(4, device=xu.device).repeat(1, self.n_in) / self.n_in
            self._mean = w[:, :, None, None].contiguous(memory_format=torch.channels_last)
        base = nn.functional.conv2d(xu, self._mean.to(xu.dtype))
        e = self.enc(xu)
        m = self.mid(self.down(e))
        d = self.dec(torch.cat([self.up(m), e], dim=1))
        return base + self.out(d)
