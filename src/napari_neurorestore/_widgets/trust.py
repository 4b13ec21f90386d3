"""The Trust report dock widget: what did a restoration remove, flatten or invent?

A thin face over :mod:`napari_neurorestore.core.trust` and :mod:`..core.report`: pick the raw
and restored layers (and optionally a Labels layer of ROIs), **Assess** runs
:func:`~napari_neurorestore.core.trust.assess` in a thread worker (inline with
``NEURORESTORE_SYNC_WORKER=1``), and the checks, the noise model and the verdict are shown.
**Add residual layer** / **Add structure map** add new layers (the user's layers are never
modified); **Save report…** writes the HTML report and its JSON.

Sub-widgets are attributes and the actions are methods (:meth:`assess`,
:meth:`add_residual_layer`, :meth:`add_structure_layer`, :meth:`save_report`), so tests and
scripts drive it without clicking.
"""

from __future__ import annotations

import html
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.progress import CancelToken, Progress
from ..core.trust.checks import transients_available
from .base import DockBase, Job, fill_combo, text_label
from .dock_layout import RowsTable
from .layers import unique_name
from .residual import add_residual
from .worker import EXPECTED_ERRORS, TaskOutcome

if TYPE_CHECKING:
    import napari

    from ..core.trust import TrustReport

#: background of the status cell per check status
STATUS_COLORS = {"pass": "#2e7d32", "warn": "#e65100", "n/a": "#616161"}
NO_ROIS = "(none: most active tiles)"
#: what the verdict line says when there is no assessment to show
NO_REPORT = "Pick a raw and a restored layer, then Assess."
#: the record kinds of layers this dock adds (not restorations)
DERIVED_KINDS = ("residual", "structure_map")


def _layer_data(layer: Any) -> Any:
    data = layer.data
    return data[0] if getattr(layer, "multiscale", False) else data




def assess_task(raw: Any, restored: Any, metadata: dict | None, rois: Any, transients: bool,
                cancel: CancelToken) -> Generator[Progress, None, TaskOutcome]:
    """Run :func:`core.trust.assess` (one step); expected failures come back in the outcome."""
    yield Progress("prepare", 0, 1, message="assessing the residual")
    try:
        from ..core.trust import assess

        cancel.check()
        report = assess(raw, restored, metadata, rois=rois, transients=transients)
    except EXPECTED_ERRORS as exc:
        return TaskOutcome(error=exc)
    yield Progress("done", 1, 1, message="done")
    return TaskOutcome(result=report)


class TrustWidget(DockBase):
    """Dock widget: assess a restored layer against its raw layer.

    Parameters
    ----------
    napari_viewer : the viewer (injected by napari).
    """

    title = "Trust report"
    layer_types = {"raw": ("Image",), "restored": ("Image",), "rois": ("Labels",)}
    busy_message = "An assessment is already running."

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(napari_viewer, parent)
        self.report: TrustReport | None = None
        self._names: tuple[str, str] = ("raw", "restored")
        #: the raw, restored and ROI layers of the report shown (None: no report)
        self._layers: tuple[Any, Any, Any] = (None, None, None)
        self._build_ui()
        self.restored_combo.currentTextChanged.connect(self._on_restored_picked)
        for combo in (self.raw_combo, self.restored_combo, self.roi_combo):
            combo.currentTextChanged.connect(self._on_picker_changed)
        self.watch_layers()
        self.reset_choices()
        self.update_buttons()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        root = QVBoxLayout(self.body)
        root.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.raw_combo = QComboBox()
        self.raw_combo.setToolTip("the data the restoration was made from")
        self.restored_combo = QComboBox()
        self.restored_combo.setToolTip(
            "the restoration (this plugin's: method and parameters from its metadata; "
            "another tool's: same grid as the raw layer)")
        self.roi_combo = QComboBox()
        self.roi_combo.setToolTip("Labels layer of ROIs for the transient checks (movies)")
        form.addRow("Raw", self.raw_combo)
        form.addRow("Restored", self.restored_combo)
        form.addRow("ROIs", self.roi_combo)
        root.addLayout(form)
        self.transients_check = QCheckBox("check ROI transients (movies)")
        self.transients_check.setChecked(transients_available())
        self.transients_check.setEnabled(transients_available())
        root.addWidget(self.transients_check)
        self.assess_button = QPushButton("Assess")
        self.assess_button.setToolTip("check what the restoration removed (runs in the background)")
        self.assess_button.clicked.connect(self.assess)
        root.addWidget(self.assess_button)
        self.verdict_label = text_label("Pick a raw and a restored layer, then Assess.")
        root.addWidget(self.verdict_label)
        self.noise_label = text_label("")
        root.addWidget(self.noise_label)
        self.table = RowsTable(["check", "value", "threshold", "status"], min_rows=4)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().moveSection(3, 0)  # status first: never scrolled away
        root.addWidget(self.table, stretch=1)  # the table takes the room left
        row = QHBoxLayout()
        self.residual_button = QPushButton("Add residual layer")
        self.residual_button.setToolTip("add '<raw> [removed]' = raw - restored")
        self.residual_button.clicked.connect(self.add_residual_layer)
        self.structure_button = QPushButton("Add structure map")
        self.structure_button.setToolTip("where the residual has more structure than noise")
        self.structure_button.clicked.connect(self.add_structure_layer)
        row.addWidget(self.residual_button)
        row.addWidget(self.structure_button)
        root.addLayout(row)
        self.save_button = QPushButton("Save report…")
        self.save_button.setToolTip("write the HTML report and its figures as JSON")
        self.save_button.clicked.connect(self._save_dialog)
        root.addWidget(self.save_button)
        self.status_label = text_label(selectable=False)
        root.addWidget(self.status_label)
        self.setMinimumWidth(320)

    def reset_choices(self, *_: Any) -> None:
        """Refill the layer pickers, keeping the current choices where they still exist."""
        images = [la.name for la in self.layers_for("raw")]
        fill_combo(self.raw_combo, images)
        fill_combo(self.restored_combo, images)
        fill_combo(self.roi_combo, [la.name for la in self.layers_for("rois")], [NO_ROIS])
        if self.restored_combo.currentText() == self.raw_combo.currentText() and len(images) > 1:
            # default: restored = the last restoration, raw = the layer it was made from
            # (its record's source_layer), else the first image without a restoration record
            restored = [la.name for la in self.layers_for("restored") if _is_result(la)]
            raws = [n for n in images if n not in restored] or images
            self._pick((restored or images)[-1], raws[0])
        self.update_buttons()

    on_layers_changed = reset_choices

    def on_layer_inserted(self, layer: Any) -> None:
        """A new restoration (with no assessment shown) is picked with its source layer."""
        self.reset_choices()
        if self.report is None and _is_result(layer) and not self.is_busy:
            self._pick(layer.name, self.raw_combo.currentText())

    def _pick(self, restored: str, raw: str) -> None:
        """Pick ``restored`` and, as raw, the layer it was made from (else ``raw``)."""
        self.restored_combo.setCurrentText(restored)
        self.raw_combo.setCurrentText(_source_of(self.layer_named(restored), self) or raw)

    def _on_restored_picked(self, name: str) -> None:
        """Picking a restoration picks the layer it was made from as raw (its provenance)."""
        source = _source_of(self.layer_named(name), self)
        if source:
            self.raw_combo.setCurrentText(source)

    def _on_picker_changed(self, *_: Any) -> None:
        if self.report is not None and not self._report_is_current():
            self.clear_report()
            self.set_status("The picked layers changed: press Assess to assess them.")

    def _picked(self) -> tuple[Any, Any, Any]:
        """The layers the raw, restored and ROI pickers show now (None where none)."""
        return tuple(self.layer_named(c.currentText())
                     for c in (self.raw_combo, self.restored_combo, self.roi_combo))

    def _report_is_current(self) -> bool:
        """Whether the report shown is of the layers the pickers show now."""
        return self.report is not None and all(
            a is b for a, b in zip(self._picked(), self._layers, strict=True))

    def clear_report(self) -> None:
        """Forget the shown assessment: verdict, noise line, table, and the buttons that use
        it (Add residual layer, Add structure map, Save report)."""
        self.report = None
        self._layers = (None, None, None)
        self.verdict_label.setText(NO_REPORT)
        self.noise_label.setText("")
        self.table.setRowCount(0)
        self.update_buttons()

    def update_buttons(self) -> None:
        have = self.report is not None
        self.assess_button.setEnabled(not self.is_busy)
        for b in (self.residual_button, self.structure_button, self.save_button):
            b.setEnabled(have and not self.is_busy)

    # ------------------------------------------------------------------ assess
    def assess(self, *_: Any) -> Any:
        """Start assessing the selected layers; returns the worker (None if refused)."""
        if self.refuse_if_busy():
            return None
        self.clear_report()  # before anything else: nothing of the last one stays
        raw, restored, rois_layer = self._picked()
        if raw is None or restored is None:
            self.refuse("Pick a raw and a restored image layer.")
            return None
        if raw is restored:
            self.refuse(f"Raw and Restored are the same layer ('{raw.name}'): choose the "
                        f"restored layer in 'Restored' and the layer it was made from in "
                        f"'Raw'.")
            return None
        rois = None if rois_layer is None else np.asarray(_layer_data(rois_layer))
        metadata = {"neurorestore": dict((restored.metadata or {}).get("neurorestore", {}))}
        transients = self.transients_check.isChecked() and transients_available()
        self._names = (raw.name, restored.name)
        self.warn_incomplete(raw, restored)
        job = Job("assess", inputs=(raw, restored, rois_layer))
        return self.start_job(job, assess_task, _layer_data(raw), _layer_data(restored),
                              metadata, rois, transients, job.cancel,
                              status=f"Assessing '{restored.name}' against '{raw.name}'…")

    def job_title(self, job: Job) -> str:
        return "Assessment"

    def failure_text(self, job: Job, exc: BaseException, expected: bool) -> str:
        if expected:
            raw, restored = self._names
            return f"Cannot assess '{restored}' against '{raw}': {exc}"
        return super().failure_text(job, exc, expected)

    def on_result(self, job: Job, report: TrustReport) -> None:
        self._layers = job.inputs
        self.show_report(report)
        self.set_status(f"Assessed '{self._names[1]}' against '{self._names[0]}'.")

    def show_report(self, report: TrustReport) -> None:
        """Show a report's verdict, noise model and checks."""
        self.report = report
        by_name = {c.name: c for c in report.checks}
        if report.flags:
            items = "".join(f"<li><b>{f}</b>: {html.escape(by_name[f].message)}</li>" for f in report.flags
                            if f in by_name)
            self.verdict_label.setText(f"<b>{len(report.flags)} warning(s)</b><ul>{items}</ul>")
        else:
            self.verdict_label.setText("<b>No warnings</b>: the residual looks like noise.")
        method = report.method or "unknown (same grid)"
        self.noise_label.setText(f"method: {method}; {report.noise.summary()}")
        self.table.setRowCount(len(report.checks))
        for i, c in enumerate(report.checks):
            value = "–" if c.value is None else f"{c.value:.4g}"
            cells = [c.name, value, c.threshold, c.status.upper()]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(c.message)
                if j == 3:
                    item.setBackground(QColor(STATUS_COLORS.get(c.status, "#616161")))
                    item.setForeground(QColor("white"))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.update_buttons()

    def table_rows(self) -> list[tuple[str, str, str, str]]:
        """The checks table as text (name, value, threshold, status)."""
        return [tuple(self.table.item(i, j).text() for j in range(4))
                for i in range(self.table.rowCount())]

    # ------------------------------------------------------------------ layers
    def _what(self) -> dict:
        rep = self.report
        return {"restored_layer": self._names[1], "method": rep.method if rep else None}

    def _report_usable(self) -> bool:
        """Whether the report shown may be saved or used: there is one, and it is of the
        layers the pickers show now (else it is cleared, and the status says why)."""
        if self.report is None:
            self.set_status("Nothing to save or add: press Assess first.", error=True)
            return False
        if not self._report_is_current():
            self.clear_report()
            self.set_status("The picked layers changed since the assessment: press Assess "
                            "to assess them.", error=True)
            return False
        self._names = (self._layers[0].name, self._layers[1].name)
        return True

    def _assessed_raw(self) -> Any:
        """The assessed raw layer (None, and why in the status, when it went away)."""
        if not self._report_usable():
            return None
        raw = self._layers[0]
        if raw is None or raw not in self.viewer.layers:
            self.set_status(f"The raw layer '{self._names[0]}' was removed.", error=True)
            return None
        return raw

    def add_residual_layer(self, *_: Any) -> Any:
        """Add ``<raw> [removed]`` (raw - restored on the input's grid) as a new layer."""
        raw = self._assessed_raw()
        if raw is None:
            return None
        layer = add_residual(self.viewer, raw, self.report.residual, self._what(),
                             self.report.frames)
        self.set_status(f"Added '{layer.name}'.")
        return layer

    def add_structure_layer(self, *_: Any) -> Any:
        """Add ``<raw> [structure]``: the residual's structure map (1 = noise only)."""
        raw = self._assessed_raw()
        if raw is None:
            return None
        smap = np.asarray(self.report.structure_map, np.float32)
        n = smap.ndim
        thr = float(self.report.figures.get("structure_map_threshold") or 1.5)
        meta = {"neurorestore": {"kind": "structure_map", "threshold": thr,
                                 "description": "residual box means in units of their "
                                 "noise-only spread (about 1 where only noise was removed)",
                                 "raw_layer": raw.name, **self._what()}}
        layer = self.viewer.add_image(
            smap, name=unique_name(self.viewer, f"{raw.name} [structure]"),
            scale=tuple(raw.scale)[-n:], translate=tuple(raw.translate)[-n:],
            colormap="magma", contrast_limits=(0.0, max(2.0 * thr, float(smap.max()))),
            metadata=meta, blending="additive")
        self.set_status(f"Added '{layer.name}'.")
        return layer

    # ------------------------------------------------------------------ save
    def save_report(self, path: str | Path, json_path: str | Path | None = None,
                    overwrite: bool = False) -> Path | None:
        """Write the HTML report (and JSON, default ``<path>.json``); refuses existing files
        unless ``overwrite``. Returns the HTML path, None on failure (shown in the status)."""
        from ..core.report import write_report

        if not self._report_usable():
            return None
        path = Path(path)
        json_path = Path(json_path) if json_path is not None else path.with_suffix(".json")
        try:
            out = write_report(self.report, path, raw_name=self._names[0],
                               restored_name=self._names[1], overwrite=overwrite,
                               json_path=json_path)
        except (OSError, ValueError) as e:
            self.set_status(f"Report not saved: {e}", error=True)
            return None
        self.set_status(f"Report written to {out} (figures: {json_path.name}).")
        return out

    def _save_dialog(self, *_: Any) -> None:
        if not self._report_usable():
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save trust report", f"{self._names[1]}-report.html", "HTML (*.html)",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if not path:
            return
        p = Path(path)
        if p.suffix.lower() not in (".html", ".htm"):
            p = p.with_suffix(".html")
        existing = [q for q in (p, p.with_suffix(".json")) if q.exists()]
        overwrite = False
        if existing:
            names = ", ".join(q.name for q in existing)
            ans = QMessageBox.question(self, "Replace?", f"{names} already exist(s). Replace?")
            if ans != QMessageBox.StandardButton.Yes:
                self.set_status("Not saved.")
                return
            overwrite = True
        self.save_report(p, overwrite=overwrite)



def _is_result(layer: Any) -> bool:
    """Whether ``layer`` is a restoration with this plugin's record (its method or source
    layer; not a residual or structure map this dock added, nor a live session's layer)."""
    rec = (getattr(layer, "metadata", None) or {}).get("neurorestore")
    return (isinstance(rec, dict) and rec.get("kind") not in DERIVED_KINDS
            and bool(rec.get("method") or rec.get("source_layer")))


def _source_of(layer: Any, dock: DockBase) -> str | None:
    """The name of the image layer ``layer`` was made from (its record's ``source_layer``),
    when that layer is in the viewer; else None."""
    if layer is None or not _is_result(layer):
        return None
    name = layer.metadata["neurorestore"].get("source_layer")
    source = dock.layer_named(name) if isinstance(name, str) else None
    if source is None or source is layer or source not in dock.layers_for("raw"):
        return None
    return name
