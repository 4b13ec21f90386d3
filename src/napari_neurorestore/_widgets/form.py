"""A parameter form built from a method's parameter dataclass (``core.methods.params_for``).

One widget per field, in the field's order: a spin box for ``int``/``float``, a check box for
``bool``, a combo box for fields with choices, a line edit otherwise; an optional field
(``X | None``) shows None as a sentinel value at the bottom of its range ("no cap",
"random", ...). What each widget shows comes from the field itself where it says so, and from
the tables below where it does not:

* ``field(metadata=...)`` keys: ``"label"`` (the widget's label), ``"min"``, ``"max"``,
  ``"step"`` (its range), ``"help"`` (its tooltip), ``"choices"`` (a combo box),
  ``"needs"`` (the other fields' values without which it has no effect: it is greyed out,
  its tooltip saying why, while they differ; :meth:`ParamForm.apply_needs`);
* otherwise the tooltip is the field's entry in the dataclass's numpy-style docstring, the
  label its name (or :data:`LABELS`), and the range :data:`FIELD_OPTIONS`.

The dataclass still validates the values (``get_params`` raises ValueError).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, SpinBox, Widget

from ..core.device import DEVICES
from ..core.methods import names, params_for
from ..core.params import field_docs

#: the ``field(metadata=...)`` keys the form reads (each overrides the tables below)
METADATA_KEYS = ("label", "min", "max", "step", "help", "choices", "needs")

#: ranges and steps of the parameter widgets; a ``(method, name)`` key overrides a ``name``
#: key, and a field's own ``metadata`` overrides both
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
    "epochs": (0, "no limit"),
    "patch_size": (0, "auto"),
    "steps": (0, "no limit"),
    "seed": (-1, "random"),
    "sigma_z": (-1.0, "estimate"),
}
#: where the widget's default differs from the dataclass default (and why, in the tooltip)
WIDGET_DEFAULTS: dict[str, Any] = {}  # none today: every default is the dataclass's
WIDGET_DEFAULT_NOTES: dict[str, str] = {}
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
#: labels of fields without a ``"label"`` in their metadata (default: the name, spaced)
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


#: parameters the form fills in from the selected layer: (function, tooltip note)
LAYER_HINTS: dict[str, tuple[Any, str]] = {
    "z_ratio": (_z_ratio_from_layer, "Filled in from the layer's scale (z over x) when set."),
}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``float | None`` -> (float, True); ``int`` -> (int, False)."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def field_options(method: str, f: dataclasses.Field) -> dict[str, Any]:
    """``min``/``max``/``step`` of a field's widget: its metadata, else the tables."""
    opts = {**FIELD_OPTIONS.get(f.name, {}), **FIELD_OPTIONS.get((method, f.name), {})}
    opts.update({k: f.metadata[k] for k in ("min", "max", "step") if k in f.metadata})
    return opts


def make_param_widget(method: str, f: dataclasses.Field, tp: Any, doc: str) -> Widget:
    """The widget of one field (``tp`` its resolved type, ``doc`` its docstring entry)."""
    name = f.name
    base, optional = _unwrap_optional(tp)
    default = WIDGET_DEFAULTS.get(name, f.default)
    if default is dataclasses.MISSING:
        default = None
    opts = field_options(method, f)
    label = f.metadata.get("label") or LABELS.get(name, name.replace("_", " "))
    tip = f.metadata.get("help") or doc
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
        show_none_as_text(w.native, none_value, none_text)
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


def show_none_as_text(spin: Any, none_value: Any, text: str) -> None:
    """Show ``text`` instead of the sentinel ``none_value`` in a spin box. Qt's own spin
    boxes have ``setSpecialValueText``; superqt's QLargeIntSpinBox (magicgui's SpinBox)
    ignores it, so its edit's text is mapped both ways here."""
    spin.setSpecialValueText(text)
    if not hasattr(spin, "_updateEdit"):  # a Qt spin box: the special text does it all
        return
    interpret = spin._interpret

    def update_edit() -> None:
        new = text if spin.value() == none_value else str(spin.value())
        if spin.lineEdit().text() != new:
            spin.lineEdit().setText(new)

    def interpret_text(policy: Any) -> None:
        if spin.lineEdit().displayText().strip() == text:
            spin._setValue(none_value, policy)
        else:
            interpret(policy)

    spin._updateEdit, spin._interpret = update_edit, interpret_text
    update_edit()


def widen_labels(container: Container, slack: float = 1.25) -> None:
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


class ParamForm:
    """The widgets of one parameter dataclass, in a main and an "Advanced" container.

    ``widgets[name]`` is the widget of field ``name``; :meth:`values` reads them back as the
    dataclass's field values, :meth:`set_values` writes them. ``params`` maps a method name
    to its dataclass (default: every registered method's).
    """

    def __init__(self, main: Container, advanced: Container,
                 params: dict[str, type] | None = None) -> None:
        self.main = main
        self.advanced = advanced
        self.params = {n: params_for(n) for n in names()} if params is None else params
        self.widgets: dict[str, Widget] = {}
        self.method: str | None = None
        #: fields shown as fixed (greyed out) by :meth:`fix`, with their free tooltips
        self.fixed: dict[str, str] = {}
        #: field -> {other field: value} it needs (``needs`` metadata), and free tooltips
        self.needs: dict[str, dict[str, Any]] = {}
        self._free_tips: dict[str, str] = {}

    def build(self, method: str) -> None:
        """Replace the widgets by those of ``method``'s dataclass."""
        cls = self.params[method]
        for w in self.widgets.values():
            for container in (self.main, self.advanced):
                if w in container:
                    container.remove(w)
        self.advanced.clear()
        self.widgets = {}
        self.fixed = {}
        self.needs, self._free_tips = {}, {}
        self.method = method
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)  # the CLI's help reads the same entries
        for f in dataclasses.fields(cls):
            w = make_param_widget(method, f, hints.get(f.name, Any), docs.get(f.name, ""))
            self.widgets[f.name] = w
            (self.advanced if f.name in ADVANCED else self.main).append(w)
            if f.metadata.get("needs"):
                self.needs[f.name] = dict(f.metadata["needs"])
        # a change of what a field needs greys it out or back
        for other in {o for need in self.needs.values() for o in need if o in self.widgets}:
            self.widgets[other].changed.connect(lambda *_: self.apply_needs())
        self.apply_needs()
        for container in (self.main, self.advanced):
            widen_labels(container)

    def values(self) -> dict[str, Any]:
        """The widgets' values as the dataclass's field values (None mapped back)."""
        out: dict[str, Any] = {}
        for name, w in self.widgets.items():
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

    def get(self) -> Any:
        """The dataclass from the widgets; raises ValueError if invalid."""
        return self.params[self.method](**self.values())

    def set_values(self, params: Any) -> None:
        """Set the widgets from a parameter dataclass or a dict."""
        d = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
        for name, v in d.items():
            w = self.widgets.get(name)
            if w is None:
                continue
            if v is None and w._nr_optional:  # type: ignore[attr-defined]
                v = w._nr_none  # type: ignore[attr-defined]
            w.value = v

    def apply_layer_hints(self, layer: Any) -> None:
        """Fill in parameters that follow from ``layer`` (e.g. z_ratio from its scale)."""
        if layer is None:
            return
        for name, (hint, _note) in LAYER_HINTS.items():
            w = self.widgets.get(name)
            value = hint(layer) if w is not None else None
            if value is not None:
                w.value = value

    def fix(self, values: dict[str, Any], note: str = "") -> None:
        """Show the fields of ``values`` with those values, greyed out (e.g. the parameters
        a loaded model fixes), ``note`` heading their tooltips; fields fixed before and not
        in ``values`` get their tooltips back (enabling them is the caller's)."""
        for name in [n for n in self.fixed if n not in values]:
            w = self.widgets.get(name)
            if w is not None:
                w.tooltip = self.fixed[name]
            del self.fixed[name]
        for name, value in values.items():
            w = self.widgets.get(name)
            if w is None:
                continue
            self.fixed.setdefault(name, w.tooltip or "")
            if value is None and w._nr_optional:  # type: ignore[attr-defined]
                value = w._nr_none  # type: ignore[attr-defined]
            if w.value != value:
                w.value = value
            w.enabled = False
            w.tooltip = f"{note} {self.fixed[name]}".strip()

    def unmet(self, name: str) -> list[str]:
        """The labels of the settings field ``name`` needs and does not have (``needs``)."""
        out = []
        for other, value in self.needs.get(name, {}).items():
            w = self.widgets.get(other)
            if w is not None and w.value != value:
                label = w.text if isinstance(w, CheckBox) else w.label
                out.append(f"'{label}' {'on' if value is True else 'off' if value is False else value}")
        return out

    def apply_needs(self) -> None:
        """Grey out the fields that have no effect with the other fields' values now
        (``needs``), saying why in their tooltips, and enable them again when they do
        (unless a loaded model fixes them, :meth:`fix`). A value the user set is not
        silently ignored: the form shows that it does not apply."""
        for name in self.needs:
            w = self.widgets[name]
            free = self._free_tips.setdefault(name, w.tooltip or "")
            missing = self.unmet(name)
            if name in self.fixed:
                continue
            if missing:
                w.enabled = False
                w.tooltip = f"Not applied: needs {' and '.join(missing)}. {free}"
            else:
                w.enabled = True
                w.tooltip = free
