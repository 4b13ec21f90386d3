"""Benchmark of the self-supervised denoiser (FAST-style) on a simulated calcium movie.

Prints: PSNR/SSIM of raw, of the best Gaussian filter (spatial and temporal sigma tuned
against the ground truth), and of ours; mean Pearson r of ROI ΔF/F traces with the truth;
training seconds; inference frames/s at 128x128 and 512x512; peak memory.

    python benchmarks/bench_denoise.py [--train-seconds 60] [--frames 600] [--size 128]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from _common import Timer, machine, peak_rss_mb
from scipy.ndimage import gaussian_filter

from napari_neurorestore.core.methods import denoise as dn
from napari_neurorestore.core.metrics import pearson, psnr, ssim
from napari_neurorestore.core.nets import count_parameters
from napari_neurorestore.core.params import DenoiseParams
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_calcium_movie
from napari_neurorestore.core.traces import (
    TraceParams,
    compute_f0,
    delta_f_over_f,
    extract_traces,
    rois_from_labels,
)


def roi_dff(movie: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ΔF/F of each labelled ROI (F0 = 20th percentile of its trace), via core.traces."""
    rois = rois_from_labels(labels)
    f = extract_traces(movie, rois)
    return delta_f_over_f(f, compute_f0(f, TraceParams()))


def mean_trace_r(movie, labels, truth_dff) -> float:
    d = roi_dff(movie, labels)
    return float(np.mean([pearson(a, b) for a, b in zip(d, truth_dff, strict=True)]))


def best_gaussian(raw, clean, rng):
    best = (-np.inf, None, None)
    for st, sxy in itertools.product([0, 0.5, 1, 1.5, 2, 3, 4], [0, 0.5, 0.75, 1, 1.5, 2]):
        g = gaussian_filter(raw, (st, sxy, sxy))
        p = psnr(g, clean, rng)
        if p > best[0]:
            best = (p, (st, sxy), g)
    return best


def inference_fps(model, shape, n_frames, batch_size=None):
    movie = np.random.default_rng(0).poisson(5.0, size=(n_frames, *shape)).astype(np.uint16)
    drain(dn.predict(movie[: 16], model, batch_size=batch_size))  # warm-up
    with Timer() as t:
        drain(dn.predict(movie, model, batch_size=batch_size))
    return n_frames / t.seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=DenoiseParams().width)
    ap.add_argument("--window", type=int, default=DenoiseParams().window)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size), seed=args.seed)
    raw = sim.raw.astype(np.float32)
    clean = sim.clean
    rng = float(np.ptp(clean))
    inside = sim.labels > 0
    photons = (clean[:, inside] - sim.offset) / sim.gain
    print(f"data: simulated GCaMP movie {sim.raw.shape} uint16, {sim.labels.max()} cells, "
          f"{photons.mean():.1f} photons/soma pixel on average (95th pct {np.percentile(photons, 95):.1f})")
    truth_dff = roi_dff(clean, sim.labels)

    g_psnr, g_sig, g = best_gaussian(raw, clean, rng)
    params = DenoiseParams(epochs=100000, train_seconds=args.train_seconds, seed=args.seed,
                           width=args.width, window=args.window, device=args.device)
    with Timer() as t_total:
        res = drain(dn.run(sim.raw, params))
    ours = res.data
    info = res.model.info
    net = dn.build_net(params)

    rows = [("raw", raw), (f"gaussian sigma_t={g_sig[0]} sigma_xy={g_sig[1]} (tuned on truth)", g),
            ("ours", ours)]
    print(f"\n{'':52s} {'PSNR dB':>8s} {'SSIM':>6s} {'trace r':>8s}")
    for name, x in rows:
        print(f"{name:52s} {psnr(x, clean, rng):8.2f} {ssim(x, clean, rng):6.3f} "
              f"{mean_trace_r(x, sim.labels, truth_dff):8.3f}")
    gain = psnr(ours, clean, rng) - g_psnr
    print(f"\nours - best Gaussian: {gain:+.2f} dB PSNR (bar: >= +1 dB)")
    r_raw = mean_trace_r(raw, sim.labels, truth_dff)
    r_ours = mean_trace_r(ours, sim.labels, truth_dff)
    print(f"trace r ours {r_ours:.3f} vs raw {r_raw:.3f} (bar: ours >= raw)")
    print(f"intensity units kept: mean raw {raw.mean():.2f}, ours {ours.mean():.2f}, truth {clean.mean():.2f}")
    print(f"network: {count_parameters(net)} parameters, window {params.window}, width {params.width}")
    print(f"training: {info['train_seconds']} s, {info['steps']} steps; "
          f"train + restore {t_total.seconds:.1f} s")
    for shape, n in (((128, 128), 400), ((512, 512), 120)):
        fps = inference_fps(res.model, shape, n)
        print(f"inference {shape[0]}x{shape[1]}: {fps:7.1f} frames/s"
              + ("  (bar: > 30 frames/s)" if shape[0] == 512 else ""))
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
