"""The Restore dock's pickers of a method's extra inputs, generated from its declared
:class:`~napari_neurorestore.core.methods.base.Option` data (``Method.cli_options``), as the
CLI's flags are.

Each option whose ``layer`` is set (sparse's fully sampled ``reference`` stack and its ROI
``labels``) gets a combo of the viewer's layers of its type (Image or Labels) with "(none)"
first; the pickers are rebuilt when the method changes and refilled as layers come and go
(:meth:`.base.DockBase.layers_for`, :func:`.base.fill_combo`). The chosen layers' data go
into the job as the method's opened options, the values the CLI's
``Method.open_options`` makes of its files: ``engine.restore(..., **options)`` checks them
(``Method.check_options``) and hands them to ``train``/``predict``. Options that are not
layers (upsample's ``memory_budget``) are not shown: the dock runs with their defaults.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

from ..core.methods import get
from .base import fill_combo

#: the first entry of every picker: no layer (the option is not given)
NONE = "(none)"


def layer_options(method: str) -> tuple[Any, ...]:
    """The options of ``method`` that the dock picks as layers."""
    return tuple(o for o in get(method).cli_options if o.layer_type)


def label_of(option: Any) -> str:
    """A picker's label: the option's name, spaced ("reference", "labels")."""
    return option.name.replace("_", " ")


class ExtraInputs(QWidget):
    """The layer pickers of the current method's extra inputs (hidden when it has none).

    ``combos[name]`` is the picker of option ``name``; :meth:`layers` gives the chosen
    layers, :meth:`values` their data as the job's options. ``dock`` is the Restore dock (a
    :class:`.base.DockBase`: its ``layer_types`` has a role per layer type, "image" and
    "labels")."""

    def __init__(self, dock: Any) -> None:
        super().__init__()
        self.dock = dock
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.combos: dict[str, QComboBox] = {}
        self.options: dict[str, Any] = {}
        self.setVisible(False)

    def build(self, method: str) -> None:
        """Replace the pickers by those of ``method``'s layer options."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.combos, self.options = {}, {}
        for o in layer_options(method):
            combo = QComboBox()
            combo.setObjectName(f"{o.name}_combo")
            combo.setToolTip(f"{o.help} ({o.layer_type} layer; {NONE}: not used)")
            self.combos[o.name], self.options[o.name] = combo, o
            self.form.addRow(label_of(o), combo)
        self.refill()
        self.setVisible(bool(self.combos))

    def refill(self) -> None:
        """Refill each picker with the viewer's layers of its type, keeping the choice."""
        for name, combo in self.combos.items():
            role = self.options[name].layer_type.lower()
            fill_combo(combo, [lay.name for lay in self.dock.layers_for(role)], extra=[NONE])

    def set_enabled(self, enabled: bool) -> None:
        for combo in self.combos.values():
            combo.setEnabled(enabled)

    def select(self, name: str, layer: Any) -> None:
        """Pick ``layer`` (or None: "(none)") for option ``name``."""
        self.combos[name].setCurrentText(NONE if layer is None else layer.name)

    def layers(self) -> dict[str, Any]:
        """The chosen layer of each option that has one, by option name."""
        out = {}
        for name, combo in self.combos.items():
            text = combo.currentText()
            layer = None if text == NONE else self.dock.layer_named(text)
            if layer is not None:
                out[name] = layer
        return out

    def values(self) -> dict[str, Any]:
        """The job's options: the chosen layers' data (as the dock reads its input), by
        option name; options without a layer are left out (the method's default)."""
        return {name: self.dock._read_layer(layer) for name, layer in self.layers().items()}

    def refusal(self, data: Any, params: Any, options: dict[str, Any]) -> str | None:
        """Why the method refuses the chosen layers for ``data`` (``Method.check_options``,
        the check the CLI's files get), naming the layers; None when they fit."""
        m = get(self.dock.method)
        try:
            m.check_options(data, params, {})
        except ValueError:  # the input's fault, not the layers': the run reports it
            return None
        try:
            m.check_options(data, params, options)
        except ValueError as e:
            named = ", ".join(f"{label_of(self.options[n])} layer '{lay.name}'"
                              for n, lay in self.layers().items())
            return f"the {named} cannot be used: {e}"
        return None
