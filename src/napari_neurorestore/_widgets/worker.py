"""Worker plumbing for the widgets: the core's generator run in a napari thread worker.

The task that runs in the worker thread, :func:`restore_task`, is a thin generator over
:func:`napari_neurorestore.core.engine.restore` (the API's checks and rules): it re-yields the core's :class:`~napari_neurorestore.core.progress.Progress`
messages and returns a :class:`TaskOutcome`. Expected failures (bad input, bad parameters,
an unavailable device, out of memory) and cancellation come back *inside* the outcome rather
than as exceptions, so the user gets a plain message instead of a traceback dialog, and so a
``RuntimeError`` from torch never reaches superqt (which swallows it without emitting
``finished``). Anything else (a bug) is raised and reaches the worker's ``errored`` signal.

:func:`make_worker` wraps the task in a :func:`napari.qt.threading.create_worker` generator
worker or, when the environment variable ``NEURORESTORE_SYNC_WORKER=1`` is set (or
``sync=True`` is passed), in an :class:`InlineWorker` that runs it to the end in the calling
thread with the same signals, which makes GUI tests deterministic.

Importing this module imports neither torch nor napari; the method module (and with it
torch) is imported inside the task, in the worker thread.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ..core.progress import Cancelled, CancelToken, Progress

SYNC_ENV = "NEURORESTORE_SYNC_WORKER"

#: failures that are the user's to fix (or the machine's): shown as a message, no traceback.
#: RuntimeError covers torch's device and out-of-memory errors; ImportError a broken torch.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    RuntimeError,
    MemoryError,
    OSError,
    ImportError,
)


@dataclass
class TaskOutcome:
    """What :func:`restore_task` returns: exactly one of a result, an error or a cancel."""

    result: Any = None  # a core.models.RestoreResult
    error: BaseException | None = None
    cancelled: bool = False


def restore_task(
    method: str,
    data: Any,
    params: Any,
    cancel: CancelToken,
    model: Any = None,
    out: Any = None,
    preview: dict | None = None,
    given: dict | None = None,
    options: dict | None = None,
) -> Generator[Progress, None, TaskOutcome]:
    """Run ``core.engine.restore(method, data, params, ...)`` (train unless ``model``).

    ``out``, when given, is the array the result is streamed into (e.g. a zarr store).
    ``given``: the values the form set (a ``model`` whose fixed parameters differ is
    refused, with the message of the CLI and the API). ``options``: the method's extra
    inputs, opened (the dock's chosen layers' data, e.g. sparse's ``reference``).
    ``preview`` (e.g. ``{"center": (z, y, x), "size": 64}``) calls the method's
    ``preview`` on a crop instead of ``run``. Yields the core's progress messages; returns a
    :class:`TaskOutcome`.
    """
    try:
        yield Progress("prepare", message="loading the restoration engine")
        cancel.check()
        if preview is not None:
            from ..core.methods import get_method  # imports torch here, in the worker thread

            result = yield from get_method(method).preview(data, params, cancel=cancel,
                                                           model=model, **preview)
        else:
            from ..core.engine import restore  # the method's module (torch) loads in there

            result = yield from restore(method, data, params, model=model, given=given,
                                        cancel=cancel, out=out, **(options or {}))
    except Cancelled:
        return TaskOutcome(cancelled=True)
    except EXPECTED_ERRORS as exc:
        if cancel.cancelled:  # e.g. the input went away while it was being read
            return TaskOutcome(cancelled=True)
        return TaskOutcome(error=exc)
    return TaskOutcome(result=result)


def sync_from_env() -> bool:
    """True when ``NEURORESTORE_SYNC_WORKER`` asks for inline (same-thread) workers."""
    return os.environ.get(SYNC_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class _Signal:
    """The part of a Qt signal the widgets use: ``connect`` and ``emit``."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any] | None = None) -> None:
        if slot is None:
            self._slots.clear()
        elif slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)


class InlineWorker:
    """A stand-in for superqt's ``GeneratorWorker`` that runs in the calling thread.

    ``start()`` drives the generator to its end, emitting ``started``, ``yielded``,
    ``returned`` (unless :meth:`quit` was called), ``errored`` and always ``finished``,
    in the same order as the threaded worker.
    """

    cancel_token: CancelToken | None = None

    def __init__(self, func: Callable[..., Generator], *args: Any, **kwargs: Any) -> None:
        self._gen = func(*args, **kwargs)
        self._abort_requested = False
        self._running = False
        self.started = _Signal()
        self.yielded = _Signal()
        self.returned = _Signal()
        self.errored = _Signal()
        self.finished = _Signal()
        self.aborted = _Signal()

    def quit(self) -> None:
        if self.cancel_token is not None:
            self.cancel_token.cancel()
        self._abort_requested = True

    @property
    def abort_requested(self) -> bool:
        return self._abort_requested

    @property
    def is_running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True
        self.started.emit()
        try:
            result = None
            while True:
                if self._abort_requested:
                    self._gen.close()
                    self.aborted.emit()
                    break
                try:
                    value = next(self._gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self.yielded.emit(value)
            if not self._abort_requested:
                self.returned.emit(result)
        except Exception as exc:  # mirrors superqt: errors go to `errored`
            self.errored.emit(exc)
        finally:
            self._running = False
            self.finished.emit()


@functools.cache
def _threaded_worker_class() -> type:
    """napari's ``GeneratorWorker`` with two changes for cooperative cancel (built lazily, so
    importing this module does not import napari):

    * ``quit()`` also sets the task's :class:`CancelToken`, whoever calls it (the Cancel
      button, or napari's activity dock, which calls ``quit()`` only), so the core stops at
      its next step check, not only at its next yield;
    * after an abort, the suspended generator is closed *in the worker thread*, so the
      core's context managers (``torch.inference_mode``, thread-local state) unwind in the
      thread that entered them, instead of whenever and wherever the generator is collected.
    """
    from napari.qt.threading import GeneratorWorker

    class CancellableGeneratorWorker(GeneratorWorker):
        cancel_token: CancelToken | None = None

        def quit(self) -> None:
            if self.cancel_token is not None:
                self.cancel_token.cancel()
            super().quit()

        def work(self):  # runs in the worker thread
            try:
                return super().work()
            finally:
                if self.abort_requested:
                    self._gen.close()

    return CancellableGeneratorWorker


def make_worker(
    func: Callable[..., Generator],
    *args: Any,
    connect: dict[str, Callable[..., Any]] | None = None,
    sync: bool | None = None,
    cancel_token: CancelToken | None = None,
    **kwargs: Any,
) -> Any:
    """Create (but do not start) a generator worker for ``func(*args, **kwargs)``.

    ``connect`` maps signal names (``yielded``, ``returned``, ``errored``, ``finished``, ...)
    to slots. ``sync`` (default: :func:`sync_from_env`) makes an :class:`InlineWorker`,
    whose ``start()`` returns only when the task is done; otherwise a napari
    ``GeneratorWorker`` whose ``start()`` queues it on the thread pool. ``cancel_token``
    (the one passed to the task) is set by the worker's ``quit()``. Keep a reference to
    the worker before calling ``start()``: with an inline worker every slot, ``finished``
    included, has run by the time ``start()`` returns.
    """
    if sync is None:
        sync = sync_from_env()
    if sync:
        worker: Any = InlineWorker(func, *args, **kwargs)
    else:
        from napari.qt.threading import create_worker

        worker = create_worker(
            func,
            *args,
            _start_thread=False,
            _ignore_errors=True,
            _worker_class=_threaded_worker_class(),
            **kwargs,
        )
    worker.cancel_token = cancel_token
    for name, slot in (connect or {}).items():
        getattr(worker, name).connect(slot)
    return worker
