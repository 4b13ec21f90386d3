"""Issue 25: no stale or mislabelled state in the docks (run under xvfb-run; tiny data).

Each test is a scenario a user met: starting an action clears the previous result first, a
saved file always describes what the pickers show now, and errors name the user's layer and
say what to do in GUI words."""

from __future__ import annotations

import json

import numpy as np
import pytest
from napari.utils._proxies import PublicOnlyProxy

from napari_neurorestore._widgets.trust import TrustWidget
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=60, shape=(32, 32), n_cells=4, seed=5)


@pytest.fixture
def trust(viewer, sim, monkeypatch):
    """A Trust dock (given napari's proxy of the viewer, as a plugin dock is) over a raw
    movie, its clean truth and a cropped layer an assessment fails on."""
    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean, name="truth")
    viewer.add_image(sim.clean[:, :24], name="cropped")
    w = TrustWidget(PublicOnlyProxy(viewer))
    w.transients_check.setChecked(False)
    w.raw_combo.setCurrentText("raw")
    w.restored_combo.setCurrentText("truth")
    return w


# --------------------------------------------------------------------------- Trust report
def test_trust_failed_assessment_leaves_nothing_stale(trust, viewer, tmp_path):
    w = trust
    w.assess()
    assert w.report is not None and w.save_button.isEnabled()
    assert "No warnings" in w.verdict_label.text()
    w.restored_combo.setCurrentText("cropped")
    w.assess()
    assert "Cannot assess" in w.status_label.text()
    # the previous verdict, table and buttons are gone: nothing can be saved or added
    assert w.report is None
    assert w.table.rowCount() == 0
    assert "No warnings" not in w.verdict_label.text()
    assert w.noise_label.text() == ""
    for b in (w.save_button, w.residual_button, w.structure_button):
        assert not b.isEnabled()
    assert w.save_report(tmp_path / "r.html") is None
    assert not (tmp_path / "r.html").exists()
    assert w.add_residual_layer() is None
    assert len(viewer.layers) == 3


def test_trust_assess_clears_the_previous_result_before_it_runs(trust, monkeypatch):
    w = trust
    w.assess()
    assert w.report is not None
    seen = {}

    def spy(*args, **kwargs):
        seen["report"] = w.report
        seen["rows"] = w.table.rowCount()
        seen["save"] = w.save_button.isEnabled()
        seen["residual"] = w.residual_button.isEnabled()
        return None

    monkeypatch.setattr(w, "start_job", spy)
    w.assess()
    assert seen == {"report": None, "rows": 0, "save": False, "residual": False}


def test_trust_save_describes_what_the_pickers_show(trust, viewer, tmp_path):
    """After an assessment, changing a picker clears it (or Save refuses): the saved report
    and an added residual never carry another layer's name."""
    w = trust
    w.assess()
    assert w.report is not None
    viewer.add_image(np.asarray(viewer.layers["truth"].data) + 1, name="other")
    w.restored_combo.setCurrentText("other")
    path = w.save_report(tmp_path / "r.html")
    if path is not None:  # allowed only if it describes 'other'... it cannot: not assessed
        data = json.loads((tmp_path / "r.json").read_text())
        pytest.fail(f"saved an assessment of {data} under the pickers raw/other")
    assert w.add_residual_layer() is None
    assert not any("removed" in la.name for la in viewer.layers)
    assert "Assess" in w.status_label.text()


def test_trust_refuses_the_same_layer_through_napari_proxies(viewer, sim, monkeypatch):
    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    viewer.add_image(sim.raw, name="movie")
    w = TrustWidget(PublicOnlyProxy(viewer))
    w.transients_check.setChecked(False)
    assert w.raw_combo.currentText() == w.restored_combo.currentText() == "movie"
    assert w.assess() is None
    assert w.report is None
    text = w.status_label.text()
    assert "same layer" in text and "movie" in text and "Restored" in text


def test_trust_pairs_a_result_with_the_layer_it_was_made_from(viewer, sim, monkeypatch):
    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    viewer.add_image(sim.raw, name="other movie")
    viewer.add_image(sim.raw, name="big movie")
    md = {"neurorestore": {"method": "denoise", "source_layer": "big movie"}}
    viewer.add_image(sim.clean, name="big movie [denoised]", metadata=md)
    w = TrustWidget(PublicOnlyProxy(viewer))
    assert w.restored_combo.currentText() == "big movie [denoised]"
    assert w.raw_combo.currentText() == "big movie"
    # picking a result pairs it with its source
    viewer.add_image(sim.clean, name="other movie [denoised]",
                     metadata={"neurorestore": {"method": "denoise",
                                                "source_layer": "other movie"}})
    w.restored_combo.setCurrentText("other movie [denoised]")
    assert w.raw_combo.currentText() == "other movie"
    w.restored_combo.setCurrentText("big movie [denoised]")
    assert w.raw_combo.currentText() == "big movie"
