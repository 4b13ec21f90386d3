"""GUI tests of the Trust report dock widget (run under xvfb-run; tiny data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_neurorestore._widgets.trust import TrustWidget
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.gui

SCALE = (2.0, 0.5, 0.5)
TRANSLATE = (10.0, -3.0, 4.5)


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=120, shape=(48, 48), n_cells=8, seed=3)


@pytest.fixture
def setup(viewer, sim, monkeypatch, qtbot):
    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    raw = viewer.add_image(sim.raw, name="movie", scale=SCALE, translate=TRANSLATE)
    smooth = gaussian_filter(sim.raw.astype(np.float32), (6, 2, 2))
    md = {"neurorestore": {"method": "denoise", "params": {"window": 7},
                           "train_seconds": 4.0}}
    out = viewer.add_image(smooth, name="movie [denoised]", scale=SCALE, translate=TRANSLATE,
                           metadata=md)
    w = TrustWidget(viewer)
    viewer.window.add_dock_widget(w, name="Trust report")
    w.transients_check.setChecked(False)
    return w, raw, out


def test_assess_shows_warnings_and_adds_layers(setup, viewer, tmp_path):
    w, raw, out = setup
    # the pickers default to the raw layer and the layer with a restoration record
    assert w.raw_combo.currentText() == "movie"
    assert w.restored_combo.currentText() == "movie [denoised]"
    raw_before = np.array(raw.data, copy=True)
    w.assess()
    assert not w.is_busy and w.report is not None
    rows = w.table_rows()
    assert len(rows) == len(w.report.checks)
    warned = {r[0] for r in rows if r[3] == "WARN"}
    assert "residual_structure" in warned and warned == set(w.report.flags)
    assert "PASS" in {r[3] for r in rows}
    assert "gain" in w.noise_label.text() and "denoise" in w.noise_label.text()
    assert "warning" in w.verdict_label.text()
    assert w.residual_button.isEnabled() and w.save_button.isEnabled()

    layer = w.add_residual_layer()
    assert layer.name == "movie [removed]"
    assert tuple(layer.scale) == SCALE and tuple(layer.translate) == TRANSLATE
    lo, hi = layer.contrast_limits
    assert lo == pytest.approx(-hi) and hi > 0
    assert layer.metadata["neurorestore"]["kind"] == "residual"
    assert layer.metadata["neurorestore"]["restored_layer"] == "movie [denoised]"
    np.testing.assert_allclose(layer.data, sim_residual(raw, out), atol=1e-4)
    smap = w.add_structure_layer()
    assert smap.name == "movie [structure]" and smap.data.shape == (48, 48)
    assert tuple(smap.scale) == SCALE[1:]
    np.testing.assert_array_equal(raw.data, raw_before)  # the user's layers are untouched
    assert "neurorestore" not in raw.metadata

    html_path = w.save_report(tmp_path / "r.html")
    assert html_path is not None and "data:image/png;base64," in html_path.read_text()
    assert json.loads((tmp_path / "r.json").read_text())["flags"] == w.report.flags
    assert w.save_report(tmp_path / "r.html") is None  # existing: refused
    assert "already exists" in w.status_label.text()
    assert w.save_report(tmp_path / "r.html", overwrite=True) is not None

    shots = tmp_path / "screenshots"
    shots.mkdir()
    png = shots / "trust_widget.png"
    assert w.grab().save(str(png))
    assert png.stat().st_size > 5_000


def sim_residual(raw, out):
    return np.asarray(raw.data, np.float32) - np.asarray(out.data, np.float32)


def test_clean_output_has_no_warnings_and_bad_input_is_reported(viewer, sim, monkeypatch):
    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean, name="truth")
    viewer.add_image(sim.clean[:, :40], name="cropped")
    w = TrustWidget(viewer)
    w.transients_check.setChecked(False)
    w.raw_combo.setCurrentText("raw")
    w.restored_combo.setCurrentText("truth")
    w.assess()
    assert w.report.flags == []
    assert {r[3] for r in w.table_rows()} <= {"PASS", "N/A"}
    assert "No warnings" in w.verdict_label.text()
    w.restored_combo.setCurrentText("cropped")
    w.assess()
    assert "Cannot assess" in w.status_label.text() and "shapes differ" in w.status_label.text()
    w.restored_combo.setCurrentText("raw")
    assert w.assess() is None and "same layer" in w.status_label.text()
    assert len(viewer.layers) == 3


def test_restore_widget_adds_the_residual_layer(viewer, monkeypatch, qtbot):
    """The Restore widget's "Add residual layer" adds '<input> [removed]' on the input's
    grid, also for a result on a finer grid (brought back by the method's forward model)."""
    from napari_neurorestore._widgets.restore import RestoreWidget
    from napari_neurorestore.core.methods import get
    from napari_neurorestore.core.methods.base import Method
    from napari_neurorestore.core.models import TrainedModel

    rng = np.random.default_rng(0)
    vol = rng.poisson(20, size=(4, 8, 8)).astype(np.float32)
    up = np.repeat(np.repeat(vol + 1.0, 2, 1), 2, 2)  # bins back to vol + 1

    class Fake:  # the heavy module: a "trained" model and its prediction, up
        @staticmethod
        def train(data, params, cancel=None, **kw):
            yield from ()
            return TrainedModel("upsample", params.to_dict(), {}, {})

        @staticmethod
        def predict(data, model, cancel=None, out=None, **kw):
            yield from ()
            out[...] = up
            return out

        @staticmethod
        def new_output(shape):
            return np.empty(shape, np.float32)

    monkeypatch.setattr(Method, "impl", lambda self: Fake)
    monkeypatch.setattr(type(get("upsample")), "check_input", lambda self, *a, **k: None)
    layer = viewer.add_image(vol, name="vol", scale=(3, 1, 1), translate=(0, 10, 10))
    w = RestoreWidget(viewer)
    w.sync = True
    w.method_combo.value = "upsample"
    w.set_params({"factor": 2, "lateral_only": True, "device": "cpu"})
    assert w.residual_check.value is False
    w.start_training()
    assert "vol [removed]" not in viewer.layers  # off by default
    w.residual_check.value = True
    w.start_training()
    res = viewer.layers["vol [removed]"]
    np.testing.assert_allclose(res.data, -1.0, atol=1e-5)
    assert tuple(res.scale) == (3, 1, 1) and tuple(res.translate) == (0, 10, 10)
    assert res.contrast_limits[0] == pytest.approx(-res.contrast_limits[1])
    assert res.metadata["neurorestore"]["method"] == "upsample"
    np.testing.assert_array_equal(layer.data, vol)
