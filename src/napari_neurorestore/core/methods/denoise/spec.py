"""The denoising method's contract (numpy only; the network lives in :mod:`.denoise`):
the output keeps the input's grid, the forward model is the identity, and the cost model
follows what :func:`.heavy.train` and :func:`.heavy.predict` allocate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ...io import check_movie
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
from ..base import F32, Grid, Method, read_extra, same_grid

#: bytes of float32 frames kept in memory for training (``heavy.TRAIN_CACHE_BYTES``)
TRAIN_CACHE_BYTES = 768 * 2**20
#: frames read on each side of an inference chunk for the long-context step: the widest
#: of ``denoise_context.WINDOWS``, which takes it from here
CONTEXT_HALO = 64
#: frames read on each side of an inference chunk for the blend with the Gaussian filter
#: (3 x the widest sigma_t of ``centre.GAUSS_GRID``; applied with the long-context step,
#: whose CONTEXT_HALO covers it)
GAUSS_HALO = 18
#: ``ensemble="auto"`` averages the net over flips and rotations for movies of at most
#: this many pixels (frames x planes x rows x columns): there, 8x the net's work costs
#: seconds (600 x 128 x 128: about 12 s on 2 cores), and a long or large movie keeps
#: the single pass (bench_denoise's 512 x 512 frames/s)
ENSEMBLE_AUTO_PIXELS = 16 * 2**20


def uses_ensemble(setting: str, shape: Sequence[int]) -> bool:
    """Whether the ``ensemble`` setting ("auto", "on", "off") averages over the flips and
    rotations for a movie of ``shape``."""
    if setting == "auto":
        return int(np.prod([int(s) for s in shape], dtype=np.int64)) <= ENSEMBLE_AUTO_PIXELS
    return setting == "on"


def ensemble_size(setting: str, shape: Sequence[int]) -> int:
    """Forward passes per frame: 8 (4 flips x transpose) on square frames, 4 flips
    otherwise (the padded frame's sides decide), 1 without the ensemble."""
    if not uses_ensemble(setting, shape):
        return 1
    h, w = (int(s) + (-int(s)) % 4 for s in shape[-2:])
    return 8 if h == w else 4


def _batch_pixels(h: int, w: int, gpu: bool) -> int:
    """Pixels per forward pass of ``heavy.predict`` (``frames.auto_batch_size`` frames)."""
    return int(min(64, max(1, round((2**22 if gpu else 2**16) / max(h * w, 1))))) * h * w


@dataclass(frozen=True)
class DenoiseParams(_Params):
    """Parameters of the self-supervised temporal denoiser (after FAST).

    window : frames in the temporal window C (odd). The centre frame is predicted from
        the other ``window - 1`` frames, never from itself, so its noise cannot be learned.
    stride : temporal step S between training windows; an epoch visits every S-th window.
    epochs : passes over the windows of the movie (None = no limit: ``train_seconds``
        alone ends training; the CLI's ``--steps``).
    train_seconds : wall-time budget of training, reading the training frames included
        (default 60 s, as for every method; None = no cap, then ``epochs`` must be set);
        whichever of ``epochs`` and ``train_seconds`` comes first ends training. A run
        the budget ends stops after ``held.MAX_PASSES`` passes over the training frames'
        pixels if they come first (a short movie: longer training fits its noise).
    patch_size : side of the random square crops used for training (multiple of 4).
    batch_size : training windows per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level (speed/quality trade-off).
    seed : seed for the sampler, the augmentations and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    chunk_frames : frames per inference chunk (bounds memory; does not change the result).
    centre_correction : add back what the network missed in the frame itself (see
        :mod:`.centre`); also gives the self-check. Applying a saved model, off
        leaves out every step fitted after its training (the network alone).
    long_context : the long-context step (see :mod:`.context`); needs
        ``centre_correction``. Applying a saved model, off leaves its step out, and the
        blend with the Gaussian filter too (``gaussian_guard``: it also reads frames beyond
        the network's window).
    causal_context : apply the causal variant of the long-context step instead of the full
        one (live mode's: means over past frames and only the ``window // 2`` future frames
        the window waits for; fitted beside the full step at training time, so it changes
        nothing while training). A model saved without it runs without the step. Like live
        mode, it leaves the blend with the Gaussian filter out.
    gaussian_guard : fit, on frames held out of training, the blend of the network's
        prediction with the self-check's blind Gaussian filter (weight 0: the network,
        1: the Gaussian) and apply it (see :mod:`.held`); off: the network alone. Applying
        a saved model whose blend weight is above 0, off is refused (its later steps were
        fitted on the blend). Needs the full ``long_context`` (live mode
        and ``causal_context``, which have not got the frames it reads, leave it out).
    ensemble : average the network's prediction over the flips and rotations of each
        window ("on"), never ("off"), or when the movie has at most
        ``ENSEMBLE_AUTO_PIXELS`` pixels ("auto"); 4-8x the network's work at inference.
    """

    window: int = opt(11, "temporal window C, odd", min=3, max=31, step=2, label="window (frames)")
    stride: int = opt(1, "training window stride S", min=1, max=31)
    epochs: int | None = _length("epochs", "an epoch: a pass over the movie's windows")
    train_seconds: float | None = _seconds("epochs")
    patch_size: int = opt(32, "side of the training crops (multiple of 4)", min=16, max=1024, step=4)
    batch_size: int = opt(16, "training windows per optimisation step", min=1, max=1024)
    learning_rate: float = opt(2e-3, "Adam's initial learning rate", min=1e-6, max=0.5, step=1e-4)
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    chunk_frames: int = opt(64, "frames per inference chunk and per zarr chunk (memory bound)", min=1, max=100000)
    centre_correction: bool = opt(True, "add back what the temporal network missed in the frame "
                                  "itself (Wiener filter of the residual, from the measured "
                                  "noise spectrum); also gives the self-check",
                                  label="centre-frame correction")
    long_context: bool = opt(True, "combine the network's prediction with blind means over "
                             "up to 64 frames each side, weighted by least squares on the "
                             "movie itself (what hardly changes is learned from many frames; "
                             "fitted with the centre-frame correction)", label="long context",
                             needs={"centre_correction": True})
    causal_context: bool = opt(False, "apply the causal long-context step (what live mode "
                               "applies: past frames and the window's future only) instead "
                               "of the full one", label="causal long context",
                               needs={"centre_correction": True, "long_context": True})
    gaussian_guard: bool = opt(True, "never worse than a Gaussian filter: blend the network "
                               "with the self-check's Gaussian (up to the Gaussian alone) "
                               "where frames held out of training say it is better; off: "
                               "the network (the blend needs the full long context)",
                               label="never worse than a Gaussian",
                               needs={"centre_correction": True, "long_context": True,
                                      "causal_context": False})
    ensemble: str = opt("auto", "average the network over the 8 flips and rotations of each "
                        "window (8x its work at inference): auto = for movies of at most 16 M "
                        "pixels, on, off", choices=("auto", "on", "off"), label="flip ensemble")

    method = "denoise"

    def __post_init__(self) -> None:
        _check_int("window", self.window, 3, 31)
        if self.window % 2 == 0:
            raise ValueError(f"window must be odd (the centre frame is predicted), got {self.window}")
        _check_int("stride", self.stride, 1, self.window)
        self._check_training("epochs", (16, 1024), 128)
        _check_int("chunk_frames", self.chunk_frames, 1)
        _check_choice(self, "ensemble")

    @property
    def half_window(self) -> int:
        return self.window // 2


def select_context(norm: dict, context: Any) -> dict | None:
    """The long-context step a run applies, from a model's ``norm``: the full one
    (``context`` True), the causal one ("causal"; None for a model saved without it) or
    none (False)."""
    if context == "causal":
        return norm.get("context_causal")
    if context not in (True, False):
        raise ValueError(f"context must be True, False or 'causal', got {context!r}")
    return norm.get("context") if context else None


def context_applied(norm: dict, context: Any) -> str:
    """What :func:`select_context` applies, in words for the provenance: "full", "causal"
    or "none"."""
    spec = select_context(norm, context)
    return "none" if not spec else ("causal" if "future" in spec else "full")


def run_context(p: DenoiseParams) -> bool | str:
    """The long-context step a run applies (heavy.predict's ``context``): the full one,
    the causal one ("causal") or none (False)."""
    if not (p.centre_correction and p.long_context):
        return False
    return "causal" if p.causal_context else True


class DenoiseMethod(Method):
    params_class = DenoiseParams
    name = "denoise"
    module = "napari_neurorestore.core.methods.denoise.heavy"
    help = "self-supervised temporal denoising (FAST)"
    label = "Denoise (FAST)"
    description = ("Train a denoiser on the movie itself and restore every frame. "
                   "Several inputs go into the folder given by -o (OUTDIR/<name>_denoised.zarr).")
    input_help = "(t, y, x) or (t, z, y, x) TIFF stack(s) or zarr/OME-Zarr store(s)"
    noun = "a denoising model"
    #: the steps after the network are run-time settings: a saved model's can be left out
    runtime_fields = ("device", "chunk_frames", "ensemble", "centre_correction",
                      "long_context", "causal_context", "gaussian_guard")
    distributed = True
    live = True
    nominal_rate = 12e6
    suffix = "denoised"
    many_inputs = True
    identity_forward = True

    def check_input(self, data: Any, params: Any, training: bool = True) -> None:
        check_movie(data, params.window)

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        return Grid(tuple(int(s) for s in input_shape))

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        return same_grid(restored, input_shape, index)

    def removes_noise(self, md: dict) -> bool:
        return True

    def live_context(self, model) -> tuple[bool | str, int, str]:
        """Live mode's long-context step for ``model``: predict's ``context`` ("causal",
        or False for a model saved without the causal step), how many frames before a
        frame it reads, and the provenance's word for it."""
        causal = select_context(model.norm, "causal")
        ctx = "causal" if causal else False
        return ctx, (max(causal["windows"]) if causal else 0), context_applied(model.norm, ctx)

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """The truth-free self-check against the best Gaussian filter."""
        if not isinstance(info.get("self_check"), dict):
            return None
        from .centre import format_check

        return format_check(info["self_check"]) + pass_cap_note(info, "the movie's frames")

    def predict(self, data, model, params, cancel=None, out=None, on_chunk="auto", **options):
        return self.impl().predict(data, model, cancel, out=out, chunk_frames=params.chunk_frames,
                                   device=params.device, on_chunk=on_chunk,
                                   ensemble=params.ensemble,
                                   context=run_context(params),
                                   centre_correction=params.centre_correction,
                                   gaussian_guard=params.gaussian_guard, **options)

    def describe(self, model, params, grid) -> str:
        """The output's shape and type, and which output was used (:meth:`output_metadata`)."""
        base = super().describe(model, params, grid)
        if model is None or not ("gaussian" in model.norm or not params.gaussian_guard
                                 or "output" in model.info.get("self_check", {})):
            return base
        md = self.output_metadata(model, params, grid.shape)
        a = md["gaussian_weight"]
        what = {"network": "the network",
                "gaussian": "the Gaussian filter (sigma_t={:g}, sigma_xy={:g})",
                "blend": f"{1 - a:.2f} x network + {a:.2f} x Gaussian filter "
                         "(sigma_t={:g}, sigma_xy={:g})"}[md["output"]]
        return f"{base[:-1]}; output: {what.format(*md.get('gaussian_sigma', ()))})"

    def check_request(self, req, model) -> None:
        if model is not None and req.params is not None:
            self.prepare_predict(model, (), req.params, {}, {})

    def prepare_predict(self, model, input_shape, params, given, options) -> Any:
        """Refuse the blend with the Gaussian turned off for a model that has one: its later
        steps (long context, centre correction) were fitted on the blend, and without it
        they do not fit (allen_movie: 0.92 of the tuned Gaussian's excess error with the
        blend, 1.59 without it)."""
        spec = model.norm.get("gaussian") if model is not None else None
        if (spec and float(spec.get("weight", 0)) > 0 and not params.gaussian_guard
                and run_context(params) is True):
            raise InputError(
                f"this model's steps after the network were fitted on its blend with a "
                f"Gaussian filter (weight {float(spec['weight']):.2f}), so they cannot be "
                f"applied without it: keep 'never worse than a Gaussian' on, or train a new "
                f"model with it off to get the network alone")
        return params

    def output_metadata(self, model, params, input_shape) -> dict:
        """Which long-context step was applied ("full", "causal" or "none") and which
        output was used: the network, the Gaussian filter or their blend (the blend goes
        with the full long-context step: :func:`run_context` is True)."""
        ctx = run_context(params)
        spec = model.norm.get("gaussian") if ctx is True else None
        weight = float(spec["weight"]) if spec and params.gaussian_guard else 0.0
        md = {"long_context_applied": context_applied(model.norm, ctx),
              "output": ("network" if weight <= 0 else "gaussian" if weight >= 1 else "blend"),
              "gaussian_weight": weight}
        if weight > 0:
            md["gaussian_sigma"] = [spec["sigma_t"], spec["sigma_xy"]]
        return md

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape, p, itemsize, lazy, streaming, gpu):
        if len(shape) not in (3, 4):
            raise InputError(f"denoising needs a (t, y, x) or (t, z, y, x) movie, got shape "
                             f"{shape}")
        t, planes = shape[0], (shape[1] if len(shape) == 4 else 1)
        h, w = shape[-2:]
        hp, wp = h + (-h) % 4, w + (-w) % 4
        fb = F32 * h * w
        budget = max(p.window, TRAIN_CACHE_BYTES // fb // planes)
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
        train_act = (p.batch_size * (p.patch_size // 2)**2 * F32
                     * (4 * (p.window - 1) + 8 * p.width))
        train = (cache + (1 + padded) * seg + seg / 4 + read_extra(seg, itemsize, lazy)
                 + 3 * train_act)
        k = p.window // 2
        chunk = min(p.chunk_frames, t)
        block = min(chunk + 2 * k, t) * F32 * hp * wp
        # the long-context step (fitted with the centre correction) reads CONTEXT_HALO
        # frames each side and keeps their pyramid and running sums (about 1.7x those frames)
        context = p.centre_correction and p.long_context
        # (the blend with the Gaussian, applied with the context step, reads GAUSS_HALO
        # frames each side, fewer than CONTEXT_HALO)
        wide = min(chunk + 2 * max(k, CONTEXT_HALO), t) * F32 * hp * wp if context else block
        bpix = _batch_pixels(h, w, gpu)
        act = bpix * F32 * (p.window + 2 + 6 * p.width / 4)  # half-res U-Net, 4x channels
        members = ensemble_size(p.ensemble, shape)
        if members > 1:  # the flipped window, its unshuffled copy
            act += 2 * bpix * F32 * p.window
        # the frames read (two buffers that take turns), their unshuffled copy (two
        # transposes), the context's running sums and the chunk's result before it is written
        predict = (2 * wide + 2 * block + (1.7 * wide if context else 0) + chunk * F32 * h * w
                   + chunk * fb + read_extra(wide, itemsize, lazy) + (0 if gpu else act))
        if streaming:
            predict += chunk * fb  # the zarr chunk being encoded / the memmap pages in flight
        out_bytes = 0 if streaming else t * planes * fb
        frame_work = hp * wp * members
        steps = (float("inf") if p.epochs is None  # the time budget alone ends training
                 else p.epochs * max(1, -(-(t - 2 * k) * planes // (p.stride * p.batch_size))))
        return {"ram": {"train": train, "output": out_bytes, "predict": predict},
                "gpu": act + 2 * bpix * F32 * p.window, "out_shape": shape,
                "work": t * planes * frame_work, "unit_work": frame_work, "unit": "frames",
                "train_steps": steps}

    def probe_inference(self, shape, p, device, timed):
        import torch

        from ...nets import timed_net

        # one batch of the size predict uses, on a crop of at most 512 x 512 pixels (the
        # rate is per pixel: the net is fully convolutional)
        dev = torch.device(device)
        a, b = (min(s, 512) for s in shape[-2:])
        net = self.impl().build_net(p)
        bs = self.impl().auto_batch_size((a, b), dev)
        a, b = a + (-a) % 4, b + (-b) % 4
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.random((bs, p.window - 1, a, b), dtype=np.float32))
        return timed_net(net, x, dev, timed, bs * a * b)

    def probe_batch(self, shape, p):
        import torch

        ps = min(p.patch_size, shape[-2] // 4 * 4, shape[-1] // 4 * 4)
        net = self.impl().build_net(p)
        return (net, torch.randn(p.batch_size, p.window - 1, ps, ps),
                torch.randn(p.batch_size, 1, ps, ps))


METHOD = DenoiseMethod()
