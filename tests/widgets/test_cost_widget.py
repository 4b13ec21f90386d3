"""The Restore widget shows the cost estimate and refuses runs that would not fit."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.core import cost

pytestmark = pytest.mark.gui


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((40, 32, 32), np.uint16), name="movie")
    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    w.sync = True
    return w


def test_label_shows_the_estimate_and_follows_method_and_params(widget):
    text = widget.cost_label.value
    assert text.startswith("Estimate: peak RAM ~") and "training ≤ 60 s" in text
    widget.method_combo.value = "upsample"
    up = widget.cost_label.value
    assert up.startswith("Estimate: ") and up != text
    assert widget.estimate().output_shape == (120, 96, 96)  # factor 3 along each axis
    widget.param_widgets["factor"].value = 2
    assert widget.estimate().output_shape == (80, 64, 64)
    assert widget.cost_label.value != up
    widget.param_widgets["train_seconds"].value = 30.0
    assert "training ≤ 30 s" in widget.cost_label.value


def test_label_follows_the_layer(widget):
    before = widget.estimate().peak_ram_bytes
    layer = widget.viewer.add_image(np.zeros((400, 256, 256), np.uint16), name="big")
    widget.layer_combo.value = layer
    assert widget.estimate().input_shape == (400, 256, 256)
    assert widget.estimate().peak_ram_bytes > before
    assert widget.cost_label.value.startswith("Estimate: ")


def test_train_is_refused_when_it_would_not_fit(widget, monkeypatch):
    monkeypatch.setattr(cost, "free_ram_bytes", lambda: 2**20)
    widget._update_cost()
    assert "does NOT fit" in widget.cost_label.value
    assert widget.start_training() is None
    assert "Not started" in widget.status_label.value
    assert "OUT.zarr" in widget.status_label.value
    assert len(widget.viewer.layers) == 1  # no result layer
    widget.method_combo.value = "sparse"
    assert widget.start_training() is None
    assert "neurorestore sparse IN.tif -o OUT.zarr" in widget.status_label.value
