"""Typed progress messages and cooperative cancellation shared by the GUI, CLI and API, and
the shared tail of every method's ``predict`` (:class:`PredictTally`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

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


class PredictTally:
    """The shared tail of every ``predict``: counts what was written, reports progress with
    an ETA, and turns a cancel into a message that says how much was written.

    ``total`` items (frames, tiles, blocks) are processed; ``noun`` names them in the cancel
    message ("frames", "output tiles", "lateral blocks") and ``verb`` says what was done
    ("restored", "upsampled"); ``label`` starts the progress message ("restoring").
    ``on_chunk`` (a :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder` or any callable) is
    called by :meth:`written`.
    """

    def __init__(self, total: int, noun: str, verb: str, label: str, on_chunk: Any = None,
                 unit: str | None = None, written_total: int | None = None):
        self.total = int(total)
        self.noun, self.verb, self.label = noun, verb, label
        self.unit = unit if unit is not None else noun
        self.on_chunk = on_chunk
        self.written_total = self.total if written_total is None else int(written_total)
        self.done = 0
        self.n = 0
        self.t0 = time.perf_counter()

    def start(self, message: str) -> Progress:
        self.t0 = time.perf_counter()
        return Progress("predict", 0, self.total, message=message)

    def step(self, n: int = 1) -> Progress:
        """``n`` more items processed: the progress report (with an ETA)."""
        self.done += n
        el = time.perf_counter() - self.t0
        return Progress("predict", self.done, self.total,
                        eta=el / max(self.done, 1) * (self.total - self.done),
                        message=f"{self.label}: {self.done}/{self.total} {self.unit}")

    def written(self, a: int, b: int) -> None:
        """Items ``a:b`` are written (recorded before the report: a stop at the report's
        yield keeps the record exact)."""
        self.n += b - a
        if self.on_chunk is not None:
            self.on_chunk(a, b)

    __call__ = written

    @contextmanager
    def cancel_message(self) -> Iterator[None]:
        """Re-raise a cancel with how much was written."""
        try:
            yield
        except Cancelled:
            raise Cancelled(f"cancelled by the user: {self.n} of {self.written_total} "
                            f"{self.noun} were {self.verb} and written") from None
