"""Hooks instead of names: what the faces say after training and where live mode is offered
come from the Method (``training_summary``, ``live``), not from checks of the method's
name. Each test changes the hook of a registered method and sees every face follow."""

from __future__ import annotations

import html

import numpy as np
import pytest
import tifffile

from napari_neurorestore._widgets.restore import RestoreWidget
from napari_neurorestore.cli.main import main
from napari_neurorestore.core.methods import get, live_methods

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

#: the form's values of a tiny training (train_seconds 0: no time cap)
TINY = {"window": 5, "epochs": 1, "train_seconds": 0.0, "patch_size": 16, "batch_size": 4,
        "width": 4, "device": "cpu"}


@pytest.fixture
def summary(monkeypatch):
    """The denoiser's training summary replaced by one that names its record."""
    def text(self, info):
        return f"SUMMARY of {info.get('steps')} steps"

    monkeypatch.setattr(type(get("denoise")), "training_summary", text)


@pytest.fixture
def movie():
    rng = np.random.default_rng(0)
    return (1000 + 100 * rng.standard_normal((16, 16, 16))).astype(np.uint16)


def test_every_face_prints_the_methods_training_summary(summary, movie, tmp_path, capsys,
                                                         make_napari_viewer):
    # the CLI
    tifffile.imwrite(tmp_path / "in.tif", movie)
    assert main(["denoise", str(tmp_path / "in.tif"), "-o", str(tmp_path / "o.tif"), "-q",
                 "--window", "5", "--steps", "1", "--patch-size", "16", "--batch-size", "4",
                 "--width", "4", "--device", "cpu"]) == 0
    assert "\nSUMMARY of " in capsys.readouterr().out
    # the Restore dock
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    w.sync = True
    viewer.add_image(movie, name="movie")
    w.method_combo.value = "denoise"
    w.set_params(TINY)
    w.start_training()
    assert "\nSUMMARY of " in w.status_label.value, w.status_label.value
    # the trust report's provenance
    from napari_neurorestore.core import trust
    from napari_neurorestore.core.report import render_html

    md = {"neurorestore": {"method": "denoise", "params": {}, "training": {"steps": 7}}}
    rep = trust.assess(movie, movie.astype(np.float32), md, transients=False)
    assert "SUMMARY of 7 steps" in html.unescape(render_html(rep))


def test_the_live_section_follows_the_live_capability(monkeypatch, make_napari_viewer):
    assert live_methods() == ("denoise",)
    viewer = make_napari_viewer()
    w = RestoreWidget(viewer)
    w.method_combo.value = "upsample"
    assert w.live.box.isHidden()
    monkeypatch.setattr(type(get("upsample")), "live", True)
    assert live_methods() == ("denoise", "upsample")
    w.method_combo.value = "denoise"
    w.method_combo.value = "upsample"
    assert not w.live.box.isHidden()
