"""Sparse-axis reconstruction's contract (numpy only; the network lives in :mod:`.heavy`):
the parameters, the output grid, the forward model (the restored lines at the acquired
positions) and the cost model. The scan's geometry, input checks and cubic baseline are in
:mod:`.lines` (also importable from here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ...params import _check_int, _common, _length, _Params, _seconds, opt
from ..base import F32, Grid, Method, Option, OutputLayout, as_f32, grid_mismatch, read_extra
from .lines import (  # noqa: F401 - the geometry, also importable from here
    _Frames,
    check_input,
    check_reference,
    check_simulation,
    cubic_upsample,
    frame_index,
    make_sparse,
    output_shape,
    scale_factors,
)

#: bytes of float32 frames kept in memory for training (``sparse.TRAIN_CACHE_BYTES``)
TRAIN_CACHE_BYTES = 512 * 2**20
#: ``temporal_denoise="auto"`` turns the denoising first stage on from this skip factor
#: (600x128x128 simulation, 60 s: at M=8 it took trace NRMSE 10.9 -> 8.1 % and PSNR
#: 22.6 -> 25.2 dB; at M=4 it cost trace NRMSE, 3.6 -> 5.1 %)
STAGE_AUTO_FACTOR = 8


def _context(params: Any, n_frames: int) -> int:
    return params.context if n_frames > 1 else 0


@dataclass(frozen=True)
class SparseParams(_Params):
    """Parameters of sparse-axis reconstruction (after IRIS): restore the lines a scan
    skipped along one axis, learning from the fully sampled other axis.

    factor : skip factor M: one line in M was acquired (acquired line i lies at full-frame
        line i*M; the output has M times more lines).
    axis : the under-sampled axis: "y" (rows, the slow scan axis) or "x" (columns).
    simulate : simulate from a fully sampled stack: keep every M-th line of the input,
        reconstruct it, and report PSNR, SSIM and trace NRMSE against the full stack.
    context : neighbouring frames (or planes) on each side given to the network as
        extra input (0 = frame by frame).
    denoise : also denoise the acquired lines (their values are then a restored estimate);
        off keeps the acquired lines exactly as measured.
    temporal_denoise : first stage: train the project's denoiser (temporal blind spot) on
        the acquired lines and reconstruct from its output, so that the restored movie is
        denoised as a whole (a movie of at least 15 frames; not with a reference). "auto"
        (the default): on from M = STAGE_AUTO_FACTOR (8), off below; "on", "off" (True and
        False are taken as "on" and "off"). On a 600x128x128 simulation (60 s, idle 2-core
        CPU) it gained PSNR at M=4 (30.1 -> 31.9 dB) but cost ROI trace NRMSE (3.6 -> 5.1
        %); at M=8 it gains both (22.9 -> 24.6-25.1 dB, 9.3 -> 6.3-6.5 % since session
        12: without it the traces are further from the truth than cubic interpolation's,
        8.5 %).
    epochs : training length: an epoch draws about as many random crops as the frames
        hold (at least 10 steps); None = no limit; whichever of ``epochs`` and
        ``train_seconds`` comes first ends training (the CLI's ``--steps``).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the training crops in samples (multiple of 4).
    batch_size : training crops per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level (speed/quality trade-off).
    seed : seed for the sampler and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    chunk_frames : frames per inference chunk (bounds memory; does not change the result).
    """

    factor: int = opt(4, "skip factor M, 2-16: one line in M was acquired", min=2, max=16)
    axis: str = opt("y", "the under-sampled axis (y: the slow scan axis)", choices=("y", "x"))
    simulate: bool = opt(False, "the input is fully sampled: keep every M-th line, reconstruct, and print PSNR/SSIM/trace NRMSE against the full stack")
    context: int = opt(6, "neighbouring frames on each side given to the network", min=0, max=8)
    denoise: bool = opt(True, "also denoise the acquired lines (off: keep them exactly as measured)")
    temporal_denoise: str = opt("auto", "first stage: the denoiser (temporal blind spot) on "
                                "the acquired lines, then the reconstruction from its output "
                                "(auto: on from M=8, where it gains ROI trace fidelity; at "
                                "M=4 it costs some)", choices=("auto", "on", "off"),
                                const="on", label="temporal denoise")
    epochs: int | None = _length("epochs", "an epoch: about as many crops as the frames "
                                 "hold, at least 10 steps")
    train_seconds: float | None = _seconds("epochs")
    patch_size: int = opt(32, "side of the training crops in samples (multiple of 4)", min=8, max=1024, step=4)
    batch_size: int = opt(16, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    chunk_frames: int = opt(64, "frames per inference chunk (memory bound)", min=1, max=100000)

    method = "sparse"

    def __post_init__(self) -> None:
        _check_int("factor", self.factor, 2, 16)
        if self.axis not in ("y", "x"):
            raise ValueError(f"axis must be 'y' or 'x', got {self.axis!r}")
        if isinstance(self.temporal_denoise, bool | np.bool_):  # the setting's old type
            object.__setattr__(self, "temporal_denoise", "on" if self.temporal_denoise else "off")
        if self.temporal_denoise not in ("auto", "on", "off"):
            raise ValueError(f"temporal_denoise must be 'auto', 'on' or 'off', got "
                             f"{self.temporal_denoise!r}")
        for name in ("simulate", "denoise"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_int("context", self.context, 0, 8)
        self._check_training("epochs", (8, 1024), 128)
        _check_int("chunk_frames", self.chunk_frames, 1)

    @property
    def stage(self) -> bool:
        """Whether the denoising first stage is asked for (``temporal_denoise``; "auto":
        from M = STAGE_AUTO_FACTOR)."""
        return (self.temporal_denoise == "on" or self.temporal_denoise == "auto"
                and self.factor >= STAGE_AUTO_FACTOR)


class SparseMethod(Method):
    params_class = SparseParams
    name = "sparse"
    module = "napari_neurorestore.core.methods.sparse.heavy"
    help = "sparse-axis reconstruction (IRIS): restore skipped scan lines"
    label = "Sparse axis (IRIS)"
    description = ("Restore the lines a scan skipped along one axis, with a network trained "
                   "on the sparse data itself (the fully sampled axis is the teacher).")
    input_help = ("(y, x), (t|z, y, x) or (t, z, y, x) TIFF of the acquired lines "
                  "(a fully sampled stack with --simulate)")
    noun = "a sparse-axis model"
    runtime_fields = ("device", "chunk_frames", "simulate", "denoise")
    distributed = True
    cli_options = (
        Option("labels", "path", "with --simulate: ROI label image for the trace figures "
               "(default: the 20 most active 8x8 tiles; --labels is an alias)", layer="Labels",
               flag="--rois", aliases=("--labels",), metavar="ROIS.tif"),
        Option("reference", "path", "train on this fully sampled stack from the same rig "
               "(supervised pairs by dropping lines) instead of on the input", layer=True,
               metavar="REF.tif", training=True),
    )
    nominal_rate = 20e6
    suffix = "sparse-restored"

    def check_input(self, data: Any, params: Any, training: bool = True) -> None:
        check_input(data, params.factor, params.axis, sparse=not params.simulate)

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        shape = tuple(int(s) for s in input_shape)
        if params.simulate:
            return Grid(shape)
        return Grid(output_shape(shape, params.factor, params.axis),
                    scale_factors(len(shape), params.factor, params.axis))

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        params = dict(md.get("params", {}))
        shape = tuple(restored.shape)
        m = int(md.get("factor", params.get("factor", 0)) or 0)
        axis = str(params.get("axis", "y"))
        if m <= 0:
            ax = -2 if axis == "y" else -1
            m = shape[ax] // max(input_shape[ax], 1)
        s = [slice(None)] * len(shape)
        s[0] = index or slice(None)
        s[-2 if axis == "y" else -1] = slice(0, None, m)
        out = as_f32(restored[tuple(s)])
        want = list(input_shape)
        if index is not None:
            want[0] = out.shape[0]
        if tuple(out.shape) != tuple(want):
            raise grid_mismatch(shape, input_shape, f"keeping every {m}-th line gives {out.shape}")
        return out

    def removes_noise(self, md: dict) -> bool:
        return bool(dict(md.get("params", {})).get("denoise", True))

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """The truth-free self-check against cubic interpolation and a full scan (an honest
        preview: it says when the factor is past what the method restores)."""
        from .figures import format_check

        return format_check(info.get("self_check"))

    def check_request(self, req, model) -> None:
        if req.model and req.options.get("reference"):
            raise ValueError("--model and --reference exclude each other (a saved model is "
                             "applied without training)")
        if req.options.get("labels") and not req.params.simulate:
            raise ValueError("--rois is used with --simulate only")
        if req.distributed and req.params.simulate:
            raise ValueError("--simulate runs in this process (not with --workers/"
                             "--dask-scheduler)")

    def open_options(self, options):
        from ...io import read_tiff

        ref, labels = options.get("reference"), options.get("labels")
        return {"reference": read_tiff(ref, lazy=True)[0] if ref else None,
                "labels": read_tiff(labels, lazy=False)[0] if labels else None}

    def check_options(self, data: Any, params: Any, options: dict[str, Any]) -> None:
        if options.get("labels") is not None and not params.simulate:
            raise ValueError("ROI labels score a simulation only: turn on simulate, or give "
                             "no ROI labels")
        if params.simulate:
            check_simulation(data, options.get("labels"))
        elif options.get("reference") is not None:
            check_reference(data, options["reference"], params.factor, params.axis)

    def streams(self, params) -> bool:
        return not params.simulate

    def train(self, data, params, cancel=None, reference=None, **options):
        return self.impl().train(data, params, cancel, reference=reference)

    def train_input(self, data: Any, params: Any) -> Any:
        return make_sparse(data, params.factor, params.axis) if params.simulate else data

    def predict(self, data, model, params, cancel=None, out=None, on_chunk="auto",
                labels=None, reference=None, **options):
        return self.impl().predict(data, model, cancel, out=out,
                                   chunk_frames=params.chunk_frames, device=params.device,
                                   denoise=params.denoise, on_chunk=on_chunk, **options)

    def simulates(self, params) -> bool:
        return bool(params.simulate)

    def simulate(self, data, model, params, cancel=None, out=None, labels=None,
                 reference=None, **options):
        """Lines dropped from the fully sampled ``data``, restored with ``model`` and
        measured against ``data`` (:func:`.heavy.simulate`)."""
        return self.impl().simulate(data, model, params, cancel, out=out, labels=labels)

    def output_suffix(self, params) -> str:
        return "sparse-simulated" if params.simulate else self.suffix

    def output_layout(self, model, input_shape, params) -> OutputLayout:
        n = 1 if len(input_shape) == 2 else int(input_shape[0])
        return OutputLayout(chunks=params.chunk_frames, total=n)

    def after(self, result: Any, params: Any) -> str | None:
        if params.simulate:
            from .figures import format_simulation

            return format_simulation(result.metadata["neurorestore"]["simulation"])
        return (f"pixel size along {params.axis} is the input's / {params.factor} "
                f"(acquired line i is output line i*{params.factor})")

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape, p, itemsize, lazy, streaming, gpu):
        if len(shape) not in (2, 3, 4):
            raise InputError(f"sparse-axis reconstruction needs 2D-4D data, got shape {shape}")
        m = p.factor
        n = 1 if len(shape) == 2 else shape[0]
        planes = shape[1] if len(shape) == 4 else 1
        na, nb = (shape[-2], shape[-1]) if p.axis == "y" else (shape[-1], shape[-2])
        fb = F32 * na * nb
        k = _context(p, n)
        budget = max(2 * k + 1, TRAIN_CACHE_BYTES // fb // planes)
        if budget >= n:
            seg_frames, n_seg = n, planes
        else:
            run_len = max(8 * (2 * k + 1), 64)
            seg_frames, n_seg = run_len, planes * max(1, budget // run_len)
        seg = seg_frames * fb
        cache = n_seg * seg
        train_act = p.batch_size * p.patch_size**2 * F32 * (2 * k + 1 + 3 * m + 12 * p.width)
        # the normalised list is built while the raw one still exists
        train = 2 * cache + seg + read_extra(seg, itemsize, lazy) + 3 * train_act
        if p.stage and n >= 5:  # the first stage's own cache, freed before
            stage = 2 * min(768 * 2**20, n * planes * fb)
            train = max(train, stage + read_extra(seg, itemsize, lazy))
        chunk = min(p.chunk_frames, n)
        raw = (chunk + 2 * k) * fb
        res = chunk * fb * m
        bs = 16 if gpu else 2
        act = bs * na * nb * F32 * (2 * k + 1 + 2 * m + 6 * p.width / 2)
        predict = 3 * raw + res + read_extra(raw, itemsize, lazy) + (0 if gpu else act)
        out_shape = list(shape)
        out_shape[-2 if p.axis == "y" else -1] *= m
        out_bytes = 0 if streaming else n * planes * fb * m
        if p.simulate:  # the sparse copy, the restored and cubic results, the float32 truth
            out_bytes = n * planes * fb * (1 / m + 3)
            out_shape = list(shape)
        frame_work = na * nb * m
        per_epoch = max(10, -(-n * planes * max(1, na * nb // p.patch_size**2) // p.batch_size))
        steps = float("inf") if p.epochs is None else p.epochs * per_epoch
        return {"ram": {"train": train, "output": out_bytes, "predict": predict},
                "gpu": act + 3 * raw, "out_shape": out_shape,
                "work": n * planes * frame_work, "unit_work": frame_work, "unit": "frames",
                "train_steps": steps}

    def probe_inference(self, shape, p, device, timed):
        import torch

        from ...nets import timed_net

        dev = torch.device(device)
        a, b = (min(s, 512) for s in shape[-2:])
        k = p.context if len(shape) >= 3 and shape[0] > 1 else 0
        net = self.impl().build_net(p, k)
        bs = 2 if dev.type == "cpu" else 16
        na, nb = (a, b) if p.axis == "y" else (b, a)
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.random((bs, 2 * k + 1, na, nb), dtype=np.float32))
        return timed_net(net, x, dev, timed, bs * a * b * p.factor)

    def probe_batch(self, shape, p):
        import torch

        k = p.context if len(shape) >= 3 and shape[0] > 1 else 0
        net = self.impl().build_net(p, k)
        ps = max(4, min(p.patch_size, shape[-1] // p.factor if p.axis == "y" else shape[-2]))
        return (net, torch.randn(p.batch_size, 2 * k + 1, ps, ps),
                torch.randn(p.batch_size, p.factor, ps, ps))


METHOD = SparseMethod()
