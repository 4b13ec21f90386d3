"""The plot of the ROI traces dock: a matplotlib canvas themed like napari, one panel per
layer (or all overlaid), with the reference's events (▼), the flattened events (✕) and a
line at the viewer's current frame."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from qtpy.QtCore import QSize
from qtpy.QtWidgets import QSizePolicy

from ..core import traces as tr
from .traces_rois import palette_color
from .traces_table import WARN_COLOR

log = logging.getLogger(__name__)
#: the theme used when napari's cannot be read
FALLBACK_THEME = {"bg": "#262930", "canvas": "#000000", "text": "#f0f1f2",
                  "current": "#007acc", "grid": "#61696e"}
STYLES = ["-", "--", ":", "-."]
#: the plot's least height and its preferred size (pixels); it grows with the dock
MIN_PLOT_HEIGHT = 220
PLOT_SIZE = (400, 240)


class TracePlot:
    """The figure and canvas, and what is drawn on them: ``lines[(layer, roi)]``, ``axes``,
    ``vlines`` (the current-frame lines), ``event_markers`` (per (reference, roi)) and
    ``flag_markers`` (flattened events, per (compare layer, roi))."""

    def __init__(self, viewer: Any) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.viewer = viewer
        class PlotCanvas(FigureCanvasQTAgg):
            """The canvas, with fixed size hints (matplotlib's is the figure's current
            size, which would keep a dock's scroll area as tall as the plot ever was)."""

            def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
                return QSize(*PLOT_SIZE)

            def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
                return QSize(160, MIN_PLOT_HEIGHT)

        self.figure = Figure(figsize=(5, 3), dpi=100, layout="constrained")
        self.canvas = PlotCanvas(self.figure)
        self.canvas.setMinimumHeight(MIN_PLOT_HEIGHT)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._reset()

    def _reset(self) -> None:
        self.lines: dict[tuple[str, int], Any] = {}
        self.vlines: list[Any] = []
        self.axes: list[Any] = []
        self.event_markers: dict[tuple[str, int], Any] = {}
        self.flag_markers: dict[tuple[str, int], Any] = {}

    # ------------------------------------------------------------------ theme
    def theme(self) -> dict[str, str]:
        try:
            from napari.utils.theme import get_theme

            th = get_theme(self.viewer.theme)

            def hx(c: Any) -> str:
                return c.as_hex(format="long") if hasattr(c, "as_hex") else str(c)

            return {"bg": hx(th.background), "canvas": hx(th.canvas), "text": hx(th.text),
                    "current": hx(th.current), "grid": hx(th.highlight)}
        except Exception:
            return dict(FALLBACK_THEME)

    def apply_theme(self) -> None:
        t = self.theme()
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

    # ------------------------------------------------------------------ drawing
    def clear(self) -> None:
        self.figure.clear()
        self._reset()
        self.apply_theme()

    def draw(self, res: tr.TraceResult, x: np.ndarray, colors: dict, overlay: bool,
             xlabel: str, cursor: float) -> None:
        """Plot ``res`` against ``x`` (one value per frame); ``overlay``: one panel;
        ``cursor``: where the current-frame line goes."""
        self.figure.clear()
        self._reset()
        n = len(res.layers)
        if overlay or n == 1:
            axes = [self.figure.add_subplot(1, 1, 1)] * n
        else:
            first = self.figure.add_subplot(1, n, 1)
            axes = [first] + [self.figure.add_subplot(1, n, k + 1, sharey=first, sharex=first)
                              for k in range(1, n)]
        overlay = len(set(map(id, axes))) == 1 and n > 1
        for k, (lt, ax) in enumerate(zip(res.layers, axes, strict=True)):
            for i, rid in enumerate(res.roi_ids):
                c = colors.get(rid, palette_color(rid))
                (line,) = ax.plot(x, lt.dff[i], color=c[:3], lw=1.0,
                                  ls=STYLES[k % len(STYLES)] if overlay else "-",
                                  label=f"ROI {rid}" if (k == 0 or not overlay) else None)
                self.lines[(lt.name, rid)] = line
            if not overlay:
                ax.set_title(self._fit(lt.name, n), fontsize=9)
        self._draw_events(res, axes, x, colors)
        uniq = list(dict.fromkeys(axes))
        if overlay:
            uniq[0].set_title("  ".join(f"{self._fit(lt.name, n)} ({STYLES[k % 4]})"
                                        for k, lt in enumerate(res.layers)), fontsize=9)
        for j, ax in enumerate(uniq):
            ax.set_xlabel(xlabel, fontsize=8)
            if j == 0:
                ax.set_ylabel("ΔF/F", fontsize=8)
            else:
                ax.tick_params(labelleft=False)
            ax.margins(x=0)
            self.vlines.append(ax.axvline(cursor, lw=1.0, alpha=0.9))
        if len(res.roi_ids) <= 10:
            uniq[0].legend(fontsize=7, loc="upper right", framealpha=0.6, handlelength=1.2)
        self.axes = uniq
        self.apply_theme()

    def _fit(self, name: str, n_panels: int) -> str:
        """``name`` elided in the middle to fit one of ``n_panels`` titles side by side
        ("calcium m…[denoised]"; the whole names are in the fidelity table's tooltips)."""
        width = (self.canvas.width() - 70) / n_panels  # less the y axis: about one panel
        return elide_middle(name, max(8, int(width / 8)))

    def _draw_events(self, res: tr.TraceResult, axes: list[Any], x: np.ndarray,
                     colors: dict) -> None:
        """Small markers: ▼ at the reference's detected events (ROI colour), ✕ at the events
        a compare layer flattened (red, on that layer's trace)."""
        for r in res.fidelity():
            k = next(j for j, lt in enumerate(res.layers) if lt.name == r["layer"])
            lt, ax = res.layers[k], axes[k]
            i = res.roi_ids.index(r["roi"])
            if lt.role == "reference":
                ev = np.asarray(r["events"], np.int64)
                if ev.size:
                    c = colors.get(r["roi"], palette_color(r["roi"]))
                    (m,) = ax.plot(x[ev], lt.dff[i][ev], ls="none", marker="v", ms=6,
                                   color=c[:3], mec=self.theme()["text"], mew=0.6,
                                   zorder=3, label="_nolegend_")
                    self.event_markers[(lt.name, r["roi"])] = m
            else:
                ev = np.asarray(r.get("flagged_events", []), np.int64)
                if ev.size:
                    (m,) = ax.plot(x[ev], lt.dff[i][ev], ls="none", marker="x", ms=6, mew=1.5,
                                   color=WARN_COLOR, zorder=4, label="_nolegend_")
                    self.flag_markers[(lt.name, r["roi"])] = m

    def move_cursor(self, x: float) -> None:
        """Move the current-frame lines to ``x``."""
        if not self.vlines:
            return
        for v in self.vlines:
            v.set_xdata([x, x])
        self.canvas.draw_idle()

    def save(self, path: Any, dpi: int = 150) -> None:
        self.figure.savefig(path, dpi=dpi, facecolor=self.figure.get_facecolor())


def elide_middle(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters with "…" in the middle (its end is kept: a layer's
    suffix such as "[denoised]" tells the layers apart)."""
    if len(text) <= n:
        return text
    tail = (n - 1) // 2 + 1
    return text[: n - 1 - tail] + "…" + text[-tail:]
