import importlib
import pkgutil
import subprocess
import sys

import pytest

GUI_OR_TORCH = {"torch", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "matplotlib"}


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_does_not_import_torch_or_qt():
    mods = _modules_after("import napari_neurorestore")
    assert not {"torch", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari"} & mods


def test_widget_and_reader_modules_do_not_import_torch():
    mods = _modules_after(
        "import napari_neurorestore._widgets.restore, napari_neurorestore._reader, "
        "napari_neurorestore._sample_data, napari_neurorestore.core.params, "
        "napari_neurorestore.cli, napari_neurorestore.core.methods.denoise.spec, "
        "napari_neurorestore.core.methods.sparse.spec, "
        "napari_neurorestore.core.methods.upsample.spec, "
        "napari_neurorestore.core.methods.isotropize.spec")
    assert "torch" not in mods


@pytest.mark.parametrize("package", ["napari_neurorestore.core.traces",
                                     "napari_neurorestore.core.trust"])
def test_core_packages_and_their_submodules_import_without_gui_or_torch(package):
    """Every submodule of the traces and trust packages imports, every name in the
    package's ``__all__`` resolves, and none of it pulls in torch, Qt, napari or matplotlib."""
    subs = sorted(f"{package}.{m.name}"
                  for m in pkgutil.iter_modules(importlib.import_module(package).__path__))
    assert len(subs) >= 5, subs
    mods = _modules_after(f"import {', '.join(subs)}; import {package} as p; "
                          "[getattr(p, n) for n in p.__all__]")
    assert set(subs) <= mods
    assert not GUI_OR_TORCH & mods, GUI_OR_TORCH & mods


def test_traces_cli_imports_without_gui_or_torch():
    mods = _modules_after("import napari_neurorestore.core.traces, napari_neurorestore.cli.traces")
    assert not GUI_OR_TORCH & mods
