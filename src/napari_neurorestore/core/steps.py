"""The steps every restoration run takes, in memory (:func:`.engine.restore`) and over files
(:func:`.engine.restore_files`), for every method:

1. train on the method's training input (:meth:`~.methods.base.Method.train_input`), unless
   a saved model is given (:func:`train_step`);
2. the parameters of inference once the model is known (``Method.prepare_predict``);
3. predict into the output on the method's grid (``Method.grid``), or run the method's
   simulation when its parameters ask for one (:func:`predict_step`);
4. a constant input comes back as that constant (:func:`fill_constant`);
5. the provenance recorded with the result (:func:`provenance`).

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from .progress import Progress


def train_step(m: Any, data: Any, params: Any, model: Any, cancel: Any,
               options: dict[str, Any]) -> Generator[Progress, None, tuple[Any, bool]]:
    """``(model, trained)``: the model given, or one trained on ``data`` (its training
    input) with ``params``."""
    if model is not None:
        return model, False
    model = yield from m.train(m.train_input(data, params), params, cancel, **options)
    return model, True


def predict_step(m: Any, data: Any, model: Any, params: Any, cancel: Any, out: Any,
                 on_chunk: Any, options: dict[str, Any]
                 ) -> Generator[Progress, None, tuple[Any, dict[str, Any]]]:
    """``(out, extra)``: the prediction written into ``out`` (on ``m.grid``), and the
    provenance the run adds (a simulation's figures)."""
    if m.simulates(params):
        return (yield from m.simulate(data, model, params, cancel, out=out, **options))
    out = yield from m.predict(data, model, params, cancel, out=out, on_chunk=on_chunk,
                               **options)
    return out, {}


def provenance(m: Any, model: Any, params: Any, input_shape: tuple[int, ...],
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``{"neurorestore": {...}}`` metadata of a result: the model's provenance
    (:func:`~.methods.base.metadata_for`), the method's (``Method.output_metadata``) and
    ``extra`` (the input file's path, a simulation's figures)."""
    from .methods.base import metadata_for

    return metadata_for(model, {**m.output_metadata(model, params, tuple(input_shape)),
                                **(extra or {})})


#: inputs up to this size (bytes) are checked for being constant (see :func:`constant`)
CONSTANT_CHECK_BYTES = 64 * 2**20


def constant(data: Any) -> float | None:
    """The value of a constant input (all voxels equal; e.g. an all-zero recording), whose
    restoration is that constant on the output's grid, not what an untrained-on-anything
    network invents; None otherwise (or when too large to check cheaply)."""
    import numpy as np

    shape = tuple(getattr(data, "shape", ()))
    n = int(np.prod(shape)) if shape else 0
    if n == 0 or n * np.dtype(getattr(data, "dtype", np.float32)).itemsize > \
            CONSTANT_CHECK_BYTES:
        return None
    if len(shape) > 1:  # a first frame that varies says no, reading only that frame
        a0 = np.asarray(data[0])
        if a0.dtype.kind not in "uif" or not a0.min() == a0.max():
            return None
    a = np.asarray(data[...])
    if a.dtype.kind not in "uif":
        return None
    lo, hi = a.min(), a.max()
    return float(lo) if lo == hi and np.isfinite(lo) else None


def fill_constant(data: Any, out: Any) -> None:
    """Set every voxel of ``out`` to the value of a constant ``data`` (see
    :func:`constant`); nothing otherwise."""
    value = constant(data)
    if value is None or getattr(out, "ndim", 0) < 1:
        return
    n = 1
    for s in out.shape[1:]:
        n *= int(s)
    step = max(1, CONSTANT_CHECK_BYTES // max(1, 4 * n))  # a block of frames at a time
    for i in range(0, out.shape[0], step):
        out[i:i + step] = value
