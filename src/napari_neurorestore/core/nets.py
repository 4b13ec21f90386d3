"""The torch pieces the methods' networks share (each network lives in its method's package,
e.g. ``methods/denoise/net.py``). Imported only when a method trains or predicts."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    """A same-size 2D convolution and a leaky ReLU."""
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
