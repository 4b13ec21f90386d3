"""Responsiveness of ROI traces: a 2000 x 512 x 512 uint16 movie (~1 GB) and 50 ellipse ROIs.

Measures what the ROI traces dock does on each edit: rasterise the Shapes (cached per shape),
build the annuli (cached per ROI), extract the traces that are not cached yet and compute
F0/ΔF/F and the fidelity rows, for

* a full (cold) computation of all traces, and
* the recomputation after moving one ROI (repeated for several ROIs; median and worst),

for the reference alone and with one compare movie of the same size. Prints the figures,
the machine's CPU count and load, and the peak memory.

    python benchmarks/bench_traces.py [--frames 2000] [--size 512] [--rois 50] [--memmap DIR]

``--memmap DIR`` writes the movie to a TIFF in DIR and reads it memory-mapped instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from napari_neurorestore.core import traces as tr  # noqa: E402


def make_movie(n_frames: int, size: int, centres: np.ndarray, radius: float, seed: int) -> np.ndarray:
    """Noisy background plus slow transients in the ROIs (uint16), built in chunks."""
    rng = np.random.default_rng(seed)
    movie = np.empty((n_frames, size, size), np.uint16)
    chunk = 100
    yy, xx = np.mgrid[:size, :size]
    for t0 in range(0, n_frames, chunk):
        t1 = min(n_frames, t0 + chunk)
        movie[t0:t1] = rng.integers(95, 135, size=(t1 - t0, size, size), dtype=np.uint16)
    for cy, cx in centres:
        sl = (slice(int(cy - radius), int(cy + radius) + 1), slice(int(cx - radius), int(cx + radius) + 1))
        m = ((yy[sl] - cy) ** 2 + (xx[sl] - cx) ** 2) <= radius**2
        spikes = (rng.random(n_frames) < 0.01) * rng.uniform(20, 60, n_frames)
        trace = np.convolve(spikes, np.exp(-np.arange(60) / 15.0))[:n_frames].astype(np.uint16)
        movie[:, sl[0], sl[1]] += trace[:, None, None] * m[None]
    return movie


def ellipse_corners(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return np.array([[cy - ry, cx - rx], [cy - ry, cx + rx], [cy + ry, cx + rx], [cy + ry, cx - rx]])


def refresh(movies, names, shapes, cache, params):
    """One refresh of the dock: ROIs from the shapes, annuli, traces, ΔF/F, fidelity."""
    spatial = movies[0].shape[1:]
    rois, msgs = tr.rois_from_shapes(shapes, "ellipse", spatial, masks=cache.masks)
    bg = tr.neuropil_rois(rois, params.neuropil_inner, params.neuropil_outer, masks=cache.masks)
    res = tr.compute_traces(movies[0], rois, movies[1:], params=params, names=names,
                            background_rois=[bg] * len(movies), cache=cache)
    res.fidelity()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rois", type=int, default=50)
    ap.add_argument("--moves", type=int, default=7, help="ROIs moved one after the other")
    ap.add_argument("--memmap", default=None, metavar="DIR")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    radius = 8.0
    centres = []
    while len(centres) < args.rois:
        c = rng.uniform(20, args.size - 20, 2)
        if all(np.hypot(*(c - d)) > 2 * radius + 12 for d in centres):
            centres.append(c)
    centres = np.array(centres)

    t = time.perf_counter()
    ref = make_movie(args.frames, args.size, centres, radius, 1)
    cmp_ = make_movie(args.frames, args.size, centres, radius, 2)
    t_make = time.perf_counter() - t
    if args.memmap:
        import tifffile

        out = []
        for name, m in (("ref", ref), ("cmp", cmp_)):
            p = Path(args.memmap) / f"bench_traces_{name}.tif"
            tifffile.imwrite(p, m)
            out.append(tifffile.memmap(p, mode="r"))
        ref, cmp_ = out
    print(f"movie {ref.shape} {ref.dtype}, {ref.nbytes / 2**30:.2f} GiB each "
          f"({'memmap' if args.memmap else 'in memory'}); made in {t_make:.1f} s")
    load = os.getloadavg()
    print(f"CPUs: {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))}), "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")

    shapes0 = [ellipse_corners(cy, cx, radius, radius * 1.2) for cy, cx in centres]
    params = tr.TraceParams(fps=30.0)  # default F0: 20th percentile
    for label, movies, names in (("reference only", [ref], ["raw"]),
                                 ("reference + 1 compare", [ref, cmp_], ["raw", "restored"])):
        cache = tr.TraceCache()
        shapes = [s.copy() for s in shapes0]
        t = time.perf_counter()
        res = refresh(movies, names, shapes, cache, params)
        t_full = time.perf_counter() - t
        n_full = cache.extracted
        times, counts = [], []
        for k in range(args.moves):
            i = (k * 7) % args.rois
            shapes[i] = shapes[i] + np.array([3.0, -2.0])  # drag ROI i
            n0 = cache.extracted
            t = time.perf_counter()
            res2 = refresh(movies, names, shapes, cache, params)
            times.append(time.perf_counter() - t)
            counts.append(cache.extracted - n0)
            same = [j for j in range(args.rois) if j != i]
            assert np.array_equal(res2.reference.f[same], res.reference.f[same])
            res = res2
        print(f"[{label}] full computation of {args.rois} ROIs: {t_full:.2f} s "
              f"({n_full} traces incl. annuli)")
        print(f"[{label}] after moving one ROI: median {statistics.median(times) * 1000:.0f} ms, "
              f"worst {max(times) * 1000:.0f} ms over {len(times)} moves "
              f"(traces re-extracted per move: {min(counts)}-{max(counts)})")
        # sliding-window F0 (60 s at 30 fps = 1800 frames): full and after one move
        sp = tr.TraceParams(fps=30.0, f0_mode="sliding", f0_window=60.0)
        t = time.perf_counter()
        refresh(movies, names, shapes, cache, sp)
        t_sl = time.perf_counter() - t
        shapes[1] = shapes[1] + np.array([-2.0, 1.0])
        t = time.perf_counter()
        refresh(movies, names, shapes, cache, sp)
        t_sl1 = time.perf_counter() - t
        print(f"[{label}] sliding-window F0 (60 s): switching mode {t_sl:.2f} s, "
              f"then moving one ROI {t_sl1 * 1000:.0f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory: {peak:.2f} GiB (the movies themselves: "
          f"{2 * ref.nbytes / 2**30:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
