"""The :class:`~napari_neurorestore.core.methods.base.Method` contract's running: training and inference, in memory, into a stream and on dask.

A mixin of :class:`~napari_neurorestore.core.methods.base.Method`; its module docstring
tables every attribute and hook. Importing this module does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator
from typing import Any, ClassVar

import numpy as np

from ...progress import Progress
from .shared import OutputLayout


class Running:
    """The part of the :class:`~napari_neurorestore.core.methods.base.Method` contract on
    running: training and inference, in memory, into a stream and on dask."""

    #: the heavy module (torch) with ``train`` and ``predict``
    module: ClassVar[str] = ""

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
            :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder` for zarr outputs).
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
        from ...progress import drain

        drain(self.predict(data, model, params, None, out=out, on_chunk=None, start=a,
                           stop=b, net=net))
