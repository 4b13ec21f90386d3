"""Typed progress messages and cooperative cancellation shared by the GUI, CLI and API."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside the core when a :class:`CancelToken` was set."""


class CancelToken:
    """A thread-safe flag: the UI (or a signal handler) sets it, the core checks it every step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._stop_training = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def stop_training(self) -> None:
        """End training after the current step and keep the model learned so far (the run
        goes on with it: inference, saving); unlike :meth:`cancel`, nothing is lost."""
        self._stop_training.set()

    @property
    def training_stopped(self) -> bool:
        return self._stop_training.is_set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


@dataclass(frozen=True)
class Progress:
    """One progress report.

    stage : "prepare", "train", "predict" or "done".
    step, total : position within the stage (``total`` may be 0 when unknown).
    loss : the latest training loss (None outside training).
    eta : estimated seconds left in this stage (None when unknown).
    message : a short human-readable line.
    done : fraction of the stage done, when it is not ``step / total`` (a time-capped
        training run ends on the clock, not on the step count).
    """

    stage: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    eta: float | None = None
    message: str = ""
    done: float | None = None

    @property
    def fraction(self) -> float:
        if self.done is not None:
            return min(1.0, max(0.0, self.done))
        return min(1.0, self.step / self.total) if self.total else 0.0


def drain(gen: Generator[Progress, None, T], callback=None) -> T:
    """Run a core generator to the end and return its result.

    ``callback(progress)`` is called for every yielded :class:`Progress`.
    """
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(p)

