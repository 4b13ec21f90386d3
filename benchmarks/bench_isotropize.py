"""Benchmark of axial isotropization (Self-Net-style) on simulated data with ground truth.

1. A simulated isotropic neuron volume, blurred along z (Gaussian sigma_z = 2 voxels),
   sampled every 3rd slice, mild Poisson noise: PSNR/SSIM against the isotropic truth of
   linear, cubic (Keys; B-spline) interpolation in z, of cubic + Richardson-Lucy
   deconvolution along z (true PSF, iterations tuned on the truth), and of ours with the
   Gaussian (sigma estimated) and the learned degradation, each trained for
   ``--train-seconds``. The sigma_z estimate is printed against the truth.
2. Isotropy figure: simulated beads (isotropic PSF) degraded the same way; the axial /
   lateral FWHM ratio of the beads before (cubic) and after; and the Fourier-spectrum
   extent along z versus x of the neuron volume.
3. Speed (training steps, inference voxels/s) and peak memory.
4. ``--real FILE...``: real (z, y, x) volumes as the truth (``_real_volumes.py``: scaled to
   0..1, blurred laterally until y and x are as wide as z, so the truth is isotropic),
   degraded in z like the simulation; per volume the same table (cubic, B-spline + RL tuned
   with the truth, ours), ours minus cubic and minus the best tuned interpolation, speed,
   peak memory and the load average. ``--ablate`` adds the oracle degradation (the true
   sigma_z), the learned one and the untouched (anisotropic) volume as the truth.
   ``--curve K`` (with ``--steps``) prints, every K training steps, the self-check on the
   held-out lateral slices next to the true gain, for ours and for two supervised upper
   bounds trained on the truth itself: its lateral slices (3x more slices than the input)
   and its axial planes (the structure z really has). ``--squeeze F`` adds a row of ours
   trained with ``squeeze_augment`` F (simulation and real volumes).

    python benchmarks/bench_isotropize.py [--train-seconds 60] [--threads 0] [--ablate]
        [--real FILE ...] [--no-sim] [--steps N] [--curve K] [--squeeze F]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from _common import Timer, machine, peak_rss_mb
from _real_volumes import isotropic_truth, isotropy_blur, normalise, read_volume
from scipy.ndimage import gaussian_filter1d, map_coordinates

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.isotropize import axial
from napari_neurorestore.core.methods.isotropize import heavy as iso
from napari_neurorestore.core.methods.isotropize.check import held_out_check
from napari_neurorestore.core.methods.isotropize.data import _Source
from napari_neurorestore.core.methods.isotropize.spec import IsotropizeParams
from napari_neurorestore.core.metrics import psnr, ssim
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import degrade_axial, simulate_beads, simulate_neuron_volume


def bspline_z(raw: np.ndarray, ratio: float) -> np.ndarray:
    pos = axial.output_positions(raw.shape[0], ratio)
    out = np.empty((len(pos), *raw.shape[1:]), np.float32)
    yy, xx = np.mgrid[0:raw.shape[1], 0:raw.shape[2]].astype(np.float64)
    for k, p in enumerate(pos):
        out[k] = map_coordinates(raw, [np.full_like(yy, p), yy, xx], order=3, mode="mirror")
    return out


def linear_z(raw: np.ndarray, ratio: float) -> np.ndarray:
    pos = axial.output_positions(raw.shape[0], ratio)
    a = np.floor(pos).astype(int).clip(0, raw.shape[0] - 1)
    b = np.minimum(a + 1, raw.shape[0] - 1)
    f = (pos - a)[:, None, None].astype(np.float32)
    return (1 - f) * raw[a] + f * raw[b]


def rl_z(vol: np.ndarray, sigma: float, iters: int) -> np.ndarray:
    """Richardson-Lucy deconvolution along z with a Gaussian PSF (the true one)."""
    v = np.clip(vol.astype(np.float64), 1e-6, None)
    est = v.copy()
    for _ in range(iters):
        conv = np.clip(gaussian_filter1d(est, sigma, axis=0, mode="mirror"), 1e-6, None)
        est *= gaussian_filter1d(v / conv, sigma, axis=0, mode="mirror")
    return est.astype(np.float32)


def fwhm_1d(profile: np.ndarray, centre: float) -> float:
    """Full width at half maximum of a peak near ``centre`` (linear interpolation)."""
    p = np.asarray(profile, np.float64)
    p = p - np.percentile(p, 10)
    c = int(round(centre))
    c = max(1, min(len(p) - 2, c))
    c = c - 1 + int(np.argmax(p[c - 1:c + 2]))
    half = p[c] / 2
    if half <= 0:
        return float("nan")
    left = c
    while left > 0 and p[left] > half:
        left -= 1
    right = c
    while right < len(p) - 1 and p[right] > half:
        right += 1
    if p[left] > half or p[right] > half:
        return float("nan")
    xl = left + (half - p[left]) / (p[left + 1] - p[left])
    xr = right - 1 + (p[right - 1] - half) / (p[right - 1] - p[right])
    return float(xr - xl)


def bead_fwhm_ratio(vol: np.ndarray, centres: np.ndarray) -> tuple[float, float, float]:
    """Median FWHM along z and x (in lateral pixels) and their ratio, over the beads."""
    fz, fx = [], []
    for c in centres:
        z, y, x = (int(round(v)) for v in c)
        if not (8 <= z < vol.shape[0] - 8 and 8 <= y < vol.shape[1] - 8 and 8 <= x < vol.shape[2] - 8):
            continue
        fz.append(fwhm_1d(vol[z - 8:z + 9, y, x], 8 + c[0] - z))
        fx.append(fwhm_1d(vol[z, y, x - 8:x + 9], 8 + c[2] - x))
    fz, fx = np.nanmedian(fz), np.nanmedian(fx)
    return float(fz), float(fx), float(fz / fx)


def spectra_extent(vol: np.ndarray, pitch_z: float, noise: float) -> tuple[float, float]:
    """Frequency (cycles / lateral pixel) where the z and the x power spectra fall to 1 % of
    their low-frequency level above the noise floor."""
    fz, pz = axial._periodogram(vol, 0, pitch_z)
    fx, px = axial._periodogram(vol, 2, 1.0)
    return (axial.spectral_extent(fz, pz, noise), axial.spectral_extent(fx, px, noise))


#: ``--steps``: a fixed number of training steps instead of the time budget (comparisons on
#: a shared CPU); set by main()
FIXED_STEPS: int | None = None


def run_ours(raw, ratio, seconds, **kw):
    budget = ({"train_seconds": None, "steps": FIXED_STEPS} if FIXED_STEPS
              else {"train_seconds": seconds, "steps": None})
    p = IsotropizeParams(z_ratio=ratio, seed=0, **budget, **kw)
    with Timer() as t:
        res = drain(restore("isotropize", raw, p))
    return res, t.seconds


def row(name, x, truth, rng):
    print(f"{name:58s} {psnr(x, truth, rng):8.2f} {ssim(x, truth, rng):7.4f} "
          f"{ssim(np.moveaxis(x, 1, 0), np.moveaxis(truth, 1, 0), rng):7.4f}", flush=True)
    return psnr(x, truth, rng), ssim(x, truth, rng)


def classical_rows(raw, truth, r, sz):
    """Print linear, Keys, B-spline and B-spline + Richardson-Lucy (true PSF, iterations
    tuned with the truth); returns ((PSNR, SSIM) of the best cubic, of the best of all,
    the B-spline volume)."""
    rng = float(np.ptp(truth))
    bsp = bspline_z(raw, r)
    lin = row("linear interpolation in z", linear_z(raw, r), truth, rng)
    keys = row("cubic interpolation in z (Keys)", axial.interp_z(raw, r), truth, rng)
    bs = row("cubic interpolation in z (B-spline)", bsp, truth, rng)
    it = max((psnr(rl_z(bsp, sz, i), truth, rng), i) for i in (1, 2, 3, 5, 8, 12))[1]
    rl = row(f"B-spline + Richardson-Lucy in z (true PSF, {it} it., tuned)", rl_z(bsp, sz, it),
             truth, rng)
    return max(keys, bs), max(lin, keys, bs, rl), bsp


def hf_energy(v: np.ndarray, axis: int) -> float:
    """Mean squared second difference along ``axis``: the structure's finest detail."""
    return float(np.mean(np.diff(v.astype(np.float64), 2, axis=axis) ** 2))


class _AxialPlanes(_Source):
    """Training crops from (z, x) planes (the volume given as (y, z, x)), always degraded
    along z: the supervised upper bound of ``--curve`` on the truth's own axial structure."""

    def lateral(self, batch, check=False, rng=None):
        class AlongRows:  # the source's choice "degrade along the slice's rows" every time
            def __init__(self, g):
                self.g = g

            def integers(self, *a):
                return self.g.integers(*a)

            def random(self):
                self.g.random()
                return 0.0
        return super().lateral(batch, check, AlongRows(self.rng if rng is None else rng))


def curve(raw, truth, r, every, steps, train_on=None, planes=False):
    """[(step, self-check lower, upper, true gain over cubic)] every ``every`` steps of
    one training on ``train_on`` (default the input) restoring ``raw``."""
    data = raw if train_on is None else train_on
    p = IsotropizeParams(z_ratio=r, seed=0, steps=steps, train_seconds=None,
                         sigma_z=None if train_on is None else iso.axial_blur(raw, r)[0])
    states, fit0, src0 = [], iso.fit, iso._Source

    def fit(net, *a, **kw):
        def snap(step):
            if step % every == 0 or step == steps:
                states.append((step, {k: v.detach().clone() for k, v in net.state_dict().items()}))
        return (yield from fit0(net, *a, on_step=snap, **kw))
    iso.fit, iso._Source = fit, (_AxialPlanes if planes else _Source)
    try:
        model = drain(iso.train(data, p))
    finally:
        iso.fit, iso._Source = fit0, src0
    info, sigma = model.info, model.info["sigma_z_used"]
    src = (_AxialPlanes if planes else _Source)(data, r, p.patch_size, iso._margin(r, sigma),
                                               np.random.default_rng(0), False)
    na, nb = info["noise_model"]["a"], info["noise_model"]["b"]
    noise = (na / src.std, (na * src.mean + nb) / src.std**2)
    rng = float(np.ptp(truth))
    cubic = psnr(axial.interp_z(raw, r), truth, rng)
    net = iso.build_net(p)
    rows = []
    for step, state in states:
        net.load_state_dict(state)
        c = held_out_check(net, src, r, noise, torch.device("cpu"), sigma, seed=0)
        m = type(model)("isotropize", model.params, state, model.norm, info)
        rows.append((step, c["gain_db"], c["gain_signal_db"],
                     psnr(drain(iso.predict(raw, m, device="cpu")), truth, rng) - cubic))
    return rows


def print_curves(raw, truth, truth0, r, args):
    """``--curve``: ours and the two supervised upper bounds, step by step."""
    noisy = np.random.default_rng(args.seed + 5).poisson(
        np.clip(truth0, 0, None) * args.photons).astype(np.float32)
    runs = [("ours (the input's lateral slices)", {}),
            ("truth's lateral slices (noisy, supervised)", {"train_on": noisy}),
            ("truth's axial planes (noisy, supervised)",
             {"train_on": np.ascontiguousarray(noisy.transpose(1, 0, 2)), "planes": True})]
    for name, kw in runs:
        t0 = os.getloadavg()[0]
        rows = curve(raw, truth, r, args.curve, args.steps, **kw)
        print(f"   {name}, held-out self-check (lower / upper) and true gain over cubic, "
              f"load {t0:.2f} -> {os.getloadavg()[0]:.2f}:")
        print("     " + "; ".join(f"{s}: {lo:+.2f}/{'-' if hi is None else f'{hi:+.2f}'} "
                                   f"true {g:+.2f}" for s, lo, hi, g in rows))


def real_volume(path, args):
    """One real volume made isotropic, degraded in z like the simulation, restored."""
    r, sz = args.ratio, args.sigma_z
    vol = read_volume(path)
    lat = None if args.real_lateral_blur == "auto" else float(args.real_lateral_blur)
    truth0, s_lat = isotropic_truth(vol, lat)
    _, w_z, w_l = isotropy_blur(vol)
    print(f"\n=== real volume {path}: {vol.shape} {vol.dtype}; structure width^2 along z "
          f"{w_z:.2f}, along y/x {w_l:.2f} px^2 -> lateral blur sigma {s_lat:.2f} px (truth "
          f"made isotropic); then z blurred sigma_z {sz}, one slice in {r:g} kept, Poisson noise "
          f"({args.photons:g} photons per unit); load average {os.getloadavg()[0]:.2f}")
    e = [hf_energy(truth0, a) for a in range(3)]
    print(f"truth's finest detail (mean squared 2nd difference) along z / y / x: "
          f"{e[0]:.2e} / {e[1]:.2e} / {e[2]:.2e} (z / lateral {2 * e[0] / (e[1] + e[2]):.1f}: "
          f"above 1, z has detail that the lateral slices, the training reference, lack)")
    cases = [("isotropic truth", truth0)]
    if args.ablate and s_lat > 0:
        cases.append(("the volume as it is (z blurrier than y, x)", normalise(vol)))
    out = {}
    for label, t in cases:
        d = degrade_axial(t, sz, r, photons=args.photons, seed=args.seed + 1)
        truth, raw = d.truth, d.raw
        rng = float(np.ptp(truth))
        est, how = axial.axial_blur(raw, r)
        print(f"-- truth: {label}; input {raw.shape} -> output {truth.shape}; sigma_z "
              f"{how} {est:.2f} (added {sz})")
        print(f"{'':58s} {'PSNR dB':>8s} {'SSIM xy':>7s} {'SSIM xz':>7s}")
        (p_cub, s_cub), (p_best, _), _ = classical_rows(raw, truth, r, sz)
        if args.curve and label == "isotropic truth":
            print_curves(raw, truth, t, r, args)
            continue
        runs = [("gaussian", {})]
        if args.squeeze < 1:
            runs.append((f"gaussian, squeeze_augment {args.squeeze:g}",
                         {"squeeze_augment": args.squeeze}))
        if args.ablate and label == "isotropic truth":
            runs += [("gaussian, oracle sigma_z", {"sigma_z": sz}),
                     ("learned", {"degradation": "learned"})]
        for name, kw in runs:
            kw = {"degradation": "gaussian", **kw}
            t0 = os.getloadavg()[0]
            res, secs = run_ours(raw, r, args.train_seconds, **kw)
            info = res.model.info
            p, s = row(f"ours, {name} ({info['steps']} steps)", res.data, truth, rng)
            print(f"   ours - cubic {p - p_cub:+.2f} dB (SSIM {s - s_cub:+.4f}), ours - best "
                  f"interpolation tuned with the truth {p - p_best:+.2f} dB; {info['train_seconds']} s training, "
                  f"{secs:.1f} s in all ({res.data.size / max(secs, 1e-9) / 1e3:.0f} k output "
                  f"voxels/s end to end); load {t0:.2f} -> {os.getloadavg()[0]:.2f}")
            print(f"   {get('isotropize').training_summary(info)}")
            out[(label, name)] = p - p_cub
    print(f"peak memory (RSS) so far: {peak_rss_mb():.0f} MB")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--bead-seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--sigma-z", type=float, default=2.0)
    ap.add_argument("--ratio", type=float, default=3.0)
    ap.add_argument("--photons", type=float, default=200.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-learned", action="store_true")
    ap.add_argument("--ablate", action="store_true", help="also train without noise matching")
    ap.add_argument("--real", nargs="+", default=[], metavar="FILE",
                    help="real (z, y, x) TIFF volumes to use as the truth (made isotropic)")
    ap.add_argument("--real-lateral-blur", default="auto", metavar="SIGMA",
                    help="lateral Gaussian blur that makes a real truth isotropic (auto: measured)")
    ap.add_argument("--no-sim", action="store_true", help="only the --real volumes")
    ap.add_argument("--steps", type=int, default=None,
                    help="train a fixed number of steps instead of --train-seconds (for "
                         "comparisons on a loaded CPU)")
    ap.add_argument("--squeeze", type=float, default=1.0, metavar="F",
                    help="also train with squeeze_augment F (< 1) and print its row")
    ap.add_argument("--curve", type=int, default=0, metavar="K",
                    help="with --steps and --real: the held-out self-check and the true gain "
                         "every K steps, with two supervised upper bounds (no table rows)")
    args = ap.parse_args()
    if args.curve and not (args.steps and args.real):
        ap.error("--curve needs --steps and --real")
    global FIXED_STEPS
    FIXED_STEPS = args.steps
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} (1 min)")
    gains = {str(f): real_volume(f, args) for f in args.real}
    if gains:
        print("\nreal volumes, ours - cubic (dB):")
        for f, g in gains.items():
            print(f"  {f}: " + "; ".join(f"{k[1]} ({k[0]}) {v:+.2f}" for k, v in g.items()))
    if args.no_sim:
        print(f"peak memory (RSS): {peak_rss_mb():.0f} MB; load average now "
              f"{os.getloadavg()[0]:.2f}")
        return
    r, sz = args.ratio, args.sigma_z

    # ------------------------------------------------------------------ neuron volume
    vol = simulate_neuron_volume((96, 128, 128), seed=args.seed)
    d = degrade_axial(vol, sz, r, photons=args.photons, seed=args.seed + 1)
    truth, raw = d.truth, d.raw
    rng = float(np.ptp(truth))
    print(f"\ndata: simulated isotropic neuron volume {vol.shape}, axial Gaussian sigma_z {sz} "
          f"voxels, one slice in {r:g} kept -> input {raw.shape}, Poisson noise ({args.photons:g} "
          f"photons per unit; background ~{np.median(raw):.0f}, max {raw.max():.0f} photons); "
          f"output {truth.shape}")
    est = axial.estimate_sigma_z(raw, r)
    print(f"sigma_z estimated from the spectra: {est:.2f} (truth {sz})")
    print(f"\n{'':58s} {'PSNR dB':>8s} {'SSIM xy':>7s} {'SSIM xz':>7s}")
    (p_cubic, s_cubic), _, bsp = classical_rows(raw, truth, r, sz)
    results = {}
    modes = ["gaussian"] + ([] if args.skip_learned else ["learned"])
    for mode in modes:
        res, secs = run_ours(raw, r, args.train_seconds, degradation=mode)
        info = res.model.info
        extra = (f", learned kernel sigma {info['learned_sigma']:.2f}" if mode == "learned" else "")
        p, s = row(f"ours, {mode} ({info['steps']} steps{extra})", res.data, truth, rng)
        results[mode] = (p, s, res, secs)
    if args.squeeze < 1:
        res, _ = run_ours(raw, r, args.train_seconds, degradation="gaussian",
                          squeeze_augment=args.squeeze)
        row(f"ours, gaussian, squeeze_augment {args.squeeze:g} ({res.model.info['steps']} steps)",
            res.data, truth, rng)
    if args.ablate:
        res, _ = run_ours(raw, r, args.train_seconds, degradation="gaussian", match_noise=False)
        row(f"ours, gaussian, no noise matching ({res.model.info['steps']} steps)", res.data,
            truth, rng)
        res, _ = run_ours(raw, r, args.train_seconds, degradation="gaussian", sigma_z=sz)
        row(f"ours, gaussian, true sigma_z ({res.model.info['steps']} steps)", res.data,
            truth, rng)
    pg, sg, resg, secs_g = results["gaussian"]
    print(f"\nours (gaussian) - best cubic: {pg - p_cubic:+.2f} dB PSNR (bar: >= +1 dB), "
          f"SSIM {sg:.4f} vs {s_cubic:.4f} (bar: above)")
    if "learned" in results:
        pl, sl = results["learned"][:2]
        print(f"learned - gaussian: {pl - pg:+.2f} dB PSNR, SSIM {sl - sg:+.4f}")
    print(f"intensity units kept: mean input {raw.mean():.2f}, ours {resg.data.mean():.2f}, "
          f"truth {truth.mean():.2f}")

    # ------------------------------------------------------------------ isotropy figures
    noise = float(np.median(axial._periodogram(raw.astype(np.float32), 2, 1.0)[1][-10:]))
    print("\nFourier extent (cycles / lateral px where power falls to 1 % above noise):")
    print(f"{'':30s} {'along z':>8s} {'along x':>8s} {'z / x':>6s}")
    for name, v, pitch in (("input (z sampled every R)", raw, r), ("cubic", bsp, 1.0),
                           ("ours (gaussian)", resg.data, 1.0), ("truth (noise-free)", truth, 1.0)):
        ez, ex = spectra_extent(v.astype(np.float32), pitch, noise if name != "truth (noise-free)" else 0.0)
        print(f"{name:30s} {ez:8.3f} {ex:8.3f} {ez / ex if ex else float('nan'):6.2f}")

    beads, centres = simulate_beads((96, 96, 96), n_beads=60, sigma=1.0, min_distance=12,
                                    seed=args.seed)
    db = degrade_axial(beads, sz, r, photons=500.0, seed=args.seed)
    bsp_b = bspline_z(db.raw, r)
    resb, _ = run_ours(db.raw, r, args.bead_seconds, degradation="gaussian")
    print(f"\nbeads: {len(centres)} beads, isotropic PSF sigma 1.0 voxel, same axial degradation, "
          f"ours trained {resb.model.info['train_seconds']} s on the bead volume itself "
          f"(sigma_z estimated {resb.model.info['sigma_z_used']:.2f})")
    print(f"{'':30s} {'FWHM z':>7s} {'FWHM x':>7s} {'z / x':>6s}")
    for name, v in (("truth", db.truth), ("cubic (B-spline)", bsp_b), ("ours (gaussian)", resb.data)):
        fz, fx, ratio = bead_fwhm_ratio(v, centres)
        print(f"{name:30s} {fz:7.2f} {fx:7.2f} {ratio:6.2f}")
    print("(paper anchor, STED beads: axial/lateral FWHM ~2-3 before, ~1.2 after)")

    # ------------------------------------------------------------------ speed
    info = resg.model.info
    print(f"\ntraining (gaussian): {info['train_seconds']} s, {info['steps']} steps "
          f"(batch {IsotropizeParams().batch_size} x {IsotropizeParams().patch_size}^2); "
          f"train + restore {secs_g:.1f} s; torch threads {torch.get_num_threads()}")
    big = np.random.default_rng(0).poisson(20, size=(40, 256, 256)).astype(np.uint16)
    drain(iso.predict(big[:, :64, :64], resg.model))  # warm-up
    with Timer() as t:
        out = drain(iso.predict(big, resg.model))
    print(f"inference {big.shape} -> {out.shape}: {out.size / t.seconds / 1e6:.2f} M output "
          f"voxels/s ({t.seconds:.1f} s)")
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
