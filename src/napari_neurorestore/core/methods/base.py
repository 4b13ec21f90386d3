"""The Method contract: what every restoration method provides, and the code they share.

A method is one :class:`Method` object (registered by name in
:mod:`napari_neurorestore.core.methods`) in its own package ``core/methods/<name>/``: a
light module ``spec.py`` (numpy only: its parameters, geometry, forward model and memory
model; the ``Method`` subclass lives there) and a heavy one ``heavy.py`` (torch: ``train``,
``predict``), imported only when it is used. A run (the CLI's, the API's, the widgets') is
:mod:`~napari_neurorestore.core.engine`'s, over the steps of
:mod:`~napari_neurorestore.core.steps`.

Every attribute and hook of :class:`Method`, in its six parts (the class's order):

===========================  ===============================================================
*identity, presentation*
``name``                     the registry's name, the CLI subcommand, ``TrainedModel.method``
``label``                    the method picker's label (empty: the name)
``help``                     one line of help (the CLI subcommand's)
``description``              the CLI subcommand's longer description
``noun``                     a model of this method, with its article ("a denoising model")
``input_help``               the axes of the input it takes (for help texts)
``suffix``                   the suffix of the output layer's / file's name
``output_suffix``            ``(params)``: that suffix for one run
``describe``                 ``(model, params, grid)``: what the CLI prints after 'wrote OUT'
``after``                    ``(result, params)``: lines the CLI prints after a run
``training_summary``         ``(info)``: what every face says after training
*parameters*
``params_class``             the frozen, validated dataclass of parameters (in ``spec.py``)
``runtime_fields``           settings a caller may change when applying a saved model
``fixed_fields``             parameters a saved model fixes (a different value is refused)
``cli_options``              extra inputs as :class:`Option` data (the CLI's flags)
``check_model``              ``(model, where)``: refuse a model of another method
``merge_params``             ``(model, params, fixed)``: a saved model's parameters, with the
                             caller's run-time settings (one rule for every face)
``check_request``            ``(req, model)``: refuse a request the method cannot run
``open_options``             ``(options)``: ``train``/``predict`` keywords from the options
``check_options``            ``(data, params, options)``: refuse options that do not fit
``prepare_predict``          ``(model, shape, params, given, options)``: inference parameters
                             once the model is known (e.g. an automatic tile)
*geometry*
``keeps_time``               the first axis of a 3-D/4-D input is time (the trust checks)
``identity_forward``         the forward model is the identity
``same_shape_same_grid``     an output of the input's shape is on the input's grid
``check_input``              ``(data, params, training)``: refuse bad input early
``grid``                     ``(input_shape, params) -> Grid``: the output's shape and its
                             scale/translate relative to the input's (input pixels)
``to_input_grid``            ``(restored, input_shape, md, index)``: the forward model (the
                             trust report's residual is ``raw - to_input_grid(restored)``)
``removes_noise``            ``(md)``: the trust report warns when such a run removed nothing
``trust_slices``             ``(raw_shape, restored_shape, md)``: the slices trust compares
*cost*
``nominal_rate``             inference rate (probe units/s) when the probe is skipped
``memory_model``             ``(shape, params, itemsize, lazy, streaming, gpu)``: the RAM, GPU
                             and work of the cost estimate (``core/cost.py``)
``probe_inference``          ``(shape, params, device, timed)``: the untrained net's rate
``probe_batch``              ``(shape, params)``: one training batch for the step probe
``train_threads``            ``()``: intra-op threads while training on a CPU
``streams``                  ``(params)``: whether a file run streams its result to disk
*running*
``module``                   the heavy module (torch) with ``train`` and ``predict``
``impl``                     ``()``: that module, imported
``train_input``              ``(data, params)``: what training learns from
``train``                    ``(data, params, cancel, **options)``: a generator of
                             :class:`Progress` that returns the :class:`TrainedModel`
``predict``                  ``(data, model, params, cancel, out, on_chunk, **options)``: a
                             generator streaming the result into ``out``; returns ``out``
``simulates``                ``(params)``: the run is the method's simulation instead
``simulate``                 ``(data, model, params, cancel, out, **options)``: that
                             simulation, returning ``(out, extra provenance)``
``new_output``               ``(shape)``: the array an in-memory run writes into
``output_layout``            ``(model, shape, params)``: a streamed store's chunks and unit
``output_metadata``          ``(model, params, shape)``: extra provenance of the output
``load_net``                 ``(model, ndim, device)``: the trained net, for ``predict_part``
``predict_part``             ``(data, model, params, out, a, b, net)``: one dask task
*capabilities*
``distributed``              inference runs on a dask cluster (``predict_part`` per task)
``live``                     its models restore files while they are acquired (live mode)
``has_preview``              the heavy module offers ``preview`` (the dock's crop preview)
``many_inputs``              one run takes several inputs (into a folder of outputs)
===========================  ===============================================================

The parameter-merge rule for a loaded model (:meth:`Method.merge_params`) and the output
metadata (:func:`metadata_for`) are written here once; the predict tail (count, cancel
message, ETA) is :class:`~napari_neurorestore.core.progress.PredictTally`.

Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ..progress import Progress


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


class Method:
    """One restoration method. Subclasses set the class attributes and implement the
    geometry (:meth:`check_input`, :meth:`grid`, :meth:`to_input_grid`), the cost model
    (:meth:`memory_model`, :meth:`probe_inference`, :meth:`probe_batch`) and
    :meth:`predict`'s mapping of parameters onto the heavy module's ``predict``."""

    # ------------------------------------------------------------------ identity and presentation
    #: the name in the registry, the CLI subcommand and ``TrainedModel.method``
    name: ClassVar[str] = ""
    #: the method picker's label (empty: the name)
    label: ClassVar[str] = ""
    #: one line of help (the CLI subcommand's)
    help: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: what a model of this method is called, with its article ("a denoising model")
    noun: ClassVar[str] = ""
    #: axes of the input this method takes (for help texts)
    input_help: ClassVar[str] = ""
    #: the suffix of the output layer's / file's name
    suffix: ClassVar[str] = ""

    def output_suffix(self, params: Any) -> str:
        """The suffix of the result layer's name (:attr:`suffix`)."""
        return self.suffix

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

    # ------------------------------------------------------------------ parameters
    #: the frozen, validated dataclass of parameters (defined in the light module)
    params_class: ClassVar[type]
    #: run-time settings a caller may change when applying a saved model
    runtime_fields: ClassVar[tuple[str, ...]] = ("device",)
    #: parameters fixed by a saved model: a caller's different value is refused
    fixed_fields: ClassVar[tuple[str, ...]] = ()
    #: the method's inputs beyond its parameters (:class:`Option`); their values reach
    #: :meth:`check_request`/:meth:`open_options` as options
    cli_options: ClassVar[tuple[Option, ...]] = ()

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

    def check_request(self, req: Any, model: Any) -> None:
        """Refuse a request the method cannot run (an :class:`~..engine.Request`, checked
        after its outputs and model; ``model`` is the loaded model or None)."""

    def open_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of :meth:`train`/:meth:`predict` from a request's options
        (e.g. paths opened as arrays)."""
        return {}

    def check_options(self, data: Any, params: Any, options: dict[str, Any]) -> None:
        """Refuse opened options that do not fit ``data`` (before any output or training)."""

    def prepare_predict(self, model: Any, input_shape: tuple[int, ...], params: Any,
                        given: dict[str, Any], options: dict[str, Any]) -> Any:
        """The parameters of inference once the model is known (e.g. an automatic tile)."""
        return params

    # ------------------------------------------------------------------ geometry
    #: for the trust checks: the first axis of a 3-D/4-D input is time (frames)
    keeps_time: ClassVar[bool] = True
    #: the forward model is the identity (the output is on the input's grid)
    identity_forward: ClassVar[bool] = False
    #: an output of the input's shape is on the input's grid (its forward model: identity)
    same_shape_same_grid: ClassVar[bool] = True

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
    #: inference rate on a 2-core CPU (probe units/s), used when the probe is skipped
    nominal_rate: ClassVar[float] = 1e6

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

    def streams(self, params: Any) -> bool:
        """Whether a file run streams its result to disk (for the memory estimate)."""
        return True

    # ------------------------------------------------------------------ running
    #: the heavy module (torch) with ``train`` and ``predict``
    module: ClassVar[str] = ""

    def impl(self) -> Any:
        """The heavy module (imports torch)."""
        return importlib.import_module(self.module)

    def train_input(self, data: Any, params: Any) -> Any:
        """What ``train`` learns from when the engine trains on ``data`` (the data itself)."""
        return data

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

    def output_layout(self, model: Any, input_shape: tuple[int, ...], params: Any
                      ) -> OutputLayout:
        return OutputLayout(chunks=getattr(params, "chunk_frames", 64))

    def output_metadata(self, model: Any, params: Any, input_shape: tuple[int, ...]
                        ) -> dict[str, Any]:
        """Extra provenance for the output (beyond :func:`metadata_for`'s)."""
        return {}

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

    # ------------------------------------------------------------------ capabilities
    #: whether inference runs on a dask cluster (:meth:`predict_part` per task)
    distributed: ClassVar[bool] = False
    #: whether its models restore files while they are acquired (``core/live.py``)
    live: ClassVar[bool] = False
    #: whether the heavy module offers ``preview(data, params, center, size, cancel, model)``
    has_preview: ClassVar[bool] = False
    #: whether one run takes several inputs (into a folder of outputs)
    many_inputs: ClassVar[bool] = False
