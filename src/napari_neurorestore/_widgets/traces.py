"""ROI traces dock: ΔF/F of ROIs (Shapes or Labels) in a reference layer and compare layers,
plotted with matplotlib in a Qt canvas themed like napari, with a fidelity table and exports.

The widget is thin: masks, traces, F0, ΔF/F and fidelity figures all come from
:mod:`napari_neurorestore.core.traces`. Traces are cached per ROI (keyed by its pixels), so
moving one ROI re-extracts only that ROI; large extractions (``async_threshold``) run as a
job of the dock base (:mod:`._widgets.base`, :mod:`._widgets.worker`: inline with
``NEURORESTORE_SYNC_WORKER=1`` or ``sync = True``), which **Cancel** stops. The parts:
:mod:`.traces_options` (ΔF/F options), :mod:`.traces_rois` (ROI layers and masks),
:mod:`.traces_plot` (the canvas), :mod:`.traces_table` (the fidelity table).

Sub-widgets are attributes so tests (and scripts) can drive them; :meth:`refresh` recomputes
synchronously when nothing needs the worker, :meth:`export_traces_csv`,
:meth:`export_fidelity_csv` and :meth:`save_figure` write the exports without dialogs.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core import traces as tr
from ..core.errors import InputError
from .base import ERROR_STYLE, DockBase, disconnect_quietly, text_label
from .dock_layout import Section
from .formatting import gui_words
from .traces_compute import TraceCompute
from .traces_layers import TraceLayers
from .traces_options import TraceOptions
from .traces_plot import TracePlot
from .traces_rois import layer_data, palette_color
from .traces_table import (
    TABLE_COLUMNS,
    WARN_COLOR,
    fill_fidelity_table,
    make_fidelity_table,
    transient_warnings,
)

#: the least size (pixels) of the dock when popped out as a window: plots and table wide
POP_OUT_SIZE = (960, 720)

if TYPE_CHECKING:
    import napari

__all__ = ["TABLE_COLUMNS", "WARN_COLOR", "TracesWidget", "palette_color"]

log = logging.getLogger(__name__)


class TracesWidget(TraceLayers, TraceCompute, DockBase):
    """Dock widget: ROI ΔF/F traces of a reference layer and compare layers.

    Parameters
    ----------
    napari_viewer : the viewer (injected by napari).
    """

    title = "ROI traces"
    layer_types = {"reference": ("Image",), "compare": ("Image",),
                   "rois": ("Shapes", "Labels")}
    busy_message = "Traces are being computed: wait for them or press Cancel."

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.cache = tr.TraceCache()
        self.result: tr.TraceResult | None = None
        self.messages: list[str] = []
        self.error: str | None = None
        self._written: str | None = None  # the last export's "written to" line
        #: extraction work (frames x pixels still to read) above which a worker thread is used
        self.async_threshold = 20_000_000
        self.debounce_ms = 150
        #: a shown layer whose data changes (a live layer growing) recomputes at most this often
        self.follow_seconds = 1.0
        self._last_refresh = 0.0
        self._pending = False
        self._roi_layer = None
        self._watched: list[tuple[Any, str, Any]] = []
        self._colors: dict[int, np.ndarray] = {}
        self._updating_lists = False
        self.plot = TracePlot(self.viewer)
        self._build_ui()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._safe_refresh)
        self.watch_layers()
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.events.theme.connect(self._on_theme)
        self.on_layers_changed()  # fill the lists
        self.plot.apply_theme()
        self.options.update_fields()
        self.update_buttons()
        self._safe_refresh()

    # the plot's parts, as attributes of the dock
    figure = property(lambda self: self.plot.figure)
    canvas = property(lambda self: self.plot.canvas)
    lines = property(lambda self: self.plot.lines)
    axes = property(lambda self: self.plot.axes)
    vlines = property(lambda self: self.plot.vlines)
    event_markers = property(lambda self: self.plot.event_markers)
    flag_markers = property(lambda self: self.plot.flag_markers)

    def pop_out(self, floating: bool = True) -> bool:
        """Float the dock this widget sits in as a wide window (False: dock it back).
        Returns whether it is floating (False when not in a dock)."""
        dock = self.parent()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parent()
        if dock is None:
            return False
        dock.setFloating(bool(floating))
        if floating:
            dock.resize(max(dock.width(), POP_OUT_SIZE[0]), max(dock.height(), POP_OUT_SIZE[1]))
        if self.pop_out_button.isChecked() != bool(floating):
            self.pop_out_button.setChecked(bool(floating))
        return dock.isFloating()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        root = QVBoxLayout(self.body)
        root.setContentsMargins(4, 4, 4, 4)

        # layers
        box = QGroupBox("Layers")
        form = QFormLayout(box)
        self.reference_combo = QComboBox()
        self.reference_combo.setToolTip("the movie the others are compared with (usually raw)")
        form.addRow("Reference", self.reference_combo)
        self.compare_list = QListWidget()
        self.compare_list.setToolTip("restored layers sharing the reference's time axis")
        self.compare_list.setMaximumHeight(72)  # 3 layers; Qt's least for a list: 69
        form.addRow("Compare", self.compare_list)
        row = QHBoxLayout()
        self.roi_combo = QComboBox()
        self.roi_combo.setToolTip("Shapes (ellipses, rectangles, polygons) or Labels (one ROI per label)")
        self.roi_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.add_shapes_button = QPushButton("New ROI layer")
        self.add_shapes_button.setToolTip("add a Shapes layer, ready to draw ellipses on")
        row.addWidget(self.roi_combo)
        row.addWidget(self.add_shapes_button)
        form.addRow("ROIs", row)
        root.addWidget(box)

        # ΔF/F options (their controls are also attributes of the dock)
        self.options = TraceOptions()
        for name in TraceOptions.CONTROLS:
            setattr(self, name, getattr(self.options, name))
        self.options.setTitle("")  # the section says it
        self.options_section = Section("ΔF/F options")  # collapsed: the plot gets the room
        self.options_section.addWidget(self.options)
        root.addWidget(self.options_section)

        # plot
        row = QHBoxLayout()
        self.overlay_check = QCheckBox("Overlay layers")
        self.overlay_check.setToolTip("one panel: reference solid, compare layers dashed")
        row.addWidget(self.overlay_check)
        row.addStretch(1)
        self.refresh_button = QPushButton("Refresh")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop computing the traces in the background")
        row.addWidget(self.refresh_button)
        row.addWidget(self.cancel_button)
        self.pop_out_button = QPushButton("Pop out")
        self.pop_out_button.setCheckable(True)
        self.pop_out_button.setToolTip("float this dock as a wide window (again: dock it back)")
        row.addWidget(self.pop_out_button)
        root.addLayout(row)
        # the plot and the table share a splitter: drag the handle to give either more room
        self.fidelity_table = make_fidelity_table()
        self.plot_splitter = QSplitter(Qt.Orientation.Vertical)
        self.plot_splitter.addWidget(self.canvas)
        self.plot_splitter.addWidget(self.fidelity_table)
        self.plot_splitter.setChildrenCollapsible(False)
        self.plot_splitter.setStretchFactor(0, 3)
        self.plot_splitter.setStretchFactor(1, 1)
        root.addWidget(self.plot_splitter, stretch=1)

        # export
        row = QHBoxLayout()
        self.export_traces_button = QPushButton("Traces CSV…")
        self.export_fidelity_button = QPushButton("Fidelity CSV…")
        self.save_figure_button = QPushButton("Figure PNG/SVG…")
        for b in (self.export_traces_button, self.export_fidelity_button, self.save_figure_button):
            row.addWidget(b)
        root.addLayout(row)
        self.status_label = text_label()
        root.addWidget(self.status_label)

        # signals
        self.pop_out_button.toggled.connect(self.pop_out)
        self.reference_combo.currentIndexChanged.connect(self._on_reference_changed)
        self.compare_list.itemChanged.connect(lambda *_: self._lists_edited())
        self.roi_combo.currentIndexChanged.connect(lambda *_: self._on_roi_layer_changed())
        self.add_shapes_button.clicked.connect(self._safe(self.add_roi_layer))
        for signal in [*self.options.changed(), self.overlay_check.toggled]:
            signal.connect(self.schedule_refresh)
        self.refresh_button.clicked.connect(self._safe_refresh)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_traces_button.clicked.connect(self._safe(self._export_traces_dialog))
        self.export_fidelity_button.clicked.connect(self._safe(self._export_fidelity_dialog))
        self.save_figure_button.clicked.connect(self._safe(self._save_figure_dialog))
        self.canvas.mpl_connect("button_press_event", self._on_click)

    def params(self) -> tr.TraceParams:
        """The :class:`~napari_neurorestore.core.traces.TraceParams` the controls describe."""
        return self.options.params()

    def update_buttons(self) -> None:
        self.cancel_button.setEnabled(self.is_busy)

    # ------------------------------------------------------------------ frame / time
    def _time_axis(self) -> int | None:
        ref = self.reference_layer
        return None if ref is None else self.viewer.dims.ndim - ref.ndim

    def current_frame(self) -> int:
        """The viewer's current frame in the reference layer."""
        ref, ax = self.reference_layer, self._time_axis()
        if ref is None or ax is None or ax < 0:
            return 0
        point = float(self.viewer.dims.point[ax])
        f = int(round((point - float(ref.translate[0])) / float(ref.scale[0])))
        return int(np.clip(f, 0, max(0, layer_data(ref).shape[0] - 1)))

    def go_to_frame(self, frame: int) -> None:
        """Move the viewer to ``frame`` of the reference layer."""
        ref, ax = self.reference_layer, self._time_axis()
        if ref is None or ax is None or ax < 0:
            return
        frame = int(np.clip(frame, 0, layer_data(ref).shape[0] - 1))
        self.viewer.dims.set_point(ax, frame * float(ref.scale[0]) + float(ref.translate[0]))

    def _current_index(self, lay: Any, axis: int = -3) -> int:
        """The viewer's current index along ``lay``'s ``axis`` (negative: from the end)."""
        ax_layer = lay.ndim + axis
        ax = self.viewer.dims.ndim - lay.ndim + ax_layer
        point = float(self.viewer.dims.point[ax])
        i = int(round((point - float(lay.translate[ax_layer])) / float(lay.scale[ax_layer])))
        return int(np.clip(i, 0, layer_data(lay).shape[ax_layer] - 1))

    def _frame_to_x(self, frame: float) -> float:
        return frame / self.fps_spin.value() if self.options.use_seconds() else float(frame)

    def _on_step(self, event: Any = None) -> None:
        try:
            if self.vlines:
                self.plot.move_cursor(self._frame_to_x(self.current_frame()))
        except Exception:  # never a traceback dialog for a cursor line
            log.exception("traces widget: frame line update failed")

    def _on_click(self, event: Any) -> None:
        try:
            if event.inaxes is None or event.xdata is None or event.button != 1:
                return
            if self.canvas.toolbar is not None and getattr(self.canvas.toolbar, "mode", ""):
                return
            x = float(event.xdata)
            frame = x * self.fps_spin.value() if self.options.use_seconds() else x
            self.go_to_frame(int(round(frame)))
        except Exception:
            log.exception("traces widget: click handling failed")

    def _on_theme(self, event: Any = None) -> None:
        try:
            self.plot.apply_theme()
        except Exception:
            log.exception("traces widget: theme update failed")

    # ------------------------------------------------------------------ refresh
    def schedule_refresh(self, *_: Any) -> None:
        """Recompute after ``debounce_ms`` (edits in quick succession coalesce)."""
        self._timer.start(self.debounce_ms)

    def _safe(self, fn):
        def run(*_: Any) -> None:
            try:
                fn()
            except (InputError, ValueError, OSError) as e:
                self._show_status(self._notes(), str(e))
            except Exception as e:
                log.exception("traces widget")
                self._show_status(self._notes(), f"unexpected error: {type(e).__name__}: {e}")
        return run

    def _safe_refresh(self, *_: Any) -> None:
        self._safe(self.refresh)()

    # ------------------------------------------------------------------ drawing
    def draw(self) -> None:
        """Plot the current result and fill the fidelity table."""
        res = self.result
        x = res.frames / self.fps_spin.value() if self.options.use_seconds() \
            else res.frames.astype(float)
        self.plot.draw(res, x, self._colors, self.overlay_check.isChecked(),
                       "time (s)" if self.options.use_seconds() else "frame",
                       self._frame_to_x(self.current_frame()))
        fill_fidelity_table(self.fidelity_table, res, self._colors)

    def clear(self) -> None:
        """Empty the plot and the table."""
        self.plot.clear()
        self.fidelity_table.setRowCount(0)

    def transient_warnings(self) -> list[str]:
        """One line per flagged (ROI, compare layer) of the current result."""
        return transient_warnings(self.result)

    def _clear(self, message: str) -> None:
        self.result = None
        self.clear()
        self._show_status([], message)

    def _show_status(self, notes: list[str], error: str | None, busy: str | None = None) -> None:
        self.messages = list(notes)
        self.error = None if error is None else gui_words(error)
        error = self.error
        parts = []
        if error:
            parts.append(f"<span style='{ERROR_STYLE}'>{_html(error)}</span>")
        if busy:
            parts.append(_html(busy))
        parts += [f"<span style='{ERROR_STYLE}'>{_html(m)}</span>" if m.startswith("⚠")
                  else _html(m) for m in notes]
        if not parts and self.result is not None:
            r = self.result
            parts.append(f"{len(r.roi_ids)} ROI(s), {r.n_frames} frames, {len(r.layers)} layer(s)")
        self.status_label.setText("<br>".join(parts))

    # ------------------------------------------------------------------ export
    def export_traces_csv(self, path: str | os.PathLike, tidy: bool = False) -> None:
        """Write the traces (frame, time, F and ΔF/F per ROI and layer) as CSV."""
        tr.write_traces_csv(path, self._need_result(), tidy=tidy)

    def export_fidelity_csv(self, path: str | os.PathLike) -> None:
        """Write the fidelity table as CSV."""
        tr.write_fidelity_csv(path, self._need_result())

    def save_figure(self, path: str | os.PathLike, dpi: int = 150) -> None:
        """Save the plot (PNG, SVG, PDF, … by the file's extension)."""
        self._need_result()
        self.plot.save(path, dpi=dpi)

    def _need_result(self) -> tr.TraceResult:
        if self.result is None:
            raise InputError("nothing to export yet: choose a movie and ROIs first")
        return self.result

    def _export_dialog(self, title: str, filt: str, default: str, write: Any,
                       what: str) -> None:
        self._need_result()
        path, _ = QFileDialog.getSaveFileName(self, title, default, filt)
        if path:
            self._show_status(self._notes(), None)  # the last export's line goes first
            write(path)
            self._written = f"{what} written to {path}"
            self._show_status([*self.messages, self._written], None)

    def _notes(self) -> list[str]:
        """The status notes without the last export's "written to" line."""
        written, self._written = self._written, None
        return [m for m in self.messages if m != written]

    def _export_traces_dialog(self) -> None:
        self._export_dialog("Save traces", "CSV (*.csv)", "traces.csv",
                            self.export_traces_csv, "traces")

    def _export_fidelity_dialog(self) -> None:
        self._export_dialog("Save fidelity table", "CSV (*.csv)", "fidelity.csv",
                            self.export_fidelity_csv, "fidelity table")

    def _save_figure_dialog(self) -> None:
        self._export_dialog("Save figure", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)",
                            "traces.png", self.save_figure, "figure")

    # ------------------------------------------------------------------ teardown
    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt)
        self.disconnect_viewer()
        super().closeEvent(event)

    def disconnect_viewer(self) -> None:
        """Stop listening to the viewer (and stop a running worker)."""
        self._timer.stop()
        if self.job is not None:
            self._stop(self.job, None)
        self._unwatch("roi")
        self._unwatch("data")
        disconnect_quietly(self.viewer.dims.events.current_step, self._on_step)
        disconnect_quietly(self.viewer.events.theme, self._on_theme)
        self.unwatch_layers()


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
