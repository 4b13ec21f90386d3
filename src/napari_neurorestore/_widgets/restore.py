"""The Restore dock widget: train a self-supervised model on an image layer and restore it.

A thin face over :mod:`napari_neurorestore.core`: the parameter widgets are built from the
method's parameter dataclass (``core.params.PARAMS``), the work runs in a napari thread worker
that drains the same generator the CLI drains (:mod:`._widgets.worker`), and the result is
always added as a new layer that keeps the input's scale and translate.

Importing this module does not import torch: the method module is imported in the worker
thread when a run starts, and torch for Save/Load model when those are used.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    Widget,
    create_widget,
)
from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

from ..core.device import DEVICES
from ..core.params import PARAMS
from ..core.progress import CancelToken, Progress
from .layers import result_layer_kwargs, unique_name
from .worker import TaskOutcome, make_worker, restore_task

if TYPE_CHECKING:
    import napari.layers
    import napari.viewer

    from ..core.models import TrainedModel

#: methods whose core module offers ``preview(data, params, center, size, cancel, model)``
PREVIEW_METHODS = ("upsample",)
#: side of the preview crop, in input pixels
PREVIEW_SIZE = 64

#: labels of the methods in the method picker (a method not listed shows its key)
METHOD_LABELS = {
    "denoise": "Denoise (FAST)",
    "sparse": "Sparse axis (IRIS)",
    "upsample": "Upsample (Self-Vision)",
    "isotropize": "Isotropize (Self-Net)",
}

#: ranges and steps of the parameter widgets (the dataclass still validates the values);
#: a ``(method, name)`` key overrides a ``name`` key
FIELD_OPTIONS: dict[Any, dict[str, Any]] = {
    "window": {"min": 3, "max": 31, "step": 2},
    "stride": {"min": 1, "max": 31},
    "epochs": {"min": 1, "max": 10_000_000},
    "steps": {"min": 1, "max": 100_000_000, "step": 100},
    "train_seconds": {"min": 0.0, "max": 1e7, "step": 10.0},
    "patch_size": {"min": 8, "max": 1024, "step": 4},
    "batch_size": {"min": 1, "max": 1024},
    "learning_rate": {"min": 0.0, "max": 0.99, "step": 1e-4},
    "width": {"min": 4, "max": 256, "step": 4},
    "depth": {"min": 0, "max": 16},
    "seed": {"min": -1, "max": 2**31 - 1},
    "chunk_frames": {"min": 1, "max": 1_000_000},
    "tile_size": {"min": 8, "max": 100_000, "step": 16},
    "tile_overlap": {"min": 0, "max": 10_000},
    "context": {"min": 0, "max": 8},
    "factor": {"min": 2, "max": 16},
    ("upsample", "factor"): {"min": 2, "max": 4},
    "z_ratio": {"min": 1.0, "max": 16.0, "step": 0.1},
    "sigma_z": {"min": -1.0, "max": 32.0, "step": 0.1},
}
#: string parameters with a fixed set of choices (also read from ``field(metadata=...)``)
FIELD_CHOICES: dict[str, tuple[str, ...]] = {"device": DEVICES}
#: how an optional (``X | None``) parameter shows None: (sentinel value, its text)
NONE_AS: dict[str, tuple[Any, str]] = {
    "train_seconds": (0.0, "no cap"),
    "seed": (-1, "random"),
    "sigma_z": (-1.0, "estimate"),
}
#: where the widget's default differs from the dataclass default (and why, in the tooltip)
WIDGET_DEFAULTS: dict[str, Any] = {"train_seconds": 60.0}
WIDGET_DEFAULT_NOTES = {
    "train_seconds": "The widget starts at 60 s so a first try stays short "
    "(the Python API and CLI default to no cap).",
}
#: parameters shown under "Advanced" (unknown parameters of new methods go in the main list)
ADVANCED = (
    "patch_size",
    "batch_size",
    "learning_rate",
    "depth",
    "seed",
    "chunk_frames",
    "tile_size",
    "tile_overlap",
    "ensemble",
    "two_stage",
)
LABELS = {
    "train_seconds": "time cap (s)",
    "chunk_frames": "chunk frames",
    "z_ratio": "z ratio",
    "sigma_z": "axial blur σ",
}


def _z_ratio_from_layer(layer: Any) -> float | None:
    """z pixel size over the lateral one, from a volume layer's scale (None if 1 or n/a)."""
    scale = getattr(layer, "scale", ())
    if len(scale) < 3 or not scale[-1]:
        return None
    r = float(scale[-3]) / float(scale[-1])
    return round(r, 3) if 1.0 < r <= 16.0 else None


#: parameters the widget fills in from the selected layer: (function, tooltip note)
LAYER_HINTS: dict[str, tuple[Any, str]] = {
    "z_ratio": (_z_ratio_from_layer, "Filled in from the layer's scale (z over x) when set."),
}

STAGE_LABELS = {"prepare": "preparing", "train": "training", "predict": "restoring", "done": "done"}
PROGRESS_MAX = 1000
#: denoising results larger than this (float32 bytes) are streamed into a zarr store in
#: :func:`results_folder` and shown as a layer while they are being written
LARGE_RESULT_BYTES = 2**30
#: seconds between refreshes of a result layer that is being written
LIVE_REFRESH_SECONDS = 1.0


def results_folder() -> Path:
    """Where large results are written: ``$NEURORESTORE_RESULTS_DIR``, else
    ``$XDG_CACHE_HOME/napari-neurorestore/results`` (``~/.cache/...``)."""
    import os

    env = os.environ.get("NEURORESTORE_RESULTS_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "napari-neurorestore" / "results"


# --------------------------------------------------------------------------- helpers
def _docstring_fields(cls: type) -> dict[str, str]:
    """``name : text`` (or ``a, b : text``) entries of a parameter dataclass's docstring."""
    out: dict[str, str] = {}
    names: list[str] = []
    for line in (cls.__doc__ or "").splitlines():
        m = re.match(r"^\s*(\w+(?:\s*,\s*\w+)*) : (.*)$", line)
        if m:
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2).strip()
        elif names and line.strip():
            for n in names:
                out[n] += " " + line.strip()
        else:
            names = []
    return out


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``float | None`` -> (float, True); ``int`` -> (int, False)."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def format_seconds(seconds: float | None) -> str:
    """1.23 -> '1.2 s', 12 -> '12 s', 125 -> '2:05', 3725 -> '1:02:05'."""
    if seconds is None:
        return "?"
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}:{s:02d}"
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def format_simulation(figs: dict[str, Any]) -> str:
    """A simulate-mode run's figures (against the fully sampled layer) in two short lines."""

    def fig(f: dict[str, Any]) -> str:
        t = f.get("trace_nrmse")
        trace = "n/a" if t is None else f"{100 * t:.1f} %"
        return f"PSNR {f['psnr']:.2f} dB, SSIM {f['ssim']:.3f}, trace NRMSE {trace}"

    cubic = figs.get("cubic") or {}
    head = f"Simulated M={figs.get('factor')} along {figs.get('axis')}: "
    return head + fig(figs) + ("\ncubic interpolation: " + fig(cubic) if cubic else "")


def format_progress(p: Progress) -> str:
    """One line for the progress label: stage, position, loss and time left."""
    parts = [STAGE_LABELS.get(p.stage, p.stage)]
    if p.stage == "prepare":
        return p.message or parts[0]
    if p.stage == "train":
        if p.done is not None:
            parts[0] += f" {100 * p.fraction:.0f}%"
        elif p.total:
            parts[0] += f" step {p.step}/{p.total}"
    elif p.stage == "predict" and p.total:
        parts[0] += f" {p.step}/{p.total} frames"
    if p.loss is not None:
        parts.append(f"loss {p.loss:.4g}")
    if p.eta is not None and p.stage != "done":
        parts.append(f"{format_seconds(p.eta)} left")
    return " · ".join(parts)


def _widen_labels(container: Container, slack: float = 1.25) -> None:
    """magicgui measures label widths with the default font; napari's stylesheet uses a
    larger one, which pushes the fields of the longest labels out of line. Add slack."""
    from qtpy.QtGui import QFontMetrics

    try:
        labeled = [w._labeled_widget() for w in container]  # magicgui internals
        labeled = [lw for lw in labeled if lw is not None]
        if not labeled:
            return
        widest = max(
            QFontMetrics(lw._label_widget.native.font()).horizontalAdvance(lw._label_widget.value)
            for lw in labeled
        )
        for lw in labeled:
            lw.label_width = int(widest * slack)
    except Exception:  # cosmetic only
        pass


@dataclass
class _Job:
    """State of one Train/Run: signals of a worker are bound to their job, so a late
    signal from a finished job can never touch the next one."""

    kind: str  # "train", "run" or "preview"
    method: str
    layer: Any
    layer_name: str
    cancel: CancelToken
    t0: float = field(default_factory=time.perf_counter)
    worker: Any = None
    outcome: TaskOutcome | None = None
    reason: str | None = None  # why it was cancelled, when not by the Cancel button
    last_progress: Progress | None = None
    out: Any = None  # a zarr store the result is streamed into (large results)
    out_path: Path | None = None
    live_layer: Any = None  # the layer showing ``out`` while it is written
    last_refresh: float = 0.0


@dataclass
class _Alive:
    """Set when the Qt widget is destroyed (held without a reference to the widget)."""

    closed: bool = False
    job: _Job | None = None


def _on_destroyed(alive: _Alive, *_: Any) -> None:
    alive.closed = True
    if alive.job is not None:  # the dock was closed mid-run: stop the worker
        alive.job.cancel.cancel()
        if alive.job.worker is not None:
            alive.job.worker.quit()


# --------------------------------------------------------------------------- widget
class RestoreWidget(QWidget):
    """Dock widget: pick an image layer and a method, **Train** (train on the layer, then
    restore it) or **Run** (apply the trained or loaded model), with progress, **Cancel**,
    and **Save model** / **Load model**.

    Sub-widgets are attributes (``layer_combo``, ``method_combo``, ``param_widgets[name]``,
    ``train_button``, ``run_button``, ``cancel_button``, ``save_button``, ``load_button``,
    ``progress_bar``, ``progress_label``, ``status_label``, ``model_label``) and the actions
    are methods (:meth:`start_training`, :meth:`start_run`, :meth:`cancel`,
    :meth:`save_model`, :meth:`load_model`), so scripts and tests can drive it without
    clicking. ``sync`` (default from ``NEURORESTORE_SYNC_WORKER``) runs the work inline.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model: TrainedModel | None = None
        self.model_source: str = ""
        self.last_result_layer: Any = None
        self.sync: bool | None = None
        self.param_widgets: dict[str, Widget] = {}
        self._alive = _Alive()
        self.destroyed.connect(functools.partial(_on_destroyed, self._alive))

        # -- input and method
        self.layer_combo: ComboBox = create_widget(annotation="napari.layers.Image", label="image")
        self.layer_combo.choices = self._image_layer_choices
        self.layer_combo.tooltip = "The image layer to train on / restore (a (t, y, x) movie)."
        self.method_combo = ComboBox(
            label="method",
            choices=[(METHOD_LABELS.get(k, k), k) for k in PARAMS],
            value=next(iter(PARAMS)),
        )
        self.method_combo.tooltip = "The restoration method."

        # -- parameters (rebuilt when the method changes), in one form with the pickers so
        #    the labels line up
        self.params_container = Container(widgets=[self.layer_combo, self.method_combo])
        self.advanced_container = Container(labels=True)
        self.advanced = QCollapsible("Advanced")
        self.advanced.addWidget(self.advanced_container.native)
        self.advanced.setDuration(0)

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
            "model). Methods that offer it: " + ", ".join(PREVIEW_METHODS) + "."
        )
        self.residual_check = CheckBox(value=False, text="Add residual layer")
        self.residual_check.tooltip = "Also add '<input> [removed]': what the run removed."
        self.cancel_button = PushButton(text="Cancel")
        self.cancel_button.tooltip = "Stop training / restoring (no layer is added)."
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

        self._build_layout()
        self._build_params(self.method)

        self.train_button.changed.connect(self.start_training)
        self.run_button.changed.connect(self.start_run)
        self.preview_button.changed.connect(self.start_preview)
        self.cancel_button.changed.connect(self.cancel)
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        self.method_combo.changed.connect(self._on_method_changed)
        self.layer_combo.changed.connect(self._on_layer_changed)

        layers = self.viewer.layers
        layers.events.inserted.connect(self._on_layer_inserted)
        layers.events.removed.connect(self._on_layer_removed)
        layers.events.moved.connect(self._on_layers_changed)
        layers.events.reordered.connect(self._on_layers_changed)
        for layer in layers:
            layer.events.name.connect(self._on_layers_changed)
        self.reset_choices()
        active = layers.selection.active
        if active is not None and active in self._image_layers():
            self.layer_combo.value = active
        self._update_buttons()
        self._update_cost()

    def event(self, event: QEvent) -> bool:
        # napari's panel close button un-parents the widget (remove_dock_widget) rather than
        # deleting it: a run must not go on adding layers from a closed panel.
        if (
            event.type() == QEvent.Type.ParentChange
            and self.parent() is None
            and self._alive.job is not None
            and not self._alive.job.cancel.cancelled
        ):
            job = self._alive.job
            job.reason = "The Restore panel was closed; run cancelled."
            self._stop(job, job.reason)
        return super().event(event)

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.params_container.native)
        lay.addWidget(self.advanced)
        lay.addWidget(self.cost_label.native)
        row = QHBoxLayout()
        for b in (self.train_button, self.run_button, self.cancel_button):
            row.addWidget(b.native)
        lay.addLayout(row)
        lay.addWidget(self.preview_button.native)
        lay.addWidget(self.residual_check.native)
        lay.addWidget(self.progress_bar.native)
        lay.addWidget(self.progress_label.native)
        lay.addWidget(self.status_label.native)
        lay.addWidget(self.model_label.native)
        row = QHBoxLayout()
        row.addWidget(self.save_button.native)
        row.addWidget(self.load_button.native)
        lay.addLayout(row)
        lay.addStretch(1)
        self.setMinimumWidth(300)

    def _build_params(self, method: str) -> None:
        cls = PARAMS[method]
        for w in self.param_widgets.values():
            for container in (self.params_container, self.advanced_container):
                if w in container:
                    container.remove(w)
        self.advanced_container.clear()
        self.param_widgets = {}
        hints = typing.get_type_hints(cls)
        docs = _docstring_fields(cls)
        for f in dataclasses.fields(cls):
            w = self._make_param_widget(method, f, hints.get(f.name, Any), docs.get(f.name, ""))
            self.param_widgets[f.name] = w
            target = self.advanced_container if f.name in ADVANCED else self.params_container
            target.append(w)
        self.advanced.setVisible(len(self.advanced_container) > 0)
        for w in self.param_widgets.values():
            w.changed.connect(self._update_cost)
        self._apply_layer_hints()
        for container in (self.params_container, self.advanced_container):
            _widen_labels(container)

    @staticmethod
    def _make_param_widget(method: str, f: dataclasses.Field, tp: Any, doc: str) -> Widget:
        name = f.name
        base, optional = _unwrap_optional(tp)
        default = WIDGET_DEFAULTS.get(name, f.default)
        if default is dataclasses.MISSING:
            default = None
        opts = {**FIELD_OPTIONS.get(name, {}), **FIELD_OPTIONS.get((method, name), {})}
        label = LABELS.get(name, name.replace("_", " "))
        tip = doc
        none_value: Any = None
        none_text = ""
        if optional:  # None is shown as a sentinel value at the bottom of the range
            none_value, none_text = NONE_AS.get(name, (-1 if base is int else 0.0, "none"))
            opts["min"] = min(opts.get("min", none_value), none_value)
            tip += f" ({none_value:g} = {none_text})"
        value = none_value if default is None else default
        choices = f.metadata.get("choices") or FIELD_CHOICES.get(name)
        if choices:
            w: Widget = ComboBox(choices=list(choices), value=default)
        elif base is bool:
            w = CheckBox(value=bool(default), text=label)  # a checkbox shows its own text
        elif base is int:
            opts.setdefault("min", 0)
            opts.setdefault("max", 2**31 - 1)
            w = SpinBox(value=int(value), **opts)
        elif base is float:
            opts.setdefault("min", 0.0)
            opts.setdefault("max", 1e9)
            w = FloatSpinBox(value=float(value), **opts)
        else:
            optional = False
            w = LineEdit(value="" if default is None else str(default))
        if optional and opts.get("min") == none_value:
            special = getattr(w.native, "setSpecialValueText", None)
            if special is not None:
                special(none_text)  # shown instead of the sentinel number
        if name in WIDGET_DEFAULT_NOTES:
            tip += " " + WIDGET_DEFAULT_NOTES[name]
        if name in LAYER_HINTS:
            tip += " " + LAYER_HINTS[name][1]
        w.label = label
        w.name = name
        w.tooltip = tip.strip()
        w._nr_optional = optional  # type: ignore[attr-defined]
        w._nr_none = none_value  # type: ignore[attr-defined]
        w._nr_base = base  # type: ignore[attr-defined]
        return w

    # ------------------------------------------------------------------ parameters
    @property
    def method(self) -> str:
        return self.method_combo.value

    def param_values(self) -> dict[str, Any]:
        """The parameter widgets' values as the dataclass's field values (None mapped back)."""
        out: dict[str, Any] = {}
        for name, w in self.param_widgets.items():
            v = w.value
            optional, base = w._nr_optional, w._nr_base  # type: ignore[attr-defined]
            if optional and v == w._nr_none:  # type: ignore[attr-defined]
                v = None
            elif base is int and not isinstance(v, bool):
                v = int(v)
            elif base is float:
                v = float(v)
            out[name] = v
        return out

    def get_params(self) -> Any:
        """The method's parameter dataclass from the widgets; raises ValueError if invalid."""
        return PARAMS[self.method](**self.param_values())

    def set_params(self, params: Any) -> None:
        """Set the parameter widgets from a parameter dataclass or a dict."""
        d = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
        for name, v in d.items():
            w = self.param_widgets.get(name)
            if w is None:
                continue
            if v is None and w._nr_optional:  # type: ignore[attr-defined]
                v = w._nr_none  # type: ignore[attr-defined]
            w.value = v

    def _on_method_changed(self, *_: Any) -> None:
        self._build_params(self.method)
        self._update_buttons()
        self._update_cost()

    # ------------------------------------------------------------------ cost
    def estimate(self, kind: str = "train") -> Any:
        """The cost estimate of Train (or Run, ``kind="run"``) on the selected layer with
        the current parameters, from the data's size only (no probe: never blocks the UI).
        None when there is no layer or the settings are invalid."""
        from ..core.cost import estimate_cost

        layer = self.layer_combo.value
        if layer is None:
            return None
        data = self._read_layer(layer)
        params = self.get_params()
        model = self.model if kind == "run" and self.model is not None \
            and self.model.method == self.method else None
        return estimate_cost(self.method, data, params, model=model, device=params.device,
                             streaming=self._streams(data), probe=False)

    def _streams(self, data: Any) -> bool:
        """Whether the result of ``data`` is streamed to a store (see :meth:`_large_output`)."""
        import importlib.util

        import numpy as np

        if importlib.util.find_spec("zarr") is None:
            return False
        try:
            grid = self._result_grid(data, self.get_params())
        except (ValueError, TypeError, AttributeError):
            return False
        return grid is not None and 4 * int(np.prod(grid[0])) >= LARGE_RESULT_BYTES

    def _result_grid(self, data: Any, params: Any, kind: str = "train") -> tuple | None:
        """(output shape, scale factors, translate shift) of this method's result of
        ``data``; None when unknown before the run (sparse simulation). ``run`` applies
        the loaded model, whose parameters set the grid."""
        shape = tuple(int(s) for s in data.shape)
        m = self.method
        if kind == "run" and self.model is not None and self.model.method == m:
            from ..core.params import PARAMS

            params = PARAMS[m].from_dict(self.model.params)
        if m == "denoise":
            return shape, None, None
        if m == "sparse":
            if params.simulate:
                return None
            from ..core.methods import sparse

            return (sparse.output_shape(shape, params.factor, params.axis),
                    sparse.scale_factors(len(shape), params.factor, params.axis), None)
        if m == "upsample":
            from ..core.methods import upsample

            f = upsample.axis_factors(len(shape), params.factor, params.lateral_only)
            factors, shift = upsample.grid_change(f)
            return upsample.output_shape(shape, f), factors, shift
        if m == "isotropize":
            from ..core.methods import isotropize

            n = isotropize.output_slices(shape[0], params.z_ratio)
            return (n, *shape[1:]), isotropize.scale_factors(params.z_ratio), None
        return None

    def _update_cost(self, *_: Any) -> None:
        if self._alive.closed:
            return
        try:
            est = self.estimate()
        except (ValueError, TypeError):
            est = None
        self.cost_label.value = "" if est is None else f"Estimate: {est.summary()}"

    def _stream_hint(self) -> str:
        return ("install zarr (pip install 'napari-neurorestore[large]') so that large "
                "results stream to a zarr store, or use the command line: "
                f"neurorestore {self.method} IN.tif -o OUT.zarr")

    # ------------------------------------------------------------------ layers
    def _image_layers(self) -> list[napari.layers.Image]:
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _image_layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self._image_layers()]

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer picker (napari calls this on layer events when docked)."""
        if self._alive.closed:
            return
        self.layer_combo.reset_choices()
        self._update_buttons()

    def _apply_layer_hints(self) -> None:
        """Fill in parameters that follow from the selected layer (e.g. z_ratio)."""
        layer = self.layer_combo.value
        if layer is None:
            return
        for name, (hint, _note) in LAYER_HINTS.items():
            w = self.param_widgets.get(name)
            value = hint(layer) if w is not None else None
            if value is not None:
                w.value = value

    def _on_layer_changed(self, *_: Any) -> None:
        if self._alive.closed:
            return
        self._apply_layer_hints()
        self._update_buttons()
        self._update_cost()

    def _on_layers_changed(self, *_: Any) -> None:
        self.reset_choices()

    def _on_layer_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._on_layers_changed)
        if self._alive.closed:
            return
        self.reset_choices()
        if self.layer_combo.value is None and layer in self._image_layers():
            self.layer_combo.value = layer

    def _on_layer_removed(self, event: Any) -> None:
        layer = event.value
        try:
            layer.events.name.disconnect(self._on_layers_changed)
        except Exception:  # not connected
            pass
        if self._alive.closed:
            return
        job = self._alive.job
        if job is not None and layer is job.layer and not job.cancel.cancelled:
            job.reason = f"input layer '{job.layer_name}' was removed; run cancelled"
            self._stop(job, job.reason)
        self.reset_choices()

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
    @property
    def is_busy(self) -> bool:
        """True while a Train/Run is in progress."""
        return self._alive.job is not None

    @property
    def worker(self) -> Any:
        """The current worker (None when idle)."""
        job = self._alive.job
        return job.worker if job is not None else None

    def _update_buttons(self) -> None:
        if self._alive.closed:
            return
        busy = self.is_busy
        has_layer = self.layer_combo.value is not None
        model_ok = self.model is not None and self.model.method == self.method
        self.train_button.enabled = not busy and has_layer
        self.run_button.enabled = not busy and has_layer and model_ok
        self.preview_button.visible = self.method in PREVIEW_METHODS
        self.preview_button.enabled = not busy and has_layer
        self.cancel_button.enabled = busy
        self.save_button.enabled = self.model is not None
        self.load_button.enabled = not busy
        for w in (self.layer_combo, self.method_combo, *self.param_widgets.values()):
            w.enabled = not busy

    def _set_status(self, text: str) -> None:
        if not self._alive.closed:
            self.status_label.value = text

    def _refuse(self, text: str) -> None:
        """Show why an action was not done (status label and a napari notification)."""
        self._set_status(text)
        try:
            from napari.utils.notifications import show_warning

            show_warning(text)
        except Exception:
            pass

    def _error(self, text: str) -> None:
        self._set_status(text)
        try:
            from napari.utils.notifications import show_error

            show_error(text)
        except Exception:
            pass

    def _update_model_label(self) -> None:
        if self.model is None:
            self.model_label.value = "model: none"
            return
        m = self.model
        p = m.params
        bits = [f"{m.method}"]
        if "window" in p:
            bits.append(f"window {p['window']}")
        if m.info.get("train_seconds") is not None:
            bits.append(f"trained {m.info['train_seconds']:.1f} s")
        self.model_label.value = f"model: {self.model_source} ({', '.join(bits)})"

    # ------------------------------------------------------------------ actions
    def start_training(self, *_: Any) -> Any:
        """Train on the selected layer, then restore it into a new layer.

        Returns the worker, or None when refused (the status label says why).
        """
        return self._start("train")

    def start_run(self, *_: Any) -> Any:
        """Restore the selected layer with the trained or loaded model (no training).

        Returns the worker, or None when refused (the status label says why).
        """
        if not self.is_busy:
            if self.model is None:
                self._refuse("No model yet: train one (Train) or load one (Load model…).")
                return None
            if self.model.method != self.method:
                self._refuse(
                    f"The model is a {self.model.method!r} model; choose that method to run it."
                )
                return None
        return self._start("run")

    def start_preview(self, *_: Any) -> Any:
        """Train on the selected layer (unless a model of this method is loaded or trained)
        and restore a crop around the viewer's current position into a new layer.

        Returns the worker, or None when refused (the status label says why).
        """
        if self.method not in PREVIEW_METHODS:
            self._refuse(f"{METHOD_LABELS.get(self.method, self.method)} has no preview.")
            return None
        return self._start("preview")

    def _preview_center(self, layer: Any) -> tuple[int, ...]:
        """The viewer's current position in the layer's pixel coordinates."""
        ndim = layer.ndim
        try:
            point = self.viewer.dims.point[-ndim:]
            pos = layer.world_to_data(point)
        except Exception:
            pos = [s / 2 for s in layer.data.shape]
        return tuple(int(round(float(p))) for p in pos[-ndim:])

    def _start(self, kind: str) -> Any:
        if self._alive.closed:
            return None
        if self.is_busy:
            self._refuse("A run is already in progress: wait for it or press Cancel.")
            return None
        layer = self.layer_combo.value
        if layer is None or layer not in self.viewer.layers:
            self._refuse("No image layer selected: open or choose an image layer first.")
            return None
        try:
            params = self.get_params()
            data = self._read_layer(layer)
        except ValueError as e:
            self._refuse(f"Invalid settings: {e}")
            return None
        if kind != "preview":
            from ..core.cost import refuse_if_too_big
            from ..core.io import InputError

            try:
                est = self.estimate(kind)
            except ValueError:  # bad input: the core reports it, as for any run
                est = None
            try:
                if est is not None:
                    refuse_if_too_big(est, self._stream_hint())
            except InputError as e:
                self._refuse(f"Not started: {e}")
                return None
        try:
            out, out_path = self._large_output(layer, data, params, kind)
        except (ValueError, OSError) as e:
            self._refuse(f"Cannot write the result: {e}")
            return None
        job = _Job(kind, self.method, layer, layer.name, CancelToken(), out=out,
                   out_path=out_path)
        connect = {
            "yielded": functools.partial(self._on_yielded, job),
            "returned": functools.partial(self._on_returned, job),
            "errored": functools.partial(self._on_errored, job),
            "finished": functools.partial(self._on_finished, job),
        }
        model = self.model if kind == "run" else None
        preview = None
        if kind == "preview":
            preview = {"center": self._preview_center(layer), "size": PREVIEW_SIZE}
            if self.model is not None and self.model.method == self.method:
                model = self.model
        worker = make_worker(
            restore_task,
            job.method,
            data,
            params,
            job.cancel,
            model,
            out,
            preview,
            connect=connect,
            sync=self.sync,
            cancel_token=job.cancel,
        )
        job.worker = worker
        self._alive.job = job
        self.progress_bar.value = 0
        self.progress_label.value = "starting…"
        verb = {"train": "Training on", "preview": "Previewing"}.get(kind, "Restoring")
        self._set_status(f"{verb} '{layer.name}'…")
        self._update_buttons()
        worker.start()  # an inline worker has finished (and cleared the job) on return
        return worker

    def _large_output(self, layer: Any, data: Any, params: Any, kind: str = "train"
                      ) -> tuple[Any, Path | None]:
        """A zarr store for a large result (None, None for a small one or without zarr
        installed): the result streams into it chunk by chunk (tile by tile) and is shown
        while it is written, on its own grid, instead of being held in memory."""
        import numpy as np

        if kind == "preview":
            return None, None
        grid = self._result_grid(data, params, kind)
        if grid is None or 4 * int(np.prod(grid[0])) < LARGE_RESULT_BYTES:
            return None, None
        shape, factors, shift = grid
        from ..core import io

        try:
            io._require("zarr")
        except ImportError:
            return None, None
        folder = results_folder()
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", layer.name).strip("_") or "layer"
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{self.method}"
        path, i = folder / f"{base}.zarr", 2
        while path.exists():
            path, i = folder / f"{base}-{i}.zarr", i + 1
        frames = getattr(params, "chunk_frames", None) or 64
        out = io.open_output(path, tuple(shape), chunks=frames,
                             metadata={"neurorestore": {"source_layer": layer.name}})
        self._live_grid = (factors, shift)
        return out, path

    def _show_live(self, job: _Job) -> None:
        """Add (once) and refresh the layer of a result that is being written."""
        if job.live_layer is None:
            if job.layer not in self.viewer.layers:
                return
            factors, shift = getattr(self, "_live_grid", (None, None))
            from ..core.methods import get_method

            suffix = get_method(job.method).SUFFIX
            kwargs = result_layer_kwargs(
                job.layer, {"neurorestore": {"store": str(job.out_path), "partial": True}},
                suffix, scale_factors=factors, translate_shift=shift)
            kwargs["name"] = unique_name(self.viewer, kwargs["name"])
            job.live_layer = self.viewer.add_image(job.out, **kwargs)
            job.last_refresh = time.perf_counter()
        elif time.perf_counter() - job.last_refresh > LIVE_REFRESH_SECONDS:
            job.live_layer.refresh()
            job.last_refresh = time.perf_counter()

    def cancel(self, *_: Any) -> bool:
        """Cancel the running Train/Run (no layer is added). Returns False when idle."""
        job = self._alive.job
        if job is None:
            self._set_status("Nothing to cancel.")
            return False
        self._stop(job, None)
        return True

    def _stop(self, job: _Job, reason: str | None) -> None:
        job.cancel.cancel()  # the core checks the token every step
        if job.worker is not None:
            job.worker.quit()  # the worker stops at the next yield
        self._set_status(reason or "Cancelling…")
        self.cancel_button.enabled = False

    # ------------------------------------------------------------------ worker slots
    def _on_yielded(self, job: _Job, p: Progress) -> None:
        if self._alive.closed or job is not self._alive.job or job.cancel.cancelled:
            return
        job.last_progress = p
        self.progress_bar.value = int(round(PROGRESS_MAX * p.fraction))
        self.progress_label.value = format_progress(p)
        if job.out is not None and p.stage == "predict":
            try:
                self._show_live(job)
            except Exception as e:  # the viewer refused the data: show it at the end
                job.out = None
                self._error(f"Could not show the result while it is written: {e}")

    def _on_returned(self, job: _Job, outcome: TaskOutcome) -> None:
        job.outcome = outcome
        if self._alive.closed or job is not self._alive.job:
            return
        if outcome.cancelled or job.cancel.cancelled:
            return  # reported in _on_finished
        if outcome.error is not None:
            self._error(f"{self._what(job)} failed: {outcome.error}")
            return
        result = outcome.result
        if job.layer not in self.viewer.layers:
            self._set_status(
                f"Input layer '{job.layer_name}' was removed; the result was not added."
            )
            return
        try:
            kwargs = result_layer_kwargs(
                job.layer,
                result.metadata,
                result.suffix,
                scale_factors=getattr(result, "scale_factors", None),
                translate_shift=getattr(result, "translate_shift", None),
            )
            live = job.live_layer
            if live is not None and live in self.viewer.layers:  # shown while written
                kwargs["metadata"]["neurorestore"]["store"] = str(job.out_path)
                live.metadata = kwargs["metadata"]
                live.refresh()
                new_layer = live
            else:
                kwargs["name"] = unique_name(self.viewer, kwargs["name"])
                new_layer = self.viewer.add_image(result.data, **kwargs)
        except Exception as e:  # e.g. the viewer refused the data
            self._error(f"Could not add the result layer: {e}")
            return
        self.last_result_layer = new_layer
        elapsed = time.perf_counter() - job.t0
        if job.kind == "preview" and result.model is not self.model:
            self.model = result.model
            self.model_source = f"trained on '{job.layer_name}' (preview)"
            self._update_model_label()
        if job.kind == "train":
            self.model = result.model
            self.model_source = f"trained on '{job.layer_name}'"
            self._update_model_label()
            info = result.model.info
            loss = info.get("final_loss")
            loss_txt = f", loss {loss:.4g}" if loss is not None else ""
            self._set_status(
                f"Trained in {format_seconds(info.get('train_seconds'))} "
                f"({info.get('steps', '?')} steps{loss_txt}); added '{new_layer.name}' "
                f"(total {format_seconds(elapsed)})."
            )
        else:
            self._set_status(f"Restored in {format_seconds(elapsed)}; added '{new_layer.name}'.")
        if job.out_path is not None:
            self._set_status(f"{self.status_label.value} Written to {job.out_path}.")
        sim = (result.metadata.get("neurorestore") or {}).get("simulation")
        if sim:
            self._set_status(f"{self.status_label.value}\n{format_simulation(sim)}")
        self.progress_bar.value = PROGRESS_MAX
        self.progress_label.value = "done"
        if self.residual_check.value and job.kind != "preview":
            self._add_residual(job, result, new_layer)

    def _add_residual(self, job: _Job, result: Any, new_layer: Any) -> None:
        from ..core.trust import lazy_residual
        from .trust import add_residual

        try:
            res = lazy_residual(self._read_layer(job.layer), result.data, result.metadata)
            method = (result.metadata.get("neurorestore") or {}).get("method", job.method)
            add_residual(self.viewer, job.layer, res,
                         {"restored_layer": new_layer.name, "method": method})
        except (ValueError, MemoryError) as e:
            self._error(f"Could not add the residual layer: {e}")

    def _on_errored(self, job: _Job, exc: BaseException) -> None:
        job.outcome = TaskOutcome(error=exc)
        if self._alive.closed or job is not self._alive.job:
            return
        self._error(f"{self._what(job)} failed ({type(exc).__name__}): {exc}")

    def _on_finished(self, job: _Job) -> None:
        if self._alive.job is job:
            self._alive.job = None
        job.worker = None
        if self._alive.closed:
            return
        outcome = job.outcome
        if job.cancel.cancelled or outcome is None or outcome.cancelled:
            # cancelled by the user, by removing the input layer, or aborted from napari's
            # activity dock (which calls worker.quit() only)
            if job.live_layer is not None and job.live_layer in self.viewer.layers:
                from ..core.io import output_progress

                prog = output_progress(job.out) or {}
                self._set_status(
                    f"{job.reason or self._what(job) + ' cancelled'}: "
                    f"{prog.get('frames_done', 0)} of {prog.get('frames_total', '?')} frames "
                    f"were restored; layer '{job.live_layer.name}' keeps them (the others "
                    f"show as NaN); store: {job.out_path}")
                job.live_layer.refresh()
            else:
                self._set_status(
                    job.reason or f"{self._what(job)} cancelled; no layer was added.")
            self.progress_label.value = "cancelled"
            self.progress_bar.value = 0
        elif outcome.error is not None:
            self.progress_label.value = "failed"
            self.progress_bar.value = 0
        self._update_buttons()

    @staticmethod
    def _what(job: _Job) -> str:
        return "Training" if job.kind == "train" else "Restoring"

    # ------------------------------------------------------------------ models
    def save_model(self, path: str | Path, overwrite: bool = False) -> Path | None:
        """Save the current model to ``path``. Returns the path, or None (status says why).

        An existing file is refused unless ``overwrite`` (the file dialog asks first).
        """
        if self.model is None:
            self._refuse("No model to save: train one first.")
            return None
        from ..core.models import save_model

        try:
            out = save_model(self.model, path, overwrite=overwrite)
        except (OSError, ValueError, RuntimeError) as e:
            self._error(f"Could not save the model: {e}")
            return None
        self._set_status(f"Saved the model to {out}.")
        return out

    def load_model(self, path: str | Path) -> TrainedModel | None:
        """Load a model file for Run. Returns the model, or None (status says why)."""
        if self.is_busy:
            self._refuse("A run is in progress: wait for it or press Cancel before loading.")
            return None
        from ..core.models import load_model

        try:
            model = load_model(path)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            self._error(f"Could not load the model: {e}")
            return None
        if model.method not in PARAMS:
            self._error(f"{path} holds a {model.method!r} model, which this version cannot run.")
            return None
        self.model = model
        self.model_source = f"loaded from {Path(path).name}"
        if self.method != model.method:
            self.method_combo.value = model.method
        self._update_model_label()
        self._update_buttons()
        self._set_status(f"Loaded the model from {path}; press Run to apply it.")
        return model

    def _save_dialog(self, *_: Any) -> None:
        if self.model is None:
            self._refuse("No model to save: train one first.")
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
