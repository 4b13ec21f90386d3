"""Round trip of the upsampling method through the generic Restore widget (run under
xvfb-run; tiny data and budgets)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core.methods.upsample.spec import bin_array
from napari_neurorestore.core.simulate import simulate_neuron_volume

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True  # inline: start_training() returns when done
    return viewer, w


def test_upsample_train_then_run_overlays_the_input(widget):
    viewer, w = widget
    vol = bin_array(simulate_neuron_volume((16, 48, 48), n_somata=2, n_neurites=4, seed=0),
                    (2, 2, 2)) * 1000
    layer = viewer.add_image(vol.astype(np.uint16), name="vol", scale=(2.0, 0.5, 0.5),
                             translate=(1.0, 10.0, -4.0))
    w.layer_combo.value = layer
    w.method_combo.value = "upsample"
    for name, v in {"factor": 2, "steps": 3, "train_seconds": 0.0, "patch_size": 12,
                    "batch_size": 2, "width": 8, "depth": 1, "device": "cpu"}.items():
        w.param_widgets[name].value = v
    w.start_training()
    out = viewer.layers["vol [upsampled]"]
    assert out.data.shape == (16, 48, 48) and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (1.0, 0.25, 0.25))
    # the first output pixel's corner sits on the first input pixel's corner
    np.testing.assert_allclose(np.asarray(out.translate) - np.asarray(out.scale) / 2,
                               np.asarray(layer.translate) - np.asarray(layer.scale) / 2)
    # the input's units: binning the output gives the input back
    np.testing.assert_allclose(bin_array(out.data, (2, 2, 2)), layer.data, rtol=1e-4, atol=0.02)
    assert out.metadata["neurorestore"]["method"] == "upsample"
    assert w.model is not None and w.model.method == "upsample"
    w.start_run()  # the trained model, no training
    again = viewer.layers["vol [upsampled] (2)"]
    np.testing.assert_allclose(again.data, out.data, rtol=1e-5, atol=1e-3)


def test_preview_on_a_crop_then_run_reuses_its_model(widget):
    viewer, w = widget
    vol = bin_array(simulate_neuron_volume((16, 96, 96), n_somata=3, n_neurites=6, seed=1),
                    (2, 2, 2)) * 1000  # (8, 48, 48): larger than the 16-pixel test crop
    layer = viewer.add_image(vol.astype(np.uint16), name="vol", scale=(2.0, 0.5, 0.5))
    w.layer_combo.value = layer
    w.method_combo.value = "denoise"
    assert w.preview_button.native.isHidden()  # only methods with a preview show the button
    w.method_combo.value = "upsample"
    assert not w.preview_button.native.isHidden() and w.preview_button.enabled
    for name, v in {"factor": 2, "steps": 3, "train_seconds": 0.0, "patch_size": 12,
                    "batch_size": 2, "width": 8, "depth": 1, "device": "cpu"}.items():
        w.param_widgets[name].value = v
    import napari_neurorestore._widgets.restore_jobs as restore

    restore.PREVIEW_SIZE, old = 16, restore.PREVIEW_SIZE
    try:
        w.start_preview()
    finally:
        restore.PREVIEW_SIZE = old
    prev = w.last_result_layer
    assert prev is not None and "preview" in prev.name, w.status_label.value
    assert prev.data.shape == (16, 32, 32)  # an 8x16x16 crop, upsampled 2x
    # the preview trained a model: its truth-free self-check is said (8x48x48 binned 2x)
    assert "self-check" in w.status_label.value and "binned 2x" in w.status_label.value
    np.testing.assert_allclose(prev.scale, (1.0, 0.25, 0.25))
    assert w.model is not None and w.model.method == "upsample"
    model = w.model
    w.start_run()  # the whole volume with the preview's model: no training again
    full = w.last_result_layer
    assert full.data.shape == (16, 96, 96) and w.model is model
    # the preview's crop sits where the full result has the same values (same model)
    origin = np.rint((np.asarray(prev.translate) - np.asarray(full.translate))
                     / np.asarray(full.scale)).astype(int)
    z, y, x = origin
    crop = full.data[z:z + 16, y:y + 32, x:x + 32]
    assert np.corrcoef(crop[2:-2, 4:-4, 4:-4].ravel(), prev.data[2:-2, 4:-4, 4:-4].ravel())[0, 1] > 0.95


def test_large_upsampled_result_streams_into_a_zarr_layer(widget, monkeypatch, tmp_path):
    """Above LARGE_RESULT_BYTES the upsampled volume is written tile by tile into a zarr
    store shown as the result layer, on the output's grid, equal to in-memory inference."""
    zarr = pytest.importorskip("zarr")
    from napari_neurorestore._widgets import live_output
    from napari_neurorestore.core.methods.upsample import heavy as upsample
    from napari_neurorestore.core.progress import drain

    monkeypatch.setenv("NEURORESTORE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(live_output, "LARGE_RESULT_BYTES", 0)
    viewer, w = widget
    vol = bin_array(simulate_neuron_volume((16, 48, 48), n_somata=2, n_neurites=4, seed=0),
                    (2, 2, 2)) * 1000
    layer = viewer.add_image(vol.astype(np.uint16), name="vol", scale=(2.0, 0.5, 0.5))
    w.layer_combo.value = layer
    w.method_combo.value = "upsample"
    for name, v in {"factor": 2, "steps": 3, "train_seconds": 0.0, "patch_size": 12,
                    "batch_size": 2, "width": 8, "depth": 1, "device": "cpu"}.items():
        w.param_widgets[name].value = v
    w.start_training()
    assert not w.is_busy, w.status_label.value
    names = [lay.name for lay in viewer.layers]
    assert names == ["vol", "vol [upsampled]"]  # the live layer became the result
    out = viewer.layers["vol [upsampled]"]
    assert isinstance(out.data, zarr.Array) and out.data.shape == (16, 48, 48)
    np.testing.assert_allclose(out.scale, (1.0, 0.25, 0.25))
    store = out.metadata["neurorestore"]["store"]
    assert store.startswith(str(tmp_path / "results")) and store.endswith("-upsample.zarr")
    ref = drain(upsample.predict(layer.data, w.model))
    np.testing.assert_allclose(np.asarray(out.data), ref, rtol=1e-5, atol=1e-3)


def test_a_loaded_model_of_another_factor_is_refused(widget):
    from napari_neurorestore.core.methods.upsample.spec import UpsampleParams
    from napari_neurorestore.core.models import TrainedModel

    viewer, w = widget
    layer = viewer.add_image(np.zeros((8, 16, 16), np.float32), name="vol")
    w.layer_combo.value = layer
    w.method_combo.value = "upsample"
    w.model = TrainedModel("upsample", UpsampleParams(factor=2).to_dict(), {},
                           {"lo": 0.0, "scale": 1.0})
    w.param_widgets["factor"].value = 4
    w.param_widgets["device"].value = "cpu"
    w.start_run()
    # the message of the CLI and the API, not a x2 result
    assert w.status_label.value == "Restoring 'vol' failed: the model was trained for factor 2, not 4"
    assert [la.name for la in viewer.layers] == ["vol"]
