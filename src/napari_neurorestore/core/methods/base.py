"""The Method contract: what every restoration method provides, and the code they share.

A method is one :class:`Method` object (registered by name in
:mod:`napari_neurorestore.core.methods`) over two modules of its own: a light one (numpy
only: its geometry, forward model and memory model; the ``Method`` subclass lives there)
and a heavy one (torch: ``train``, ``predict``), imported only when it is used. A run (the
CLI's, the API's, the widgets') is :mod:`~napari_neurorestore.core.engine`'s, over the
steps below (:mod:`~napari_neurorestore.core.steps`).

=====================  ===================================================================
``params_class``       the frozen, validated dataclass of parameters (in ``<name>_spec.py``)
``train``              ``train(data, params, cancel, **options)``: a generator of
                       :class:`Progress` that returns the :class:`TrainedModel`
``predict``            ``predict(data, model, params, cancel, out, on_chunk, **options)``:
                       a generator streaming the result into ``out``; returns ``out``
``simulates``          ``simulates(params)``: the run is the method's simulation
                       (``simulate(data, model, params, cancel, out, **options)``,
                       returning ``(out, extra provenance)``) instead of ``predict``
``check_input``        ``check_input(data, params, training)``: refuse bad input early
``grid``               ``grid(input_shape, params) -> Grid``: the output's shape and its
                       scale/translate relative to the input's (input pixels)
``to_input_grid``      ``to_input_grid(restored, input_shape, md, index)``: the forward
                       model (the restoration brought back to the input's grid; the trust
                       report's residual is ``raw - to_input_grid(restored)``)
``memory_model``       ``memory_model(shape, params, itemsize, lazy, streaming, gpu)``: the
                       RAM/GPU/work model of the cost estimate (``core/cost.py``)
``probe_inference``    inference rate of the untrained network on synthetic data (probe
                       units/s); ``probe_batch``: one training batch for the step probe
``output_layout``      how a streamed output store is chunked and its progress counted
``cli_options``        the method's extra inputs as :class:`Option` data (the CLI's flags)
``training_summary``   ``training_summary(info)``: what every face says after training
``live``               capabilities, with ``distributed``: live mode (``core/live.py``)
=====================  ===================================================================

The parameter-merge rule for a loaded model (:meth:`Method.merge_params`), the output
metadata (:func:`metadata_for`) and the predict tail (count, cancel message, ETA:
:class:`PredictTally`) are written here once.

Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ..progress import Cancelled, Progress


@dataclass(frozen=True)
class Grid:
    """The output's grid relative to the input's: its shape, the factors by which its pixel
    size differs per axis (None: unchanged) and the shift of its origin, in input pixels
    (None: none)."""

    shape: tuple[int, ...]
    scale_factors: tuple[float, ...] | None = None
    translate_shift: tuple[float, ...] | None = None


@dataclass(frozen=True)
class OutputLayout:
    """How a streamed output store is chunked and how its progress record counts.

    ``chunks``: frames per zarr chunk for frame-chunked outputs; ``chunk_shape``: the chunk
    shape of tiled outputs (one chunk per tile); ``axes``: the output's axes (None: the
    input's, when they match the output's rank); ``unit``/``total``/``extra``: what the
    :class:`~napari_neurorestore.core.io.ChunkRecorder` counts (None total: the frames).
    """

    chunks: int = 64
    chunk_shape: tuple[int, ...] | None = None
    axes: str | None = None
    unit: str = "frames"
    total: int | None = None
    extra: dict | None = None


@dataclass(frozen=True)
class Option:
    """An input of a method beyond its parameters (a file, a number), declared as data: the
    CLI's flag is made from it, and a widget can list it (``layer``: picked as a layer in
    the GUI rather than typed). Its value reaches :meth:`Method.check_request` and
    :meth:`Method.open_options` as ``options[name]``.

    ``kind``: "path", "int" or "float"; ``flag``: the CLI's flag (default ``--name`` with
    dashes); ``aliases``: more flags; ``default``: the value when not given.
    """

    name: str
    kind: str
    help: str
    layer: bool = False
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    default: Any = None

    def __post_init__(self) -> None:
        if self.kind not in ("path", "int", "float"):
            raise ValueError(f"option {self.name}: kind must be path, int or float, "
                             f"got {self.kind!r}")

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def metadata_for(model: Any, extra: dict | None = None) -> dict[str, Any]:
    """The provenance a method writes into its output (``{"neurorestore": {...}}``)."""
    from ..._version import __version__

    md = {"method": model.method, "params": dict(model.params),
          "model_format_version": model.version,
          "train_seconds": model.info.get("train_seconds"),
          "training": dict(model.info), "software_version": __version__}
    if extra:
        md.update(extra)
    return {"neurorestore": md}


F32 = 4


def read_extra(nbytes_f32: float, itemsize: int, lazy: bool) -> float:
    """Memory model: the transient of reading a block as float32 (the block at its own
    dtype first, unless it is a view of an in-memory array)."""
    return nbytes_f32 * itemsize / F32 if lazy else 0.0


def as_f32(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def grid_mismatch(shape: Sequence[int], input_shape: Sequence[int], why: str) -> ValueError:
    """The error of a forward model that cannot map ``shape`` onto ``input_shape``."""
    return ValueError(f"cannot bring the restored array {tuple(shape)} back to the input's "
                      f"grid {tuple(input_shape)}: {why}")


def same_grid(restored: Any, input_shape: Sequence[int], index: slice | None = None
              ) -> np.ndarray:
    """The identity forward model: ``restored`` (frames ``index``) as float32."""
    if tuple(restored.shape) != tuple(input_shape):
        raise grid_mismatch(restored.shape, input_shape, "the shapes differ; say which "
                            "method made it (" + ", ".join(_grid_changing()) + ")")
    return as_f32(restored[index or slice(None)])


def _grid_changing() -> list[str]:
    from . import get, names

    return [n for n in names() if not get(n).identity_forward]


def new_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one when None."""
    return seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)


class PredictTally:
    """The shared tail of every ``predict``: counts what was written, reports progress with
    an ETA, and turns a cancel into a message that says how much was written.

    ``total`` items (frames, tiles, blocks) are processed; ``noun`` names them in the cancel
    message ("frames", "output tiles", "lateral blocks") and ``verb`` says what was done
    ("restored", "upsampled"); ``label`` starts the progress message ("restoring").
    ``on_chunk`` (a :class:`~napari_neurorestore.core.io.ChunkRecorder` or any callable) is
    called by :meth:`written`.
    """

    def __init__(self, total: int, noun: str, verb: str, label: str, on_chunk: Any = None,
                 unit: str | None = None, written_total: int | None = None):
        self.total = int(total)
        self.noun, self.verb, self.label = noun, verb, label
        self.unit = unit if unit is not None else noun
        self.on_chunk = on_chunk
        self.written_total = self.total if written_total is None else int(written_total)
        self.done = 0
        self.n = 0
        self.t0 = time.perf_counter()

    def start(self, message: str) -> Progress:
        self.t0 = time.perf_counter()
        return Progress("predict", 0, self.total, message=message)

    def step(self, n: int = 1) -> Progress:
        """``n`` more items processed: the progress report (with an ETA)."""
        self.done += n
        el = time.perf_counter() - self.t0
        return Progress("predict", self.done, self.total,
                        eta=el / max(self.done, 1) * (self.total - self.done),
                        message=f"{self.label}: {self.done}/{self.total} {self.unit}")

    def written(self, a: int, b: int) -> None:
        """Items ``a:b`` are written (recorded before the report: a stop at the report's
        yield keeps the record exact)."""
        self.n += b - a
        if self.on_chunk is not None:
            self.on_chunk(a, b)

    __call__ = written

    @contextmanager
    def cancel_message(self) -> Iterator[None]:
        """Re-raise a cancel with how much was written."""
        try:
            yield
        except Cancelled:
            raise Cancelled(f"cancelled by the user: {self.n} of {self.written_total} "
                            f"{self.noun} were {self.verb} and written") from None


class Method:
    """One restoration method. Subclasses set the class attributes and implement the
    geometry (:meth:`check_input`, :meth:`grid`, :meth:`to_input_grid`), the cost model
    (:meth:`memory_model`, :meth:`probe_inference`, :meth:`probe_batch`) and
    :meth:`predict`'s mapping of parameters onto the heavy module's ``predict``."""

    #: the name in the registry, the CLI subcommand and ``TrainedModel.method``
    name: ClassVar[str] = ""
    #: the heavy module (torch) with ``train`` and ``predict``
    module: ClassVar[str] = ""
    #: one line of help (the CLI subcommand's)
    help: ClassVar[str] = ""
    #: the method picker's label (empty: the name)
    label: ClassVar[str] = ""
    #: whether the heavy module offers ``preview(data, params, center, size, cancel, model)``
    has_preview: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: what a model of this method is called, with its article ("a denoising model")
    noun: ClassVar[str] = ""
    #: run-time settings a caller may change when applying a saved model
    runtime_fields: ClassVar[tuple[str, ...]] = ("device",)
    #: parameters fixed by a saved model: a caller's different value is refused
    fixed_fields: ClassVar[tuple[str, ...]] = ()
    #: whether inference runs on a dask cluster (:meth:`predict_part` per task)
    distributed: ClassVar[bool] = False
    #: whether its models restore files while they are acquired (``core/live.py``)
    live: ClassVar[bool] = False
    #: inference rate on a 2-core CPU (probe units/s), used when the probe is skipped
    nominal_rate: ClassVar[float] = 1e6
    #: the suffix of the output layer's / file's name
    suffix: ClassVar[str] = ""
    #: axes of the input this method takes (for help texts)
    input_help: ClassVar[str] = ""
    #: whether one run takes several inputs (into a folder of outputs)
    many_inputs: ClassVar[bool] = False
    #: the method's inputs beyond its parameters (:class:`Option`); their values reach
    #: :meth:`check_request`/:meth:`open_options` as options
    cli_options: ClassVar[tuple[Option, ...]] = ()
    #: for the trust checks: the first axis of a 3-D/4-D input is time (frames)
    keeps_time: ClassVar[bool] = True
    #: the forward model is the identity (the output is on the input's grid)
    identity_forward: ClassVar[bool] = False
    #: an output of the input's shape is on the input's grid (its forward model: identity)
    same_shape_same_grid: ClassVar[bool] = True

    #: the frozen, validated dataclass of parameters (defined in the light module)
    params_class: ClassVar[type]

    # ------------------------------------------------------------------ parameters
    def impl(self) -> Any:
        """The heavy module (imports torch)."""
        return importlib.import_module(self.module)

    def check_model(self, model: Any, where: str = "this") -> None:
        if model.method != self.name:
            raise ValueError(f"{where} is a {model.method!r} model, not {self.noun}")

    def merge_params(self, model: Any, params: Any = None, fixed: dict | None = None) -> Any:
        """The parameters of a run that applies a saved ``model``: the model's, with the
        caller's run-time settings (:attr:`runtime_fields` of ``params``). ``fixed``: the
        values a caller gave explicitly for parameters the model fixes (``fixed_fields``);
        one that differs from the model's is refused."""
        mp = dict(model.params)
        for name, given in (fixed or {}).items():
            trained = mp.get(name)
            if given is None or trained is None:
                continue
            same = (abs(float(given) - float(trained)) <= 1e-6
                    if isinstance(trained, float) else given == trained)
            if not same:
                label = name.replace("_", " ")
                raise ValueError(f"the model was trained for {label} {trained!r}, not {given!r}")
        if params is not None:
            names = {f.name for f in fields(params)}
            for name in self.runtime_fields:
                if name in names:
                    mp[name] = getattr(params, name)
        return self.params_class.from_dict(mp)

    # ------------------------------------------------------------------ geometry
    def check_input(self, data: Any, params: Any, training: bool = True) -> None:
        raise NotImplementedError

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        raise NotImplementedError

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        raise NotImplementedError

    def removes_noise(self, md: dict) -> bool:
        """Whether a run with provenance ``md`` removes noise (the trust report then warns
        when it removed nothing)."""
        return False

    def trust_slices(self, raw_shape: Sequence[int], restored_shape: Sequence[int],
                     md: dict) -> slice | None:
        """The input slices (first axis) the trust checks compare (None: all)."""
        return None

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape: tuple[int, ...], params: Any, itemsize: int, lazy: bool,
                     streaming: bool, gpu: bool) -> dict[str, Any]:
        """{"ram": {"train", "output", "predict"} bytes, "gpu" bytes, "out_shape",
        "work" (probe units for the whole input), "unit_work" (probe units per reported
        item), "unit", "train_steps"}."""
        raise NotImplementedError

    def probe_inference(self, shape: tuple[int, ...], params: Any, device: str,
                        timed: Any) -> float:
        """Probe units per second of the untrained network; ``timed(run_once, units_for)``
        measures."""
        raise NotImplementedError

    def probe_batch(self, shape: tuple[int, ...], params: Any) -> tuple[Any, Any, Any]:
        """(untrained net, input batch, target batch) of one training step, for timing."""
        raise NotImplementedError

    #: intra-op threads used while training on a CPU (None: torch's own)
    def train_threads(self) -> int | None:
        return None

    # ------------------------------------------------------------------ running
    def train(self, data: Any, params: Any, cancel: Any = None, **options: Any
              ) -> Generator[Progress, None, Any]:
        return self.impl().train(data, params, cancel, **options)

    def predict(self, data: Any, model: Any, params: Any, cancel: Any = None, out: Any = None,
                on_chunk: Any = "auto", **options: Any) -> Generator[Progress, None, Any]:
        raise NotImplementedError

    def simulates(self, params: Any) -> bool:
        """Whether a run with ``params`` is the method's simulation (:meth:`simulate`
        instead of :meth:`predict`; e.g. sparse ``simulate``: lines dropped from a fully
        sampled input, restored and measured against it)."""
        return False

    def simulate(self, data: Any, model: Any, params: Any, cancel: Any = None,
                 out: Any = None, **options: Any
                 ) -> Generator[Progress, None, tuple[Any, dict[str, Any]]]:
        """The simulation of :meth:`simulates`: ``(out, extra provenance)``."""
        raise NotImplementedError(f"{self.name} has no simulation")

    def new_output(self, shape: tuple[int, ...]) -> Any:
        """The array an in-memory run writes into when the caller gives none."""
        return np.empty(shape, np.float32)

    def output_suffix(self, params: Any) -> str:
        """The suffix of the result layer's name (:attr:`suffix`)."""
        return self.suffix

    def check_request(self, req: Any, model: Any) -> None:
        """Refuse a request the method cannot run (an :class:`~..engine.Request`, checked
        after its outputs and model; ``model`` is the loaded model or None)."""

    def open_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of :meth:`train`/:meth:`predict` from a request's options
        (e.g. paths opened as arrays)."""
        return {}

    def check_options(self, data: Any, params: Any, options: dict[str, Any]) -> None:
        """Refuse opened options that do not fit ``data`` (before any output or training)."""

    def streams(self, params: Any) -> bool:
        """Whether a file run streams its result to disk (for the memory estimate)."""
        return True

    def prepare_predict(self, model: Any, input_shape: tuple[int, ...], params: Any,
                        given: dict[str, Any], options: dict[str, Any]) -> Any:
        """The parameters of inference once the model is known (e.g. an automatic tile)."""
        return params

    def load_net(self, model: Any, ndim: int, device: Any) -> Any:
        """The trained network on ``device`` (a torch device), for :meth:`predict_part`."""
        return self.impl().load_net(model, device)

    def predict_part(self, data: Any, model: Any, params: Any, out: Any, a: int, b: int,
                     net: Any = None) -> None:
        """Parts ``a:b`` of the output (the unit of :meth:`output_layout`: frames, or tiles
        in C order) into ``out``: one task of distributed inference. ``net``: from
        :meth:`load_net`."""
        from ..progress import drain

        drain(self.predict(data, model, params, None, out=out, on_chunk=None, start=a,
                           stop=b, net=net))

    def train_input(self, data: Any, params: Any) -> Any:
        """What ``train`` learns from when the engine trains on ``data`` (the data itself)."""
        return data

    def output_layout(self, model: Any, input_shape: tuple[int, ...], params: Any
                      ) -> OutputLayout:
        return OutputLayout(chunks=getattr(params, "chunk_frames", 64))

    def output_metadata(self, model: Any, params: Any, input_shape: tuple[int, ...]
                        ) -> dict[str, Any]:
        """Extra provenance for the output (beyond :func:`metadata_for`'s)."""
        return {}

    def describe(self, model: Any, params: Any, grid: Grid) -> str:
        """What the CLI prints after 'wrote OUT ': the output's shape and type, and what
        the method wants to add."""
        return f"({'x'.join(map(str, grid.shape))}, float32)"

    def after(self, result: Any, params: Any) -> str | None:
        """Lines the CLI prints after a run (None: nothing)."""
        return None

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """What every face says after training, from a model's training record
        (``TrainedModel.info``, also the output provenance's ``"training"``): the CLI, the
        Restore dock and the trust report. None: nothing."""
        return None
