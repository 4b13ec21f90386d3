"""Live denoising during acquisition (core/live.py, `neurorestore live`).

A writer thread writes ``--files`` TIFF files of ``--frames`` frames (``--size`` x ``--size``,
uint16, simulated calcium imaging) at ``--rate`` frames/s into a temporary folder, by rename
(written under a temporary name, then renamed in) or growing in place (``--mode grow``: page
by page at the frame rate). The watcher restores them with a saved model (trained for
``--train-seconds`` on a simulated movie, saved and loaded again) into a zarr store. Prints:

* frames/s of the watcher's compute (restoring + writing), and the real-time margin;
* p50/p95 per-file latency: from a file's arrival (its last write or its rename) to all but
  its last window//2 frames being in the store;
* whether every frame was restored, and whether the store equals offline inference of the
  concatenated movie (max difference / data range, must be <= 1e-3);
* the time from the last file's arrival to the end of the session (idle timeout included);
* with ``--sweep``: offline frames/s at several frame sizes, i.e. the highest rate it keeps
  up with at each size.

    python benchmarks/bench_live.py [--files 20] [--frames 30] [--size 256] [--rate 30]
                                    [--mode rename|grow] [--idle-timeout 5] [--sweep]
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


def sweep(model, sizes=(128, 256, 512, 1024), frames=60, threads: int = 1) -> None:
    import torch

    torch.set_num_threads(threads)
    print(f"offline frames/s by frame size, {threads} torch thread(s) (the highest rate kept "
          f"up with):")
    for s in sizes:
        m = np.random.default_rng(0).poisson(100, (frames, s, s)).astype(np.float32)
        drain(dn.predict(m[:16], model, device="cpu"))  # warm up
        t0 = time.perf_counter()
        drain(dn.predict(m, model, device="cpu"))
        print(f"  {s}x{s}: {frames / (time.perf_counter() - t0):7.1f} frames/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--frames", type=int, default=30, help="frames per file")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rate", type=float, default=30.0, help="frames/s written")
    ap.add_argument("--mode", choices=["rename", "grow"], default="rename")
    ap.add_argument("--idle-timeout", type=float, default=5.0)
    ap.add_argument("--train-seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the watcher")
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    import zarr
    from _common import machine

    n = a.files * a.frames
    print(machine(), f"load average {os.getloadavg()[0]:.2f}")
    movie = simulate_calcium_movie(n_frames=n, shape=(a.size, a.size), n_cells=30, seed=0).raw
    movie = np.clip(movie, 0, 65535).astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = DenoiseParams(train_seconds=a.train_seconds, device="cpu", seed=0)
        trained = drain(dn.train(movie[:300].astype(np.float32), params))
        model_path = save_model(trained, tmp / "model.pt")
        model = load_model(model_path)
        folder = tmp / "acq"
        folder.mkdir()
        times: list = []
        w = threading.Thread(target=writer, daemon=True,
                             args=(folder, movie, a.files, a.frames, a.rate, a.mode, times))
        print(f"{a.files} files x {a.frames} frames of {a.size}x{a.size} at {a.rate:g} "
              f"frames/s ({a.mode}), watcher with {a.threads} torch thread(s)")
        w.start()
        res = drain(live.watch(folder, tmp / "out.zarr", model, idle_timeout=a.idle_timeout,
                                    threads=a.threads))
        w.join()
        got = zarr.open_array(str(tmp / "out.zarr"), mode="r")[:]
        cat = movie.astype(np.float32)
        ref = drain(dn.predict(cat, model, device="cpu"))
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
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        if a.sweep:
            sweep(model, threads=a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
