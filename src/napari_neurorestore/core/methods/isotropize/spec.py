"""Axial isotropization's contract (numpy only; the network lives in :mod:`.heavy`):
the output grid (round((z - 1) R) + 1 slices, output slice k at input slice k / R), the
forward model (blurred along z like the acquisition, sampled at the acquired slices), the
lateral blocks of streamed outputs and the cost model."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ...models import TrainedModel
from ...params import (
    _check_choice,
    _check_int,
    _common,
    _length,
    _Params,
    _seconds,
    opt,
    pass_cap_note,
)
from ..base import F32, Grid, Method, OutputLayout, as_f32, grid_mismatch, read_extra
from .axial import check_volume, output_slices

#: lateral context of each inference block (``net.AXIAL_NET_HALO``)
HALO = 24


def scale_factors(ratio: float) -> tuple[float, float, float]:
    """Per-axis factors of the output pixel size relative to the input's: (1/R, 1, 1)."""
    return (1.0 / float(ratio), 1.0, 1.0)


def _tile(tile_size: int) -> int:
    return max(16, int(tile_size))


def output_chunks(shape: tuple[int, ...], ratio: float, tile_size: int = 256
                  ) -> tuple[int, int, int]:
    """Chunk shape of a zarr output such that every lateral block writes whole chunks:
    the block's y and x sides, and at most 32 slices along z (a block spans all z)."""
    n, h, w = shape
    t = _tile(tile_size)
    return (min(output_slices(n, ratio), 32), min(h, t), min(w, t))


def output_tiles(shape: tuple[int, ...], ratio: float, tile_size: int = 256
                 ) -> dict[str, Any]:
    """Number and layout of the lateral blocks the output is written in."""
    n, h, w = shape
    t = _tile(tile_size)
    grid = [1, -(-h // t), -(-w // t)]
    return {"total": grid[1] * grid[2],
            "extra": {"tile_shape": [output_slices(n, ratio), min(h, t), min(w, t)],
                      "tile_grid": grid}}


def blur_z(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur along axis 0 (mirror borders), numpy only."""
    if sigma <= 0:
        return x
    h = int(math.ceil(4 * sigma))
    k = np.exp(-0.5 * (np.arange(-h, h + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(h, h)] + [(0, 0)] * (x.ndim - 1), mode="reflect")
    out = np.zeros_like(x, dtype=np.float64)
    for i, w in enumerate(k):
        out += w * pad[i:i + x.shape[0]]
    return out


#: below this gain over cubic on held-out lateral slices, the self-check says the setting
#: is past what the method restores on this volume (benchmarks/bench_isotropize.py)
CHECK_MIN_GAIN_DB = 1.0
#: training that the time budget ends stops after this many passes over the lateral
#: training slices' pixels at most (a small stack: longer training fits its few slices and
#: loses along z; see benchmarks/README.md, "Isotropization's pass cap")
MAX_PASSES = 300


def format_check(check: Any, sigma: Any = None) -> str | None:
    """One line from a model's ``self_check`` record (None when there is none).

    The check gives two figures: the gain against the held-out slices with their own
    noise (which no restorer predicts: a lower bound) and the gain on their structure (the
    noise model's variance taken out of both errors: an upper bound). On real and simulated
    volumes degraded in z the true gain lay between them
    (benchmarks/bench_isotropize.py --real). Both are measured on lateral structure: the
    true axial gain is lower where z holds detail the lateral slices lack (on the real
    truths, whose finest detail along z is 6-11x the lateral, the upper figure ran 1-4 dB
    high: ``--curve``). The warning comes when even the upper one is below
    :data:`CHECK_MIN_GAIN_DB`."""
    if not isinstance(check, dict) or check.get("gain_db") is None:
        return None
    plain = float(check["gain_db"])
    sig = check.get("gain_signal_db")
    top = plain if sig is None else max(plain, float(sig))
    where = ("held-out lateral slices" if check.get("held_out")
             else "lateral slices (too few to hold any out)")
    blur = f" (sigma_z {float(sigma):g} px)" if sigma is not None else ""
    gain = (f"{plain:+.2f} dB over cubic interpolation against the slices with their noise"
            if sig is None else
            f"between {plain:+.2f} dB (against the slices with their noise) and "
            f"{float(sig):+.2f} dB (on their structure) over cubic interpolation")
    line = (f"self-check (no ground truth): on {where} degraded like z{blur}, the restorer "
            f"gains {gain}" + ("" if sig is None else
                               " (a bracket, for structure alike along z and laterally: where "
                               "z holds finer detail than the lateral slices, it gains less)"))
    if not top >= CHECK_MIN_GAIN_DB:
        line += (f". WARNING: below {CHECK_MIN_GAIN_DB:g} dB this z ratio and axial blur are "
                 "past what the method restores on this volume: expect about cubic "
                 "interpolation (or worse); sharper structure than it shows is not there")
    return line


def _iso_work(shape, ratio, tile, halo=HALO):
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


@dataclass(frozen=True)
class IsotropizeParams(_Params):
    """Parameters of axial isotropization (after Self-Net).

    z_ratio : R, the z pixel size over the lateral (y, x) pixel size (>= 1; the widget
        reads it from the layer's scale). The output has round((z - 1) R) + 1 slices.
    degradation : how lateral slices are degraded to look axial for training: "gaussian"
        (a Gaussian axial blur of width ``sigma_z``) or "learned" (a blur kernel learned
        adversarially so degraded lateral slices look like the real axial slices).
    sigma_z : the axial blur beyond the lateral one, as a Gaussian sigma in lateral
        pixels (None = estimate it from the volume's axial and lateral spectra; on fewer
        than 16 slices, too few to fit, 0.6 R is assumed and the summary says so).
    steps : optimisation steps (None = no limit; whichever of ``steps`` and
        ``train_seconds`` ends first).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the square training crops (multiple of 4).
    batch_size : training crops per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level.
    seed : seed for the sampler, the degradations and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    tile_size : lateral side of the inference blocks (bounds memory; does not change
        the result).
    match_noise : top the noise of the degraded training inputs up to the data's level
        (blurring averages noise down; real axial slices are as noisy as lateral ones).
    squeeze_augment : half of the training crops are squeezed along the degraded axis by a
        random factor in [squeeze_augment, 1] (area averaging), so the restorer also sees
        structure finer along z than the lateral slices show (1 = off, the default). For
        volumes whose z holds finer detail than their lateral slices (a z step coarser than
        stated, a thin stack): on the 11-slice stardist volume 0.5 gained +1.15 dB; on the
        isotropic simulation it cost 0.3-0.4 dB (benchmarks/bench_isotropize.py).
    """

    z_ratio: float = opt(2.0, "z pixel size / lateral pixel size (required unless --model is given)", min=1.0, max=16.0, step=0.1, metavar="R", label="z ratio")
    degradation: str = opt("gaussian", "training degradation model", choices=("gaussian", "learned"))
    sigma_z: float | None = opt(None, "axial blur beyond the lateral one, Gaussian sigma in lateral pixels (None: estimated from the data; 0.6 R on fewer than 16 slices)", min=0.0, max=32.0, step=0.1, metavar="S")
    steps: int | None = _length("steps", "optimisation steps of one batch")
    train_seconds: float | None = _seconds("steps")
    patch_size: int = opt(64, "side of the square training crops (multiple of 4)", min=16, max=1024, step=4)
    batch_size: int = opt(8, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    tile_size: int = opt(256, "lateral inference block size (memory bound)", min=16, max=4096, step=16)
    match_noise: bool = opt(True, "top the noise of the degraded training inputs up to the data's level")
    squeeze_augment: float = opt(1.0, "half of the training crops squeezed along the degraded axis by a random factor in [F, 1], for z finer than the lateral slices (1: off)", min=0.25, max=1.0, step=0.05, metavar="F")

    method = "isotropize"

    def __post_init__(self) -> None:
        r = self.z_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 1.0 <= r <= 16.0:
            raise ValueError(f"z_ratio must be a number between 1 and 16 (z pixel size over "
                             f"lateral pixel size), got {r!r}")
        object.__setattr__(self, "z_ratio", float(r))
        _check_choice(self, "degradation")
        if self.sigma_z is not None:
            s = self.sigma_z
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 32:
                raise ValueError(f"sigma_z must be between 0 and 32 lateral pixels or None "
                                 f"(estimate), got {s!r}")
            object.__setattr__(self, "sigma_z", float(s))
        self._check_training("steps", (16, 1024), 128)
        _check_int("tile_size", self.tile_size, 16)
        if not isinstance(self.match_noise, bool):
            raise ValueError(f"match_noise must be True or False, got {self.match_noise!r}")
        q = self.squeeze_augment
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.25 <= q <= 1:
            raise ValueError(f"squeeze_augment must be between 0.25 and 1 (1: off), got {q!r}")
        object.__setattr__(self, "squeeze_augment", float(q))


class IsotropizeMethod(Method):
    params_class = IsotropizeParams
    name = "isotropize"
    module = "napari_neurorestore.core.methods.isotropize.heavy"
    help = "axial isotropization: make z as sharp and finely sampled as x, y"
    label = "Isotropize (Self-Net)"
    description = ("Train a restorer on the volume's own lateral slices (degraded the way z "
                   "is) and restore every axial slice. The output has round((z - 1) R) + 1 "
                   "slices; output slice k lies at input slice k / R (its z pixel size is the "
                   "input's / R).")
    input_help = "(z, y, x) TIFF volume or zarr store (read block by block)"
    noun = "an axial isotropization model"
    runtime_fields = ("device", "tile_size")
    distributed = True
    keeps_time = False
    same_shape_same_grid = False  # R = 1 still re-blurs along z
    nominal_rate = 3e6
    suffix = "isotropic"

    def check_input(self, data: Any, params: Any, training: bool = True) -> None:
        check_volume(data)

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """The truth-free self-check: the gain over cubic on held-out lateral slices."""
        line = format_check(info.get("self_check"), info.get("sigma_z_used"))
        if line:
            line += pass_cap_note(info, "the lateral slices")
        if line and info.get("sigma_z_source") == "prior":
            line += ("; sigma_z was assumed (0.6 x R: too few slices to measure it), and the "
                     "self-check cannot see a wrong sigma_z: give the real one if known")
        return line

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        n, *rest = (int(s) for s in input_shape)
        return Grid((output_slices(n, params.z_ratio), *rest), scale_factors(params.z_ratio))

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        params = dict(md.get("params", {}))
        shape = tuple(restored.shape)
        ratio = float(md.get("z_ratio", params.get("z_ratio") or 0) or 0)
        if ratio <= 0:
            ratio = (shape[0] - 1) / max(input_shape[0] - 1, 1)
        sigma = md.get("sigma_z", params.get("sigma_z"))
        r = blur_z(as_f32(restored), float(sigma or 0.0))
        pos = np.arange(input_shape[0]) * ratio
        lo = np.clip(np.floor(pos).astype(int), 0, shape[0] - 1)
        hi = np.clip(lo + 1, 0, shape[0] - 1)
        w = (pos - lo)[:, None, None]
        out = ((1 - w) * r[lo] + w * r[hi]).astype(np.float32)
        if out.shape[1:] != tuple(input_shape[1:]):
            raise grid_mismatch(shape, input_shape, "the lateral shapes differ")
        return out

    def trust_slices(self, raw_shape, restored_shape, md) -> slice | None:
        """Where the re-blurred output is complete: the input slices whose axial blur's
        support lies inside the output (at least 3 of them; else all)."""
        ratio = (restored_shape[0] - 1) / max(raw_shape[0] - 1, 1)
        reach = 3.0 * float(md.get("sigma_z") or dict(md.get("params", {})).get("sigma_z")
                            or 0.0)
        pos = np.arange(raw_shape[0]) * ratio
        inside = np.nonzero((pos >= reach) & (pos <= restored_shape[0] - 1 - reach))[0]
        return slice(int(inside[0]), int(inside[-1]) + 1) if len(inside) >= 3 else None

    def predict(self, data, model, params, cancel=None, out=None, on_chunk="auto", **options):
        return self.impl().predict(data, model, cancel, out=out, tile_size=params.tile_size,
                                   device=params.device, on_chunk=on_chunk, **options)

    def output_layout(self, model, input_shape, params) -> OutputLayout:
        tiles = output_tiles(tuple(input_shape), params.z_ratio, params.tile_size)
        return OutputLayout(chunk_shape=output_chunks(tuple(input_shape), params.z_ratio,
                                                      params.tile_size),
                            axes="ZYX", unit="tiles", total=tiles["total"],
                            extra=tiles["extra"])

    def output_metadata(self, model, params, input_shape) -> dict:
        return {"z_ratio": params.z_ratio, "sigma_z": model.info.get("sigma_z_used"),
                "output_slices": output_slices(int(input_shape[0]), params.z_ratio)}

    def check_request(self, req, model) -> None:
        if model is None and req.given.get("z_ratio") is None:
            raise ValueError("--z-ratio is required (z pixel size / lateral pixel size)")

    def describe(self, model, params, grid) -> str:
        info = model.info
        return (f"({'x'.join(map(str, grid.shape))}, float32, z pixel = input's / "
                f"{params.z_ratio:g}); sigma_z "
                f"{info.get('sigma_z_used')} lateral px"
                + (" (estimated)" if info.get("sigma_z_estimated") is not None else "")
                + (" (assumed: too few slices to measure it; give sigma_z)"
                   if info.get("sigma_z_source") == "prior" else ""))

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape, p, itemsize, lazy, streaming, gpu):
        if len(shape) != 3:
            raise InputError(f"axial isotropization needs a (z, y, x) volume, got shape {shape}")
        n, hh, ww = shape
        work, nz, nzp = _iso_work(shape, p.z_ratio, p.tile_size)
        halo = HALO
        kept = max(1, min(n, 512 * 2**20 // (F32 * hh * ww)))
        cache = kept * F32 * hh * ww
        padded = kept * F32 * (hh + 100) * (ww + 100)
        train_act = p.batch_size * (p.patch_size + 100) * p.patch_size * F32 * (2 + 14 * p.width)
        # slices + stack; then vol, (vol - mean), / std; then the reflect-padded copy
        train = 2 * cache + padded + read_extra(cache, itemsize, lazy) + 3 * train_act
        tile = max(16, int(p.tile_size))
        hb = min(hh, tile + 2 * halo) + 2 * halo
        wb = min(ww, tile + 2 * halo) + 2 * halo
        block = n * F32 * min(hh, tile + 2 * halo) * min(ww, tile + 2 * halo)
        vi = nzp * F32 * hb * wb
        bpix = 2**20
        act = bpix * F32 * 6 * p.width
        predict = 3 * block + 4 * vi + read_extra(block, itemsize, lazy) + (0 if gpu else act)
        out_bytes = 0 if streaming else F32 * nz * hh * ww
        return {"ram": {"train": train, "output": out_bytes, "predict": predict},
                "gpu": act + 2 * bpix * F32, "out_shape": (nz, hh, ww), "work": work,
                "unit_work": 1, "unit": "px", "train_steps": float("inf") if p.steps is None else p.steps}

    def probe_inference(self, shape, p, device, timed):
        from ...progress import drain

        mod = self.impl()
        net = mod.build_net(p)
        model = TrainedModel("isotropize", p.to_dict(), net.state_dict(),
                             {"mean": 0.0, "std": 1.0})
        nz_in = max(2, min(shape[0], 16))
        side = 32
        rng = np.random.default_rng(0)

        def once(n):
            x = rng.random((nz_in, side, side * n), dtype=np.float32)
            drain(mod.predict(x, model, tile_size=side, device=device))
        return timed(once, lambda n: _iso_work((nz_in, side, side * n), p.z_ratio, side)[0])

    def probe_batch(self, shape, p):
        import torch

        net = self.impl().build_net(p)
        ps = min(p.patch_size, shape[-1] // 4 * 4, shape[-2] // 4 * 4)
        return (net, torch.randn(p.batch_size, 1, ps, ps), torch.randn(p.batch_size, 1, ps, ps))


METHOD = IsotropizeMethod()
