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
