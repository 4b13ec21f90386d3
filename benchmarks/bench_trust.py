"""Benchmark of the trust checks (issue 9) on simulated movies with ground truth.

Prints:
1. the noise model against the simulated gain and offset for several cameras/PMT settings
   (bars: gain within 10 %, offset within 5 % of the data range), movies and a 3-D volume;
2. every figure and the flags of ``core.trust.assess`` for six restorations of the same
   noisy movie: the clean truth (bar: no flag), the raw movie itself (bar: flagged as
   removing nothing), an over-smoothing Gaussian (sigma_t = 6 frames, sigma_xy = 2 px; bar:
   flagged), halved transients (F0 + 0.5 dF; bar: flagged), the best Gaussian tuned on the
   truth (sigma_t = 3, sigma_xy = 0.75) and the plugin's own denoiser;
3. the time and peak memory of one assessment.

    python benchmarks/bench_trust.py [--frames 400] [--size 128] [--train-seconds 60] [--seeds 0 1]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import Timer, machine, peak_rss_mb
from scipy.ndimage import gaussian_filter

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_calcium_movie
from napari_neurorestore.core.trust import assess, estimate_noise

STRUCTURAL = {"residual_structure", "residual_autocorrelation", "signal_correlation",
              "signal_removed", "flattened_transients", "intensity_shift"}


def noise_models(frames: int, size: int) -> bool:
    print("\n== noise model (gain within 10 %, offset within 5 % of the data range)")
    print(f"{'data':34s} {'gain':>14s} {'err':>7s} {'offset':>16s} {'err/range':>9s}  bar")
    ok_all = True
    settings = [(2.0, 100.0, 1.5), (5.0, 500.0, 3.0), (1.0, 20.0, 1.0), (10.0, 1000.0, 5.0),
                (0.5, 50.0, 0.5), (20.0, 200.0, 10.0), (2.0, 100.0, 8.0), (0.5, 50.0, 2.0),
                (1.0, 100.0, 5.0)]  # the last: strong read noise, skewness near its limit
    for g, o, r in settings:
        s = simulate_calcium_movie(n_frames=min(frames, 300), shape=(size, size), gain=g,
                                   offset=o, read_noise=r, seed=7)
        nm = estimate_noise(s.raw)
        rng = float(s.raw.max()) - float(s.raw.min())
        eg, eo = nm.gain / g - 1, (nm.offset - o) / rng
        ok = abs(eg) < 0.10 and abs(eo) < 0.05
        ok_all &= ok
        print(f"movie g={g:<4} o={o:<6} read={r:<4}      {nm.gain:7.3f} vs {g:<5} {100 * eg:+6.1f}% "
              f"{nm.offset:8.1f} vs {o:<6} {100 * eo:+8.2f}%  {'PASS' if ok else 'FAIL'}"
              f"  read var {nm.read_var:.3g} vs {r * r:.3g}")
    # a volume / single image: spatial differences
    rng_ = np.random.default_rng(3)
    yy, xx = np.mgrid[0:size * 2, 0:size * 2]
    blobs = sum(np.exp(-((yy - rng_.uniform(0, 2 * size)) ** 2 + (xx - rng_.uniform(0, 2 * size)) ** 2)
                       / (2 * rng_.uniform(3, 8) ** 2)) for _ in range(40))
    photons = 2 + 20 * blobs / blobs.max()
    for g, o in [(3.0, 50.0), (1.5, 300.0)]:
        img = o + g * rng_.poisson(np.broadcast_to(photons, (8, *photons.shape)))
        nm = estimate_noise(img, temporal=False)
        rng = float(np.ptp(img))
        eg, eo = nm.gain / g - 1, (nm.offset - o) / rng
        ok = abs(eg) < 0.10 and abs(eo) < 0.05
        ok_all &= ok
        print(f"volume (spatial) g={g:<4} o={o:<6}        {nm.gain:7.3f} vs {g:<5} {100 * eg:+6.1f}% "
              f"{nm.offset:8.1f} vs {o:<6} {100 * eo:+8.2f}%  {'PASS' if ok else 'FAIL'}")
    return ok_all


def fmt(v) -> str:
    if v is None:
        return "   -  "
    return f"{v:6.3f}" if abs(v) < 100 else f"{v:6.0f}"


def cases_for(seed: int, frames: int, size: int, train_seconds: float):
    s = simulate_calcium_movie(n_frames=frames, shape=(size, size), seed=seed)
    raw = s.raw.astype(np.float32)
    f0 = np.percentile(s.clean, 10, axis=0)
    out = {"clean truth": s.clean, "raw (identity)": raw,
           "over-smoothed (6, 2, 2)": gaussian_filter(raw, (6, 2, 2)),
           "halved transients": f0 + 0.5 * (s.clean - f0),
           "tuned Gaussian (3, .75)": gaussian_filter(raw, (3, 0.75, 0.75))}
    with Timer() as t:
        res = drain(restore("denoise", s.raw, DenoiseParams(train_seconds=train_seconds, seed=0)))
    out[f"ours ({t.seconds:.0f} s)"] = np.asarray(res.data, np.float32)
    return s, out


def verdict(name: str, flags: list[str]) -> str:
    if name.startswith("clean"):
        return "PASS" if not flags else "FAIL"
    if name.startswith("raw"):
        return "PASS" if "removed_nothing" in flags else "FAIL"
    if name.startswith("over") or name.startswith("halved"):
        return "PASS" if STRUCTURAL & set(flags) else "FAIL"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--auto-rois", action="store_true",
                    help="let assess pick ROIs (most active tiles) instead of the true somata")
    a = ap.parse_args()
    print("machine:", machine())
    ok = noise_models(a.frames, a.size)
    cols = ["variance_ratio", "intensity_shift", "autocorr_excess", "signal_correlation",
            "structure_fraction", "peak_ratio_median", "onset_delay_median"]
    short = ["var", "shift", "ac+", "sig r", "struct", "peak", "delay"]
    for seed in a.seeds:
        s, cases = cases_for(seed, a.frames, a.size, a.train_seconds)
        print(f"\n== restorations of one simulated movie ({a.frames}x{a.size}x{a.size}, seed {seed}, "
              f"ROIs: {'auto' if a.auto_rois else 'true somata'})")
        print(f"{'output':26s} " + " ".join(f"{c:>6s}" for c in short) + "  flags")
        for name, out in cases.items():
            with Timer() as t:
                rep = assess(s.raw, out, rois=None if a.auto_rois else s.labels)
            v = verdict(name, rep.flags)
            ok &= v != "FAIL"
            print(f"{name:26s} " + " ".join(fmt(rep.figures.get(c)) for c in cols)
                  + f"  {', '.join(rep.flags) or '-'}  {v}  ({t.seconds:.1f} s)")
        print(f"noise model of that movie: {rep.noise.summary()}")
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")
    print("bars:", "all PASS" if ok else "SOME FAIL")


if __name__ == "__main__":
    main()
