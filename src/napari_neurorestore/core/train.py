"""A generic training loop as a generator: yields Progress, returns the loss history.

It checks the cancel token every step and stops at whichever of the epoch budget and
the wall-time budget comes first. The learning rate follows a cosine decay over the
fraction of the budget used (steps or seconds), so a time-capped run still anneals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator

import torch

from .progress import CancelToken, Progress


def fit(
    model: torch.nn.Module,
    sample_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    total_steps: int,
    train_seconds: float | None,
    learning_rate: float,
    cancel: CancelToken,
    report_every: float = 0.25,
    on_step: Callable[[int], None] | None = None,
) -> Generator[Progress, None, list[float]]:
    """Train ``model``; yields Progress, returns the loss history.

    ``on_step(step)``, when given, is called after every optimisation step (e.g. to
    validate and keep the best weights).
    """
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history: list[float] = []
    t0 = time.perf_counter()
    last_report = -1.0
    ema = None
    model.train()
    step = 0
    while step < total_steps:
        cancel.check()
        elapsed = time.perf_counter() - t0
        frac = step / total_steps
        if train_seconds is not None:
            if elapsed >= train_seconds:
                break
            frac = max(frac, elapsed / train_seconds)
        lr = learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = sample_batch()
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        history.append(value)
        ema = value if ema is None else 0.95 * ema + 0.05 * value
        step += 1
        if on_step is not None:
            on_step(step)
        now = time.perf_counter() - t0
        if now - last_report >= report_every or step == total_steps:
            last_report = now
            eta_steps = now / step * (total_steps - step)
            eta = eta_steps if train_seconds is None else min(eta_steps, train_seconds - now)
            yield Progress("train", step, total_steps, loss=ema, eta=max(eta, 0.0),
                           done=frac if train_seconds is not None else None,
                           message=f"training: step {step}/{total_steps}, loss {ema:.4g}")
    model.eval()
    return history
