"""Axial isotropization after Self-Net (Ning, Zhao et al., "Deep self-learning enables
fast, high-fidelity isotropic resolution restoration for volumetric fluorescence
microscopy", Light: Science & Applications 2023).

What is kept from the paper: the volume's own sharp lateral (xy) slices are the reference
for its blurred, coarsely sampled axial (xz, yz) slices. Lateral slices are degraded
along one lateral axis the way z is degraded (blurred, sampled every R-th line, brought
back to the fine grid with the interpolation used at inference) and a 2D restorer is
trained on the pixel-aligned (degraded, sharp) pairs; at inference the volume is
interpolated in z to the lateral pitch, every xz and yz slice is restored, and the two
results are averaged. The "learned" degradation learns the axial blur adversarially from
the unpaired real axial slices (a patch discriminator compares degraded lateral slices
with real axial slices on the interpolated grid), alternating with the restorer's steps.

What differs (measured in benchmarks/bench_isotropize.py): the learned generator is a
normalised 1D blur kernel along the degraded axis (KernelGAN-style) instead of a CycleGAN
generator: it cannot hallucinate structure (the cycle loss's job), needs no backward
generator, and trains in seconds on a CPU. The "gaussian" mode (the default) replaces the
learned blur by a Gaussian whose width is given or estimated from the ratio of the axial
and lateral power spectra. Degraded inputs get their noise topped up to the level of the
real axial slices (blurring lowers it), using a Poisson-Gaussian noise model estimated
from the data. The restorer predicts a residual over the cubic (Keys) interpolation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...._version import __version__
from ...device import resolve_device
from ...io import check_finite
from ...models import TrainedModel
from ...nets import ready_for_inference
from ...params import pass_cap_steps
from ...progress import CancelToken, PredictTally, Progress
from ...train import ThreadChooser, fit
from ...zarr_io import ChunkRecorder
from ..base import new_seed
from .axial import (
    axial_blur,
    check_volume,
    estimate_noise,
    interp_z,
    output_slices,
)
from .check import held_out_check
from .data import _Degrader, _flip, _Source
from .net import AXIAL_NET_HALO, AxialRestoreNet, PatchDiscriminator
from .spec import (
    MAX_PASSES,
    IsotropizeParams,
    _tile,
    output_tiles,
)

__all__ = ["train", "predict", "build_net"]

SUFFIX = "isotropic"


# ----------------------------------------------------------------------------- train
def build_net(params: IsotropizeParams) -> AxialRestoreNet:
    return AxialRestoreNet(params.width)


def _margin(ratio: float, sigma: float) -> int:
    return int(math.ceil(4 * max(sigma, 0.5) + 2 * ratio + 3))


def train(data: Any, params: IsotropizeParams, cancel: CancelToken | None = None
          ) -> Generator[Progress, None, TrainedModel]:
    """Train the axial restorer on ``data`` (z, y, x) itself; no ground truth."""
    cancel = cancel or CancelToken()
    check_volume(data)
    device = resolve_device(params.device)
    seed = new_seed(params.seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t_start = time.perf_counter()
    ratio = params.z_ratio
    yield Progress("prepare", message="estimating the axial blur and the noise")
    estimated = None
    if params.sigma_z is None:
        sigma, source = axial_blur(data, ratio)
        estimated = sigma if source == "estimated" else None
    else:
        sigma, source = params.sigma_z, "given"
    cancel.check()
    learned = params.degradation == "learned"
    q = int(math.ceil(4 * max(sigma, 1.0))) + 2  # learned kernel half-length
    margin = _margin(ratio, max(sigma, q / 4.0 if learned else sigma))
    yield Progress("prepare", message="reading the lateral slices")
    src = _Source(data, ratio, params.patch_size, margin, rng, learned)
    src.squeeze = params.squeeze_augment
    na, nb = estimate_noise(data)
    mean, std = src.mean, src.std
    noise = (na / std, (na * mean + nb) / std**2) if params.match_noise else (0.0, 0.0)
    cancel.check()
    deg = _Degrader(ratio, src.patch, margin, noise, rng, device)
    net = build_net(params).to(device)
    if device.type == "cpu":  # several times faster for these small dense convolutions
        net = net.to(memory_format=torch.channels_last)

    kernel_logits = None
    gan: dict[str, Any] = {}
    if learned:
        offs = np.arange(-q, q + 1, dtype=np.float64)
        k0 = np.exp(-0.5 * (offs / max(sigma, 0.3)) ** 2) + 1e-4
        kernel_logits = torch.tensor(np.log(k0 / k0.sum()), dtype=torch.float32, device=device,
                                     requires_grad=True)
        disc = PatchDiscriminator(16).to(device)
        if device.type == "cpu":
            disc = disc.to(memory_format=torch.channels_last)
        gan = {"disc": disc,
               "opt_d": torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999)),
               "opt_k": torch.optim.Adam([kernel_logits], lr=5e-3, betas=(0.5, 0.999)),
               "losses": []}

    def sample_batch():
        sharp = torch.from_numpy(src.lateral(params.batch_size)).to(device)
        if not learned:
            x, y = deg(sharp, sigma=sigma)
        else:
            kernel = torch.softmax(kernel_logits, 0)
            x, y = deg(sharp, kernel=kernel)
            size = min(x.shape[-2], src.axial.shape[0]) // 4 * 4 or min(x.shape[-2], src.axial.shape[0])
            real = torch.from_numpy(src.axial_crops(params.batch_size, size)).to(device)[:, None]
            sl = min(real.shape[-1], x.shape[-1])
            real = real[..., :sl]
            fake = x[:, None, :real.shape[-2], :sl]
            if device.type == "cpu":
                real = real.contiguous(memory_format=torch.channels_last)
                fake = fake.contiguous(memory_format=torch.channels_last)
            disc = gan["disc"]
            # discriminator step (least-squares GAN)
            d_loss = 0.5 * (((disc(real) - 1) ** 2).mean() + (disc(fake.detach()) ** 2).mean())
            gan["opt_d"].zero_grad(set_to_none=True)
            d_loss.backward()
            gan["opt_d"].step()
            # generator (blur kernel) step: make degraded lateral slices look axial
            g_loss = ((disc(fake) - 1) ** 2).mean()
            gan["opt_k"].zero_grad(set_to_none=True)
            g_loss.backward()
            gan["opt_k"].step()
            gan["losses"].append((float(d_loss.detach()), float(g_loss.detach())))
            x = x.detach()
        x, y = _flip(x[:, None], y[:, None], rng)
        if device.type == "cpu":
            return x.contiguous(memory_format=torch.channels_last), y.contiguous()
        return x.contiguous(), y.contiguous()

    remaining = None
    if params.train_seconds is not None:
        remaining = max(1e-3, params.train_seconds - (time.perf_counter() - t_start))
    # None: the time budget ends it, or MAX_PASSES over the lateral slices if they come first
    total = params.steps if params.steps is not None else pass_cap_steps(
        MAX_PASSES, len(src.slices) * src.h * src.w, params.batch_size * src.patch**2)
    threads = ThreadChooser(enabled=device.type == "cpu" and params.steps is None)
    history = yield from fit(net, sample_batch, F.mse_loss, total, remaining,
                             params.learning_rate, cancel, threads=threads)
    seconds = time.perf_counter() - t_start
    yield Progress("check", message="self-check on held-out lateral slices")
    kernel = torch.softmax(kernel_logits.detach(), 0) if learned else None
    check = held_out_check(net, src, ratio, noise, device, None if learned else sigma, kernel,
                           seed=seed)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    info = {"train_seconds": round(seconds, 2), "steps": len(history),
            "final_loss": float(np.mean(history[-50:])) if history else None,
            "seed": seed, "software_version": __version__,
            "sigma_z_used": round(float(sigma), 4),
            "sigma_z_estimated": None if estimated is None else round(float(estimated), 4),
            "sigma_z_source": source,
            "noise_model": {"a": na, "b": nb}, "self_check": check}
    if params.steps is None and len(history) >= total:
        info["pass_cap"] = {"passes": MAX_PASSES, "steps": total}
    if learned:
        k = torch.softmax(kernel_logits.detach(), 0).cpu().numpy().astype(np.float64)
        offs = np.arange(-q, q + 1)
        centre = float((k * offs).sum())
        info["learned_kernel"] = [round(float(v), 5) for v in k]
        info["learned_sigma"] = round(float(np.sqrt((k * (offs - centre) ** 2).sum())), 4)
        if gan["losses"]:
            info["gan_losses"] = [round(float(v), 4) for v in np.mean(gan["losses"][-50:], 0)]
    return TrainedModel("isotropize", params.to_dict(), state, {"mean": mean, "std": std}, info)


# ----------------------------------------------------------------------------- predict
def load_net(model: TrainedModel, device: torch.device) -> AxialRestoreNet:
    if model.method != "isotropize":
        raise ValueError(f"this is a {model.method!r} model, not an axial isotropization model")
    net = build_net(IsotropizeParams.from_dict(model.params))
    return ready_for_inference(net, model.state_dict, device)


def _pad_lateral(block: np.ndarray, axis: int, front: int, back: int) -> np.ndarray:
    if not (front or back):
        return block
    pad = [(0, 0)] * block.ndim
    pad[axis] = (front, back)
    mode = "reflect" if block.shape[axis] > 1 else "edge"
    return np.pad(block, pad, mode=mode)


def _run_net(net, slices: np.ndarray, dev: torch.device, batch_pixels: int,
             cancel: CancelToken) -> np.ndarray:
    """Apply the net to (N, H, W) slices (H, W multiples of 4) in batches."""
    n, h, w = slices.shape
    bs = max(1, batch_pixels // (h * w))
    out = np.empty_like(slices)
    for a in range(0, n, bs):
        cancel.check()
        x = torch.from_numpy(np.ascontiguousarray(slices[a:a + bs]))[:, None].to(dev)
        if dev.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        out[a:a + bs] = net(x)[:, 0].float().cpu().numpy()
    return out


def predict(data: Any, model: TrainedModel, cancel: CancelToken | None = None, out: Any = None,
            tile_size: int = 256, device: str = "auto", batch_pixels: int = 2**20,
            on_chunk: Any = "auto", start: int = 0, stop: int | None = None, net: Any = None
            ) -> Generator[Progress, None, Any]:
    """Isotropize ``data`` (z, y, x) with a trained model, block by lateral block (blocks
    ``start:stop`` in C order, default all; ``net``: an already loaded network).

    Each block is read with :data:`AXIAL_NET_HALO` pixels of context (mirrored at the
    volume's borders), interpolated in z, restored along its xz and yz slices and the two
    averaged, so the result does not depend on ``tile_size``. ``out`` is any array with
    ``__setitem__`` of shape (round((z - 1) R) + 1, y, x) (a zarr store chunked by
    :func:`output_chunks` gets whole chunks); float32 numpy when None. The input is read
    block by block. ``on_chunk(i, i + 1)`` is called when block ``i`` (C order over the
    lateral grid) is written; the default ("auto") is a
    :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder` counting blocks ("tiles"), which
    keeps a zarr output's progress record up to date. Cancelling raises
    :class:`Cancelled` with a message that says how many blocks were written.
    """
    cancel = cancel or CancelToken()
    params = IsotropizeParams.from_dict(model.params)
    check_volume(data)
    dev = resolve_device(device) if net is None else next(net.parameters()).device
    net = load_net(model, dev) if net is None else net
    ratio = params.z_ratio
    n, hh, ww = data.shape
    nz = output_slices(n, ratio)
    if out is None:
        out = np.empty((nz, hh, ww), np.float32)
    elif tuple(out.shape) != (nz, hh, ww):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {(nz, hh, ww)}")
    mean, std = model.norm["mean"], model.norm["std"]
    halo = AXIAL_NET_HALO
    tile = _tile(tile_size)
    ys = list(range(0, hh, tile))
    xs = list(range(0, ww, tile))
    blocks = [(y0, x0) for y0 in ys for x0 in xs]
    total = len(blocks)
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        raise ValueError(f"blocks {start}:{stop} are outside the volume's {total} blocks")
    if isinstance(on_chunk, str) and on_chunk == "auto":
        tiles = output_tiles((n, hh, ww), ratio, tile)
        on_chunk = ChunkRecorder(out, total, "tiles", tiles["extra"])
    tally = PredictTally(stop - start, "lateral blocks", "restored", "restoring", on_chunk,
                         unit="blocks")
    zpad_back = halo + (-(nz + 2 * halo)) % 4
    yield tally.start("restoring axial slices")
    with tally.cancel_message(), torch.inference_mode():
        for i in range(start, stop):
            y0, x0 = blocks[i]
            y1, x1 = min(hh, y0 + tile), min(ww, x0 + tile)
            ya, xa = max(0, (y0 - halo) // 4 * 4), max(0, (x0 - halo) // 4 * 4)
            yb, xb = min(hh, y1 + halo), min(ww, x1 + halo)
            block = np.asarray(data[:, ya:yb, xa:xb], np.float32)
            check_finite(block, f"the block y {ya}-{yb - 1}, x {xa}-{xb - 1}")
            block = (block - mean) / std
            vi = interp_z(block, ratio)  # (nz, hb, wb)
            vi = _pad_lateral(vi, 0, halo, zpad_back)  # mirror in z (same for every block)
            fy, fx = (halo if ya == 0 else 0), (halo if xa == 0 else 0)
            by = (halo if yb == hh else 0)
            bx = (halo if xb == ww else 0)
            vi = _pad_lateral(vi, 1, fy, by)
            vi = _pad_lateral(vi, 2, fx, bx)
            vi = _pad_lateral(vi, 1, 0, (-vi.shape[1]) % 4)
            vi = _pad_lateral(vi, 2, 0, (-vi.shape[2]) % 4)
            cy, cx = y0 - ya + fy, x0 - xa + fx  # core origin inside the padded block
            ny, nx = y1 - y0, x1 - x0
            zs = slice(halo, halo + nz)
            # xz slices: one per core row y; the net sees (z, x)
            xz = _run_net(net, np.moveaxis(vi[:, cy:cy + ny, :], 1, 0), dev, batch_pixels, cancel)
            res = np.moveaxis(xz[:, zs, cx:cx + nx], 0, 1)  # (nz, ny, nx)
            del xz
            # yz slices: one per core column x; the net sees (z, y)
            yz = _run_net(net, np.moveaxis(vi[:, :, cx:cx + nx], 2, 0), dev, batch_pixels, cancel)
            res = 0.5 * (res + np.moveaxis(yz[:, zs, cy:cy + ny], 0, 2))
            del yz, vi
            out[:, y0:y1, x0:x1] = res * std + mean
            del res
            tally.written(i, i + 1)  # recorded before the report
            yield tally.step()
    return out
