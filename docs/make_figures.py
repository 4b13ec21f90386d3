"""Make the README's screenshots from the sample data (napari at 1280x800).

    xvfb-run -a -s "-screen 0 1280x800x24" python docs/make_figures.py [--out docs/images]
        [--train-seconds 10]

Opens napari maximised, loads **File > Open Sample > Noisy two-photon calcium movie**, opens
the three docks from the Plugins menu (through the plugin's manifest), trains the denoiser
for a few seconds and restores the movie, draws an ellipse ROI on the most active cells,
assesses the result in the Trust report dock, then saves:

* ``restore.png``, ``traces.png``, ``trust.png``: the whole window with each dock raised;
* ``overview.png``: the README's first picture: the raw movie with the ROIs above the restored
  one (napari's grid mode) and the ROI traces dock raised;
* ``traces_popout.png``: the ROI traces dock popped out (raw vs restored traces and the
  fidelity table).

PNGs are reduced to a 256-colour palette when larger than 300 kB. The script prints how
long each step took.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:  # torch before any QApplication (importing it after one has crashed on Linux)
    import torch  # noqa: F401
except ImportError:  # pragma: no cover
    pass

import numpy as np

PLUGIN = "napari-neurorestore"
DOCKS = ("Restore", "ROI traces", "Trust report")
MAX_BYTES = 300_000
N_ROIS = 4


def wait(app, seconds: float = 0.0, until=None, timeout: float = 600.0) -> None:
    """Process Qt events for ``seconds``, or until ``until()`` is true."""
    t0 = time.perf_counter()
    while True:
        app.processEvents()
        elapsed = time.perf_counter() - t0
        if until is not None and until():
            return
        if until is None and elapsed >= seconds:
            return
        if elapsed > timeout:
            raise TimeoutError(f"still waiting after {timeout:.0f} s")
        time.sleep(0.02)


def roi_centres(movie: np.ndarray, n: int, min_distance: int = 12) -> list[tuple[float, float]]:
    """The ``n`` most active places of a (t, y, x) movie (peaks of its temporal std,
    lightly smoothed), at least ``min_distance`` pixels apart."""
    from scipy import ndimage as ndi

    std = ndi.gaussian_filter(np.asarray(movie, np.float32).std(axis=0), 2.0)
    peaks = (std == ndi.maximum_filter(std, size=min_distance)) & (std > np.median(std))
    ys, xs = np.nonzero(peaks)
    order = np.argsort(std[ys, xs])[::-1]
    out: list[tuple[float, float]] = []
    for i in order:
        p = (float(ys[i]), float(xs[i]))
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= min_distance for q in out):
            out.append(p)
        if len(out) == n:
            break
    return out


def save_png(image, path: Path) -> int:
    """Save a QImage/QPixmap as PNG (palette of 256 colours if over ``MAX_BYTES``)."""
    image.save(str(path), "PNG")
    if path.stat().st_size > MAX_BYTES:
        from PIL import Image

        with Image.open(path) as im:
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
                path, optimize=True)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    ap.add_argument("--train-seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def step(name: str) -> None:
        steps.append((name, time.perf_counter()))
        print(f"{time.perf_counter() - t_start:6.1f} s  {name}", flush=True)

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-neurorestore")
    app = QApplication.instance()
    win = viewer.window._qt_window
    win.showMaximized()
    win.setGeometry(app.primaryScreen().availableGeometry())  # no window manager: by hand
    viewer.open_sample(PLUGIN, "calcium_movie")
    raw = viewer.layers[-1]
    widgets = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name) for name in DOCKS}
    docks = {name: dw for name, (dw, _w) in widgets.items()}
    restore, traces, trust = (widgets[name][1] for name in DOCKS)
    wait(app, 0.5)
    step(f"napari open, window {win.width()}x{win.height()}")

    # -- restore: the denoiser, a short training budget
    restore.method_combo.value = "denoise"
    restore.layer_combo.value = raw
    restore.param_widgets["train_seconds"].value = args.train_seconds
    docks["Restore"].raise_()
    restore.start_training()
    wait(app, until=lambda: not restore.is_busy)
    result = restore.last_result_layer
    if result is None:
        print(f"no result: {restore.status_label.value}", file=sys.stderr)
        return 1
    step(f"restored: '{result.name}' ({restore.status_label.value})")

    # -- ROIs on the most active cells, drawn on the restored movie
    viewer.dims.set_point(0, 120)
    docks["ROI traces"].raise_()
    rois = traces.add_roi_layer()
    for c in roi_centres(result.data, N_ROIS):
        rois.add_ellipses(np.array([c, (6.0, 6.0)]))
    traces.refresh()
    wait(app, until=lambda: traces.result is not None and not traces.is_busy, timeout=60)
    viewer.layers.selection.active = result
    raw.visible = False
    step(f"traces: {len(traces.result.roi_ids)} ROIs")

    # -- trust report of the restoration
    docks["Trust report"].raise_()
    trust.raw_combo.setCurrentText(raw.name)
    trust.restored_combo.setCurrentText(result.name)
    trust.assess()
    wait(app, until=lambda: not trust.is_busy, timeout=300)
    step("trust report")

    # -- the screenshots
    viewer.layers.selection.active = rois
    for name, file in zip(DOCKS, ("restore.png", "traces.png", "trust.png"), strict=True):
        docks[name].raise_()
        wait(app, 0.5)
        size = save_png(win.grab(), args.out / file)
        print(f"         {file}: {win.width()}x{win.height()}, {size / 1000:.0f} kB")
    docks["ROI traces"].raise_()
    raw.visible = True
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    viewer.layers.move(viewer.layers.index(rois), 1)  # [raw, ROIs, restored]
    grid.enabled, grid.stride, grid.shape = True, 2, (2, 1)  # raw + ROIs above, restored below
    viewer.reset_view()
    wait(app, 0.5)
    size = save_png(win.grab(), args.out / "overview.png")
    print(f"         overview.png: {win.width()}x{win.height()}, {size / 1000:.0f} kB")
    grid.enabled, raw.visible = False, False
    traces.pop_out(True)
    wait(app, 1.0)
    dock = docks["ROI traces"]
    size = save_png(dock.grab(), args.out / "traces_popout.png")
    print(f"         traces_popout.png: {dock.width()}x{dock.height()}, {size / 1000:.0f} kB")
    traces.pop_out(False)
    step("screenshots")
    print(f"total {time.perf_counter() - t_start:.1f} s")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
