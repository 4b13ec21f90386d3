"""What a run will cost before it starts: peak RAM (and GPU memory), training and
inference time, from the data's shape and a short timed probe.

Each method's :class:`~.methods.base.Method` holds its own memory model and probe (see
``Method.memory_model``, ``probe_inference``, ``probe_batch``); this module combines them.
The RAM model follows what each method's ``train`` and ``predict`` really allocate
(training caches and their normalised copies, the output when it is held in memory, the
per-chunk or per-tile buffers and the network's activations), so it never touches the
data itself: a lazy (dask, zarr, memmap) input is only asked for its ``shape`` and
``dtype``. The probe builds the method's network (untrained), runs the method's own
``predict`` on a small synthetic input for about 0.3-1 s after a warm-up, and
extrapolates to the whole input. Figures are the memory this run adds to the process
(the interpreter, torch and an input already in memory are not counted), compared with
the memory the system reports as available.

torch is imported only by the probe: importing this module stays light.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .methods import get

#: memory torch needs on first use (thread pools, oneDNN primitives, allocator slack);
#: measured with benchmarks/bench_cost.py
RUNTIME_BYTES = 160 * 2**20
#: a CUDA context with the cuDNN/cuBLAS workspaces
GPU_CONTEXT_BYTES = 600 * 2**20
#: a run is refused when its peak exceeds this fraction of the available memory
FIT_FRACTION = 0.9
#: probe time budget (seconds): the measurement stops once it has run this long
PROBE_SECONDS = 0.3


# --------------------------------------------------------------------------- the estimate
@dataclass(frozen=True)
class CostEstimate:
    """Expected cost of one run (see :func:`estimate_cost`). Bytes are what the run adds to
    the process; seconds are wall time on this machine."""

    method: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    streaming: bool
    peak_ram_bytes: int
    gpu_bytes: int | None
    train_seconds: float | None
    train_capped: bool
    infer_seconds: float
    free_ram_bytes: int | None
    fits: bool
    probe_items_per_s: float | None
    probe_unit: str
    device: str
    breakdown: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line, e.g. 'peak RAM ~1.3 GB of 20.1 GB free · training ≤ 60 s ·
        inference ~3 min (57 frames/s probed)'."""
        free = "" if self.free_ram_bytes is None else f" of {_gb(self.free_ram_bytes)} free"
        parts = [f"peak RAM ~{_gb(self.peak_ram_bytes)}{free}"
                 + (" (streamed)" if self.streaming else "")]
        if self.gpu_bytes is not None:
            parts.append(f"GPU ~{_gb(self.gpu_bytes)}")
        if self.train_seconds is not None:
            parts.append(f"training {'≤' if self.train_capped else '~'} "
                         f"{_duration(self.train_seconds)}")
        if self.probe_items_per_s is not None:
            rate = f"{_rate(self.probe_items_per_s)} {self.probe_unit}/s probed"
        else:
            rate = "nominal CPU rate, not probed"
        took = _duration(self.infer_seconds)
        parts.append(f"inference {'' if took.startswith('<') else '~'}{took} ({rate})")
        line = " · ".join(parts)
        if not self.fits:
            line += " · does NOT fit in free memory"
        return line

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = self.summary()
        return d


def _gb(n: float) -> str:
    if n < 2**30:
        return f"{n / 2**20:.0f} MB"
    return f"{n / 2**30:.1f} GB"


def _duration(s: float) -> str:
    if s < 90:
        return f"{max(s, 0.0):.0f} s" if s >= 1 else "< 1 s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _rate(r: float) -> str:
    if r >= 1e6:
        return f"{r / 1e6:.1f} M"
    if r >= 1e4:
        return f"{r / 1e3:.0f} k"
    return f"{r:.3g}"


def free_ram_bytes() -> int | None:
    """Memory available to a new allocation: /proc/meminfo's MemAvailable (Linux), else
    the free physical pages (os.sysconf); None when neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


# --------------------------------------------------------------------------- entry point
def estimate_cost(method: str, data: Any, params: Any = None, *, model: Any = None,
                  device: str = "cpu", streaming: bool = False, probe: bool = True
                  ) -> CostEstimate:
    """Estimate the peak RAM, GPU memory and time of ``method`` on ``data``.

    ``data`` is any array with ``shape`` and ``dtype`` (it is never read). ``params`` is
    the method's parameter dataclass (defaults when None); with a trained ``model`` its
    parameters are used and no training is counted. ``streaming``: the output goes to a
    store (``out=`` a zarr array or a memory-mapped TIFF) instead of memory. ``probe``:
    time the method's network on a small synthetic input (about 0.3-1 s); False uses
    nominal CPU rates and costs nothing. ``device``: "cpu", "cuda", "mps" or "auto"
    ("auto" is resolved only when probing, else counted as the CPU).
    """
    m_ = get(method)  # refuses an unknown method
    shape = tuple(int(s) for s in getattr(data, "shape", ()))
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"cannot estimate a run on data of shape {shape}")
    if model is not None:
        if model.method != method:
            raise ValueError(f"this is a {model.method!r} model, not a {method!r} model")
        params = m_.merge_params(model, params)  # the caller's run-time settings
    elif params is None:
        params = m_.params_class()
    elif getattr(params, "method", method) != method:
        raise ValueError(f"params are for {params.method!r}, not {method!r}")
    itemsize = int(getattr(getattr(data, "dtype", None), "itemsize", 4) or 4)
    lazy = not (isinstance(data, np.ndarray) and not isinstance(data, np.memmap))
    dev = str(device or "cpu")
    if probe and dev == "auto":
        from .device import resolve_device

        dev = resolve_device("auto").type
    gpu = dev in ("cuda", "mps")
    m = m_.memory_model(shape, params, itemsize, lazy, streaming, gpu)
    probed = None
    if probe:
        probed = _probe(method, shape, params, dev, model is None)
    rate = probed["infer_rate"] if probed else m_.nominal_rate
    infer = m["work"] / rate
    train_s, capped = None, False
    if model is None:
        cap = params.train_seconds
        if probed:
            full = m["train_steps"] * probed["step_seconds"]
            train_s, capped = (min(cap, full), full > cap) if cap is not None else (full, False)
        elif cap is not None:
            train_s, capped = float(cap), True
        else:
            train_s = m["train_steps"] * 0.05  # nominal 50 ms/step on a CPU
    unit_scale = m["unit_work"]
    items = None if not probed else rate / unit_scale
    breakdown = {k: int(v) for k, v in m["ram"].items()}
    peak = int(RUNTIME_BYTES + max(breakdown.get("train", 0) if model is None else 0,
                                   breakdown.get("output", 0) + breakdown.get("predict", 0)))
    free = free_ram_bytes()
    fits = free is None or peak <= FIT_FRACTION * free
    gpu_bytes = int(GPU_CONTEXT_BYTES + m["gpu"]) if gpu else None
    return CostEstimate(method, shape, tuple(m["out_shape"]), bool(streaming), peak, gpu_bytes,
                        train_s, capped, float(infer), free, fits, items, m["unit"], dev,
                        breakdown)


def refuse_if_too_big(est: CostEstimate, how_to_stream: str) -> None:
    """Raise :class:`InputError` when ``est`` does not fit in free memory; the message
    names ``how_to_stream`` (e.g. "-o OUT.zarr"), the way to run it in bounded memory."""
    if est.fits:
        return
    need, free = _gb(est.peak_ram_bytes), _gb(est.free_ram_bytes or 0)
    if not est.streaming:
        raise InputError(
            f"this {est.method} run needs about {need} of memory (the result alone is "
            f"{_gb(est.breakdown.get('output', 0))}) but only {free} is free: stream the "
            f"result to disk instead ({how_to_stream})")
    raise InputError(
        f"this {est.method} run needs about {need} of memory even with its result streamed "
        f"to disk ({how_to_stream}), but only {free} is free: close other programs or lower "
        f"the chunk/tile size")


# --------------------------------------------------------------------------- the probe
def _timed(run_once, units_for, seconds: float = PROBE_SECONDS, max_seconds: float = 1.0
           ) -> float:
    """Units per second of ``run_once(size)``: one warm-up, then sizes doubling until a
    run takes ``seconds`` (or the total passes ``max_seconds``)."""
    size = 1
    for _ in range(2):  # warm-up (first-call allocations, oneDNN primitive creation)
        t0 = time.perf_counter()
        run_once(size)
        if time.perf_counter() - t0 > seconds:
            break
    t_total = 0.0
    rate = None
    while True:
        t0 = time.perf_counter()
        run_once(size)
        dt = time.perf_counter() - t0
        t_total += dt
        rate = units_for(size) / max(dt, 1e-9)
        if dt >= seconds or t_total + 2 * dt > max_seconds:
            return rate
        size *= 2 if dt > seconds / 4 else 4


def _probe(method: str, shape, params, device: str, train: bool) -> dict[str, float]:
    """Inference rate (probe units/s) and, when ``train``, seconds per training step."""
    out = {"infer_rate": get(method).probe_inference(shape, params, device, _timed)}
    if train:
        out["step_seconds"] = _probe_train_step(method, shape, params, device)
    return out


def _probe_train_step(method: str, shape, p, device: str) -> float:
    """Seconds per optimisation step (forward, backward, Adam) on a random batch of the
    training shape."""
    import torch

    m = get(method)
    dev = torch.device(device)
    net, x, y = m.probe_batch(shape, p)
    net = net.to(dev)
    x, y = x.to(dev), y.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    threads = torch.get_num_threads()
    if m.train_threads() and dev.type == "cpu":
        torch.set_num_threads(min(threads, m.train_threads()))

    def once(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = ((net(x)[:, : y.shape[1]] - y) ** 2).mean()
            loss.backward()
            opt.step()
    try:
        steps_per_s = _timed(once, lambda n: n, seconds=PROBE_SECONDS / 2, max_seconds=0.6)
    finally:
        torch.set_num_threads(threads)
    return 1.0 / steps_per_s
