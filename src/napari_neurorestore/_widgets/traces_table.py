"""The fidelity table of the ROI traces dock: one row per (ROI, layer) with SNR, contrast,
Pearson r, NRMSE and the transient checks, flagged rows in red; long layer names are
elided in the middle (the full name in the cell's tooltip)."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from ..core import traces as tr
from .dock_layout import RowsTable
from .traces_rois import palette_color

WARN_COLOR = "#e06c75"
#: the fidelity table's columns
TABLE_COLUMNS = ["ROI", "Layer", "SNR (dB)", "Contrast (dB)", "Pearson r", "NRMSE", "Events",
                 "Peak ratio", "Delay (fr)", "⚠"]
_COL = {name: j for j, name in enumerate(TABLE_COLUMNS)}
#: what the header shows of each column (short, so that ten columns fit a dock: the
#: column's name and what it means are in the header's tooltip)
SHORT_HEADERS = {"SNR (dB)": "SNR", "Contrast (dB)": "Contr.", "Pearson r": "r",
                 "Events": "Ev.", "Peak ratio": "Peak", "Delay (fr)": "Delay"}
#: the widest a column grows to fit its cells (a longer layer name is elided in the middle)
MAX_COLUMN_WIDTH = 160
#: whole rows the table always shows (it grows with the dock)
MIN_ROWS = 3
FLAG_TEXT = {"flattened": "flattened", "shifted": "shifted"}
_TIPS = {
    "SNR (dB)": "SNR of the ROI's ΔF/F trace: 20 log10(ΔF/F peak / baseline noise std); "
                "peak: the 99.5th percentile above the median; noise: the std of "
                "frame-to-frame changes (robust, MAD-based). Rises when noise falls",
    "Contrast (dB)": "10 log10(ROI mean / annulus mean) of the intensities (less the "
                     "offset): how much the ROI stands out from its surround; the same "
                     "for a raw and a denoised movie (not an SNR)",
    "Pearson r": "correlation of the layer's ΔF/F with the reference's",
    "NRMSE": "RMSE of the layer's ΔF/F against the reference's, over the layer's range",
    "Events": "transients detected on the reference's ΔF/F (lightly smoothed); "
              "▼ on the reference plot",
    "Peak ratio": "median over events of the layer's peak ΔF/F over the reference's "
                  "(each above its own pre-event baseline); below 0.8: flattened",
    "Delay (fr)": "onset delay in frames from the cross-correlation around the events "
                  "(+ = the layer lags); beyond ±1 frame: shifted",
    "⚠": "transient warnings; ✕ on the plot marks flattened events",
}


def make_fidelity_table() -> QTableWidget:
    """An empty, read-only table with the :data:`TABLE_COLUMNS` (short titles,
    :data:`SHORT_HEADERS`; the name and its meaning in the tooltip), columns as wide as their
    contents (at most :data:`MAX_COLUMN_WIDTH`), and at least :data:`MIN_ROWS` rows shown."""
    headers = [(SHORT_HEADERS.get(name, name),
                f"{name}: {_TIPS[name]}" if name in _TIPS and SHORT_HEADERS.get(name)
                else _TIPS.get(name, "")) for name in TABLE_COLUMNS]
    table = RowsTable(headers, min_rows=MIN_ROWS)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long layer names: "raw…_v2"
    table.setWordWrap(False)
    hh = table.horizontalHeader()
    hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    hh.setMaximumSectionSize(MAX_COLUMN_WIDTH)
    hh.moveSection(_COL["⚠"], _COL["Layer"] + 1)  # shown by the layer, not scrolled away
    return table


def fill_fidelity_table(table: QTableWidget, res: tr.TraceResult, colors: dict) -> None:
    """One row per :meth:`TraceResult.fidelity` row; ROI cells in the ROI's colour."""
    rows = res.fidelity()
    table.setRowCount(len(rows))
    warn = QColor(WARN_COLOR)
    for i, r in enumerate(rows):
        flags = list(r.get("flags") or [])
        vals = [str(r["roi"]), r["layer"], _num(r["snr_db"], 2), _num(r.get("contrast_db"), 2),
                _num(r["pearson_r"], 4), _num(r["nrmse"], 4), str(r.get("n_events", "")),
                _num(r.get("peak_ratio"), 2), _num(r.get("onset_delay"), 2),
                ("⚠ " + ", ".join(FLAG_TEXT.get(f, f) for f in flags)) if flags else ""]
        last = len(TABLE_COLUMNS) - 1
        red = {last} if flags else set()
        if "flattened" in flags:
            red.add(_COL["Peak ratio"])
        if "shifted" in flags:
            red.add(_COL["Delay (fr)"])
        for j, v in enumerate(vals):
            item = QTableWidgetItem(v)
            if j == 1:
                item.setToolTip(str(v))  # the whole name (the cell elides its middle)
            if j not in (1, last):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if j == 0:
                c = colors.get(r["roi"], palette_color(r["roi"]))
                item.setBackground(QColor.fromRgbF(float(c[0]), float(c[1]), float(c[2]), 0.6))
            if j in red:
                item.setForeground(warn)
                f = item.font()
                f.setBold(True)
                item.setFont(f)
                item.setToolTip(flag_tip(r))
            table.setItem(i, j, item)


def flag_tip(r: dict) -> str:
    """What a fidelity row's flags mean, one line per flag."""
    parts = []
    if "flattened" in (r.get("flags") or []):
        parts.append(f"peaks at {r['peak_ratio']:.0%} of the reference's (median over "
                     f"{r['n_events']} event{'s' if r['n_events'] != 1 else ''}): the restoration flattens transients")
    if "shifted" in (r.get("flags") or []):
        parts.append(f"transients {abs(r['onset_delay']):.1f} frames "
                     f"{'later' if r['onset_delay'] > 0 else 'earlier'} than the reference's")
    return "\n".join(parts)


def transient_warnings(res: tr.TraceResult | None) -> list[str]:
    """One line per flagged (ROI, compare layer) of ``res``."""
    if res is None:
        return []
    return [f"⚠ ROI {r['roi']} '{r['layer']}': " + "; ".join(flag_tip(r).split("\n"))
            for r in res.fidelity() if r.get("flags")]


def _num(v: Any, digits: int) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    return "–" if not np.isfinite(v) else f"{v:.{digits}f}"
