"""Make every image the docs use: napari screenshots, per-method results, benchmark plots.

    xvfb-run -a -s "-screen 0 1280x800x24" python docs/make_figures.py [--out docs/images]
        [--train-seconds 10] [--method-seconds 15] [--only napari|methods|plots]

Three parts (``--only`` runs one of them; all three by default). It trains five models (one
in napari, four for the method figures), so it is not run in CI: about 2½ minutes on a
shared 2-core CPU (napari 42 s, methods 93 s, plots under 1 s); it prints each part's time.

**napari** (needs a display: Xvfb). Opens napari maximised, loads **File > Open Sample >
Noisy two-photon calcium movie**, opens the three docks from the Plugins menu (through the
plugin's manifest), trains the denoiser for a few seconds and restores the movie, draws an
ellipse ROI on the most active cells, assesses the result in the Trust report dock, then
saves:

* ``restore.png``, ``traces.png``, ``trust.png``: the whole window with each dock raised;
* ``overview.png``: the README's first picture: the raw movie with the ROIs above the restored
  one (napari's grid mode) and the ROI traces dock raised;
* ``traces_popout.png``: the ROI traces dock popped out (raw vs restored traces and the
  fidelity table).

**methods** (no display). Runs the four methods through the Python API on simulated data
with ground truth, ``--method-seconds`` of training each, and saves ``<method>_result.png``
(a frame or a slice: input, classical baseline where there is one, restored, truth, each
with its PSNR against the truth) and, for denoise and sparse, ``<method>_traces.png`` (ROI
ΔF/F of raw, restored and truth):

* denoise: the sample movie (the same simulation as File > Open Sample, whose noise-free
  movie is the truth);
* sparse, M = 4: a simulated movie, every 4th row kept (as ``benchmarks/bench_sparse.py``);
* upsample 3x: a simulated neuron volume binned 3x per axis (as ``bench_upsample.py``);
* isotropize, R = 3: a simulated neuron volume blurred in z (Gaussian sigma 2 voxels), every
  3rd slice kept, Poisson noise (as ``bench_isotropize.py``).

**plots** (no display, no training). Reads the tables of ``docs/benchmarks.md`` and draws
``bench_denoise_gain.png`` (gain over the tuned Gaussian per regime) and
``bench_live_fps.png`` (frames/s by frame size from the live sweep).

PNGs are reduced to a 256-colour palette when larger than their limit (300 kB for the
screenshots, 150 kB for the figures).
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


def napari_figures(out: Path, train_seconds: float) -> int:
    """The screenshots: napari at the screen's size with the plugin's three docks."""
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
    restore.param_widgets["train_seconds"].value = train_seconds
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
        size = save_png(win.grab(), out / file)
        print(f"         {file}: {win.width()}x{win.height()}, {size / 1000:.0f} kB")
    docks["ROI traces"].raise_()
    raw.visible = True
    grid = viewer.canvas.grid if hasattr(viewer, "canvas") else viewer.grid
    viewer.layers.move(viewer.layers.index(rois), 1)  # [raw, ROIs, restored]
    grid.enabled, grid.stride, grid.shape = True, 2, (2, 1)  # raw + ROIs above, restored below
    viewer.reset_view()
    wait(app, 0.5)
    size = save_png(win.grab(), out / "overview.png")
    print(f"         overview.png: {win.width()}x{win.height()}, {size / 1000:.0f} kB")
    grid.enabled, raw.visible = False, False
    traces.pop_out(True)
    wait(app, 1.0)
    dock = docks["ROI traces"]
    size = save_png(dock.grab(), out / "traces_popout.png")
    print(f"         traces_popout.png: {dock.width()}x{dock.height()}, {size / 1000:.0f} kB")
    traces.pop_out(False)
    step("screenshots")
    viewer.close()
    return 0


# ---------------------------------------------------------------------------- the methods

FIG_BYTES = 150_000
DPI = 100


def save_figure(fig, path: Path) -> int:
    """Save a matplotlib figure as PNG (palette of 256 colours if over ``FIG_BYTES``)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    if path.stat().st_size > FIG_BYTES:
        from PIL import Image

        with Image.open(path) as im:
            im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
                path, optimize=True)
    size = path.stat().st_size
    print(f"         {path.name}: {size / 1000:.0f} kB", flush=True)
    return size


def panels(images: list[tuple[str, np.ndarray]], suptitle: str, path: Path,
           extent: list | None = None, top: float = 99.8) -> int:
    """A row of grey images sharing one intensity range (the last image's, the truth's:
    its 0.5 to ``top`` percentiles), each titled."""
    import matplotlib.pyplot as plt

    lo_hi = tuple(np.percentile(images[-1][1], (0.5, top)))
    n = len(images)
    h, w = images[-1][1].shape
    aspect = (abs(extent[2] - extent[3]) / abs(extent[1] - extent[0])) if extent else h / w
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.3 * aspect + 0.75), squeeze=False)
    for ax, (title, img) in zip(axes[0], images, strict=True):
        ax.imshow(img, cmap="gray", vmin=lo_hi[0], vmax=lo_hi[1], interpolation="nearest",
                  extent=extent, aspect="auto" if extent else "equal")
        ax.set_title(title, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout(w_pad=0.4)
    return save_figure(fig, path)


def trace_figure(t: np.ndarray, rows: list[tuple[str, np.ndarray, dict]], suptitle: str,
                 path: Path) -> int:
    """ΔF/F of a few ROIs, one above the other: each row of ``rows`` is (label, traces
    (n_roi, t), plot style)."""
    import matplotlib.pyplot as plt

    n_roi = rows[0][1].shape[0]
    span = max(float(np.nanmax(r[1]) - np.nanmin(r[1])) for r in rows[1:]) or 1.0
    fig, ax = plt.subplots(figsize=(8.0, 1.0 + 0.9 * n_roi))
    for k in range(n_roi):
        off = -k * span
        for label, tr, style in rows:
            ax.plot(t[: tr.shape[1]] if len(t) >= tr.shape[1] else t, tr[k] + off,
                    label=label if k == 0 else None, **style)
        ax.text(t[0], off + 0.05 * span, f"ROI {k + 1}", fontsize=7.5, va="bottom")
    # a ΔF/F scale bar at the right end: the largest round value under 60 % of a row
    bar = max((v for v in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0) if v <= 0.6 * span),
              default=0.05)
    x_bar = t[-1] + 0.01 * (t[-1] - t[0])
    ax.plot([x_bar, x_bar], [-(n_roi - 1) * span, -(n_roi - 1) * span + bar], color="k",
            lw=1.5, clip_on=False)
    ax.text(x_bar, -(n_roi - 1) * span + bar / 2, f" {bar:g}", fontsize=7.5, va="center")
    ax.set_xlabel("frame")
    ax.set_ylabel("ΔF/F (one row per ROI)")
    ax.set_yticks([])
    ax.set_xlim(t[0], t[-1])
    ax.legend(loc="upper right", fontsize=7.5, ncol=len(rows), frameon=False,
              bbox_to_anchor=(1.0, 1.12))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.suptitle(suptitle, fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    return save_figure(fig, path)


def active_rois(truth_dff: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` ROIs whose true ΔF/F varies most (the ones with transients to show)."""
    return np.sort(np.argsort(np.nanstd(truth_dff, axis=1))[::-1][:n])


def method_figures(out: Path, seconds: float) -> list[tuple[str, float]]:
    """Run the four methods on simulated data with ground truth; save their figures.
    Returns (method, seconds) for each."""
    from scipy.ndimage import zoom

    from napari_neurorestore import denoise, isotropize, sparse, upsample
    from napari_neurorestore.core.methods.isotropize.axial import interp_z
    from napari_neurorestore.core.methods.sparse.figures import roi_dff
    from napari_neurorestore.core.methods.sparse.lines import cubic_upsample, make_sparse
    from napari_neurorestore.core.methods.upsample.spec import bin_array
    from napari_neurorestore.core.metrics import psnr
    from napari_neurorestore.core.simulate import (
        degrade_axial,
        simulate_calcium_movie,
        simulate_neuron_volume,
    )

    times: list[tuple[str, float]] = []

    def budget(model) -> str:
        return f"{seconds:g} s of training on a CPU ({model.info.get('steps', '?')} steps)"

    def db(x, truth):
        return f"{psnr(np.asarray(x, np.float32), truth, float(np.ptp(truth))):.1f} dB"

    # -- denoise: the sample movie (_sample_data.calcium_movie: the same simulation)
    t0 = time.perf_counter()
    sim = simulate_calcium_movie(n_frames=300, shape=(128, 128), seed=1)
    raw, clean, labels = sim.raw, sim.clean, sim.labels
    restored, model = denoise(raw, train_seconds=seconds, seed=0, return_model=True)
    t_show = int(np.argmax(clean.reshape(len(clean), -1).mean(axis=1)))
    panels([(f"raw, frame {t_show} ({db(raw, clean)})", raw[t_show].astype(np.float32)),
            (f"denoised ({db(restored, clean)})", restored[t_show]),
            ("truth (noise-free)", clean[t_show])],
           f"Denoise: the sample movie (300 × 128 × 128, ~5 photons per soma pixel), "
           f"{budget(model)};\nPSNR of the whole movie", out / "denoise_result.png")
    off = sim.offset  # the camera offset, out of F (ΔF/F of photons)
    truth = roi_dff(clean - off, labels)
    pick = active_rois(truth, 4)
    trace_figure(np.arange(len(raw)), [
        ("raw", roi_dff(raw - off, labels)[pick], dict(color="0.7", lw=0.7)),
        ("denoised", roi_dff(restored - off, labels)[pick],
         dict(color="tab:orange", lw=1.0)),
        ("truth", truth[pick], dict(color="k", lw=0.8, ls="--"))],
        "Denoise: ΔF/F of the 4 most active simulated cells (their true masks)",
        out / "denoise_traces.png")
    times.append(("denoise", time.perf_counter() - t0))
    print(f"{times[-1][1]:6.1f} s  denoise figures", flush=True)

    # -- sparse, M = 4: every 4th row of a simulated movie (as bench_sparse.py)
    t0 = time.perf_counter()
    m = 4
    sim = simulate_calcium_movie(n_frames=300, shape=(128, 128), seed=0)
    clean, labels = sim.clean, sim.labels
    acquired = make_sparse(sim.raw, m)
    restored, model = sparse(acquired, factor=m, train_seconds=seconds, seed=0,
                             return_model=True)
    cubic = cubic_upsample(acquired.astype(np.float32), m)
    t_show = int(np.argmax(clean.reshape(len(clean), -1).mean(axis=1)))
    panels([(f"acquired: every {m}th row", np.repeat(acquired[t_show], m, axis=0)
             .astype(np.float32)),
            (f"cubic along y ({db(cubic, clean)})", cubic[t_show]),
            (f"restored ({db(restored, clean)})", restored[t_show]),
            ("truth (noise-free)", clean[t_show])],
           f"Sparse-axis reconstruction, M = {m}: simulated movie (300 × 128 × 128), "
           f"frame {t_show},\n{budget(model)}; PSNR of the whole movie",
           out / "sparse_result.png")
    off = sim.offset
    truth = roi_dff(clean - off, labels)
    pick = active_rois(truth, 4)
    trace_figure(np.arange(len(clean)), [
        ("raw (the acquired rows)", roi_dff(acquired - off, labels[::m])[pick],
         dict(color="0.7", lw=0.7)),
        ("restored", roi_dff(restored - off, labels)[pick],
         dict(color="tab:orange", lw=1.0)),
        ("truth", truth[pick], dict(color="k", lw=0.8, ls="--"))],
        f"Sparse, M = {m}: ΔF/F of the 4 most active simulated cells",
        out / "sparse_traces.png")
    times.append(("sparse", time.perf_counter() - t0))
    print(f"{times[-1][1]:6.1f} s  sparse figures", flush=True)

    # -- upsample 3x: a simulated neuron volume binned 3x per axis (as bench_upsample.py)
    t0 = time.perf_counter()
    f = 3
    truth = simulate_neuron_volume((48, 144, 144), seed=1)
    coarse = bin_array(truth, (f, f, f))
    fine, model = upsample(coarse, factor=f, train_seconds=seconds, seed=0, return_model=True)
    cubic = zoom(coarse.astype(np.float64), f, order=3, grid_mode=True, mode="reflect")
    k = len(coarse) // 2
    z = f * k + f // 2  # the output slice at the centre of input slice k
    # a 72 x 72 crop (24 x 24 input pixels) where the truth has the most structure
    gy, gx = np.gradient(truth[z])
    edges = np.hypot(gy, gx)
    w = 24 * f
    _, y0, x0 = max((edges[a:a + w, b:b + w].sum(), a, b)
                    for a in range(0, truth.shape[1] - w + 1, f * 4)
                    for b in range(0, truth.shape[2] - w + 1, f * 4))
    crop = (slice(y0, y0 + w), slice(x0, x0 + w))
    nearest = np.repeat(np.repeat(coarse[k], f, 0), f, 1)
    panels([(f"input: 3× coarser (slice {k})", nearest[crop]),
            (f"cubic spline ({db(cubic, truth)})", cubic[z][crop]),
            (f"upsampled ({db(fine, truth)})", fine[z][crop]),
            ("truth", truth[z][crop])],
           f"Zero-shot upsampling 3×: simulated neuron volume {coarse.shape[0]} × "
           f"{coarse.shape[1]} × {coarse.shape[2]} → {truth.shape[0]} × {truth.shape[1]} × "
           f"{truth.shape[2]},\n{budget(model)}; a {w} × {w} crop of output slice {z}; PSNR of "
           f"the whole volume", out / "upsample_result.png", top=99.5)
    times.append(("upsample", time.perf_counter() - t0))
    print(f"{times[-1][1]:6.1f} s  upsample figures", flush=True)

    # -- isotropize, R = 3: blurred in z, every 3rd slice (as bench_isotropize.py)
    t0 = time.perf_counter()
    r = 3.0
    d = degrade_axial(simulate_neuron_volume((72, 112, 112), seed=0), 2.0, r, photons=200.0,
                      seed=1)
    iso, model = isotropize(d.raw, z_ratio=r, train_seconds=seconds, seed=0,
                            return_model=True)
    cubic = interp_z(d.raw, r)
    y = d.truth.shape[1] // 2
    n_out = d.truth.shape[0]
    acquired = np.repeat(d.raw[:, y], int(r), axis=0)[:n_out]
    ext = [0, d.truth.shape[2], n_out, 0]
    panels([(f"acquired: z step 3×, xz at y = {y}", acquired),
            (f"cubic in z ({db(cubic, d.truth)})", cubic[:, y]),
            (f"isotropized ({db(iso, d.truth)})", iso[:, y]),
            ("truth", d.truth[:, y])],
           f"Axial isotropization, R = 3: simulated neuron volume, σz = 2 voxels, Poisson "
           f"noise; {d.raw.shape[0]} slices → {n_out},\n{budget(model)}; an xz slice; PSNR "
           f"of the whole volume", out / "isotropize_result.png",
           extent=ext)
    times.append(("isotropize", time.perf_counter() - t0))
    print(f"{times[-1][1]:6.1f} s  isotropize figures", flush=True)
    return times


# ---------------------------------------------------------------------------- benchmark plots

def _table_after(md: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of the first markdown table after ``heading`` in ``md``."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start + 2:]:  # past the header and the --- row
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _numbers(cell: str) -> list[float]:
    """The leading figure of each ' / '-separated part of a cell ('+4.93 / +4.58 (..)')."""
    import re

    head = cell.split("(")[0]
    return [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?", head.replace(",", ""))]


def benchmark_plots(out: Path, page: Path) -> None:
    """Plots of docs/benchmarks.md's numbers (read from the page, so they follow it)."""
    import re

    import matplotlib.pyplot as plt

    md = page.read_text(encoding="utf-8")
    names, ours, peer = [], [], []
    for cells in _table_after(md, "## The denoiser across regimes"):
        regime, gauss, gain, careamics = cells[0], cells[1], cells[3], cells[5]
        g, o, c = _numbers(gauss), _numbers(gain), _numbers(careamics)
        label = regime.split("(")[0].strip()
        if len(g) > 1:  # "noise corr. 0.1 / 0.3 / 0.5"
            levels = re.findall(r"\d\.\d", regime)
            for lv, gi, oi, ci in zip(levels, g, o, c, strict=True):
                names.append(f"noise corr. {lv}")
                ours.append(oi)
                peer.append(ci - gi)
        else:
            names.append(label)
            ours.append(o[0])
            peer.append(c[0] - g[0])
    if not names:
        raise ValueError(f"no regime table in {page}")
    yy = np.arange(len(names))[::-1]
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(names) + 1.0))
    ax.barh(yy + 0.2, ours, 0.38, color="tab:orange", label="ours (60 s of training)")
    ax.barh(yy - 0.2, peer, 0.38, color="0.6", label="CAREamics 0.3.5 N2V 2D (60 s)")
    for y_, v in zip(yy, ours, strict=True):
        ax.text(v + 0.15, y_ + 0.2, f"{v:+.2f}", va="center", fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(yy, names, fontsize=8)
    ax.set_xlabel("PSNR gain over the Gaussian filter tuned on the truth (dB)")
    ax.legend(fontsize=7.5, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
              frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(fig, out / "bench_denoise_gain.png")

    sweep = md[md.index("`--sweep`"):]
    sweep = sweep[:sweep.index("frames/s.")]  # "... 1024x1024 3.8 frames/s."
    pts = [(int(a), float(v)) for a, b, v in re.findall(r"(\d+)x(\d+) ([\d.]+)", sweep)
           if a == b]
    if len(pts) < 2:
        raise ValueError(f"no frame-size sweep in {page}")
    size, fps = zip(*pts, strict=True)
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.loglog(size, fps, "o-", color="tab:orange")
    for s_, v in pts:
        ax.annotate(f"{v:g}", (s_, v), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(30, color="0.5", ls="--", lw=0.8)
    ax.text(size[0], 33, "30 frames/s acquisition", fontsize=7.5, color="0.4")
    ax.set_xticks(size, [f"{s_}²" for s_ in size])
    ax.minorticks_off()
    ax.set_xlabel("frame size (pixels)")
    ax.set_ylabel("frames/s restored")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(fig, out / "bench_live_fps.png")


# ---------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    ap.add_argument("--train-seconds", type=float, default=10.0,
                    help="training of the denoiser in napari (seconds)")
    ap.add_argument("--method-seconds", type=float, default=15.0,
                    help="training of each method for its figures (seconds)")
    ap.add_argument("--only", choices=("napari", "methods", "plots"),
                    help="make one part only (default: all three)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = [args.only] if args.only else ["napari", "methods", "plots"]
    t_start = time.perf_counter()
    timing: list[tuple[str, float]] = []
    for part in parts:
        t0 = time.perf_counter()
        print(f"== {part}", flush=True)
        if part == "napari":
            if napari_figures(args.out, args.train_seconds):
                return 1
        elif part == "methods":
            method_figures(args.out, args.method_seconds)
        else:
            benchmark_plots(args.out, Path(__file__).parent / "benchmarks.md")
        timing.append((part, time.perf_counter() - t0))
    print("time: " + ", ".join(f"{p} {s:.0f} s" for p, s in timing)
          + f"; total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
