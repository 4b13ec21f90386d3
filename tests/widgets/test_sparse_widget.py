"""GUI round trip of sparse-axis reconstruction through the Restore widget (xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.gui

SCALE = (2.0, 0.5, 0.25)
TRANSLATE = (10.0, -3.0, 4.5)


@pytest.fixture(scope="module")
def full() -> np.ndarray:
    return simulate_calcium_movie(n_frames=16, shape=(32, 32), n_cells=4, seed=0).raw


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True  # inline: start_training() returns when done
    w.method_combo.value = "sparse"
    for name, v in {"epochs": 1, "train_seconds": 0.0, "patch_size": 8, "batch_size": 4,
                    "width": 8, "device": "cpu", "factor": 4}.items():
        w.param_widgets[name].value = v
    return w


@pytest.mark.parametrize("streamed", [False, True])
def test_sparse_train_then_run_round_trip(widget, full, streamed, monkeypatch, tmp_path):
    if streamed:  # a "large" result: written chunk by chunk into a zarr-backed layer
        pytest.importorskip("zarr")
        from napari_neurorestore._widgets import live_output

        monkeypatch.setenv("NEURORESTORE_RESULTS_DIR", str(tmp_path / "results"))
        monkeypatch.setattr(live_output, "LARGE_RESULT_BYTES", 0)
    viewer = widget.viewer
    sparse = full[:, ::4]
    layer = viewer.add_image(sparse, name="sparse", scale=SCALE, translate=TRANSLATE)
    assert list(widget.param_widgets["axis"].choices) == ["y", "x"]
    widget.start_training()
    assert len(viewer.layers) == 2, widget.status_label.value
    out = widget.last_result_layer
    assert out.data.shape == (16, 32, 32) and out.data.dtype == np.float32
    assert ("store" in out.metadata["neurorestore"]) == streamed
    # acquired row i (world y = t_y + i * s_y) lands on output row i*M: same origin, s_y / M
    np.testing.assert_allclose(out.scale, (2.0, 0.5 / 4, 0.25))
    np.testing.assert_allclose(out.translate, TRANSLATE)
    assert out.metadata["neurorestore"]["method"] == "sparse"
    assert layer.data is sparse
    widget.start_run()  # the trained model again, no training
    assert len(viewer.layers) == 3, widget.status_label.value
    np.testing.assert_allclose(widget.last_result_layer.data, out.data, rtol=1e-5, atol=1e-3)


def test_sparse_simulate_from_a_full_layer(widget, full):
    viewer = widget.viewer
    viewer.add_image(full, name="full", scale=SCALE)
    widget.param_widgets["simulate"].value = True
    widget.start_training()
    assert len(viewer.layers) == 2, widget.status_label.value
    out = widget.last_result_layer
    assert out.data.shape == full.shape  # on the full stack's grid
    np.testing.assert_allclose(out.scale, SCALE)
    figs = out.metadata["neurorestore"]["simulation"]
    assert figs["factor"] == 4 and np.isfinite(figs["psnr"]) and "cubic" in figs
    status = widget.status_label.value  # the user sees the figures, not only the metadata
    assert f"PSNR {figs['psnr']:6.2f} dB" in status and "cubic interpolation" in status
