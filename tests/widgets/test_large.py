"""A dask-backed layer stays lazy through the Restore widget's round trip (under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest
from counting_array import CountingArray as Counting

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]
da = pytest.importorskip("dask.array")

def test_dask_layer_stays_lazy_through_train_and_restore(make_napari_viewer, qtbot,
                                                          monkeypatch):
    """Train + restore a dask layer from the widget: no read of the whole array, training
    reads only its sample (counted up to the first inference progress report), inference
    reads each frame about once, and the layer's data is still the dask array."""
    from napari_neurorestore._widgets import worker as worker_mod
    from napari_neurorestore.core.methods.denoise import heavy as denoise

    movie = simulate_calcium_movie(n_frames=240, shape=(32, 32), n_cells=4, seed=0).raw
    frame = movie[0].size
    monkeypatch.setattr(denoise, "TRAIN_CACHE_BYTES", 100 * 4 * frame)  # a 100-frame budget
    counting = Counting(movie)
    lazy = da.from_array(counting, chunks=(16, 32, 32))
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True  # inline worker: deterministic
    layer = viewer.add_image(lazy, name="big", contrast_limits=(0, 1000))
    for name, v in {"epochs": 1, "train_seconds": 0.0, "patch_size": 16, "batch_size": 4,
                    "width": 8, "device": "cpu", "chunk_frames": 32}.items():
        w.param_widgets[name].value = v
    counting.reads.clear()
    at_predict: list[int] = []
    task = worker_mod.restore_task

    def spy_task(*args, **kwargs):
        gen = task(*args, **kwargs)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                return stop.value
            if p.stage == "predict" and not at_predict:
                at_predict.append(sum(counting.reads))
            yield p

    monkeypatch.setattr("napari_neurorestore._widgets.restore_jobs.restore_task", spy_task)
    w.start_training()  # inline: returns when done
    assert not w.is_busy and "big [denoised]" in viewer.layers, w.status_label.value
    out = viewer.layers["big [denoised]"]
    assert out.data.shape == movie.shape and np.isfinite(out.data).all()
    assert layer.data is lazy
    reads = np.array(counting.reads)
    assert reads.max() <= 16 * frame  # never more than one dask chunk per read
    # training: its sample only (within the 100-frame budget, + one dask chunk)
    assert at_predict and 0 < at_predict[0] <= (100 + 16) * frame < movie.size // 2
    # inference: each frame once, plus the window's overlap at the edges of its 8 chunks
    # (rounded up to whole dask chunks)
    assert reads.sum() - at_predict[0] <= (240 + 8 * 2 * 16) * frame


def _small_budget(w: RestoreWidget) -> None:
    for name, v in {"epochs": 1, "train_seconds": 0.0, "patch_size": 16, "batch_size": 4,
                    "width": 8, "device": "cpu", "chunk_frames": 16}.items():
        w.param_widgets[name].value = v


def test_large_result_streams_into_a_store_shown_while_written(make_napari_viewer, qtbot,
                                                               monkeypatch, tmp_path):
    """Above LARGE_RESULT_BYTES the result goes to a zarr store in the results folder; its
    layer appears when inference starts (frames not yet restored are NaN) and becomes the
    result layer; it equals the in-memory result."""
    from napari_neurorestore._widgets import live_output
    from napari_neurorestore._widgets import restore_jobs as restore_mod
    from napari_neurorestore.core import zarr_io

    zarr = pytest.importorskip("zarr")
    monkeypatch.setenv("NEURORESTORE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(live_output, "LARGE_RESULT_BYTES", 0)
    movie = simulate_calcium_movie(n_frames=60, shape=(32, 32), n_cells=4, seed=0).raw
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True
    viewer.add_image(da.from_array(movie, chunks=(16, 32, 32)), name="big")
    _small_budget(w)
    seen_nan = []
    task = restore_mod.restore_task

    def spy_task(*args, **kwargs):
        gen = task(*args, **kwargs)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                return stop.value
            yield p  # the widget handles it (inline) before we look
            if p.stage == "predict" and "big [denoised]" in viewer.layers and not seen_nan:
                live = viewer.layers["big [denoised]"]
                seen_nan.append(bool(np.isnan(np.asarray(live.data[-1])).all()))

    monkeypatch.setattr(restore_mod, "restore_task", spy_task)
    w.start_training()
    assert not w.is_busy, w.status_label.value
    assert seen_nan == [True]  # shown while being written, before the last frames were done
    names = [layer.name for layer in viewer.layers]
    assert names == ["big", "big [denoised]"]  # added once
    out = viewer.layers["big [denoised]"]
    assert isinstance(out.data, zarr.Array) and out is w.last_result_layer
    store = out.metadata["neurorestore"]["store"]
    assert store.startswith(str(tmp_path / "results")) and "Written to" in w.status_label.value
    assert zarr_io.output_progress(store)["complete"]
    ref = drain_predict(movie, w.model)
    np.testing.assert_allclose(out.data[:], ref, rtol=1e-5, atol=1e-3)

    # cancel mid-inference: the partial store stays, shown, and the status says how far
    def cancelling_task(*args, **kwargs):
        gen = task(*args, **kwargs)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                return stop.value
            yield p
            if p.stage == "predict" and p.step >= 32:
                w.cancel()

    monkeypatch.setattr(restore_mod, "restore_task", cancelling_task)
    assert w.start_run() is not None
    assert not w.is_busy
    status = w.status_label.value
    assert "cancelled: 32 of 60 frames were restored" in status, status
    # a partial result never looks finished: its name says how much of it was written
    assert "big [denoised] (2)" not in viewer.layers
    part = viewer.layers["big [denoised, partial 32/60]"]
    assert "'big [denoised, partial 32/60]'" in status
    assert part.metadata["neurorestore"]["partial"] is True
    assert part.metadata["neurorestore"]["frames_done"] == 32
    np.testing.assert_allclose(part.data[:32], ref[:32], rtol=1e-5, atol=1e-3)
    assert np.isnan(part.data[32:]).all()


def drain_predict(movie, model):
    from napari_neurorestore.core.methods.denoise import heavy as denoise
    from napari_neurorestore.core.progress import drain

    return drain(denoise.predict(movie, model, chunk_frames=16))


def test_residual_of_a_dask_layer_stays_lazy(make_napari_viewer, qtbot):
    """'Add residual layer' on a dask layer adds a dask residual (raw - restored), read
    frame chunk by frame chunk, never the whole array at once."""
    movie = simulate_calcium_movie(n_frames=60, shape=(32, 32), n_cells=4, seed=0).raw
    counting = Counting(movie)
    lazy = da.from_array(counting, chunks=(16, 32, 32))
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True
    viewer.add_image(lazy, name="big", contrast_limits=(0, 1000))
    _small_budget(w)
    w.residual_check.value = True
    w.start_training()
    assert not w.is_busy, w.status_label.value
    res = viewer.layers["big [removed]"]
    assert isinstance(res.data, da.Array)
    out = np.asarray(viewer.layers["big [denoised]"].data)
    np.testing.assert_allclose(np.asarray(res.data[:5]), movie[:5].astype(np.float32) - out[:5],
                               atol=1e-4)
    lo, hi = res.contrast_limits
    assert lo == -hi and hi > 0
    assert max(counting.reads) <= 16 * movie[0].size
