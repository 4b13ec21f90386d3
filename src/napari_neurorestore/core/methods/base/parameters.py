"""The :class:`~napari_neurorestore.core.methods.base.Method` contract's parameters: the dataclass, a saved model's fixed and run-time fields, extra inputs and their checks.

A mixin of :class:`~napari_neurorestore.core.methods.base.Method`; its module docstring
tables every attribute and hook. Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar

from .shared import Option


class Parameters:
    """The part of the :class:`~napari_neurorestore.core.methods.base.Method` contract on
    parameters: the dataclass, a saved model's fixed and run-time fields, extra inputs and their checks."""

    #: the frozen, validated dataclass of parameters (defined in the light module)
    params_class: ClassVar[type]
    #: run-time settings a caller may change when applying a saved model
    runtime_fields: ClassVar[tuple[str, ...]] = ("device",)
    #: the method's inputs beyond its parameters (:class:`Option`: the CLI's flags and the
    #: dock's layer pickers); their values reach :meth:`check_request`/:meth:`open_options`
    #: as options
    cli_options: ClassVar[tuple[Option, ...]] = ()

    @property
    def fixed_fields(self) -> tuple[str, ...]:
        """The parameters a saved model fixes: every field that is not a run-time setting
        (:attr:`runtime_fields`). A caller's different value is refused, so no value given
        with a saved model is silently ignored.

        Returns
        -------
        tuple of str
            The fields of :attr:`params_class` not in :attr:`runtime_fields`.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> "window" in get("denoise").fixed_fields, "device" in get("denoise").fixed_fields
        (True, False)
        """
        return tuple(f.name for f in fields(self.params_class)
                     if f.name not in self.runtime_fields)

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
