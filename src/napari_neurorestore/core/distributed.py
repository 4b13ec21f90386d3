"""Scale-out of inference on dask.distributed (the ``large`` extra; imported only when used).

Inference is split into one task per time chunk of each input; all the tasks of all the
inputs of one call are submitted together, so several recordings form one task graph that
dask's scheduler spreads over the workers. Each task opens its input lazily by path
(:func:`~napari_neurorestore.core.io.open_array`), restores frames ``a:b`` with the model
(loaded once per worker process and cached by path) and writes them into its own, disjoint
time chunks of the output zarr store, which the client created beforehand with the same
chunking. The client records finished chunks in the store's progress attributes, so a
cancelled or failed run leaves a valid partial store that says how far it got.

Inputs, outputs and model files must be reachable under the same paths from every worker
(a shared file system, as on a cluster); a ``LocalCluster`` on one machine always is.

    >>> from napari_neurorestore.core.distributed import DenoiseJob, denoise_files
    >>> from napari_neurorestore.core.progress import drain
    >>> drain(denoise_files([DenoiseJob("a.tif", "a.zarr", "m.pt")], workers=2))
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .io import ChunkRecorder, _require, check_output_path, open_array, open_output
from .progress import Cancelled, CancelToken, Progress

#: in each worker process: cached models and inputs (keyed by path, mtime and device)
_MODELS: dict[tuple, Any] = {}
_INPUTS: dict[tuple, Any] = {}
#: environment variable a worker reads for torch's thread count (default: torch's own)
THREADS_ENV = "NEURORESTORE_TORCH_THREADS"


@dataclass(frozen=True)
class DenoiseJob:
    """One recording to restore: input path, output ``*.zarr`` path and model path."""

    input: str
    output: str
    model: str


# ----------------------------------------------------------------------------- worker side
def _key(path: str) -> tuple[str, int]:
    p = os.path.abspath(path)
    return p, os.stat(p).st_mtime_ns


def _worker_model(model_path: str, device: str) -> tuple[Any, Any]:
    """(TrainedModel, network) for this worker process, loaded once per model file."""
    key = (*_key(model_path), device)
    if key not in _MODELS:
        from .device import resolve_device
        from .methods import denoise
        from .models import load_model

        model = load_model(model_path)
        _MODELS[key] = (model, denoise.load_net(model, resolve_device(device)))
    return _MODELS[key]


def _worker_input(path: str) -> Any:
    key = _key(path)
    if key not in _INPUTS:
        _INPUTS.clear()  # hold one input open at a time (TIFF index, file handle)
        _INPUTS[key] = open_array(path)[0]
    return _INPUTS[key]


def denoise_chunk(input_path: str, output_path: str, model_path: str, a: int, b: int,
                  device: str = "cpu", batch_size: int | None = None,
                  torch_threads: int | None = None) -> tuple[int, int]:
    """A dask task: restore frames ``a:b`` of ``input_path`` into the zarr store
    ``output_path`` (which exists, chunked along time so that ``a:b`` is whole chunks).
    Returns ``(a, b)``."""
    import dask
    import torch

    from .methods import denoise
    from .progress import drain
    from .zarr_io import output_array  # the store, or level "0" of an *.ome.zarr

    threads = int(os.environ.get(THREADS_ENV, 0)) or torch_threads
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    model, net = _worker_model(model_path, device)
    data = _worker_input(input_path)
    out = output_array(output_path)
    with dask.config.set(scheduler="synchronous"):  # a lazy view is read in this task
        drain(denoise.predict(data, model, out=out, chunk_frames=b - a, batch_size=batch_size,
                              start=a, stop=b, on_chunk=None, net=net))
    return a, b


# ----------------------------------------------------------------------------- client side
@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None
                ) -> Iterator[tuple[Any, int | None]]:
    """A ``distributed.Client`` for ``scheduler`` (an address such as
    ``tcp://host:8786``), or for a new ``LocalCluster`` of ``workers`` single-threaded
    worker processes (closed on exit). Yields (client, torch threads per local worker)."""
    distributed = _require("distributed")
    if scheduler:
        client = distributed.Client(scheduler, timeout="30s")
        try:
            yield client, None
        finally:
            client.close()
        return
    n = int(workers or 1)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {n}")
    threads = max(1, (os.cpu_count() or 1) // n)
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None,
                                       env={THREADS_ENV: str(threads)})
    try:
        client = distributed.Client(cluster)
        try:
            yield client, threads
        finally:
            client.close()
    finally:
        cluster.close()


def _completed(distributed: Any, futures: list, cancel: CancelToken, poll: float
               ) -> Iterator[list]:
    """Batches of finished futures, until all are finished; a cancel raises
    :class:`Cancelled`."""
    pending = distributed.as_completed(futures)
    while not pending.is_empty():
        if cancel.cancelled:
            raise Cancelled("cancelled by the user")
        batch = pending.next_batch(block=False)
        if not batch:
            time.sleep(poll)
            continue
        yield batch


def prepare_outputs(jobs: list[DenoiseJob], chunk_frames: int, overwrite: bool = False
                    ) -> list[tuple[DenoiseJob, tuple[int, ...], Any]]:
    """Check every input, model and output first, then create the output stores.

    Returns (job, input shape, output zarr array) per job.
    """
    from .engine import load_checked_model
    from .methods import get
    from .methods.base import metadata_for

    method = get("denoise")
    outs = [str(Path(j.output)) for j in jobs]
    if len(set(outs)) != len(outs):
        raise ValueError("two inputs would write the same output store")
    checked = []
    for j in jobs:
        if Path(j.output).suffix.lower() != ".zarr":
            raise ValueError(f"distributed inference writes zarr stores: {j.output} must end "
                             f"in .zarr")
        check_output_path(j.output, overwrite)
        model = load_checked_model(method, j.model)
        data, axes = open_array(j.input)
        method.check_input(data, method.params_class.from_dict(model.params))
        checked.append((j, tuple(data.shape), axes, model))
    prepared = []
    for j, shape, axes, model in checked:
        out = open_output(j.output, shape, overwrite, chunks=chunk_frames,
                          metadata=metadata_for(model, {"source": str(j.input)}),
                          axes=axes if len(axes) == len(shape) else None)
        prepared.append((j, shape, out))
    return prepared


def denoise_files(jobs: list[DenoiseJob], workers: int | None = None,
                  scheduler: str | None = None, chunk_frames: int = 64, batch_size: int | None = None,
                  device: str = "cpu", overwrite: bool = False,
                  cancel: CancelToken | None = None, poll: float = 0.2
                  ) -> Generator[Progress, None, list[str]]:
    """Restore several recordings as one dask task graph; yields Progress, returns outputs.

    ``workers``: size of a local cluster (worker processes, one thread each); or
    ``scheduler``: the address of a running ``dask scheduler``. Tasks are whole time chunks
    of ``chunk_frames`` frames (the output stores' chunking), so no two tasks write the same
    zarr chunk. The result equals single-process inference to float32 round-off.
    """
    cancel = cancel or CancelToken()
    if not jobs:
        raise ValueError("no inputs")
    yield Progress("prepare", message="checking inputs and creating output stores")
    prepared = prepare_outputs(jobs, chunk_frames, overwrite)
    recorders = [ChunkRecorder(out) for _, _, out in prepared]
    total = sum(shape[0] for _, shape, _ in prepared)
    yield Progress("prepare", message="starting the dask cluster" if not scheduler
                   else f"connecting to {scheduler}")
    distributed = _require("distributed")
    done = 0
    with dask_client(workers, scheduler) as (client, threads):
        futures = {}
        for i, (j, shape, _) in enumerate(prepared):
            for a in range(0, shape[0], chunk_frames):
                b = min(shape[0], a + chunk_frames)
                f = client.submit(denoise_chunk, str(j.input), str(j.output), str(j.model),
                                  a, b, device, batch_size, threads, pure=False,
                                  key=f"neurorestore-denoise-{i}-{a}-{time.time_ns()}")
                futures[f] = i
        t0 = time.perf_counter()
        yield Progress("predict", 0, total, message=f"{len(futures)} chunk tasks submitted")
        try:
            for batch in _completed(distributed, list(futures), cancel, poll):
                for f in batch:
                    a, b = f.result()  # re-raises a worker's error here
                    recorders[futures[f]](a, b)
                    done += b - a
                el = time.perf_counter() - t0
                yield Progress("predict", done, total, eta=el / done * (total - done),
                               message=f"restoring: {done}/{total} frames")
        except (Cancelled, KeyboardInterrupt) as e:
            client.cancel(list(futures))
            where = "; ".join(f"{j.output}: {r.describe()}"
                              for (j, _, _), r in zip(prepared, recorders, strict=True))
            verb = "cancelled by the user" if isinstance(e, Cancelled) else "interrupted"
            raise Cancelled(f"{verb}: {done} of {total} frames were restored and written "
                            f"({where}); run again with --overwrite to redo them") from None
        except BaseException:  # a worker's error, or the generator being closed
            client.cancel(list(futures))
            raise
    return [str(j.output) for j, _, _ in prepared]


# ----------------------------------------------------------------------------- upsampling
@dataclass(frozen=True)
class UpsampleJob:
    """One volume to upsample: input path, output ``*.zarr`` path, model path and the
    inference settings (tile side in input pixels; None for the model's overrides)."""

    input: str
    output: str
    model: str
    tile_size: int
    ensemble: bool | None = None
    back_projection: bool | None = None


def _worker_upsample_net(model_path: str, ndim: int, device: str) -> tuple[Any, Any]:
    key = (*_key(model_path), device, "upsample", ndim)
    if key not in _MODELS:
        from .device import resolve_device
        from .methods import upsample
        from .models import load_model

        model = load_model(model_path)
        _MODELS[key] = (model, upsample.load_net(model, ndim, resolve_device(device)))
    return _MODELS[key]


def upsample_tiles(job: UpsampleJob, tiles: list[int], device: str = "cpu",
                   torch_threads: int | None = None) -> list[int]:
    """A dask task: upsample tiles ``tiles`` of ``job.input`` into the zarr store
    ``job.output`` (which exists, one chunk per tile). Returns ``tiles``."""
    import dask
    import torch

    from .methods import upsample
    from .zarr_io import output_array

    threads = int(os.environ.get(THREADS_ENV, 0)) or torch_threads
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    data = _worker_input(job.input)
    model, net = _worker_upsample_net(job.model, data.ndim, device)
    out = output_array(job.output)
    with dask.config.set(scheduler="synchronous"):
        return upsample.predict_tiles(data, model, out, tiles, job.tile_size, net=net,
                                      ensemble=job.ensemble,
                                      back_projection=job.back_projection)


def upsample_file(job: UpsampleJob, workers: int | None = None, scheduler: str | None = None,
                  device: str = "cpu", overwrite: bool = False, tiles_per_task: int = 1,
                  cancel: CancelToken | None = None, poll: float = 0.2
                  ) -> Generator[Progress, None, str]:
    """Upsample one volume with its tiles as dask tasks; yields Progress, returns the output.

    Each task computes ``tiles_per_task`` tiles and writes them into their own chunks of
    the output store (one chunk per tile), so no two tasks write the same chunk; the client
    records finished tiles in the store's progress attribute. The result equals
    single-process inference to float32 round-off. One-stage models only.
    """
    from .engine import load_checked_model
    from .methods import get, upsample
    from .methods.base import metadata_for

    cancel = cancel or CancelToken()
    yield Progress("prepare", message="checking the input and creating the output store")
    if Path(job.output).suffix.lower() != ".zarr":
        raise ValueError(f"distributed inference writes zarr stores: {job.output} must end "
                         f"in .zarr")
    check_output_path(job.output, overwrite)
    method = get("upsample")
    model = load_checked_model(method, job.model)
    params = method.params_class.from_dict(model.params)
    if params.two_stage and params.factor == 4:
        raise ValueError("distributed upsampling needs a one-stage model (not --two-stage)")
    data, _ = open_array(job.input)
    factors = upsample.check_volume(data, params, training=False)
    shape = tuple(data.shape)
    tiles = upsample.output_tiles(model, shape, job.tile_size)
    out = open_output(job.output, upsample.output_shape(shape, factors), overwrite,
                      chunk_shape=upsample.output_chunks(model, shape, job.tile_size),
                      metadata=metadata_for(model, {"factors": list(factors),
                                                    "source": str(job.input)}),
                      axes="ZYX" if len(shape) == 3 else "YX", unit="tiles",
                      total=tiles["total"])
    recorder = ChunkRecorder(out, tiles["total"], "tiles", tiles["extra"])
    total = tiles["total"]
    yield Progress("prepare", message="starting the dask cluster" if not scheduler
                   else f"connecting to {scheduler}")
    distributed = _require("distributed")
    done = 0
    with dask_client(workers, scheduler) as (client, threads):
        futures = []
        for a in range(0, total, max(1, int(tiles_per_task))):
            ids = list(range(a, min(total, a + max(1, int(tiles_per_task)))))
            futures.append(client.submit(upsample_tiles, job, ids, device, threads,
                                         pure=False,
                                         key=f"neurorestore-upsample-{a}-{time.time_ns()}"))
        t0 = time.perf_counter()
        yield Progress("predict", 0, total, message=f"{len(futures)} tile tasks submitted")
        try:
            for batch in _completed(distributed, futures, cancel, poll):
                for f in batch:
                    for i in f.result():  # re-raises a worker's error here
                        recorder(i, i + 1)
                        done += 1
                el = time.perf_counter() - t0
                yield Progress("predict", done, total, eta=el / done * (total - done),
                               message=f"upsampling: {done}/{total} tiles")
        except (Cancelled, KeyboardInterrupt) as e:
            client.cancel(futures)
            verb = "cancelled by the user" if isinstance(e, Cancelled) else "interrupted"
            raise Cancelled(f"{verb}: {done} of {total} tiles were upsampled and written to "
                            f"{job.output}; run again with --overwrite to redo them") from None
        except BaseException:
            client.cancel(futures)
            raise
    return str(job.output)
