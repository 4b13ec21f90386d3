"""Live denoising during acquisition (core/live.py, `neurorestore live`).

A writer thread writes ``--files`` TIFF files of ``--frames`` frames (``--size`` x ``--size``,
uint16, simulated calcium imaging) at ``--rate`` frames/s into a temporary folder, by rename
(written under a temporary name, then renamed in) or growing in place (``--mode grow``: page
by page at the frame rate). The watcher restores them with a saved model (trained for
``--train-seconds`` on *another* simulated movie of the same simulator and frame size, 300
frames, seed 1: the watched movie is held out; saved and loaded again) into a zarr store.
Prints:

* the session's first line about its real-time margin, frames/s of the watcher's compute
  (restoring + writing), and the real-time margin;
* p50/p95 per-file latency: from a file's arrival (its last write or its rename) to all but
  its last window//2 frames being in the store;
* whether every frame was restored, and whether the store equals offline inference of the
  concatenated movie with live's setting (``context="causal", ensemble="off"``: max
  difference / data range, must be <= 1e-3);
* PSNR against the truth of the live store (the causal long-context step), of
  ``neurorestore denoise --model`` of the same movie (the full step, the model's ensemble
  setting), of live's old setting (no long-context step) and of the Gaussian filter tuned
  with the truth (bench_denoise's grid), and which steps the model holds;
* the time from the last file's arrival to the end of the session (idle timeout included);
* with ``--sweep``: offline frames/s at several frame sizes, i.e. the highest rate it keeps
  up with at each size.

    python benchmarks/bench_live.py [--files 20] [--frames 30] [--size 256] [--rate 30]
                                    [--mode rename|grow] [--idle-timeout 5] [--threads N]
                                    [--no-quality] [--sweep]

``--threads`` 0 (default): live mode's default (up to the machine's cores, the session measuring
whether more than one thread is faster); N pins N threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_neurorestore.core import live  # noqa: E402
from napari_neurorestore.core.methods.denoise import heavy as dn  # noqa: E402
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams  # noqa: E402
from napari_neurorestore.core.models import load_model, save_model  # noqa: E402
from napari_neurorestore.core.progress import drain  # noqa: E402
from napari_neurorestore.core.simulate import simulate_calcium_movie  # noqa: E402


def writer(folder: Path, movie: np.ndarray, n_files: int, per_file: int, rate: float,
           mode: str, times: list) -> None:
    import tifffile

    t0 = time.perf_counter()
    for i in range(n_files):
        block = movie[i * per_file:(i + 1) * per_file]
        name = folder / f"acq_{i + 1:05d}.tif"
        if mode == "rename":
            # frames are "acquired" at the rate; the file is renamed in when its last one is
            end = t0 + (i + 1) * per_file / rate
            time.sleep(max(0.0, end - time.perf_counter()))
            tmp = folder / (name.name + ".part")
            tifffile.imwrite(tmp, block, photometric="minisblack")
            os.replace(tmp, name)
        else:
            with tifffile.TiffWriter(name) as tw:
                for j, f in enumerate(block):
                    due = t0 + (i * per_file + j + 1) / rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                    tw.write(f, contiguous=False, photometric="minisblack")
                    tw.filehandle.flush()
        times.append(time.time())


def sweep(model, sizes=(128, 256, 512, 1024), frames=60, threads: int = 0) -> None:
    import torch

    threads = threads or min(live.AUTO_THREADS, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    print(f"offline frames/s by frame size, {threads} torch thread(s) (the highest rate kept "
          f"up with):")
    for s in sizes:
        m = np.random.default_rng(0).poisson(100, (frames, s, s)).astype(np.float32)
        kw = dict(device="cpu", context="causal", ensemble="off")  # live's setting
        drain(dn.predict(m[:16], model, **kw))  # warm up
        t0 = time.perf_counter()
        drain(dn.predict(m, model, **kw))
        print(f"  {s}x{s}: {frames / (time.perf_counter() - t0):7.1f} frames/s")


def steps(model) -> str:
    """The steps after the network a model holds."""
    held = [s for s in ("context", "context_causal", "centre_kernel", "transient")
            if model.norm.get(s)]
    return (", ".join(held) or "no steps after the network") + f" ({model.info.get('steps')} " \
        f"training steps in {model.info.get('train_seconds')} s)"


def drain_printing(gen, prefix: str):
    """Run a generator of Progress to its end, printing the messages that start with
    ``prefix``; its return value."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if p.message and p.message.startswith(prefix):
            print(f"session: {p.message}")


def quality(cat, clean, got, model, applied) -> None:
    """PSNR against the truth: the live store, offline denoise --model (full step), live's
    old setting (no long-context step), the Gaussian tuned with the truth."""
    from bench_denoise import best_gaussian

    from napari_neurorestore.core.metrics import psnr

    rng = float(clean.max() - clean.min())
    full = drain(dn.predict(cat, model, device="cpu"))
    bare = drain(dn.predict(cat, model, device="cpu", context=False, ensemble="off"))
    g_psnr, g_sig, _ = best_gaussian(cat, lambda x: psnr(x, clean, rng))
    p_live, p_full = psnr(got, clean, rng), psnr(full, clean, rng)
    print(f"PSNR vs truth (dB): live store {p_live:.2f} (long-context step applied: {applied}); "
          f"offline denoise --model {p_full:.2f} (full step); live without the step "
          f"{psnr(bare, clean, rng):.2f}; tuned Gaussian {g_psnr:.2f} (sigma_t/xy "
          f"{g_sig[0]}/{g_sig[1]}); raw {psnr(cat, clean, rng):.2f}")
    print(f"live - offline: {p_live - p_full:+.2f} dB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--frames", type=int, default=30, help="frames per file")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rate", type=float, default=30.0, help="frames/s written")
    ap.add_argument("--mode", choices=["rename", "grow"], default="rename")
    ap.add_argument("--idle-timeout", type=float, default=5.0)
    ap.add_argument("--train-seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the watcher (0: live mode's default)")
    ap.add_argument("--no-quality", dest="quality", action="store_false",
                    help="skip the offline runs and the PSNR figures")
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    import zarr
    from _common import machine

    n = a.files * a.frames
    print(machine(), f"load average {os.getloadavg()[0]:.2f}")
    sim = simulate_calcium_movie(n_frames=n, shape=(a.size, a.size), n_cells=30, seed=0)
    movie, clean = np.clip(sim.raw, 0, 65535).astype(np.uint16), sim.clean
    other = simulate_calcium_movie(n_frames=300, shape=(a.size, a.size), n_cells=30, seed=1).raw
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = DenoiseParams(train_seconds=a.train_seconds, device="cpu", seed=0)
        trained = drain(dn.train(np.clip(other, 0, 65535).astype(np.float32), params))
        model_path = save_model(trained, tmp / "model.pt")
        model = load_model(model_path)
        folder = tmp / "acq"
        folder.mkdir()
        times: list = []
        w = threading.Thread(target=writer, daemon=True,
                             args=(folder, movie, a.files, a.frames, a.rate, a.mode, times))
        print(f"{a.files} files x {a.frames} frames of {a.size}x{a.size} at {a.rate:g} "
              f"frames/s ({a.mode}), watcher with {a.threads or 'auto'} torch thread(s); "
              f"model: {steps(model)}")
        w.start()
        gen = live.watch(folder, tmp / "out.zarr", model, idle_timeout=a.idle_timeout,
                         threads=a.threads or None)
        res = drain_printing(gen, "keeps up with")
        w.join()
        load_live = os.getloadavg()[0]
        z = zarr.open_array(str(tmp / "out.zarr"), mode="r")
        got = z[:]
        cat = movie.astype(np.float32)
        ref = drain(dn.predict(cat, model, device="cpu", context="causal", ensemble="off"))
        span = float(cat.max() - cat.min())
        diff = float(np.abs(got - ref).max()) / span if got.shape == ref.shape else float("inf")
        k = DenoiseParams.from_dict(model.params).half_window
        print(res.summary())
        print(f"frames/s (compute): {res.fps:.1f}  (real-time margin x{res.fps / a.rate:.1f})")
        print(f"latency per file (arrival -> all but its last {k} frames restored): "
              f"p50 {res.latency_percentile(50):.3f} s, p95 {res.latency_percentile(95):.3f} s,"
              f" max {max(res.latencies):.3f} s")
        every = res.frames_restored == n and not res.files_skipped
        print(f"every frame restored: {every} ({res.frames_restored}/{n})")
        print(f"store equals offline inference: {diff <= 1e-3} (max diff {diff:.2e} of the "
              f"data range)")
        print(f"end after the last file: {res.end_after_last_file:.2f} s (idle timeout "
              f"{a.idle_timeout:g} s)")
        applied = z.attrs["neurorestore"].get("long_context_applied")
        print(f"load average at the end of the session {load_live:.2f}")
        if a.quality:
            quality(cat, clean, got, model, applied)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        if a.sweep:
            sweep(model, threads=a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
