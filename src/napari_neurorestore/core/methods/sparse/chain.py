"""Sparse reconstruction's first stage: the project's temporal denoiser on the acquired
lines (torch; imported by :mod:`.heavy`).

The fiberscopy paper's pipeline denoises as it inpaints (two networks: denoise, then
inpaint). Here the first stage is :mod:`..denoise` trained on the sparse movie itself:
the acquired lines of one frame are predicted from the same lines of the frames around
it (a temporal blind spot), so its noise cannot be copied. Its noise assumptions hold on
the acquired lines (each pixel a measurement with its own noise); they would not hold on
inpainted lines (their errors are smooth along the sparse axis and mix the context
frames), so the denoiser runs before the inpainting network and never after it. The
second stage (the sparse network) then trains on and restores the denoised lines.

Settings of the stage (measured on the 600 x 128 x 128 simulation, bench_sparse.py,
M = 8, 15 s + 15 s of training on a loaded 2-core CPU, ROI ΔF/F trace NRMSE against the
clean movie; sessions before 12, with the network's whole fill): a window of 5 frames
(15 since session 12, below) and no long-context step, because the ROI traces
are what suffers from temporal smoothing: window 11 with the long-context step gave
9.2 % against 6.8 % (PSNR 25.0 dB either way); the flip ensemble is off (8x the
inference work for the small gain it brings at this stage).

Re-measured at M = 8 at fixed steps (3 epochs: 111 steps of the stage, 204 of the
network; CPU load 5-6): window 9 gave 8.3 % against window 5's 7.6 %. The stage is not
short of training: its acquired rows' ROI traces reach 5.8 % after 111 steps and 5.6 %
after 1330, where smoothing the raw acquired rows in time with the Gaussian the truth
picks gives 5.7 % (benchmarks/bench_sparse.py's trace error budget). The rest of the
error is the filled-in rows': cubic interpolation of the stage's output scores as the
network does (6.95 % / 24.2 dB against 6.94 % / 24.3 dB, 544 steps; 6.71 % / 24.6 dB
against 6.91 % / 24.7 dB after 1360 steps, so it is not short of training either).

Session 12 (60 s, idle 2-core CPU, M = 8, simulation seeds 1 and 2): with the filled-in
lines now cubic interpolation plus the network's static correction (:mod:`.fill`), a
longer window helps the traces, as the calcium decay (15 frames in the simulation) spans
it: the acquired rows' ROI traces 6.00 / 4.83 / 4.69 % with windows 5 / 15 / 21 (seed 1),
the whole movie's 7.73 / 6.59 / 6.65 % (seed 1) and 7.79 / 7.17 / 7.20 % (seed 2), PSNR
25.74 / 26.02 / 25.93 and 24.85 / 25.07 / 25.11 dB; window 31 did worse (8.03 % with the
network's whole fill, against 7.22 % for 15). Window 15 is the default; a movie needs at
least 15 frames for the stage.

What it gained (same simulation, 40 s in all, CPU load 4-9, so few steps): at M=8
24.75 dB / trace NRMSE 6.6 % against 22.95 dB / 11.3 % without the stage (cubic
19.6 dB / 8.5 %; the fully sampled raw movie 20.8 dB / 4.0 %); at M=4 30.2 dB / 5.0 %
against 30.0 dB / 4.8 %. The network trains on the denoised frames whole: denoising the
M phases of the fully sampled axis separately for training (so that the denoiser's
spatial reach cannot carry a target column's neighbours into the inputs) scored worse
(M=8: 23.7 dB / 9.4 %), as its inputs are then noisier than those it restores; the
self-check does use such phases (:mod:`.check`).
"""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import Any

import numpy as np

from ...device import resolve_device
from ...models import TrainedModel
from ...progress import CancelToken, Progress, drain
from .lines import _Frames
from .spec import STAGE_AUTO_FACTOR, SparseParams

#: the denoiser's package, loaded by name as the registry loads methods (a method package
#: imports no other one: tests/core/test_import_graph.py); its heavy module (train,
#: predict, load_net, DenoiseParams, its context step) and its centre-correction kernel
DENOISER = "napari_neurorestore.core.methods.denoise"


def _denoiser(part: str = "heavy") -> Any:
    return importlib.import_module(f"{DENOISER}.{part}")

#: the denoiser's settings in the chain (see the module's docstring)
STAGE = {"window": 15, "long_context": False, "ensemble": "off", "centre_correction": True}
#: share of the training budget given to the first stage
STAGE_SHARE = 0.5


def stage_params(params: SparseParams, seconds: float | None, frame: tuple[int, ...]
                 ) -> Any:
    """The denoiser's parameters; the centre-frame correction is left out of frames
    smaller than its kernel (sparse frames at large M: the denoiser's kernel fit does not
    take them)."""
    stage = dict(STAGE)
    if min(frame) < _denoiser("centre").KERNEL:
        stage["centre_correction"] = False
    return _denoiser().DenoiseParams(epochs=params.epochs, train_seconds=seconds,
                                     seed=params.seed, device=params.device,
                                     chunk_frames=params.chunk_frames, **stage)


def why_not(data: Any, params: SparseParams, reference: Any = None) -> str | None:
    """Why the first stage cannot run on ``data`` (None: it can)."""
    if not params.stage:
        return (f"off (temporal_denoise={params.temporal_denoise}"
                + (f": on from M={STAGE_AUTO_FACTOR})" if params.temporal_denoise == "auto" else ")"))
    if reference is not None:
        return "off: trained on a fully sampled reference"
    shape = tuple(np.shape(data))
    if len(shape) < 3 or shape[0] < STAGE["window"]:
        return (f"skipped: it needs a movie of at least {STAGE['window']} frames, "
                f"got shape {shape}")
    return None


def train_stage(data: Any, params: SparseParams, cancel: CancelToken
                ) -> Generator[Progress, None, dict]:
    """Train the denoiser on the sparse movie ``data`` (its share of the budget); returns
    the model as a plain dict (kept in the sparse model's ``norm["denoiser"]``)."""
    seconds = None if params.train_seconds is None else STAGE_SHARE * params.train_seconds
    yield Progress("prepare", message="first stage: denoising the acquired lines")
    model = yield from _denoiser().train(data, stage_params(params, seconds, tuple(data.shape[-2:])),
                                cancel)
    return {"params": model.params, "state_dict": model.state_dict, "norm": model.norm,
            "info": model.info}


def stage_model(packed: dict) -> TrainedModel:
    return TrainedModel("denoise", packed["params"], packed["state_dict"], packed["norm"],
                        packed["info"])


class DenoisedFrames(_Frames):
    """:class:`.spec._Frames` whose :meth:`read` returns the frames restored by the first
    stage (each block read with the denoiser's halo of frames around it, so a frame's
    value does not depend on the block it was read in).

    ``phases`` = M denoises the M phases of the fully sampled axis (samples j, j + M, ...)
    separately, for training: the network's inputs are then one phase and its targets the
    others, and a denoiser that saw every column would carry the targets' neighbours (of
    the frames around) into the inputs, which the sparse axis never offers at inference
    (measured at M=8: a self-check of +17 dB over cubic, against +5 dB measured).
    """

    def __init__(self, data: Any, axis: str, packed: dict, cancel: CancelToken | None = None,
                 device: str = "auto", phases: int = 1):
        super().__init__(data, axis)
        self.model = stage_model(packed)
        self.cancel = cancel or CancelToken()
        self.device = device
        self.phases = phases
        dn = self.dn = _denoiser()
        p = dn.DenoiseParams.from_dict(self.model.params)
        self.halo = max(p.half_window, dn.denoise_context.halo(self.model.norm.get("context")))
        self.window = p.window
        self.kernel = _denoiser("centre").KERNEL
        self.net = None

    def _denoise(self, raw: np.ndarray, start: int, stop: int) -> np.ndarray:
        if self.axis == "x":  # the denoiser runs on the frames as they were acquired
            raw = np.swapaxes(raw, -1, -2)
        dn = self.dn
        if self.net is None:
            self.net = dn.load_net(self.model, resolve_device(self.device))
        # the fitted steps (centre-frame correction) need frames of at least the kernel's
        # size: narrower phases (the self-check's, at large M) get the network alone
        out = drain(dn.predict(np.ascontiguousarray(raw), self.model, self.cancel,
                               start=start, stop=stop, on_chunk=None, net=self.net,
                               ensemble=self.model.params.get("ensemble", "off"),
                               centre_correction=min(raw.shape[-2:]) >= self.kernel))
        out = out[start:stop]
        return out if self.axis == "y" else np.swapaxes(out, -1, -2)

    def read(self, t0: int, t1: int, plane: int | None) -> np.ndarray:
        lo, hi = max(0, t0 - self.halo), min(self.n, t1 + self.halo)
        if hi - lo < self.window:  # at the movie's ends: the denoiser takes whole windows
            hi = min(self.n, lo + self.window)
            lo = max(0, hi - self.window)
        raw = super().read(lo, hi, plane)
        if self.phases == 1:
            return self._denoise(raw, t0 - lo, t1 - lo)
        out = np.empty((t1 - t0, *raw.shape[1:]), np.float32)
        for j in range(min(self.phases, raw.shape[-1])):
            out[..., j::self.phases] = self._denoise(raw[..., j::self.phases], t0 - lo, t1 - lo)
        return out
