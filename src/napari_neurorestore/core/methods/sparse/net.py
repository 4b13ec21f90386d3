"""Sparse-axis reconstruction's network (torch). Imported only when it trains or predicts."""

from __future__ import annotations

import torch
from torch import nn

from ...nets import conv_block


class SparseAxisNet(nn.Module):
    """Fill in the missing lines of an axis sampled every ``factor`` pixels.

    Input (B, n_in, L, P): ``n_in`` frames (the centre frame and its neighbours) of lines
    sampled along L every ``factor`` pixels; P is the other axis. Output (B, factor, L, P):
    channel j is the value at position ``l * factor + j`` along L (j = 0 is the sample
    itself). A two-level U-Net predicts a correction to the linear interpolation of the
    centre frame along L (channel ``centre``, default ``n_in // 2``). With ``p_unshuffle``
    = u > 1, groups of u neighbouring samples along P are stacked as channels first (u
    times fewer pixels: faster). Any L, P >= 1 (sizes are padded inside).
    """

    def __init__(self, n_in: int, factor: int, width: int = 16, centre: int | None = None,
                 p_unshuffle: int = 1):
        super().__init__()
        self.n_in = n_in
        self.factor = factor
        self.centre = n_in // 2 if centre is None else centre
        self.pu = p_unshuffle
        w = width
        self.enc = nn.Sequential(conv_block(n_in * self.pu, w), conv_block(w, w))
        self.down = nn.Sequential(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.mid = conv_block(2 * w, 2 * w)
        self.up = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec = nn.Sequential(conv_block(2 * w, w), conv_block(w, w))
        self.out = nn.Conv2d(w, factor * self.pu, 1)
        self.register_buffer("frac", torch.arange(factor, dtype=torch.float32).view(1, -1, 1, 1)
                             / factor, persistent=False)

    def base(self, x: torch.Tensor) -> torch.Tensor:
        c = x[:, self.centre:self.centre + 1]
        nxt = torch.cat([c[:, :, 1:], c[:, :, -1:]], dim=2)
        return c + self.frac * (nxt - c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        u = self.pu
        ph, pw = h % 2, (-w) % (2 * u)
        xp = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
        hp, wp = h + ph, w + pw
        if u > 1:  # neighbouring samples along P become channels (half the pixels)
            xp = xp.reshape(b, c, hp, wp // u, u).permute(0, 1, 4, 2, 3).reshape(
                b, c * u, hp, wp // u)
        e = self.enc(xp)
        m = self.mid(self.down(e))
        o = self.out(self.dec(torch.cat([self.up(m), e], dim=1)))
        if u > 1:
            o = o.reshape(b, self.factor, u, hp, wp // u).permute(0, 1, 3, 4, 2).reshape(
                b, self.factor, hp, wp)
        return self.base(x) + o[..., :h, :w]


def apply_net(net: SparseAxisNet, x: torch.Tensor, m: int, geometry: str) -> torch.Tensor:
    """(B, C, a, b) sparse along a -> (B, m, a, b): value at line a*m + j (channel j)."""
    cl = x.device.type == "cpu"
    if geometry == "full":
        return net(x.contiguous(memory_format=torch.channels_last) if cl else x)
    bsz, c, na, nb = x.shape
    pb = (-nb) % m
    if pb:
        x = torch.nn.functional.pad(x, (0, pb), mode="replicate")
    nq = (nb + pb) // m
    xs = x.reshape(bsz, c, na, nq, m).permute(0, 4, 1, 2, 3).reshape(bsz * m, c, na, nq)
    if cl:
        xs = xs.contiguous(memory_format=torch.channels_last)
    y = net(xs).reshape(bsz, m, m, na, nq).permute(0, 2, 3, 4, 1).reshape(bsz, m, na, nq * m)
    return y[..., :nb]


def acquired_estimate(y: torch.Tensor) -> torch.Tensor:
    """Denoised values of the acquired lines from the network's output (B, M, a, b): the
    mean of the restored lines just before and after each (line l*M - 1 and l*M + 1).

    The network is scored only on lines it did not see (Noise2Noise), so it cannot learn a
    denoised value for a line from that line's own noisy sample; its neighbours one pixel
    away are such estimates (they use the acquired sample, not its noise).
    """
    nxt = y[:, 1]
    prev = torch.cat([y[:, 1, :1], y[:, -1, :-1]], dim=1)  # line 0: mirror (line 1)
    return 0.5 * (prev + nxt)
