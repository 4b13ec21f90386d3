"""Check core/cost.py's estimates against measured runs: predicted vs measured peak RAM
(the memory a run adds to its process) and training / inference time, per method.

Each case runs in a fresh subprocess: it builds the input, resets the kernel's peak-RSS
counter (/proc/self/clear_refs), estimates the cost (with the probe), runs the method
and reads the peak (VmHWM) back. Linux only.

    python benchmarks/bench_cost.py [--cases denoise,denoise-streamed,sparse,upsample,isotropize]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CASES = {
    # name: (method, shape, params, streamed)
    "denoise": ("denoise", (300, 512, 512), {"epochs": 2}, False),
    "denoise-streamed": ("denoise", (300, 512, 512), {"epochs": 2}, True),
    "sparse": ("sparse", (200, 128, 512), {"epochs": 1, "train_seconds": 10.0}, False),
    "upsample": ("upsample", (32, 128, 128), {"steps": 100}, False),
    "isotropize": ("isotropize", (40, 384, 384), {"z_ratio": 3.0, "steps": 100}, False),
}

CHILD = r"""
import json, os, sys, time
import numpy as np
import torch
from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.cost import estimate_cost
from napari_neurorestore.core.methods import get_method
from napari_neurorestore.core.methods import names, params_for
from napari_neurorestore.core.progress import drain

method, shape, kw, streamed, tmp = json.loads(sys.argv[1])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
data = np.zeros(shape, np.uint16)
rng = np.random.default_rng(0)
for i in range(shape[0]):
    data[i] = rng.poisson(50, shape[1:])
params = params_for(method)(device="cpu", **kw)
out = None
if streamed:
    from napari_neurorestore.core.io import open_output
    out = open_output(os.path.join(tmp, "out.zarr"), shape, chunks=params.chunk_frames)
t = time.perf_counter()
est = estimate_cost(method, data, params, device="cpu", streaming=streamed)
probe_s = time.perf_counter() - t
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS")
mod = get_method(method)
t = time.perf_counter()
model = drain(mod.train(data, params))
t_train = time.perf_counter() - t
peak_train = status("VmHWM") - base
extra = {} if out is None else {"out": out}
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base2 = status("VmRSS")
t = time.perf_counter()
res = drain(restore(method, data, params, model=model, **extra))
t_inf = time.perf_counter() - t
# the predict phase's peak relative to the pre-training baseline (torch warmed up)
peak_pred = status("VmHWM") - base2 + max(0, base2 - base)
print(json.dumps({"est": est.to_dict(), "peak": max(peak_train, peak_pred),
                  "peak_train": peak_train, "peak_pred": peak_pred, "train": t_train,
                  "infer": t_inf, "probe": probe_s}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'case':18s} {'RAM pred':>9s} {'RAM meas':>9s} {'err':>6s}  {'train pred':>10s} "
          f"{'meas':>6s}  {'infer pred':>10s} {'meas':>6s}  probe")
    for name in args.cases.split(","):
        method, shape, kw, streamed = CASES[name]
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-c", CHILD,
                                json.dumps([method, shape, kw, streamed, tmp])],
                               capture_output=True, text=True)
        if r.returncode:
            print(f"{name}: failed\n{r.stderr[-2000:]}")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        e = d["est"]
        pred, meas = e["peak_ram_bytes"] / 2**20, d["peak"] / 2**20
        print(f"{name:18s} {pred:7.0f}MB {meas:7.0f}MB {100 * (pred - meas) / meas:+5.0f}%  "
              f"{e['train_seconds']:9.1f}s {d['train']:5.1f}s  {e['infer_seconds']:9.1f}s "
              f"{d['infer']:5.1f}s  {d['probe']:.1f}s")
        b = {k: v / 2**20 for k, v in e["breakdown"].items()}
        rt = (e["peak_ram_bytes"] - max(e["breakdown"]["train"], e["breakdown"]["output"]
                                        + e["breakdown"]["predict"])) / 2**20
        print(f"{'':18s} by phase (MB): training pred {b['train'] + rt:.0f} meas "
              f"{d['peak_train'] / 2**20:.0f}; inference pred "
              f"{b['output'] + b['predict'] + rt:.0f} meas {d['peak_pred'] / 2**20:.0f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
