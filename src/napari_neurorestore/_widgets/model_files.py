"""Save model / Load model of the Restore dock (a mixin of :class:`.restore.RestoreWidget`).

torch is imported only when a model is saved or loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QFileDialog

from ..core.methods import names

if TYPE_CHECKING:
    from ..core.models import TrainedModel


def load_failure_text(path: str | Path, exc: BaseException) -> str:
    """Why a model file could not be loaded, in GUI words (not torch's unpickling text)."""
    name = Path(path).name
    if isinstance(exc, FileNotFoundError):
        return f"Could not load '{name}': there is no such file."
    if isinstance(exc, OSError):
        return f"Could not load '{name}': the file cannot be read ({exc.strerror or exc})."
    text = str(exc)
    if "newer napari-neurorestore" in text:
        return (f"Could not load '{name}': it was saved by a newer napari-neurorestore; "
                f"update this plugin to use it.")
    return (f"Could not load '{name}': it is not a model saved by napari-neurorestore (use "
            f"a .pt file written by 'Save model…' or by the command line).")


class ModelFiles:
    """``save_model`` / ``load_model`` and their file dialogs, for a dock with ``model``,
    ``model_source``, ``model_label``, ``method_combo`` and the :class:`.base.DockBase`
    status methods."""

    def save_model(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Save the current model to ``path``. Returns the path, or None (status says why).

        An existing file is refused unless ``overwrite`` (the file dialog asks first).
        """
        if self.model is None:
            self.refuse("No model to save: train one first.")
            return None
        from ..core.models import save_model

        try:
            out = save_model(self.model, path, overwrite=overwrite)
        except (OSError, ValueError, RuntimeError) as e:
            self.show_error(f"Could not save the model: {e}")
            return None
        self.set_status(f"Saved the model to {out}.")
        return out

    def load_model(self, path: str | Path) -> TrainedModel | None:
        """Load a model file for Run. Returns the model, or None (status says why)."""
        if self.is_busy:
            self.refuse("A run is in progress: wait for it or press Cancel before loading.")
            return None
        from ..core.models import load_model

        try:
            model = load_model(path)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            self.show_error(load_failure_text(path, e))
            return None
        if model.method not in names():
            self.show_error(f"{path} holds a {model.method!r} model, which this version "
                            "cannot run.")
            return None
        self.model = model
        self.model_source = f"loaded from {Path(path).name}"
        if self.method != model.method:
            self.method_combo.value = model.method
        self.update_model_label()
        self.update_buttons()
        self.set_status(f"Loaded the model from {path}; press Run to apply it.")
        return model

    def update_model_label(self) -> None:
        if self.model is None:
            self.model_label.value = "model: none"
            return
        m = self.model
        bits = [f"{m.method}"]
        if "window" in m.params:
            bits.append(f"window {m.params['window']}")
        if m.info.get("train_seconds") is not None:
            bits.append(f"trained {m.info['train_seconds']:.1f} s")
        self.model_label.value = f"model: {self.model_source} ({', '.join(bits)})"

    def _save_dialog(self, *_: Any) -> None:
        if self.model is None:
            self.refuse("No model to save: train one first.")
            return
        path, _filter = QFileDialog.getSaveFileName(
            self,
            "Save model",
            "neurorestore_model.pt",
            "napari-neurorestore model (*.pt);;All files (*)",
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".pt"
        self.save_model(path, overwrite=True)  # the dialog already asked about overwriting

    def _load_dialog(self, *_: Any) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "Load model", "", "napari-neurorestore model (*.pt *.pth);;All files (*)"
        )
        if path:
            self.load_model(path)
