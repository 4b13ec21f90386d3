"""The layout pieces of the docks: a scroll area that keeps a dock's minimum size small,
a collapsible section, a table that shows a few whole rows with short headers, and the
tabbing of this plugin's docks on one side of napari's window (see :mod:`.base`).

Importing this module imports neither torch nor napari.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qtpy.QtCore import QEvent, QSize, Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFrame,
    QHeaderView,
    QMainWindow,
    QScrollArea,
    QTableWidget,
    QWidget,
)
from superqt import QCollapsible

#: the least height of a dock's scroll area (what a dock asks of napari's window)
MIN_DOCK_HEIGHT = 120


class DockScrollArea(QScrollArea):
    """The scroll area of a dock: its minimum width is its content's (no horizontal
    scrolling), its minimum height :data:`MIN_DOCK_HEIGHT`, so a dock never forces napari's
    window taller than the screen. The content fills the dock and scrolls when the dock is
    shorter than the content's preferred height (a scroll area never shrinks content below
    it), so no row is ever squashed: stretchy parts (a plot, a table) prefer small sizes."""

    def __init__(self, body: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setWidget(body)
        body.installEventFilter(self)

    def _extra_width(self) -> int:
        return self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        body = self.widget()
        width = body.minimumSizeHint().width() if body is not None else 0
        return QSize(width + self._extra_width(), MIN_DOCK_HEIGHT)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        body = self.widget()
        hint = body.sizeHint() if body is not None else QSize(0, 0)
        return QSize(hint.width() + self._extra_width(), max(hint.height(), MIN_DOCK_HEIGHT))

    def eventFilter(self, obj: Any, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the content's minimum width changed: so does ours
        return super().eventFilter(obj, event)


class Section(QCollapsible):
    """A collapsible section ("Advanced", "Live…"), collapsed when made and without
    animation. Its content is hidden while collapsed (a bare QCollapsible only squeezes it
    to 0 pixels, its rows squashed below their size)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setDuration(0)
        self.content().setVisible(False)
        self.toggled.connect(self.content().setVisible)


class _Header(QHeaderView):
    """A horizontal header whose minimum height is its height (Qt gives every header the
    69-pixel minimum of a scroll area, which it is always drawn below)."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(super().minimumSizeHint().width(), self.sizeHint().height())


class RowsTable(QTableWidget):
    """A read-only table whose minimum height shows its header and ``min_rows`` whole rows
    (and room for a horizontal scroll bar), with compact rows. ``headers``: the column
    titles, or (short title, tooltip) pairs: a short title keeps the column narrow, the
    tooltip says the whole."""

    def __init__(self, headers: Iterable[str | tuple[str, str]], min_rows: int = 3,
                 parent: QWidget | None = None) -> None:
        headers = [(h, "") if isinstance(h, str) else tuple(h) for h in headers]
        super().__init__(0, len(headers), parent)
        self.min_rows = min_rows
        header = _Header(Qt.Orientation.Horizontal, self)
        header.setHighlightSections(False)
        self.setHorizontalHeader(header)
        self.setHorizontalHeaderLabels([h for h, _ in headers])
        for j, (_, tip) in enumerate(headers):
            if tip:
                self.horizontalHeaderItem(j).setToolTip(tip)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self._fit_rows()

    def _fit_rows(self) -> None:
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.updateGeometry()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_rows()  # napari's stylesheet sets the font once the table is shown
        super().changeEvent(event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        header = self.horizontalHeader()
        bar = self.horizontalScrollBar()
        height = (header.sizeHint().height() if header.isVisibleTo(self) else 0) \
            + self.min_rows * self.verticalHeader().defaultSectionSize() \
            + max(bar.sizeHint().height(), bar.minimumHeight()) + 2 * self.frameWidth() + 2
        return QSize(super().minimumSizeHint().width(), height)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        # its least height: in a dock's scroll area, a table grows with the room left
        return QSize(super().sizeHint().width(), self.minimumSizeHint().height())


def tab_with_siblings(closed: Callable[[], bool], dock: QDockWidget, kind: type) -> None:
    """Tab ``dock`` with another dock of this plugin on the same side of the main window
    (three stacked docks cannot all show their content on a laptop screen; tabs give each
    the whole height) and raise it. Nothing is done when the dock is floating, already
    tabbed, or alone on its side. ``kind``: the class of this plugin's dock widgets;
    ``closed()``: whether the dock's widget was destroyed meanwhile."""
    try:
        if closed() or dock.isFloating() or not isinstance(dock.widget(), kind):
            return
        win = dock.parentWidget()
        if not isinstance(win, QMainWindow) or win.tabifiedDockWidgets(dock):
            return
        area = win.dockWidgetArea(dock)
        for other in win.findChildren(QDockWidget):
            if (other is not dock and not other.isFloating() and not other.isHidden()
                    and win.dockWidgetArea(other) == area
                    and isinstance(other.widget(), kind)):
                win.tabifyDockWidget(other, dock)
                dock.show()
                dock.raise_()
                return
    except RuntimeError:  # the dock or the window was deleted meanwhile
        pass
