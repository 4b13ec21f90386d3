"""Benchmark of sparse-axis reconstruction (IRIS) on a simulated calcium movie, or on a
real recording.

Simulation: keeps every M-th row of a simulated 600x128x128 GCaMP movie (acquired row i at
full-frame row i*M), trains on the sparse movie itself for ``--train-seconds`` with the
method's defaults (the denoising first stage is on from M=8; ``--stage-on`` runs it at
every M) and prints, against the clean
ground truth: PSNR, SSIM and ROI ΔF/F trace NRMSE (the simulator's soma labels, F0 = 20th
percentile, NRMSE = RMSE over the range of the restored trace, mean over ROIs) of ours, of
ours without the first stage (``temporal_denoise=False``, with ``--stage-off``) and of
cubic interpolation along y (Keys cubic convolution, and scipy's cubic spline), with the
fully sampled raw movie and the denoiser's restoration of it as references; the truth-free
self-check printed after training; inference frames/s at 512x512 on 2 threads; peak
memory; load average.

Real recording (``--real FILE``, a (t, y, x) TIFF): rows are dropped (every M-th kept),
restored, and scored on the rows left out against the real rows there (noisy), for ours,
cubic and the denoiser's restoration of the fully sampled movie (the ceiling), under two
labelled protocols: "raw-row" (PSNR against the noisy rows: the noise floor caps any gain)
and "excess" (each error minus the rows' noise variance, estimated truth-free from temporal
second differences as the denoiser's real protocol does; odd/even frame differences give
a second estimate).

    python benchmarks/bench_sparse.py [--train-seconds 60] [--factors 2 4 8 16]
        [--real /work/real/thunder_mouse_svoboda.tif] [--stage-off] [--stage-on]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from _common import Timer, machine, peak_rss_mb
from _trace_bound import oracle_traces
from scipy.interpolate import CubicSpline

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.io import read_tiff
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.methods.sparse import heavy as sp
from napari_neurorestore.core.methods.sparse.figures import dff, format_check, roi_dff
from napari_neurorestore.core.methods.sparse.spec import SparseParams, cubic_upsample, make_sparse
from napari_neurorestore.core.metrics import nrmse, pearson, psnr, ssim
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_calcium_movie

#: the simulator's calcium kernel (simulate.py defaults): decay and rise, in frames
SIM_TAU, SIM_RISE = 15.0, 1.5


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
    drain(sp.predict(mv[:16], model, device=device))  # warm-up (the first stage takes 15 frames)
    with Timer() as t:
        drain(sp.predict(mv, model, device=device))
    return n_frames / t.seconds


def load_line(tag):
    return f"load average {tag}: " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def train_sparse(sparse, m, secs, args, **kw):
    if getattr(args, "stage_on", False):
        kw.setdefault("temporal_denoise", "on")
    params = SparseParams(factor=m, epochs=100_000, train_seconds=secs, seed=args.seed,
                          device=args.device, **kw)
    with Timer() as t:
        res = drain(restore("sparse", sparse, params))
    return res, t.seconds


def denoised_full(movie, args):
    """The project's denoiser (its defaults) on the fully sampled movie: the reference."""
    params = DenoiseParams(epochs=100_000, train_seconds=args.train_seconds, seed=args.seed,
                           device=args.device)
    return np.asarray(drain(restore("denoise", movie.astype(np.float32), params)).data,
                      np.float32)


def run_simulation(args):
    sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size),
                                 seed=args.seed)
    clean, labels = sim.clean, sim.labels
    rng = float(np.ptp(clean))
    truth = roi_dff(clean, labels)
    print(f"data: simulated GCaMP movie {sim.raw.shape} uint16, {labels.max()} cells "
          f"(somata ~8-14 px wide); truth = the clean movie; rows kept: every M-th")
    f_raw = figures(sim.raw.astype(np.float32), clean, labels, truth, rng)
    f_den = figures(denoised_full(sim.raw, args), clean, labels, truth, rng)
    head = f"{'':44s} {'PSNR dB':>8s} {'SSIM':>6s} {'trace NRMSE':>10s} {'(max)':>8s}"
    print(head)
    print(row("reference: fully sampled raw movie", f_raw))
    print(row(f"reference: fully sampled, denoised ({args.train_seconds:.0f} s)", f_den))
    results, models = {}, {}
    for m in args.factors:
        sparse = make_sparse(sim.raw, m)
        res, secs = train_sparse(sparse, m, args.train_seconds, args)
        f_ours = figures(res.data, clean, labels, truth, rng)
        f_keys = figures(cubic_upsample(sparse, m), clean, labels, truth, rng)
        f_spl = figures(spline_upsample(sparse, m), clean, labels, truth, rng)
        info = res.model.info
        print(f"\n== M = {m}: {info['train_seconds']} s of training ({info['steps']} steps "
              f"of the network; denoising stage: {info['denoise_stage'].split(':')[0]}), "
              f"train + restore {secs:.1f} s, {load_line('now')} ==")
        print(head)
        print(row("cubic (Keys) along y", f_keys))
        print(row("cubic spline along y (scipy)", f_spl))
        print(row("ours", f_ours))
        f_off = None
        if args.stage_off:
            off, _ = train_sparse(sparse, m, args.train_seconds, args, temporal_denoise=False)
            f_off = figures(off.data, clean, labels, truth, rng)
            print(row("ours without the denoising stage", f_off))
        kept = drain(sp.predict(sparse, res.model, denoise=False))
        print(row("ours, acquired rows kept as measured", figures(kept, clean, labels, truth, rng)))
        print(trace_budget(res.data, sim.raw, clean, labels, truth, m, rng))
        print(format_check(info.get("self_check")) or "self-check: not available")
        best = max(f_keys[0], f_spl[0])
        print(f"PSNR ours - best cubic: {f_ours[0] - best:+.2f} dB; trace NRMSE ours "
              f"{100 * f_ours[2]:.2f} % vs cubic {100 * min(f_keys[2], f_spl[2]):.2f} %, raw "
              f"full {100 * f_raw[2]:.2f} %, denoised full {100 * f_den[2]:.2f} %")
        results[m] = (f_ours, f_keys, f_spl, info, f_off)
        models[m] = res.model
    print(f"\n== against M ({args.train_seconds:.0f} s of training each) ==")
    print(f"{'M':>3s} {'PSNR ours':>10s} {'cubic':>7s} {'spline':>7s} {'no stage':>9s} "
          f"{'NRMSE ours':>11s} {'cubic':>7s} {'no stage':>9s} {'r ours':>7s} {'check dB':>9s}")
    for m in sorted(results):
        fo, fk, fs, info, ff = results[m]
        chk = info.get("self_check") or {}
        print(f"{m:3d} {fo[0]:10.2f} {fk[0]:7.2f} {fs[0]:7.2f} "
              f"{'' if ff is None else f'{ff[0]:.2f}':>9s} {100 * fo[2]:9.2f} % "
              f"{100 * fk[2]:5.2f} % {'' if ff is None else f'{100 * ff[2]:.2f} %':>9s} "
              f"{fo[4]:7.3f} {chk.get('gain_db', float('nan')):+9.1f}")
    print(f"(references: raw full scan {f_raw[0]:.2f} dB / {100 * f_raw[2]:.2f} %, denoised "
          f"full scan {f_den[0]:.2f} dB / {100 * f_den[2]:.2f} %; check dB: the self-check's "
          f"estimated gain over cubic, no ground truth. At M = 8 and 16 whole somata "
          f"(8-14 px) can fall between acquired rows)")
    return models


def trace_budget(x, raw, clean, labels, truth, m, rng):
    """Where ours' ROI trace error comes from: the traces of the acquired rows alone (the
    rows the restored lines are interpolated from), cubic interpolation of ours' acquired
    rows (what the inpainting network adds over it), and three references: the raw acquired
    rows' traces smoothed in time by the Gaussian the truth picks (the best such linear
    filter of the photons acquired), the same deconvolved with the simulator's own model
    (:mod:`_trace_bound`: the floor these photons allow a trace) and cubic interpolation
    of the clean movie."""
    from scipy.ndimage import gaussian_filter1d

    acq = np.zeros(labels.shape[0], bool)
    acq[::m] = True
    lab = np.where(acq[:, None], labels, 0)
    ok = [i for i in range(1, labels.max() + 1) if (lab == i).any()]
    lab = np.where(np.isin(lab, ok), lab, 0)
    tr = truth[[i - 1 for i in ok]]

    def score(d, ref=tr):
        return 100 * float(np.mean([nrmse(a, b) for a, b in zip(d, ref, strict=True)]))

    x = np.asarray(x)[:, :labels.shape[0]]
    f = np.stack([raw.reshape(len(raw), -1)[:, lab.ravel() == i].astype(np.float64).mean(1)
                  for i in ok])
    smooth = min(score(dff(gaussian_filter1d(f, s, axis=1))) for s in (0.5, 1, 1.5, 2, 3))
    bound, mult = oracle_traces(f, SIM_TAU, SIM_RISE, lambda g: score(dff(g)))
    cub = cubic_upsample(np.asarray(x)[:, ::m], m)[:, :labels.shape[0]]
    clean_cubic = cubic_upsample(make_sparse(clean, m), m)[:, :labels.shape[0]]
    return (f"trace error budget (NRMSE; {len(ok)} of {labels.max()} ROIs cross an acquired "
            f"row): ours on the acquired rows only {score(roi_dff(x, lab)):.2f} %, raw acquired "
            f"rows {score(dff(f)):.2f} % (smoothed in time, sigma tuned with the truth: "
            f"{smooth:.2f} %; deconvolved with the simulator's own kernel and drift, sparsity "
            f"{mult:g} x noise picked with the truth, the oracle floor of these photons: "
            f"{bound:.2f} %); cubic of ours' acquired rows {figures(cub, clean, labels, truth, rng)[2] * 100:.2f} % "
            f"(ours {figures(x, clean, labels, truth, rng)[2] * 100:.2f} %); cubic of the clean "
            f"movie {figures(clean_cubic, clean, labels, truth, rng)[2] * 100:.2f} %")


def left_out_figures(x, movie, m, noise_var):
    """MSE on the rows left out (not i*m) against the real rows, in dB of the rows' range."""
    rows = np.ones(movie.shape[1], bool)
    rows[::m] = False
    rows[(movie.shape[1] - 1) // m * m + 1:] = False  # past the last acquired row: extrapolated
    ref = movie[:, rows]
    mse = float(np.mean((x[:, :movie.shape[1]][:, rows] - ref) ** 2))
    return mse, max(mse - noise_var, 1e-12)


def noise_floors(movie):
    """Two truth-free estimates of the noise variance of the real rows (both include some
    signal change between frames, so both err high): temporal second differences,
    var(x_t - (x_t-1 + x_t+1)/2) / 1.5 (the denoiser's real protocol), and odd/even frame
    differences, var(x_2t+1 - x_2t) / 2."""
    d2 = movie[1:-1] - 0.5 * (movie[:-2] + movie[2:])
    n = len(movie) // 2
    d1 = movie[1:2 * n:2] - movie[0:2 * n:2]
    return float(np.mean(d2**2) / 1.5), float(np.mean(d1**2) / 2)


def run_real(args):
    movie = np.asarray(read_tiff(args.real, lazy=False)[0], np.float32)
    if movie.ndim != 3:
        raise SystemExit(f"--real takes a (t, y, x) movie, got shape {movie.shape}")
    noise_var, noise_oe = noise_floors(movie)
    rng = float(np.percentile(movie, 99.9) - np.percentile(movie, 0.1))
    print(f"data: {args.real} {movie.shape}; scored on the rows left out against the real "
          f"(noisy) rows there.\nnoise floor (variance of the rows' noise, truth-free): "
          f"{noise_var:.1f} from temporal second differences (used below), {noise_oe:.1f} "
          f"from odd/even frame differences")
    den = denoised_full(movie, args)
    models = {}

    def db(e):
        return 10 * np.log10(rng**2 / e)

    print("raw-row protocol: PSNR of the left-out rows against the raw rows (every method "
          "pays their noise: the gain is capped by the noise floor)\nexcess protocol "
          "(the denoiser's real protocol): error minus the noise floor, the error against "
          "the unknown clean rows; 'excess ratio' = ours / cubic")
    print(f"{'M':>3s} {'ours dB':>8s} {'cubic dB':>9s} {'gain':>6s} {'ceiling':>8s} "
          f"{'| excess: gain':>15s} {'ratio':>6s} {'ceiling':>8s}  steps  check")
    for m in args.factors:
        sparse = make_sparse(movie, m)
        res, _ = train_sparse(sparse, m, args.train_seconds, args)
        fo = left_out_figures(res.data, movie, m, noise_var)
        fc = left_out_figures(cubic_upsample(sparse, m), movie, m, noise_var)
        fd = left_out_figures(den, movie, m, noise_var)
        chk = res.model.info.get("self_check") or {}
        print(f"{m:3d} {db(fo[0]):8.2f} {db(fc[0]):9.2f} {db(fo[0]) - db(fc[0]):+6.2f} "
              f"{db(fd[0]) - db(fc[0]):+8.2f} {db(fo[1]) - db(fc[1]):+15.2f} "
              f"{fo[1] / fc[1]:6.3f} {db(fd[1]) - db(fc[1]):+8.2f}  "
              f"{res.model.info['steps']:5d}  {chk.get('gain_db', float('nan')):+.1f} dB")
        fo2 = left_out_figures(res.data, movie, m, noise_oe)
        fc2 = left_out_figures(cubic_upsample(sparse, m), movie, m, noise_oe)
        # the floor both estimates err above: the excess gain stays >= +3 dB (ours' excess
        # at most half cubic's) for any true floor above 2 * ours - cubic
        need = (2 * fo[0] - fc[0]) / noise_var
        print(f"    (ceiling: the denoiser's restoration of the fully sampled movie; with the "
              f"odd/even noise floor the excess gain is {db(fo2[1]) - db(fc2[1]):+.2f} dB; it "
              f"stays >= +3 dB for any true noise floor above {100 * need:.0f} % of the "
              f"estimate)")
        print("    " + (format_check(chk) or "self-check: not available"))
        if args.stage_off:
            off, _ = train_sparse(sparse, m, args.train_seconds, args, temporal_denoise=False)
            ff = left_out_figures(off.data, movie, m, noise_var)
            print(f"    without the denoising stage: raw-row gain {db(ff[0]) - db(fc[0]):+.2f}"
                  f" dB, excess gain {db(ff[1]) - db(fc[1]):+.2f} dB")
        models[m] = res.model
    return models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--factors", type=int, nargs="*", default=[2, 4, 8, 16])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", default=None, help="a (t, y, x) TIFF: score on its rows left out")
    ap.add_argument("--stage-off", action="store_true",
                    help="also train without the denoising stage (temporal_denoise=False)")
    ap.add_argument("--stage-on", action="store_true",
                    help="'ours' always runs the denoising stage (default: the method's "
                         "'auto', on from M=8)")
    ap.add_argument("--no-fps", action="store_true", help="skip the 512x512 speed figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    print(load_line("at start") + f" (on {os.cpu_count()} cores; the CPU is shared, timings "
          "are pessimistic)")
    models = run_real(args) if args.real else run_simulation(args)
    print()
    for m in sorted(models) if not args.no_fps else []:
        fps = fps_512(models[m], m, device=args.device)
        print(f"inference 512x512 output frames, M={m:2d}, {torch.get_num_threads()} threads: "
              f"{fps:6.1f} frames/s (bar: > 30) {'PASS' if fps > 30 else 'MISS'}")
    print(load_line("at end"))
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
