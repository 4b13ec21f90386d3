"""GUI tests of the Restore dock's Live mode (run under xvfb-run): a writer thread drops tiny
TIFF files into a folder; the session runs in a real worker thread."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import tifffile

from napari_neurorestore._widgets.live_mode import LIVE_LAYERS, LiveJob
from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore._widgets.traces import TracesWidget
from napari_neurorestore.core.live import PROGRESS_ATTR
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import drain

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

FILE_FRAMES = 10


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (1000 + 100 * rng.standard_normal((40, 32, 32))).astype(np.uint16)


@pytest.fixture(scope="module")
def model(movie, one_torch_thread) -> TrainedModel:
    params = DenoiseParams(epochs=1, train_seconds=None, patch_size=16, batch_size=4, width=8,
                           seed=0, device="cpu")
    return drain(dn.train(movie.astype(np.float32), params))


@pytest.fixture
def widget(viewer, qtbot):
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = False  # the real thread
    return w


def write_files(folder, movie, gap: float, hold: threading.Event | None = None, **kw):
    """Write ``movie`` as acq_00001.tif, ... (10 frames each), by rename, ``gap`` s apart;
    the last one once ``hold`` is set, when given."""
    n_files = len(movie) // FILE_FRAMES

    def run():
        t = 0
        for i, n in enumerate([FILE_FRAMES] * n_files):
            time.sleep(gap)
            if hold is not None and i == n_files - 1:
                hold.wait(20)
            tmp = folder / f"acq_{i + 1:05d}.tif.part"
            tifffile.imwrite(tmp, movie[t:t + n], photometric="minisblack", **kw)
            os.replace(tmp, folder / f"acq_{i + 1:05d}.tif")
            t += n

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def start(w, model, folder, idle: float):
    w._use_model(model, "test")
    w.live.folder_edit.value = str(folder)
    w.live.idle_spin.value = idle
    worker = w.live.start()
    assert worker is None or w.sync or isinstance(w.job, LiveJob)
    return worker


def layer(viewer, folder, role):
    return viewer.layers[f"{folder.name} {LIVE_LAYERS[role]}"]


def record(path) -> dict:
    import zarr

    return dict(zarr.open_array(str(path), mode="r").attrs[PROGRESS_ATTR])


def test_session_matches_offline_and_traces_follow(viewer, widget, qtbot, tmp_path, model,
                                                   movie):
    folder = tmp_path / "acq"
    folder.mkdir()
    traces = TracesWidget(viewer)
    viewer.window.add_dock_widget(traces, name="ROI traces")
    traces.sync = True
    traces.follow_seconds = 0.3
    last_file = threading.Event()
    writer = write_files(folder, movie, gap=0.2, hold=last_file)
    assert start(widget, model, folder, idle=2.5) is not None, widget.status_label.value
    out = widget.job.output
    assert out == tmp_path / "acq_denoised.zarr"  # next to the folder
    names = [f"acq {v}" for v in LIVE_LAYERS.values()]
    qtbot.waitUntil(lambda: all(n in viewer.layers for n in names), timeout=15_000)
    session = layer(viewer, folder, "session")
    assert session.data.shape[0] < len(movie)  # shown while the files still arrive
    # ROIs on the live session: the traces dock follows it as frames arrive
    assert traces.reference_combo.currentText() == session.name
    rois = traces.add_roi_layer()
    rois.add_ellipses(np.array([(16.0, 16.0), (5.0, 5.0)]))
    traces.refresh()
    first = traces.result.n_frames
    assert first < len(movie)
    last_file.set()
    qtbot.waitUntil(lambda: not widget.is_busy, timeout=20_000)
    writer.join(5)
    assert "stopped: idle" in widget.status_label.value, widget.status_label.value

    rec = record(out)
    assert rec["complete"] and rec["frames_done"] == rec["frames_total"] == len(movie)
    assert session.data.shape == movie.shape
    cat = movie.astype(np.float32)
    ref = drain(dn.predict(cat, model, device="cpu", context="causal",
                         ensemble="off"))  # live's setting
    span = float(cat.max() - cat.min())
    den = np.asarray(layer(viewer, folder, "denoised").data)
    assert np.abs(den - ref[-1]).max() <= 1e-3 * span
    np.testing.assert_array_equal(layer(viewer, folder, "raw").data, movie[-1])
    assert np.abs(np.asarray(session.data) - ref).max() <= 1e-3 * span
    qtbot.waitUntil(lambda: traces.result is not None
                    and traces.result.n_frames == len(movie), timeout=5_000)
    assert traces.result.n_frames > first


def test_stop_keeps_a_complete_store_and_the_ui_responsive(viewer, widget, qtbot, tmp_path,
                                                           model, movie):
    from qtpy.QtCore import QTimer

    folder = tmp_path / "scan"
    folder.mkdir()
    writer = write_files(folder, movie[:20], gap=0.2)  # 2 files, then nothing: until Stop
    import dask.array as da

    viewer.layers.remove(viewer.add_image(da.zeros((2, 4, 4))))  # napari's one-off set-up
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    assert start(widget, model, folder, idle=0.0) is not None  # 0: only Stop ends it
    qtbot.waitUntil(lambda: "scan live denoised" in viewer.layers, timeout=15_000)
    qtbot.waitUntil(lambda: not writer.is_alive(), timeout=5_000)
    qtbot.wait(500)
    assert widget.is_busy and widget.live.stop_button.enabled
    assert not widget.live.start_button.enabled
    t0 = time.perf_counter()
    assert widget.live.stop()
    assert time.perf_counter() - t0 < 0.5  # Stop does not wait for the worker
    qtbot.waitUntil(lambda: not widget.is_busy, timeout=10_000)
    timer.stop()
    # the event loop ran all along (a UI waiting on the worker would not tick at all; the
    # bounds allow for a shared, loaded machine)
    gaps = np.diff(ticks)
    assert gaps.max() < 2.0 and len(ticks) > 0.25 * (ticks[-1] - ticks[0]) / 0.02, gaps.max()
    rec = record(tmp_path / "scan_denoised.zarr")
    assert rec["complete"] and rec["frames_done"] == rec["frames_total"] == 20
    assert rec["live"]["state"] == "cancelled"
    assert layer(viewer, folder, "session").data.shape[0] == 20
    assert "stopped: cancelled" in widget.status_label.value
    assert widget.live.start_button.enabled and not widget.live.stop_button.enabled


def test_inline_worker(viewer, widget, tmp_path, model, movie):
    folder = tmp_path / "acq"
    folder.mkdir()
    write_files(folder, movie[:20], gap=0.0, resolution=(2.0, 2.0)).join(5)  # 0.5 px
    widget.sync = True  # start() returns when the session has ended (idle timeout)
    assert start(widget, model, folder, idle=0.0) is None  # never-ending: refused
    assert "idle timeout" in widget.status_label.value
    start(widget, model, folder, idle=0.3)
    assert not widget.is_busy
    assert record(tmp_path / "acq_denoised.zarr")["complete"]
    session = layer(viewer, folder, "session")
    assert session.data.shape == (20, 32, 32)
    np.testing.assert_allclose(session.scale, (1.0, 0.5, 0.5))  # the files' pixel size
    np.testing.assert_allclose(layer(viewer, folder, "denoised").scale, (0.5, 0.5))
    assert layer(viewer, folder, "denoised").translate[-1] == (32 + 4) * 0.5  # beside it
    np.testing.assert_array_equal(layer(viewer, folder, "raw").data, movie[19])


def test_refusals(viewer, widget, tmp_path, model):
    folder = tmp_path / "acq"
    folder.mkdir()
    widget.live.folder_edit.value = str(folder)
    assert widget.live.start() is None
    assert "denoise model" in widget.status_label.value
    widget._use_model(TrainedModel("sparse", {}, {}, {}), "test")
    assert widget.live.start() is None
    assert "'sparse' model" in widget.status_label.value
    widget._use_model(model, "test")
    widget.live.folder_edit.value = str(tmp_path / "missing")
    assert widget.live.start() is None
    assert "existing folder" in widget.status_label.value
    widget.live.folder_edit.value = str(folder)
    widget.live.output_edit.value = str(folder / "inside.zarr")
    assert widget.live.start() is None
    assert "inside the watched folder" in widget.status_label.value
    assert not widget.is_busy and not widget.live.stop()
    # the section is there for the denoiser only
    assert not widget.live.box.isHidden()
    widget.method_combo.value = "sparse"
    assert widget.live.box.isHidden()


# --------------------------------------------------------------------------- issue 25
def test_start_then_stop_at_once_leaves_no_stale_status(viewer, widget, qtbot, tmp_path,
                                                        model):
    """Stop in the same instant as Start: the session ends, the status says so (never
    "Cancelling…" for good), and it names no store, since no file arrived to create one."""
    folder = tmp_path / "scan"
    folder.mkdir()
    assert start(widget, model, folder, idle=0.0) is not None
    assert widget.live.stop()
    qtbot.waitUntil(lambda: not widget.is_busy, timeout=10_000)
    qtbot.wait(100)
    text = widget.status_label.value
    out = tmp_path / "scan_denoised.zarr"
    assert "Cancelling" not in text and "stopped" in text.lower(), text
    assert not out.exists() and str(out) not in text and "no file arrived" in text.lower()
    assert widget.live.start_button.enabled and not widget.live.stop_button.enabled


def test_no_file_arrived_names_no_store(viewer, widget, tmp_path, model):
    folder = tmp_path / "acq"
    folder.mkdir()
    widget.sync = True
    start(widget, model, folder, idle=0.2)
    assert not widget.is_busy
    out = tmp_path / "acq_denoised.zarr"
    text = widget.status_label.value
    assert not out.exists() and str(out) not in text, text
    assert "no file arrived" in text.lower()


def test_a_live_layer_deleted_mid_session_comes_back(viewer, widget, qtbot, tmp_path, model,
                                                     movie):
    folder = tmp_path / "scan"
    folder.mkdir()
    hold = threading.Event()
    write_files(folder, movie, gap=0.2, hold=hold)  # 4 files, the last once told
    assert start(widget, model, folder, idle=1.5) is not None
    qtbot.waitUntil(lambda: "scan live denoised" in viewer.layers, timeout=15_000)
    viewer.layers.remove("scan live denoised")
    hold.set()
    qtbot.waitUntil(lambda: "scan live denoised" in viewer.layers, timeout=15_000)
    qtbot.waitUntil(lambda: not widget.is_busy, timeout=15_000)
    np.testing.assert_array_equal(layer(viewer, folder, "session").data.shape, (40, 32, 32))
    assert layer(viewer, folder, "denoised").data.shape == (32, 32)
    assert [la.name for la in viewer.layers].count("scan live denoised") == 1
