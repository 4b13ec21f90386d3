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
        """The heavy module (imports torch).

        Returns
        -------
        module
            :attr:`module` imported: its ``train``, ``predict`` (and ``load_net``, ``preview``
            where the method has them).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> get("denoise").impl().__name__              # imports torch
        'napari_neurorestore.core.methods.denoise'
        """
        return importlib.import_module(self.module)

    def check_model(self, model: Any, where: str = "this") -> None:
        """Refuse a model that another method trained.

        Parameters
        ----------
        model : TrainedModel
            A loaded model.
        where : str, default "this"
            How the error names the model (e.g. the path it came from).

        Raises
        ------
        ValueError
            When ``model.method`` is not :attr:`name`.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> from napari_neurorestore.core.models import TrainedModel
        >>> m = TrainedModel("upsample", {"factor": 3}, {}, {})
        >>> get("denoise").check_model(m, "model.pt")
        Traceback (most recent call last):
        ...
        ValueError: model.pt is a 'upsample' model, not a denoising model
        """
        if model.method != self.name:
            raise ValueError(f"{where} is a {model.method!r} model, not {self.noun}")

    def merge_params(self, model: Any, params: Any = None, fixed: dict | None = None) -> Any:
        """The parameters of a run that applies a saved ``model``.

        The model's parameters, with the caller's run-time settings (:attr:`runtime_fields` of
        ``params``). ``fixed``: the values a caller gave explicitly for parameters the model
        fixes (:attr:`fixed_fields`); one that differs from the model's is refused.

        Parameters
        ----------
        model : TrainedModel
            The saved model (its ``params`` dict).
        params : params_class, optional
            The caller's parameters: only their :attr:`runtime_fields` are taken.
        fixed : dict, optional
            The parameters the caller set explicitly (name -> value; None: not set).

        Returns
        -------
        params_class
            The run's parameters.

        Raises
        ------
        ValueError
            When a value in ``fixed`` differs from the model's.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> from napari_neurorestore.core.models import TrainedModel
        >>> up = get("upsample")
        >>> model = TrainedModel("upsample", {"factor": 3, "tile_size": 64}, {}, {})
        >>> up.merge_params(model, up.params_class(tile_size=32)).tile_size  # run-time: the caller's
        32
        >>> up.merge_params(model, fixed={"factor": 2})
        Traceback (most recent call last):
        ...
        ValueError: the model was trained for factor 3, not 2
        """
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
        """Refuse input the method cannot take, before anything is allocated or trained.

        Parameters
        ----------
        data : array-like
            The input (only its ``shape`` and ``dtype`` are read).
        params : params_class
            The run's parameters.
        training : bool, default True
            Whether a model will be trained on ``data`` (training may need more of it than
            applying a model).

        Raises
        ------
        InputError
            With a message a user can act on (a ``ValueError``).

        Examples
        --------
        >>> import numpy as np
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> dn.check_input(np.zeros((4, 64, 64), np.uint16), dn.params_class())
        Traceback (most recent call last):
        ...
        napari_neurorestore.core.errors.InputError: the movie has 4 frame(s) but the ...
        """
        raise NotImplementedError

    def grid(self, input_shape: Sequence[int], params: Any) -> Grid:
        """The output's grid: its shape, and its scale and origin relative to the input's.

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape.
        params : params_class
            The run's parameters.

        Returns
        -------
        Grid
            ``shape``; ``scale_factors`` (output pixel size / input pixel size per axis, None:
            unchanged) and ``translate_shift`` (the output origin's shift in input pixels, None:
            none): a viewer overlays the output on the input with them.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> up = get("upsample")
        >>> g = up.grid((32, 96, 96), up.params_class(factor=3))
        >>> g.shape, g.scale_factors[0]
        ((96, 288, 288), 0.3333333333333333)
        >>> sp = get("sparse")
        >>> sp.grid((300, 32, 128), sp.params_class(factor=4)).shape
        (300, 128, 128)
        """
        raise NotImplementedError

    def to_input_grid(self, restored: Any, input_shape: Sequence[int], md: dict,
                      index: slice | None = None) -> np.ndarray:
        """The forward model: the restoration brought back onto the input's grid.

        The trust report's residual is ``raw - to_input_grid(restored)``: binning for upsampling,
        the acquired lines for sparse-axis reconstruction, the axial blur and sampling for
        isotropization, the identity for denoising.

        Parameters
        ----------
        restored : array-like
            The method's output.
        input_shape : sequence of int
            The shape of the input it was restored from.
        md : dict
            The output's provenance (``metadata["neurorestore"]``: its ``params`` and what
            :meth:`output_metadata` added).
        index : slice, optional
            Only these input frames (first axis), for methods that keep time.

        Returns
        -------
        numpy.ndarray
            float32 of ``input_shape`` (or its ``index`` frames).

        Raises
        ------
        ValueError
            When ``restored`` cannot be mapped onto ``input_shape``.

        Examples
        --------
        >>> import numpy as np
        >>> from napari_neurorestore.core.methods import get
        >>> fine = np.ones((6, 24, 24), np.float32)
        >>> get("upsample").to_input_grid(fine, (2, 8, 8), {"factors": [3, 3, 3]}).shape
        (2, 8, 8)
        """
        raise NotImplementedError

    def removes_noise(self, md: dict) -> bool:
        """Whether a run with provenance ``md`` removes noise (the trust report then warns when it
        removed nothing).

        Parameters
        ----------
        md : dict
            The output's provenance (``metadata["neurorestore"]``).

        Returns
        -------
        bool
            False unless a subclass says otherwise.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> get("denoise").removes_noise({}), get("upsample").removes_noise({})
        (True, False)
        """
        return False

    def trust_slices(self, raw_shape: Sequence[int], restored_shape: Sequence[int],
                     md: dict) -> slice | None:
        """The input slices (first axis) the trust checks compare.

        Parameters
        ----------
        raw_shape : sequence of int
            The input's shape.
        restored_shape : sequence of int
            The output's shape.
        md : dict
            The output's provenance (``metadata["neurorestore"]``).

        Returns
        -------
        slice or None
            None: all of them.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> print(get("denoise").trust_slices((300, 64, 64), (300, 64, 64), {}))
        None
        """
        return None

    # ------------------------------------------------------------------ cost
    def memory_model(self, shape: tuple[int, ...], params: Any, itemsize: int, lazy: bool,
                     streaming: bool, gpu: bool) -> dict[str, Any]:
        """The RAM, GPU memory and work of a run: the cost estimate's model (``core/cost.py``).

        Parameters
        ----------
        shape : tuple of int
            The input's shape.
        params : params_class
            The run's parameters.
        itemsize : int
            Bytes per input element (2 for uint16).
        lazy : bool
            Whether the input is read from disk block by block (memmap, dask, zarr).
        streaming : bool
            Whether the output is written to disk as it is made.
        gpu : bool
            Whether the network runs on a GPU.

        Returns
        -------
        dict
            ``{"ram": {"train", "output", "predict"} bytes, "gpu" bytes, "out_shape",
            "work"`` (probe units for the whole input), ``"unit_work"`` (probe units per
            reported item), ``"unit"``, ``"train_steps"}``.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> cost = dn.memory_model((300, 128, 128), dn.params_class(), 2, False, False, False)
        >>> cost["out_shape"], cost["unit"], cost["ram"]["output"]
        ((300, 128, 128), 'frames', 19660800)
        """
        raise NotImplementedError

    def probe_inference(self, shape: tuple[int, ...], params: Any, device: str,
                        timed: Any) -> float:
        """The inference rate of the untrained network on synthetic data of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            The input's shape.
        params : params_class
            The run's parameters (the network's size).
        device : str
            The torch device to probe (``"cpu"``, ``"cuda"``).
        timed : callable
            ``timed(run_once, units_for)`` runs ``run_once(n)`` and measures it;
            ``units_for(n)`` is the work of ``n`` items in probe units.

        Returns
        -------
        float
            Probe units per second.

        Examples
        --------
        The cost estimate calls it (a method without a probe uses :attr:`nominal_rate`):

        >>> from napari_neurorestore.core.cost import estimate      # doctest: +SKIP
        """
        raise NotImplementedError

    def probe_batch(self, shape: tuple[int, ...], params: Any) -> tuple[Any, Any, Any]:
        """One training step's network and batch, for timing a step on this machine.

        Parameters
        ----------
        shape : tuple of int
            The input's shape.
        params : params_class
            The run's parameters.

        Returns
        -------
        net : torch.nn.Module
            The untrained network.
        x : torch.Tensor
            An input batch.
        y : torch.Tensor
            The matching target batch.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> net, x, y = sp.probe_batch((300, 32, 128), sp.params_class(factor=4))  # torch
        >>> x.shape[0] == y.shape[0]
        True
        """
        raise NotImplementedError

    #: intra-op threads used while training on a CPU (None: torch's own)
    def train_threads(self) -> int | None:
        """Intra-op threads used while training on a CPU.

        Returns
        -------
        int or None
            None: torch's own.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> print(get("denoise").train_threads())
        None
        """
        return None

    # ------------------------------------------------------------------ running
    def train(self, data: Any, params: Any, cancel: Any = None, **options: Any
              ) -> Generator[Progress, None, Any]:
        """Train a model on ``data`` (the heavy module's ``train``).

        Parameters
        ----------
        data : array-like
            What to learn from (:meth:`train_input` of the run's input).
        params : params_class
            The run's parameters (``train_seconds``, ``seed``, ``device``...).
        cancel : CancelToken, optional
            Stops training when set (raises ``Cancelled``).
        **options
            The method's extra inputs (:meth:`open_options`), e.g. sparse's ``reference``.

        Yields
        ------
        Progress
            Training reports (step, loss, ETA).

        Returns
        -------
        TrainedModel
            The generator's return value (``drain`` returns it).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> from napari_neurorestore.core.progress import drain
        >>> from napari_neurorestore.core.simulate import simulate_calcium_movie
        >>> movie = simulate_calcium_movie(n_frames=100, shape=(64, 64)).raw
        >>> dn = get("denoise")
        >>> model = drain(dn.train(movie, dn.params_class(train_seconds=5)))
        >>> model.method
        'denoise'
        """
        return self.impl().train(data, params, cancel, **options)

    def predict(self, data: Any, model: Any, params: Any, cancel: Any = None, out: Any = None,
                on_chunk: Any = "auto", **options: Any) -> Generator[Progress, None, Any]:
        """Apply ``model`` to ``data``, streaming the result into ``out``.

        Maps the run's parameters onto the heavy module's ``predict``.

        Parameters
        ----------
        data : array-like
            The input.
        model : TrainedModel
            The trained model.
        params : params_class
            The run's parameters (:meth:`merge_params`, :meth:`prepare_predict`).
        cancel : CancelToken, optional
            Stops inference when set (raises ``Cancelled``, saying how much was written).
        out : array-like, optional
            Where to write the result (of :meth:`grid`'s shape); :meth:`new_output` when None.
        on_chunk : callable, "auto" or None, default "auto"
            Called with ``(a, b)`` when items ``a:b`` are written (a
            :class:`~napari_neurorestore.core.io.ChunkRecorder` for zarr outputs).
        **options
            The method's extra inputs; ``start``/``stop``/``net`` for :meth:`predict_part`.

        Yields
        ------
        Progress
            Inference reports, with an ETA (:class:`PredictTally`).

        Returns
        -------
        array-like
            ``out``, filled: the generator's return value.

        Examples
        --------
        >>> from napari_neurorestore.core.progress import drain
        >>> dn = get("denoise")                                        # doctest: +SKIP
        >>> p = dn.merge_params(model, dn.params_class(device="cpu"))  # doctest: +SKIP
        >>> restored = drain(dn.predict(movie, model, p))              # doctest: +SKIP
        """
        raise NotImplementedError

    def simulates(self, params: Any) -> bool:
        """Whether a run with ``params`` is the method's simulation.

        Then the engine calls :meth:`simulate` instead of :meth:`predict` (e.g. sparse
        ``simulate``: lines dropped from a fully sampled input, restored and measured against
        it).

        Parameters
        ----------
        params : params_class
            The run's parameters.

        Returns
        -------
        bool
            False unless a subclass says otherwise.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.simulates(sp.params_class(simulate=True)), sp.simulates(sp.params_class())
        (True, False)
        """
        return False

    def simulate(self, data: Any, model: Any, params: Any, cancel: Any = None,
                 out: Any = None, **options: Any
                 ) -> Generator[Progress, None, tuple[Any, dict[str, Any]]]:
        """The simulation of :meth:`simulates`: degrade ``data``, restore it, measure.

        Parameters
        ----------
        data : array-like
            The fully sampled (ground-truth) input.
        model : TrainedModel
            The model trained on the degraded data (:meth:`train_input`).
        params : params_class
            The run's parameters.
        cancel : CancelToken, optional
            Stops the run when set.
        out : array-like, optional
            Where to write the restoration.
        **options
            The method's extra inputs (e.g. sparse's ``labels``).

        Yields
        ------
        Progress
            Reports.

        Returns
        -------
        tuple of (array-like, dict)
            ``(out, extra provenance)``: the figures go into the output's metadata.

        Raises
        ------
        NotImplementedError
            For a method without a simulation.

        Examples
        --------
        >>> from napari_neurorestore import sparse
        >>> res = sparse(movie, factor=4, simulate=True, return_result=True)  # doctest: +SKIP
        >>> res.metadata["neurorestore"]["simulation"]                        # doctest: +SKIP
        """
        raise NotImplementedError(f"{self.name} has no simulation")

    def new_output(self, shape: tuple[int, ...]) -> Any:
        """The array an in-memory run writes into when the caller gives none.

        Parameters
        ----------
        shape : tuple of int
            The output's shape (:meth:`grid`).

        Returns
        -------
        numpy.ndarray
            Uninitialised float32 (a subclass may return a temporary memmap when large).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> get("denoise").new_output((10, 64, 64)).dtype
        dtype('float32')
        """
        return np.empty(shape, np.float32)

    def output_suffix(self, params: Any) -> str:
        """The suffix of the result layer's (and output file's) name.

        Parameters
        ----------
        params : params_class
            The run's parameters.

        Returns
        -------
        str
            :attr:`suffix` unless a subclass says otherwise.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.output_suffix(sp.params_class()), sp.output_suffix(sp.params_class(simulate=True))
        ('sparse-restored', 'sparse-simulated')
        """
        return self.suffix

    def check_request(self, req: Any, model: Any) -> None:
        """Refuse a request the method cannot run.

        Checked after the request's outputs and model, before any data is read.

        Parameters
        ----------
        req : Request
            The engine's :class:`~napari_neurorestore.core.engine.Request` (``params``,
            ``options``, ``model``, ``distributed``...).
        model : TrainedModel or None
            The loaded model, or None when one will be trained.

        Raises
        ------
        ValueError
            When the request cannot run (e.g. sparse: ``--model`` with ``--reference``).

        Examples
        --------
        A subclass refuses what its options exclude:

        >>> def check_request(self, req, model):
        ...     if req.model and req.options.get("reference"):
        ...         raise ValueError("--model and --reference exclude each other")
        """

    def open_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of :meth:`train`/:meth:`predict` from a request's options.

        Parameters
        ----------
        options : dict
            The values of :attr:`cli_options` by name (paths as given).

        Returns
        -------
        dict
            Keyword arguments (e.g. paths opened as arrays); empty by default.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> get("sparse").open_options({"reference": None, "labels": None})
        {'reference': None, 'labels': None}
        """
        return {}

    def check_options(self, data: Any, params: Any, options: dict[str, Any]) -> None:
        """Refuse opened options that do not fit ``data`` (before any output or training).

        Parameters
        ----------
        data : array-like
            The input.
        params : params_class
            The run's parameters.
        options : dict
            :meth:`open_options`'s result.

        Raises
        ------
        ValueError
            When an option does not fit (e.g. a label image of another frame size).

        Examples
        --------
        >>> import numpy as np
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> dn.check_options(np.zeros((20, 32, 32)), dn.params_class(), {})  # nothing to check
        """

    def streams(self, params: Any) -> bool:
        """Whether a file run streams its result to disk (for the memory estimate).

        Parameters
        ----------
        params : params_class
            The run's parameters.

        Returns
        -------
        bool
            True unless a subclass says otherwise.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.streams(sp.params_class()), sp.streams(sp.params_class(simulate=True))
        (True, False)
        """
        return True

    def prepare_predict(self, model: Any, input_shape: tuple[int, ...], params: Any,
                        given: dict[str, Any], options: dict[str, Any]) -> Any:
        """The parameters of inference once the model is known (e.g. an automatic tile size).

        Parameters
        ----------
        model : TrainedModel
            The trained or loaded model.
        input_shape : tuple of int
            The input's shape.
        params : params_class
            The run's parameters.
        given : dict
            The parameters the caller set explicitly.
        options : dict
            The request's options (e.g. ``memory_budget``).

        Returns
        -------
        params_class
            ``params`` unless a subclass changes them.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> p = dn.params_class()
        >>> dn.prepare_predict(None, (300, 64, 64), p, {}, {}) is p
        True
        """
        return params

    def load_net(self, model: Any, ndim: int, device: Any) -> Any:
        """The trained network on ``device``, for :meth:`predict_part`.

        Parameters
        ----------
        model : TrainedModel
            The trained model.
        ndim : int
            The input's number of dimensions.
        device : torch.device
            Where to put the network.

        Returns
        -------
        torch.nn.Module
            The network, ready for inference.

        Examples
        --------
        >>> import torch
        >>> net = get("denoise").load_net(model, 3, torch.device("cpu"))  # doctest: +SKIP
        """
        return self.impl().load_net(model, device)

    def predict_part(self, data: Any, model: Any, params: Any, out: Any, a: int, b: int,
                     net: Any = None) -> None:
        """Parts ``a:b`` of the output into ``out``: one task of distributed inference.

        The parts are the unit of :meth:`output_layout` (frames, or tiles in C order).

        Parameters
        ----------
        data : array-like
            The whole input.
        model : TrainedModel
            The trained model.
        params : params_class
            The run's parameters.
        out : array-like
            The whole output store (a zarr array); only parts ``a:b`` are written.
        a, b : int
            The first and the past-the-end part.
        net : torch.nn.Module, optional
            From :meth:`load_net` (loaded once per worker); loaded here when None.

        Examples
        --------
        >>> dn = get("denoise")                                           # doctest: +SKIP
        >>> dn.predict_part(movie, model, params, store, 0, 64)  # doctest: +SKIP
        """
        from ..progress import drain

        drain(self.predict(data, model, params, None, out=out, on_chunk=None, start=a,
                           stop=b, net=net))

    def train_input(self, data: Any, params: Any) -> Any:
        """What :meth:`train` learns from when the engine trains on ``data``.

        Parameters
        ----------
        data : array-like
            The run's input.
        params : params_class
            The run's parameters.

        Returns
        -------
        array-like
            ``data`` itself unless a subclass says otherwise (sparse's simulation trains on the
            lines it keeps).

        Examples
        --------
        >>> import numpy as np
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> full = np.zeros((10, 64, 64), np.float32)
        >>> sp.train_input(full, sp.params_class(factor=4, simulate=True)).shape
        (10, 16, 64)
        """
        return data

    def output_layout(self, model: Any, input_shape: tuple[int, ...], params: Any
                      ) -> OutputLayout:
        """How a streamed output store is chunked and how its progress record counts.

        Parameters
        ----------
        model : TrainedModel
            The trained model.
        input_shape : tuple of int
            The input's shape.
        params : params_class
            The run's parameters.

        Returns
        -------
        OutputLayout
            By default ``params.chunk_frames`` frames per chunk (64 without it).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> dn.output_layout(None, (300, 64, 64), dn.params_class()).chunks
        64
        """
        return OutputLayout(chunks=getattr(params, "chunk_frames", 64))

    def output_metadata(self, model: Any, params: Any, input_shape: tuple[int, ...]
                        ) -> dict[str, Any]:
        """Extra provenance for the output (beyond :func:`metadata_for`'s).

        Parameters
        ----------
        model : TrainedModel
            The trained model.
        params : params_class
            The run's parameters.
        input_shape : tuple of int
            The input's shape.

        Returns
        -------
        dict
            Merged into ``metadata["neurorestore"]``; empty by default.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> up = get("upsample")
        >>> up.output_metadata(None, up.params_class(factor=2), (16, 32, 32))
        {'factors': [2, 2, 2]}
        """
        return {}

    def describe(self, model: Any, params: Any, grid: Grid) -> str:
        """What the CLI prints after 'wrote OUT ': the output's shape and type, and what the
        method wants to add.

        Parameters
        ----------
        model : TrainedModel
            The trained model.
        params : params_class
            The run's parameters.
        grid : Grid
            The output's grid (:meth:`grid`).

        Returns
        -------
        str
            One line.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> p = dn.params_class()
        >>> dn.describe(None, p, dn.grid((300, 128, 128), p))
        '(300x128x128, float32)'
        """
        return f"({'x'.join(map(str, grid.shape))}, float32)"

    def after(self, result: Any, params: Any) -> str | None:
        """Lines the CLI prints after a run.

        Parameters
        ----------
        result : RestoreResult
            The run's result.
        params : params_class
            The run's parameters.

        Returns
        -------
        str or None
            None: nothing.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.after(None, sp.params_class(factor=4))
        "pixel size along y is the input's / 4 (acquired line i is output line i*4)"
        """
        return None

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """What every face says after training, from a model's training record.

        The CLI, the Restore dock and the trust report show it.

        Parameters
        ----------
        info : dict
            ``TrainedModel.info``, also the output provenance's ``"training"``.

        Returns
        -------
        str or None
            None: nothing (the denoiser reports its truth-free self-check against the best
            Gaussian filter).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> print(get("upsample").training_summary({"steps": 900, "train_seconds": 60.0}))
        None
        """
        return None
