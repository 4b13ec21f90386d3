"""A fifth method needs its own package and one registry line, and nothing else.

``tests/fifth_method/`` is a test-only method (its params dataclass and Method in
``spec.py``, ``train``/``predict`` in ``heavy.py``: the identity, streamed frame chunk by
frame chunk). After one :func:`~napari_neurorestore.core.methods.register` call, the CLI
has its subcommand, the API's ``restore("fifth", ...)`` runs it, the conformance test's
three paths (API, CLI, the dock's job) agree on it, and the Restore dock's method picker
offers it with its label and form."""

import numpy as np
import pytest
import tifffile

from napari_neurorestore import api
from napari_neurorestore.cli.main import build_parser, main
from napari_neurorestore.core import methods
from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods import get, names
from napari_neurorestore.core.progress import drain

from .test_conformance import one_front_door

DATA = (np.arange(6 * 8 * 8, dtype=np.uint16).reshape(6, 8, 8) * 7) % 1000


@pytest.fixture
def fifth(monkeypatch):
    monkeypatch.setattr(methods, "REGISTRY", dict(methods.REGISTRY))  # undone after
    methods.register("fifth", "fifth_method.spec:METHOD")  # the one registry call
    return get("fifth")


def test_register_checks_its_reference():
    with pytest.raises(ValueError, match="module:attribute"):
        methods.register("fifth", "fifth_method.spec")
    assert "fifth" not in names()


def test_the_registry_and_the_cli_know_it(fifth, tmp_path, capsys):
    assert names()[-1] == "fifth" and fifth.params_class.__name__ == "FifthParams"
    assert "fifth" in build_parser().format_help()
    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, DATA)
    assert main(["fifth", str(src), "-o", str(out), "--steps", "1", "--chunk-frames", "4",
                 "--device", "cpu", "-q"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out), DATA.astype(np.float32))


def test_the_api_runs_it(fifth):
    restored, model = api.restore("fifth", DATA, steps=1, device="cpu", return_model=True)
    assert model.method == "fifth" and restored.dtype == np.float32
    np.testing.assert_array_equal(restored, DATA.astype(np.float32))


def test_the_conformance_paths_agree_on_it(fifth, tmp_path):
    params = fifth.params_class(steps=1, device="cpu", chunk_frames=4)
    first = drain(restore("fifth", DATA, params))
    assert first.suffix == "fifth" and first.metadata["neurorestore"]["method"] == "fifth"
    one_front_door("fifth", DATA, first, tmp_path)


@pytest.mark.gui
def test_the_dock_offers_it(fifth, viewer, qtbot):
    from napari_neurorestore._widgets.restore import RestoreWidget

    w = RestoreWidget(viewer)
    viewer.window.add_dock_widget(w, name="Restore")
    assert ("Fifth (test)", "fifth") in [tuple(c) for c in w.method_combo.options["choices"]]
    w.method_combo.value = "fifth"
    assert list(w.param_widgets) == ["steps", "train_seconds", "seed", "device", "chunk_frames"]
    w.sync = True
    viewer.add_image(DATA, name="movie")
    w.param_widgets["steps"].value = 1
    w.param_widgets["device"].value = "cpu"
    w.start_training()
    out = viewer.layers["movie [fifth]"]
    np.testing.assert_array_equal(out.data, DATA.astype(np.float32))
