"""Zero-shot upsampling of a volume (or a 2D image) after Self-Vision (Zhang et al., 2023).

What is kept from the paper: the only training data is the input itself; random crops of
it, flipped/rotated, are down-sampled by the factor to make network inputs and the crops
are the targets; a light network whose convolutions run on the coarse grid and whose last
layer is a sub-pixel convolution; back-projection at inference; 4x as two 2x stages (the
default; one 2x network trained on the input's own 2x pairs and applied twice, as the
paper's x2-trained-twice); flip ensembling as an option.

What differs (measured in benchmarks/bench_upsample.py; see its output):
- down-sampling is area sampling (binning: each input pixel is the mean of factor^d output
  pixels), the same model as the acquisition this method assumes;
- the network predicts a residual on top of cubic (Keys) interpolation and starts at zero,
  so it only changes what it learned to change;
- dense 3x3(x3) convolutions instead of 5^3 extraction + grouped convolutions (grouped
  convolutions are slow on CPUs);
- intensities are normalised by robust percentiles of the input (any dtype, not /255) and
  the output is in the input's units;
- an optional prior (``prior="simulated"``): crops of a procedurally generated neuron volume,
  binned at the true scale, are mixed into the batches; zero-shot alone trains at a scale
  factor-times coarser than the one it is applied at, and that gap can cost it the gain;
- tiled inference with a halo that covers the receptive field, so tiling does not change
  the result and memory stays bounded; the output can be a memmap/zarr (``out``);
- 2x networks train on small (16^3) crops, many cheap steps;
- a truth-free self-check after training (:mod:`.check`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ...device import resolve_device
from ...errors import InputError
from ...io import check_finite
from ...models import RestoreResult, TrainedModel
from ...progress import CancelToken, PredictTally, Progress, drain
from ...train import fit
from ...zarr_io import ChunkRecorder
from ..base import metadata_for, new_seed
from .check import centre_block, self_check
from .data import (
    _load_training_volume,
    _make_batches,
    _PairSampler,
    _robust_norm,
)
from .net import UpsampleNet, bin_down, interp_upsample
from .spec import (
    UpsampleParams,
    _net_factors,
    axis_factors,
    check_volume,
    grid_change,
    output_shape,
    output_tiles,
    stage_factors,
    tile_grid,
    train_patch,
)

SUFFIX = "upsampled"
#: outputs larger than this are written to a temporary memory-mapped file when ``out`` is None
OUT_MEMMAP_BYTES = 2 * 2**30
#: cubic back-projection iterations before the final exact (box) correction
BP_ITERS = 3
#: intra-op threads while training on a CPU: the batches are small, and with more threads a
#: busy 2-core machine ran 5-15x slower per step (measured: 17 ms vs 260 ms at width 16)
TRAIN_THREADS = int(os.environ.get("NEURORESTORE_TRAIN_THREADS", "1"))
#: shape of the simulated neuron volume used as a prior (true-scale pixels)
PRIOR_SHAPE_3D = (48, 144, 144)
PRIOR_SHAPE_2D = (384, 384)
_PRIOR_CACHE: dict[tuple, np.ndarray] = {}


def simulated_prior_volume(ndim: int, seed: int = 12345) -> np.ndarray:
    """The procedurally generated neuron volume used by ``prior="simulated"`` (cached)."""
    from ...simulate import simulate_neuron_volume

    shape = PRIOR_SHAPE_3D if ndim == 3 else PRIOR_SHAPE_2D
    key = (shape, seed)
    if key not in _PRIOR_CACHE:
        _PRIOR_CACHE[key] = simulate_neuron_volume(shape, seed=seed)
    return _PRIOR_CACHE[key]



# ----------------------------------------------------------------------------- train
def build_net(params: UpsampleParams, ndim: int) -> UpsampleNet:
    factors = _net_factors(axis_factors(ndim, params.factor, params.lateral_only),
                           params.two_stage)
    return UpsampleNet(factors, params.width, params.depth, params.base)


def train(data: Any, params: UpsampleParams, cancel: CancelToken | None = None
          ) -> Generator[Progress, None, TrainedModel]:
    """Train an upsampling network on ``data`` itself ((z, y, x) or (y, x)); no ground truth."""
    from ...._version import __version__

    cancel = cancel or CancelToken()
    factors = check_volume(data, params)
    nf = _net_factors(factors, params.two_stage)
    device = resolve_device(params.device)
    seed = new_seed(params.seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t_start = time.perf_counter()
    yield Progress("prepare", message="reading the input")
    patch = train_patch(params)
    blocks = _load_training_volume(data, rng, (patch,) * data.ndim)
    check_block = centre_block(blocks[0])
    lo, scale = _robust_norm(blocks[0] if len(blocks) == 1 else np.concatenate(
        [b.ravel()[:: max(1, b.size // 100_000)] for b in blocks]))
    blocks = [(b - lo) / scale for b in blocks]
    sampler = _PairSampler(blocks, nf, patch, rng)
    sampler.scale_augment = params.scale_augment
    prior = None
    if params.prior == "simulated":
        yield Progress("prepare", message="simulating a neuron volume for the prior")
        sim = simulated_prior_volume(data.ndim)
        slo, sscale = _robust_norm(sim)
        prior = _PairSampler([(sim - slo) / sscale], nf, patch, rng)
    cancel.check()
    net = build_net(params, data.ndim).to(device)
    remaining = None
    if params.train_seconds is not None:
        remaining = max(1e-3, params.train_seconds - (time.perf_counter() - t_start))
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(min(threads, TRAIN_THREADS))
    try:
        history = yield from fit(net, _make_batches(params, sampler, prior, nf, device),
                                 torch.nn.functional.mse_loss,
                                 10**9 if params.steps is None else params.steps, remaining,
                                 params.learning_rate, cancel)
        seconds = time.perf_counter() - t_start
        state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
        info = {"train_seconds": round(seconds, 2), "steps": len(history),
                "final_loss": float(np.mean(history[-50:])) if history else None,
                "first_loss": float(np.mean(history[:20])) if history else None,
                "seed": seed, "ndim": data.ndim, "software_version": __version__,
                "stages": stage_factors(params, data.ndim), "patch_size": patch}
        model = TrainedModel("upsample", params.to_dict(), state, {"lo": lo, "scale": scale},
                             info)
        yield Progress("check", message="self-check: the input binned and upsampled back")
        t_check = time.perf_counter()
        info["self_check"] = self_check(
            check_block, factors, lambda x: drain(predict(x, model, cancel,
                                                          device=params.device)))
        info["check_seconds"] = round(time.perf_counter() - t_check, 2)
    finally:
        torch.set_num_threads(threads)
    return model


# ----------------------------------------------------------------------------- predict
def load_net(model: TrainedModel, ndim: int, device: torch.device) -> UpsampleNet:
    if model.method != "upsample":
        raise ValueError(f"this is a {model.method!r} model, not an upsampling model")
    trained_ndim = model.info.get("ndim", ndim)
    if trained_ndim != ndim:
        raise InputError(f"this model was trained on {trained_ndim}D data; the input is {ndim}D")
    net = build_net(UpsampleParams.from_dict(model.params), ndim)
    net.load_state_dict(model.state_dict)
    return net.eval().to(device)


def back_project(y: torch.Tensor, x: torch.Tensor, factors: tuple[int, ...], kind: str,
                 iters: int = BP_ITERS) -> torch.Tensor:
    """Iterative back-projection: ``iters`` smooth corrections (the coarse residual
    interpolated), then one exact box correction so that ``bin(y) == x``."""
    for _ in range(iters):
        y = y + interp_upsample(x - bin_down(y, factors), factors, kind)
    r = x - bin_down(y, factors)
    for d, f in enumerate(factors):
        if f > 1:
            r = r.repeat_interleave(f, dim=2 + d)
    return y + r


def _flip_sets(ndim: int, ensemble: bool) -> list[tuple[int, ...]]:
    if not ensemble:
        return [()]
    sets = []
    for m in range(2**ndim):
        sets.append(tuple(2 + a for a in range(ndim) if (m >> a) & 1))
    return sets


def halo_for(net: UpsampleNet, params: UpsampleParams) -> int:
    """Coarse-pixel context each tile needs so that tiles reproduce whole-volume inference."""
    h = net.radius + 2  # network + interpolation taps
    if params.back_projection:
        h += 2 * BP_ITERS + 1
    return max(h, params.tile_overlap)


def _upsample_pass(data: Any, net: UpsampleNet, params: UpsampleParams, factors, norm, out,
                   device, cancel, stage_label: str, out_norm: tuple[float, float] | None,
                   on_tile: Any = None) -> Generator[Progress, None, Any]:
    """One pass of the network over ``data`` tile by tile, written into ``out``.

    Each tile reads ``halo`` extra coarse pixels on every side (reflected at the volume's
    borders) and keeps only its centre, so the result does not depend on the tiling.
    ``norm`` = (lo, scale): input is normalised with it; the output is de-normalised with
    ``out_norm`` (None: left normalised for a next stage). Each tile is written to ``out``
    once, as one block of ``tile * factors`` output voxels (whole chunks of a zarr store
    chunked by :func:`output_chunks`); ``on_tile(i, i + 1)`` is called after tile ``i``
    (C order over the grid) is written.
    """
    halo = halo_for(net, params)
    tile, grid = tile_grid(tuple(data.shape), params.tile_size)
    flips = _flip_sets(data.ndim, params.ensemble)
    tally = PredictTally(len(grid), "tiles", "upsampled", stage_label, on_tile)
    yield tally.start(f"{stage_label}: 0/{len(grid)} tiles")
    with torch.inference_mode():
        for i, a in enumerate(grid):
            cancel.check()
            region, y = _upsample_tile(data, net, params, factors, norm, out_norm, halo, tile,
                                       a, flips, device)
            out[region] = y
            del y
            tally.written(i, i + 1)
            yield tally.step()
    return out


def _upsample_tile(data: Any, net: UpsampleNet, params: UpsampleParams, factors, norm,
                   out_norm, halo: int, tile, a, flips, device) -> tuple[tuple, np.ndarray]:
    """(output region, result) of the tile at input origin ``a`` (see :func:`_upsample_pass`)."""
    lo, scale = norm
    b = [min(s, ai + t) for s, ai, t in zip(data.shape, a, tile, strict=True)]
    rlo = [max(0, ai - halo) for ai in a]
    rhi = [min(s, bi + halo) for s, bi in zip(data.shape, b, strict=True)]
    block = np.asarray(data[tuple(slice(p, q) for p, q in zip(rlo, rhi, strict=True))],
                       np.float32)
    check_finite(block, "the input tile at " + ",".join(map(str, a)))
    pad = [(halo - (ai - p), halo - (q - bi))
           for ai, bi, p, q in zip(a, b, rlo, rhi, strict=True)]
    block = np.pad((block - lo) / scale, pad, mode="symmetric")
    x = torch.from_numpy(np.ascontiguousarray(block))[None, None].to(device)
    del block
    acc = None
    for fl in flips:
        xi = torch.flip(x, fl) if fl else x
        yi = net(xi)
        if fl:
            yi = torch.flip(yi, fl)
        acc = yi if acc is None else acc + yi
        del yi
    y = acc / len(flips) if len(flips) > 1 else acc
    del acc
    if params.back_projection:
        y = back_project(y, x, net.factors, params.base)
    keep = tuple(slice(halo * f, (halo + (bi - ai)) * f)
                 for ai, bi, f in zip(a, b, factors, strict=True))
    y = y[0, 0][keep].float().cpu().numpy()  # a view of the tensor's storage
    if out_norm is not None:
        y = y * out_norm[1] + out_norm[0]
    region = tuple(slice(int(ai) * f, int(bi) * f) for ai, bi, f in zip(a, b, factors,
                                                                        strict=True))
    return region, y


def predict_tiles(data: Any, model: TrainedModel, out: Any, tiles: list[int],
                  tile_size: int | None = None, device: str = "auto", net: Any = None,
                  ensemble: bool | None = None, back_projection: bool | None = None
                  ) -> list[int]:
    """Upsample only the tiles ``tiles`` (indices in C order over :func:`tile_grid`) of
    ``data`` into ``out`` (a task of distributed inference: tiles write disjoint chunks of
    a store chunked by :func:`output_chunks`). One-stage models only. Returns ``tiles``."""
    params = UpsampleParams.from_dict(model.params)
    over = {k: v for k, v in dict(tile_size=tile_size, ensemble=ensemble,
                                  back_projection=back_projection).items() if v is not None}
    params = replace(params, **over)
    factors = check_volume(data, params, training=False)
    dev = resolve_device(device) if net is None else next(net.parameters()).device
    if net is None:
        net = load_net(model, data.ndim, dev)
    if net.factors != factors:
        raise ValueError("tile-by-tile tasks need a one-stage model (not --two-stage)")
    halo = halo_for(net, params)
    tile, grid = tile_grid(tuple(data.shape), params.tile_size)
    flips = _flip_sets(data.ndim, params.ensemble)
    norm = (model.norm["lo"], model.norm["scale"])
    with torch.inference_mode():
        for i in tiles:
            region, y = _upsample_tile(data, net, params, factors, norm, norm, halo, tile,
                                       grid[int(i)], flips, dev)
            out[region] = y
    return list(tiles)


def new_output(shape: tuple[int, ...]) -> Any:
    """A float32 array of ``shape``: numpy, or a temporary memmap above OUT_MEMMAP_BYTES."""
    nbytes = 4 * int(np.prod(shape))
    if nbytes <= OUT_MEMMAP_BYTES:
        return np.empty(shape, np.float32)
    fd, path = tempfile.mkstemp(prefix="neurorestore-upsample-", suffix=".f32")
    os.close(fd)
    return np.memmap(path, dtype=np.float32, mode="w+", shape=shape)


#: bytes of one output voxel of a tile's block (with its halo) held while it is computed:
#: the net's fine-grid output and the back-projection's temporaries (measured: about 31 B
#: at factor 4, 3D, tiles 32 and 48 on a CPU; tile 64 peaked at 2.08 GB in all)
BYTES_PER_BLOCK_VOXEL = 32


#: default working-memory budget of one tile (with the interpreter, torch and the zarr writer
#: a 4x run then peaks below 2 GB)
TILE_BUDGET_BYTES = int(1.25 * 2**30)


def auto_tile_size(model: TrainedModel, ndim: int, budget_bytes: int = TILE_BUDGET_BYTES
                   ) -> int:
    """The largest tile side (input pixels, a multiple of 8, at most the model's tile_size)
    whose working memory fits ``budget_bytes``."""
    params = UpsampleParams.from_dict(model.params)
    factors = axis_factors(ndim, params.factor, params.lateral_only)
    net = build_net(params, ndim)
    halo = halo_for(net, params)
    fine = int(np.prod(factors))
    best = 8
    for t in range(8, max(8, params.tile_size) + 1, 8):
        if BYTES_PER_BLOCK_VOXEL * fine * (t + 2 * halo) ** ndim <= budget_bytes:
            best = t
    return best


def predict(data: Any, model: TrainedModel, cancel: CancelToken | None = None, out: Any = None,
            device: str = "auto", tile_size: int | None = None, ensemble: bool | None = None,
            back_projection: bool | None = None, on_chunk: Any = "auto"
            ) -> Generator[Progress, None, Any]:
    """Upsample ``data`` with a trained model, tile by tile, into ``out`` (any array with
    ``__setitem__`` of the output shape: numpy, a memmap, a zarr array chunked by
    :func:`output_chunks`; allocated as float32 when None, memory-mapped to a temporary
    file when larger than ``OUT_MEMMAP_BYTES``). Returns ``out``.

    ``data`` is read tile by tile (a zarr array, a memmap or a dask array stays lazy).
    ``tile_size``, ``ensemble`` and ``back_projection`` override the model's parameters.
    ``on_chunk(i, j)`` is called when tiles ``i:j`` (C order, see :func:`output_tiles`) are
    written; the default ("auto") is a :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder`
    counting tiles, which keeps a zarr output's progress record up to date. Cancelling
    raises :class:`Cancelled` with a message that says how many tiles were written.
    """
    cancel = cancel or CancelToken()
    params = UpsampleParams.from_dict(model.params)
    over = {k: v for k, v in dict(tile_size=tile_size, ensemble=ensemble,
                                  back_projection=back_projection).items() if v is not None}
    params = replace(params, **over)
    factors = check_volume(data, params, training=False)
    dev = resolve_device(device)
    net = load_net(model, data.ndim, dev)
    norm = (model.norm["lo"], model.norm["scale"])
    shape_out = output_shape(data.shape, factors)
    if out is None:
        out = new_output(shape_out)
    elif tuple(out.shape) != shape_out:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape_out}")
    tiles = output_tiles(model, tuple(data.shape), params.tile_size)
    if isinstance(on_chunk, str) and on_chunk == "auto":
        on_chunk = ChunkRecorder(out, tiles["total"], "tiles", tiles["extra"])
    counted = PredictTally(tiles["total"], "output tiles", "upsampled", "upsampling", on_chunk)
    with counted.cancel_message():
        if net.factors == factors:
            out = yield from _upsample_pass(data, net, params, factors, norm, out, dev, cancel,
                                            "upsampling", norm, counted)
            return out
        # two 2x stages: the intermediate stays normalised; the second stage reads it as is
        # and de-normalises as it writes
        mid_shape = output_shape(data.shape, net.factors)
        mid = new_output(mid_shape)
        try:
            yield from _upsample_pass(data, net, params, net.factors, norm, mid, dev, cancel,
                                      "upsampling (stage 1/2)", None)
            yield from _upsample_pass(mid, net, params, net.factors, (0.0, 1.0), out, dev,
                                      cancel, "upsampling (stage 2/2)", norm, counted)
        finally:
            if isinstance(mid, np.memmap):
                path = mid.filename
                del mid
                os.unlink(path)
    return out


def preview(data: Any, params: UpsampleParams | None = None, center: tuple[int, ...] | None = None,
            size: int = 64, cancel: CancelToken | None = None, model: TrainedModel | None = None,
            ) -> Generator[Progress, None, RestoreResult]:
    """Upsample only a crop of ``data`` (side ``size`` input pixels along y/x and z, centred
    at ``center`` in input pixel coordinates; the volume's centre by default).

    Training uses the whole input (the same model a run would train, for the same seed), so
    ``result.model`` can be passed to a run (``engine.restore(..., model=...)``) to process the whole volume
    without training again. The result's ``translate_shift`` includes the crop's offset, so
    the preview overlays the input in napari.
    """
    params = params or UpsampleParams()
    factors = check_volume(data, params)
    if center is None:
        center = tuple(s // 2 for s in data.shape)
    if len(center) != data.ndim:
        raise ValueError(f"center needs {data.ndim} coordinates, got {center}")
    lo = []
    hi = []
    for s, c in zip(data.shape, center, strict=True):
        n = min(s, max(size, 1))
        a = int(np.clip(int(round(c)) - n // 2, 0, s - n))
        lo.append(a)
        hi.append(a + n)
    if model is None:
        model = yield from train(data, params, cancel)
    crop = np.asarray(data[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))])
    shape_out = output_shape(crop.shape, factors)
    out = np.empty(shape_out, np.float32)
    # the crop's own (mirrored) borders stand in for the volume's context around it
    mp = replace(UpsampleParams.from_dict(model.params), tile_size=params.tile_size)
    dev = resolve_device(params.device)
    out = yield from _upsample_pass(crop, load_net(model, data.ndim, dev), mp, factors,
                                    (model.norm["lo"], model.norm["scale"]), out, dev,
                                    cancel or CancelToken(), "preview",
                                    (model.norm["lo"], model.norm["scale"]))
    scale_factors, shift = grid_change(factors)
    shift = tuple(a + d for a, d in zip(lo, shift, strict=True))
    yield Progress("done", 1, 1, message="done")
    return RestoreResult(out, model, metadata_for(model, {"factors": list(factors),
                                                         "preview_origin": lo}),
                         SUFFIX + " preview", scale_factors, shift)
