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
``fixed_fields``             the fields that are not run-time settings: a saved model fixes
                             them (a different value given is refused)
``cli_options``              extra inputs as :class:`Option` data (the CLI's flags, the
                             Restore dock's layer pickers)
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

The contract is written in parts, one mixin each: ``base/presentation.py``,
``parameters.py``, ``geometry.py`` (geometry and cost) and ``running.py``; the
capabilities are on :class:`Method` itself, and the shared types in ``base/shared.py``.
Importing this package does not import torch.
"""

from __future__ import annotations

from typing import ClassVar

from .geometry import Cost, Geometry
from .parameters import Parameters
from .presentation import Presentation
from .running import Running
from .shared import (
    F32,
    Grid,
    Option,
    OutputLayout,
    as_f32,
    grid_mismatch,
    metadata_for,
    new_seed,
    read_extra,
    same_grid,
)

__all__ = ["F32", "Grid", "Method", "Option", "OutputLayout", "as_f32", "grid_mismatch",
           "metadata_for", "new_seed", "read_extra", "same_grid"]


class Method(Presentation, Parameters, Geometry, Cost, Running):
    """One restoration method. Subclasses set the class attributes and implement the
    geometry (:meth:`check_input`, :meth:`grid`, :meth:`to_input_grid`), the cost model
    (:meth:`memory_model`, :meth:`probe_inference`, :meth:`probe_batch`) and
    :meth:`predict`'s mapping of parameters onto the heavy module's ``predict``."""


    # ------------------------------------------------------------------ capabilities
    #: whether inference runs on a dask cluster (:meth:`predict_part` per task)
    distributed: ClassVar[bool] = False
    #: whether its models restore files while they are acquired (``core/live.py``)
    live: ClassVar[bool] = False
    #: whether the heavy module offers ``preview(data, params, center, size, cancel, model)``
    has_preview: ClassVar[bool] = False
    #: whether one run takes several inputs (into a folder of outputs)
    many_inputs: ClassVar[bool] = False

