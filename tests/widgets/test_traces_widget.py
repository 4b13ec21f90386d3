"""GUI tests of the ROI traces dock (run under xvfb-run; tiny data)."""

from __future__ import annotations

import csv
import threading
import time

import numpy as np
import pytest

from napari_neurorestore._widgets.traces import TracesWidget
from napari_neurorestore.core import traces as tr
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=40, shape=(48, 48), n_cells=4, seed=2)


def _centre(labels, k):
    ys, xs = np.nonzero(labels == k)
    return float(ys.mean()), float(xs.mean())


@pytest.fixture
def widget(viewer, qtbot):
    w = TracesWidget(viewer)
    viewer.window.add_dock_widget(w, name="ROI traces")
    w.sync = True
    w.debounce_ms = 5
    return w


def _setup(viewer, widget, sim):
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean, name="restored")
    widget.reference_combo.setCurrentText("raw")
    widget.set_compare(["restored"])
    layer = widget.add_roi_layer()
    for k in (1, 2):
        layer.add_ellipses(np.array([_centre(sim.labels, k), (4.0, 4.0)]))
    widget.refresh()
    return layer


def test_widget_defaults_equal_core_defaults(widget):
    assert widget.params() == tr.TraceParams()


def test_two_ellipses_move_export_and_screenshot(viewer, widget, sim, qtbot, tmp_path):
    layer = _setup(viewer, widget, sim)
    assert widget.error is None, widget.status_label.text()
    assert list(layer.features["roi"]) == [1, 2]
    res = widget.result
    assert res.roi_ids == [1, 2] and [lt.name for lt in res.layers] == ["raw", "restored"]
    assert sorted(widget.lines) == [("raw", 1), ("raw", 2), ("restored", 1), ("restored", 2)]
    assert len(widget.axes) == 2  # reference and compare side by side
    traces = set(widget.lines.values())
    assert [sum(ln in traces for ln in ax.lines) for ax in widget.axes] == [2, 2]
    # the ROI colours of the plot are those of the shapes in the viewer
    ec = np.asarray(layer.edge_color)
    np.testing.assert_allclose(widget.lines[("raw", 2)].get_color(), ec[1][:3], atol=1e-6)
    assert not np.allclose(ec[0], ec[1])
    # traces agree with the core on the same masks
    rois, _ = tr.rois_from_shapes(list(layer.data), list(layer.shape_type), sim.raw.shape[1:])
    np.testing.assert_allclose(res.reference.f, tr.extract_traces(sim.raw, rois))
    assert widget.fidelity_table.rowCount() == 4

    before = {k: np.array(v.get_ydata()) for k, v in widget.lines.items()}
    n_extracted = widget.cache.extracted
    data = [d.copy() for d in layer.data]
    data[1] = data[1] + np.array([3.0, -2.0])
    layer.data = data  # move ROI 2 (fires the layer's data event)
    qtbot.waitUntil(lambda: not np.array_equal(widget.lines[("raw", 2)].get_ydata(),
                                               before[("raw", 2)]), timeout=3000)
    after = {k: np.array(v.get_ydata()) for k, v in widget.lines.items()}
    for name in ("raw", "restored"):
        np.testing.assert_array_equal(after[(name, 1)], before[(name, 1)])
        assert not np.allclose(after[(name, 2)], before[(name, 2)])
    # only the moved ROI (and annuli whose pixels changed) were re-extracted, per layer
    assert 2 <= widget.cache.extracted - n_extracted <= 2 * 3

    # deleting ROI 1 keeps ROI 2's id, colour and trace
    layer.selected_data = {0}
    layer.remove_selected()
    qtbot.waitUntil(lambda: widget.result.roi_ids == [2], timeout=3000)
    np.testing.assert_array_equal(widget.lines[("raw", 2)].get_ydata(), after[("raw", 2)])
    layer.add_ellipses(np.array([_centre(sim.labels, 1), (4.0, 4.0)]))
    qtbot.waitUntil(lambda: widget.result.roi_ids == [2, 3], timeout=3000)

    # exports
    widget.export_traces_csv(tmp_path / "traces.csv")
    widget.export_fidelity_csv(tmp_path / "fidelity.csv")
    widget.save_figure(tmp_path / "traces.png")
    widget.save_figure(tmp_path / "traces.svg")
    with open(tmp_path / "traces.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] == "frame" and "restored:roi3:dFF" in rows[0]
    assert len(rows) == sim.raw.shape[0] + 1
    np.asarray(rows[1:], float)
    with open(tmp_path / "fidelity.csv", newline="") as fh:
        fid = list(csv.DictReader(fh))
    assert [(r["roi"], r["layer"]) for r in fid] == [
        ("2", "raw"), ("2", "restored"), ("3", "raw"), ("3", "restored")]
    assert -1.0 <= float(fid[1]["pearson_r"]) <= 1.0 and float(fid[1]["nrmse"]) > 0
    assert (tmp_path / "traces.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "traces.svg").read_bytes()[:2000]
    widget.grab().save(str(tmp_path / "dock.png"))
    assert (tmp_path / "dock.png").stat().st_size > 1000


def test_frame_line_follows_viewer_and_click_moves_viewer(viewer, widget, sim):
    from matplotlib.backend_bases import MouseEvent

    _setup(viewer, widget, sim)
    widget.fps_spin.setValue(10.0)
    widget.refresh()
    viewer.dims.set_point(0, 7)
    assert widget.current_frame() == 7
    for v in widget.vlines:
        assert v.get_xdata()[0] == pytest.approx(0.7)
    ax = widget.axes[1]
    widget.canvas.draw()
    x, y = ax.transData.transform((2.3, 0.0))
    MouseEvent("button_press_event", widget.canvas, x, y, button=1)._process()
    assert widget.current_frame() == 23
    assert viewer.dims.current_step[0] == 23


def test_overlay_and_labels_source(viewer, widget, sim, qtbot):
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean, name="restored")
    lab = viewer.add_labels(sim.labels, name="cells")
    widget.reference_combo.setCurrentText("raw")
    widget.set_compare(["restored"])
    widget.roi_combo.setCurrentText("cells")
    widget.overlay_check.setChecked(True)
    widget.refresh()
    n = int(sim.labels.max())
    assert widget.result.roi_ids == list(range(1, n + 1))
    assert len(widget.axes) == 1 and len(widget.lines) == 2 * n
    np.testing.assert_allclose(widget.lines[("raw", 3)].get_color(),
                               np.asarray(lab.get_color(3))[:3], atol=1e-6)
    ref = tr.compute_traces(sim.raw, sim.labels)
    np.testing.assert_allclose(widget.result.reference.dff, ref.reference.dff)
    relabelled = sim.labels.copy()
    relabelled[relabelled == 3] = 7
    lab.data = relabelled  # relabel: the plot follows
    qtbot.waitUntil(lambda: 7 in widget.result.roi_ids and 3 not in widget.result.roi_ids,
                    timeout=3000)


def test_volume_movie_rois_on_a_plane(viewer, widget, sim):
    vol = np.stack([sim.raw, sim.raw[:, ::-1], sim.raw[:, :, ::-1]], axis=1)  # (t, z, y, x)
    viewer.add_image(vol, name="vol")
    layer = widget.add_roi_layer()
    assert layer.ndim == 3
    cy, cx = _centre(sim.labels, 1)
    corners = [[2.0, cy + dy, cx + dx] for dy, dx in ((-4, -4), (-4, 4), (4, 4), (4, -4))]
    layer.add_ellipses(np.array(corners))  # on plane 2
    widget.refresh()
    assert widget.error is None, widget.status_label.text()
    rois, _ = tr.rois_from_shapes([layer.data[0]], ["ellipse"], vol.shape[1:])
    np.testing.assert_allclose(widget.result.reference.f[0], tr.extract_traces(vol, rois)[0])
    np.testing.assert_allclose(widget.result.reference.f[0],
                               tr.extract_traces(sim.raw[:, :, ::-1], [tr.Roi(1, rois[0].index % (48 * 48), (48, 48))])[0])


def test_bad_inputs_show_messages_not_tracebacks(viewer, widget, sim):
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean[:20], name="short")
    widget.reference_combo.setCurrentText("raw")
    layer = widget.add_roi_layer()
    widget.refresh()  # empty Shapes layer
    assert "has no shapes yet" in widget.error
    assert widget.result is None
    layer.add_ellipses(np.array([_centre(sim.labels, 1), (4.0, 4.0)]))
    layer.add_rectangles(np.array([[100.0, 100.0], [110.0, 120.0]]))  # outside the image
    widget.set_compare(["short"])
    widget.refresh()
    text = widget.status_label.text()
    assert widget.error is None
    assert "lies outside the image" in text
    assert "has 20 frames but the reference" in text
    assert widget.result.roi_ids == [1] and len(widget.result.layers) == 1
    viewer.add_image(sim.raw[0], name="single")
    widget.reference_combo.setCurrentText("single")
    widget.refresh()
    assert "single frame" in widget.error
    assert widget.result is None and widget.fidelity_table.rowCount() == 0
    widget.reference_combo.setCurrentText("raw")
    widget.f0_mode_combo.setCurrentIndex(tr.F0_MODES.index("sliding"))  # seconds without fps
    widget.refresh()
    assert "frame rate" in widget.error
    with pytest.raises(ValueError, match="nothing to export"):
        widget.export_traces_csv("unused.csv")
    widget.save_figure_button.click()  # handled: a message, no dialog, no traceback
    assert "nothing to export" in widget.error


def test_an_incomplete_result_is_named_in_the_status(viewer, widget, sim):
    _setup(viewer, widget, sim)
    assert "incomplete" not in widget.status_label.text()
    partial = sim.clean.copy()
    partial[30:] = np.nan  # an interrupted run: the frames never restored read as NaN
    viewer.add_image(partial, name="partial",
                     metadata={"neurorestore_progress": {"complete": False, "frames_done": 30}})
    widget.set_compare(["restored", "partial"])
    widget.refresh()
    text = widget.status_label.text()
    assert "layer 'partial' is an incomplete result" in text and "read as NaN" in text
    assert "'restored'" not in text.split("incomplete")[0]
    assert len(widget.result.layers) == 3  # still plotted, with the warning


def test_plot_area_is_resizable_and_the_dock_pops_out_wide(viewer, widget, sim, qtbot):
    from qtpy.QtWidgets import QDockWidget

    from napari_neurorestore._widgets.traces import POP_OUT_SIZE

    _setup(viewer, widget, sim)
    split = widget.plot_splitter
    assert split.widget(0) is widget.canvas and split.widget(1) is widget.fidelity_table
    assert split.count() == 2 and not split.childrenCollapsible()  # one handle to drag
    dock = widget.parent()
    while not isinstance(dock, QDockWidget):
        dock = dock.parent()
    widget.pop_out_button.click()
    qtbot.waitUntil(dock.isFloating, timeout=5_000)
    assert dock.width() >= POP_OUT_SIZE[0] and widget.pop_out_button.isChecked()
    widget.pop_out_button.click()
    qtbot.waitUntil(lambda: not dock.isFloating(), timeout=5_000)
    assert widget.result is not None  # the traces are still there


def _one_roi_in_the_background(viewer, widget, sim):
    """A raw movie and one ellipse; every extraction goes to the worker thread."""
    widget.sync = False
    widget.async_threshold = 0
    viewer.add_image(sim.raw, name="raw")
    widget.reference_combo.setCurrentText("raw")
    layer = widget.add_roi_layer()
    layer.add_ellipses(np.array([_centre(sim.labels, 1), (4.0, 4.0)]))


def test_large_jobs_run_in_a_worker(viewer, widget, sim, qtbot):
    _one_roi_in_the_background(viewer, widget, sim)
    widget.refresh()
    assert widget.busy or widget.result is not None
    qtbot.waitUntil(lambda: widget.result is not None and not widget.busy, timeout=5000)
    assert widget.result.roi_ids == [1] and widget.error is None


@pytest.fixture(scope="module")
def sim_long():
    kw = dict(n_frames=150, shape=(48, 48), n_cells=4, seed=2)
    return simulate_calcium_movie(**kw), simulate_calcium_movie(**kw, dff_per_spike=0.5).clean


def test_halved_transients_are_flagged_in_the_table_and_on_the_plot(viewer, widget, sim_long,
                                                                    tmp_path):
    from qtpy.QtGui import QColor

    from napari_neurorestore._widgets.traces import TABLE_COLUMNS, WARN_COLOR
    from napari_neurorestore._widgets.traces_table import SHORT_HEADERS

    sim, half = sim_long
    viewer.add_image(sim.raw, name="raw")
    viewer.add_image(sim.clean, name="restored")
    viewer.add_image(half, name="halved")
    widget.reference_combo.setCurrentText("raw")
    widget.set_compare(["restored", "halved"])
    layer = widget.add_roi_layer()
    for k in (1, 2, 3):
        layer.add_ellipses(np.array([_centre(sim.labels, k), (4.0, 4.0)]))
    widget.refresh()
    assert widget.error is None, widget.status_label.text()
    tab = widget.fidelity_table
    assert [tab.horizontalHeaderItem(j).text() for j in range(tab.columnCount())] == \
        [SHORT_HEADERS.get(c, c) for c in TABLE_COLUMNS]  # the whole names in the tooltips
    col = {name: j for j, name in enumerate(TABLE_COLUMNS)}
    rows = {(tab.item(i, 0).text(), tab.item(i, 1).text()): i for i in range(tab.rowCount())}
    assert len(rows) == 9
    expect = widget.result.fidelity()
    for rid in ("1", "2", "3"):
        n_ev = tab.item(rows[(rid, "raw")], col["Events"]).text()
        assert int(n_ev) >= 1
        assert tab.item(rows[(rid, "raw")], col["⚠"]).text() == ""
        ok, flat = rows[(rid, "restored")], rows[(rid, "halved")]
        assert tab.item(ok, col["⚠"]).text() == ""
        assert float(tab.item(ok, col["Peak ratio"]).text()) > 0.8
        assert tab.item(flat, col["⚠"]).text() == "⚠ flattened"
        assert float(tab.item(flat, col["Peak ratio"]).text()) == pytest.approx(0.5, abs=0.1)
        assert abs(float(tab.item(flat, col["Delay (fr)"]).text())) < 0.5
        for c in ("⚠", "Peak ratio"):  # in red
            assert tab.item(flat, c if isinstance(c, int) else col[c]).foreground().color() \
                == QColor(WARN_COLOR)
        assert tab.item(ok, col["Peak ratio"]).foreground().color() != QColor(WARN_COLOR)
        # markers: the reference's events, and the flattened events on the halved trace
        r = next(e for e in expect if e["roi"] == int(rid) and e["layer"] == "raw")
        ev_marker = widget.event_markers[("raw", int(rid))]
        np.testing.assert_array_equal(ev_marker.get_xdata(), r["events"])
        assert ev_marker in widget.axes[0].lines
        fl = widget.flag_markers[("halved", int(rid))]
        assert fl in widget.axes[2].lines and len(fl.get_xdata()) >= 1
        assert ("restored", int(rid)) not in widget.flag_markers
    assert "⚠ ROI 1 'halved'" in widget.status_label.text()
    assert "flattens transients" in widget.status_label.text()
    widget.export_fidelity_csv(tmp_path / "fid.csv")
    with open(tmp_path / "fid.csv", newline="") as fh:
        fid = list(csv.DictReader(fh))
    assert [r["flags"] for r in fid if r["layer"] == "halved"] == ["flattened"] * 3
    # overlay: one panel with every marker
    widget.overlay_check.setChecked(True)
    widget.refresh()
    assert len(widget.axes) == 1
    assert all(m in widget.axes[0].lines for m in widget.flag_markers.values())
    assert len(widget.event_markers) == 3
    widget.grab().save(str(tmp_path / "dock.png"))


def test_cancel_stops_a_background_extraction(viewer, widget, sim, qtbot, monkeypatch):
    """Cancel (button or method) sets the extraction's token and quits its worker, as in the
    Restore dock; no recompute follows until Refresh."""
    seen = {}

    def slow_extract(movie, rois, cancel=None):
        seen["thread"] = threading.get_ident()
        seen["token"] = cancel
        while True:
            cancel.check()  # the core checks the token per chunk
            time.sleep(0.005)

    _one_roi_in_the_background(viewer, widget, sim)
    monkeypatch.setattr(tr, "extract_traces", slow_extract)
    widget.cache.clear()
    widget.refresh()
    assert widget.busy and widget.cancel_button.isEnabled()
    assert "in the background" in widget.status_label.text()
    qtbot.waitUntil(lambda: "token" in seen, timeout=5_000)
    worker = widget.worker
    widget.cancel_button.click()
    assert seen["token"].cancelled and worker.cancel_token is seen["token"]
    qtbot.waitUntil(lambda: not widget.busy, timeout=5_000)
    assert seen["thread"] != threading.get_ident()
    assert "cancelled" in widget.status_label.text() and widget.error is None
    assert not widget.cancel_button.isEnabled()
    qtbot.wait(50)
    assert not widget.busy  # no automatic restart after a cancel
    assert not widget.cancel()  # nothing left to cancel
    monkeypatch.undo()
    widget.refresh()  # Refresh computes again
    qtbot.waitUntil(lambda: widget.result is not None and not widget.busy, timeout=5_000)
    assert widget.result.roi_ids == [1]
