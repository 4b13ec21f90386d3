"""The fifth method's parameters and Method (light: numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.methods.base import F32, Grid, Method, Option, same_grid
from napari_neurorestore.core.params import (
    _check_int,
    _check_length,
    _common,
    _length,
    _Params,
    _seconds,
    opt,
)


@dataclass(frozen=True)
class FifthParams(_Params):
    """steps : passes over the movie; train_seconds : the time budget; chunk_frames :
    frames per written chunk."""

    steps: int | None = _length("steps", "a pass over the movie")
    train_seconds: float | None = _seconds("steps")
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    chunk_frames: int = opt(4, "frames per chunk", min=1, max=1000)

    method = "fifth"

    def __post_init__(self) -> None:
        _check_length("steps", self.steps, self.train_seconds)
        _check_int("chunk_frames", self.chunk_frames, 1)


class FifthMethod(Method):
    params_class = FifthParams
    name = "fifth"
    module = "fifth_method.heavy"
    help = "a test-only method: the movie times the gain it learns (1)"
    label = "Fifth (test)"
    noun = "a fifth-method model"
    suffix = "fifth"
    input_help = "(t, y, x) TIFF stack"
    runtime_fields = ("device", "chunk_frames")
    identity_forward = True
    #: an extra input declared as data: the CLI's --offset and the Restore dock's picker
    cli_options = (Option("offset", "path", "an image (y, x) added to every restored frame",
                          layer=True, metavar="OFFSET.tif"),)

    def check_input(self, data, params, training=True):
        if np.ndim(data) != 3:
            raise InputError(f"the fifth method needs a (t, y, x) movie, got shape "
                             f"{np.shape(data)}")

    def open_options(self, options):
        from napari_neurorestore.core.io import read_tiff

        path = options.get("offset")
        return {"offset": read_tiff(path, lazy=False)[0] if path else None}

    def check_options(self, data, params, options):
        offset = options.get("offset")
        if offset is not None and np.shape(offset) != np.shape(data)[1:]:
            raise InputError(f"the offset {np.shape(offset)} is not one frame "
                             f"{np.shape(data)[1:]}")

    def grid(self, input_shape, params):
        return Grid(tuple(int(s) for s in input_shape))

    def to_input_grid(self, restored, input_shape, md, index=None):
        return same_grid(restored, input_shape, index)

    def predict(self, data, model, params, cancel=None, out=None, on_chunk="auto", **options):
        return self.impl().predict(data, model, cancel, out=out, on_chunk=on_chunk,
                                   chunk_frames=params.chunk_frames, **options)

    def memory_model(self, shape, p, itemsize, lazy, streaming, gpu):
        frame = F32 * int(np.prod(shape[1:]))
        return {"ram": {"train": frame, "output": 0 if streaming else shape[0] * frame,
                        "predict": p.chunk_frames * frame},
                "gpu": 0, "out_shape": tuple(shape), "work": int(np.prod(shape)),
                "unit_work": int(np.prod(shape[1:])), "unit": "frames", "train_steps": 1}

    def probe_inference(self, shape, p, device, timed):
        x = np.ones(shape[1:], np.float32)
        return timed(lambda n: [x * 1.0 for _ in range(n)], lambda n: n * x.size)


METHOD = FifthMethod()
