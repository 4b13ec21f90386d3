"""ROI traces dock: ΔF/F of ROIs (Shapes or Labels) in a reference layer and compare layers,
plotted with matplotlib in a Qt canvas themed like napari, with a fidelity table and exports.

The widget is thin: masks, traces, F0, ΔF/F and fidelity figures all come from
:mod:`napari_neurorestore.core.traces`. Traces are cached per ROI (keyed by its pixels), so
moving one ROI re-extracts only that ROI; large extractions run in a napari thread worker
(``async_threshold``; ``NEURORESTORE_SYNC_WORKER=1`` or ``sync = True`` runs them inline).

Sub-widgets are attributes so tests (and scripts) can drive them; :meth:`refresh` recomputes
synchronously when nothing needs the worker, :meth:`export_traces_csv`,
:meth:`export_fidelity_csv` and :meth:`save_figure` write the exports without dialogs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import traces as tr
from ..core.io import InputError

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

SYNC_ENV = "NEURORESTORE_SYNC_WORKER"
#: ROI colours (matplotlib's tab10), by ROI id, for the Shapes layers this widget creates.
PALETTE = np.array([
    [0.122, 0.467, 0.706], [1.000, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
    [0.580, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
    [0.737, 0.741, 0.133], [0.090, 0.745, 0.812],
])
F0_LABELS = {
    "percentile": "percentile of the trace",
    "sliding": "sliding-window percentile",
    "first": "mean of the first N frames",
    "fixed": "fixed value",
}
ROI_FEATURE = "roi"
ERROR_STYLE = "color: #e06c75;"
WARN_COLOR = "#e06c75"
#: the fidelity table's columns
TABLE_COLUMNS = ["ROI", "Layer", "SNR (dB)", "Pearson r", "NRMSE", "Events", "Peak ratio",
                 "Delay (fr)", "⚠"]
FLAG_TEXT = {"flattened": "flattened", "shifted": "shifted"}


def palette_color(roi_id: int) -> np.ndarray:
    return np.r_[PALETTE[(int(roi_id) - 1) % len(PALETTE)], 1.0]


@dataclass
class _Plan:
    """Everything :meth:`TracesWidget.refresh` needs, gathered on the UI thread."""

    names: list[str]
    movies: list[Any]
    rois: list[list[tr.Roi]]
    bg: list[list[tr.Roi]]
    colors: dict[int, np.ndarray]
    params: tr.TraceParams
    messages: list[str] = field(default_factory=list)


class TracesWidget(QWidget):
    """Dock widget: ROI ΔF/F traces of a reference layer and compare layers.

    Parameters
    ----------
    napari_viewer : the viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.cache = tr.TraceCache()
        self.result: tr.TraceResult | None = None
        self.lines: dict[tuple[str, int], Any] = {}
        #: markers of the reference's detected events, per (reference name, ROI id)
        self.event_markers: dict[tuple[str, int], Any] = {}
        #: markers of flagged events (peak ratio below the limit), per (compare name, ROI id)
        self.flag_markers: dict[tuple[str, int], Any] = {}
        self.axes: list[Any] = []
        self.vlines: list[Any] = []
        self.messages: list[str] = []
        self.error: str | None = None
        self.sync = os.environ.get(SYNC_ENV, "") not in ("", "0")
        #: extraction work (frames x pixels still to read) above which a worker thread is used
        self.async_threshold = 20_000_000
        self.debounce_ms = 150
        self._worker = None
        self._pending = False
        self._roi_layer = None
        self._watched: list[tuple[Any, str, Any]] = []
        self._colors: dict[int, np.ndarray] = {}
        self._updating_lists = False
        self._build_ui()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._safe_refresh)
        ev = self.viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered"):
            emitter = getattr(ev, name, None)
            if emitter is not None:
                emitter.connect(self._on_layers_changed)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.events.theme.connect(self._on_theme)
        self._on_layers_changed()  # fill the lists, follow renames
        self._apply_theme()
        self._update_f0_fields()
        self._safe_refresh()

    # ------------------------------------------------------------------ UI

    def _build_ui(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        d = tr.TraceParams()
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        # layers
        box = QGroupBox("Layers")
        form = QFormLayout(box)
        self.reference_combo = QComboBox()
        self.reference_combo.setToolTip("the movie the others are compared with (usually raw)")
        form.addRow("Reference", self.reference_combo)
        self.compare_list = QListWidget()
        self.compare_list.setToolTip("restored layers sharing the reference's time axis")
        self.compare_list.setMaximumHeight(64)
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

        # ΔF/F options
        box = QGroupBox("ΔF/F")
        form = QFormLayout(box)
        self.f0_mode_combo = QComboBox()
        for mode in tr.F0_MODES:
            self.f0_mode_combo.addItem(F0_LABELS[mode], mode)
        self.f0_mode_combo.setCurrentIndex(tr.F0_MODES.index(d.f0_mode))
        form.addRow("F0", self.f0_mode_combo)
        row = QHBoxLayout()
        self.percentile_spin = _dspin(0, 100, d.f0_percentile, 1, 1, " %ile")
        self.window_spin = _dspin(0.1, 1e6, d.f0_window, 1, 1)
        self.window_unit_combo = QComboBox()
        self.window_unit_combo.addItems(["s", "frames"])
        self.window_unit_combo.setCurrentText(d.f0_window_unit)
        self.first_frames_spin = QSpinBox()
        self.first_frames_spin.setRange(1, 10**7)
        self.first_frames_spin.setValue(d.f0_first_frames)
        self.first_frames_spin.setPrefix("N = ")
        self.f0_value_spin = _dspin(1e-6, 1e9, d.f0_value, 3, 10)
        for w in (self.percentile_spin, self.window_spin, self.window_unit_combo,
                  self.first_frames_spin, self.f0_value_spin):
            row.addWidget(w)
        form.addRow("", row)
        row = QHBoxLayout()
        self.fps_spin = _dspin(0, 1e5, d.fps or 0.0, 2, 1)
        self.fps_spin.setSpecialValueText("unknown")
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("frame rate (needed for time in seconds and windows in seconds)")
        self.seconds_check = QCheckBox("time in s")
        self.seconds_check.setChecked(True)
        self.offset_spin = _dspin(-1e9, 1e9, d.offset, 2, 1)
        self.offset_spin.setPrefix("offset ")
        self.offset_spin.setToolTip("camera dark level, subtracted from all intensities "
                                    "before ΔF/F and SNR")
        row.addWidget(self.fps_spin, stretch=1)
        row.addWidget(self.seconds_check)
        row.addWidget(self.offset_spin, stretch=1)
        form.addRow("Frame rate", row)
        row = QHBoxLayout()
        self.neuropil_check = QCheckBox("subtract")
        self.neuropil_check.setChecked(d.neuropil)
        self.neuropil_check.setToolTip("subtract coefficient x the annulus mean from F")
        self.neuropil_coef_spin = _dspin(0, 10, d.neuropil_coef, 2, 0.05)
        self.neuropil_coef_spin.setPrefix("× ")
        self.neuropil_inner_spin = _dspin(0, 1000, d.neuropil_inner, 1, 1)
        self.neuropil_inner_spin.setToolTip("annulus: from this distance to the ROI (pixels)")
        self.neuropil_outer_spin = _dspin(0.5, 1000, d.neuropil_outer, 1, 1)
        self.neuropil_outer_spin.setSuffix(" px")
        self.neuropil_outer_spin.setToolTip("annulus: up to this distance to the ROI (pixels); "
                                            "also the background of the SNR")
        row.addWidget(self.neuropil_check)
        row.addWidget(self.neuropil_coef_spin, stretch=1)
        form.addRow("Neuropil", row)
        row = QHBoxLayout()
        row.addWidget(self.neuropil_inner_spin, stretch=1)
        row.addWidget(QLabel("to"))
        row.addWidget(self.neuropil_outer_spin, stretch=1)
        form.addRow("Annulus", row)
        root.addWidget(box)

        # plot
        row = QHBoxLayout()
        self.overlay_check = QCheckBox("Overlay layers")
        self.overlay_check.setToolTip("one panel: reference solid, compare layers dashed")
        row.addWidget(self.overlay_check)
        row.addStretch(1)
        self.refresh_button = QPushButton("Refresh")
        row.addWidget(self.refresh_button)
        root.addLayout(row)
        self.figure = Figure(figsize=(5, 3), dpi=100, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        root.addWidget(self.canvas, stretch=3)

        # fidelity table
        self.fidelity_table = QTableWidget(0, len(TABLE_COLUMNS))
        self.fidelity_table.setHorizontalHeaderLabels(TABLE_COLUMNS)
        tips = {
            "Events": "transients detected on the reference's ΔF/F (lightly smoothed); "
                      "▼ on the reference plot",
            "Peak ratio": "median over events of the layer's peak ΔF/F over the reference's "
                          "(each above its own pre-event baseline); below 0.8: flattened",
            "Delay (fr)": "onset delay in frames from the cross-correlation around the events "
                          "(+ = the layer lags); beyond ±1 frame: shifted",
            "⚠": "transient warnings; ✕ on the plot marks flattened events",
        }
        for j, name in enumerate(TABLE_COLUMNS):
            if name in tips:
                self.fidelity_table.horizontalHeaderItem(j).setToolTip(tips[name])
        self.fidelity_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.fidelity_table.verticalHeader().setVisible(False)
        hh = self.fidelity_table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for j in (0, TABLE_COLUMNS.index("Events"), len(TABLE_COLUMNS) - 1):
            hh.setSectionResizeMode(j, QHeaderView.ResizeMode.ResizeToContents)
        self.fidelity_table.setMinimumHeight(80)
        root.addWidget(self.fidelity_table, stretch=1)

        # export
        row = QHBoxLayout()
        self.export_traces_button = QPushButton("Traces CSV…")
        self.export_fidelity_button = QPushButton("Fidelity CSV…")
        self.save_figure_button = QPushButton("Figure PNG/SVG…")
        for b in (self.export_traces_button, self.export_fidelity_button, self.save_figure_button):
            row.addWidget(b)
        root.addLayout(row)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.status_label)

        # signals
        self.reference_combo.currentIndexChanged.connect(self._on_reference_changed)
        self.compare_list.itemChanged.connect(lambda *_: self._lists_edited())
        self.roi_combo.currentIndexChanged.connect(lambda *_: self._on_roi_layer_changed())
        self.add_shapes_button.clicked.connect(self._safe(self.add_roi_layer))
        self.f0_mode_combo.currentIndexChanged.connect(self._update_f0_fields)
        for w in (self.percentile_spin, self.window_spin, self.first_frames_spin,
                  self.f0_value_spin, self.fps_spin, self.offset_spin, self.neuropil_coef_spin,
                  self.neuropil_inner_spin, self.neuropil_outer_spin):
            w.valueChanged.connect(self.schedule_refresh)
        self.window_unit_combo.currentIndexChanged.connect(self.schedule_refresh)
        for w in (self.neuropil_check, self.seconds_check, self.overlay_check):
            w.toggled.connect(self.schedule_refresh)
        self.neuropil_check.toggled.connect(self._update_f0_fields)
        self.refresh_button.clicked.connect(self._safe_refresh)
        self.export_traces_button.clicked.connect(self._safe(self._export_traces_dialog))
        self.export_fidelity_button.clicked.connect(self._safe(self._export_fidelity_dialog))
        self.save_figure_button.clicked.connect(self._safe(self._save_figure_dialog))
        self.canvas.mpl_connect("button_press_event", self._on_click)

    def _update_f0_fields(self, *_: Any) -> None:
        mode = self.f0_mode_combo.currentData()
        self.percentile_spin.setVisible(mode in ("percentile", "sliding"))
        self.window_spin.setVisible(mode == "sliding")
        self.window_unit_combo.setVisible(mode == "sliding")
        self.first_frames_spin.setVisible(mode == "first")
        self.f0_value_spin.setVisible(mode == "fixed")
        on = self.neuropil_check.isChecked()
        self.neuropil_coef_spin.setEnabled(on)
        self.schedule_refresh()

    # ------------------------------------------------------------------ parameters

    def params(self) -> tr.TraceParams:
        """The :class:`~napari_neurorestore.core.traces.TraceParams` the controls describe."""
        fps = float(self.fps_spin.value())
        return tr.TraceParams(
            f0_mode=self.f0_mode_combo.currentData(),
            f0_percentile=float(self.percentile_spin.value()),
            f0_window=float(self.window_spin.value()),
            f0_window_unit=self.window_unit_combo.currentText(),
            f0_first_frames=int(self.first_frames_spin.value()),
            f0_value=float(self.f0_value_spin.value()),
            neuropil=self.neuropil_check.isChecked(),
            neuropil_coef=float(self.neuropil_coef_spin.value()),
            neuropil_inner=float(self.neuropil_inner_spin.value()),
            neuropil_outer=float(self.neuropil_outer_spin.value()),
            offset=float(self.offset_spin.value()),
            fps=fps if fps > 0 else None,
        )

    # ------------------------------------------------------------------ layer lists

    def _layer(self, name: str | None) -> Any:
        if not name:
            return None
        try:
            return self.viewer.layers[name]
        except (KeyError, ValueError):
            return None

    @property
    def reference_layer(self) -> Any:
        return self._layer(self.reference_combo.currentText())

    @property
    def compare_layers(self) -> list[Any]:
        out = []
        for i in range(self.compare_list.count()):
            it = self.compare_list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                lay = self._layer(it.text())
                if lay is not None:
                    out.append(lay)
        return out

    @property
    def roi_layer(self) -> Any:
        return self._layer(self.roi_combo.currentText())

    def set_compare(self, names: list[str]) -> None:
        """Check exactly the compare layers named in ``names``."""
        self._updating_lists = True
        try:
            for i in range(self.compare_list.count()):
                it = self.compare_list.item(i)
                it.setCheckState(Qt.CheckState.Checked if it.text() in names else Qt.CheckState.Unchecked)
        finally:
            self._updating_lists = False
        self.schedule_refresh()

    def _on_layers_changed(self, event: Any = None) -> None:
        try:
            for lay in self.viewer.layers:  # follow renames
                try:
                    lay.events.name.disconnect(self._on_layers_changed)
                except (TypeError, ValueError, RuntimeError):
                    pass
                lay.events.name.connect(self._on_layers_changed)
            self._update_layer_lists()
            self.schedule_refresh()
        except Exception as e:  # never a traceback dialog
            log.exception("traces widget: layer list update failed")
            self._show_status([], f"unexpected error: {e}")

    def _update_layer_lists(self) -> None:
        from napari.layers import Image, Labels, Shapes

        images = [lay for lay in self.viewer.layers if isinstance(lay, Image)]
        rois = [lay for lay in self.viewer.layers if isinstance(lay, (Shapes, Labels))]
        self._updating_lists = True
        try:
            ref = self.reference_combo.currentText()
            self.reference_combo.blockSignals(True)
            self.reference_combo.clear()
            self.reference_combo.addItems([lay.name for lay in images])
            if ref in [lay.name for lay in images]:
                self.reference_combo.setCurrentText(ref)
            elif images:
                # default: a layer that is not a result of another one
                src = [lay for lay in images
                       if "source_layer" not in (lay.metadata or {}).get("neurorestore", {})]
                self.reference_combo.setCurrentText((src or images)[0].name)
            self.reference_combo.blockSignals(False)
            ref = self.reference_combo.currentText()
            checked = {self.compare_list.item(i).text() for i in range(self.compare_list.count())
                       if self.compare_list.item(i).checkState() == Qt.CheckState.Checked}
            known = {self.compare_list.item(i).text() for i in range(self.compare_list.count())}
            self.compare_list.blockSignals(True)
            self.compare_list.clear()
            for lay in images:
                if lay.name == ref:
                    continue
                it = QListWidgetItem(lay.name)
                it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                src = (lay.metadata or {}).get("neurorestore", {}).get("source_layer")
                on = lay.name in checked or (lay.name not in known and src == ref and ref)
                it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                self.compare_list.addItem(it)
            self.compare_list.blockSignals(False)
            roi = self.roi_combo.currentText()
            self.roi_combo.blockSignals(True)
            self.roi_combo.clear()
            self.roi_combo.addItems([lay.name for lay in rois])
            if roi in [lay.name for lay in rois]:
                self.roi_combo.setCurrentText(roi)
            self.roi_combo.blockSignals(False)
        finally:
            self._updating_lists = False
        self._on_roi_layer_changed(refresh=False)
        self._watch_data_layers()

    def _lists_edited(self) -> None:
        if not self._updating_lists:
            self.schedule_refresh()

    def _on_reference_changed(self, *_: Any) -> None:
        if not self._updating_lists:
            self._update_layer_lists()
            self.schedule_refresh()

    def _on_roi_layer_changed(self, refresh: bool = True) -> None:
        lay = self.roi_layer
        if lay is not self._roi_layer:
            self._unwatch("roi")
            self._roi_layer = lay
            if lay is not None:
                for name in ("data", "features", "paint", "labels_update", "scale", "translate"):
                    em = getattr(lay.events, name, None)
                    if em is not None:
                        cb = self._on_roi_event
                        em.connect(cb)
                        self._watched.append(("roi", em, cb))
        if refresh and not self._updating_lists:
            self.schedule_refresh()

    def _watch_data_layers(self) -> None:
        self._unwatch("data")
        for lay in [self.reference_layer, *self.compare_layers]:
            if lay is None:
                continue
            em = lay.events.data
            em.connect(self._on_image_data)
            self._watched.append(("data", em, self._on_image_data))

    def _unwatch(self, kind: str) -> None:
        keep = []
        for k, em, cb in self._watched:
            if k == kind:
                try:
                    em.disconnect(cb)
                except (TypeError, ValueError, RuntimeError):
                    pass
            else:
                keep.append((k, em, cb))
        self._watched = keep

    def _on_image_data(self, event: Any = None) -> None:
        self.cache.clear()  # data may have changed in place
        self.schedule_refresh()

    def _on_roi_event(self, event: Any = None) -> None:
        action = str(getattr(event, "action", "") or "")
        if action.endswith("ing"):  # adding/changing/removing: wait for the end of the edit
            return
        lay = self._roi_layer
        if (getattr(event, "type", "") == "data" and lay is not None
                and ROI_FEATURE in getattr(lay, "features", {})):
            QTimer.singleShot(0, self._safe(lambda: self._number_new_shapes(lay)))
        self.schedule_refresh()

    # ------------------------------------------------------------------ ROI layer helpers

    def add_roi_layer(self) -> Any:
        """Add a Shapes layer for ROIs (in add-ellipse mode) and select it as the ROI source.

        Each new shape gets the next ROI id (feature ``roi``, shown as text) and its colour.
        """
        from .layers import unique_name

        ref = self.reference_layer
        ndim = max(2, ref.ndim - 1) if ref is not None else 2
        kwargs: dict[str, Any] = {}
        if ref is not None:
            kwargs["scale"] = tuple(ref.scale)[-ndim:]
            kwargs["translate"] = tuple(ref.translate)[-ndim:]
        layer = self.viewer.add_shapes(
            None,
            ndim=ndim,
            name=unique_name(self.viewer, "ROIs"),
            edge_width=1.0,
            edge_color=palette_color(1),
            face_color=[0, 0, 0, 0],
            features={ROI_FEATURE: np.zeros(0, np.int64)},
            feature_defaults={ROI_FEATURE: 0},
            text={"string": "{" + ROI_FEATURE + "}", "color": "white", "size": 9,
                  "anchor": "upper_left"},
            **kwargs,
        )
        layer.mode = "add_ellipse"
        self.roi_combo.setCurrentText(layer.name)
        return layer

    def _number_new_shapes(self, layer: Any) -> None:
        """Give shapes without an id (0) the next ids and their palette colours."""
        feats = layer.features
        if ROI_FEATURE not in feats or len(feats) == 0 or len(feats) != len(layer.data):
            return  # empty, or in the middle of an edit
        ids = np.asarray(feats[ROI_FEATURE], dtype=np.int64).copy()
        seen: set[int] = set()
        new = np.zeros(len(ids), bool)
        for i, v in enumerate(ids):  # unnumbered or duplicated (copy-pasted) shapes
            if v <= 0 or v in seen:
                new[i] = True
            else:
                seen.add(int(v))
        if not new.any():
            return
        nxt = max(seen, default=0) + 1
        for i in np.flatnonzero(new):
            ids[i] = nxt
            nxt += 1
        feats = feats.copy()
        feats[ROI_FEATURE] = ids
        layer.features = feats
        layer.current_edge_color = palette_color(nxt)
        ec = np.array(layer.edge_color, dtype=float)
        if len(ec) == len(ids):
            for i in np.flatnonzero(new):
                ec[i] = palette_color(ids[i])
            layer.edge_color = ec
        layer.refresh_text()

    # ------------------------------------------------------------------ frame / time

    def _time_axis(self) -> int | None:
        ref = self.reference_layer
        if ref is None:
            return None
        return self.viewer.dims.ndim - ref.ndim

    def current_frame(self) -> int:
        """The viewer's current frame in the reference layer."""
        ref, ax = self.reference_layer, self._time_axis()
        if ref is None or ax is None or ax < 0:
            return 0
        point = float(self.viewer.dims.point[ax])
        f = int(round((point - float(ref.translate[0])) / float(ref.scale[0])))
        return int(np.clip(f, 0, max(0, _data(ref).shape[0] - 1)))

    def go_to_frame(self, frame: int) -> None:
        """Move the viewer to ``frame`` of the reference layer."""
        ref, ax = self.reference_layer, self._time_axis()
        if ref is None or ax is None or ax < 0:
            return
        frame = int(np.clip(frame, 0, _data(ref).shape[0] - 1))
        self.viewer.dims.set_point(ax, frame * float(ref.scale[0]) + float(ref.translate[0]))

    def _use_seconds(self) -> bool:
        return self.seconds_check.isChecked() and self.fps_spin.value() > 0

    def _frame_to_x(self, frame: float) -> float:
        return frame / self.fps_spin.value() if self._use_seconds() else float(frame)

    def _on_step(self, event: Any = None) -> None:
        try:
            if not self.vlines:
                return
            x = self._frame_to_x(self.current_frame())
            for v in self.vlines:
                v.set_xdata([x, x])
            self.canvas.draw_idle()
        except Exception:  # never a traceback dialog for a cursor line
            log.exception("traces widget: frame line update failed")

    def _on_click(self, event: Any) -> None:
        try:
            if event.inaxes is None or event.xdata is None or event.button != 1:
                return
            if self.canvas.toolbar is not None and getattr(self.canvas.toolbar, "mode", ""):
                return
            x = float(event.xdata)
            frame = x * self.fps_spin.value() if self._use_seconds() else x
            self.go_to_frame(int(round(frame)))
        except Exception:
            log.exception("traces widget: click handling failed")

    # ------------------------------------------------------------------ refresh

    def schedule_refresh(self, *_: Any) -> None:
        """Recompute after ``debounce_ms`` (edits in quick succession coalesce)."""
        self._timer.start(self.debounce_ms)

    def _safe(self, fn):
        def run(*_: Any) -> None:
            try:
                fn()
            except (InputError, ValueError, OSError) as e:
                self._show_status(self.messages, str(e))
            except Exception as e:
                log.exception("traces widget")
                self._show_status(self.messages, f"unexpected error: {type(e).__name__}: {e}")
        return run

    def _safe_refresh(self, *_: Any) -> None:
        self._safe(self.refresh)()

    def refresh(self) -> None:
        """Recompute the traces and redraw. Small jobs run here; large extractions go to a
        worker thread and the redraw follows when it returns."""
        self._timer.stop()
        if self._worker is not None:
            self._pending = True
            return
        try:
            plan = self._plan()
        except (InputError, ValueError) as e:
            self._clear(str(e))
            return
        if plan is None:
            return
        jobs = []
        cost = 0
        for mv, rois, bg in zip(plan.movies, plan.rois, plan.bg, strict=True):
            miss = self.cache.missing(mv, list(rois) + [b for b in bg if b.size])
            if miss:
                jobs.append((mv, miss))
                cost += int(mv.shape[0]) * sum(r.size for r in miss) * (
                    1 if isinstance(mv, np.ndarray) else 8)
        if jobs and not self.sync and cost > self.async_threshold:
            self._start_worker(jobs, plan)
            return
        self._finish(plan)

    def _start_worker(self, jobs: list, plan: _Plan) -> None:
        from napari.qt.threading import create_worker

        from ..core.progress import CancelToken

        token = CancelToken()

        def task():
            return [(mv, miss, tr.extract_traces(mv, miss, cancel=token)) for mv, miss in jobs]

        worker = create_worker(task, _start_thread=False)
        worker.returned.connect(self._on_worker_returned)
        worker.errored.connect(self._on_worker_errored)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self._worker_token = token
        n = sum(len(m) for _, m in jobs)
        self._show_status(plan.messages, None, busy=f"computing {n} trace(s) in the background…")
        worker.start()

    def _on_worker_returned(self, out: list) -> None:
        for mv, miss, F in out:
            self.cache.put(mv, miss, F)

    def _on_worker_errored(self, exc: BaseException) -> None:
        self._pending = False
        self._clear(f"computing the traces failed: {exc}")

    def _on_worker_finished(self) -> None:
        self._worker = None
        self._pending = False
        self._safe_refresh()  # everything needed is cached now (or a newer edit came in)

    @property
    def busy(self) -> bool:
        """True while a worker computes traces."""
        return self._worker is not None

    def _finish(self, plan: _Plan) -> None:
        res = tr.compute_traces(
            plan.movies[0], plan.rois[0], plan.movies[1:], params=plan.params, names=plan.names,
            compare_rois=plan.rois[1:], background_rois=plan.bg, cache=self.cache,
        )
        self.result = res
        self._colors = plan.colors
        self._draw(res)
        self._fill_table(res)
        self._show_status(plan.messages + res.messages + self.transient_warnings(), None)

    def _plan(self) -> _Plan | None:
        """Gather layers, ROIs and parameters; None (with a hint shown) when there is nothing to do."""
        from napari.layers import Labels, Shapes

        messages: list[str] = []
        ref = self.reference_layer
        if ref is None:
            self._clear("Open a movie (an Image layer with a time axis) to choose as reference.")
            return None
        if getattr(ref, "rgb", False):
            raise InputError(f"'{ref.name}' is an RGB image; choose a grayscale movie")
        n_frames, spatial = tr.check_trace_movie(_data(ref), f"'{ref.name}'")
        params = self.params()
        layers = [ref]
        for lay in self.compare_layers:
            if getattr(lay, "rgb", False):
                messages.append(f"'{lay.name}' is an RGB image: left out")
                continue
            try:
                t, _ = tr.check_trace_movie(_data(lay), f"'{lay.name}'")
            except InputError as e:
                messages.append(f"{e}: left out")
                continue
            if t != n_frames:
                messages.append(f"'{lay.name}' has {t} frames but the reference '{ref.name}' has "
                                f"{n_frames}: left out (compare layers must share its time axis)")
                continue
            layers.append(lay)
        src = self.roi_layer
        if src is None:
            self._clear("Choose an ROI layer, or click 'New ROI layer' and draw ellipses on the movie.")
            return None
        all_rois = []
        colors: dict[int, np.ndarray] = {}
        keep = []
        if isinstance(src, Shapes) and ROI_FEATURE in src.features:
            self._number_new_shapes(src)  # shapes added since the last edit event
        for k, lay in enumerate(layers):
            if isinstance(src, Shapes):
                rois, msgs, colors_k = self._rois_from_shapes(src, lay)
            elif isinstance(src, Labels):
                rois, msgs, colors_k = self._rois_from_labels(src, lay)
            else:
                raise InputError(f"'{src.name}' is neither a Shapes nor a Labels layer")
            if k == 0:
                messages += msgs
                colors = colors_k
                if not rois:
                    raise InputError(self._no_roi_message(src, msgs))
                ids = [r.id for r in rois]
            else:
                if [r.id for r in rois] != ids:
                    messages.append(f"'{lay.name}': not every ROI lies inside it: left out")
                    continue
            all_rois.append(rois)
            keep.append(lay)
        layers = keep
        bg = [tr.neuropil_rois(r, params.neuropil_inner, params.neuropil_outer,
                               masks=self.cache.masks) for r in all_rois]
        names = [lay.name for lay in layers]
        return _Plan(names, [_data(lay) for lay in layers], all_rois, bg, colors, params, messages)

    @staticmethod
    def _no_roi_message(src: Any, msgs: list[str]) -> str:
        from napari.layers import Shapes

        if isinstance(src, Shapes):
            if len(src.data) == 0:
                return (f"The Shapes layer '{src.name}' has no shapes yet: draw ellipses, "
                        "rectangles or polygons on the movie.")
            return f"No usable ROI in '{src.name}': " + "; ".join(msgs)
        return f"The Labels layer '{src.name}' has no labels yet: paint one label per ROI."

    def _rois_from_shapes(self, src: Any, lay: Any) -> tuple[list[tr.Roi], list[str], dict]:
        spatial = tuple(_data(lay).shape[1:])
        n_sp = len(spatial)
        n = len(src.data)
        ids = None
        if ROI_FEATURE in src.features and n:
            ids_arr = np.asarray(src.features[ROI_FEATURE], dtype=np.int64)
            if (ids_arr > 0).all() and len(set(ids_arr.tolist())) == n:
                ids = ids_arr.tolist()
        if ids is None:
            ids = list(range(1, n + 1))
        s_scale, s_trans = np.asarray(src.scale, float), np.asarray(src.translate, float)
        i_scale, i_trans = np.asarray(lay.scale, float), np.asarray(lay.translate, float)
        verts = []
        for v in src.data:
            w = np.asarray(v, float) * s_scale + s_trans  # world coordinates
            k = min(n_sp, w.shape[1])
            verts.append((w[:, -k:] - i_trans[-k:]) / i_scale[-k:])
        plane = None
        if n_sp == 3 and src.ndim < 3:
            plane = self._current_index(lay, -3)
        rois, msgs = tr.rois_from_shapes(verts, list(src.shape_type), spatial, ids=ids,
                                         plane=plane, masks=self.cache.masks)
        colors = {}
        ec = np.asarray(src.edge_color, float) if n else np.zeros((0, 4))
        fc = np.asarray(src.face_color, float) if n else np.zeros((0, 4))
        distinct = len({tuple(np.round(c, 3)) for c in ec}) > 1 or n == 1
        for i, rid in enumerate(ids):
            c = ec[i] if ec[i][3] > 0 else fc[i]
            colors[rid] = c if (distinct and c[3] > 0) else palette_color(rid)
        return rois, msgs, colors

    def _rois_from_labels(self, src: Any, lay: Any) -> tuple[list[tr.Roi], list[str], dict]:
        spatial = tuple(_data(lay).shape[1:])
        lab = src.data
        msgs: list[str] = []
        plane = None
        if tuple(lab.shape) == spatial:
            pass
        elif lab.ndim == lay.ndim and tuple(lab.shape[1:]) == spatial:
            lab = lab[self.current_frame()]  # a time series of labels: the current frame's
            msgs.append(f"'{src.name}' has a time axis: its labels at frame "
                        f"{self.current_frame()} are used")
        elif lab.ndim == 2 and len(spatial) == 3 and tuple(lab.shape) == spatial[1:]:
            plane = self._current_index(lay, -3)
        else:
            raise InputError(
                f"the Labels layer '{src.name}' has shape {tuple(lab.shape)} but the frames of "
                f"'{lay.name}' are {spatial}"
            )
        rois = tr.rois_from_labels(np.asarray(lab), spatial, plane=plane)
        colors = {}
        for r in rois:
            try:
                colors[r.id] = np.asarray(src.get_color(r.id), float)
            except Exception:
                colors[r.id] = palette_color(r.id)
        return rois, msgs, colors

    def _current_index(self, lay: Any, axis: int) -> int:
        """The viewer's current index along ``lay``'s ``axis`` (negative: from the end)."""
        ax_layer = lay.ndim + axis
        ax = self.viewer.dims.ndim - lay.ndim + ax_layer
        point = float(self.viewer.dims.point[ax])
        i = int(round((point - float(lay.translate[ax_layer])) / float(lay.scale[ax_layer])))
        return int(np.clip(i, 0, _data(lay).shape[ax_layer] - 1))

    # ------------------------------------------------------------------ drawing

    def _theme(self) -> dict[str, str]:
        try:
            from napari.utils.theme import get_theme

            th = get_theme(self.viewer.theme)

            def hx(c: Any) -> str:
                return c.as_hex(format="long") if hasattr(c, "as_hex") else str(c)

            return {"bg": hx(th.background), "canvas": hx(th.canvas), "text": hx(th.text),
                    "current": hx(th.current), "grid": hx(th.highlight)}
        except Exception:
            return {"bg": "#262930", "canvas": "#000000", "text": "#f0f1f2",
                    "current": "#007acc", "grid": "#61696e"}

    def _apply_theme(self) -> None:
        t = self._theme()
        self.figure.patch.set_facecolor(t["bg"])
        for ax in self.figure.axes:
            ax.set_facecolor(t["canvas"])
            for s in ax.spines.values():
                s.set_color(t["text"])
            ax.tick_params(colors=t["text"], labelsize=8)
            ax.xaxis.label.set_color(t["text"])
            ax.yaxis.label.set_color(t["text"])
            ax.title.set_color(t["text"])
            leg = ax.get_legend()
            if leg is not None:
                leg.get_frame().set_facecolor(t["canvas"])
                leg.get_frame().set_edgecolor(t["grid"])
                for txt in leg.get_texts():
                    txt.set_color(t["text"])
        for v in self.vlines:
            v.set_color(t["current"])
        self.canvas.draw_idle()

    def _on_theme(self, event: Any = None) -> None:
        try:
            self._apply_theme()
        except Exception:
            log.exception("traces widget: theme update failed")

    def _draw(self, res: tr.TraceResult) -> None:
        self.figure.clear()
        self.lines, self.vlines = {}, []
        self.event_markers, self.flag_markers = {}, {}
        x = res.frames / self.fps_spin.value() if self._use_seconds() else res.frames.astype(float)
        n = len(res.layers)
        if self.overlay_check.isChecked() or n == 1:
            axes = [self.figure.add_subplot(1, 1, 1)] * n
        else:
            first = self.figure.add_subplot(1, n, 1)
            axes = [first] + [self.figure.add_subplot(1, n, k + 1, sharey=first, sharex=first)
                              for k in range(1, n)]
        styles = ["-", "--", ":", "-."]
        overlay = len(set(map(id, axes))) == 1 and n > 1
        for k, (lt, ax) in enumerate(zip(res.layers, axes, strict=True)):
            for i, rid in enumerate(res.roi_ids):
                c = self._colors.get(rid, palette_color(rid))
                (line,) = ax.plot(x, lt.dff[i], color=c[:3], lw=1.0,
                                  ls=styles[k % len(styles)] if overlay else "-",
                                  label=f"ROI {rid}" if (k == 0 or not overlay) else None)
                self.lines[(lt.name, rid)] = line
            if not overlay:
                ax.set_title(lt.name, fontsize=9)
        self._draw_events(res, axes, x)
        uniq = list(dict.fromkeys(axes))
        if overlay:
            uniq[0].set_title("  ".join(f"{lt.name} ({styles[k % 4]})"
                                        for k, lt in enumerate(res.layers)), fontsize=9)
        xf = self._frame_to_x(self.current_frame())
        for j, ax in enumerate(uniq):
            ax.set_xlabel("time (s)" if self._use_seconds() else "frame", fontsize=8)
            if j == 0:
                ax.set_ylabel("ΔF/F", fontsize=8)
            else:
                ax.tick_params(labelleft=False)
            ax.margins(x=0)
            self.vlines.append(ax.axvline(xf, lw=1.0, alpha=0.9))
        if len(res.roi_ids) <= 10:
            uniq[0].legend(fontsize=7, loc="upper right", framealpha=0.6, handlelength=1.2)
        self.axes = uniq
        self._apply_theme()

    def _draw_events(self, res: tr.TraceResult, axes: list[Any], x: np.ndarray) -> None:
        """Small markers: ▼ at the reference's detected events (ROI colour), ✕ at the events
        a compare layer flattened (red, on that layer's trace)."""
        for r in res.fidelity():
            k = next(j for j, lt in enumerate(res.layers) if lt.name == r["layer"])
            lt, ax = res.layers[k], axes[k]
            i = res.roi_ids.index(r["roi"])
            if lt.role == "reference":
                ev = np.asarray(r["events"], np.int64)
                if ev.size:
                    c = self._colors.get(r["roi"], palette_color(r["roi"]))
                    (m,) = ax.plot(x[ev], lt.dff[i][ev], ls="none", marker="v", ms=6,
                                   color=c[:3], mec=self._theme()["text"], mew=0.6,
                                   zorder=3, label="_nolegend_")
                    self.event_markers[(lt.name, r["roi"])] = m
            else:
                ev = np.asarray(r.get("flagged_events", []), np.int64)
                if ev.size:
                    (m,) = ax.plot(x[ev], lt.dff[i][ev], ls="none", marker="x", ms=6, mew=1.5,
                                   color=WARN_COLOR, zorder=4, label="_nolegend_")
                    self.flag_markers[(lt.name, r["roi"])] = m

    def _fill_table(self, res: tr.TraceResult) -> None:
        rows = res.fidelity()
        tab = self.fidelity_table
        tab.setRowCount(len(rows))
        warn = QColor(WARN_COLOR)
        for i, r in enumerate(rows):
            flags = list(r.get("flags") or [])
            vals = [str(r["roi"]), r["layer"], _num(r["snr_db"], 2), _num(r["pearson_r"], 4),
                    _num(r["nrmse"], 4), str(r.get("n_events", "")),
                    _num(r.get("peak_ratio"), 2), _num(r.get("onset_delay"), 2),
                    ("⚠ " + ", ".join(FLAG_TEXT.get(f, f) for f in flags)) if flags else ""]
            red = {8} if flags else set()
            if "flattened" in flags:
                red.add(6)
            if "shifted" in flags:
                red.add(7)
            for j, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if j not in (1, 8):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if j == 0:
                    c = self._colors.get(r["roi"], palette_color(r["roi"]))
                    item.setBackground(QColor.fromRgbF(float(c[0]), float(c[1]), float(c[2]), 0.6))
                if j in red:
                    item.setForeground(warn)
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                    item.setToolTip(self._flag_tip(r))
                tab.setItem(i, j, item)

    @staticmethod
    def _flag_tip(r: dict) -> str:
        parts = []
        if "flattened" in (r.get("flags") or []):
            parts.append(f"peaks at {r['peak_ratio']:.0%} of the reference's (median over "
                         f"{r['n_events']} event{'s' if r['n_events'] != 1 else ''}): the restoration flattens transients")
        if "shifted" in (r.get("flags") or []):
            parts.append(f"transients {abs(r['onset_delay']):.1f} frames "
                         f"{'later' if r['onset_delay'] > 0 else 'earlier'} than the reference's")
        return "\n".join(parts)

    def transient_warnings(self) -> list[str]:
        """One line per flagged (ROI, compare layer) of the current result."""
        if self.result is None:
            return []
        out = []
        for r in self.result.fidelity():
            if r.get("flags"):
                out.append(f"⚠ ROI {r['roi']} '{r['layer']}': " + "; ".join(
                    self._flag_tip(r).split("\n")))
        return out

    def _clear(self, message: str) -> None:
        self.result = None
        self.figure.clear()
        self.lines, self.vlines, self.axes = {}, [], []
        self.event_markers, self.flag_markers = {}, {}
        self.fidelity_table.setRowCount(0)
        self._apply_theme()
        self._show_status([], message)

    def _show_status(self, notes: list[str], error: str | None, busy: str | None = None) -> None:
        self.messages = list(notes)
        self.error = error
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
        self.figure.savefig(path, dpi=dpi, facecolor=self.figure.get_facecolor())

    def _need_result(self) -> tr.TraceResult:
        if self.result is None:
            raise InputError("nothing to export yet: choose a movie and ROIs first")
        return self.result

    def _ask_path(self, title: str, filt: str, default: str) -> str | None:
        self._need_result()
        path, _ = QFileDialog.getSaveFileName(self, title, default, filt)
        return path or None

    def _export_traces_dialog(self) -> None:
        p = self._ask_path("Save traces", "CSV (*.csv)", "traces.csv")
        if p:
            self.export_traces_csv(p)
            self._show_status([f"traces written to {p}"], None)

    def _export_fidelity_dialog(self) -> None:
        p = self._ask_path("Save fidelity table", "CSV (*.csv)", "fidelity.csv")
        if p:
            self.export_fidelity_csv(p)
            self._show_status([f"fidelity table written to {p}"], None)

    def _save_figure_dialog(self) -> None:
        p = self._ask_path("Save figure", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)", "traces.png")
        if p:
            self.save_figure(p)
            self._show_status([f"figure written to {p}"], None)

    # ------------------------------------------------------------------ teardown

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt)
        self.disconnect_viewer()
        super().closeEvent(event)

    def disconnect_viewer(self) -> None:
        """Stop listening to the viewer (and stop a running worker)."""
        self._timer.stop()
        if self._worker is not None:
            self._worker_token.cancel()
            self._worker.quit()
        self._unwatch("roi")
        self._unwatch("data")
        for em, cb in ((self.viewer.dims.events.current_step, self._on_step),
                       (self.viewer.events.theme, self._on_theme)):
            try:
                em.disconnect(cb)
            except (TypeError, ValueError, RuntimeError):
                pass
        for name in ("inserted", "removed", "moved", "reordered"):
            em = getattr(self.viewer.layers.events, name, None)
            if em is not None:
                try:
                    em.disconnect(self._on_layers_changed)
                except (TypeError, ValueError, RuntimeError):
                    pass


def _dspin(lo: float, hi: float, value: float, decimals: int, step: float,
           suffix: str = "") -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    s.setKeyboardTracking(False)
    return s


def _data(layer: Any) -> Any:
    """An Image layer's array (the full-resolution level of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def _num(v: Any, digits: int) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    return "–" if not np.isfinite(v) else f"{v:.{digits}f}"


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
