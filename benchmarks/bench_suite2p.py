"""The suite2p round trip, proved with suite2p itself (issue 27, item 2).

1. simulate a movie with cells (``core.simulate``; default 300 frames of 128x128, 30
   cells) and write it as a TIFF;
2. suite2p registers it (its own pipeline, detection off): a genuine plane folder
   ``suite2p/plane0`` (data.bin, db.npy, settings.npy, reg_outputs.npy, ops.npy);
3. ``neurorestore denoise suite2p/plane0 -o denoised/suite2p/plane0`` (the CLI, timed);
4. suite2p's detection and extraction (``suite2p.run_plane``, registration off) on the
   denoised folder, unchanged; the registered data.bin is hashed before step 3 and after
   step 4 and must be byte-identical; then the same detection on the raw folder;
5. prints, for raw and denoised: ROIs found (all, and classified as cells), the true cells
   they recover (a cell under a ROI's centre, ``med``), the ROIs centred outside every cell,
   and the median over recovered cells of the best Pearson r of a ROI's F - 0.7 Fneu with
   the cell's true trace.

suite2p runs in its own environment (``--s2p-python``, default /work/venv-s2p/bin/python;
install: ``python -m venv /work/venv-s2p && /work/venv-s2p/bin/pip install torch suite2p``,
torch first for a CPU-only wheel). Where that environment's torchvision cannot load (a
CUDA-only build next to a CPU torch: its ops library needs the CUDA torch), a stub
torchvision is put on suite2p's path, and said so: suite2p imports it only through
cellpose's transforms, which registration and sparsery detection do not call (a call would
raise). Prints the load average: run it alone.

    python benchmarks/bench_suite2p.py [--frames 300] [--size 128] [--cells 30]
                                       [--train-seconds 20] [--work DIR] [--s2p-python PY]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
S2P = r"""
import json, sys, time, numpy as np
from pathlib import Path
import suite2p
from suite2p.parameters import default_settings
from suite2p.run_s2p import run_s2p, run_plane
task, arg = sys.argv[1], json.loads(sys.argv[2])
t0 = time.time()
if task == "register":
    s = default_settings()
    s["torch_device"] = "cpu"; s["fs"] = arg["fs"]; s["tau"] = arg["tau"]
    s["diameter"] = arg["diameter"]; s["run"]["do_detection"] = False
    s["registration"]["nonrigid"] = False  # a still movie; rigid registration
    db = {"data_path": [arg["data"]], "save_path0": arg["save"], "nplanes": 1,
          "nchannels": 1, "input_format": "tif"}
    run_s2p(db=db, settings=s)
else:
    plane = Path(arg["plane"])
    db = np.load(plane / "db.npy", allow_pickle=True).item()
    s = np.load(plane / "settings.npy", allow_pickle=True).item()
    s["run"]["do_registration"] = 0; s["run"]["do_detection"] = True
    s["torch_device"] = "cpu"
    run_plane(db, s, db_path=str(plane / "db.npy"))
    if not (plane / "stat.npy").exists():
        raise SystemExit(f"suite2p wrote no stat.npy in {plane}")
print(json.dumps({"seconds": time.time() - t0, "version": suite2p.version}))
"""


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


STUB = """def __getattr__(name):
    raise AttributeError(f"torchvision stub of bench_suite2p.py: {__name__}.{name} unavailable")
"""


def _suite2p_env(py: str, work: Path) -> dict:
    """suite2p's environment: a stub torchvision where the real one cannot load."""
    r = subprocess.run([py, "-c", "import torchvision"], capture_output=True, text=True)
    if r.returncode == 0:
        return dict(os.environ)
    stub = work / "torchvision_stub" / "torchvision"
    (stub / "transforms").mkdir(parents=True, exist_ok=True)
    for f in ("__init__.py", "transforms/__init__.py", "transforms/functional.py",
              "transforms/_functional_tensor.py"):
        (stub / f).write_text("" if f.endswith("__init__.py") else STUB)
    print(f"note: torchvision does not load in {py} "
          f"({r.stderr.strip().splitlines()[-1]}): suite2p runs with a stub torchvision")
    return {**os.environ, "PYTHONPATH": str(stub.parent)}


def _suite2p(py: str, task: str, env: dict, **arg) -> dict:
    r = subprocess.run([py, "-c", S2P, task, json.dumps(arg)], capture_output=True,
                       text=True, timeout=1800, env=env)
    if r.returncode:
        raise SystemExit(f"suite2p {task} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _score(plane: Path, labels: np.ndarray, truth: np.ndarray) -> dict:
    """ROIs found and how well they recover the true cells."""
    from napari_neurorestore.core.metrics import pearson

    stat = np.load(plane / "stat.npy", allow_pickle=True)
    iscell = np.load(plane / "iscell.npy")[:, 0] > 0.5 if (plane / "iscell.npy").exists() \
        else np.ones(len(stat), bool)
    f = np.load(plane / "F.npy") - 0.7 * np.load(plane / "Fneu.npy")
    best: dict[int, float] = {}
    outside = 0
    for i, s in enumerate(stat):
        c = int(labels[int(s["med"][0]), int(s["med"][1])])  # the cell under its centre
        if not c:
            outside += 1
            continue
        best[c] = max(best.get(c, -1.0), pearson(f[i], truth[c - 1]))
    return {"rois": len(stat), "cells": int(iscell.sum()), "recovered": len(best),
            "outside": outside,
            "median_r": float(np.median(list(best.values()))) if best else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cells", type=int, default=30)
    ap.add_argument("--train-seconds", type=float, default=20.0)
    ap.add_argument("--work", default=None, help="a folder to keep (default: a temporary one)")
    ap.add_argument("--s2p-python", default="/work/venv-s2p/bin/python")
    args = ap.parse_args()
    if not Path(args.s2p_python).exists():
        raise SystemExit(f"no suite2p environment at {args.s2p_python} (see the docstring)")
    import tifffile

    from napari_neurorestore.core.simulate import simulate_calcium_movie

    print(f"load average before: {os.getloadavg()}")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_s2p_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size),
                                     n_cells=args.cells, seed=0)
        (work / "raw").mkdir(exist_ok=True)
        tifffile.imwrite(work / "raw" / "movie.tif", sim.raw.astype(np.int16))
        print(f"movie {sim.raw.shape}, {int(sim.labels.max())} cells, values "
              f"{sim.raw.min()}..{sim.raw.max()}")
        fs, tau = 30.0, 0.5  # core.simulate: tau_frames 15 at 30 Hz
        s2p_env = _suite2p_env(args.s2p_python, work)
        r = _suite2p(args.s2p_python, "register", s2p_env, data=str(work / "raw"),
                     save=str(work / "raw"), fs=fs, tau=tau, diameter=[10.0, 10.0])
        plane = work / "raw" / "suite2p" / "plane0"
        print(f"suite2p {r['version']} registration: {r['seconds']:.1f} s -> "
              f"{sorted(p.name for p in plane.iterdir())}")
        before = _sha(plane / "data.bin")
        out = work / "denoised" / "suite2p" / "plane0"
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "napari_neurorestore", "denoise", str(plane), "-o",
               str(out), "--train-seconds", str(args.train_seconds), "-q", "--seed", "0"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
        if res.returncode:
            raise SystemExit(f"neurorestore failed: {res.stderr}")
        print(f"neurorestore denoise -> {out.relative_to(work)}: "
              f"{time.perf_counter() - t0:.1f} s; {res.stdout.strip().splitlines()[0]}")
        rd = _suite2p(args.s2p_python, "detect", s2p_env, plane=str(out))
        same = _sha(plane / "data.bin") == before
        print(f"registered data.bin byte-identical after denoise + suite2p detection: {same}")
        rr = _suite2p(args.s2p_python, "detect", s2p_env, plane=str(plane))
        truth = sim.traces
        for name, folder, t in (("raw", plane, rr), ("denoised", out, rd)):
            s = _score(folder, sim.labels, truth)
            print(f"  {name:<9} suite2p detection + extraction {t['seconds']:6.1f} s: "
                  f"{s['rois']} ROIs ({s['cells']} classified as cells), "
                  f"{s['recovered']}/{int(sim.labels.max())} true cells recovered, "
                  f"{s['outside']} ROIs centred outside every cell, "
                  f"median trace r {s['median_r']:.3f}")
        if not same:
            raise SystemExit("the registered data.bin changed")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
