"""The dock base (_widgets/base.py): one job at a time, errors shown, cancel reaching the
worker, input layers whose removal cancels (run under xvfb-run; no torch)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from qtpy.QtWidgets import QComboBox, QLabel

from napari_neurorestore._widgets.base import ERROR_STYLE, DockBase, Job, fill_combo
from napari_neurorestore._widgets.worker import TaskOutcome
from napari_neurorestore.core.progress import Cancelled, Progress

pytestmark = pytest.mark.gui


def endless_task(cancel, seen: dict):
    """Yields until cancelled; records the thread it ran in and what it saw."""
    seen["thread"] = threading.get_ident()
    try:
        step = 0
        while True:
            step += 1
            cancel.check()
            yield Progress("train", step, 10**6)
            time.sleep(0.005)
    except Cancelled:
        seen["cancelled"] = True
        return TaskOutcome(cancelled=True)
    finally:
        seen["closed"] = True


def result_task(value, fail=None):
    yield Progress("prepare", 0, 1)
    if isinstance(fail, TypeError):
        raise fail
    if fail is not None:
        return TaskOutcome(error=fail)
    return TaskOutcome(result=value)


class Dock(DockBase):
    title = "Test"
    layer_types = {"image": ("Image",), "rois": ("Shapes", "Labels")}

    def __init__(self, viewer):
        super().__init__(viewer)
        self.status_label = QLabel("")
        self.combo = QComboBox()
        self.events: list = []
        self.watch_layers()

    def on_layers_changed(self):
        self.events.append("layers")
        fill_combo(self.combo, [la.name for la in self.layers_for("image")])

    def on_progress(self, job, p):
        self.events.append(("progress", p.step))

    def on_result(self, job, result):
        self.events.append(("result", result))

    def on_cancelled(self, job):
        self.events.append("cancelled")
        super().on_cancelled(job)


@pytest.fixture
def dock(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    d = Dock(viewer)
    viewer.window.add_dock_widget(d, name="Test")
    d.sync = False
    return d


def test_layer_lists_follow_the_viewer(dock):
    v = dock.viewer
    a = v.add_image(np.zeros((4, 4)), name="a")
    v.add_labels(np.zeros((4, 4), int), name="lab")
    v.add_image(np.zeros((4, 4)), name="b")
    assert [la.name for la in dock.layers_for("image")] == ["a", "b"]
    assert [la.name for la in dock.layers_for("rois")] == ["lab"]
    dock.combo.setCurrentText("b")
    a.name = "renamed"  # renames are followed
    assert [dock.combo.itemText(i) for i in range(dock.combo.count())] == ["renamed", "b"]
    assert dock.combo.currentText() == "b"  # the choice is kept
    v.layers.remove("b")
    assert dock.combo.currentText() == "renamed"
    assert dock.layer_named("renamed") is a and dock.layer_named("gone") is None


def test_busy_refuses_a_second_job_and_cancel_reaches_the_worker(dock, qtbot):
    seen: dict = {}
    job = Job("train")
    worker = dock.start_job(job, endless_task, job.cancel, seen, status="Working…")
    assert dock.is_busy and dock.job is job and dock.worker is worker
    assert dock.status_label.text() == "Working…"
    qtbot.waitUntil(lambda: any(isinstance(e, tuple) for e in dock.events), timeout=5_000)
    assert dock.refuse_if_busy()
    assert "already in progress" in dock.status_label.text()
    assert ERROR_STYLE in dock.status_label.styleSheet()
    assert dock.start_job(Job("run"), result_task, 1) is None
    assert dock.job is job and dock.worker is worker  # nothing replaced the job
    assert dock.cancel()
    assert worker.cancel_token is job.cancel and job.cancel.cancelled
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert seen["thread"] != threading.get_ident() and seen["closed"]
    assert "cancelled" in dock.events and "result" not in str(dock.events)
    assert dock.status_label.text() == "Train cancelled."
    assert not dock.cancel() and dock.status_label.text() == "Nothing to cancel."


def test_quit_alone_cancels_the_token(dock, qtbot):
    """napari's activity dock stops a worker with quit() only: the token is set too."""
    seen: dict = {}
    job = Job("train")
    worker = dock.start_job(job, endless_task, job.cancel, seen)
    qtbot.waitUntil(lambda: "thread" in seen, timeout=5_000)
    worker.quit()
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert job.cancel.cancelled and "cancelled" in dock.events


@pytest.mark.parametrize("sync", [True, False], ids=["inline", "threaded"])
def test_result_expected_error_and_bug(dock, qtbot, sync):
    dock.sync = sync
    dock.start_job(Job("run"), result_task, 42)
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert ("result", 42) in dock.events
    dock.start_job(Job("run"), result_task, 0, ValueError("bad input"))
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert dock.status_label.text() == "Run failed: bad input"
    assert ERROR_STYLE in dock.status_label.styleSheet()
    dock.start_job(Job("run"), result_task, 0, TypeError("a bug"))
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert dock.status_label.text() == "Run failed (TypeError): a bug"
    assert "cancelled" not in dock.events


def test_removing_an_input_layer_or_closing_the_panel_cancels(dock, qtbot):
    layer = dock.viewer.add_image(np.zeros((4, 4)), name="x")
    job = Job("train", inputs=(layer,))
    dock.start_job(job, endless_task, job.cancel, {})
    dock.viewer.layers.remove(layer)
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert dock.status_label.text() == "input layer 'x' was removed; run cancelled"
    job = Job("train")
    dock.start_job(job, endless_task, job.cancel, {})
    dock.viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: not dock.is_busy, timeout=5_000)
    assert job.cancel.cancelled
    assert dock.status_label.text() == "The Test panel was closed; run cancelled."
