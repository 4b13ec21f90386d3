"""The Restore dock widget: train a self-supervised model on an image layer and restore it.

A thin face over :mod:`napari_neurorestore.core`: the parameter widgets are built from the
method's parameter dataclass (:mod:`._widgets.form`), the work runs in a napari thread worker
that drains the same generator the CLI drains (:mod:`._widgets.base`, :mod:`._widgets.worker`),
large results stream into a store shown while it is written (:mod:`._widgets.live_output`),
and the result is always added as a new layer that keeps the input's scale and translate.

Importing this module does not import torch: the method module is imported in the worker
thread when a run starts, and torch for Save/Load model when those are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    Label,
    ProgressBar,
    PushButton,
    Widget,
    create_widget,
)
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget

from ..core.methods import names
from .base import DockBase
from .dock_layout import Section
from .extra_inputs import ExtraInputs
from .form import ParamForm
from .formatting import format_progress, format_seconds
from .live_mode import LiveMode
from .live_output import results_folder
from .model_files import ModelFiles
from .restore_jobs import PROGRESS_MAX, RestoreJobs, method_label, preview_methods

if TYPE_CHECKING:
    import napari.viewer

    from ..core.models import TrainedModel

#: the tooltip of a parameter a loaded model fixes
FIXED_NOTE = ("This value is fixed by the loaded model: Run applies the model's value "
              "(training a new model frees it).")

__all__ = ["RestoreWidget", "format_progress", "format_seconds", "results_folder"]


class RestoreWidget(RestoreJobs, ModelFiles, DockBase):
    """Dock widget: pick an image layer and a method, **Train** (train on the layer, then
    restore it) or **Run** (apply the trained or loaded model), with progress, **Cancel**,
    and **Save model** / **Load model**.

    Sub-widgets are attributes (``layer_combo``, ``method_combo``, ``param_widgets[name]``,
    ``train_button``, ``run_button``, ``cancel_button``, ``save_button``, ``load_button``,
    ``progress_bar``, ``progress_label``, ``status_label``, ``model_label``) and the actions
    are methods (:meth:`start_training`, :meth:`start_run`, :meth:`cancel`,
    :meth:`save_model`, :meth:`load_model`), so scripts and tests can drive it without
    clicking; ``live`` is the Live section (:mod:`.live_mode`: ``live.start()``/``stop()``). ``sync`` (default from ``NEURORESTORE_SYNC_WORKER``) runs the work inline.
    """

    title = "Restore"
    layer_types = {"image": ("Image",), "labels": ("Labels",)}
    notify = True

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.model: TrainedModel | None = None
        self.model_source: str = ""
        self.last_result_layer: Any = None

        # -- input and method
        self.layer_combo: ComboBox = create_widget(annotation="napari.layers.Image", label="image")
        self.layer_combo.choices = self._image_layer_choices
        self.layer_combo.tooltip = "The image layer to train on / restore (a (t, y, x) movie)."
        self.method_combo = ComboBox(
            label="method",
            choices=[(method_label(k), k) for k in names()],
            value=names()[0],
        )
        self.method_combo.tooltip = "The restoration method."

        # -- parameters (rebuilt when the method changes), in one form with the pickers so
        #    the labels line up
        self.params_container = Container(widgets=[self.layer_combo, self.method_combo])
        self.advanced_container = Container(labels=True)
        self.advanced = Section("Advanced")
        self.advanced.addWidget(self.advanced_container.native)
        self.form = ParamForm(self.params_container, self.advanced_container)
        self.extra_inputs = ExtraInputs(self)  # the method's layer inputs (extra_inputs.py)

        # -- actions
        self.train_button = PushButton(text="Train")
        self.train_button.tooltip = "Train on the selected layer, then restore it (new layer)."
        self.run_button = PushButton(text="Run")
        self.run_button.tooltip = (
            "Restore the selected layer with the trained or loaded model, without training."
        )
        self.preview_button = PushButton(text="Preview on a crop")
        self.preview_button.tooltip = (
            "Train on the whole layer, then restore only a 64-pixel crop around the viewer's "
            "current position (a quick look before Run processes everything; Run reuses the "
            "model). Methods that offer it: " + ", ".join(preview_methods()) + "."
        )
        self.residual_check = CheckBox(value=False, text="Add residual layer")
        self.residual_check.tooltip = "Also add '<input> [removed]': what the run removed."
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.tooltip = "Stop training / restoring (no layer is added)."
        self.stop_training_button = PushButton(text="Stop training")
        self.stop_training_button.tooltip = (
            "End training now and go on: restore with the model learned so far (Cancel "
            "instead discards the run).")
        self.progress_bar = ProgressBar(min=0, max=PROGRESS_MAX, value=0)
        self.progress_label = Label(value="")
        self.status_label = Label(value="Ready.")
        self.model_label = Label(value="model: none")
        self.cost_label = Label(value="")
        self.cost_label.tooltip = (
            "Expected peak memory and time of Train on the selected layer (from its size; "
            "the speed is a nominal CPU rate, not measured here)."
        )
        self.save_button = PushButton(text="Save model…")
        self.save_button.tooltip = "Save the current model to a file (.pt)."
        self.load_button = PushButton(text="Load model…")
        self.load_button.tooltip = "Load a model saved by napari-neurorestore (GUI or CLI)."
        for label in (self.progress_label, self.status_label, self.model_label,
                      self.cost_label):
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            label.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.live = LiveMode(self)  # the "Live…" section (denoise only): see live_mode.py

        self._build_layout()
        self._build_params(self.method)

        self.train_button.changed.connect(self.start_training)
        self.run_button.changed.connect(self.start_run)
        self.preview_button.changed.connect(self.start_preview)
        self.cancel_button.changed.connect(self.cancel)
        self.stop_training_button.changed.connect(self.stop_training)
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.method_combo.changed.connect(self._on_method_changed)
        self.layer_combo.changed.connect(self._on_layer_changed)

        self.watch_layers()
        self.reset_choices()
        active = self.viewer.layers.selection.active
        if active is not None and active in self.layers_for("image"):
            self.layer_combo.value = active
        self.update_buttons()
        self._update_cost()

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> None:
        lay = QVBoxLayout(self.body)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.params_container.native)
        lay.addWidget(self.extra_inputs)
        lay.addWidget(self.advanced)
        lay.addWidget(self.cost_label.native)
        rows = [[self.train_button, self.run_button, self.cancel_button],
                [self.preview_button, self.stop_training_button], [self.residual_check],
                [self.progress_bar],
                [self.progress_label], [self.status_label], [self.model_label],
                [self.save_button, self.load_button]]
        for row in rows:
            if len(row) == 1:
                lay.addWidget(row[0].native)
                continue
            box = QHBoxLayout()
            for w in row:
                box.addWidget(w.native)
            lay.addLayout(box)
        lay.addWidget(self.live.box)
        lay.addStretch(1)
        self.setMinimumWidth(300)

    def _build_params(self, method: str) -> None:
        self.form.build(method)
        self.extra_inputs.build(method)
        self.advanced.setVisible(len(self.advanced_container) > 0)
        for w in self.form.widgets.values():
            w.changed.connect(self._update_cost)
        self.form.apply_layer_hints(self.layer_combo.value)

    # ------------------------------------------------------------------ parameters
    @property
    def method(self) -> str:
        return self.method_combo.value

    @property
    def param_widgets(self) -> dict[str, Widget]:
        """The parameter widgets of the current method, by field name."""
        return self.form.widgets

    def param_values(self) -> dict[str, Any]:
        """The parameter widgets' values as the dataclass's field values (None mapped back)."""
        return self.form.values()

    def get_params(self) -> Any:
        """The method's parameter dataclass from the widgets; raises ValueError if invalid."""
        return self.form.get()

    def set_params(self, params: Any) -> None:
        """Set the parameter widgets from a parameter dataclass or a dict."""
        self.form.set_values(params)

    def _on_method_changed(self, *_: Any) -> None:
        self._build_params(self.method)
        self.update_buttons()
        self._update_cost()

    # ------------------------------------------------------------------ layers
    def _image_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self.layers_for("image")]

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer picker (napari calls this on layer events when docked)."""
        if self._alive.closed:
            return
        self.layer_combo.reset_choices()
        self.extra_inputs.refill()
        self.update_buttons()

    on_layers_changed = reset_choices

    def on_layer_inserted(self, layer: Any) -> None:
        self.reset_choices()
        if self.layer_combo.value is None and layer in self.layers_for("image"):
            self.layer_combo.value = layer

    def _on_layer_changed(self, *_: Any) -> None:
        if self._alive.closed:
            return
        self.form.apply_layer_hints(self.layer_combo.value)
        self.update_buttons()
        self._update_cost()

    def _read_layer(self, layer: Any) -> Any:
        """The array to process: the layer's data as is (numpy or dask; the core slices it)."""
        if getattr(layer, "rgb", False):
            raise ValueError(
                f"layer '{layer.name}' is RGB; split it into channels (right-click > Split RGB)"
            )
        data = layer.data
        if getattr(layer, "multiscale", False):
            data = data[0]  # full resolution; read lazily chunk by chunk
        return data

    # ------------------------------------------------------------------ state
    def update_buttons(self) -> None:
        if self._alive.closed:
            return
        busy = self.is_busy
        has_layer = self.layer_combo.value is not None
        self.train_button.enabled = not busy and has_layer
        self.run_button.enabled = not busy and has_layer and self._model_fits()
        self.preview_button.visible = self.method in preview_methods()
        self.preview_button.enabled = not busy and has_layer
        self.cancel_button.enabled = busy
        self.stop_training_button.enabled = self._can_stop_training()
        self.save_button.enabled = self.model is not None
        self.load_button.enabled = not busy
        for w in (self.layer_combo, self.method_combo, *self.param_widgets.values()):
            w.enabled = not busy
        self.extra_inputs.set_enabled(not busy)
        self.form.fix(self._fixed_by_model(), FIXED_NOTE)
        if not busy:
            self.form.apply_needs()  # what has no effect with the other settings: greyed
        self.live.update_buttons(busy, self.method)

    def _fixed_by_model(self) -> dict[str, Any]:
        """The parameters a loaded model of the current method fixes, with its values."""
        m = self.model
        if m is None or m.method != self.method or not self.model_source.startswith("loaded"):
            return {}
        from ..core.methods import get

        return {k: m.params[k] for k in get(self.method).fixed_fields if k in m.params}
