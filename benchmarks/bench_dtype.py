"""What an integer output (``--dtype uint16|int16``) costs against float32, in PSNR against
the truth, on the benchmark's base movie (``_regimes.py``: 600 frames of 128x128, uint16
camera counts with an offset of 60 and 3 counts per photon).

The denoiser trains once (``--train-seconds``, default 20) and the same model writes the
output as float32, uint16 and int16 (through the API's ``dtype=``: rounded to nearest,
clipped), and each is scored by PSNR and by the Pearson r of its ROI traces (the mean
over each simulated soma's mask) with the truth's. Then the float32 result divided by
``--scale`` (default 100: a recording in units far smaller than one count, e.g. already
normalised) is written as the integer types (the same rounding, :class:`IntegerOutput`),
to show where integer outputs stop being harmless. Prints the load average: run it alone.

    python benchmarks/bench_dtype.py [--train-seconds 20] [--scale 100]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _common import Timer, machine
from _regimes import Regime, make_movie

from napari_neurorestore import denoise
from napari_neurorestore.core.metrics import pearson, psnr
from napari_neurorestore.core.out_types import IntegerOutput

DTYPES = ("float32", "uint16", "int16")


def _traces(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    ids = [i for i in np.unique(labels) if i > 0]
    flat = a.reshape(len(a), -1).astype(np.float64)
    return np.stack([flat[:, labels.ravel() == i].mean(1) for i in ids])


def _line(label: str, outs: dict[str, np.ndarray], truth: np.ndarray,
          labels: np.ndarray) -> None:
    rng = float(truth.max() - truth.min())
    ref = psnr(outs["float32"], truth, rng)
    tt = _traces(truth, labels)
    for dt in DTYPES:
        a = outs[dt]
        p = psnr(a, truth, rng)
        rms = float(np.sqrt(np.mean((a.astype(np.float64) - outs["float32"]) ** 2)))
        rs = [pearson(x, y) for x, y in zip(_traces(a, labels), tt, strict=True)]
        r = np.nanmean(rs) if np.isfinite(rs).any() else float("nan")  # nan: constant
        print(f"  {label:<22} {dt:<8} PSNR {p:7.3f} dB ({p - ref:+.4f} dB vs float32), "
              f"rms change {rms:.3f} units, ROI trace r {r:.5f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seconds", type=float, default=20.0)
    ap.add_argument("--scale", type=float, default=100.0)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"load average before: {os.getloadavg()}")
    mv = make_movie(Regime())
    raw, truth = mv.raw, mv.clean.astype(np.float32)
    print(f"movie: base regime {raw.shape} {raw.dtype}, values {raw.min()}..{raw.max()}, "
          f"truth {truth.min():.1f}..{truth.max():.1f}")
    with Timer() as t:
        f32, model = denoise(raw, train_seconds=args.train_seconds, seed=0, return_model=True)
    print(f"trained {model.info.get('train_seconds')} s, {model.info.get('steps')} steps; "
          f"run {t.seconds:.1f} s")
    outs = {"float32": f32}
    for dt in DTYPES[1:]:
        with Timer() as t:
            outs[dt] = denoise(raw, model=model, dtype=dt)
        print(f"  apply as {dt}: {t.seconds:.1f} s, {outs[dt].dtype}")
    print(f"raw PSNR {psnr(raw, truth, float(truth.max() - truth.min())):.3f} dB")
    _line("counts (as recorded)", outs, truth, mv.labels)
    souts = {"float32": f32 / args.scale}
    for dt in DTYPES[1:]:
        o = IntegerOutput(np.empty(f32.shape, dt))
        o[...] = souts["float32"]
        souts[dt] = o.array
    _line(f"counts / {args.scale:g}", souts, truth / args.scale, mv.labels)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
