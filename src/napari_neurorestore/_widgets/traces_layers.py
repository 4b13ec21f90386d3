"""The layer pickers of the ROI traces dock (a mixin of :class:`.traces.TracesWidget`):
the reference, compare and ROI layers, and the layer events that trigger a recompute
(ROI edits, image data changes)."""

from __future__ import annotations

import logging
import time
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QListWidgetItem

from . import traces_rois as rois_mod
from .base import disconnect_quietly, fill_combo
from .traces_rois import ROI_FEATURE

log = logging.getLogger(__name__)


class TraceLayers:
    """Layer lists of a traces dock (``reference_combo``, ``compare_list``, ``roi_combo``)."""

    # ------------------------------------------------------------------ layer lists
    @property
    def reference_layer(self) -> Any:
        return self.layer_named(self.reference_combo.currentText())

    @property
    def compare_layers(self) -> list[Any]:
        out = []
        for i in range(self.compare_list.count()):
            it = self.compare_list.item(i)
            if it.checkState() == Qt.CheckState.Checked:
                lay = self.layer_named(it.text())
                if lay is not None:
                    out.append(lay)
        return out

    @property
    def roi_layer(self) -> Any:
        return self.layer_named(self.roi_combo.currentText())

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

    def on_layers_changed(self) -> None:
        try:
            self._update_layer_lists()
            self.schedule_refresh()
        except Exception as e:  # never a traceback dialog
            log.exception("traces widget: layer list update failed")
            self._show_status([], f"unexpected error: {e}")

    def _update_layer_lists(self) -> None:
        images = self.layers_for("reference")
        self._updating_lists = True
        try:
            if not fill_combo(self.reference_combo, [lay.name for lay in images]) and images:
                # default: a layer that is not a result of another one
                src = [lay for lay in images
                       if "source_layer" not in (lay.metadata or {}).get("neurorestore", {})]
                self.reference_combo.blockSignals(True)
                self.reference_combo.setCurrentText((src or images)[0].name)
                self.reference_combo.blockSignals(False)
            ref = self.reference_combo.currentText()
            items = [self.compare_list.item(i) for i in range(self.compare_list.count())]
            checked = {it.text() for it in items if it.checkState() == Qt.CheckState.Checked}
            known = {it.text() for it in items}
            self.compare_list.blockSignals(True)
            self.compare_list.clear()
            for lay in self.layers_for("compare"):
                if lay.name == ref:
                    continue
                it = QListWidgetItem(lay.name)
                it.setFlags(it.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                src = (lay.metadata or {}).get("neurorestore", {}).get("source_layer")
                on = lay.name in checked or (lay.name not in known and src == ref and ref)
                it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                self.compare_list.addItem(it)
            self.compare_list.blockSignals(False)
            fill_combo(self.roi_combo, [lay.name for lay in self.layers_for("rois")])
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
                    self._watch("roi", getattr(lay.events, name, None), self._on_roi_event)
        if refresh and not self._updating_lists:
            self.schedule_refresh()

    def _watch_data_layers(self) -> None:
        self._unwatch("data")
        for lay in [self.reference_layer, *self.compare_layers]:
            if lay is not None:
                self._watch("data", lay.events.data, self._on_image_data)

    def _watch(self, kind: str, emitter: Any, cb: Any) -> None:
        if emitter is not None:
            emitter.connect(cb)
            self._watched.append((kind, emitter, cb))

    def _unwatch(self, kind: str) -> None:
        keep = []
        for k, em, cb in self._watched:
            if k == kind:
                disconnect_quietly(em, cb)
            else:
                keep.append((k, em, cb))
        self._watched = keep

    def _on_image_data(self, event: Any = None) -> None:
        """A shown layer's data changed (in place, or a live layer that grew): recompute, at
        most once per ``follow_seconds`` (a refresh already due is not postponed, so a layer
        that changes faster than the debounce still gets its traces)."""
        self.cache.clear()  # data may have changed in place
        if self._timer.isActive():
            return
        wait = self.follow_seconds - (time.monotonic() - self._last_refresh)
        self._timer.start(max(self.debounce_ms, int(1000 * wait)))

    def _on_roi_event(self, event: Any = None) -> None:
        action = str(getattr(event, "action", "") or "")
        if action.endswith("ing"):  # adding/changing/removing: wait for the end of the edit
            return
        lay = self._roi_layer
        if (getattr(event, "type", "") == "data" and lay is not None
                and ROI_FEATURE in getattr(lay, "features", {})):
            QTimer.singleShot(0, self._safe(lambda: rois_mod.number_new_shapes(lay)))
        self.schedule_refresh()

    def add_roi_layer(self) -> Any:
        """Add a Shapes layer for ROIs (in add-ellipse mode) and select it as the ROI source.

        Each new shape gets the next ROI id (feature ``roi``, shown as text) and its colour.
        """
        layer = rois_mod.add_roi_layer(self.viewer, self.reference_layer)
        self.roi_combo.setCurrentText(layer.name)
        return layer
