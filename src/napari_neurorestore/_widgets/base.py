"""The base of the docks (Restore, ROI traces, Trust report): layers, status, jobs.

Like napari-matplotlib's ``BaseNapariMPLWidget``, a dock declares what it works on and fills
in a few hooks; the base does the rest:

* **layers**: :attr:`DockBase.layer_types` maps each picker's role to the napari layer types
  it lists (``{"image": ("Image",)}``); :meth:`DockBase.layers_for` lists the viewer's layers
  of a role and :func:`fill_combo` refills a ``QComboBox`` keeping the current choice. The
  base follows the viewer's layer list (insert, remove, move, rename) and calls
  :meth:`DockBase.on_layers_changed`; :meth:`clear` / :meth:`draw` are the docks' redraw hooks.
* **status**: :meth:`DockBase.set_status`, :meth:`DockBase.refuse` (an action not done, and
  why) and :meth:`DockBase.show_error`; a dock with ``notify = True`` also shows napari
  notifications.
* **layout**: a dock lays its widgets out on :attr:`DockBase.body`, which sits in a
  :class:`~.dock_layout.DockScrollArea`: the dock's minimum height stays small (three docks fit a laptop
  screen, and what does not fit scrolls), its minimum width is its content's, so nothing is
  squashed below its size hint. Docks of this plugin added to the same side of napari's
  window are tabbed together (one tab each, raised when added) rather than stacked; a tab
  dragged out stays where the user puts it. :class:`~.dock_layout.RowsTable` is a table whose minimum
  height shows its header and a few whole rows, with short headers and their tooltips;
  :class:`~.dock_layout.Section` is a collapsible section, collapsed by default.
* **jobs**: :meth:`DockBase.start_job` runs a task generator through
  :func:`._widgets.worker.make_worker` (inline with ``NEURORESTORE_SYNC_WORKER=1`` or
  ``sync = True``). One job at a time (:meth:`refuse_if_busy`); the worker's signals are bound
  to their :class:`Job`, so a late signal of a finished job never touches the next one;
  :meth:`DockBase.cancel` sets the job's CancelToken and calls ``worker.quit()``; removing one
  of the job's input layers or closing the panel cancels it too. The outcome comes to the
  hooks :meth:`on_progress`, :meth:`on_result`, :meth:`on_job_error`, :meth:`on_cancelled` and
  :meth:`on_finished`.

Importing this module imports neither torch nor napari.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import (
    QDockWidget,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..core.progress import CancelToken, Progress
from .dock_layout import DockScrollArea, tab_with_siblings
from .formatting import gui_words
from .layers import incomplete_layer
from .worker import TaskOutcome, make_worker

if TYPE_CHECKING:
    import napari.viewer

ERROR_STYLE = "color: #e06c75;"


@dataclass
class Job:
    """One run of a dock's task. ``inputs``: the layers whose removal cancels it."""

    kind: str
    inputs: tuple[Any, ...] = ()
    cancel: CancelToken = field(default_factory=CancelToken)
    t0: float = field(default_factory=time.perf_counter)
    worker: Any = None
    outcome: TaskOutcome | None = None
    reason: str | None = None  # why it was cancelled, when not by the Cancel button
    last_progress: Progress | None = None


@dataclass
class _Alive:
    """Set when the Qt widget is destroyed (held without a reference to the widget)."""

    closed: bool = False
    job: Job | None = None


def _on_destroyed(alive: _Alive, *_: Any) -> None:
    alive.closed = True
    if alive.job is not None:  # the dock was closed mid-run: stop the worker
        alive.job.cancel.cancel()
        if alive.job.worker is not None:
            alive.job.worker.quit()


def text_label(text: str = "", selectable: bool = True) -> QLabel:
    """A word-wrapped ``QLabel`` (its text selectable with the mouse unless told not)."""
    label = QLabel(text)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def real_layer(layer: Any) -> Any:
    """The layer itself: a plugin dock's viewer is napari's proxy, which wraps each layer it
    hands out in a new proxy object, so ``a is b`` of two look-ups of one layer is False."""
    return getattr(layer, "__wrapped__", layer)


def fill_combo(combo: Any, names: Iterable[str], extra: Iterable[str] = ()) -> bool:
    """Refill a ``QComboBox`` with ``extra + names``, keeping its current text when it is
    still there (no signals while refilling). Returns whether it was kept."""
    items = [*extra, *names]
    current = combo.currentText()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItems(items)
        kept = current in items
        if kept:
            combo.setCurrentText(current)
    finally:
        combo.blockSignals(False)
    return kept


class DockBase(QWidget):
    """Base of the docks: declared layer types, status display and job <-> worker plumbing.

    Subclasses set :attr:`title`, :attr:`layer_types` and a ``status_label`` (a ``QLabel``
    or a magicgui ``Label``), lay their widgets out on :attr:`body` (inside the dock's
    :class:`DockScrollArea`), call :meth:`watch_layers` when their widgets exist, and fill
    in the hooks they need.
    """

    #: the panel's name in messages ("The Restore panel was closed; ...")
    title = "dock"
    #: role -> napari layer type names (``napari.layers.<name>``) a picker lists
    layer_types: dict[str, tuple[str, ...]] = {}
    #: what :meth:`refuse_if_busy` says
    busy_message = "A run is already in progress: wait for it or press Cancel."
    #: also show refusals and errors as napari notifications
    notify = False
    #: the last warning of :meth:`warn_incomplete` (None: none)
    last_warning: str | None = None

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        #: True: run jobs inline; False: in a thread; None: ``NEURORESTORE_SYNC_WORKER``
        self.sync: bool | None = None
        self.status_label: Any = None
        self._alive = _Alive()
        self.destroyed.connect(functools.partial(_on_destroyed, self._alive))
        #: the widget the dock lays its content out on, inside :attr:`scroll_area`
        self.body = QWidget()
        self.scroll_area = DockScrollArea(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll_area)

    # ------------------------------------------------------------------ layers
    def layers_for(self, role: str) -> list[Any]:
        """The viewer's layers of the types declared for ``role``, in the viewer's order."""
        import napari.layers

        types = tuple(getattr(napari.layers, t) for t in self.layer_types[role])
        return [layer for layer in self.viewer.layers if isinstance(layer, types)]

    def layer_named(self, name: str | None) -> Any:
        """The viewer's layer called ``name`` (None when there is none)."""
        if not name:
            return None
        try:
            return real_layer(self.viewer.layers[name])
        except (KeyError, ValueError):
            return None

    def watch_layers(self) -> None:
        """Follow the viewer's layer list: insert, remove, move, reorder and rename."""
        ev = self.viewer.layers.events
        ev.inserted.connect(self._layer_inserted)
        ev.removed.connect(self._layer_removed)
        for name in ("moved", "reordered"):
            emitter = getattr(ev, name, None)
            if emitter is not None:
                emitter.connect(self._layers_changed)
        for layer in self.viewer.layers:
            layer.events.name.connect(self._layers_changed)

    def unwatch_layers(self) -> None:
        """Stop following the layer list (:meth:`watch_layers` undone)."""
        ev = self.viewer.layers.events
        for name, slot in (("inserted", self._layer_inserted), ("removed", self._layer_removed),
                           ("moved", self._layers_changed),
                           ("reordered", self._layers_changed)):
            disconnect_quietly(getattr(ev, name, None), slot)
        for layer in self.viewer.layers:
            disconnect_quietly(layer.events.name, self._layers_changed)

    def _layer_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._layers_changed)
        if not self._alive.closed:
            self.on_layer_inserted(layer)

    def _layer_removed(self, event: Any) -> None:
        layer = event.value
        disconnect_quietly(layer.events.name, self._layers_changed)
        if self._alive.closed:
            return
        job = self._alive.job
        if job is not None and not job.cancel.cancelled and any(
                layer is x for x in job.inputs):
            job.reason = f"input layer '{layer.name}' was removed; run cancelled"
            self._stop(job, job.reason)
        self.on_layers_changed()

    def _layers_changed(self, *_: Any) -> None:
        if not self._alive.closed:
            self.on_layers_changed()

    def on_layers_changed(self) -> None:
        """Hook: the viewer's layers changed (refill the pickers)."""

    def on_layer_inserted(self, layer: Any) -> None:
        """Hook: ``layer`` was added to the viewer (default: :meth:`on_layers_changed`)."""
        self.on_layers_changed()

    def clear(self) -> None:
        """Hook: remove what the dock shows of the last result."""

    def draw(self) -> None:
        """Hook: show the current result."""

    def redraw(self) -> None:
        self.clear()
        self.draw()

    def warn_incomplete(self, *layers: Any) -> str | None:
        """Warn (a notification; kept in ``last_warning``) when a layer was read from an
        incomplete result: a zarr store whose progress record says ``complete: false``, or
        a TIFF still under its temporary name. Returns the warning (None: all complete)."""
        why = [w for w in (incomplete_layer(layer) for layer in layers if layer is not None)
               if w]
        self.last_warning = "; ".join(why) or None
        if self.last_warning:
            self._notify("show_warning", f"{self.last_warning}: frames that were never "
                                         f"restored read as NaN")
        return self.last_warning

    # ------------------------------------------------------------------ status
    def set_status(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the status label (in red when ``error`` and the label is a
        ``QLabel``)."""
        if not self._alive.closed and self.status_label is not None:
            self._write_status(gui_words(text), error)

    def _write_status(self, text: str, error: bool) -> None:
        label = self.status_label
        if hasattr(label, "setText"):  # a QLabel
            label.setText(text)
            label.setStyleSheet(ERROR_STYLE if error else "")
        else:  # a magicgui Label
            label.value = text

    def refuse(self, text: str) -> None:
        """Show why an action was not done."""
        self.set_status(text, error=True)
        self._notify("show_warning", text)

    def show_error(self, text: str) -> None:
        """Show what went wrong."""
        self.set_status(text, error=True)
        self._notify("show_error", text)

    def _notify(self, kind: str, text: str) -> None:
        if not self.notify or self._alive.closed:
            return
        try:
            from napari.utils import notifications

            getattr(notifications, kind)(gui_words(text))
        except Exception:  # a notification is a courtesy
            pass

    # ------------------------------------------------------------------ jobs
    @property
    def is_busy(self) -> bool:
        """True while a job runs."""
        return self._alive.job is not None

    @property
    def job(self) -> Job | None:
        """The running job (None when idle)."""
        return self._alive.job

    @property
    def worker(self) -> Any:
        """The current worker (None when idle)."""
        job = self._alive.job
        return job.worker if job is not None else None

    def refuse_if_busy(self) -> bool:
        """True (and the refusal shown) when a job is running."""
        if self.is_busy:
            self.refuse(self.busy_message)
            return True
        return False

    def start_job(self, job: Job, task: Callable[..., Any], *args: Any,
                  status: str | None = None) -> Any:
        """Run ``task(*args)`` (a generator of Progress returning a TaskOutcome; pass it
        ``job.cancel``) in a worker bound to ``job``. Returns the worker (None, refused, while
        another job runs); an inline worker has finished (and cleared the job) when this
        returns."""
        if self.refuse_if_busy():
            return None
        connect = {name: functools.partial(getattr(self, f"_job_{name}"), job)
                   for name in ("yielded", "returned", "errored", "finished")}
        worker = make_worker(task, *args, connect=connect, sync=self.sync,
                             cancel_token=job.cancel)
        job.worker = worker
        self._alive.job = job
        if status is not None:
            self.set_status(status)
        self.update_buttons()
        worker.start()
        return worker

    def cancel(self, *_: Any) -> bool:
        """Cancel the running job (nothing is added). Returns False when idle."""
        job = self._alive.job
        if job is None:
            self.set_status("Nothing to cancel.")
            return False
        self._stop(job, None)
        return True

    def _stop(self, job: Job, reason: str | None) -> None:
        job.cancel.cancel()  # the core checks the token every step
        if job.worker is not None:
            job.worker.quit()  # the worker stops at the next yield
        self.set_status(reason or "Cancelling…")
        self.on_stopping(job)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ParentChange and isinstance(self.parent(), QDockWidget):
            # docked: once napari has placed the dock, tab it with this plugin's other docks
            QTimer.singleShot(0, functools.partial(
                tab_with_siblings, functools.partial(getattr, self._alive, "closed"),
                self.parent(), DockBase))
        # napari's panel close button un-parents the widget (remove_dock_widget) rather than
        # deleting it: a job must not go on adding layers from a closed panel.
        job = self._alive.job
        if (event.type() == QEvent.Type.ParentChange and self.parent() is None
                and job is not None and not job.cancel.cancelled):
            job.reason = f"The {self.title} panel was closed; run cancelled."
            self._stop(job, job.reason)
        return super().event(event)

    def _current(self, job: Job) -> bool:
        return not self._alive.closed and job is self._alive.job

    def _job_yielded(self, job: Job, p: Progress) -> None:
        if not self._current(job) or job.cancel.cancelled:
            return
        job.last_progress = p
        self.on_progress(job, p)

    def _job_returned(self, job: Job, outcome: TaskOutcome) -> None:
        job.outcome = outcome
        if not self._current(job) or outcome is None:
            return
        if outcome.cancelled or job.cancel.cancelled:
            return  # reported when the job finishes
        if outcome.error is not None:
            self.on_job_error(job, self.failure_text(job, outcome.error, expected=True))
            return
        self.on_result(job, outcome.result)

    def _job_errored(self, job: Job, exc: BaseException) -> None:
        job.outcome = TaskOutcome(error=exc)
        if self._current(job):
            self.on_job_error(job, self.failure_text(job, exc, expected=False))

    def _job_finished(self, job: Job) -> None:
        if self._alive.job is job:
            self._alive.job = None
        job.worker = None
        if self._alive.closed:
            return
        outcome = job.outcome
        if job.cancel.cancelled or outcome is None or outcome.cancelled:
            # by the user, by removing an input layer, by closing the panel, or from
            # napari's activity dock (which calls worker.quit() only)
            self.on_cancelled(job)
        self.on_finished(job)

    # ------------------------------------------------------------------ job hooks
    def job_title(self, job: Job) -> str:
        """What a job is called in messages ("Training", "Assessment", ...)."""
        return job.kind.capitalize()

    def failure_text(self, job: Job, exc: BaseException, expected: bool) -> str:
        """The message of a failed job: ``expected`` errors (bad input, device, memory)
        came back in the outcome; others (bugs) through the worker's ``errored``."""
        if expected:
            return f"{self.job_title(job)} failed: {exc}"
        return f"{self.job_title(job)} failed ({type(exc).__name__}): {exc}"

    def update_buttons(self) -> None:
        """Hook: enable/disable the actions (called when a job starts and ends)."""

    def on_progress(self, job: Job, p: Progress) -> None:
        """Hook: a progress message of the running job."""

    def on_result(self, job: Job, result: Any) -> None:
        """Hook: the job's result."""

    def on_job_error(self, job: Job, text: str) -> None:
        """Hook: the job failed (default: :meth:`show_error`)."""
        self.show_error(text)

    def on_stopping(self, job: Job) -> None:
        """Hook: the job is being cancelled."""

    def on_cancelled(self, job: Job) -> None:
        """Hook: the job ended cancelled."""
        self.set_status(job.reason or f"{self.job_title(job)} cancelled.")

    def on_finished(self, job: Job) -> None:
        """Hook: the job ended, whatever its outcome (default: :meth:`update_buttons`)."""
        self.update_buttons()


def disconnect_quietly(emitter: Any, slot: Any) -> None:
    """``emitter.disconnect(slot)``, silent when it was not connected."""
    if emitter is None:
        return
    try:
        emitter.disconnect(slot)
    except (TypeError, ValueError, RuntimeError):  # not connected
        pass
