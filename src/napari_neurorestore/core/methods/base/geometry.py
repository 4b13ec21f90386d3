"""The :class:`~napari_neurorestore.core.methods.base.Method` contract's geometry and cost:
the input a method takes, the output's grid, the forward model back to the input's, and the
memory and time model of the estimate (``core/cost.py``).

A mixin of :class:`~napari_neurorestore.core.methods.base.Method`; its module docstring
tables every attribute and hook. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .shared import Grid


class Geometry:
    """The part of the :class:`~napari_neurorestore.core.methods.base.Method` contract on
    geometry: the input a method takes, the output's grid and the forward model back to the input's."""

    #: for the trust checks: the first axis of a 3-D/4-D input is time (frames)
    keeps_time: ClassVar[bool] = True
    #: the forward model is the identity (the output is on the input's grid)
    identity_forward: ClassVar[bool] = False
    #: an output of the input's shape is on the input's grid (its forward model: identity)
    same_shape_same_grid: ClassVar[bool] = True

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


class Cost:
    """The part of the :class:`~napari_neurorestore.core.methods.base.Method` contract on
    cost: the memory and time model of the estimate (``core/cost.py``)."""

    #: inference rate on a 2-core CPU (probe units/s), used when the probe is skipped
    nominal_rate: ClassVar[float] = 1e6

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
