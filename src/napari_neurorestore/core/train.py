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


class ThreadChooser:
    """Pick torch's intra-op thread count by measuring it, again and again, while training.

    On a shared CPU a small network's step with 2 threads can be several times slower
    than with 1 (each op waits for its slowest thread, and a busy core delays it), while
    on an idle machine 2 threads are faster. So every ``every`` seconds the next
    ``2 * probe`` steps alternate between the configured count and 1 thread, and the
    faster one (median step time) is kept until the next probe. The thread count in force
    before training is restored by :meth:`restore`.
    """

    def __init__(self, enabled: bool = True, probe: int = 6, every: float = 15.0):
        self.base = torch.get_num_threads()
        self.options = [self.base, 1] if enabled and self.base > 1 else [self.base]
        self.probe, self.every = probe, every
        self.queue: list[int] = []
        self.samples: dict[int, list[float]] = {}
        self.next_probe = 0.0
        self.current = self.base
        self.chosen: list[int] = []

    def before_step(self, now: float) -> None:
        if len(self.options) == 1:
            return
        if not self.queue and not self.samples and now >= self.next_probe:
            self.queue = [o for _ in range(self.probe) for o in self.options]
            self.samples = {o: [] for o in self.options}
        if self.queue:
            self._set(self.queue.pop(0))

    def after_step(self, seconds: float, now: float) -> None:
        if not self.samples:
            return
        self.samples[self.current].append(seconds)
        if not self.queue:
            best = min(self.samples, key=lambda o: sorted(self.samples[o])[len(self.samples[o]) // 2])
            self._set(best)
            self.chosen.append(best)
            self.samples = {}
            self.next_probe = now + self.every

    def _set(self, n: int) -> None:
        if n != self.current:
            torch.set_num_threads(n)
            self.current = n

    def restore(self) -> None:
        self._set(self.base)


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
    threads: ThreadChooser | None = None,
) -> Generator[Progress, None, list[float]]:
    """Train ``model``; yields Progress, returns the loss history.

    ``on_step(step)``, when given, is called after every optimisation step (e.g. to
    validate and keep the best weights). ``threads``, when given, picks torch's thread
    count as training goes (see :class:`ThreadChooser`); it is restored at the end.
    """
    try:
        return (yield from _fit(model, sample_batch, loss_fn, total_steps, train_seconds,
                                learning_rate, cancel, report_every, on_step, threads))
    finally:
        if threads is not None:
            threads.restore()


def _typical(step_times: list[float]) -> float:
    """Median of the last 9 step times (0 before the second step: the first includes
    torch's one-off start-up and says little about the next)."""
    recent = step_times[1:][-9:]
    return sorted(recent)[len(recent) // 2] if recent else 0.0


def _fit(model, sample_batch, loss_fn, total_steps, train_seconds, learning_rate, cancel,
         report_every, on_step, threads):
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history: list[float] = []
    t0 = time.perf_counter()
    last_report = -1.0
    ema = None
    model.train()
    step = 0
    step_times: list[float] = []
    while step < total_steps:
        cancel.check()
        elapsed = time.perf_counter() - t0
        frac = step / total_steps
        if train_seconds is not None:
            # stop when the next step would end past the budget (a step's time: the
            # median of the last ones), so that the cap holds to about one step
            if elapsed + _typical(step_times) >= train_seconds:
                break
            frac = max(frac, elapsed / train_seconds)
        lr = learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for g in opt.param_groups:
            g["lr"] = lr
        if threads is not None:
            threads.before_step(elapsed)
        t_step = time.perf_counter()
        x, y = sample_batch()
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - t_step)
        if threads is not None:
            threads.after_step(step_times[-1], time.perf_counter() - t0)
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
