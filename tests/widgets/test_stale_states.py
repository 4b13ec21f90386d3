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


# --------------------------------------------------------------------------- ROI traces
@pytest.fixture
def traces(viewer, sim, qtbot):
    from napari_neurorestore._widgets.traces import TracesWidget

    viewer.add_image(sim.raw, name="raw")
    w = TracesWidget(PublicOnlyProxy(viewer))
    w.sync = True
    w.debounce_ms = 5
    w.reference_combo.setCurrentText("raw")
    return w


def _centre(labels, k):
    ys, xs = np.nonzero(labels == k)
    return float(ys.mean()), float(xs.mean())


def test_traces_labels_with_too_few_frames_is_refused_in_words(traces, viewer, sim):
    w = traces
    short = np.stack([sim.labels] * 10)  # (10, 32, 32) labels on a 60-frame movie
    viewer.add_labels(short, name="cells")
    w.roi_combo.setCurrentText("cells")
    w.go_to_frame(40)  # beyond the labels' 10 frames
    w._safe_refresh()
    assert w.error is not None
    assert "IndexError" not in w.error and "unexpected" not in w.error
    assert "'cells'" in w.error and "(10, 32, 32)" in w.error
    assert "(32, 32)" in w.error and "(60, 32, 32)" in w.error  # what shape is expected
    w.go_to_frame(3)  # within its 10 frames: still refused (not silently frame 3's)
    w._safe_refresh()
    assert w.error is not None and "(60, 32, 32)" in w.error and w.result is None


def test_traces_labels_with_a_compare_layer_of_another_size_leaves_only_it_out(
        traces, viewer, sim):
    w = traces
    viewer.add_image(sim.clean, name="restored")
    viewer.add_image(np.repeat(np.repeat(sim.clean, 2, 1), 2, 2), name="upsampled")
    viewer.add_labels(sim.labels, name="cells")
    w.roi_combo.setCurrentText("cells")
    w.set_compare(["restored", "upsampled"])
    w._safe_refresh()
    assert w.error is None, w.status_label.text()
    assert [lt.name for lt in w.result.layers] == ["raw", "restored"]
    assert "'upsampled'" in w.status_label.text() and "left out" in w.status_label.text()


def test_traces_failed_export_removes_the_written_line(traces, viewer, sim, tmp_path,
                                                        monkeypatch):
    from napari_neurorestore._widgets import traces as traces_mod

    w = traces
    viewer.add_labels(sim.labels, name="cells")
    w.roi_combo.setCurrentText("cells")
    w._safe_refresh()
    assert w.result is not None
    good = tmp_path / "traces.csv"
    target = {"path": str(good)}
    monkeypatch.setattr(traces_mod.QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (target["path"], "")))
    w.export_traces_button.click()
    assert good.exists() and "written to" in w.status_label.text()
    target["path"] = str(tmp_path / "no such folder" / "traces.csv")
    w.export_traces_button.click()
    assert w.error is not None
    assert "written to" not in w.status_label.text()


def test_traces_zero_area_polygon_is_left_out_with_a_word(traces, viewer, sim):
    w = traces
    layer = w.add_roi_layer()
    layer.add_ellipses(np.array([_centre(sim.labels, 1), (4.0, 4.0)]))
    cy, cx = _centre(sim.labels, 2)
    cy, cx = round(cy), round(cx)
    layer.add_polygons([np.array([[cy, cx], [cy, cx + 4.0], [cy, cx + 8.0]])])  # a line
    w._safe_refresh()
    assert w.error is None, w.status_label.text()
    ids = [int(i) for i in layer.features["roi"]]
    assert w.result.roi_ids == [ids[0]]
    assert f"ROI {ids[1]}" in w.status_label.text() and "area" in w.status_label.text()
