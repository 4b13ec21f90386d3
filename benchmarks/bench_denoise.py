"""Benchmark of the self-supervised denoiser over many acquisition regimes and on real data.

Simulated regimes (``_regimes.py``, a generator written apart from ``core.simulate``):
photons per pixel, frame rate, GCaMP6f/6s kinetics, motion jitter, spatially correlated
noise, short and long movies, 512x512 frames. For each: PSNR and ROI ΔF/F Pearson r with
the truth for raw, the best Gaussian filter (temporal and spatial sigma tuned on the truth:
an oracle) and ours after ``--train-seconds`` of training, plus our own truth-free
self-check. Real recordings (``--real FILE.tif``) are scored without truth: the even
frames are restored and compared with the odd frames (independent noise, nearly the same
signal), for ours and for a Gaussian tuned on that same criterion. Finally inference
frames/s at 512x512 and peak memory. Prints the load average: run it alone.

    python benchmarks/bench_denoise.py [--regimes base "corr 0.3" ...] [--train-seconds 60]
                                       [--real /path/movie.tif ...] [--no-centre]
"""

from __future__ import annotations

import argparse
import itertools
import os

import numpy as np
from _common import Timer, machine, peak_rss_mb
from _regimes import REGIMES, make_movie, noise_lag1
from scipy.ndimage import gaussian_filter

from napari_neurorestore.core.methods import denoise as dn
from napari_neurorestore.core.methods.denoise_centre import format_check
from napari_neurorestore.core.methods.denoise_spec import DenoiseParams
from napari_neurorestore.core.metrics import pearson, psnr
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.traces import (
    TraceParams,
    compute_f0,
    delta_f_over_f,
    extract_traces,
    rois_from_labels,
)

SIGMAS_T = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
SIGMAS_XY = [0, 0.5, 0.75, 1, 1.5, 2]


def mean_trace_r(movie, labels, truth) -> float:
    rois = rois_from_labels(labels)
    f = extract_traces(movie, rois)
    d = delta_f_over_f(f, compute_f0(f, TraceParams()))
    return float(np.mean([pearson(a, b) for a, b in zip(d, truth, strict=True)]))


def best_gaussian(raw, score):
    """The Gaussian filter with the best ``score`` (higher is better) over the grid."""
    best = (-np.inf, None, None)
    for st, sxy in itertools.product(SIGMAS_T, SIGMAS_XY):
        g = gaussian_filter(raw, (st, sxy, sxy))
        s = score(g)
        if s > best[0]:
            best = (s, (st, sxy), g)
    return best


def load():
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def regime_row(reg, seconds, centre):
    mv = make_movie(reg)
    raw = mv.raw.astype(np.float32)
    rng = float(np.ptp(mv.clean))
    rois = rois_from_labels(mv.labels)
    f = extract_traces(mv.clean, rois)
    truth = delta_f_over_f(f, compute_f0(f, TraceParams()))
    g_psnr, g_sig, g = best_gaussian(raw, lambda x: psnr(x, mv.clean, rng))
    params = DenoiseParams(train_seconds=seconds, seed=reg.seed, centre_correction=centre)
    res = drain(dn.run(mv.raw, params))
    ours = res.data
    p_ours = psnr(ours, mv.clean, rng)
    cy, cx = noise_lag1(mv.raw)
    row = dict(regime=reg.name, shape="x".join(map(str, raw.shape)), lag1=f"{cy:.2f}/{cx:.2f}",
               raw=psnr(raw, mv.clean, rng), gauss=g_psnr, gsig=f"{g_sig[0]}/{g_sig[1]}",
               ours=p_ours, gain=p_ours - g_psnr, r_raw=mean_trace_r(raw, mv.labels, truth),
               r_gauss=mean_trace_r(g, mv.labels, truth), r_ours=mean_trace_r(ours, mv.labels, truth),
               steps=res.model.info["steps"], threads=res.model.info.get("threads"),
               check=res.model.info.get("self_check", {}).get("gain_db", float("nan")))
    return row


def real_row(path, seconds, centre):
    import tifffile

    movie = tifffile.imread(path).astype(np.float32)
    even, odd = movie[0::2], movie[1::2]
    n = min(len(even), len(odd))
    even, odd = even[:n], odd[:n]
    mse = lambda x: float(((x - odd) ** 2).mean())  # noqa: E731
    g_score, g_sig, g = best_gaussian(even, lambda x: -mse(x))
    res = drain(dn.run(even, DenoiseParams(train_seconds=seconds, seed=0, centre_correction=centre)))
    ours = res.data
    # the noise floor: the variance of odd-frame noise, from the odd frames' own second
    # temporal differences (1.5 x noise variance plus a little signal curvature)
    d = odd[1:-1] - 0.5 * (odd[:-2] + odd[2:])
    floor = float(d.var() / 1.5)
    ex_g, ex_o = -g_score - floor, mse(ours) - floor
    return dict(name=os.path.basename(path), shape="x".join(map(str, even.shape)),
                raw=mse(even), gauss=-g_score, gsig=f"{g_sig[0]}/{g_sig[1]}", ours=mse(ours),
                ratio=mse(ours) / -g_score, excess=ex_o / ex_g if ex_g > 0 else float("nan"),
                check=format_check(res.model.info.get("self_check")))


def inference_fps(shape=(512, 512), n=120):
    movie = np.random.default_rng(0).poisson(5.0, size=(40, *shape)).astype(np.uint16)
    model = drain(dn.train(movie, DenoiseParams(epochs=1, patch_size=32, batch_size=2)))
    movie = np.random.default_rng(1).poisson(5.0, size=(n, *shape)).astype(np.uint16)
    drain(dn.predict(movie[:16], model))  # warm-up
    with Timer() as t:
        drain(dn.predict(movie, model))
    return n / t.seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regimes", nargs="*", default=[r.name for r in REGIMES])
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--real", nargs="*", default=[])
    ap.add_argument("--no-centre", action="store_true", help="temporal network only")
    args = ap.parse_args()
    centre = not args.no_centre
    print(f"machine: {machine()}; {load()}")
    print(f"denoiser: {DenoiseParams(train_seconds=args.train_seconds, centre_correction=centre)}")
    by_name = {r.name: r for r in REGIMES}
    print(f"\n{'regime':14s} {'shape':12s} {'lag1 y/x':9s} {'raw':>6s} {'gauss':>6s} {'(st/sxy)':9s} "
          f"{'ours':>6s} {'gain':>6s} {'self-chk':>8s} | {'r raw':>6s} {'r gau':>6s} {'r ours':>6s} "
          f"{'steps':>6s} thr")
    for name in args.regimes:
        r = regime_row(by_name[name], args.train_seconds, centre)
        print(f"{r['regime']:14s} {r['shape']:12s} {r['lag1']:9s} {r['raw']:6.2f} {r['gauss']:6.2f} "
              f"{r['gsig']:9s} {r['ours']:6.2f} {r['gain']:+6.2f} {r['check']:+8.2f} | "
              f"{r['r_raw']:6.3f} {r['r_gauss']:6.3f} {r['r_ours']:6.3f} {r['steps']:6d} "
              f"{r['threads']}   [{load()}]", flush=True)
    for path in args.real:
        r = real_row(path, args.train_seconds, centre)
        print(f"\nreal {r['name']} (even frames {r['shape']}, scored against the odd frames):"
              f" MSE raw {r['raw']:.2f}, best Gaussian {r['gauss']:.2f} ({r['gsig']}), ours "
              f"{r['ours']:.2f}: ratio {r['ratio']:.3f}; excess error over the noise floor, "
              f"ours / Gaussian: {r['excess']:.2f}\n  {r['check']}  [{load()}]", flush=True)
    print(f"\ninference 512x512: {inference_fps():.1f} frames/s (bar: >= 30)  [{load()}]")
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
