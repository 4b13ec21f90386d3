"""Self-supervised temporal denoising after FAST (Wang, Gu et al., Nat Commun 2025).

What is kept from the paper: self-supervision from the recording alone through
spatiotemporal sampling (temporal windows of C frames taken with stride S; the 2x2
neighbour sub-sampler), an ultra-light 2D network that sees the frames of a window as
channels, flips/rot90 augmentation, Adam, and sliding-window inference that returns every
frame in the input's intensity units.

What differs (and why, measured in benchmarks/bench_denoise.py): the centre frame of each
window is the target and is left out of the input (a temporal blind spot), instead of
FAST's window-to-window mapping with Neighbor2Neighbor losses; the 2x2 sub-sampler is
used as a pixel-unshuffle (the four neighbour sub-images become channels) so the net runs
at half resolution. On a CPU this trains to a better optimum in 60 s and runs at tens
of frames/s at 512x512.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from typing import Any

import numpy as np
import torch

from ...._version import __version__
from ...device import resolve_device
from ...io import check_finite, check_movie
from ...models import TrainedModel
from ...nets import ready_for_inference
from ...progress import CancelToken, PredictTally, Progress
from ...train import ThreadChooser, fit
from ...zarr_io import ChunkRecorder
from . import check as denoise_check
from . import context as denoise_context
from . import held as denoise_held
from . import motion as denoise_motion
from . import post as denoise_post
from .frames import (
    ChunkFrames,
    Scratch,
    auto_batch_size,
    gather,
    neighbour_index,
    neighbour_offsets,
    pad4,
    predict_windows,
    unshuffle,
)
from .frames import planes as _planes
from .frames import read as _read
from .net import TemporalDenoiseNet
from .spec import DenoiseParams, ensemble_size

SUFFIX = "denoised"
#: bytes of float32 frames kept in memory for training (the rest of a long movie is sampled)
TRAIN_CACHE_BYTES = 768 * 2**20


# ----------------------------------------------------------------------------- sampling
def neighbour_subsample(frames: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FAST's 2x2 neighbour sub-sampler.

    For every 2x2 cell one random pair of *adjacent* pixels is drawn (the same draw for
    every frame of the window); the first goes to G1, the second to G2.
    ``frames`` (..., H, W) with even H, W -> two arrays (..., H/2, W/2).
    """
    *lead, h, w = frames.shape
    if h % 2 or w % 2:
        raise ValueError("neighbour_subsample needs even frame sizes")
    cells = frames.reshape(*lead, h // 2, 2, w // 2, 2)
    cells = np.moveaxis(cells, -3, -2).reshape(*lead, h // 2, w // 2, 4)  # (.., y, x, 4)
    # pixel order in a cell: 0=(0,0) 1=(0,1) 2=(1,0) 3=(1,1); adjacent = share an edge
    pairs = np.array([[0, 1], [1, 0], [0, 2], [2, 0], [1, 3], [3, 1], [2, 3], [3, 2]])
    choice = pairs[rng.integers(0, len(pairs), size=(h // 2, w // 2))]
    g1 = np.take_along_axis(cells, np.broadcast_to(choice[..., :1], (*lead, h // 2, w // 2, 1)), -1)
    g2 = np.take_along_axis(cells, np.broadcast_to(choice[..., 1:], (*lead, h // 2, w // 2, 1)), -1)
    return g1[..., 0], g2[..., 0]


class _TrainingSource:
    """Normalised float32 frames held for training: the whole movie when it fits in
    ``TRAIN_CACHE_BYTES``, otherwise evenly spread contiguous runs of frames."""

    def __init__(self, data: Any, window: int, rng: np.random.Generator):
        t = data.shape[0]
        planes = _planes(data)
        frame_bytes = 4 * data.shape[-1] * data.shape[-2]
        budget_frames = max(window, TRAIN_CACHE_BYTES // frame_bytes // len(planes))
        runs: list[tuple[int, int]]
        if budget_frames >= t:
            runs = [(0, t)]
        else:
            run_len = max(window * 8, 64)
            n_runs = max(1, budget_frames // run_len)
            starts = np.linspace(0, t - run_len, n_runs).astype(int)
            runs = [(int(s), int(s) + run_len) for s in starts]
        self.segments = []
        for p in planes:
            for a, b in runs:
                block = _read(data, a, b, p)
                check_finite(block)
                self.segments.append(block)
        sample = np.concatenate([s[:: max(1, len(s) // 32)].ravel() for s in self.segments])
        self.mean = float(sample.mean())
        self.std = float(sample.std()) or 1.0
        for i, s in enumerate(self.segments):
            self.segments[i] = pad4((s - self.mean) / self.std)
        self.k = window // 2
        self.offsets = neighbour_offsets(window)
        self.centres = [max(0, len(s) - 2 * self.k) for s in self.segments]
        self.rng = rng
        # held-out frames of the longest segment: never a training target (see .held)
        self.held_segment = max(range(len(self.segments)), key=lambda i: len(self.segments[i]))
        seg = self.segments[self.held_segment]
        self.held = denoise_held.held_out(len(seg), self.k, seg.shape[-2:])
        self.allowed = None
        if len(self.held):
            allowed = np.setdiff1d(np.arange(self.k, len(seg) - self.k), self.held)
            self.allowed = allowed
            self.centres[self.held_segment] = len(allowed)

    @property
    def n_windows(self) -> int:
        return int(sum(self.centres))

    def batch(self, batch_size: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
        rng, k = self.rng, self.k
        h, w = self.segments[0].shape[-2:]
        py, px = min(patch, h), min(patch, w)
        weights = np.asarray(self.centres, float) / self.n_windows
        segs = rng.choice(len(self.segments), size=batch_size, p=weights)
        x = np.empty((batch_size, len(self.offsets), py, px), np.float32)
        y = np.empty((batch_size, 1, py, px), np.float32)
        for i, s in enumerate(segs):
            seg = self.segments[s]
            if self.allowed is not None and s == self.held_segment:
                t = self.allowed[rng.integers(0, len(self.allowed))]
            else:
                t = k + rng.integers(0, self.centres[s])
            y0 = rng.integers(0, h - py + 1)
            x0 = rng.integers(0, w - px + 1)
            win = seg[t - k:t + k + 1, y0:y0 + py, x0:x0 + px]
            x[i] = win[self.offsets + k]
            y[i, 0] = win[k]
        # one random flip/rot90 per batch (same for input and target)
        if rng.random() < 0.5:
            x, y = x[..., ::-1], y[..., ::-1]
        if rng.random() < 0.5:
            x, y = x[..., ::-1, :], y[..., ::-1, :]
        if py == px and rng.random() < 0.5:
            x, y = np.swapaxes(x, -1, -2), np.swapaxes(y, -1, -2)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)


# ----------------------------------------------------------------------------- train
def build_net(params: DenoiseParams, light: bool = True) -> TemporalDenoiseNet:
    """The network of new models is the light one (1x1 first encoder and decoder
    convolutions: 0.65 against 1.25 GMAC per 512x512 frame, the same quality in
    bench_denoise); ``light=False`` builds the one of models saved before it."""
    return TemporalDenoiseNet(params.window - 1, params.width, light=light)


def train(data: Any, params: DenoiseParams, cancel: CancelToken | None = None
          ) -> Generator[Progress, None, TrainedModel]:
    """Train a denoiser on ``data`` itself ((t, y, x) or (t, z, y, x)); no ground truth."""
    cancel = cancel or CancelToken()
    check_movie(data, params.window)
    device = resolve_device(params.device)
    seed = params.seed if params.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    yield Progress("prepare", message="reading training frames")
    t_start = time.perf_counter()
    src = _TrainingSource(data, params.window, rng)
    cancel.check()
    net = build_net(params).to(device)
    steps_per_epoch = max(1, -(-src.n_windows // (params.stride * params.batch_size)))
    if params.epochs is None:  # the time budget ends training, or MAX_PASSES over the
        # frames if they come first (a short movie: longer training fits its noise)
        total = denoise_held.step_cap(src.n_windows, src.segments[0].shape[-2:],
                                      params.batch_size, params.patch_size)
    else:
        total = params.epochs * steps_per_epoch

    def sample_batch():
        x, y = src.batch(params.batch_size, params.patch_size)
        return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    remaining = None
    members = ensemble_size(params.ensemble, data.shape)
    if params.train_seconds is not None:
        remaining = max(1e-3, params.train_seconds - (time.perf_counter() - t_start))
    # a run ended by its time budget is not step-reproducible anyway, so it may pick its
    # thread count by speed; a run of set epochs keeps a fixed count (same seed, same result)
    threads = ThreadChooser(enabled=device.type == "cpu" and params.epochs is None)
    # the best weights on the held-out frames are kept (a longer budget never loses)
    best = denoise_held.Checkpoints(net, src.segments[src.held_segment], src.held, src.offsets,
                                    device, remaining, total, threads)
    history = yield from fit(net, sample_batch, torch.nn.functional.mse_loss, total, remaining,
                             params.learning_rate, cancel, threads=threads,
                             reserve=denoise_check.reserve(params, src, members), on_step=best,
                             cycles=denoise_held.restarts(remaining) if len(src.held) else None,
                             on_cycle=best.cycle_end)
    checkpoint = best.finish(len(history))
    norm = {"mean": src.mean, "std": src.std}
    check = None
    if params.centre_correction:
        cancel.check()
        yield Progress("check", message="centre-frame correction and self-check")
        deadline = None if params.train_seconds is None else t_start + params.train_seconds
        # on the thread count training chose (its reserve was measured on it): on a busy
        # CPU, the configured count can be several times slower
        threads.resume()
        with _restoring(threads):
            est = denoise_check.estimate(net, src, params, device, deadline, members)
        if est is not None:
            if est["kernel"] is not None:
                norm["centre_kernel"] = est["kernel"]
            if est["register"]:
                norm["register"] = True
            for key in ("context", "context_causal"):  # the full and the causal step
                if est[key] is not None:
                    norm[key] = est[key]
            norm["transient"] = est["transient"]
            if est["blend"] is not None:
                norm["gaussian"] = est["blend"]
            check = est["check"]
    seconds = time.perf_counter() - t_start
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    info = {"train_seconds": round(seconds, 2), "steps": len(history),
            "final_loss": float(np.mean(history[-50:])) if history else None,
            "seed": seed, "software_version": __version__,
            "threads": threads.chosen[-1] if threads.chosen else threads.base}
    if check is not None:
        info["self_check"] = check
    if checkpoint is not None:
        info["checkpoint"] = checkpoint
    if params.epochs is None and len(history) >= total:
        info["pass_cap"] = {"passes": denoise_held.MAX_PASSES, "steps": total}
    return TrainedModel("denoise", params.to_dict(), state, norm, info)


# ----------------------------------------------------------------------------- predict
def load_net(model: TrainedModel, device: torch.device) -> TemporalDenoiseNet:
    if model.method != "denoise":
        raise ValueError(f"this is a {model.method!r} model, not a denoising model")
    first = model.state_dict.get("enc.0.0.weight")  # 1x1 in the light network
    light = first is None or tuple(first.shape[-2:]) == (1, 1)
    net = build_net(DenoiseParams.from_dict(model.params), light=light)
    return ready_for_inference(net, model.state_dict, device)


@contextlib.contextmanager
def _restoring(threads: ThreadChooser):
    """Put back the thread count in force before inference, however it ends."""
    try:
        yield
    finally:
        threads.restore()


def predict(data: Any, model: TrainedModel, cancel: CancelToken | None = None, out: Any = None,
            chunk_frames: int = 64, batch_size: int | None = None, device: str = "auto",
            start: int = 0, stop: int | None = None, on_chunk: Any = "auto",
            net: Any = None, context: bool | str = True, ensemble: str | None = None,
            centre_correction: bool = True, gaussian_guard: bool = True,
            threads: ThreadChooser | None = None, context_state: Any = None,
            origin: int = 0) -> Generator[Progress, None, Any]:
    """Apply a trained denoiser to frames ``start:stop`` of ``data``, chunk by chunk.

    Each chunk reads its frames plus ``window // 2`` on each side (mirrored about the
    centre frame at the movie's ends), so the result does not depend on ``chunk_frames``.
    A chunk is restored into a numpy buffer and written to ``out`` once (one plane at a
    time for (t, z, y, x)), so writes to a zarr store chunked ``chunk_frames`` along time
    are chunk-aligned. ``out`` is any array with ``__setitem__`` of ``data``'s shape (a
    numpy array, a memmap, a zarr array); a float32 numpy array is allocated when it is
    None. ``on_chunk(a, b)`` is called when frames ``a:b`` are written; the default
    ("auto") is a :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder`, which keeps a zarr
    output's progress record up to date. ``net`` is an already loaded network (from
    :func:`load_net`; used by dask workers that cache it). Cancelling raises
    :class:`Cancelled` with a message that says how many frames were written. Returns ``out``.
    ``batch_size`` frames go through the net at once; None picks it from the frame size.
    A model's long-context step (:mod:`.context`) reads ``max(windows)`` frames on
    each side of a chunk instead of ``window // 2``; ``context=False`` leaves it out,
    ``context="causal"`` applies its causal variant instead (live mode's: it reads ahead
    only ``window // 2`` frames; none for a model saved without it). The blend with the
    Gaussian filter (:mod:`.held`; it reads up to ``GAUSS_HALO`` frames each side) goes with
    the full step only. ``ensemble``
    ("auto", "on", "off"; None: the model's setting) averages the net over flips and rotations
    (:func:`~.frames.predict_windows`); "auto" decides on ``data``'s whole shape,
    so every part of a distributed run decides the same. ``centre_correction=False`` leaves
    out every step fitted after training (registration, long context, centre-frame
    correction, transient step, blend with the Gaussian): the network alone, as a model
    trained without them; ``gaussian_guard=False`` leaves out the blend alone.
    ``threads``: a thread chooser kept across calls (live mode's); None: a new one.
    ``context_state``: a dict that keeps the long-context step across calls (live
    mode's), whose running sums each call continues; ``data[0]`` is then frame ``origin``
    of a movie that grows, and its frames never change.
    """
    cancel = cancel or CancelToken()
    params = DenoiseParams.from_dict(model.params)
    check_movie(data, params.window)
    dev = resolve_device(device)
    if batch_size is None:
        batch_size = auto_batch_size(data.shape[-2:], dev)
    if net is None:
        net = load_net(model, dev)
    else:
        dev = next(net.parameters()).device
    t_len = data.shape[0]
    stop = t_len if stop is None else stop
    if not 0 <= start <= stop <= t_len:
        raise ValueError(f"frames {start}:{stop} are outside the movie's {t_len} frames")
    k = params.half_window
    offsets = neighbour_offsets(params.window)
    members = ensemble_size(params.ensemble if ensemble is None else ensemble, data.shape)
    mean, std = model.norm["mean"], model.norm["std"]
    offset = torch.tensor(mean, dtype=torch.float32)
    norm = model.norm if centre_correction else {}  # the steps fitted after training
    correct = denoise_post.centre_correction(norm.get("centre_kernel"), dev)
    register = bool(norm.get("register", False))
    transient = denoise_post.transient_step(norm.get("transient"))
    # the blend reads frames beyond the net's window too: it goes with the full long-context
    # step (live mode's causal step has not got those frames, and leaves it out)
    gauss = norm.get("gaussian") if gaussian_guard and context is True else None
    blend = denoise_held.blend_step(gauss, dev)
    gauss_only = blend is not None and float(gauss["weight"]) >= 1
    spec = denoise_context.select(norm, context)
    halo = max(k, denoise_context.halo(spec), denoise_post.gauss_halo(gauss))
    after = max(k, denoise_context.halo(spec, True), denoise_post.gauss_halo(gauss))
    if out is None:
        out = np.empty(data.shape, np.float32)
    elif tuple(out.shape) != tuple(data.shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(data.shape)}")
    if isinstance(on_chunk, str) and on_chunk == "auto":
        on_chunk = ChunkRecorder(out)
    planes = _planes(data)
    h, w = data.shape[-2:]
    tally = PredictTally((stop - start) * len(planes), "frames", "restored", "restoring",
                         on_chunk, written_total=stop - start)
    yield tally.start("restoring frames")
    gbuf = None
    # consecutive chunks share 2 * halo frames: kept, not read again (one plane's block at
    # most 512 MiB: a (t, z, y, x) movie of many large planes reads its halos again)
    block_bytes = (chunk_frames + 2 * halo) * 4 * (h + (-h) % 4) * (w + (-w) % 4)
    frames = ChunkFrames(data, mean, std, keep=len(planes) * block_bytes <= 2**29)
    # the context step keeps its running sums for the next chunk (several planes' only
    # when they are small: they are about 1.7x a block)
    widen = (context_state or {}).get("step") if spec else None
    widen = widen or denoise_context.context_step(
        spec, chunk_frames + halo + after, len(planes) if 3 * len(planes) * block_bytes <= 2**29
        else 1)
    if context_state is not None:
        context_state["step"] = widen
    # on a CPU the thread count is measured as it goes (1 thread first, the configured
    # count tried every 20 s): on a busy 2-core CPU 2 threads ran 3-4x slower than 1
    if threads is None:
        threads = ThreadChooser(enabled=dev.type == "cpu")
    else:
        threads.resume()  # the count it chose in the calls before
    scratch = Scratch()
    t0 = time.perf_counter()
    with tally.cancel_message(), torch.inference_mode(), _restoring(threads):
        for a in range(start, stop, chunk_frames):
            b = min(stop, a + chunk_frames)
            lo, hi = max(0, a - k), min(t_len, b + k)  # the net's frames
            rlo, rhi = max(0, a - halo), min(t_len, b + after)  # and the context's
            tbuf = scratch.get("out", (b - a, h, w))  # kept: see Scratch
            buf = tbuf.numpy()
            for i, p in enumerate(planes):
                block = frames.get(p, rlo, rhi)
                # once per chunk, not per window
                frames_u = unshuffle(block[lo - rlo:hi - rlo], scratch)
                if widen is not None:
                    widen.new_block(block, rlo + origin, t_len + origin, key=p)
                if gbuf is None or gbuf.shape[1:3] != frames_u.shape[:2]:
                    gbuf = torch.empty((batch_size, *frames_u.shape[:2], len(offsets), 4))
                for s in range(a, b, batch_size):
                    cancel.check()
                    ts = np.arange(s, min(b, s + batch_size))
                    idx = neighbour_index(ts, offsets, t_len) - lo
                    threads.before_step(time.perf_counter() - t0)
                    t_step = time.perf_counter()
                    # the Gaussian alone (blend weight 1): the net is not run
                    y = None if gauss_only else predict_windows(
                        net, gather(frames_u, idx, gbuf).to(dev), members)
                    if (correct is not None or register or transient is not None
                            or widen is not None or blend is not None):
                        c = block[ts - rlo][:, None].to(dev)
                        if register and y is not None:  # move the prediction onto the frame (denoise_motion)
                            y = denoise_motion.register(c[:, 0], y[:, 0])[0][:, None]
                        if blend is not None:  # with the Gaussian filter (denoise_held)
                            y = blend(y, block, ts, rlo, t_len)
                        if widen is not None:  # wide blind means (denoise_context)
                            y = widen(y, ts + origin)
                        if correct is not None:  # out = f + k * (x_t - f): denoise_centre
                            y = y + correct(c - y)
                        if transient is not None:  # what stands out at a cell's scale
                            y = transient(y, c)
                    threads.after_step(time.perf_counter() - t_step, time.perf_counter() - t0)
                    # back to the input's units, straight into the chunk's buffer
                    torch.add(offset, y[:, 0, :h, :w].float().cpu(), alpha=std,
                              out=tbuf[s - a:s - a + len(ts)])
                if p is None:
                    out[a:b] = buf
                else:
                    out[a:b, p] = buf
                if i < len(planes) - 1:
                    yield tally.step(b - a)
            tally.written(a, b)  # recorded before the report: a stop at its yield is exact
            yield tally.step(b - a)
    return out
