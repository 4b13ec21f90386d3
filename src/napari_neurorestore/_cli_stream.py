"""Streamed outputs of the sparse, upsample and isotropize commands (shared by their CLIs).

The output is ``OUT.zarr`` (chunked so that each inference chunk or tile writes whole
chunks, with a progress record) or a memory-mapped float32 (Big)TIFF; either is written
piece by piece, never held whole. An interruption (Ctrl-C) or a cancel leaves a readable
partial output and a message that says how far it got.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any


def is_zarr_output(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".zarr"


def check_target(args: Any, shape: tuple[int, ...]) -> None:
    """Every check of the output before any work (existing output, folder, zarr, disk)."""
    from .core.io import check_output_target

    check_output_target(args.output, tuple(int(s) for s in shape), args.overwrite)


def open_input(path: str) -> tuple[Any, str]:
    """The input, opened lazily (a TIFF through tifffile's zarr view or a memmap; a zarr
    store); read chunk by chunk or tile by tile by the methods."""
    from .core.io import open_array

    return open_array(path)


def drain_into(args: Any, gen: Generator, recorder: Any, bar: Any) -> Any:
    """Drain a predict generator writing into ``args.output``; on Ctrl-C or a cancel, say
    how much of the output was written (``recorder``) and re-raise."""
    from .core.progress import Cancelled, drain

    try:
        return drain(gen, bar)
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        zarr_out = is_zarr_output(args.output)
        print(f"interrupted: {recorder.describe()} were restored and written to {args.output}"
              + (" (its 'neurorestore_progress' attribute lists them; the rest reads as NaN); "
                 if zarr_out else "; ")
              + "run again with --overwrite to redo it", file=sys.stderr)
        raise


def close_output(out: Any) -> None:
    if hasattr(out, "flush"):
        out.flush()


def check_distributed(args: Any) -> None:
    """--workers / --dask-scheduler: a zarr output and the optional dependencies."""
    from .core.io import _require

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not is_zarr_output(args.output):
        raise ValueError(f"--workers/--dask-scheduler write zarr stores: use -o "
                         f"{Path(args.output).with_suffix('.zarr')}")
    if getattr(args, "two_stage", False):
        raise ValueError("--workers/--dask-scheduler need a one-stage model (not --two-stage)")
    _require("zarr")
    _require("distributed")


def run_distributed_upsample(args: Any, model: Any, tile: int, params: Any, bar: Any) -> None:
    """Upsampling on a dask cluster: the model (saved next to the output unless it is a
    file already) is loaded by every worker; the tiles are the tasks."""
    import os
    import tempfile

    from .core.distributed import UpsampleJob, upsample_file
    from .core.models import save_model
    from .core.progress import drain

    tmp = None
    if args.model:
        model_path = str(Path(args.model).resolve())
    elif args.save_model:
        model_path = str(Path(args.save_model).resolve())
    else:
        fd, tmp = tempfile.mkstemp(suffix=".pt", prefix=".neurorestore-model-",
                                   dir=Path(args.output).resolve().parent)
        os.close(fd)
        model_path = str(Path(save_model(model, tmp, overwrite=True)).resolve())
    job = UpsampleJob(str(Path(args.input).resolve()), str(Path(args.output).resolve()),
                      model_path, tile, ensemble=params.ensemble,
                      back_projection=params.back_projection)
    try:
        drain(upsample_file(job, workers=args.workers, scheduler=args.dask_scheduler,
                            device=params.device, overwrite=args.overwrite), bar)
    finally:
        bar.close()
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    where = args.dask_scheduler or f"{args.workers} local dask worker(s)"
    print(f"wrote {args.output} on {where} (tile {tile})")
