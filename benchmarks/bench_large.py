"""Benchmark of large-recording inference: streamed, bounded memory, and on dask workers.

1. Writes a uint16 movie (default 10,000 x 512 x 512 = 5 GB, an uncompressed BigTIFF like
   a ScanImage recording) page by page, never holding it in memory.
2. Trains a small denoiser on a short sample of it (or uses ``--model``).
3. In-memory inference on a 200-frame crop held in RAM (frames/s, in this process).
4. ``neurorestore denoise MOVIE.tif -o OUT.zarr --model M.pt`` in a subprocess: wall time,
   frames/s, and its exact peak RSS (``os.wait4``). A 16-frame run of the same command gives
   the start-up time (interpreter, torch, model), subtracted for the "steady" frames/s.
5. The same with ``--workers 1`` and ``--workers 2`` (a local dask cluster): frames/s and the
   max abs difference to the single-process output, relative to its data range; peak RSS of
   the whole process tree, sampled with psutil.
6. Optional (``--upsample``; ``--upsample-only`` skips 1-5): ``neurorestore upsample VOL.tif
   -o OUT.zarr --model M.pt --factor 4`` on a (z, y, x) volume written slice by slice whose
   4x output is ~8 GB float32 (default 128 x 512 x 512 -> 512 x 2048 x 2048), streamed tile
   by tile into a zarr store (one chunk per tile; tile side from the memory budget unless
   ``--upsample-tile``); wall time, output voxels/s and peak RSS.

Bars (issue 8): peak RSS < 2 GB; streamed frames/s within 20 % of in-memory; 2-worker output
equal to single-process within 1e-5 of the data range.

    python benchmarks/bench_large.py [--frames 10000] [--size 512] [--model M.pt]
                                     [--dir /tmp/bench_large] [--keep] [--upsample]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import Timer, machine, peak_rss_mb

GB = 2**30


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- data
def frames(n: int, size: int, seed: int = 0):
    """Simulated GCaMP-like frames, generated one at a time: blurred cells with slow
    calcium transients on a background, Poisson noise at a few photons per pixel."""
    rng = np.random.default_rng(seed)
    n_cells = max(4, size * size // 2500)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = rng.uniform(8, size - 8, (2, n_cells))
    r = rng.uniform(3, 6, n_cells)
    # each cell's footprint touches a small box only: keep (box slices, weights)
    cells = []
    for i in range(n_cells):
        y0, y1 = int(max(0, cy[i] - 3 * r[i])), int(min(size, cy[i] + 3 * r[i] + 1))
        x0, x1 = int(max(0, cx[i] - 3 * r[i])), int(min(size, cx[i] + 3 * r[i] + 1))
        w = np.exp(-((yy[y0:y1, x0:x1] - cy[i]) ** 2 + (xx[y0:y1, x0:x1] - cx[i]) ** 2)
                   / (2 * r[i] ** 2))
        cells.append((slice(y0, y1), slice(x0, x1), w))
    base = 2.0 + 0.5 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
    calcium = np.zeros(n_cells, np.float32)
    for _ in range(n):
        spikes = rng.random(n_cells) < 0.01
        calcium = calcium * 0.95 + spikes * rng.uniform(2, 6, n_cells)
        f = base.copy()
        for (sy, sx, w), c in zip(cells, 1.0 + calcium, strict=True):
            f[sy, sx] += 3.0 * c * w
        yield (rng.poisson(f) + 100).astype(np.uint16)


def write_movie(path: Path, n: int, size: int) -> float:
    import tifffile

    with Timer() as t:
        tifffile.imwrite(path, data=frames(n, size), shape=(n, size, size), dtype=np.uint16,
                         bigtiff=True, metadata={"axes": "TYX"})
    return t.seconds


# --------------------------------------------------------------------------- measuring
#: a small launcher: a child forked from this (large) benchmark process would start with
#: its resident set as its high-water mark (Linux keeps ru_maxrss across exec), so the
#: command is started from a fresh, small interpreter that reports its child's peak RSS
_LAUNCHER = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:])\n"
             "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
             " file=sys.stderr)\n"
             "sys.exit(r.returncode)\n")


def run_measured(cmd: list[str], poll: float = 0.2) -> dict:
    """Run ``cmd``; return wall seconds, return code, the exact peak RSS of the process
    (getrusage of a small launcher's child; the max over the command and any children it
    waited for) and the sampled peak RSS of the whole process tree, summed (dask workers
    included)."""
    import psutil

    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", _LAUNCHER, *cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=False)
    proc = psutil.Process(p.pid)
    tree_peak = 0
    while True:
        pid, status, _ = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        try:
            procs = proc.children(recursive=True)  # the command and its children
            tree_peak = max(tree_peak, sum(q.memory_info().rss for q in procs
                                           if q.is_running()))
        except psutil.Error:
            pass
        time.sleep(poll)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read().decode(errors="replace"), p.stderr.read().decode(errors="replace")
    peak_kb = [int(line.split()[1]) for line in err.splitlines() if line.startswith("MAXRSS_KB")]
    peak_mb = peak_kb[-1] / 1024 if peak_kb else float("nan")
    return {"wall": wall, "rc": p.returncode, "peak_mb": peak_mb,
            "tree_peak_mb": max(tree_peak / 2**20, peak_mb), "stdout": out, "stderr": err}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "napari_neurorestore", *args]


def max_abs_diff(a_path: Path, b_path: Path, step: int = 256) -> tuple[float, float]:
    """(max |a - b|, data range of a), streamed over time chunks."""
    import zarr

    a, b = zarr.open_array(a_path, mode="r"), zarr.open_array(b_path, mode="r")
    diff, lo, hi = 0.0, np.inf, -np.inf
    for s in range(0, a.shape[0], step):
        x, y = a[s:s + step], b[s:s + step]
        diff = max(diff, float(np.abs(x - y).max()))
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    return diff, hi - lo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--model", help="a saved denoising model (skip training)")
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--chunk-frames", type=int, default=64)
    ap.add_argument("--crop", type=int, default=200, help="frames of the in-memory crop")
    ap.add_argument("--dir", default="/tmp/neurorestore_bench_large")
    ap.add_argument("--keep", action="store_true", help="keep the movie and outputs")
    ap.add_argument("--no-workers", action="store_true", help="skip the dask runs")
    ap.add_argument("--upsample", action="store_true",
                    help="also run the upsample case (4x output to a memmapped TIFF)")
    ap.add_argument("--upsample-only", action="store_true",
                    help="run only the upsample case")
    ap.add_argument("--upsample-shape", default="128,512,512",
                    help="z,y,x of the upsample input (default: 4x output ~8.6 GB)")
    ap.add_argument("--upsample-tile", type=int, default=None,
                    help="upsample --tile-size (input pixels; the method's default if unset)")
    args = ap.parse_args()
    if args.upsample_only:
        work = Path(args.dir)
        work.mkdir(parents=True, exist_ok=True)
        print(f"machine: {machine()}")
        print(f"load average at start: {load()}")
        up = run_upsample(work, args)
        ok = up is not None and up["peak_mb"] < 2048
        print(f"  upsample peak RSS < 2 GB ({up['out_gb']:.2f} GiB output): "
              f"{up['peak_mb']:.0f} MB -> {'PASS' if ok else 'FAIL'}")
        print(f"load average at end: {load()}")
        return 0 if ok else 1

    import torch

    from napari_neurorestore.core.methods.denoise import heavy as dn
    from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
    from napari_neurorestore.core.models import load_model, save_model
    from napari_neurorestore.core.progress import drain

    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    movie = work / f"movie_{args.frames}x{args.size}.tif"
    n, size = args.frames, args.size
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    if not movie.exists():
        secs = write_movie(movie, n, size)
        print(f"wrote {movie} ({n}x{size}x{size} uint16, {movie.stat().st_size / GB:.2f} GiB) "
              f"page by page in {secs:.0f} s; peak RSS of this process {peak_rss_mb():.0f} MB")
    else:
        print(f"reusing {movie} ({movie.stat().st_size / GB:.2f} GiB)")

    # ---- model
    import tifffile

    mm = tifffile.memmap(movie, mode="r")
    if args.model:
        model_path = Path(args.model)
        model = load_model(model_path)
    else:
        sample = np.array(mm[: min(n, 300)])
        params = DenoiseParams(train_seconds=args.train_seconds, epochs=10_000, seed=0,
                               device="cpu")
        with Timer() as t:
            model = drain(dn.train(sample, params))
        model_path = work / "model.pt"
        save_model(model, model_path, overwrite=True)
        print(f"trained on a {len(sample)}-frame sample for {t.seconds:.0f} s "
              f"({model.info['steps']} steps)")
        del sample

    # ---- in-memory inference on a crop
    crop = np.array(mm[: args.crop])
    del mm
    drain(dn.predict(crop[:16], model, chunk_frames=args.chunk_frames))  # warm-up
    with Timer() as t:
        ref_crop = drain(dn.predict(crop, model, chunk_frames=args.chunk_frames))
    fps_mem = len(crop) / t.seconds
    print(f"in-memory inference, {len(crop)}-frame crop in RAM: {fps_mem:.1f} frames/s "
          f"(torch {torch.get_num_threads()} threads); load {load()}")

    # ---- start-up time of the CLI (16 frames)
    small = work / "small.tif"
    tifffile.imwrite(small, crop[:16])
    r = run_measured(cli("denoise", str(small), "-o", str(work / "small.zarr"), "--model",
                         str(model_path), "-q", "--overwrite"))
    startup = r["wall"]
    print(f"CLI start-up (16-frame run): {startup:.1f} s")

    # ---- streamed single-process inference
    out1 = work / "out_single.zarr"
    r = run_measured(cli("denoise", str(movie), "-o", str(out1), "--model", str(model_path),
                         "-q", "--overwrite", "--chunk-frames", str(args.chunk_frames)))
    if r["rc"] != 0:
        print(r["stderr"][-3000:])
        return 1
    fps_stream = n / r["wall"]
    fps_steady = n / max(1e-9, r["wall"] - startup)
    print(f"streamed: neurorestore denoise {movie.name} -o {out1.name}: {r['wall']:.0f} s, "
          f"{fps_stream:.1f} frames/s ({fps_steady:.1f} without start-up), "
          f"peak RSS {r['peak_mb']:.0f} MB; load {load()}")
    import zarr

    z = zarr.open_array(out1, mode="r")
    k = model.params["window"] // 2
    crop_diff = float(np.abs(z[: args.crop - k] - ref_crop[: -k]).max())
    print(f"  streamed == in-memory on frames 0..{args.crop - k - 1}: max abs diff "
          f"{crop_diff:.2e} (data range {float(np.ptp(ref_crop)):.1f})")

    rows = []
    if not args.no_workers:
        for w in (1, 2):
            rs = run_measured(cli("denoise", str(small), "-o", str(work / "small.zarr"),
                                  "--model", str(model_path), "-q", "--overwrite",
                                  "--workers", str(w)))
            outw = work / f"out_workers{w}.zarr"
            rw = run_measured(cli("denoise", str(movie), "-o", str(outw), "--model",
                                  str(model_path), "-q", "--overwrite", "--workers", str(w),
                                  "--chunk-frames", str(args.chunk_frames)))
            if rw["rc"] != 0:
                print(rw["stderr"][-3000:])
                return 1
            diff, rng = max_abs_diff(out1, outw)
            steady = n / max(1e-9, rw["wall"] - rs["wall"])
            rows.append((w, steady, rw["tree_peak_mb"], diff, rng))
            print(f"--workers {w}: {rw['wall']:.0f} s, {n / rw['wall']:.1f} frames/s "
                  f"({steady:.1f} without the {rs['wall']:.0f} s cluster start-up), "
                  f"peak RSS of the process tree "
                  f"{rw['tree_peak_mb']:.0f} MB, max abs diff to single-process "
                  f"{diff:.2e} = {diff / rng:.1e} of the range; load {load()}")
            if not args.keep:
                shutil.rmtree(outw, ignore_errors=True)

    up = None
    if args.upsample:
        up = run_upsample(work, args)

    print("\nbars:")
    print(f"  peak RSS < 2 GB (streamed, {n} frames, {movie.stat().st_size / GB:.2f} GiB input):"
          f" {r['peak_mb']:.0f} MB -> {'PASS' if r['peak_mb'] < 2048 else 'FAIL'}")
    rel = fps_steady / fps_mem
    print(f"  streamed frames/s within 20 % of in-memory: {fps_steady:.1f} vs {fps_mem:.1f} "
          f"({100 * (rel - 1):+.0f} %; {100 * (fps_stream / fps_mem - 1):+.0f} % with "
          f"start-up) -> {'PASS' if rel >= 0.8 else 'FAIL'}")
    for w, fps, _, diff, rng in rows:
        if w == 2:
            print(f"  2 workers equal to single-process within 1e-5 of the range: "
                  f"{diff / rng:.1e} -> {'PASS' if diff <= 1e-5 * rng else 'FAIL'} "
                  f"({fps:.1f} frames/s vs {fps_steady:.1f} single-process, without "
                  f"start-up)")
    if up is not None:
        print(f"  upsample peak RSS < 2 GB ({up['out_gb']:.2f} GiB output): "
              f"{up['peak_mb']:.0f} MB -> {'PASS' if up['peak_mb'] < 2048 else 'FAIL'}")
    print(f"load average at end: {load()}")
    if not args.keep:
        shutil.rmtree(out1, ignore_errors=True)
        movie.unlink(missing_ok=True)
    return 0


def run_upsample(work: Path, args) -> dict | None:
    """``neurorestore upsample`` (factor 4) on a volume written slice by slice; the output is
    a zarr store written tile by tile."""
    import tifffile

    from napari_neurorestore.core.methods.upsample import heavy as up
    from napari_neurorestore.core.methods.upsample.spec import UpsampleParams
    from napari_neurorestore.core.models import save_model
    from napari_neurorestore.core.progress import drain

    zs, ys, xs = (int(v) for v in args.upsample_shape.split(","))
    vol = work / f"volume_{zs}x{ys}x{xs}.tif"
    rng = np.random.default_rng(1)
    tifffile.imwrite(vol, data=((rng.poisson(50, (ys, xs)) + 100).astype(np.uint16)
                                for _ in range(zs)),
                     shape=(zs, ys, xs), dtype=np.uint16, metadata={"axes": "ZYX"})
    params = UpsampleParams(factor=4, steps=20, train_seconds=10, seed=0, device="cpu")
    model = drain(up.train(tifffile.imread(vol, key=range(min(zs, 32))), params))
    mpath = work / "upsample.pt"
    save_model(model, mpath, overwrite=True)
    out = work / "upsampled.zarr"
    out_gb = 4 * zs * ys * xs * 64 / GB
    tile = [] if args.upsample_tile is None else ["--tile-size", str(args.upsample_tile)]
    auto = up.auto_tile_size(model, 3)
    r = run_measured(cli("upsample", str(vol), "-o", str(out), "--model", str(mpath),
                         "--factor", "4", "-q", "--overwrite", *tile))
    voxels = zs * ys * xs * 64
    print(f"upsample x4 {zs}x{ys}x{xs} -> {out_gb:.2f} GiB float32 zarr "
          f"(tile {args.upsample_tile or f'{auto} (auto)'}): rc {r['rc']}, "
          f"{r['wall']:.0f} s, {voxels / r['wall'] / 1e6:.2f} M output voxels/s, "
          f"peak RSS {r['peak_mb']:.0f} MB; load {load()}")
    if r["rc"] != 0:
        print(r["stderr"][-2000:])
    else:
        import zarr

        z = zarr.open_array(out, mode="r")
        prog = z.attrs["neurorestore_progress"]
        plane = z[zs * 2]  # one output plane: finite, in the input's units
        print(f"  store: chunks {z.chunks}, {prog['tiles_done']}/{prog['tiles_total']} tiles "
              f"recorded; plane {zs * 2} mean {float(plane.mean()):.1f} (input mean ~150), "
              f"all finite: {bool(np.isfinite(plane).all())}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        vol.unlink(missing_ok=True)
    return {"peak_mb": r["peak_mb"], "out_gb": out_gb}


if __name__ == "__main__":
    sys.exit(main())
