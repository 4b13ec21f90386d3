"""GUI tests of the Restore dock widget (run under xvfb-run; tiny data and budgets)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from napari_neurorestore._widgets import worker as worker_mod
from napari_neurorestore._widgets.restore import RestoreWidget, format_progress, format_seconds
from napari_neurorestore.core.methods import names, params_for
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.models import RestoreResult, TrainedModel
from napari_neurorestore.core.progress import Progress
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.gui

SCALE = (2.0, 0.5, 0.5)
TRANSLATE = (10.0, -3.0, 4.5)


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return simulate_calcium_movie(n_frames=40, shape=(32, 32), n_cells=4, seed=0).raw


@pytest.fixture
def widget(viewer, qtbot):
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")  # owned (and closed) by the viewer
    w.sync = False  # the real threaded path unless a test says otherwise
    return w


def small_budget(w: RestoreWidget, **overrides) -> None:
    """Seconds-long training: 1 epoch of 16x16 patches, batches of 4 (~9 steps)."""
    values = {
        "epochs": 1,
        "train_seconds": 0.0,
        "patch_size": 16,
        "batch_size": 4,
        "width": 8,
        "device": "cpu",
    }
    values.update(overrides)
    for name, v in values.items():
        w.param_widgets[name].value = v


def wait_idle(qtbot, w: RestoreWidget, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: not w.is_busy, timeout=timeout)


def start_long_training(qtbot, w: RestoreWidget) -> None:
    small_budget(w, epochs=10_000, batch_size=2)
    assert w.start_training() is not None
    qtbot.waitUntil(lambda: w.progress_label.value.startswith("training"), timeout=30_000)
    assert w.is_busy


# --------------------------------------------------------------------------- construction
def test_defaults_match_params(widget):
    defaults = DenoiseParams()
    assert set(widget.param_widgets) == {f.name for f in dataclasses.fields(DenoiseParams)}
    for name, value in dataclasses.asdict(defaults).items():
        if value is not None:  # None ("no limit") has a sentinel value in its spin box
            assert widget.param_widgets[name].value == value, name
    assert widget.param_widgets["train_seconds"].value == 60
    assert "60" in widget.param_widgets["train_seconds"].tooltip
    assert widget.get_params() == defaults  # epochs: no limit, the 60 s budget ends training
    # 0 means "no cap" and maps back to None (then epochs must end training)
    widget.param_widgets["epochs"].value = 5
    widget.param_widgets["train_seconds"].value = 0
    assert widget.get_params().train_seconds is None and widget.get_params().epochs == 5


@pytest.mark.parametrize("method", list(names()))
def test_every_method_builds_its_defaults(widget, method):
    """The parameter widgets are built from each method's dataclass: the same fields and
    the same defaults (except the 60 s time cap), and they validate as they are."""
    widget.method_combo.value = method
    cls = params_for(method)
    assert list(widget.param_widgets) == [f.name for f in dataclasses.fields(cls)]
    expected = dataclasses.asdict(cls())
    if "train_seconds" in expected:
        expected["train_seconds"] = 60.0
    assert widget.param_values() == expected
    assert widget.get_params() == cls(**expected)
    assert all(w.tooltip for w in widget.param_widgets.values())


def test_initial_state(widget):
    assert widget.method_combo.value == "denoise"
    assert "Denoise (FAST)" in [c[0] for c in widget.method_combo.options["choices"]] or (
        widget.method_combo.native.itemText(0) == "Denoise (FAST)"
    )
    assert widget.layer_combo.value is None
    assert not widget.train_button.enabled  # no layer
    assert not widget.run_button.enabled  # no model
    assert not widget.cancel_button.enabled
    assert not widget.save_button.enabled
    assert widget.load_button.enabled
    assert not widget.is_busy


def test_layer_combo_follows_layers(viewer, widget, movie):
    a = viewer.add_image(movie, name="a")
    assert widget.layer_combo.value is a  # the first image is picked
    viewer.add_labels(np.zeros((32, 32), np.int32), name="labels")
    b = viewer.add_image(movie[:10], name="b")
    assert list(widget.layer_combo.choices) == [a, b]  # no labels layer
    assert widget.layer_combo.value is a
    b.name = "renamed"
    assert widget.layer_combo.native.itemText(1) == "renamed"
    viewer.layers.remove(a)
    assert list(widget.layer_combo.choices) == [b]
    assert widget.layer_combo.value is b
    viewer.layers.remove(b)
    assert widget.layer_combo.value is None
    assert not widget.train_button.enabled


# --------------------------------------------------------------------------- train / run
def test_train_then_run(viewer, widget, qtbot, movie):
    layer = viewer.add_image(movie, name="movie", scale=SCALE, translate=TRANSLATE)
    small_budget(widget)
    seen: list[Progress] = []
    worker = widget.start_training()
    assert worker is not None
    worker.yielded.connect(seen.append)
    assert widget.is_busy and not widget.train_button.enabled and widget.cancel_button.enabled
    wait_idle(qtbot, widget)

    assert len(viewer.layers) == 2, widget.status_label.value
    out = viewer.layers["movie [denoised]"]
    assert out is widget.last_result_layer
    assert out is not layer and layer.data is movie  # the input is untouched
    np.testing.assert_array_equal(out.scale, SCALE)
    np.testing.assert_array_equal(out.translate, TRANSLATE)
    assert out.data.dtype == np.float32 and out.data.shape == movie.shape
    assert np.isfinite(out.data).all()
    md = out.metadata["neurorestore"]
    assert md["method"] == "denoise"
    assert md["params"]["epochs"] == 1 and md["params"]["patch_size"] == 16
    assert md["train_seconds"] is not None and md["train_seconds"] > 0
    assert "Trained in" in widget.status_label.value
    assert widget.progress_bar.value == widget.progress_bar.max
    assert any(p.stage == "train" for p in seen) and any(p.stage == "predict" for p in seen)
    assert widget.model is not None
    assert widget.run_button.enabled and widget.save_button.enabled
    assert not widget.cancel_button.enabled

    # Run: the same model on the same layer, no training -> a second, identical layer
    assert widget.start_run() is not None
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == 3, widget.status_label.value
    again = viewer.layers["movie [denoised] (2)"]
    np.testing.assert_allclose(again.data, out.data, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(again.scale, SCALE)
    assert "Restored" in widget.status_label.value


def test_save_load_roundtrip(viewer, widget, qtbot, movie, tmp_path, make_napari_viewer):
    widget.sync = True  # inline: start_training() returns when done
    viewer.add_image(movie, name="movie")
    small_budget(widget)
    widget.start_training()
    assert not widget.is_busy
    first = viewer.layers["movie [denoised]"]

    path = tmp_path / "model.pt"
    assert widget.save_model(path) == path and path.exists()
    assert widget.save_model(path) is None  # refuses to overwrite
    assert "already exists" in widget.status_label.value

    # a fresh viewer and widget: Run is refused until a model is loaded
    viewer2 = make_napari_viewer()
    w2 = RestoreWidget(viewer2)
    viewer2.window.add_dock_widget(w2)
    w2.sync = True
    viewer2.add_image(movie, name="other")
    assert w2.start_run() is None
    assert "No model" in w2.status_label.value and len(viewer2.layers) == 1
    assert w2.load_model(path) is not None
    assert w2.run_button.enabled and "loaded from model.pt" in w2.model_label.value
    w2.start_run()
    assert len(viewer2.layers) == 2, w2.status_label.value
    out = viewer2.layers["other [denoised]"]
    np.testing.assert_allclose(out.data, first.data, rtol=1e-5, atol=1e-3)
    assert out.metadata["neurorestore"]["method"] == "denoise"


def test_dask_layer_and_button_click(viewer, widget, movie):
    """A lazy (dask) layer is passed as is; clicking Train does what start_training does."""
    da = pytest.importorskip("dask.array")
    widget.sync = True
    viewer.add_image(da.from_array(movie, chunks=(8, 32, 32)), name="lazy")
    small_budget(widget)
    widget.train_button.native.click()
    assert len(viewer.layers) == 2, widget.status_label.value
    out = viewer.layers["lazy [denoised]"]
    assert isinstance(out.data, np.ndarray) and out.data.shape == movie.shape
    widget.run_button.native.click()
    assert len(viewer.layers) == 3, widget.status_label.value


def test_load_bad_model_file(widget, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    assert widget.load_model(bad) is None
    assert "Could not load" in widget.status_label.value
    assert widget.load_model(tmp_path / "missing.pt") is None
    assert widget.model is None and not widget.save_button.enabled


def test_sync_env_switch(viewer, widget, movie, monkeypatch):
    monkeypatch.setenv(worker_mod.SYNC_ENV, "1")
    widget.sync = None  # follow the environment
    viewer.add_image(movie, name="movie")
    small_budget(widget)
    worker = widget.start_training()
    assert isinstance(worker, worker_mod.InlineWorker), widget.status_label.value
    assert not widget.is_busy and len(viewer.layers) == 2


# --------------------------------------------------------------------------- cancel
def test_cancel_long_training(viewer, widget, qtbot, movie):
    viewer.add_image(movie, name="movie")
    start_long_training(qtbot, widget)
    t0 = time.perf_counter()
    assert widget.cancel()
    wait_idle(qtbot, widget, timeout=5_000)
    assert time.perf_counter() - t0 < 3.0  # shared CPU: some slack
    assert len(viewer.layers) == 1  # no layer added
    assert "cancelled" in widget.status_label.value
    assert widget.train_button.enabled and not widget.cancel_button.enabled
    assert widget.model is None and not widget.run_button.enabled
    assert not widget.cancel()  # nothing left to cancel
    # the viewer and the widget are still usable
    viewer.add_image(movie[:20], name="short")
    assert widget.layer_combo.choices[-1].name == "short"


def test_stop_training_goes_on_to_restore_with_the_model(viewer, widget, qtbot, movie):
    viewer.add_image(movie, name="movie")
    assert not widget.stop_training_button.enabled  # idle: nothing to stop
    start_long_training(qtbot, widget)
    qtbot.waitUntil(lambda: widget.stop_training_button.enabled, timeout=10_000)
    assert widget.stop_training()
    assert not widget.stop_training_button.enabled and not widget.stop_training()
    wait_idle(qtbot, widget, timeout=60_000)
    assert len(viewer.layers) == 2  # the restored layer, from the model learned so far
    out = viewer.layers[-1].data
    assert out.shape == movie.shape and np.isfinite(np.asarray(out)).all()
    assert widget.model is not None and 1 <= widget.model.info["steps"] < 10_000
    assert widget.run_button.enabled


def test_second_train_refused_while_running(viewer, widget, qtbot, movie):
    viewer.add_image(movie, name="movie")
    start_long_training(qtbot, widget)
    running = widget.worker
    assert not widget.train_button.enabled and not widget.run_button.enabled
    assert widget.start_training() is None
    assert "already in progress" in widget.status_label.value
    assert widget.start_run() is None
    assert widget.worker is running
    widget.cancel()
    wait_idle(qtbot, widget, timeout=5_000)
    assert len(viewer.layers) == 1


def test_input_layer_removed_mid_run(viewer, widget, qtbot, movie):
    layer = viewer.add_image(movie, name="x")
    start_long_training(qtbot, widget)
    viewer.layers.remove(layer)
    wait_idle(qtbot, widget, timeout=5_000)
    assert "input layer 'x' was removed" in widget.status_label.value
    assert len(viewer.layers) == 0
    assert widget.layer_combo.value is None
    assert not widget.train_button.enabled


def test_closing_the_panel_cancels(viewer, widget, qtbot, movie):
    viewer.add_image(movie, name="movie")
    start_long_training(qtbot, widget)
    viewer.window.remove_dock_widget(widget)  # what the panel's close button does
    wait_idle(qtbot, widget, timeout=5_000)
    assert "panel was closed" in widget.status_label.value
    assert len(viewer.layers) == 1


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (np.random.default_rng(0).random((32, 32), dtype=np.float32), "expected a movie"),
        (np.random.default_rng(0).random((4, 32, 32), dtype=np.float32), "at least 11"),
    ],
    ids=["2d-image", "4-frames"],
)
def test_bad_input_shows_message(viewer, widget, qtbot, data, expected):
    viewer.add_image(data, name="bad")
    small_budget(widget)
    assert widget.start_training() is not None
    wait_idle(qtbot, widget)
    assert expected in widget.status_label.value
    assert "failed" in widget.status_label.value
    assert len(viewer.layers) == 1
    assert widget.train_button.enabled and widget.model is None


def test_invalid_params_and_no_layer_refused(viewer, widget, movie):
    assert widget.start_training() is None
    assert "No image layer" in widget.status_label.value
    viewer.add_image(movie, name="movie")
    widget.param_widgets["window"].value = 4
    assert widget.start_training() is None
    assert "window must be odd" in widget.status_label.value
    assert not widget.is_busy and len(viewer.layers) == 1


def test_rgb_layer_refused(viewer, widget):
    viewer.add_image(np.zeros((8, 16, 16, 3), np.uint8), name="rgb", rgb=True)
    assert widget.start_training() is None
    assert "RGB" in widget.status_label.value


# --------------------------------------------------------------------------- helpers
def test_format_helpers():
    assert format_seconds(1.234) == "1.2 s"
    assert format_seconds(12.4) == "12 s"
    assert format_seconds(125) == "2:05"
    assert format_seconds(3725) == "1:02:05"
    line = format_progress(Progress("train", 5, 10, loss=0.01234, eta=65.0))
    assert line == "training step 5/10 · loss 0.01234 · 1:05 left"
    assert format_progress(Progress("train", 5, 100, loss=0.5, eta=3, done=0.5)).startswith(
        "training 50%"
    )
    assert format_progress(Progress("predict", 3, 40, eta=1)).startswith("restoring 3/40 frames")
    assert format_progress(Progress("prepare", message="reading")) == "reading"


def test_plugin_widget_from_manifest(make_napari_viewer):
    """When the package is installed, napari finds the widget through the manifest."""
    from npe2 import PluginManager

    pm = PluginManager.instance()
    if "napari-neurorestore" not in pm._manifests:
        pytest.skip("napari-neurorestore is not installed (no npe2 entry point)")
    viewer = make_napari_viewer()
    _dock, w = viewer.window.add_plugin_dock_widget("napari-neurorestore", "Restore")
    assert isinstance(w, RestoreWidget)


# --------------------------------------------------------------------------- worker plumbing
class _FakeMethod:
    """Stands in for a method module: yields forever (or fails) and records its threads."""

    def __init__(self, fail: BaseException | None = None):
        self.fail = fail
        self.result: RestoreResult | None = None
        self.threads: dict[str, int] = {}

    def train(self, data, params, cancel=None, **options):
        import threading

        self.threads["enter"] = threading.get_ident()
        try:
            if self.fail is not None:
                raise self.fail
            if self.result is not None:
                yield Progress("train", 1, 1)
                return self.result.model
            step = 0
            while True:  # never checks the token: only an abort stops it
                step += 1
                yield Progress("train", step, 10**6, loss=1.0, eta=100.0)
                time.sleep(0.01)
        finally:
            self.threads["exit"] = threading.get_ident()

    def predict(self, data, model, cancel=None, out=None, **options):
        yield Progress("predict", 1, 1)
        out[...] = self.result.data
        return out


@pytest.fixture
def fake_method(monkeypatch):
    from napari_neurorestore.core.methods.base import Method

    fake = _FakeMethod()
    monkeypatch.setattr(Method, "impl", lambda self: fake)  # the heavy module of any method
    return fake


def test_quit_only_abort_closes_generator_in_worker_thread(
    viewer, widget, qtbot, movie, fake_method
):
    """napari's activity dock cancels with worker.quit() only: that must also cancel the
    token, and the suspended generator must be closed in the worker thread."""
    import threading

    viewer.add_image(movie, name="movie")
    worker = widget.start_training()
    qtbot.waitUntil(lambda: widget.progress_label.value.startswith("training"), timeout=5_000)
    worker.quit()
    wait_idle(qtbot, widget, timeout=5_000)
    assert worker.cancel_token.cancelled
    assert fake_method.threads["exit"] == fake_method.threads["enter"]
    assert fake_method.threads["exit"] != threading.get_ident()
    assert "cancelled" in widget.status_label.value and len(viewer.layers) == 1
    assert widget.train_button.enabled


@pytest.mark.parametrize("sync", [False, True], ids=["threaded", "inline"])
def test_expected_error_is_a_message(viewer, widget, qtbot, movie, fake_method, sync):
    """A RuntimeError from the core (e.g. torch: no CUDA, out of memory) is shown as a
    message; superqt would otherwise swallow it without emitting `finished`."""
    fake_method.fail = RuntimeError("device 'cuda' requested but torch sees no CUDA GPU")
    widget.sync = sync
    viewer.add_image(movie, name="movie")
    widget.start_training()
    wait_idle(qtbot, widget, timeout=5_000)
    assert "no CUDA GPU" in widget.status_label.value
    assert widget.progress_label.value == "failed"
    assert widget.train_button.enabled and len(viewer.layers) == 1


def test_unexpected_error_reaches_errored(viewer, widget, qtbot, movie, fake_method):
    """A bug (not an input/parameter/device error) goes through the worker's `errored`."""
    fake_method.fail = TypeError("a bug")
    viewer.add_image(movie, name="movie")
    widget.start_training()
    wait_idle(qtbot, widget, timeout=5_000)
    assert "TypeError" in widget.status_label.value and "a bug" in widget.status_label.value
    assert widget.train_button.enabled and len(viewer.layers) == 1


def test_result_on_a_new_grid_overlays_the_input(viewer, widget, qtbot, fake_method,
                                                 monkeypatch):
    """A method whose output has another pixel size (upsample, sparse, isotropize) gets a
    layer whose scale/translate put it on top of the input."""
    from napari_neurorestore.core.methods import get
    from napari_neurorestore.core.methods.base import Grid

    grid = Grid((4, 16, 16), (1, 0.5, 0.5), (0, -0.25, -0.25))  # the grid the engine uses
    monkeypatch.setattr(type(get("denoise")), "grid", lambda self, shape, params: grid)
    monkeypatch.setattr(type(get("denoise")), "check_input", lambda self, *a, **k: None)
    layer = viewer.add_image(
        np.zeros((4, 8, 8), np.float32), name="vol", scale=(3, 1, 1), translate=(0, 10, 10)
    )
    model = TrainedModel("denoise", {}, {}, {})
    fake_method.result = RestoreResult(
        np.zeros((4, 16, 16), np.float32),
        model,
        {"neurorestore": {"method": "denoise"}},
        "denoised",
    )
    widget.start_training()
    wait_idle(qtbot, widget, timeout=5_000)
    out = viewer.layers["vol [denoised]"]
    np.testing.assert_allclose(out.scale, (3, 0.5, 0.5))
    np.testing.assert_allclose(out.translate, (0, 9.75, 9.75))
    assert layer.data.shape == (4, 8, 8)


@pytest.mark.skipif("isotropize" not in names(), reason="no isotropize method")
def test_z_ratio_follows_the_layer_scale(viewer, widget):
    widget.method_combo.value = "isotropize"
    viewer.add_image(np.zeros((8, 16, 16), np.float32), name="vol", scale=(2.5, 0.5, 0.5))
    assert widget.param_widgets["z_ratio"].value == pytest.approx(5.0)
    assert widget.get_params().z_ratio == pytest.approx(5.0)
