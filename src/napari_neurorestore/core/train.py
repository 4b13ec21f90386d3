"""A generic training loop as a generator: yields Progress, returns the loss history.

It checks the cancel token every step and stops at whichever of the epoch budget and
the wall-time budget comes first. The learning rate follows a cosine decay over the
fraction of the budget used (steps or seconds), so a time-capped run still anneals; with
``cycles`` it decays over each cycle and starts again at the next (warm restarts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Sequence

import torch

from .progress import CancelToken, Progress


class ThreadChooser:
    """Pick torch's intra-op thread count by measuring it while training.

    On a shared CPU a small network's step with 2 threads can be 30-50x slower than with
    1 (measured here: 2.5 s against 0.06 s a step at a load average of 7, because every
    op waits for its slowest thread and a busy core delays it), while on an idle machine
    2 threads are faster. So training starts on 1 thread; every ``every`` seconds a few
    steps try the configured count, and the probe stops at once if a step is 3x slower
    than usual. The faster count (median step time, by a ``margin``) is kept. The count
    in force before training is restored by :meth:`restore`.
    """

    def __init__(self, enabled: bool = True, probe: int = 4, every: float = 20.0,
                 margin: float = 1.15):
        self.base = torch.get_num_threads()
        self.options = [1, self.base] if enabled and self.base > 1 else [self.base]
        self.probe, self.every, self.margin = probe, every, margin
        self.current = self.options[0]
        self.recent: list[float] = []
        self.trial: list[float] = []
        self.probing: int | None = None
        self.next_probe = 0.0
        self.chosen: list[int] = []
        self._set(self.current)

    def before_step(self, now: float) -> None:
        if (len(self.options) > 1 and self.probing is None and len(self.recent) >= 3
                and now >= self.next_probe):
            self.probing = next(o for o in self.options if o != self.current)
            self.trial = []
            self._set(self.probing)

    def after_step(self, seconds: float, now: float) -> None:
        if self.probing is None:
            self.recent = (self.recent + [seconds])[-9:]
            return
        self.trial.append(seconds)
        usual = _median(self.recent)
        if seconds <= 3 * usual and len(self.trial) < self.probe:
            return
        # the first step on a new count pays a one-off set-up: judge by the others
        if len(self.trial) >= self.probe and _median(self.trial[1:]) * self.margin < usual:
            self.current, self.recent = self.probing, self.trial[1:]
        self.chosen.append(self.current)
        self.probing = None
        self._set(self.current)
        self.next_probe = now + self.every

    def _set(self, n: int) -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def restore(self) -> None:
        self._set(self.base)

    def resume(self) -> None:
        """Go back to the count chosen while training (after :meth:`restore`)."""
        self._set(self.current)


class SessionThreads(ThreadChooser):
    """A chooser that several calls continue (live mode's session: one inference per file).
    Its clock is its own, not a call's time since it began, so the configured count is
    tried every ``every`` seconds of the session rather than at the start of every call."""

    def before_step(self, now: float) -> None:
        super().before_step(time.perf_counter())

    def after_step(self, seconds: float, now: float) -> None:
        super().after_step(seconds, time.perf_counter())


def _median(values: list[float]) -> float:
    v = sorted(values)
    return v[len(v) // 2] if v else 0.0


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
    reserve: Callable[[float], float] | None = None,
    cycles: Sequence[float] | None = None,
    on_cycle: Callable[[int], None] | None = None,
) -> Generator[Progress, None, list[float]]:
    """Train ``model``; yields Progress, returns the loss history.

    ``on_step(step)``, when given, is called after every optimisation step (e.g. to
    validate and keep the best weights). ``threads``, when given, picks torch's thread
    count as training goes (see :class:`ThreadChooser`); it is restored at the end.
    ``reserve(step_seconds)``, when given, is the time to leave of ``train_seconds`` for
    what follows training (a method's fits on the trained net), estimated from the
    typical step time, so that it is measured on this machine at its present load.
    ``train_seconds`` counts from the call, the optimiser's set-up included (its first
    creation in a process imports about 1.5 s of torch). ``cycles``, when given, are the
    ends of the learning rate's cycles as fractions of the budget (ascending, the last 1):
    the cosine decay starts again at each, and ``on_cycle(step)`` is called with the
    weights at the end of each cycle but the last (e.g. to keep the best of them).
    With both ``train_seconds`` and a ``total_steps`` that may come first (a cap), the
    cycle under way decays by whichever is nearer its end, so training that the cap ends
    ends annealed.
    """
    try:
        return (yield from _fit(model, sample_batch, loss_fn, total_steps, train_seconds,
                                learning_rate, cancel, report_every, on_step, threads,
                                reserve, cycles, on_cycle))
    finally:
        if threads is not None:
            threads.restore()


def _typical(step_times: list[float]) -> float:
    """Median of the last 9 step times (0 before the second step: the first includes
    torch's one-off start-up and says little about the next)."""
    return _median(step_times[1:][-9:])


def _fit(model, sample_batch, loss_fn, total_steps, train_seconds, learning_rate, cancel,
         report_every, on_step, threads, reserve=None, cycles=None, on_cycle=None):
    t0 = time.perf_counter()
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history: list[float] = []
    last_report = -1.0
    ema = None
    model.train()
    step = 0
    step_times: list[float] = []
    ends, cycle, begun, first = list(cycles or [1.0]), 0, 0.0, 0
    while step < total_steps:
        cancel.check()
        if step and getattr(cancel, "training_stopped", False):
            break  # the user's "stop training": keep what was learned (after >= 1 step)
        elapsed = time.perf_counter() - t0
        frac = step / total_steps
        # the cycle's progress: by time, or by steps towards ``total_steps`` when that
        # comes first (a step cap within a time budget: the rate anneals by the cap)
        by_steps = (step - first) / max(total_steps - first, 1)
        if train_seconds is not None:
            # stop when the next step would end past the budget (a step's time: the
            # median of the last ones), so that the cap holds to about one step
            typical = _typical(step_times)
            settled = reserve is not None and len(step_times) > 4  # past the start-up steps
            limit = train_seconds - (reserve(typical) if settled else 0.0)
            if elapsed + typical >= limit:
                break
            frac = elapsed / max(limit, 1e-9)
        while cycle < len(ends) - 1 and frac >= ends[cycle]:  # a cycle ended: restart
            if on_cycle is not None and step:
                on_cycle(step)
            begun, cycle, first = ends[cycle], cycle + 1, step
            by_steps = 0.0
        local = max((frac - begun) / max(ends[cycle] - begun, 1e-9), by_steps)
        frac = max(frac, step / total_steps)
        lr = learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(local, 1.0))))
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
