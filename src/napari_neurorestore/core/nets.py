"""The torch pieces the methods' networks share (each network lives in its method's package,
e.g. ``methods/denoise/net.py``). Imported only when a method trains or predicts."""

from __future__ import annotations

from typing import Any

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


def timed_net(net: nn.Module, x: torch.Tensor, dev: torch.device, timed: Any,
              per_batch: float) -> float:
    """Units/s of ``net`` on batch ``x`` (``per_batch`` units each), channels_last on a CPU
    (``timed(run_once, units_for)`` of the cost probe measures)."""
    net = net.eval().to(dev)
    x = x.to(dev)
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def once(n):
        with torch.inference_mode():
            for _ in range(n):
                net(x).float().cpu()
    return timed(once, lambda n: n * per_batch)
