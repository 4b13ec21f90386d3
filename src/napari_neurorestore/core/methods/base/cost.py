"""The :class:`~napari_neurorestore.core.methods.base.Method` contract's cost: the memory and time model of the estimate (``core/cost.py``).

A mixin of :class:`~napari_neurorestore.core.methods.base.Method`; its module docstring
tables every attribute and hook. Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any, ClassVar


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
