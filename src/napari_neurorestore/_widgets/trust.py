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
from .base import DockBase, Job, RowsTable, fill_combo, text_label
from .layers import unique_name
from .worker import EXPECTED_ERRORS, TaskOutcome

if TYPE_CHECKING:
    import napari

    from ..core.trust import TrustReport

#: background of the status cell per check status
STATUS_COLORS = {"pass": "#2e7d32", "warn": "#e65100", "n/a": "#616161"}
NO_ROIS = "(none: most active tiles)"
#: the diverging colormap of residual layers (centred on 0 by symmetric contrast limits)
RESIDUAL_COLORMAP = "PiYG"


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


def residual_layer_kwargs(raw_layer: Any, residual: np.ndarray, what: dict,
                          frames: tuple[int, int] | None = None) -> dict:
    """``add_image`` keyword arguments of a residual (raw - restored) layer: the raw layer's
    scale and translate (shifted to the first assessed frame), a diverging colormap with
    contrast limits symmetric about 0, and metadata saying what it is."""
    scale = tuple(float(s) for s in raw_layer.scale)
    translate = [float(t) for t in raw_layer.translate]
    if frames is not None and frames[0]:
        translate[0] += frames[0] * scale[0]
    sample = np.asarray(residual[:64] if np.ndim(residual) >= 3 else residual)  # lazy: 64 frames
    finite = np.abs(sample[np.isfinite(sample)])
    lim = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    meta = {"neurorestore": {"kind": "residual", "description":
                             "raw - restored on the input's grid (what the restoration "
                             "removed; positive where it lowered the intensity)",
                             "raw_layer": raw_layer.name, "frames": list(frames) if frames
                             else None, **what}}
    return {"name": f"{raw_layer.name} [removed]", "scale": scale,
            "translate": tuple(translate), "colormap": RESIDUAL_COLORMAP,
            "contrast_limits": (-lim, lim), "metadata": meta, "blending": "translucent"}


def add_residual(viewer: Any, raw_layer: Any, residual: np.ndarray, what: dict,
                 frames: tuple[int, int] | None = None) -> Any:
    """Add ``<raw> [removed]`` to ``viewer`` (a new layer, unique name)."""
    kw = residual_layer_kwargs(raw_layer, residual, what, frames)
    kw["name"] = unique_name(viewer, kw["name"])
    data = residual if hasattr(residual, "dask") else np.asarray(residual, np.float32)
    return viewer.add_image(data, **kw)


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
        self._layers: tuple[Any, Any] = (None, None)
        self._build_ui()
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
            # default: raw = the first image without a restoration record, restored = the last
            restored = [la.name for la in self.layers_for("restored")
                        if "neurorestore" in (la.metadata or {})]
            raws = [n for n in images if n not in restored] or images
            self.raw_combo.setCurrentText(raws[0])
            self.restored_combo.setCurrentText((restored or images)[-1])
        self.update_buttons()

    on_layers_changed = reset_choices

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
        raw = self.layer_named(self.raw_combo.currentText())
        restored = self.layer_named(self.restored_combo.currentText())
        if raw is None or restored is None:
            self.refuse("Pick a raw and a restored image layer.")
            return None
        if raw is restored:
            self.refuse("The raw and restored layers are the same layer.")
            return None
        rois_layer = self.layer_named(self.roi_combo.currentText())
        rois = None if rois_layer is None else np.asarray(_layer_data(rois_layer))
        metadata = {"neurorestore": dict((restored.metadata or {}).get("neurorestore", {}))}
        transients = self.transients_check.isChecked() and transients_available()
        self._layers = (raw, restored)
        self._names = (raw.name, restored.name)
        self.warn_incomplete(raw, restored)
        job = Job("assess")
        return self.start_job(job, assess_task, _layer_data(raw), _layer_data(restored),
                              metadata, rois, transients, job.cancel,
                              status=f"Assessing '{restored.name}' against '{raw.name}'…")

    def job_title(self, job: Job) -> str:
        return "Assessment"

    def failure_text(self, job: Job, exc: BaseException, expected: bool) -> str:
        if expected:
            return f"Cannot assess: {exc}"
        return super().failure_text(job, exc, expected)

    def on_result(self, job: Job, report: TrustReport) -> None:
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

    def _assessed_raw(self) -> Any:
        """The assessed raw layer (None, and why in the status, when it went away)."""
        if self.report is None:
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

        if self.report is None:
            self.set_status("Nothing to save: Assess first.", error=True)
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

