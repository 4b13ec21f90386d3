"""Benchmark of zero-shot upsampling (Self-Vision-style) on a simulated neuron volume.

The truth is a clean simulated neuron volume (somata + neurites, 96x288x288); the input is
the truth binned by the factor (area sampling; optional Poisson noise with --photons).
Prints PSNR/SSIM against the truth for: linear and cubic-spline interpolation
(scipy.ndimage.zoom orders 1 and 3 with grid_mode=True, i.e. aligned to the area-sampling
convention), Keys-cubic interpolation + back-projection without any network (the classical
part of our pipeline), ours (zero-shot: the input alone) and ours with the simulated prior
(3x only); at 4x the default two 2x stages and one 4x network (--no-two-stage); each
model's truth-free self-check; then tiled vs whole-volume inference, speed, and the peak
memory of a large 4x case run in a separate process.

    python benchmarks/bench_upsample.py [--train-seconds 60] [--factors 3 2 4] [--photons 0]
        [--steps N] [--shape Z Y X] [--truth-seed 1] [--no-large]

``--steps N`` trains every model for N steps (no time cap): the comparison of a loaded
machine, with the time per step printed to convert; ``--shape``/``--truth-seed`` pick
another simulated volume (a held-out check).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import torch
from _common import Timer, machine, peak_rss_mb
from scipy.ndimage import zoom

from napari_neurorestore.core.methods.upsample import heavy as up
from napari_neurorestore.core.methods.upsample.check import format_check
from napari_neurorestore.core.methods.upsample.net import interp_upsample
from napari_neurorestore.core.methods.upsample.spec import UpsampleParams, bin_array
from napari_neurorestore.core.metrics import psnr, ssim
from napari_neurorestore.core.nets import count_parameters
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_neuron_volume

SHAPE = (96, 288, 288)


def aligned_zoom(x: np.ndarray, f: int, order: int) -> np.ndarray:
    """scipy zoom with grid_mode=True: output pixel j's centre at (j + 0.5) / f - 0.5 in
    input pixels, the area-sampling convention (an unaligned zoom is off by (f-1)/(2f))."""
    return zoom(x.astype(np.float64), f, order=order, grid_mode=True, mode="reflect")


def classical_bp(x: np.ndarray, f: int) -> np.ndarray:
    t = torch.from_numpy(x)[None, None]
    y = up.back_project(interp_upsample(t, (f,) * x.ndim), t, (f,) * x.ndim, "cubic")
    return y[0, 0].numpy()


def vm_hwm_mb() -> float:
    """Peak resident memory of this process since exec (VmHWM; ru_maxrss on Linux keeps the
    parent's peak across fork/exec), in MB; falls back to ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def large_case(args) -> None:
    """Inference only, 4x, on a (40, 192, 192) input: output (160, 768, 768) float32
    (377 MB) written into a memory-mapped file; prints peak RSS."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 192, 192), dtype=np.float32)
    p = UpsampleParams(factor=4, steps=2, patch_size=16, train_seconds=None, device="cpu")
    model = drain(up.train(x[:8, :32, :32], p))
    before = vm_hwm_mb()
    path = os.path.join(args.tmp, "bench_upsample_out.f32")
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(160, 768, 768))
    with Timer() as t:
        drain(up.predict(x, model, out=out))
    out.flush()
    del out
    os.unlink(path)
    print(f"large case: input (40, 192, 192) -> output (160, 768, 768) float32 "
          f"({160 * 768 * 768 * 4 / 2**20:.0f} MB, memmap), tiles {p.tile_size}: {t.seconds:.1f} s; "
          f"peak RSS {vm_hwm_mb():.0f} MB (before inference {before:.0f} MB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--factors", type=int, nargs="+", default=[3, 2, 4])
    ap.add_argument("--photons", type=float, default=0.0,
                    help="Poisson noise: expected photons per input pixel at intensity 1 (0 = none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None,
                    help="train for this many steps, no time cap (default: --train-seconds)")
    ap.add_argument("--shape", type=int, nargs=3, default=list(SHAPE))
    ap.add_argument("--truth-seed", type=int, default=1)
    ap.add_argument("--no-prior", action="store_true")
    ap.add_argument("--large-only", action="store_true")
    ap.add_argument("--no-large", action="store_true", help="skip the large 4x inference case")
    ap.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    args = ap.parse_args()
    if args.large_only:
        large_case(args)
        return

    print(f"machine: {machine()}; load average {os.getloadavg()}")
    shape = tuple(args.shape)
    truth = simulate_neuron_volume(shape, seed=args.truth_seed)
    rng_ = float(np.ptp(truth))
    print(f"truth: simulated neuron volume {shape} (seed {args.truth_seed}; the prior uses seed 12345, shape "
          f"{up.PRIOR_SHAPE_3D}), range {rng_:.2f}; input = truth binned by the factor"
          + (f" + Poisson noise ({args.photons:g} photons at intensity 1)" if args.photons
             else " (no noise)"))

    summary = []
    for f in args.factors:
        x = bin_array(truth, (f, f, f))
        truth_f = truth[tuple(slice(0, n * f) for n in x.shape)]
        rng_ = float(np.ptp(truth_f))

        def score(y, t=truth_f, r=rng_):
            return psnr(y, t, r), ssim(y, t, r)
        if args.photons:
            x = (np.random.default_rng(7).poisson(x * args.photons) / args.photons).astype(np.float32)
        print(f"\n=== {f}x: input {x.shape} -> {truth_f.shape}")
        rows = [("linear (zoom order 1, aligned)", aligned_zoom(x, f, 1)),
                ("cubic spline (zoom order 3, aligned)", aligned_zoom(x, f, 3)),
                ("cubic (Keys) + back-projection, no network", classical_bp(x, f))]
        variants = [("ours zero-shot" + (" (two 2x stages)" if f == 4 else ""),
                     UpsampleParams(factor=f))]
        if f == 4:
            variants.append(("ours zero-shot, one 4x network (--no-two-stage)",
                             UpsampleParams(factor=4, two_stage=False)))
        if f == 3 and not args.no_prior:
            variants.append(("ours + simulated prior", UpsampleParams(factor=f, prior="simulated")))
        models = {}
        checks = []
        for name, p in variants:
            p = UpsampleParams.from_dict({**p.to_dict(), "seed": args.seed,
                                          "train_seconds": None if args.steps else args.train_seconds,
                                          "steps": args.steps})
            with Timer() as tt:
                m = drain(up.train(x, p))
            with Timer() as tp:
                y = drain(up.predict(x, m))
            models[name] = (m, p)
            step_ms = 1000 * (m.info["train_seconds"] / max(1, m.info["steps"]))
            rows.append((f"{name} ({m.info['steps']} steps, {step_ms:.0f} ms/step, "
                         f"{tt.seconds:.0f} s train, {tp.seconds:.0f} s infer)", y))
            checks.append((name, m.info.get("self_check")))
            if name.startswith("ours zero-shot") and len(checks) == 1:
                rows.append(("  same, no back-projection", drain(up.predict(x, m, back_projection=False))))
                if f == 3:
                    p_nosa = UpsampleParams.from_dict({**p.to_dict(), "scale_augment": False})
                    m2 = drain(up.train(x, p_nosa))
                    rows.append((f"  same, no scale augmentation ({m2.info['steps']} steps)",
                                 drain(up.predict(x, m2))))
                    with Timer() as te:
                        ye = drain(up.predict(x, m, ensemble=True))
                    rows.append((f"  same, + flip ensemble ({te.seconds:.0f} s infer)", ye))
        print(f"{'':62s} {'PSNR dB':>8s} {'SSIM':>7s}")
        res = {}
        for name, y in rows:
            ps, ss = score(y)
            res[name] = (ps, ss)
            print(f"{name:62s} {ps:8.2f} {ss:7.4f}")
        lin, cub = res[rows[0][0]], res[rows[1][0]]
        best = max(lin[0], cub[0])
        ours = res[rows[3][0]]
        bp = res[rows[2][0]]
        bars = {3: (1.0, 0.0, ">= +1 dB and SSIM above cubic"),
                4: (3.0, 0.02, ">= +3 dB and SSIM >= cubic + 0.02")}
        note = ""
        if f in bars:
            db, ds, text = bars[f]
            met = ours[0] - best >= db and ours[1] - cub[1] >= ds and ours[1] > cub[1]
            note = f"  (bar at {f}x: {text}: {'MET' if met else 'MISSED'})"
        print(f"ours - best of linear/cubic: {ours[0] - best:+.2f} dB; SSIM {ours[1]:.4f} vs "
              f"cubic {cub[1]:.4f}; vs classical cubic+BP {ours[0] - bp[0]:+.2f} dB" + note)
        for name, c in checks:
            print(f"{name}: {format_check(c)}")
        summary.append((f, ours[0] - best, ours[1] - cub[1], ours[0] - bp[0]))
        if f == 3:
            m, p = models["ours zero-shot"]
            net = up.build_net(p, 3)
            print(f"network: {count_parameters(net)} parameters (width {p.width}, depth {p.depth})")
            whole = drain(up.predict(x, m, tile_size=10_000))
            worst = 0.0
            for tile in (16, 23, 64):
                part = drain(up.predict(x, m, tile_size=tile))
                b = 2 * f
                d = np.abs(part - whole)[b:-b, b:-b, b:-b].max() / np.abs(whole).max()
                worst = max(worst, d)
                print(f"tiled (tile {tile}) vs whole volume: max |diff| / max|whole| = {d:.2e}")
            print(f"tiled == whole to within 1e-4 relative: {'YES' if worst < 1e-4 else 'NO'}")
    print("\nsummary (ours zero-shot): factor, dB over best of linear/cubic, SSIM over cubic, "
          "dB over classical cubic+BP")
    for f, g, s, gb in summary:
        print(f"  {f}x: {g:+.2f} dB, SSIM {s:+.4f}, {gb:+.2f} dB")
    print(f"peak memory (RSS) of this process: {peak_rss_mb():.0f} MB")
    if args.no_large:
        return
    out = subprocess.run([sys.executable, __file__, "--large-only", "--tmp", args.tmp],
                         capture_output=True, text=True)
    print(out.stdout.strip() or out.stderr.strip()[-2000:])


if __name__ == "__main__":
    main()
