"""What a run will cost before it starts: peak RAM (and GPU memory), training and
inference time, from the data's shape and a short timed probe.

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

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .io import InputError

#: memory torch needs on first use (thread pools, oneDNN primitives, allocator slack);
#: measured with benchmarks/bench_cost.py
RUNTIME_BYTES = 160 * 2**20
#: a CUDA context with the cuDNN/cuBLAS workspaces
GPU_CONTEXT_BYTES = 600 * 2**20
#: a run is refused when its peak exceeds this fraction of the available memory
FIT_FRACTION = 0.9
#: inference rates on a 2-core x86_64 CPU (probe units per second), used when the probe is
#: skipped; measured with this module's probe (see benchmarks/bench_cost.py)
NOMINAL_RATES = {"denoise": 12e6, "sparse": 20e6, "upsample": 1e6, "isotropize": 3e6}
#: probe time budget (seconds): the measurement stops once it has run this long
PROBE_SECONDS = 0.3
F32 = 4


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
    from .params import PARAMS

    if method not in PARAMS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(PARAMS)}")
    shape = tuple(int(s) for s in getattr(data, "shape", ()))
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"cannot estimate a run on data of shape {shape}")
    if model is not None:
        if model.method != method:
            raise ValueError(f"this is a {model.method!r} model, not a {method!r} model")
        merged = {**model.params}
        if params is not None:  # run-time settings the caller may override
            for k in ("device", "chunk_frames", "tile_size", "ensemble", "back_projection",
                      "denoise", "simulate"):
                if hasattr(params, k):
                    merged[k] = getattr(params, k)
        params = PARAMS[method].from_dict(merged)
    elif params is None:
        params = PARAMS[method]()
    elif getattr(params, "method", method) != method:
        raise ValueError(f"params are for {params.method!r}, not {method!r}")
    itemsize = int(getattr(getattr(data, "dtype", None), "itemsize", 4) or 4)
    lazy = not (isinstance(data, np.ndarray) and not isinstance(data, np.memmap))
    dev = str(device or "cpu")
    if probe and dev == "auto":
        from .device import resolve_device

        dev = resolve_device("auto").type
    gpu = dev in ("cuda", "mps")
    model_fn = _MODELS[method]
    m = model_fn(shape, params, itemsize, lazy, streaming, gpu)
    probed = None
    if probe:
        probed = _probe(method, shape, params, dev, model is None)
    rate = probed["infer_rate"] if probed else NOMINAL_RATES[method]
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


# --------------------------------------------------------------------------- RAM models
# Each returns {"ram": {"train", "output", "predict"}, "gpu", "out_shape", "work" (probe
# units for the whole input), "unit_work" (probe units per reported item), "unit",
# "train_steps"}.

def _read_extra(nbytes_f32: float, itemsize: int, lazy: bool) -> float:
    """Transient of reading a block as float32: the block at its own dtype first, unless
    it is a view of an in-memory array."""
    return nbytes_f32 * itemsize / F32 if lazy else 0.0


def _denoise(shape, p, itemsize, lazy, streaming, gpu):
    if len(shape) not in (3, 4):
        raise InputError(f"denoising needs a (t, y, x) or (t, z, y, x) movie, got shape {shape}")
    t, planes = shape[0], (shape[1] if len(shape) == 4 else 1)
    h, w = shape[-2:]
    hp, wp = h + (-h) % 4, w + (-w) % 4
    fb = F32 * h * w
    cache_budget = 768 * 2**20
    budget = max(p.window, cache_budget // fb // planes)
    if budget >= t:
        seg_frames, n_seg = t, planes
    else:
        run_len = max(p.window * 8, 64)
        seg_frames, n_seg = run_len, planes * max(1, budget // run_len)
    seg = seg_frames * F32 * hp * wp
    cache = n_seg * seg
    padded = (h, w) != (hp, wp)
    # normalising a segment: s and (s - mean) / std live at once (numpy divides the
    # temporary in place), then the padded copy; check_finite's boolean mask; the
    # half-resolution activations kept for backward
    train_act = p.batch_size * (p.patch_size // 2)**2 * F32 * (4 * (p.window - 1) + 8 * p.width)
    train = (cache + (1 + padded) * seg + seg / 4 + _read_extra(seg, itemsize, lazy)
             + 3 * train_act)
    k = p.window // 2
    chunk = min(p.chunk_frames, t)
    block = (chunk + 2 * k) * F32 * hp * wp
    bpix = _batch_pixels_denoise(h, w, gpu)
    act = bpix * F32 * (p.window + 2 + 6 * p.width / 4)  # half-res U-Net, 4x channels
    predict = (2 * block + chunk * fb + _read_extra(block, itemsize, lazy)
               + (0 if gpu else act))
    if streaming:
        predict += chunk * fb  # the zarr chunk being encoded / the memmap pages in flight
    out_bytes = 0 if streaming else t * planes * fb
    frame_work = hp * wp
    return {"ram": {"train": train, "output": out_bytes, "predict": predict},
            "gpu": act + 2 * bpix * F32 * p.window, "out_shape": shape,
            "work": t * planes * frame_work, "unit_work": frame_work, "unit": "frames",
            "train_steps": p.epochs * max(1, -(-(t - 2 * k) * planes // (p.stride * p.batch_size)))}


def _batch_pixels_denoise(h, w, gpu):
    target = 2**22 if gpu else 2**16
    return int(min(64, max(1, round(target / max(h * w, 1))))) * h * w


def _sparse(shape, p, itemsize, lazy, streaming, gpu):
    if len(shape) not in (2, 3, 4):
        raise InputError(f"sparse-axis reconstruction needs 2D-4D data, got shape {shape}")
    m = p.factor
    n = 1 if len(shape) == 2 else shape[0]
    planes = shape[1] if len(shape) == 4 else 1
    na, nb = (shape[-2], shape[-1]) if p.axis == "y" else (shape[-1], shape[-2])
    fb = F32 * na * nb
    k = p.context if n > 1 else 0
    budget = max(2 * k + 1, 512 * 2**20 // fb // planes)
    if budget >= n:
        seg_frames, n_seg = n, planes
    else:
        run_len = max(8 * (2 * k + 1), 64)
        seg_frames, n_seg = run_len, planes * max(1, budget // run_len)
    seg = seg_frames * fb
    cache = n_seg * seg
    train_act = p.batch_size * p.patch_size**2 * F32 * (2 * k + 1 + 3 * m + 12 * p.width)
    # the normalised list is built while the raw one still exists
    train = 2 * cache + seg + _read_extra(seg, itemsize, lazy) + 3 * train_act
    chunk = min(p.chunk_frames, n)
    raw = (chunk + 2 * k) * fb
    res = chunk * fb * m
    bs = 16 if gpu else 2
    act = bs * na * nb * F32 * (2 * k + 1 + 2 * m + 6 * p.width / 2)
    predict = 3 * raw + res + _read_extra(raw, itemsize, lazy) + (0 if gpu else act)
    out_shape = list(shape)
    out_shape[-2 if p.axis == "y" else -1] *= m
    out_bytes = 0 if streaming else n * planes * fb * m
    if p.simulate:  # the sparse copy, the restored and cubic results, the float32 truth
        out_bytes = n * planes * fb * (1 / m + 3)
        out_shape = list(shape)
    frame_work = na * nb * m
    return {"ram": {"train": train, "output": out_bytes, "predict": predict},
            "gpu": act + 3 * raw, "out_shape": out_shape,
            "work": n * planes * frame_work, "unit_work": frame_work, "unit": "frames",
            "train_steps": p.epochs * max(10, -(-n * planes * max(1, na * nb // p.patch_size**2)
                                               // p.batch_size))}


def _upsample_geometry(shape, p):
    nd = len(shape)
    factors = (p.factor, p.factor) if nd == 2 else (1 if p.lateral_only else p.factor,
                                                     p.factor, p.factor)
    halo = p.depth + 2 + 2 + (2 * 3 + 1 if p.back_projection else 0)
    halo = max(halo, p.tile_overlap)
    tile = [min(s, p.tile_size) for s in shape]
    n_tiles = math.prod(-(-s // t) for s, t in zip(shape, tile, strict=True))
    coarse = math.prod(t + 2 * halo for t in tile)
    return factors, halo, tile, n_tiles, coarse


def _upsample(shape, p, itemsize, lazy, streaming, gpu):
    if len(shape) not in (2, 3):
        raise InputError(f"upsampling needs a (z, y, x) volume or a (y, x) image, got {shape}")
    factors, halo, tile, n_tiles, coarse = _upsample_geometry(shape, p)
    fprod = math.prod(factors)
    nbytes = F32 * math.prod(shape)
    cache = min(nbytes, 512 * 2**20)
    # the convolutions run on the coarse grid; the fine crops are the targets
    coarse_patch = math.prod(max(1, p.patch_size // f) for f in factors)
    train_act = p.batch_size * F32 * (coarse_patch * 3 * p.width
                                      + 6 * p.patch_size ** len(shape))
    train = 2 * cache + _read_extra(cache, itemsize, lazy) + 3 * train_act
    if p.prior == "simulated":
        train += 2 * F32 * math.prod((48, 144, 144) if len(shape) == 3 else (384, 384))
    fine = coarse * fprod * F32
    act = coarse * F32 * (3 * p.width + fprod) + (7 if p.back_projection else 3) * fine
    if p.ensemble:
        act += fine
    predict = coarse * F32 * 3 + _read_extra(coarse * F32, itemsize, lazy) + (0 if gpu else act)
    out_shape = tuple(s * f for s, f in zip(shape, factors, strict=True))
    out_bytes = F32 * math.prod(out_shape)
    if p.two_stage:  # the intermediate 2x volume (memory-mapped when above 2 GB)
        mid = out_bytes // 2 ** len(shape)
        predict += mid if mid <= 2 * 2**30 else 0
    if streaming or out_bytes > 2 * 2**30:  # predict memory-maps outputs above 2 GB
        out_bytes = 0
    flips = 2 ** len(shape) if p.ensemble else 1
    return {"ram": {"train": train, "output": out_bytes, "predict": predict},
            "gpu": act + coarse * F32, "out_shape": out_shape,
            "work": n_tiles * coarse * flips * (2 if p.two_stage else 1),
            "unit_work": coarse * flips, "unit": "tiles", "train_steps": p.steps}


def _iso_work(shape, ratio, tile, halo=24):
    """Pixels the network sees to isotropize ``shape`` in blocks of ``tile``."""
    n, hh, ww = shape
    nz = int(round((n - 1) * ratio)) + 1
    nzp = nz + 2 * halo + (-(nz + 2 * halo)) % 4
    tile = max(16, int(tile))
    work = 0
    for y0 in range(0, hh, tile):
        ny = min(hh, y0 + tile) - y0
        hb = min(hh, y0 + tile + halo) - max(0, (y0 - halo) // 4 * 4)
        hb += (halo if y0 == 0 else 0) + (halo if y0 + tile + halo >= hh else 0)
        hb += (-hb) % 4
        for x0 in range(0, ww, tile):
            nx = min(ww, x0 + tile) - x0
            wb = min(ww, x0 + tile + halo) - max(0, (x0 - halo) // 4 * 4)
            wb += (halo if x0 == 0 else 0) + (halo if x0 + tile + halo >= ww else 0)
            wb += (-wb) % 4
            work += nzp * (ny * wb + nx * hb)
    return work, nz, nzp


def _isotropize(shape, p, itemsize, lazy, streaming, gpu):
    if len(shape) != 3:
        raise InputError(f"axial isotropization needs a (z, y, x) volume, got shape {shape}")
    n, hh, ww = shape
    work, nz, nzp = _iso_work(shape, p.z_ratio, p.tile_size)
    halo = 24
    kept = max(1, min(n, 512 * 2**20 // (F32 * hh * ww)))
    cache = kept * F32 * hh * ww
    padded = kept * F32 * (hh + 100) * (ww + 100)
    train_act = p.batch_size * (p.patch_size + 100) * p.patch_size * F32 * (2 + 14 * p.width)
    # slices + stack; then vol, (vol - mean), / std; then the reflect-padded copy
    train = 2 * cache + padded + _read_extra(cache, itemsize, lazy) + 3 * train_act
    tile = max(16, int(p.tile_size))
    hb = min(hh, tile + 2 * halo) + 2 * halo
    wb = min(ww, tile + 2 * halo) + 2 * halo
    block = n * F32 * min(hh, tile + 2 * halo) * min(ww, tile + 2 * halo)
    vi = nzp * F32 * hb * wb
    bpix = 2**20
    act = bpix * F32 * 6 * p.width
    predict = 3 * block + 4 * vi + _read_extra(block, itemsize, lazy) + (0 if gpu else act)
    out_shape = (nz, hh, ww)
    out_bytes = 0 if streaming else F32 * nz * hh * ww
    return {"ram": {"train": train, "output": out_bytes, "predict": predict},
            "gpu": act + 2 * bpix * F32, "out_shape": out_shape, "work": work,
            "unit_work": 1, "unit": "px", "train_steps": p.steps}


_MODELS = {"denoise": _denoise, "sparse": _sparse, "upsample": _upsample,
           "isotropize": _isotropize}


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
    import torch

    from .methods import get_method
    from .models import TrainedModel
    from .progress import drain

    mod = get_method(method)
    rng = np.random.default_rng(0)
    p = params
    dev = torch.device(device)
    if method in ("denoise", "sparse"):
        # one batch of the size predict uses, on a crop of at most 512 x 512 pixels (the
        # rate is per pixel: these nets are fully convolutional)
        a, b = (min(s, 512) for s in shape[-2:])
        if method == "denoise":
            net = mod.build_net(p)
            bs = mod.auto_batch_size((a, b), dev)
            a, b = a + (-a) % 4, b + (-b) % 4
            x = torch.from_numpy(rng.random((bs, p.window - 1, a, b), dtype=np.float32))
            per_batch = bs * a * b
        else:
            k = p.context if len(shape) >= 3 and shape[0] > 1 else 0
            net = mod.build_net(p, k)
            bs = 2 if dev.type == "cpu" else 16
            na, nb = (a, b) if p.axis == "y" else (b, a)
            x = torch.from_numpy(rng.random((bs, 2 * k + 1, na, nb), dtype=np.float32))
            per_batch = bs * a * b * p.factor
        net = net.eval().to(dev)
        x = x.to(dev)
        if dev.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)

        def once(n):
            with torch.inference_mode():
                for _ in range(n):
                    net(x).float().cpu()
        rate = _timed(once, lambda n: n * per_batch)
    elif method == "upsample":
        from dataclasses import replace

        small = replace(p, tile_size=min(p.tile_size, 12 if len(shape) == 3 else 48))
        geo = _upsample_geometry(tuple(min(s, small.tile_size) for s in shape), small)
        net = mod.build_net(small, len(shape))
        model = TrainedModel("upsample", small.to_dict(), net.state_dict(),
                             {"lo": 0.0, "scale": 1.0}, {"ndim": len(shape)})
        flips = 2 ** len(shape) if p.ensemble else 1
        x = rng.random(tuple(min(s, small.tile_size) for s in shape), dtype=np.float32)

        def once(n):
            for _ in range(n):
                drain(mod.predict(x, model, device=device))
        rate = _timed(once, lambda n: n * geo[4] * flips * (2 if p.two_stage else 1))
    else:
        net = mod.build_net(p)
        model = TrainedModel("isotropize", p.to_dict(), net.state_dict(),
                             {"mean": 0.0, "std": 1.0})
        nz_in = max(2, min(shape[0], 16))
        side = 32

        def once(n):
            x = rng.random((nz_in, side, side * n), dtype=np.float32)
            drain(mod.predict(x, model, tile_size=side, device=device))
        rate = _timed(once, lambda n: _iso_work((nz_in, side, side * n), p.z_ratio, side)[0])
    out = {"infer_rate": rate}
    if train:
        out["step_seconds"] = _probe_train_step(method, shape, params, device)
    return out


def _probe_train_step(method: str, shape, p, device: str) -> float:
    """Seconds per optimisation step (forward, backward, Adam) on a random batch of the
    training shape."""
    import torch

    from .methods import get_method

    mod = get_method(method)
    dev = torch.device(device)
    if method == "denoise":
        ps = min(p.patch_size, shape[-2] // 4 * 4, shape[-1] // 4 * 4)
        net = mod.build_net(p)
        x = torch.randn(p.batch_size, p.window - 1, ps, ps)
        y = torch.randn(p.batch_size, 1, ps, ps)
    elif method == "sparse":
        k = p.context if len(shape) >= 3 and shape[0] > 1 else 0
        net = mod.build_net(p, k)
        ps = max(4, min(p.patch_size, shape[-1] // p.factor if p.axis == "y" else shape[-2]))
        x = torch.randn(p.batch_size, 2 * k + 1, ps, ps)
        y = torch.randn(p.batch_size, p.factor, ps, ps)
    elif method == "upsample":
        from ..core.nets import bin_down

        net = mod.build_net(p, len(shape))
        f = net.factors
        side = p.patch_size // p.factor * p.factor
        dims = tuple(min(side, s * ff) // ff * ff for s, ff in zip(shape, f, strict=True))
        y = torch.randn(p.batch_size, 1, *dims)
        x = bin_down(y, f)
    else:
        net = mod.build_net(p)
        ps = min(p.patch_size, shape[-1] // 4 * 4, shape[-2] // 4 * 4)
        x = torch.randn(p.batch_size, 1, ps, ps)
        y = torch.randn(p.batch_size, 1, ps, ps)
    net = net.to(dev)
    x, y = x.to(dev), y.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    threads = torch.get_num_threads()
    if method == "upsample" and dev.type == "cpu":
        torch.set_num_threads(min(threads, mod.TRAIN_THREADS))

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
