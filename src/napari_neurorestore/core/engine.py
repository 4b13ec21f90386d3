"""The one pipeline of a restoration run, for every method and every face.

Files (the CLI; :func:`restore_files`):

1. check the outputs (existing files, folders, zarr, dask) and the model file's path;
2. load the model and check its method;
3. merge the parameters (the model's, with the caller's run-time settings);
4. open and check each input;
5. compute the output grid, and check the output target (disk space, zarr) for it;
6. preflight: the cost estimate, refused when it does not fit in free memory;
7. train (and save the model) unless a model was given;
8. open the output, record its chunks, and drain the streamed prediction into it
   (or into a dask cluster's workers, for the methods that distribute).

In memory (the Python API and the widgets; :func:`restore`): steps 2, 3, 7 and 8 on
arrays. Both take the same steps (:mod:`.steps`): train input, train, prepare, predict (or a
simulation), the constant-input rule, and one provenance.

Every safety rule (never overwrite without ``overwrite``, refuse before any work, leave a
readable partial output and say how far it got when interrupted) lives here once. The
method-specific parts come from the method's :class:`~.methods.base.Method`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .methods import get
from .methods.base import Grid
from .progress import Cancelled, Progress, drain
from .steps import fill_constant, predict_step, provenance, train_step

#: probe the network's speed only when the nominal estimate of a training run passes this
#: (s): a small run is not slowed down by its own estimate (a --model run always probes)
PROBE_ABOVE_SECONDS = 20.0
_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr")


@dataclass
class Request:
    """One run over files.

    ``params``: the method's parameter dataclass as the caller built it (with a saved
    model, only its run-time settings are used); ``given``: the parameter values the caller
    set explicitly (a saved model's fixed parameters are checked against them; a method may
    read others, e.g. upsample's tile size, None = automatic). ``options``: the method's
    extra inputs (sparse: ``reference``, ``labels`` paths; upsample: ``memory_budget``).
    """

    method: str
    inputs: list[str]
    output: str
    params: Any = None
    given: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    save_model: str | None = None
    overwrite: bool = False
    force: bool = False
    quiet: bool = False
    workers: int | None = None
    scheduler: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: the output's type (:mod:`.out_types`); None: float32, int16 for a suite2p folder
    dtype: str | None = None
    #: a :class:`~.progress.CancelToken`: ``cancel()`` interrupts, ``stop_training()``
    #: ends training and goes on with the model learned so far
    cancel: Any = None

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.scheduler is not None


@dataclass
class Outcome:
    """What one input's run produced."""

    input: str
    output: Path
    grid: Grid
    model: Any
    params: Any
    trained: bool
    result: Any = None
    where: str | None = None  # the dask cluster, when distributed


def _empty(shape: tuple[int, ...], dtype: Any) -> Any:
    import numpy as np

    return np.empty(shape, dtype)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------- checks
def output_paths(method: Any, inputs: list[str], output: str) -> list[Path]:
    """One output per input: ``output`` itself for one input; for several (methods that
    take several), ``OUTDIR/<stem>_<suffix>.ome.zarr``."""
    if len(inputs) == 1:
        return [Path(output)]
    if not getattr(method, "many_inputs", False):
        raise ValueError(f"{method.name} takes one input, got {len(inputs)}")
    outdir = Path(output)
    if outdir.suffix.lower() in (".tif", ".tiff", ".zarr"):
        raise ValueError(f"with {len(inputs)} inputs, -o must be a folder (got {output})")
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir} exists and is not a folder")
    outs = []
    for f in inputs:
        name = Path(f.rstrip("/")).name
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        outs.append(outdir / f"{name}_{method.suffix}.ome.zarr")  # OME-Zarr: pixel sizes
    if len(set(outs)) != len(outs):
        raise ValueError("two inputs have the same name; their outputs would collide")
    outdir.mkdir(parents=True, exist_ok=True)
    return outs


def check_outputs(method: Any, req: Request, outputs: list[Path]) -> None:
    """Refuse, before any work, outputs that exist (without ``overwrite``) or cannot be
    written, and a dask run the method or the output cannot take."""
    from .errors import require as _require
    from .out_types import output_dtype
    from .paths import check_distinct, check_output_path, check_output_suffix
    from .suite2p_out import check_plane_target, is_plane_target

    output_dtype(req.dtype)  # a known name, before any work
    if len(req.inputs) == 1 and not is_plane_target(req.output):
        check_output_suffix(req.output)
    model_path = req.model if isinstance(req.model, (str, os.PathLike)) else None
    extra = [(f"--{k.replace('_', '-')} file", v) for k, v in (req.options or {}).items()
             if isinstance(v, (str, os.PathLike))]
    check_distinct([("-o", o) for o in outputs] + [("--save-model", req.save_model)],
                   [("input", f) for f in req.inputs] + [("--model file", model_path)] + extra)
    if req.distributed:
        if not method.distributed:
            raise ValueError(f"{method.name} does not run on dask (--workers/--dask-scheduler)")
        if req.dtype not in (None, "float32") or any(map(is_plane_target, outputs)):
            raise ValueError("--workers/--dask-scheduler write float32 zarr stores: leave "
                             "out --dtype and write -o OUT.zarr")
        if req.workers is not None and req.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {req.workers}")
    if req.save_model and len(req.inputs) > 1:
        raise ValueError("--save-model takes one input (each input trains its own model); "
                         "train on one recording, then pass --model for the others")
    for o in outputs:
        if is_plane_target(o):  # a suite2p plane folder
            check_plane_target(o, 0, req.overwrite)
            continue
        check_output_path(o, req.overwrite)
        if req.distributed and o.suffix.lower() != ".zarr":
            raise ValueError(f"--workers/--dask-scheduler write zarr stores: use -o "
                             f"{o.with_suffix('.zarr')}")
    if any(o.suffix.lower() == ".zarr" for o in outputs):
        _require("zarr")
    if req.distributed:
        _require("distributed")
    if req.save_model:
        from .models import check_model_target

        check_model_target(req.save_model, req.overwrite)


def check_device(params: Any) -> None:
    """Refuse, before any work, a device this machine does not have (``--device cuda``
    without a GPU): a :class:`~.device.DeviceError` naming ``--device``."""
    name = getattr(params, "device", None)
    if name and str(name).lower() not in ("auto", "cpu"):
        from .device import resolve_device

        resolve_device(name)


def check_data(data: Any, out: Any = None, dtype: Any = "float32") -> None:
    """The API's argument checks: ``data`` is an array (not a path, list or None) and
    ``out`` an array of ``dtype`` (float32)."""
    import numpy as np

    if data is None:
        raise TypeError("data: expected an array (numpy, memmap, dask or zarr), got None")
    if isinstance(data, (str, bytes, os.PathLike)):
        raise TypeError(f"data: expected an array, got the path {data!r}; read it first "
                        f"(napari_neurorestore.core.io.read_array) or use the CLI")
    if not hasattr(data, "shape") or not hasattr(data, "dtype"):
        raise TypeError(f"data: expected an array (numpy, memmap, dask or zarr), got "
                        f"{type(data).__name__}; wrap it with numpy.asarray")
    if getattr(data, "ndim", len(getattr(data, "shape", ()))) == 0:
        raise TypeError(f"data: expected an array of images, got a scalar "
                        f"({type(data).__name__})")
    if out is not None:
        from .out_types import check_out_array

        check_out_array(out, np.dtype(dtype))


def load_checked_model(method: Any, model: Any) -> Any:
    """A saved model (a path, loaded; or a TrainedModel as given) of ``method``; None for
    None."""
    if model is None:
        return None
    where = "this"
    if not hasattr(model, "state_dict"):
        from .models import load_model

        where, model = str(model), load_model(model)
    method.check_model(model, where)
    return model


def run_params(method: Any, model: Any, params: Any, given: dict | None = None) -> Any:
    """The parameters of a run: the caller's; with a model, the model's with the caller's
    run-time settings (and its fixed parameters checked against ``given``)."""
    if params is None:
        params = method.params_class()
    if model is None:
        return params
    fixed = {k: v for k, v in (given or {}).items() if k in method.fixed_fields}
    return method.merge_params(model, params, fixed)


def preflight(method: Any, data: Any, params: Any, model: Any = None, *, quiet: bool = False,
              force: bool = False, log: Callable[[str], None] = _stderr) -> Any:
    """The cost estimate of a run (logged unless ``quiet``); a run that would not fit in free
    memory is refused unless ``force``. Returns the estimate."""
    from .cost import estimate_cost, refuse_if_too_big

    streaming = method.streams(params)
    est = estimate_cost(method.name, data, params, model=model, device=params.device,
                        streaming=streaming, probe=False)
    total = est.infer_seconds + (est.train_seconds or 0.0)
    if not quiet and (model is not None or total > PROBE_ABOVE_SECONDS):  # a model run:
        # the nominal rate says little of the network's real speed (~1 s to measure)
        est = estimate_cost(method.name, data, params, model=model, device=params.device,
                            streaming=streaming, probe=True)
    if not quiet:
        log(f"estimate: {est.summary()}")
    if not force:
        refuse_if_too_big(est, "-o OUT.zarr; --force runs it anyway")
    return est


# --------------------------------------------------------------------------- files
def restore_files(req: Request, progress: Callable[[Progress], None] | None = None,
                  log: Callable[[str], None] = _stderr) -> list[Outcome]:
    """Run ``req`` (see the module's docstring for the steps). ``progress`` gets every
    :class:`Progress` (and is closed, when it has ``close``, before a message); ``log``
    gets the estimate and the interruption messages."""
    from .errors import InputError
    from .io import open_array
    from .out_types import check_target

    m = get(req.method)
    outputs = output_paths(m, req.inputs, req.output)
    check_outputs(m, req, outputs)
    model = load_checked_model(m, req.model)
    m.check_request(req, model)
    params = run_params(m, model, req.params, req.given)
    check_device(params)
    options = m.open_options(req.options)
    opened = []
    for f, o in zip(req.inputs, outputs, strict=True):
        data, axes = open_array(f)
        if str(axes).upper().endswith("S"):  # tifffile's samples axis: RGB(A) pixels
            raise InputError(f"{f} is a colour (RGB) image (axes {axes}); the methods take "
                             f"one intensity channel: split the channels first")
        m.check_input(data, params, training=model is None)
        m.check_options(data, params, options)
        grid = m.grid(tuple(data.shape), params)
        check_target(f, o, tuple(data.shape), grid.shape, req.dtype, req.overwrite)
        preflight(m, data, params, model, quiet=req.quiet, force=req.force, log=log)
        opened.append((f, o, data, axes, grid))
    if req.distributed:
        return _distribute(m, req, model, params, opened, options, progress)
    done = []
    for f, o, data, axes, grid in opened:
        mdl, trained = _trained(m, req, model, params, data, options, progress)
        p = m.prepare_predict(mdl, tuple(data.shape), params, req.given, req.options)
        result = _stream(m, req, mdl, p, f, o, data, axes, grid, options, progress, log)
        done.append(Outcome(f, o, grid, mdl, p, trained, result))
    return done


def _trained(m, req, model, params, data, options, progress) -> tuple[Any, bool]:
    """The model given, or one trained on ``data`` (saved when asked)."""
    model, trained = drain(train_step(m, data, params, model, req.cancel, options), progress)
    if trained and req.save_model:
        from .models import save_model

        save_model(model, req.save_model, req.overwrite)
    return model, trained


def _close(progress: Any) -> None:
    if hasattr(progress, "close"):
        progress.close()


def _stream(m, req, model, params, src, output, data, axes, grid, options, progress, log):
    """Open the output, record its chunks and drain the prediction into it."""
    from .io import discard_output, finish_output, open_output
    from .models import RestoreResult
    from .out_types import output_dtype, record_output_type, unwrap, wrap
    from .suite2p_out import is_plane_target
    from .zarr_io import ChunkRecorder

    shape = tuple(data.shape)
    lay = m.output_layout(model, shape, params)
    md = provenance(m, model, params, shape, {"source": str(src)})
    ax = lay.axes or (axes if len(axes) == len(grid.shape) else None)
    from .pixel_sizes import output_geometry  # the input's pixel sizes, on the output grid

    geo = output_geometry(src, axes, len(shape), grid, output)
    dt = output_dtype(req.dtype, "int16" if is_plane_target(output) else "float32")
    raw = open_output(output, grid.shape, req.overwrite, chunks=lay.chunks,
                      chunk_shape=lay.chunk_shape, metadata=md, axes=ax, unit=lay.unit,
                      total=lay.total, temporary=True, dtype=dt, **geo)
    out = wrap(raw, dt)  # an integer output: rounded, clipped and counted
    where = getattr(raw, "__dict__", {}).get("_temp_path", output)
    recorder = ChunkRecorder(raw, lay.total, lay.unit, lay.extra)
    try:
        written, extra = drain(predict_step(m, data, model, params, req.cancel, out, recorder,
                                            options), progress)
        fill_constant(data, out)
        rec = record_output_type(out, raw, output)  # clipped values: in the provenance
        if getattr(out, "warning", lambda: None)():
            log(out.warning())
        finish_output(raw)  # a TIFF goes into place only now, complete
        extra = {**extra, **({"output_type": rec} if rec else {})}
        result = RestoreResult(unwrap(written), model,
                               {"neurorestore": {**md["neurorestore"], **extra}},
                               m.output_suffix(params), grid.scale_factors, grid.translate_shift)
    except (KeyboardInterrupt, Cancelled):
        _close(progress)
        nan = "NaN" if dt.kind == "f" else "0"
        log(f"interrupted: {recorder.describe()} were restored and written to {where}"
            + (f" (its 'neurorestore_progress' attribute lists them; the rest reads as {nan}); "
               if output.suffix.lower() == ".zarr"
               else f" (not renamed to {output}: it is incomplete; the rest reads as {nan}); ")
            + "run again with --overwrite to redo it")
        raise
    except BaseException:
        discard_output(raw, output)  # nothing in it is a result
        raise
    finally:
        if hasattr(raw, "flush"):
            try:
                raw.flush()
            except (OSError, ValueError):
                pass
        del out, raw
    return result


def _distribute(m, req, model, params, opened, options, progress) -> list[Outcome]:
    """Train here (each input on itself, unless a model was given), save the models where
    the workers can read them, and run the inference on the dask cluster."""
    from .models import save_model

    temp: list[Path] = []
    where = req.scheduler or f"{req.workers} local dask worker(s)"
    try:
        jobs = []
        for f, o, data, _axes, grid in opened:
            mdl, trained = _trained(m, req, model, params, data, options, progress)
            if req.model:
                path = Path(req.model).resolve()
            elif req.save_model:
                path = Path(req.save_model).resolve()
            else:  # next to the output, where the workers can read it
                fd, tmp = tempfile.mkstemp(suffix=".pt", prefix=".neurorestore-model-",
                                           dir=o.resolve().parent)
                os.close(fd)
                path = Path(save_model(mdl, tmp, overwrite=True)).resolve()
                temp.append(path)
            p = m.prepare_predict(mdl, tuple(data.shape), params, req.given, req.options)
            jobs.append((str(Path(f).resolve()), str(o.resolve()), str(path), mdl, p, grid,
                         trained))
        from .distributed import Job, distribute

        drain(distribute(m, [Job(*j[:3]) for j in jobs], [j[4] for j in jobs],
                         workers=req.workers, scheduler=req.scheduler,
                         overwrite=req.overwrite), progress)
    finally:
        for t in temp:
            t.unlink(missing_ok=True)
    return [Outcome(f, o, grid, mdl, p, trained, where=where)
            for (f, o, _mp, mdl, p, grid, trained) in jobs]


# --------------------------------------------------------------------------- in memory
def restore(method: str, data: Any, params: Any = None, *, model: Any = None,
            given: dict | None = None, cancel: Any = None, out: Any = None, dtype: Any = None,
            **options: Any) -> Generator[Progress, None, Any]:
    """Restore an array in memory (or into ``out``, an array of the output's shape): train
    unless ``model`` (a TrainedModel or a path) is given, then predict. ``given``: the
    parameter values the caller set explicitly (a model's fixed ones are checked against
    them); ``options``: the method's extra inputs, as arrays (sparse: ``reference``,
    ``labels``); ``dtype``: the result's type (float32; uint16 or int16: rounded and
    clipped, see :mod:`.out_types`). A generator of :class:`Progress` that returns the
    :class:`~.models.RestoreResult`."""
    import warnings

    from .models import RestoreResult
    from .out_types import output_dtype, unwrap, wrap

    m = get(method)
    dt = output_dtype(dtype)
    check_data(data, out, dt)
    model = load_checked_model(m, model)
    unused = [o.name for o in m.cli_options if o.training and options.get(o.name) is not None]
    if model is not None and unused:  # a saved model is applied: nothing would read them
        raise ValueError(f"a saved model is applied without training, so the "
                         f"{' and '.join(unused)} (used only to train) would be ignored: "
                         f"leave it out, or train a new model")
    params = run_params(m, model, params, given)
    check_device(params)
    shape = tuple(data.shape)
    m.check_input(data, params, training=model is None)
    m.check_options(data, params, options)
    grid = m.grid(shape, params)
    model, _ = yield from train_step(m, data, params, model, cancel, options)
    p = m.prepare_predict(model, shape, params, dict(given or {}), options)
    if out is None:
        out = m.new_output(grid.shape) if dt.kind == "f" else _empty(grid.shape, dt)
    out = wrap(out, dt)
    written, extra = yield from predict_step(m, data, model, p, cancel, out, "auto", options)
    fill_constant(data, out)
    if hasattr(out, "record"):
        extra = {**extra, "output_type": out.record()}
        if out.warning():
            warnings.warn(out.warning(), stacklevel=2)
    yield Progress("done", 1, 1, message="done")
    return RestoreResult(unwrap(written), model, provenance(m, model, p, shape, extra), m.output_suffix(p),
                         grid.scale_factors, grid.translate_shift)
