"""Issue 26: the Restore dock's layer pickers are generated from each method's declared
extra inputs (``Method.cli_options`` with ``layer`` set), as the CLI's flags are, and the
chosen layer's data reaches the method as that option (run under xvfb-run; tiny data)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.utils._proxies import PublicOnlyProxy

from napari_neurorestore._widgets.extra_inputs import NONE
from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core import methods
from napari_neurorestore.core.methods.base import Method
from napari_neurorestore.core.models import TrainedModel

pytestmark = pytest.mark.gui

FULL = np.random.default_rng(0).random((6, 32, 32)).astype(np.float32)  # fully sampled
SPARSE = np.ascontiguousarray(FULL[:, ::4])  # every 4th line: (6, 8, 32)


class Fake:
    """The heavy module of every method: records what training and inference get."""

    calls: list = []

    @classmethod
    def train(cls, data, params, cancel=None, **kw):
        cls.calls.append(("train", kw))
        yield from ()
        return TrainedModel(params.method, params.to_dict(), {}, {})

    @classmethod
    def predict(cls, data, model, cancel=None, out=None, **kw):
        cls.calls.append(("predict", kw))
        yield from ()
        out[...] = 0
        return out

    @staticmethod
    def new_output(shape):
        return np.empty(shape, np.float32)


def dock(viewer) -> RestoreWidget:
    w = RestoreWidget(PublicOnlyProxy(viewer))  # as napari hands a plugin dock the viewer
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync, w.notify = True, False
    return w


@pytest.fixture
def restore(viewer, monkeypatch):
    """A Restore dock set to sparse (factor 4) whose heavy module is :class:`Fake`."""
    monkeypatch.setattr(Method, "impl", lambda self: Fake)
    monkeypatch.setattr(Fake, "calls", [])
    viewer.add_image(SPARSE, name="sparse")
    w = dock(viewer)
    w.layer_combo.value = w.layer_named("sparse")
    w.method_combo.value = "sparse"
    w.param_widgets["factor"].value = 4
    w.param_widgets["device"].value = "cpu"
    return w


def items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_sparse_shows_its_layer_inputs_and_the_denoiser_none(restore, viewer):
    w = restore
    assert list(w.extra_inputs.combos) == ["labels", "reference"]
    assert not w.extra_inputs.isHidden()
    assert items(w.extra_inputs.combos["reference"]) == [NONE, "sparse"]  # Image layers
    assert items(w.extra_inputs.combos["labels"]) == [NONE]  # Labels layers: none yet
    viewer.add_image(FULL, name="full")
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="rois")
    assert items(w.extra_inputs.combos["reference"]) == [NONE, "sparse", "full"]
    assert items(w.extra_inputs.combos["labels"]) == [NONE, "rois"]
    w.extra_inputs.select("reference", viewer.layers["full"])
    viewer.layers.remove("rois")  # refilled as layers go, the choice kept
    assert items(w.extra_inputs.combos["labels"]) == [NONE]
    assert w.extra_inputs.combos["reference"].currentText() == "full"
    w.method_combo.value = "denoise"  # rebuilt for the method: the denoiser declares none
    assert w.extra_inputs.combos == {} and w.extra_inputs.isHidden()
    w.method_combo.value = "sparse"
    assert list(w.extra_inputs.combos) == ["labels", "reference"]


def test_a_picked_reference_reaches_the_methods_options(restore, viewer):
    w = restore
    viewer.add_image(FULL, name="full")
    w.extra_inputs.select("reference", viewer.layers["full"])
    w.start_training()
    assert len(viewer.layers) == 3, w.status_label.value
    (_, train_kw), (_, predict_kw) = Fake.calls
    np.testing.assert_array_equal(train_kw["reference"], FULL)
    assert "labels" not in predict_kw  # "(none)": not given, the method's default
    w.extra_inputs.select("reference", None)
    w.start_training()
    assert Fake.calls[2] == ("train", {"reference": None})  # self-supervised again


@pytest.mark.parametrize("shape", [(6, 8, 32), (6, 32, 16)], ids=["sparse", "narrow"])
def test_a_mismatched_reference_is_refused_in_gui_words(restore, viewer, shape):
    w = restore
    viewer.add_image(np.ones(shape, np.float32), name="ref")
    w.extra_inputs.select("reference", viewer.layers["ref"])
    assert w.start_training() is None
    text = w.status_label.value
    assert text.startswith("Not started:") and "reference layer 'ref'" in text, text
    assert "do not match the input's" in text and "--" not in text
    assert Fake.calls == [] and len(viewer.layers) == 2


def test_a_fifth_method_gets_its_picker_with_no_widget_code(viewer, monkeypatch):
    """tests/fifth_method declares an ``offset`` Image option; registered, the dock shows its
    picker and the picked layer's data reaches its predict (the result is movie + offset)."""
    monkeypatch.setattr(methods, "REGISTRY", dict(methods.REGISTRY))  # undone after
    methods.register("fifth", "fifth_method.spec:METHOD")
    movie = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    offset = np.full((8, 8), 100.0, np.float32)
    viewer.add_image(movie, name="movie")
    viewer.add_image(offset, name="offset")
    w = dock(viewer)
    w.layer_combo.value = w.layer_named("movie")
    w.method_combo.value = "fifth"
    assert list(w.extra_inputs.combos) == ["offset"]
    assert items(w.extra_inputs.combos["offset"]) == [NONE, "movie", "offset"]
    w.param_widgets["steps"].value = 1
    w.param_widgets["device"].value = "cpu"
    w.extra_inputs.select("offset", viewer.layers["offset"])
    w.start_training()
    assert len(viewer.layers) == 3, w.status_label.value
    np.testing.assert_array_equal(w.last_result_layer.data, movie + offset)
    w.extra_inputs.select("offset", viewer.layers["movie"])  # not one frame: refused
    assert w.start_training() is None
    assert "offset layer 'movie'" in w.status_label.value
