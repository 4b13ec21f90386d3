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
Under each real recording: the signal's change between adjacent frames (D) and what a
perfect restoration would score on the odd/even protocol (``_odd_even.py``; where D is as
large as the Gaussian's excess error, the ratio says little). ``--protocol-check REGIME...``
runs that protocol on simulated regimes beside the truth's figure.

Peers (``--peers careamics``): on the same movie, with the same ``--train-seconds``, a
peer's PSNR, trace r, training seconds, steps and inference frames/s (at the movie's size)
on a line under ours, and for ``--real`` files the same odd/even score. Peers run in their
own interpreter (``--peer-python``, ``_peers.py``; install: benchmarks/README.md), so this
environment never imports them; a missing one is skipped with the reason printed.

    python benchmarks/bench_denoise.py [--regimes base "corr 0.3" ...] [--train-seconds 60]
                                       [--real /path/movie.tif ...] [--no-centre]
                                       [--peers careamics deepcad] [--peer-python PATH]
                                       [--protocol-check "7.5 Hz" "jitter 0.5 px" ...]
"""

from __future__ import annotations

import argparse
import itertools
import os

import _odd_even as odd_even
import numpy as np
from _common import Timer, machine, peak_rss_mb
from _peers import NOT_RUN, PEERS, peer_python, run_peer
from _regimes import REGIMES, make_movie, noise_lag1
from scipy.ndimage import gaussian_filter

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.centre import KERNEL, format_check
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams, ensemble_size
from napari_neurorestore.core.metrics import pearson, psnr
from napari_neurorestore.core.models import TrainedModel
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


class Peers:
    """The peers to run and how; the first run also times 512x512 inference."""

    def __init__(self, names, python, fps_frames):
        self.names, self.python, self.fps_frames, self.fps512 = names, python, fps_frames, {}

    def run(self, movie, seconds, seed):
        """{name: (restored or None, info or error text)} for each peer."""
        out = {}
        for name in self.names:
            try:
                res, info = run_peer(name, movie, seconds, self.python, seed=seed,
                                     fps_frames=0 if name in self.fps512 else self.fps_frames)
            except Exception as e:  # noqa: BLE001 - a failing peer must not end the bench
                out[name] = (None, f"{type(e).__name__}: {e}")
                continue
            if "infer_fps_512" in info:
                self.fps512[name] = info["infer_fps_512"]
            out[name] = (res, info)
        return out


def peer_fields(info) -> str:
    return (f"train {info['train_seconds']:5.1f} s, {info['steps']} steps, infer "
            f"{info['infer_fps']:.1f} frames/s at this size  ({info['peer']})")


def regime_row(reg, seconds, centre, peers=None):
    mv = make_movie(reg)
    raw = mv.raw.astype(np.float32)
    rng = float(np.ptp(mv.clean))
    rois = rois_from_labels(mv.labels)
    f = extract_traces(mv.clean, rois)
    truth = delta_f_over_f(f, compute_f0(f, TraceParams()))
    g_psnr, g_sig, g = best_gaussian(raw, lambda x: psnr(x, mv.clean, rng))
    params = DenoiseParams(train_seconds=seconds, seed=reg.seed, centre_correction=centre)
    res = drain(restore("denoise", mv.raw, params))
    ours = res.data
    p_ours = psnr(ours, mv.clean, rng)
    cy, cx = noise_lag1(mv.raw)
    row = dict(regime=reg.name, shape="x".join(map(str, raw.shape)), lag1=f"{cy:.2f}/{cx:.2f}",
               raw=psnr(raw, mv.clean, rng), gauss=g_psnr, gsig=f"{g_sig[0]}/{g_sig[1]}",
               ours=p_ours, gain=p_ours - g_psnr, r_raw=mean_trace_r(raw, mv.labels, truth),
               r_gauss=mean_trace_r(g, mv.labels, truth), r_ours=mean_trace_r(ours, mv.labels, truth),
               steps=res.model.info["steps"], threads=res.model.info.get("threads"),
               secs=res.model.info["train_seconds"], ens=ensemble_size(params.ensemble, raw.shape),
               check=res.model.info.get("self_check", {}).get("gain_db", float("nan")))
    row["peers"] = {}
    for name, (out, info) in (peers.run(mv.raw, seconds, reg.seed) if peers else {}).items():
        if out is None:
            row["peers"][name] = info
            continue
        p = psnr(out, mv.clean, rng)
        row["peers"][name] = dict(psnr=p, gain=p - g_psnr, r=mean_trace_r(out, mv.labels, truth),
                                  info=info)
    return row


def real_row(path, seconds, centre, peers=None):
    import tifffile

    movie = tifffile.imread(path).astype(np.float32)
    even, odd = odd_even.split(movie)
    mse = lambda x: float(((x - odd) ** 2).mean())  # noqa: E731
    g_score, g_sig, g = best_gaussian(even, lambda x: -mse(x))
    res = drain(restore("denoise", even, DenoiseParams(train_seconds=seconds, seed=0, centre_correction=centre)))
    ours = res.data
    floor = odd_even.noise_floor(odd)
    ex_g = -g_score - floor
    _, change = odd_even.adjacent_change(movie)
    perfect = odd_even.perfect_ratio(movie, -g_score, floor)
    peer_rows = {}
    for name, (out, info) in (peers.run(even, seconds, 0) if peers else {}).items():
        peer_rows[name] = info if out is None else dict(
            mse=mse(out), ratio=mse(out) / -g_score,
            excess=odd_even.excess_ratio(out, odd, -g_score, floor), info=info)
    return dict(name=os.path.basename(path), shape="x".join(map(str, even.shape)),
                raw=mse(even), gauss=-g_score, gsig=f"{g_sig[0]}/{g_sig[1]}", ours=mse(ours),
                ratio=mse(ours) / -g_score, excess=odd_even.excess_ratio(ours, odd, -g_score, floor),
                change=change, change_share=change / ex_g if ex_g > 0 else float("nan"),
                perfect=perfect,
                check=format_check(res.model.info.get("self_check")), peers=peer_rows,
                steps=res.model.info["steps"], secs=res.model.info["train_seconds"],
                kept=checkpoint_note(res.model.info.get("checkpoint"))
                + ("; ended by the pass cap" if res.model.info.get("pass_cap") else ""))


def protocol_row(reg, seconds, centre):
    """The odd/even protocol of ``real_row`` run on a simulated regime, beside what it
    stands for: ours against the truth of the even frames, relative to the Gaussian tuned
    with that truth (both as ratios of error; see _odd_even)."""
    mv = make_movie(reg)
    even, odd = odd_even.split(mv.raw)
    clean = mv.clean[0::2][:len(even)]
    res = drain(restore("denoise", even, DenoiseParams(train_seconds=seconds, seed=reg.seed,
                                                       centre_correction=centre)))
    g_score, _, _ = best_gaussian(even, lambda x: -float(((x - odd) ** 2).mean()))
    t_score, _, _ = best_gaussian(even, lambda x: -float(((x - clean) ** 2).mean()))
    floor = odd_even.noise_floor(odd)
    _, change = odd_even.adjacent_change(mv.raw)
    return dict(regime=reg.name, protocol=odd_even.excess_ratio(res.data, odd, -g_score, floor),
                perfect=odd_even.excess_ratio(clean, odd, -g_score, floor),
                perfect_est=odd_even.perfect_ratio(mv.raw, -g_score, floor),
                truth=float(((res.data - clean) ** 2).mean()) / -t_score,
                change_share=change / (-g_score - floor), steps=res.model.info["steps"])


def checkpoint_note(ck) -> str:
    """Which checkpoint was kept (the best on the held-out frames; see denoise.held)."""
    if not ck:
        return "no held-out frames"
    return (f"kept step {ck['best_step']} (held-out blind MSE {ck['best_mse']:.4f}; last "
            f"{ck['last_mse']:.4f}, {len(ck['evaluated'])} evaluations)")


def inference_fps(shape=(512, 512), n=400, repeats=3):
    """Frames/s of the default inference (the flip ensemble is off at this size) over
    ``repeats`` runs, for the model trained here and for the same model with every step
    after its net switched on (a centre kernel and registration added: what a recording
    that needs them costs): {name: (median, lowest, highest, its steps)}. This VM's speed
    varies by up to 2x. 400 frames: the long-context step's 64-frame halos cost what they
    cost in a long movie (with 120 frames, every chunk's block was cut short)."""
    movie = np.random.default_rng(0).poisson(5.0, size=(40, *shape)).astype(np.uint16)
    model = drain(dn.train(movie, DenoiseParams(epochs=1, patch_size=32, batch_size=2)))
    movie = np.random.default_rng(1).poisson(5.0, size=(n, *shape)).astype(np.uint16)
    assert ensemble_size(DenoiseParams().ensemble, movie.shape) == 1
    kernel = np.zeros((KERNEL, KERNEL), np.float32)
    kernel[KERNEL // 2, KERNEL // 2] = 0.1
    every = TrainedModel(model.method, model.params, model.state_dict,
                         {**model.norm, "centre_kernel": kernel.tolist(), "register": True},
                         model.info)
    out = {}
    for name, m in (("as trained", model), ("every step", every)):
        drain(dn.predict(movie[:16], m))  # warm-up
        rates = []
        for _ in range(repeats):
            with Timer() as t:
                drain(dn.predict(movie, m))
            rates.append(n / t.seconds)
        steps = [label for key, label in (
            ("register", "registration"), ("context", "long context"),
            ("centre_kernel", "centre correction"), ("transient", "transient")) if m.norm.get(key)]
        out[name] = (float(np.median(rates)), min(rates), max(rates), ", ".join(steps) or "none")
    return out


def start_busy(n):
    """``n`` processes that each keep a core busy (a competing CPU load), killed at exit."""
    import atexit
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    atexit.register(lambda: [p.kill() for p in procs])
    return procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regimes", nargs="*", default=[r.name for r in REGIMES])
    ap.add_argument("--train-seconds", type=float, default=60.0)
    ap.add_argument("--real", nargs="*", default=[])
    ap.add_argument("--no-centre", action="store_true", help="temporal network only")
    ap.add_argument("--peers", nargs="*", default=[], choices=PEERS,
                    help="peer denoisers run on the same data with the same budget")
    ap.add_argument("--peer-python", help="the peers' interpreter (benchmarks/README.md)")
    ap.add_argument("--peer-fps-frames", type=int, default=16,
                    help="512x512 frames a peer's inference is timed on (once)")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="run N busy processes beside the benchmark (2 on 2 cores: the CPU "
                         "2x oversubscribed)")
    ap.add_argument("--no-fps", action="store_true", help="skip the 512x512 inference timing")
    ap.add_argument("--protocol-check", nargs="*", default=[], metavar="REGIME",
                    help="run the real recordings' odd/even protocol on these simulated "
                         "regimes and print it beside the truth's figure")
    args = ap.parse_args()
    centre = not args.no_centre
    if args.busy:
        start_busy(args.busy)
        print(f"competing load: {args.busy} busy processes (each keeps a core busy)")
    print(f"machine: {machine()}; {load()}")
    print(f"denoiser: {DenoiseParams(train_seconds=args.train_seconds, centre_correction=centre)}")
    peers = None
    names = [n for n in args.peers if n not in NOT_RUN]
    for n in args.peers:
        if n in NOT_RUN:
            print(f"peer {n}: not run: {NOT_RUN[n]}")
    if names:
        python, why = peer_python(args.peer_python)
        if python is None:
            print(f"peers {', '.join(names)}: skipped: {why}")
        else:
            print(f"peers {', '.join(names)}: run by {python}, same movie and --train-seconds")
            peers = Peers(names, python, args.peer_fps_frames)
    by_name = {r.name: r for r in REGIMES}
    print(f"\n{'regime':14s} {'shape':12s} {'lag1 y/x':9s} {'raw':>6s} {'gauss':>6s} {'(st/sxy)':9s} "
          f"{'ours':>6s} {'gain':>6s} {'self-chk':>8s} | {'r raw':>6s} {'r gau':>6s} {'r ours':>6s} "
          f"{'steps':>6s} thr {'train s':>7s} ens")
    for name in args.regimes:
        r = regime_row(by_name[name], args.train_seconds, centre, peers)
        print(f"{r['regime']:14s} {r['shape']:12s} {r['lag1']:9s} {r['raw']:6.2f} {r['gauss']:6.2f} "
              f"{r['gsig']:9s} {r['ours']:6.2f} {r['gain']:+6.2f} {r['check']:+8.2f} | "
              f"{r['r_raw']:6.3f} {r['r_gauss']:6.3f} {r['r_ours']:6.3f} {r['steps']:6d} "
              f"{r['threads']}   {r['secs']:7.2f} {r['ens']}   [{load()}]", flush=True)
        for name, p in r["peers"].items():
            if isinstance(p, str):
                print(f"  {name:12s} failed: {p}", flush=True)
                continue
            print(f"  {name:12s} {'':12s} {'':9s} {'':6s} {'':6s} {'':9s} {p['psnr']:6.2f} "
                  f"{p['gain']:+6.2f} {'':8s} | {'':6s} {'':6s} {p['r']:6.3f} "
                  f"{p['info']['steps']:6d} {p['info']['threads']}   {peer_fields(p['info'])}",
                  flush=True)
    for path in args.real:
        r = real_row(path, args.train_seconds, centre, peers)
        print(f"\nreal {r['name']} (even frames {r['shape']}, scored against the odd frames):"
              f" MSE raw {r['raw']:.2f}, best Gaussian {r['gauss']:.2f} ({r['gsig']}), ours "
              f"{r['ours']:.2f}: ratio {r['ratio']:.3f}; excess error over the noise floor, "
              f"ours / Gaussian: {r['excess']:.2f}\n  signal change between adjacent frames D = "
              f"{r['change']:.1f} ({r['change_share']:.2f} x the Gaussian's excess error); a "
              f"perfect restoration would score about {r['perfect']:.2f} (benchmarks/README.md)"
              f"\n  {r['steps']} steps in {r['secs']:.1f} s; "
              f"{r['kept']}\n  {r['check']}  [{load()}]", flush=True)
        for name, p in r["peers"].items():
            print(f"  {name}: failed: {p}" if isinstance(p, str) else
                  f"  {name}: MSE {p['mse']:.2f}: ratio to the Gaussian {p['ratio']:.3f}, excess "
                  f"{p['excess']:.2f}; {peer_fields(p['info'])}", flush=True)
    for name in args.protocol_check:
        r = protocol_row(by_name[name], args.train_seconds, centre)
        print(f"\nodd/even protocol on {r['regime']}: excess error ours / Gaussian {r['protocol']:.2f} "
              f"({-10 * np.log10(r['protocol']):+.2f} dB); against the truth of the even frames "
              f"{r['truth']:.2f} ({-10 * np.log10(r['truth']):+.2f} dB); D {r['change_share']:.2f} "
              f"x the Gaussian's excess; the truth itself scores {r['perfect']:.2f} (estimated without "
              f"it: {r['perfect_est']:.2f}); {r['steps']} steps  [{load()}]", flush=True)
    if not args.no_fps:
        print()
        for name, (med, lo, hi, steps) in inference_fps().items():
            print(f"inference 512x512, 400 frames, {name} ({steps}): {med:.1f} frames/s, "
                  f"median of 3 runs ({lo:.1f}-{hi:.1f}; bar: >= 30)  [{load()}]", flush=True)
    for name, fps in (peers.fps512 if peers else {}).items():
        print(f"  {name} inference 512x512: {fps:.2f} frames/s ({args.peer_fps_frames} frames)")
    print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
