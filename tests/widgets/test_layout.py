"""The three docks fit together on a 1280x800 window (issue 25, item 1).

The docks are opened as a user opens them, through the plugin's manifest (Plugins menu),
with a raw movie, a restored one and three ROIs loaded, and each dock is raised in turn.
Nothing here reads the docks' attributes: the plot and the tables are found by their type.

Asserted, for each raised dock:

* the window is not forced taller than the screen (its height and its minimum height <= 800);
* every visible widget is on the screen, or inside a scroll area whose viewport is;
* no visible widget is squashed below its own ``minimumSizeHint().height()``, and no two
  widgets of one layout overlap (a squashed layout draws a table under the buttons below);
* the image canvas keeps at least 400 x 300 pixels;
* the traces plot is at least 220 pixels tall and on screen (not scrolled away);
* the fidelity table shows at least 3 whole rows, and no header text is cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import (
    QAbstractScrollArea,
    QDockWidget,
    QHeaderView,
    QScrollArea,
    QScrollBar,
    QTableWidget,
    QWidget,
)

pytestmark = pytest.mark.gui

PLUGIN = "napari-neurorestore"
DOCKS = ("Restore", "ROI traces", "Trust report")
SCREEN = QRect(0, 0, 1280, 800)
#: widget types whose minimumSizeHint is not a size they need: Qt gives every scroll area
#: (and a header view is one) a 69-pixel hint, whatever its content; scroll bars and the
#: splitter handle are drawn at the style's size
HINT_EXEMPT = (QAbstractScrollArea, QScrollBar)


def _hint_exempt(w: QWidget) -> bool:
    """Qt's own scroll-bar containers of a scroll area (placed at the style's scroll-bar
    width, whatever their hint) and the widgets above."""
    return isinstance(w, HINT_EXEMPT) or w.objectName().startswith("qt_scrollarea_")


def _global(w: QWidget) -> QRect:
    return QRect(w.mapToGlobal(QPoint(0, 0)), w.size())


def _visible(root: QWidget) -> list[QWidget]:
    return [w for w in root.findChildren(QWidget)
            if w.isVisible() and not w.isWindow() and w.width() > 0 and w.height() > 0]


def _scroll_parent(w: QWidget) -> QScrollArea | None:
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QScrollArea) and p.widget() is not None and p.widget().isAncestorOf(w):
            return p
        p = p.parentWidget()
    return None


def _layout_overlaps(root: QWidget) -> list[str]:
    """Pairs of visible widgets placed by the same layout that overlap."""
    out = []
    for parent in [root, *root.findChildren(QWidget)]:
        lay = parent.layout()
        if lay is None or not parent.isVisible():
            continue
        kids = [w for w in parent.findChildren(QWidget, options=_direct())
                if w.isVisible() and not w.isWindow() and _in_layout(lay, w)]
        for i, a in enumerate(kids):
            for b in kids[i + 1:]:
                if a.geometry().intersects(b.geometry()):
                    out.append(f"{_name(a)} overlaps {_name(b)} in {_name(parent)}")
    return out


def _direct():
    from qtpy.QtCore import Qt

    return Qt.FindChildOption.FindDirectChildrenOnly


def _in_layout(lay, w: QWidget) -> bool:
    if lay.indexOf(w) >= 0:
        return True
    for i in range(lay.count()):
        sub = lay.itemAt(i).layout()
        if sub is not None and _in_layout(sub, w):
            return True
    return False


def _name(w: QWidget) -> str:
    text = ""
    for attr in ("text", "currentText", "title"):
        f = getattr(w, attr, None)
        if callable(f):
            try:
                text = str(f())[:30]
            except TypeError:
                continue
            break
    return f"{type(w).__name__}({text!r})"


def _fidelity_table(root: QWidget) -> QTableWidget:
    tables = [t for t in root.findChildren(QTableWidget) if t.isVisible()]
    assert tables, "no table in the traces dock"
    return max(tables, key=lambda t: t.columnCount())


def _whole_rows(table: QTableWidget) -> int:
    """Rows wholly shown: in the table's viewport and, when the table sits in a scroll area,
    in that area's viewport (not scrolled away)."""
    vp = table.viewport()
    clip = _global(vp)
    scroll = _scroll_parent(table)
    if scroll is not None:
        clip = clip.intersected(_global(scroll.viewport()))
    n = 0
    for i in range(table.rowCount()):
        r = table.visualRect(table.model().index(i, 0))
        n += clip.contains(QRect(vp.mapToGlobal(r.topLeft()), r.size()))
    return n


def _cut_headers(table: QTableWidget) -> list[str]:
    hh: QHeaderView = table.horizontalHeader()
    fm = hh.fontMetrics()
    cut = []
    for j in range(table.columnCount()):
        item = table.horizontalHeaderItem(j)
        text = item.text() if item is not None else ""
        if text and hh.sectionSize(j) < fm.horizontalAdvance(text) + 4:
            cut.append(f"{text!r}: {hh.sectionSize(j)} px < {fm.horizontalAdvance(text)} px")
    return cut


def _open_window(make_napari_viewer, qtbot, monkeypatch):
    """A 1280x800 viewer with a raw movie, its restoration, three ROIs and the three docks."""
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    monkeypatch.setenv("NEURORESTORE_SYNC_WORKER", "1")
    viewer = make_napari_viewer(show=True)
    win = viewer.window._qt_window
    win.setGeometry(SCREEN)
    sim = simulate_calcium_movie(n_frames=300, shape=(128, 128), seed=1)
    viewer.add_image(sim.raw, name="calcium movie (noisy)")
    viewer.add_image(sim.clean.astype(np.float32), name="calcium movie (noisy) [denoised]",
                     metadata={"neurorestore": {"source_layer": "calcium movie (noisy)",
                                                "method": "denoise"}})
    centres = [np.argwhere(sim.labels == k).mean(0) for k in (1, 2, 3)]
    viewer.add_shapes([np.array([c, (5.0, 5.0)]) for c in centres], shape_type="ellipse",
                      name="ROIs", face_color="transparent", edge_color="yellow")
    docks = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name)[0] for name in DOCKS}
    qtbot.wait(300)
    return viewer, win, docks


def _check_dock(viewer, win, dock: QDockWidget, name: str) -> list[str]:
    bad = []
    if win.height() > SCREEN.height() or win.minimumSizeHint().height() > SCREEN.height():
        bad.append(f"window forced to {win.height()} px tall (minimum "
                   f"{win.minimumSizeHint().height()} px) on an 800 px screen")
    if not SCREEN.contains(_global(dock)):
        bad.append(f"dock at {_global(dock)} is off the screen")
    content = dock.widget()  # the title bar is napari's
    for w in _visible(content):
        scroll = _scroll_parent(w)
        if scroll is None and not SCREEN.contains(_global(w)):
            bad.append(f"{_name(w)} at {_global(w)}: off the screen, not in a scroll area")
        elif scroll is not None and not SCREEN.contains(_global(scroll.viewport())):
            bad.append(f"{_name(w)}: its scroll area's viewport is off the screen")
        hint = w.minimumSizeHint().height()
        if not _hint_exempt(w) and hint > 0 and w.height() < hint:
            bad.append(f"{_name(w)} squashed: {w.height()} px < its hint {hint} px")
    bad += _layout_overlaps(content)
    canvas = viewer.window._qt_viewer.canvas.native
    if canvas.width() < 400 or canvas.height() < 300:
        bad.append(f"image canvas {canvas.width()}x{canvas.height()} < 400x300")
    return [f"[{name}] {b}" for b in bad]


def test_docks_fit_a_1280x800_window(make_napari_viewer, qtbot, monkeypatch):
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

    viewer, win, docks = _open_window(make_napari_viewer, qtbot, monkeypatch)
    traces = docks["ROI traces"]
    table = _fidelity_table(traces) if traces.isVisible() else None
    if table is None:
        traces.raise_()
        qtbot.wait(50)
        table = _fidelity_table(traces)
    qtbot.waitUntil(lambda: table.rowCount() >= 3, timeout=20_000)
    bad: list[str] = []
    for name, dock in docks.items():
        dock.raise_()
        qtbot.wait(150)
        assert dock.isVisible(), f"{name} is not shown after raise_()"
        bad += _check_dock(viewer, win, dock, name)
        if name == "ROI traces":
            plot = [c for c in dock.findChildren(FigureCanvasQTAgg) if c.isVisible()]
            assert plot, "no visible plot in the traces dock"
            scroll = _scroll_parent(plot[0])
            shown = _global(plot[0]) if scroll is None else \
                _global(plot[0]).intersected(_global(scroll.viewport()))
            if shown.height() < 220:
                bad.append(f"[traces] plot shows {shown.height()} px (canvas "
                           f"{plot[0].height()} px) < 220 px")
            rows = _whole_rows(table)
            if rows < 3:
                bad.append(f"[traces] fidelity table shows {rows} whole rows < 3 "
                           f"(of {table.rowCount()})")
            bad += [f"[traces] header cut: {c}" for c in _cut_headers(table)]
    assert not bad, "\n".join(bad)


def test_open_sections_and_stacked_docks_still_fit(make_napari_viewer, qtbot, monkeypatch):
    """With every collapsible section ("Advanced", "Live…", ΔF/F options) open, and then
    with the docks stacked one above the other instead of tabbed (as a user may drag them),
    the window stays 800 px tall and nothing is squashed: what does not fit scrolls."""
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from qtpy.QtCore import Qt
    from superqt import QCollapsible

    viewer, win, docks = _open_window(make_napari_viewer, qtbot, monkeypatch)
    for dock in docks.values():
        for section in dock.findChildren(QCollapsible):
            section.expand(animate=False)
    bad: list[str] = []
    for name, dock in docks.items():
        dock.raise_()
        qtbot.wait(100)
        bad += _check_dock(viewer, win, dock, f"{name}, sections open")
    area = win.dockWidgetArea(docks["Restore"])
    for dock in docks.values():  # out of the tabs, then one above the other
        win.removeDockWidget(dock)
    for dock in docks.values():
        win.addDockWidget(area, dock, Qt.Orientation.Vertical)
        dock.show()
    qtbot.wait(200)
    assert not win.tabifiedDockWidgets(docks["Restore"])
    for name, dock in docks.items():
        assert dock.isVisible(), f"{name} is not shown when the docks are stacked"
        bad += _check_dock(viewer, win, dock, f"{name}, stacked")
    plot = docks["ROI traces"].findChildren(FigureCanvasQTAgg)[0]
    if plot.height() < 220:
        bad.append(f"[traces, stacked] plot {plot.height()} px < 220 px")
    assert not bad, "\n".join(bad)
