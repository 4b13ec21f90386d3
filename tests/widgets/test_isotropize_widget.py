"""Round trip of axial isotropization through the Restore widget (xvfb-run; tiny data)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core.simulate import degrade_axial, simulate_neuron_volume

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("streamed", [False, True])
def test_isotropize_train_then_run_on_a_non_integer_ratio(make_napari_viewer, qtbot, streamed,
                                                          monkeypatch, tmp_path):
    if streamed:  # a "large" result: written block by block into a zarr-backed layer
        pytest.importorskip("zarr")
        from napari_neurorestore._widgets import live_output

        monkeypatch.setenv("NEURORESTORE_RESULTS_DIR", str(tmp_path / "results"))
        monkeypatch.setattr(live_output, "LARGE_RESULT_BYTES", 0)
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True
    vol = degrade_axial(simulate_neuron_volume((25, 40, 40), n_somata=2, n_neurites=6, seed=0),
                        1.0, 2, photons=200, seed=0).raw  # 13 slices
    layer = viewer.add_image(vol, name="vol", scale=(1.25, 0.5, 0.5), translate=(3.0, 0, 0))
    w.layer_combo.value = layer
    w.method_combo.value = "isotropize"
    assert w.param_widgets["z_ratio"].value == pytest.approx(2.5)  # from the layer's scale
    assert list(w.param_widgets["degradation"].choices) == ["gaussian", "learned"]
    for name, v in {"steps": 3, "train_seconds": 0.0, "patch_size": 16, "batch_size": 2,
                    "width": 8, "device": "cpu", "tile_size": 32}.items():
        w.param_widgets[name].value = v
    w.start_training()
    out = w.last_result_layer
    assert out is not None and out.name == "vol [isotropic]", w.status_label.value
    n_out = round((13 - 1) * 2.5) + 1
    assert out.data.shape == (n_out, 40, 40) and out.data.dtype == np.float32
    assert ("store" in out.metadata["neurorestore"]) == streamed
    assert isinstance(out.data, np.ndarray) != streamed
    np.testing.assert_allclose(out.scale, (0.5, 0.5, 0.5))  # z pitch / R: overlays the input
    np.testing.assert_allclose(out.translate, layer.translate)
    assert out.metadata["neurorestore"]["method"] == "isotropize"
    assert abs(float(np.mean(out.data)) - float(vol.mean())) < 0.1 * float(vol.mean())  # units
    w.start_run()
    np.testing.assert_allclose(w.last_result_layer.data, out.data, rtol=1e-4, atol=1e-2)
