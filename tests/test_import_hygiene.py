import subprocess
import sys


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
        "napari_neurorestore.cli")
    assert "torch" not in mods
