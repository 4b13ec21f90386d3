"""Zero-shot upsampling's contract (numpy only; the network lives in :mod:`.heavy`): the
area-sampling conventions (axis factors, output grid, binning as the forward model), the
tile grid of streamed outputs and the cost model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...errors import InputError
from ...io import check_dtype, check_finite
from ...models import TrainedModel
from ...params import _check_choice, _check_int, _common, _length, _Params, _seconds, opt
from ..base import F32, Grid, Method, Option, OutputLayout, as_f32, grid_mismatch, read_extra

#: the working-memory budget of one inference tile when no tile size is given (GiB)
MEMORY_BUDGET_GB = 1.25


def axis_factors(ndim: int, factor: int, lateral_only: bool) -> tuple[int, ...]:
    """Per-axis factors: (f, f) for 2D; (f, f, f) or (1, f, f) for 3D."""
    if ndim == 2:
        return (factor, factor)
    return (1 if lateral_only else factor, factor, factor)


def output_shape(shape: tuple[int, ...], factors: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(s) * f for s, f in zip(shape, factors, strict=True))


def grid_change(factors: tuple[int, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(scale_factors, translate_shift) of the output relative to the input (input pixels).

    Input pixel i covers [i - 1/2, i + 1/2); output pixel j of an axis upsampled by f covers
    [(j - 1/2) / f, (j + 1/2) / f) - (f - 1) / (2 f): its first centre is at -(f - 1) / (2 f).
    """
    return (tuple(1.0 / f for f in factors), tuple(-(f - 1) / (2.0 * f) for f in factors))


def bin_array(x: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Area down-sampling (the acquisition model): mean over ``factors`` blocks; trailing
    pixels that do not fill a block are dropped. float32 out."""
    x = np.asarray(x, np.float32)
    sl = tuple(slice(0, (s // f) * f) for s, f in zip(x.shape, factors, strict=True))
    x = x[sl]
    shp = []
    for s, f in zip(x.shape, factors, strict=True):
        shp += [s // f, f]
    return x.reshape(shp).mean(axis=tuple(range(1, 2 * x.ndim, 2)), dtype=np.float64
                                ).astype(np.float32)


def check_volume(data: Any, params: UpsampleParams, training: bool = True) -> tuple[int, ...]:
    """Validate a (z, y, x) volume or a (y, x) image; return the per-axis factors.

    ``training``: the image must also hold one training patch along y and x.
    """
    check_dtype(data)
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) not in (2, 3):
        raise InputError(
            f"expected a (z, y, x) volume or a (y, x) image, got {len(shape)}D data of shape "
            f"{shape}; for movies or channels, upsample one volume at a time")
    factors = axis_factors(len(shape), params.factor, params.lateral_only)
    patch = train_patch(params)
    for ax, (n, f) in enumerate(zip(shape, factors, strict=True)):
        lateral = ax >= len(shape) - 2
        if training and lateral and n < patch:
            raise InputError(
                f"the image ({'x'.join(map(str, shape))}) is smaller than one training patch "
                f"({patch} pixels along y and x); use a smaller patch_size "
                f"(>= {3 * params.factor}) or a larger image")
        if training and lateral and patch < 3 * params.factor:
            raise InputError(f"patch_size {patch} is too small for factor "
                             f"{params.factor} (min {3 * params.factor})")
        if training and not lateral and f > 1 and n < 2 * f:
            raise InputError(
                f"the volume has {n} z-slice(s); upsampling z by {f} needs at least {2 * f} "
                "(or use lateral_only)")
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap) and data.nbytes < 2**31:
        check_finite(data)
    return factors


def _net_factors(factors: tuple[int, ...], two_stage: bool) -> tuple[int, ...]:
    return tuple(2 if (two_stage and f == 4) else f for f in factors)


def staged(params: UpsampleParams) -> bool:
    """Whether the model is two 2x stages of one 2x network (factor 4 with ``two_stage``)."""
    return bool(params.two_stage and params.factor == 4)


def stage_factors(params: UpsampleParams, ndim: int) -> list[list[int]]:
    """The per-axis factors of each pass over the data (one, or two for a staged 4x)."""
    factors = axis_factors(ndim, params.factor, params.lateral_only)
    nf = list(_net_factors(factors, params.two_stage))
    return [nf, nf] if staged(params) else [nf]


#: training crop side (input pixels) when ``patch_size`` is None: a 2x network (2x, and
#: both stages of a staged 4x) trains on 16^3 crops (8^3 coarse pixels): steps ~7x cheaper
#: than 36^3 crops, and more of them beat fewer larger ones (simulated volume, staged 4x:
#: 36^3 450 steps +2.7 dB, 24^3 1600 steps +3.4 dB, 16^3 2000 steps +3.4 dB at a third of
#: 24^3's time, 12^3 3000 steps +3.1 dB; 2x: 36^3 550 steps +4.3 dB, 16^3 3500 steps
#: +5.7 dB in about the same time; benchmarks/bench_upsample.py). 3x: 36.
PATCH_AUTO = 36
PATCH_AUTO_2X = 16


def train_patch(params: UpsampleParams) -> int:
    """The training crop side in input pixels (``patch_size``, or its automatic value)."""
    if params.patch_size is not None:
        return int(params.patch_size)
    return PATCH_AUTO_2X if params.factor == 2 or staged(params) else PATCH_AUTO


def tile_grid(shape: tuple[int, ...], tile_size: int) -> tuple[tuple[int, ...], np.ndarray]:
    """(tile shape, tile origins in C order) of the inference tiles of a volume of ``shape``
    (input pixels): tiles of ``tile_size`` along every axis (clipped to the volume), the
    last ones along an axis smaller."""
    tile = tuple(min(int(s), int(tile_size)) for s in shape)
    starts = [list(range(0, s, t)) for s, t in zip(shape, tile, strict=True)]
    grid = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape))
    return tile, grid


def _final_pass(model: TrainedModel, shape: tuple[int, ...]
                ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, per-axis factors) of the pass that writes the output: the input itself,
    or for a two-stage model the 2x intermediate."""
    params = UpsampleParams.from_dict(model.params)
    factors = axis_factors(len(shape), params.factor, params.lateral_only)
    nf = _net_factors(factors, params.two_stage)
    if nf == factors:
        return tuple(shape), factors
    return output_shape(tuple(shape), nf), nf


def output_chunks(model: TrainedModel, shape: tuple[int, ...], tile_size: int | None = None
                  ) -> tuple[int, ...]:
    """Chunk shape of a zarr output such that every inference tile writes whole chunks
    (one chunk per tile): the tile times the factors of the pass that writes the output."""
    tile_size = int(tile_size or UpsampleParams.from_dict(model.params).tile_size)
    in_shape, f = _final_pass(model, shape)
    tile, _ = tile_grid(in_shape, tile_size)
    return tuple(t * fi for t, fi in zip(tile, f, strict=True))


def output_tiles(model: TrainedModel, shape: tuple[int, ...], tile_size: int | None = None
                 ) -> dict[str, Any]:
    """Number and layout of the tiles the output is written in (for a progress record)."""
    tile_size = int(tile_size or UpsampleParams.from_dict(model.params).tile_size)
    in_shape, f = _final_pass(model, shape)
    tile, grid = tile_grid(in_shape, tile_size)
    return {"total": len(grid),
            "extra": {"tile_shape": [t * fi for t, fi in zip(tile, f, strict=True)],
                      "tile_grid": [-(-s // t) for s, t in zip(in_shape, tile, strict=True)]}}


@dataclass(frozen=True)
class UpsampleParams(_Params):
    """Parameters of zero-shot upsampling (after Self-Vision).

    factor : output pixels per input pixel along each upsampled axis (2, 3 or 4).
    lateral_only : upsample y and x only (a 3D volume keeps its z sampling).
    prior : "none" trains on the input alone (strict zero-shot); "simulated" also trains on
        a procedurally generated neuron volume at the true scale (no user data), mixed with
        the input's own crops. See the benchmark for when each wins.
    steps : optimisation steps (None = no limit: ``train_seconds`` alone ends training;
        whichever of ``steps`` and ``train_seconds`` comes first ends training).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the training crops, in input pixels (rounded down to a multiple of
        the factor; clipped to the volume's depth along z). None: 16 for a 2x network (2x, and
        the two stages of a staged 4x), 36 otherwise.
    batch_size, learning_rate, width, depth : training batch, Adam's initial learning rate,
        channels and hidden layers of the network.
    base : the interpolation the network adds its residual to ("cubic" or "linear").
    scale_augment : half of the batches are crops interpolated up by a random factor in
        [1, factor] before binning, so structures also appear at the size they have at the
        scale the network is applied at.
    back_projection : make the output bin back exactly to the input (data consistency).
    ensemble : average the predictions over flips (8x slower inference).
    two_stage : factor 4 as two 2x stages of one 2x network, trained on the input's own 2x
        pairs (default; False: one 4x network trained on the input binned 4x). 2x and 3x
        are one stage either way; the stages used are recorded (``stages``).
    seed, device : as for the other methods.
    tile_size : side of the inference tiles (input pixels); bounds memory, does not change
        the result.
    tile_overlap : minimum context read around each tile (input pixels). The context is
        never less than the network's receptive field (plus back-projection's), so tile
        centres are exact and are stitched without blending; 0 = just that.
    """

    factor: int = opt(3, "upsampling factor per axis", min=2, max=4, choices=(2, 3, 4))
    lateral_only: bool = opt(False, "upsample y and x only")
    prior: str = opt("none", "'simulated': also train on a simulated neuron volume at the true scale ('none': the input alone)", choices=("none", "simulated"))
    steps: int | None = _length("steps", "optimisation steps of one batch")
    train_seconds: float | None = _seconds("steps")
    patch_size: int | None = opt(None, "training crop side in input pixels (default: 16 for a 2x network: 2x and a staged 4x; else 36)", min=8, max=512)
    batch_size: int = opt(8, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=256)
    depth: int = opt(4, "hidden layers of the network", min=0, max=16)
    base: str = opt("cubic", "the interpolation the network adds its residual to", choices=("cubic", "linear"))
    scale_augment: bool = opt(True, "scale augmentation: half of the batches are crops interpolated up by a random factor")
    back_projection: bool = opt(True, "force the output to bin back to the input (data consistency)")
    ensemble: bool = opt(False, "average over flips (8x slower)")
    two_stage: bool = opt(True, "factor 4 as two 2x stages of one 2x network (2x, 3x: one stage)", on_flag="--two-stage")
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    tile_size: int = opt(64, "inference tile side in input pixels (memory bound; the CLI's default: the largest up to 64 whose working memory fits --memory-budget)", min=8, max=4096, step=8)
    tile_overlap: int = opt(0, "minimum context read around each tile (input pixels; 0 = the receptive field)", min=0, max=256)

    method = "upsample"

    def __post_init__(self) -> None:
        _check_int("factor", self.factor, 2, 4)
        for name in ("lateral_only", "scale_augment", "back_projection", "ensemble",
                     "two_stage"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_choice(self, "prior")
        _check_choice(self, "base")
        self._check_training("steps", (8, 512), 256, patch_multiple=1)
        _check_int("depth", self.depth, 0, 16)
        _check_int("tile_size", self.tile_size, 8)
        _check_int("tile_overlap", self.tile_overlap, 0)


class UpsampleMethod(Method):
    params_class = UpsampleParams
    name = "upsample"
    module = "napari_neurorestore.core.methods.upsample.heavy"
    help = "zero-shot 2-4x upsampling of a volume or image (Self-Vision)"
    label = "Upsample (Self-Vision)"
    has_preview = True
    description = ("Train on the input itself (crops binned by the factor -> crops) and "
                   "return it with factor-times finer sampling (area-sampling convention: "
                   "binning the output by the factor gives the input back).")
    input_help = "(z, y, x) or (y, x) TIFF or zarr store (read tile by tile)"
    noun = "an upsampling model"
    runtime_fields = ("device", "tile_size", "ensemble", "back_projection")
    cli_options = (
        Option("memory_budget", "float", "working memory of one tile when --tile-size is "
               f"not given, in GiB (default {MEMORY_BUDGET_GB})", metavar="GB",
               default=MEMORY_BUDGET_GB),
    )
    distributed = True
    keeps_time = False
    nominal_rate = 1e6
    suffix = "upsampled"

    def check_input(self, data: Any, params: Any, training: bool = True) -> None:
        check_volume(data, params, training=training)

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        factors = axis_factors(len(input_shape), params.factor, params.lateral_only)
        scale, shift = grid_change(factors)
        return Grid(output_shape(tuple(input_shape), factors), scale, shift)

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        shape = tuple(restored.shape)
        factors = md.get("factors")
        if not factors:
            factors = [s // max(i, 1) for s, i in zip(shape, input_shape, strict=False)]
        factors = [int(f) for f in factors]
        if len(factors) != len(shape) or any(s != i * f for s, i, f in
                                             zip(shape, input_shape, factors, strict=True)):
            raise grid_mismatch(shape, input_shape,
                                f"binning by {factors} does not give the input's shape")
        if index is not None:
            if factors[0] != 1:
                raise grid_mismatch(shape, input_shape,
                                    "a frame range needs a first axis that was not upsampled")
            r = as_f32(restored[index])
        else:
            r = as_f32(restored)
        new = []
        for n, f in zip(r.shape, factors, strict=True):
            new += [n // f, f]
        return r.reshape(new).mean(axis=tuple(range(1, 2 * len(factors), 2)), dtype=np.float64
                                   ).astype(np.float32)

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """The truth-free self-check: the gain over cubic interpolation one scale coarser."""
        if "self_check" not in info:
            return None
        from .check import format_check

        return format_check(info["self_check"])

    def check_request(self, req, model) -> None:
        if req.distributed and staged(req.params):
            raise ValueError("--workers/--dask-scheduler need a one-stage model (at factor 4: "
                             "--no-two-stage)")

    def prepare_predict(self, model, input_shape, params, given, options) -> Any:
        """``params`` with the inference tile: the one given, or the largest whose working
        memory fits ``options["memory_budget"]`` GiB (default :data:`MEMORY_BUDGET_GB`)."""
        if given.get("tile_size"):
            return replace(params, tile_size=int(given["tile_size"]))
        budget = options.get("memory_budget")
        budget = MEMORY_BUDGET_GB if budget is None else float(budget)
        return replace(params, tile_size=self.impl().auto_tile_size(
            model, len(input_shape), int(budget * 2**30)))

    def load_net(self, model, ndim, device):
        return self.impl().load_net(model, ndim, device)

    def predict_part(self, data, model, params, out, a, b, net=None) -> None:
        self.impl().predict_tiles(data, model, out, list(range(a, b)), params.tile_size,
                                  net=net, ensemble=params.ensemble,
                                  back_projection=params.back_projection)

    def predict(self, data, model, params, cancel=None, out=None, on_chunk="auto", **options):
        return self.impl().predict(data, model, cancel, out=out, device=params.device,
                                   tile_size=params.tile_size, ensemble=params.ensemble,
                                   back_projection=params.back_projection, on_chunk=on_chunk)

    def new_output(self, shape):
        """float32 numpy; a temporary memmap when large (``upsample.OUT_MEMMAP_BYTES``)."""
        return self.impl().new_output(shape)

    def output_layout(self, model, input_shape, params) -> OutputLayout:
        tiles = output_tiles(model, tuple(input_shape), params.tile_size)
        return OutputLayout(chunk_shape=output_chunks(model, tuple(input_shape), params.tile_size),
                            axes="ZYX" if len(input_shape) == 3 else "YX", unit="tiles",
                            total=tiles["total"], extra=tiles["extra"])

    def output_metadata(self, model, params, input_shape) -> dict:
        return {"factors": list(axis_factors(len(input_shape), params.factor,
                                             params.lateral_only))}

    def describe(self, model, params, grid) -> str:
        f = [round(1 / s) for s in grid.scale_factors]
        return (f"({'x'.join(map(str, grid.shape))}, float32, pixel size = input's / "
                f"{'x'.join(map(str, f))})")

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape, p, itemsize, lazy, streaming, gpu):
        if len(shape) not in (2, 3):
            raise InputError(f"upsampling needs a (z, y, x) volume or a (y, x) image, got {shape}")
        factors, halo, tile, n_tiles, coarse = _cost_geometry(shape, p)
        fprod = math.prod(stage_factors(p, len(shape))[-1])
        nbytes = F32 * math.prod(shape)
        cache = min(nbytes, 512 * 2**20)
        # the convolutions run on the coarse grid; the fine crops are the targets
        patch = train_patch(p)
        coarse_patch = math.prod(max(1, patch // f) for f in stage_factors(p, len(shape))[0])
        train_act = p.batch_size * F32 * (coarse_patch * 3 * p.width
                                          + 6 * patch ** len(shape))
        train = 2 * cache + read_extra(cache, itemsize, lazy) + 3 * train_act
        if p.prior == "simulated":
            train += 2 * F32 * math.prod((48, 144, 144) if len(shape) == 3 else (384, 384))
        fine = coarse * fprod * F32
        act = coarse * F32 * (3 * p.width + fprod) + (7 if p.back_projection else 3) * fine
        if p.ensemble:
            act += fine
        predict = (coarse * F32 * 3 + read_extra(coarse * F32, itemsize, lazy)
                   + (0 if gpu else act))
        out_shape = tuple(s * f for s, f in zip(shape, factors, strict=True))
        out_bytes = F32 * math.prod(out_shape)
        if staged(p):  # the intermediate 2x volume (memory-mapped when above 2 GB)
            mid = out_bytes // 2 ** len(shape)
            predict += mid if mid <= 2 * 2**30 else 0
        if streaming or out_bytes > 2 * 2**30:  # predict memory-maps outputs above 2 GB
            out_bytes = 0
        flips = 2 ** len(shape) if p.ensemble else 1
        return {"ram": {"train": train, "output": out_bytes, "predict": predict},
                "gpu": act + coarse * F32, "out_shape": out_shape,
                "work": _pass_work(shape, p) * flips,
                "unit_work": coarse * flips, "unit": "tiles", "train_steps": float("inf") if p.steps is None else p.steps}

    def probe_inference(self, shape, p, device, timed):
        from ...progress import drain

        mod = self.impl()
        small = replace(p, tile_size=min(p.tile_size, 12 if len(shape) == 3 else 48))
        net = mod.build_net(small, len(shape))
        model = TrainedModel("upsample", small.to_dict(), net.state_dict(),
                             {"lo": 0.0, "scale": 1.0}, {"ndim": len(shape)})
        flips = 2 ** len(shape) if p.ensemble else 1
        x = np.random.default_rng(0).random(tuple(min(s, small.tile_size) for s in shape),
                                            dtype=np.float32)

        def once(n):
            for _ in range(n):
                drain(mod.predict(x, model, device=device))
        return timed(once, lambda n: n * _pass_work(tuple(min(s, small.tile_size)
                                                           for s in shape), small) * flips)

    def probe_batch(self, shape, p):
        import torch

        from .net import bin_down

        net = self.impl().build_net(p, len(shape))
        f = net.factors
        side = train_patch(p) // max(f) * max(f)
        dims = tuple(min(side, s * ff) // ff * ff for s, ff in zip(shape, f, strict=True))
        y = torch.randn(p.batch_size, 1, *dims)
        return net, bin_down(y, f), y

    def train_threads(self) -> int | None:
        return self.impl().TRAIN_THREADS


def _pass_work(shape, p) -> float:
    """The work of inference: the coarse voxels (with their halos) of each pass's tiles,
    weighted by the pass's share of per-voxel work (the convolutions on the coarse grid,
    then interpolation and back-projection on the fine grid: 1 + prod(factors)) relative to
    one pass at the full factor, so that a one-stage model's work is its coarse voxels. A
    staged 4x runs the input (1 + 2^d) and then the 2^d times larger 2x intermediate: on a
    (24, 72, 72) input this says 0.59x one 4x pass, measured 0.6-1.0x on a CPU (the probe,
    which times the staged model itself, calibrates the rate)."""
    full = 1 + math.prod(axis_factors(len(shape), p.factor, p.lateral_only))
    work = 0.0
    for f in stage_factors(p, len(shape)):
        n_tiles, coarse = _cost_geometry(shape, p)[3:]
        work += n_tiles * coarse * (1 + math.prod(f)) / full
        shape = tuple(s * fi for s, fi in zip(shape, f, strict=True))
    return work


def _cost_geometry(shape, p):
    """(factors, halo, tile, number of tiles, coarse voxels per tile with its halo) of the
    cost model (one pass over ``shape``)."""
    nd = len(shape)
    factors = (p.factor, p.factor) if nd == 2 else (1 if p.lateral_only else p.factor,
                                                     p.factor, p.factor)
    halo = p.depth + 2 + 2 + (2 * 3 + 1 if p.back_projection else 0)
    halo = max(halo, p.tile_overlap)
    tile = [min(s, p.tile_size) for s in shape]
    n_tiles = math.prod(-(-s // t) for s, t in zip(shape, tile, strict=True))
    coarse = math.prod(t + 2 * halo for t in tile)
    return factors, halo, tile, n_tiles, coarse


METHOD = UpsampleMethod()
