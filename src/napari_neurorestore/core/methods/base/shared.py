"""What the methods share beside the :class:`~napari_neurorestore.core.methods.base.Method`
contract: the output's grid and layout, extra inputs as data, the provenance of a result and
small helpers of the forward and memory models. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


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
    :class:`~napari_neurorestore.core.zarr_io.ChunkRecorder` counts (None total: the frames).
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
    CLI's flag is made from it, and the Restore dock's layer pickers too (``layer``: picked
    as a layer in the GUI rather than typed: True or "Image" for an Image layer, "Labels"
    for a Labels layer). Its value reaches :meth:`Method.check_request` and
    :meth:`Method.open_options` as ``options[name]`` (a path), and the dock's layer's data
    reaches ``engine.restore(..., **options)`` as the opened value.

    ``kind``: "path", "int" or "float"; ``flag``: the CLI's flag (default ``--name`` with
    dashes); ``aliases``: more flags; ``default``: the value when not given; ``training``:
    used only to train (refused when a saved model is applied: nothing would read it).
    """

    name: str
    kind: str
    help: str
    layer: bool | str = False
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    default: Any = None
    training: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("path", "int", "float"):
            raise ValueError(f"option {self.name}: kind must be path, int or float, "
                             f"got {self.kind!r}")
        if self.layer not in (False, True, "Image", "Labels"):
            raise ValueError(f"option {self.name}: layer must be True, 'Image' or 'Labels', "
                             f"got {self.layer!r}")

    @property
    def layer_type(self) -> str | None:
        """The napari layer type the GUI picks this input from ("Image", "Labels"); None:
        not a layer."""
        if not self.layer:
            return None
        return "Image" if self.layer is True else str(self.layer)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def metadata_for(model: Any, extra: dict | None = None) -> dict[str, Any]:
    """The provenance a method writes into its output (``{"neurorestore": {...}}``)."""
    from ...._version import __version__

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
    from .. import get, names

    return [n for n in names() if not get(n).identity_forward]


def new_seed(seed: int | None) -> int:
    """``seed``, or a fresh random one when None."""
    return seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
