"""Issue 25: no stale or mislabelled state in the docks (run under xvfb-run; tiny data).

Each test is a scenario a user met: starting an action clears the previous result first, a
saved file always describes what the pickers show now, and errors name the user's layer and
say what to do in GUI words."""

from __future__ import annotations

import dataclasses
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
    # a new result (no assessment shown) is picked, with its source
    viewer.add_image(sim.clean, name="other movie [denoised]",
                     metadata={"neurorestore": {"method": "denoise",
                                                "source_layer": "other movie"}})
    assert w.restored_combo.currentText() == "other movie [denoised]"
    assert w.raw_combo.currentText() == "other movie"
    # picking a result pairs it with its source
    w.restored_combo.setCurrentText("big movie [denoised]")
    assert w.raw_combo.currentText() == "big movie"
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


# --------------------------------------------------------------------------- Restore
@pytest.fixture
def restore(viewer, monkeypatch):
    """A Restore dock whose methods' heavy module is a fake that returns at once."""
    from napari_neurorestore._widgets.restore import RestoreWidget
    from napari_neurorestore.core.methods.base import Method
    from napari_neurorestore.core.models import TrainedModel

    class Fake:
        """The heavy module of every method: training returns at once (or fails), and
        inference writes zeros on the method's grid."""

        calls = 0

        fail = None

        @classmethod
        def train(cls, data, params, cancel=None, **kw):
            cls.calls += 1
            yield from ()
            if cls.fail is not None:
                raise cls.fail
            return TrainedModel(params.method, params.to_dict(), {}, {})

        @classmethod
        def predict(cls, data, model, cancel=None, out=None, **kw):
            yield from ()
            out[...] = 0
            return out

        @staticmethod
        def new_output(shape):
            return np.empty(shape, np.float32)

    monkeypatch.setattr(Method, "impl", lambda self: Fake)
    w = RestoreWidget(PublicOnlyProxy(viewer))
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True
    w.notify = False
    w.fake = Fake
    return w


def test_restore_refusal_resets_the_progress_of_the_last_run(restore, viewer):
    from napari_neurorestore._widgets.restore_jobs import PROGRESS_MAX

    w = restore
    viewer.add_image(np.zeros((12, 16, 16), np.float32), name="movie")
    w.start_training()
    assert w.progress_bar.value == PROGRESS_MAX and w.progress_label.value == "done"
    viewer.add_image(np.zeros((8, 16, 16, 3), np.uint8), name="rgb", rgb=True)
    w.layer_combo.value = viewer.layers["rgb"]
    assert w.start_training() is None
    assert "RGB" in w.status_label.value and "'rgb'" in w.status_label.value
    assert w.progress_bar.value == 0 and w.progress_label.value != "done"


def test_restore_upsample_of_a_4d_layer_is_refused_up_front(restore, viewer):
    w = restore
    w.method_combo.value = "upsample"
    viewer.add_image(np.zeros((3, 6, 32, 32), np.float32), name="tzyx")
    assert w.cost_label.value != ""  # says why there is no estimate
    assert w.start_training() is None
    text = w.status_label.value
    assert "'tzyx'" in text and "(z, y, x)" in text and "zip()" not in text
    assert w.fake.calls == 0 and not w.is_busy and len(viewer.layers) == 1


@pytest.mark.parametrize("method", ["upsample", "isotropize"])
def test_restore_volume_method_refuses_a_movie(restore, viewer, tmp_path, method):
    import tifffile

    from napari_neurorestore._reader import read_tiff_layer

    w = restore
    w.method_combo.value = method
    data = np.random.default_rng(0).random((20, 64, 64)).astype(np.float32)
    p = tmp_path / "movie.tif"
    tifffile.imwrite(p, data, imagej=True, metadata={"axes": "TYX"})
    arr, kw, _ = read_tiff_layer(str(p))[0]
    viewer.add_image(arr, **kw)  # as napari opens it with this plugin's reader
    assert w.start_training() is None
    text = w.status_label.value
    assert "'movie'" in text and "time" in text and w.fake.calls == 0
    # the user says the first axis is z (its label beside the slider): it runs
    viewer.dims.axis_labels = ("z", "y", "x")
    assert w.start_training() is not None and w.fake.calls == 1, w.status_label.value
    assert len(viewer.layers) == 2, (w.status_label.value, [lay.name for lay in viewer.layers])
    viewer.layers.remove(viewer.layers[-1])
    # a layer whose first axis napari labels as time, likewise
    viewer.add_image(data, name="labelled", axis_labels=("t", "y", "x"))
    w.layer_combo.value = viewer.layers["labelled"]
    assert w.start_training() is None
    assert "'labelled'" in w.status_label.value and "time" in w.status_label.value
    assert w.fake.calls == 1 and len(viewer.layers) == 2


def test_restore_non_model_file_is_refused_in_gui_words(restore, tmp_path):
    import pickle

    w = restore
    bad = tmp_path / "notes.pt"
    bad.write_bytes(pickle.dumps({"a": np.arange(3)}))  # a pickle, not a model
    assert w.load_model(bad) is None
    text = w.status_label.value
    assert "notes.pt" in text and "not a model saved by napari-neurorestore" in text
    assert "Weights only" not in text and "weights_only" not in text and "Error" not in text


def test_restore_file_exists_refusals_speak_gui_words(restore, trust, tmp_path):
    from napari_neurorestore.core.models import TrainedModel

    w = restore
    (tmp_path / "model.pt").write_bytes(b"")
    w._use_model(TrainedModel("denoise", {}, {}, {}), "test")
    assert w.save_model(tmp_path / "model.pt") is None
    assert "already exists" in w.status_label.value
    assert "--overwrite" not in w.status_label.value
    folder = tmp_path / "acq"
    folder.mkdir()
    (tmp_path / "out.zarr").mkdir()
    w.live.folder_edit.value = str(folder)
    w.live.output_edit.value = str(tmp_path / "out.zarr")
    assert w.live.start() is None
    assert "already exists" in w.status_label.value
    assert "--overwrite" not in w.status_label.value
    trust.assess()
    (tmp_path / "r.html").write_text("")
    assert trust.save_report(tmp_path / "r.html") is None
    assert "already exists" in trust.status_label.text()
    assert "--overwrite" not in trust.status_label.text()


def test_restore_loaded_model_shows_its_fixed_parameters_as_fixed(restore, viewer, tmp_path):
    from napari_neurorestore.core.methods import params_for
    from napari_neurorestore.core.models import TrainedModel, save_model

    w = restore
    params = dataclasses.asdict(params_for("upsample")())
    params.update(factor=2, lateral_only=True)
    path = save_model(TrainedModel("upsample", params, {}, {}), tmp_path / "up.pt")
    w.method_combo.value = "upsample"
    w.param_widgets["factor"].value = 4  # typed before loading: the model's 2 is shown
    assert w.load_model(path) is not None and w.method == "upsample"
    for name, value in (("factor", 2), ("lateral_only", True)):
        widget = w.param_widgets[name]
        assert widget.value == value and not widget.enabled, name
        assert "fixed by the loaded model" in widget.tooltip
    assert w.param_widgets["ensemble"].enabled  # a run-time setting stays free
    # a model trained here replaces it: the fields are free again
    viewer.add_image(np.zeros((12, 64, 64), np.float32), name="vol")
    w.start_training()
    assert w.param_widgets["factor"].enabled, w.status_label.value
    assert "fixed by the loaded model" not in w.param_widgets["factor"].tooltip


def test_an_interrupted_store_opens_as_a_partial_layer(tmp_path):
    """A result store whose run was interrupted (its record says complete: false) opens
    with a name that says so, as a cancelled run's layer is named."""
    from napari_neurorestore._reader import read_zarr_layer
    from napari_neurorestore.core import io, zarr_io

    pytest.importorskip("zarr")
    p = tmp_path / "movie-denoised.zarr"
    z = io.open_output(p, (10, 8, 8))
    assert not zarr_io.output_progress(p)["complete"]
    del z
    _, kw, _ = read_zarr_layer(str(p))[0]
    assert kw["name"] == "movie-denoised [partial 0/10]"


def test_failures_name_the_users_layers(restore, trust, viewer):
    w = restore
    w.fake.fail = ValueError("the data has too few frames for this window")
    w.layer_combo.value = viewer.layers["truth"]
    w.start_training()
    assert "'truth'" in w.status_label.value and "too few frames" in w.status_label.value
    trust.restored_combo.setCurrentText("cropped")
    trust.assess()
    text = trust.status_label.text()
    assert "Cannot assess" in text and "'cropped'" in text and "'raw'" in text


def test_saving_a_layer_over_a_file_speaks_gui_words(tmp_path):
    from napari_neurorestore._writer import write_image

    p = tmp_path / "movie.tif"
    p.write_bytes(b"keep me")
    with pytest.raises(FileExistsError) as err:
        write_image(str(p), np.zeros((2, 4, 4), np.float32), {"name": "movie"})
    assert "already exists" in str(err.value) and "--overwrite" not in str(err.value)
    assert p.read_bytes() == b"keep me"


def test_restore_volume_method_refuses_the_sample_movie(restore, viewer):
    """The sample data is a (t, y, x) movie: a volume method refuses it as it refuses a
    movie read from a file (it trained on the time axis as z before)."""
    viewer.open_sample("napari-neurorestore", "calcium_movie")
    w = restore
    w.layer_combo.value = w.layer_named("calcium movie (noisy)")
    for method in ("upsample", "isotropize"):
        w.method_combo.value = method
        assert w.start_training() is None
        assert "is a movie" in w.status_label.value and w.fake.calls == 0, w.status_label.value

