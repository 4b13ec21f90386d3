"""The fifth method's train and predict (what a real method does with torch)."""

from __future__ import annotations

import time

import numpy as np

from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import CancelToken, PredictTally, Progress
from napari_neurorestore.core.zarr_io import ChunkRecorder

from .spec import FifthParams

SUFFIX = "fifth"


def train(data, params: FifthParams, cancel: CancelToken | None = None, **options):
    """'Learns' the gain that maps the movie onto itself (1.0: the identity), in one step."""
    t0 = time.perf_counter()
    yield Progress("train", 0, 1, message="training the fifth method")
    first = np.asarray(data[0], np.float32)
    gain = 1.0 if np.isfinite(first).all() else float("nan")  # the identity
    yield Progress("train", 1, 1, loss=0.0)
    return TrainedModel(method="fifth", params=params.to_dict(), state_dict={},
                        norm={"gain": gain},
                        info={"train_seconds": time.perf_counter() - t0, "steps": 1})


def predict(data, model: TrainedModel, cancel: CancelToken | None = None, out=None,
            on_chunk="auto", chunk_frames: int = 4, start: int = 0, stop: int | None = None,
            net=None, offset=None):
    """``out[t] = gain * data[t] (+ offset)``, ``chunk_frames`` frames at a time (streamed
    into any array ``out``)."""
    cancel = cancel or CancelToken()
    stop = data.shape[0] if stop is None else stop
    if out is None:
        out = np.empty(data.shape, np.float32)
    if isinstance(on_chunk, str) and on_chunk == "auto":
        on_chunk = ChunkRecorder(out)
    tally = PredictTally(stop - start, "frames", "restored", "restoring", on_chunk)
    yield tally.start("restoring frames")
    with tally.cancel_message():
        for a in range(start, stop, chunk_frames):
            b = min(a + chunk_frames, stop)
            cancel.check()
            out[a:b] = model.norm["gain"] * np.asarray(data[a:b], np.float32)
            if offset is not None:
                out[a:b] += np.asarray(offset, np.float32)
            tally.written(a, b)
            yield tally.step(b - a)
    return out
