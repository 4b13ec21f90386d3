"""Forward models: a method's output brought back onto the input's grid (keep every M-th
row, bin, blur and sub-sample in z), so that it can be compared with the raw data. Each
method owns its forward model (``Method.to_input_grid`` in ``core/methods/*/spec.py``);
this module picks it from the restoration's metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..methods.base import same_grid
from .common import _meta, _method_obj, _method_of, _same_grid

__all__ = ["to_input_grid"]


def to_input_grid(restored: Any, input_shape: Sequence[int], metadata: dict | None = None,
                  *, method: str | None = None, index: slice | None = None) -> np.ndarray:
    """The restoration brought back to the input's grid by the method's forward model.

    * denoise (or another tool's output of the input's shape): unchanged;
    * sparse (factor M along y or x): the restored lines at the acquired positions;
    * upsample (factors f): the mean of each f-block (area sampling);
    * isotropize (ratio R, axial sigma): blurred along z like the acquisition, then sampled
      at the acquired slices (positions i * R of the output).

    ``index`` restricts the result to a range of the first axis (frames of a movie) for the
    methods that keep that axis (denoise, sparse, 2-D/lateral upsampling of movies).
    Returns float32.
    """
    md = _meta(metadata)
    method = method or _method_of(md)
    input_shape = tuple(int(s) for s in input_shape)
    shape = tuple(restored.shape)
    m = _method_obj(method)
    if _same_grid(method) or shape == input_shape and (m is None or m.same_shape_same_grid):
        return same_grid(restored, input_shape, index)  # another tool's output too
    if m is None:
        raise ValueError(f"cannot bring the restored array {shape} back to the input's grid "
                         f"{input_shape}: unknown method {method!r}")
    return m.to_input_grid(restored, input_shape, md, index)
