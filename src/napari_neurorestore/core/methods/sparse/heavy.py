"""Sparse-axis reconstruction after IRIS (Dong, Xuan, Gu et al., 2026 preprint): restore
the lines that a point-scanning microscope skipped along its slow axis.

The scan kept one line in M along the sparse axis (y by default): acquired line i lies at
full-frame line i*M, and the output has ``n_acquired * M`` lines (its pixel size along that
axis is the input's divided by M; the origin is unchanged).

What is kept from the paper: self-supervision from the sparse recording alone, with the
fully sampled fast axis as the teacher (lines along x are sub-sampled by M and the network
learns to restore them; it is then applied along y), and a network that reconstructs along
one axis (a line) at a time. From the fiberscopy paper (Methods, DNN-2): the same network
inpaints and denoises, and fidelity is judged by ΔF/F trace NRMSE.

What differs, and why (figures in benchmarks/bench_sparse.py):

* Context: the network sees the line's neighbours along the other axis (a 2D conv net on
  the (line, other-axis) plane) and ``context`` frames on each side, as channels
  (M=4, 60 s: context 6 gave 30.0 dB / trace NRMSE 4.8 %, context 4 29.3-29.7 dB /
  5.2 %, context 2 28.7 dB / 5.5 % at similar step counts; default 6).
* Geometry: when training along x, the other axis (y) is already M-sparse; at inference
  the other axis (x) is fully sampled. Reconstructing the M phases of x separately
  (columns p, p + M, ...: exactly the training geometry, ``geometry="phase"``) was
  measured against applying the net to whole frames (``"full"``): whole frames were
  better (M=4, 304 steps: 29.2 vs 28.6 dB, trace NRMSE 4.6 vs 4.8 %), the finer x
  sampling helps denoising more than the mismatch hurts, so "full" is the default.
* Targets (Noise2Noise): the loss is taken only on the samples that were dropped from the
  input, which are independent noisy samples of the truth, so the network learns the
  denoised interpolation and never the noise of what it sees. The acquired lines are then
  denoised for free (``denoise``, default on) as the mean of the restored lines one pixel
  before and after them (+4 dB PSNR at M=4 over keeping the measured values; a second,
  "blind" pass that hid the centre frame gained less and cost 2x at inference). With
  ``denoise`` off the acquired lines are kept exactly as measured.
* Speed: pairs of neighbouring samples along the fully sampled axis are folded into
  channels inside the net (``P_UNSHUFFLE``): 2x faster training and inference (M=4, 60 s
  on a shared 2-core CPU: 506 vs 254 steps, 28.8 vs 29.0 dB, trace NRMSE 4.7 vs 4.6 %).
* A fully sampled reference stack from the same rig can replace self-supervision
  (supervised pairs made by dropping lines of the reference).
* Two stages, as the fiberscopy paper's (``temporal_denoise``, "auto": on from M=8, where it gains trace fidelity; it costs some at M=4; :mod:`.chain`):
  the project's denoiser restores the acquired lines first (a temporal blind spot), and
  the network trains on its output, so the whole movie is denoised; the acquired lines
  are then the denoiser's values, and the filled-in lines cubic interpolation of them plus
  the network's static correction (:mod:`.fill`: its frame-by-frame fill mixed somata
  with neuropil, which cost the ROI traces at M=8). A truth-free self-check (:mod:`.check`)
  scores the chain against cubic interpolation and a raw full scan after training.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from functools import partial
from typing import Any

import numpy as np
import torch

from ...._version import __version__
from ...device import resolve_device
from ...errors import InputError
from ...models import TrainedModel
from ...nets import ready_for_inference
from ...progress import CancelToken, PredictTally, Progress
from ...train import fit
from ...zarr_io import ChunkRecorder
from ..base import new_seed
from . import chain, fill
from . import check as self_check
from .figures import fidelity
from .lines import (
    _Frames,
    check_input,
    check_simulation,
    cubic_upsample,
    frame_index,
    make_sparse,
    output_shape,
)
from .net import SparseAxisNet, acquired_estimate, apply_net
from .spec import SparseParams, _context

SUFFIX = "sparse-restored"
#: bytes of float32 frames kept in memory for training (the rest of a long movie is sampled)
TRAIN_CACHE_BYTES = 512 * 2**20
#: how the trained network is applied along the sparse axis: "phase" reconstructs the M
#: phases of the other axis separately (the sampling seen in training), "full" at once.
GEOMETRY = "full"
#: samples of the fully sampled axis folded into channels inside the network (speed)
P_UNSHUFFLE = 2
#: held-out crops scored every VALIDATE_EVERY steps to keep the best weights
VALIDATION_CROPS = 64
VALIDATE_EVERY = 25





# ----------------------------------------------------------------------------- training data
class _TrainingSource:
    """Normalised float32 frames for training and the batch sampler.

    Self-supervised (``reference`` False): frames of the sparse data (n, a, b), a the
    sparse axis; crops are sub-sampled by M along b (the fully sampled axis) and the net
    learns to restore b. Supervised (``reference`` True): frames of a fully sampled
    reference (n, a_full, b); crops are sub-sampled by M along a.
    """

    def __init__(self, frames: _Frames, factor: int, k: int, reference: bool,
                 rng: np.random.Generator):
        self.m, self.k, self.reference, self.rng = factor, k, reference, rng
        frame_bytes = 4 * frames.a * frames.b
        budget = max(2 * k + 1, TRAIN_CACHE_BYTES // frame_bytes // len(frames.planes))
        if budget >= frames.n:
            runs = [(0, frames.n)]
        else:
            run_len = max(8 * (2 * k + 1), 64)
            starts = np.linspace(0, frames.n - run_len, max(1, budget // run_len)).astype(int)
            runs = [(int(s), int(s) + run_len) for s in starts]
        self.origins = [(a, p) for p in frames.planes for a, _ in runs]
        self.segments = [frames.read(a, b, p) for p in frames.planes for a, b in runs]
        sample = np.concatenate([s[:: max(1, len(s) // 32)].ravel() for s in self.segments])
        self.mean = float(sample.mean())
        self.std = float(sample.std()) or 1.0
        self.segments = [(s - self.mean) / self.std for s in self.segments]
        # one frame in 10 is held out (never a training centre) to validate on
        self.held = [np.arange(5, len(s), 10) if len(s) >= 20 else np.zeros(0, int)
                     for s in self.segments]
        self.centres = [np.setdiff1d(np.arange(len(s)), h)
                        for s, h in zip(self.segments, self.held, strict=True)]
        self.lengths = np.array([len(c) for c in self.centres], float)

    def validation(self, n: int, patch: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A fixed set of ``n`` crops centred on held-out frames (None when there are none)."""
        counts = np.array([len(h) for h in self.held], float)
        if counts.sum() == 0:
            return None
        return self.batch(n, patch, np.random.default_rng(12345), held=True)

    def batch(self, batch_size: int, patch: int, rng: np.random.Generator | None = None,
              held: bool = False) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng if rng is None else rng
        m, k = self.m, self.k
        pool = self.held if held else self.centres
        weights = np.array([len(c) for c in pool], float)
        n_a, n_b = self.segments[0].shape[-2:]
        if self.reference:  # L along a (sub-sampled), P along b
            lp, pp = min(patch, n_a // m), min(patch, n_b)
            ca, cb = lp * m, pp
        else:  # L along b (sub-sampled), P along a
            lp, pp = min(patch, n_b // m), min(patch, n_a)
            ca, cb = pp, lp * m
        c = 2 * k + 1
        x = np.empty((batch_size, c, lp, pp), np.float32)
        y = np.zeros((batch_size, 2 * m, lp, pp), np.float32)
        segs = rng.choice(len(self.segments), size=batch_size, p=weights / weights.sum())
        for i, s in enumerate(segs):
            seg = self.segments[s]
            t = int(pool[s][rng.integers(0, len(pool[s]))])
            a0 = int(rng.integers(0, n_a - ca + 1))
            b0 = int(rng.integers(0, n_b - cb + 1))
            win = seg[frame_index(np.array([t]), k, len(seg))[0], a0:a0 + ca, b0:b0 + cb]
            if rng.random() < 0.5:
                win = win[:, ::-1]
            if rng.random() < 0.5:
                win = win[:, :, ::-1]
            if self.reference:
                inp = win[:, ::m, :]  # (C, lp, pp)
                tgt = win[k].reshape(lp, m, pp).transpose(1, 0, 2)
            else:
                inp = win[:, :, ::m].transpose(0, 2, 1)  # (C, lp, pp)
                tgt = win[k].reshape(pp, lp, m).transpose(2, 1, 0)
            x[i] = inp
            y[i, :m] = tgt
            y[i, m + 1:] = 1.0  # the dropped samples: noise independent of the input
        return x, y


def _masked_mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    m = pred.shape[1]
    w = y[:, m:]
    return ((pred - y[:, :m]) ** 2 * w).sum() / w.sum().clamp_min(1.0)


# ----------------------------------------------------------------------------- train
def build_net(params: SparseParams, k: int, p_unshuffle: int | None = None) -> SparseAxisNet:
    pu = P_UNSHUFFLE if p_unshuffle is None else p_unshuffle
    return SparseAxisNet(2 * k + 1, params.factor, params.width, centre=k, p_unshuffle=pu)


def train(data: Any, params: SparseParams, cancel: CancelToken | None = None,
          reference: Any = None) -> Generator[Progress, None, TrainedModel]:
    """Train on sparse ``data`` itself (the acquired lines only; no ground truth), or on a
    fully sampled ``reference`` stack from the same rig when one is given."""
    cancel = cancel or CancelToken()
    src_data = data if reference is None else reference
    check_input(src_data, params.factor, params.axis, sparse=reference is None)
    device = resolve_device(params.device)
    seed = new_seed(params.seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t_start = time.perf_counter()
    # the first stage (chain.py): the denoiser, trained on the acquired lines themselves
    stage_note = chain.why_not(src_data, params, reference)
    stage = None if stage_note else (yield from chain.train_stage(src_data, params, cancel))
    yield Progress("prepare", message="reading training frames")
    raw_frames = _Frames(src_data, params.axis)
    frames = raw_frames if stage is None else chain.DenoisedFrames(
        src_data, params.axis, stage, cancel, params.device)
    k = _context(params, frames.n)
    src = _TrainingSource(frames, params.factor, k, reference is not None, rng)
    cancel.check()
    net = build_net(params, k).to(device)
    # an epoch draws about as many crops as the frames hold (at least 10 steps)
    n_a, n_b = src.segments[0].shape[-2:]
    crops = int(src.lengths.sum()) * max(1, (n_a * n_b) // params.patch_size**2)
    steps_per_epoch = max(10, -(-crops // params.batch_size))
    total = 10**9 if params.epochs is None else params.epochs * steps_per_epoch

    def sample_batch():
        x, y = src.batch(params.batch_size, params.patch_size)
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    # Noise2Noise on one recording could start fitting the noise of its own targets: keep
    # the weights that score best on held-out frames. (Measured at M=4: the held-out loss
    # still fell at 1900 steps, so the last weights were kept; ROI trace NRMSE does rise
    # with long training, 4.6 % at ~200-500 steps vs 5.1-5.5 % at 1900-3700 steps, with
    # context 2, while PSNR improves: a trade-off this loss does not see.)
    val = src.validation(VALIDATION_CROPS, params.patch_size)
    best = {"loss": float("inf"), "step": 0, "state": None}

    val_seconds = [0.0]  # the last validation's time: one that would overrun is skipped

    def validate(step: int, force: bool = False) -> None:
        if val is None or (step % VALIDATE_EVERY and step != total and not force):
            return
        t_val = time.perf_counter()
        if (params.train_seconds is not None
                and t_val - t_start + val_seconds[0] > params.train_seconds):
            return  # the time budget holds (the weights validated so far compete)
        with torch.no_grad():
            xv, yv = (torch.from_numpy(a).to(device) for a in val)
            loss = float(sum(_masked_mse(net(xv[i:i + 16]), yv[i:i + 16]) * len(xv[i:i + 16])
                             for i in range(0, len(xv), 16)) / len(xv))
        if loss < best["loss"]:
            best.update(loss=loss, step=step,
                        state={kk: v.detach().clone() for kk, v in net.state_dict().items()})
        val_seconds[0] = time.perf_counter() - t_val

    remaining = None
    if params.train_seconds is not None:
        remaining = max(1e-3, params.train_seconds - (time.perf_counter() - t_start))
    history = yield from fit(net, sample_batch, _masked_mse, total, remaining,
                             params.learning_rate, cancel, on_step=validate,
                             reserve=self_check.reserve(params, src, stage is not None))
    if val is not None:
        validate(len(history), force=True)  # the final weights compete too
        if best["state"] is not None:
            net.load_state_dict(best["state"])
    # the check's inputs carry nothing of the columns it drops (chain.DenoisedFrames)
    check = self_check.estimate(net, src, raw_frames, device, None if stage is None else
                                chain.DenoisedFrames(src_data, params.axis, stage, cancel,
                                                     params.device, phases=params.factor))
    seconds = time.perf_counter() - t_start
    state = {kk: v.detach().cpu() for kk, v in net.state_dict().items()}
    info = {"train_seconds": round(seconds, 2), "steps": len(history),
            "final_loss": float(np.mean(history[-50:])) if history else None,
            "seed": seed, "software_version": __version__, "context": k,
            "p_unshuffle": net.pu,
            "validation_loss": best["loss"] if val is not None else None,
            "best_step": best["step"] if val is not None else None,
            "teacher": "reference" if reference is not None else "self (fully sampled axis)",
            "denoise_stage": stage_note or "on: the denoiser (temporal blind spot) restored "
            "the acquired lines first; the network trained on its output"}
    norm = {"mean": src.mean, "std": src.std}
    if stage is not None:
        info["denoise_stage_training"] = stage["info"]
        info["denoise_stage_params"] = dict(stage["params"])
        norm["denoiser"] = stage
    if check is not None:
        info["self_check"] = check
    if stage is not None:
        info["fill"] = "static"  # fill.py: the filled-in lines keep the network's static part
    return TrainedModel("sparse", params.to_dict(), state, norm, info)


# ----------------------------------------------------------------------------- predict
def load_net(model: TrainedModel, device: torch.device) -> SparseAxisNet:
    if model.method != "sparse":
        raise ValueError(f"this is a {model.method!r} model, not a sparse-axis model")
    params = SparseParams.from_dict(model.params)
    net = build_net(params, int(model.info.get("context", params.context)),
                    int(model.info.get("p_unshuffle", 1)))
    return ready_for_inference(net, model.state_dict, device)


def predict(data: Any, model: TrainedModel, cancel: CancelToken | None = None, out: Any = None,
            chunk_frames: int = 64, batch_size: int | None = None, device: str = "auto",
            denoise: bool | None = None, geometry: str | None = None, on_chunk: Any = "auto",
            start: int = 0, stop: int | None = None, net: Any = None
            ) -> Generator[Progress, None, Any]:
    """Reconstruct frames ``start:stop`` (default: all) of sparse ``data`` with a trained
    model, chunk by chunk (``net``: an already loaded network, e.g. a dask worker's).

    Each chunk reads its frames plus ``context`` on each side, so the result does not
    depend on ``chunk_frames``. ``out`` (any array with ``__setitem__``) must have
    :func:`output_shape`; a float32 numpy array is allocated when it is None. ``denoise``
    (default: the model's setting) replaces the acquired lines by restored values.
    ``batch_size`` frames per forward pass; None: 2 on a CPU (measured fastest at 512x512
    on 2 cores: 1: 155, 2: 167, 4: 155, 8: 100 frames/s at M=4; 44/63/37/31 at M=2), 16 on
    a GPU.

    The input is read chunk by chunk (a zarr array, memmap or dask array stays lazy) and each
    chunk is written to ``out`` once per plane (whole chunks of a zarr store from
    :func:`~napari_neurorestore.core.io.open_output` with ``chunks=chunk_frames``).
    ``on_chunk(a, b)`` is called when frames ``a:b`` are written (all planes); the default
    ("auto") is a :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder`, which keeps a zarr
    output's progress record up to date. Cancelling raises :class:`Cancelled` with a
    message that says how many frames were written.
    """
    cancel = cancel or CancelToken()
    params = SparseParams.from_dict(model.params)
    m, axis = params.factor, params.axis
    denoise = params.denoise if denoise is None else bool(denoise)
    check_input(data, m, axis)
    geometry = geometry or model.info.get("geometry", GEOMETRY)
    dev = resolve_device(device) if net is None else next(net.parameters()).device
    if batch_size is None:
        batch_size = 2 if dev.type == "cpu" else 16
    net = load_net(model, dev) if net is None else net
    k = int(model.info.get("context", params.context))
    frames = _Frames(data, axis)
    stage = None if "denoiser" not in model.norm else chain.DenoisedFrames(
        data, axis, model.norm["denoiser"], cancel, str(dev))
    if stage is not None and frames.n < stage.window:
        raise InputError(f"this model's first stage (the denoiser) takes {stage.window} "
                         f"frames at a time; the input has {frames.n}")
    shape = output_shape(tuple(data.shape), m, axis)
    if out is None:
        out = np.empty(shape, np.float32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
    mean, std = model.norm["mean"], model.norm["std"]
    n, na, nb = frames.n, frames.a, frames.b
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise ValueError(f"frames {start}:{stop} are outside the data's {n} frames")
    if isinstance(on_chunk, str) and on_chunk == "auto":
        on_chunk = ChunkRecorder(out, n)
    tally = PredictTally((stop - start) * len(frames.planes), "frames", "reconstructed",
                         "reconstructing", on_chunk, written_total=stop - start)

    def restored(inp: np.ndarray, raw: np.ndarray, lo: int, a: int, b: int) -> np.ndarray:
        """Frames a:b restored by the network from ``inp`` (frames lo.. of one plane)."""
        block = torch.from_numpy((inp - mean) / std).to(dev)
        res = np.empty((b - a, na * m, nb), np.float32)
        for s in range(a, b, batch_size):
            cancel.check()
            ts = np.arange(s, min(b, s + batch_size))
            x = block[torch.from_numpy(frame_index(ts, k, n) - lo).to(dev)]
            y = apply_net(net, x, m, geometry)
            if denoise and stage is None:
                y[:, 0] = acquired_estimate(y)
            y = y.float().cpu().numpy() * std + mean
            if not denoise or stage is not None:
                y[:, 0] = raw[ts - lo]  # as measured, or as the first stage restored them
            res[s - a:s - a + len(ts)] = y.transpose(0, 2, 1, 3).reshape(len(ts), na * m, nb)
        return res

    def restore_block(p: int | None, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames a:b of plane p: the network's restoration and the stage's lines."""
        lo = max(0, a - k)
        inp = stage.read(lo, min(n, b + k), p)
        return restored(inp, inp, lo, a, b), inp[a - lo:b - lo]

    static = stage is not None and model.info.get("fill") == "static"
    with tally.cancel_message(), torch.inference_mode():
        correction = {}
        if static:  # fill.py: cubic of the denoised lines + the network's static part
            yield Progress("predict", 0, stop - start, message="measuring the static "
                           "correction of the filled-in lines on sample frames")
            correction = {p: fill.static_correction(partial(restore_block, p), n, m)
                          for p in frames.planes}
        yield tally.start("reconstructing frames")
        for a in range(start, stop, chunk_frames):
            b = min(stop, a + chunk_frames)
            for p in frames.planes:
                lo, hi = (a, b) if static else (max(0, a - k), min(n, b + k))
                inp = frames.read(lo, hi, p) if stage is None else stage.read(lo, hi, p)
                raw = inp if stage is None or denoise else frames.read(lo, hi, p)
                if static:
                    res = fill.filled(inp, m, correction[p])
                    if not denoise:
                        res[:, ::m] = raw  # the acquired lines as measured
                else:
                    res = restored(inp, raw, lo, a, b)
                frames.write(out, a, b, p, res)
                if p is not None and p != frames.planes[-1]:
                    yield tally.step(b - a)
            tally.written(a, b)
            yield tally.step(b - a)
    return out



def simulate(full: Any, model: TrainedModel, params: SparseParams,
             cancel: CancelToken | None = None, out: Any = None, labels: Any = None,
             **options: Any) -> Generator[Progress, None, tuple[Any, dict]]:
    """Keep every M-th line of a fully sampled stack, reconstruct it with ``model`` (trained
    on that sparse copy: :meth:`SparseMethod.train_input`, or on a reference), and measure
    how close the result is to the full stack (and how close cubic interpolation gets).

    Returns the result on the full stack's grid (cropped to its size; written into ``out``
    when given) and the provenance it adds: the figures, under ``"simulation"``.
    """
    m, axis = params.factor, params.axis
    check_input(full, m, axis, sparse=False)
    check_simulation(full, labels)
    yield Progress("prepare", message=f"keeping every {m}th line")
    sparse = make_sparse(full, m, axis)
    restored = yield from predict(sparse, model, cancel, chunk_frames=params.chunk_frames,
                                  device=params.device, denoise=params.denoise)
    crop = [slice(None)] * restored.ndim
    crop[-2 if axis == "y" else -1] = slice(0, full.shape[-2 if axis == "y" else -1])
    restored = restored[tuple(crop)]
    cubic = cubic_upsample(sparse, m, axis)[tuple(crop)]
    yield Progress("predict", 1, 1, message="measuring against the full stack")
    full_f = np.asarray(full, np.float32)
    lab = None if labels is None else np.asarray(labels)
    figs = {"factor": m, "axis": axis, **fidelity(restored, full_f, lab),
            "cubic": fidelity(cubic, full_f, lab), "reference": "the full input stack"}
    if out is not None:
        out[...] = restored
        ChunkRecorder(out, 1 if restored.ndim == 2 else len(restored))(
            0, 1 if restored.ndim == 2 else len(restored))
        restored = out
    return restored, {"simulation": figs}
