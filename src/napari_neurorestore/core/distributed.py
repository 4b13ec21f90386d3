"""Scale-out of inference on dask.distributed, for every method (the ``large`` extra;
imported only when used).

A method's output splits into independent parts in the unit of its
:meth:`~.methods.base.Method.output_layout`: frames (denoise, sparse; a task is one time
chunk of the output store) or tiles (upsample's output tiles, isotropize's lateral blocks;
a task is one tile, one chunk column of the store). All the tasks of all the inputs of one
call are submitted together, so several recordings form one task graph that dask's
scheduler spreads over the workers. Each task opens its input lazily by path
(:func:`~napari_neurorestore.core.io.open_array`), computes its part with
:meth:`~.methods.base.Method.predict_part` (the model is loaded once per worker process and
cached by path) and writes it into its own chunks of the output zarr store, which the client
created beforehand. The client records finished parts in the store's progress attributes,
so a cancelled or failed run leaves a valid partial store that says how far it got.

Inputs, outputs and model files must be reachable under the same paths from every worker
(a shared file system, as on a cluster); a ``LocalCluster`` on one machine always is.

    >>> from napari_neurorestore.core.distributed import Job, distribute
    >>> from napari_neurorestore.core.methods import get
    >>> from napari_neurorestore.core.progress import drain
    >>> m = get("sparse")
    >>> drain(distribute(m, [Job("a.tif", "a.zarr", "m.pt")], m.params_class(), workers=2))
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import require as _require
from .io import open_array, open_output
from .paths import check_output_path
from .progress import Cancelled, CancelToken, Progress
from .zarr_io import ChunkRecorder

#: in each worker process: cached models and inputs (keyed by path, mtime and device)
_MODELS: dict[tuple, Any] = {}
_INPUTS: dict[tuple, Any] = {}
#: environment variable a worker reads for torch's thread count (default: torch's own)
THREADS_ENV = "NEURORESTORE_TORCH_THREADS"


@dataclass(frozen=True)
class Job:
    """One input to restore: input path, output ``*.zarr`` path and model path."""

    input: str
    output: str
    model: str


# ----------------------------------------------------------------------------- worker side
def _key(path: str) -> tuple[str, int]:
    p = os.path.abspath(path)
    return p, os.stat(p).st_mtime_ns


def _worker_model(method: Any, model_path: str, ndim: int, device: str) -> tuple[Any, Any]:
    """(TrainedModel, network) for this worker process, loaded once per model file."""
    key = (*_key(model_path), device, method.name, ndim)
    if key not in _MODELS:
        from .device import resolve_device
        from .models import load_model

        model = load_model(model_path)
        _MODELS[key] = (model, method.load_net(model, ndim, resolve_device(device)))
    return _MODELS[key]


def _worker_input(path: str) -> Any:
    key = _key(path)
    if key not in _INPUTS:
        _INPUTS.clear()  # hold one input open at a time (TIFF index, file handle)
        _INPUTS[key] = open_array(path)[0]
    return _INPUTS[key]


def run_part(name: str, job: Job, params: Any, a: int, b: int,
             torch_threads: int | None = None) -> tuple[int, int]:
    """A dask task: parts ``a:b`` (the unit of the method's output layout) of ``job.input``
    into the zarr store ``job.output``, which exists, chunked so that ``a:b`` is whole
    chunks. Returns ``(a, b)``."""
    import dask
    import torch

    from .methods import get
    from .zarr_io import output_array  # the store, or level "0" of an *.ome.zarr

    threads = int(os.environ.get(THREADS_ENV, 0)) or torch_threads
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    method = get(name)
    data = _worker_input(job.input)
    model, net = _worker_model(method, job.model, data.ndim, params.device)
    out = output_array(job.output)
    with dask.config.set(scheduler="synchronous"):  # a lazy view is read in this task
        method.predict_part(data, model, params, out, a, b, net)
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


@dataclass
class Prepared:
    """One job ready to run: its inference parameters, input shape, output store, the
    store's layout (unit, chunks) and its progress record."""

    job: Job
    params: Any
    shape: tuple[int, ...]
    out: Any
    layout: Any
    recorder: ChunkRecorder

    def parts(self) -> list[tuple[int, int]]:
        """The tasks' ranges: whole time chunks of frames, or one tile each."""
        total = self.recorder.total
        step = max(1, int(self.layout.chunks)) if self.layout.unit == "frames" else 1
        return [(a, min(total, a + step)) for a in range(0, total, step)]


def prepare_outputs(method: Any, jobs: list[Job], params: Any, overwrite: bool = False
                    ) -> list[Prepared]:
    """Check every input, model and output first, then create the output stores.

    ``params``: the run-time settings (one for all jobs, or one per job), merged with each
    job's model (:meth:`~.methods.base.Method.merge_params`).
    """
    from .models import load_model
    from .pixel_sizes import output_geometry  # the input's pixel sizes, on the output grid
    from .steps import provenance

    per_job = list(params) if isinstance(params, (list, tuple)) else [params] * len(jobs)
    outs = [str(Path(j.output)) for j in jobs]
    if len(set(outs)) != len(outs):
        raise ValueError("two inputs would write the same output store")
    checked = []
    for j, given in zip(jobs, per_job, strict=True):
        if Path(j.output).suffix.lower() != ".zarr":
            raise ValueError(f"distributed inference writes zarr stores: {j.output} must end "
                             f"in .zarr")
        check_output_path(j.output, overwrite)
        model = load_model(j.model)
        method.check_model(model, str(j.model))
        p = method.merge_params(model, given)
        data, axes = open_array(j.input)
        method.check_input(data, p, training=False)
        checked.append((j, p, tuple(data.shape), axes, model))
    prepared = []
    for j, p, shape, axes, model in checked:
        lay = method.output_layout(model, shape, p)
        grid = method.grid(shape, p)
        md = provenance(method, model, p, shape, {"source": str(j.input)})
        out = open_output(j.output, grid.shape, overwrite, chunks=lay.chunks,
                          chunk_shape=lay.chunk_shape, metadata=md,
                          axes=lay.axes or (axes if len(axes) == len(grid.shape) else None),
                          unit=lay.unit, total=lay.total,
                          **output_geometry(j.input, axes, len(shape), grid, j.output))
        prepared.append(Prepared(j, p, shape, out, lay,
                                 ChunkRecorder(out, lay.total, lay.unit, lay.extra)))
    return prepared


def distribute(method: Any, jobs: Sequence[Job], params: Any, workers: int | None = None,
               scheduler: str | None = None, overwrite: bool = False,
               cancel: CancelToken | None = None, poll: float = 0.2
               ) -> Generator[Progress, None, list[str]]:
    """Run ``method``'s inference of ``jobs`` as one dask task graph; yields Progress,
    returns the outputs.

    ``workers``: size of a local cluster (worker processes, one thread each); or
    ``scheduler``: the address of a running ``dask scheduler``. ``params``: see
    :func:`prepare_outputs`. No two tasks write the same zarr chunk. The result equals
    single-process inference to float32 round-off.
    """
    cancel = cancel or CancelToken()
    if not jobs:
        raise ValueError("no inputs")
    yield Progress("prepare", message="checking inputs and creating output stores")
    prepared = prepare_outputs(method, list(jobs), params, overwrite)
    unit = prepared[0].layout.unit
    total = sum(r.recorder.total for r in prepared)
    yield Progress("prepare", message="starting the dask cluster" if not scheduler
                   else f"connecting to {scheduler}")
    distributed = _require("distributed")
    done = 0
    with dask_client(workers, scheduler) as (client, threads):
        futures = {}
        for i, r in enumerate(prepared):
            for a, b in r.parts():
                f = client.submit(run_part, method.name, r.job, r.params, a, b, threads,
                                  pure=False,
                                  key=f"neurorestore-{method.name}-{i}-{a}-{time.time_ns()}")
                futures[f] = i
        t0 = time.perf_counter()
        yield Progress("predict", 0, total, message=f"{len(futures)} tasks submitted")
        try:
            for batch in _completed(distributed, list(futures), cancel, poll):
                for f in batch:
                    a, b = f.result()  # re-raises a worker's error here
                    prepared[futures[f]].recorder(a, b)
                    done += b - a
                el = time.perf_counter() - t0
                yield Progress("predict", done, total, eta=el / done * (total - done),
                               message=f"restoring: {done}/{total} {unit}")
        except (Cancelled, KeyboardInterrupt) as e:
            client.cancel(list(futures))
            where = "; ".join(f"{r.job.output}: {r.recorder.describe()}" for r in prepared)
            verb = "cancelled by the user" if isinstance(e, Cancelled) else "interrupted"
            raise Cancelled(f"{verb}: {done} of {total} {unit} were restored and written "
                            f"({where}); run again with --overwrite to redo them") from None
        except BaseException:  # a worker's error, or the generator being closed
            client.cancel(list(futures))
            raise
    return [str(r.job.output) for r in prepared]
