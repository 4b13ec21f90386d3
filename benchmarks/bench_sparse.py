"""Benchmark of sparse-axis reconstruction (IRIS) on a simulated calcium movie.

Keeps every M-th row of a simulated 600x128x128 GCaMP movie (acquired row i at full-frame
row i*M), trains on the sparse movie itself for ``--train-seconds`` and prints, against
the clean ground truth: PSNR, SSIM and ROI ΔF/F trace NRMSE (the simulator's soma labels,
F0 = 20th percentile, NRMSE = RMSE over the range of the restored trace, mean over ROIs)
of ours and of cubic interpolation along y (Keys cubic convolution, and scipy's cubic
spline); then the same against M = 2, 4, 8, 16; inference frames/s at 512x512 on 2
threads; peak memory.

    python benchmarks/bench_sparse.py [--train-seconds 60] [--factors 2 4 8 16]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from _common import Timer, machine, peak_rss_mb
from scipy.interpolate import CubicSpline

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.sparse import heavy as sp
from napari_neurorestore.core.methods.sparse.figures import roi_dff
from napari_neurorestore.core.methods.sparse.spec import SparseParams, cubic_upsample, make_sparse
from napari_neurorestore.core.metrics import nrmse, pearson, psnr, ssim
from napari_neurorestore.core.nets import count_parameters
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_calcium_movie


def spline_upsample(sparse: np.ndarray, m: int) -> np.ndarray:
    """scipy's not-a-knot cubic spline along y through rows at i*m."""
    n = sparse.shape[1]
    cs = CubicSpline(np.arange(n) * m, sparse.astype(np.float64), axis=1)
    return cs(np.arange(n * m)).astype(np.float32)


def figures(x, clean, labels, truth_dff, rng):
    d = roi_dff(x, labels)
    t = [nrmse(a, b) for a, b in zip(d, truth_dff, strict=True)]
    r = [pearson(a, b) for a, b in zip(d, truth_dff, strict=True)]
    return (psnr(x, clean, rng), ssim(x, clean, rng), float(np.mean(t)), float(np.max(t)),
            float(np.mean(r)))


def row(name, f):
    return f"{name:44s} {f[0]:8.2f} {f[1]:6.3f} {100 * f[2]:8.2f} % {100 * f[3]:7.2f} %"


def fps_512(model, m, n_frames=48, device="cpu"):
    mv = np.random.default_rng(0).poisson(5.0, size=(n_frames, 512 // m, 512)).astype(np.uint16)
    drain(sp.predict(mv[:8], model, device=device))  # warm-up
    with Timer() as t:
        drain(sp.predict(mv, model, device=device))
    return n_frames / t.seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--curve-seconds", type=float, default=None,
                    help="training seconds per factor of the curve (default: --train-seconds)")
    ap.add_argument("--factors", type=int, nargs="*", default=[2, 4, 8, 16])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    curve_s = args.curve_seconds or args.train_seconds

    print(f"machine: {machine()}")
    print("load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg())
          + f" (on {os.cpu_count()} cores; the CPU is shared, timings are pessimistic)")
    sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size),
                                 seed=args.seed)
    clean, labels = sim.clean, sim.labels
    rng = float(np.ptp(clean))
    truth = roi_dff(clean, labels)
    print(f"data: simulated GCaMP movie {sim.raw.shape} uint16, {labels.max()} cells "
          f"(somata ~8-14 px wide); truth = the clean movie; rows kept: every M-th")
    full_raw = figures(sim.raw.astype(np.float32), clean, labels, truth, rng)
    print(f"for scale: the fully sampled noisy movie scores PSNR {full_raw[0]:.2f} dB, "
          f"trace NRMSE {100 * full_raw[2]:.2f} %")

    results, models = {}, {}
    head = f"{'':44s} {'PSNR dB':>8s} {'SSIM':>6s} {'trace NRMSE':>10s} {'(max)':>8s}"
    for m in [4] + [f for f in args.factors if f != 4]:
        secs = args.train_seconds if m == 4 else curve_s
        sparse = make_sparse(sim.raw, m)
        params = SparseParams(factor=m, epochs=100_000, train_seconds=secs, seed=args.seed,
                              device=args.device)
        with Timer() as t_total:
            res = drain(restore("sparse", sparse, params))
        ours = res.data
        keys = cubic_upsample(sparse, m)
        spline = spline_upsample(sparse, m)
        f_ours = figures(ours, clean, labels, truth, rng)
        f_keys = figures(keys, clean, labels, truth, rng)
        f_spl = figures(spline, clean, labels, truth, rng)
        best = f_keys if f_keys[0] >= f_spl[0] else f_spl
        results[m] = (f_ours, f_keys, f_spl, res.model.info)
        models[m] = res.model
        if m == 4:
            info = res.model.info
            print(f"\n== M = 4, {info['train_seconds']} s of training ({info['steps']} steps, "
                  f"weights of step {info['best_step']} kept by held-out validation), "
                  f"train + restore {t_total.seconds:.1f} s ==")
            print(head)
            print(row("cubic (Keys) along y", f_keys))
            print(row("cubic spline along y (scipy)", f_spl))
            print(row("ours", f_ours))
            kept = drain(sp.predict(sparse, res.model, denoise=False))
            print(row("ours, acquired rows kept as measured", figures(kept, clean, labels, truth, rng)))
            phase = drain(sp.predict(sparse, res.model, geometry="phase"))
            print(row("ours, x phases reconstructed separately", figures(phase, clean, labels, truth, rng)))
            gain = f_ours[0] - best[0]
            print(f"\nPSNR ours - best cubic: {gain:+.2f} dB (bar: >= +1 dB) "
                  f"{'PASS' if gain >= 1 else 'MISS'}")
            ok = f_ours[2] <= 0.05 and f_ours[2] < min(f_keys[2], f_spl[2])
            print(f"trace NRMSE ours {100 * f_ours[2]:.2f} % vs cubic "
                  f"{100 * min(f_keys[2], f_spl[2]):.2f} % (bar: <= 5 % and below cubic) "
                  f"{'PASS' if ok else 'MISS'}")
            d = ours[:, ::4] - sparse
            print(f"acquired rows: mean(out - measured) {d.mean():+.3f} ADU, RMS {d.std():.2f} ADU "
                  f"(noise RMS of the measured rows vs truth "
                  f"{np.std(sparse - clean[:, ::4]):.2f} ADU)")
            net = sp.build_net(params, params.context)
            print(f"network: {count_parameters(net)} parameters, width {params.width}, "
                  f"context {params.context}")

    print(f"\n== against M ({curve_s:.0f} s of training each; M=4 from above) ==")
    print(f"{'M':>3s} {'PSNR ours':>10s} {'cubic':>7s} {'spline':>7s} {'SSIM ours':>10s} "
          f"{'cubic':>6s} {'NRMSE ours':>11s} {'cubic':>7s} {'spline':>7s} {'r ours':>7s} "
          f"{'cubic':>6s} {'steps':>6s}")
    for m in sorted(results):
        fo, fk, fs, info = results[m]
        print(f"{m:3d} {fo[0]:10.2f} {fk[0]:7.2f} {fs[0]:7.2f} {fo[1]:10.3f} {fk[1]:6.3f} "
              f"{100 * fo[2]:9.2f} % {100 * fk[2]:5.2f} % {100 * fs[2]:5.2f} % {fo[4]:7.3f} "
              f"{fk[4]:6.3f} {info['steps']:6d}")
    print("(r: mean Pearson r of ROI ΔF/F with the truth. At M = 8 and 16 whole somata "
          "(8-14 px) can fall between acquired rows)")

    print()
    for m in sorted(models):
        fps = fps_512(models[m], m, device=args.device)
        print(f"inference 512x512 output frames, M={m:2d}, {torch.get_num_threads()} threads: "
              f"{fps:6.1f} frames/s (bar: > 30) {'PASS' if fps > 30 else 'MISS'}")
    print("load average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
