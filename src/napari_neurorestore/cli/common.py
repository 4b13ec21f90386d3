"""What every ``neurorestore`` subcommand shares: the progress bar, the exit codes, the
options of a run over files, and the error handling of :func:`guarded`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from ..core.progress import Cancelled, Progress

#: exit status: success; bad input or arguments (argparse's own); interrupted (128 + SIGINT)
EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
#: errors reported as ``neurorestore: error: ...`` with :data:`EXIT_ERROR`
USER_ERRORS = (ValueError, FileExistsError, FileNotFoundError, PermissionError, ImportError,
               OSError)


class ProgressBar:
    """A one-line text progress bar on stderr (carriage return updates; newline per stage)."""

    def __init__(self, stream=None, width: int = 30, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.width = width
        self.quiet = quiet
        self.stage = None
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        new_stage = p.stage != self.stage
        if new_stage and self.stage is not None:
            self.stream.write("\n")
        self.stage = p.stage
        if not new_stage and now - self.last < 0.2 and p.fraction < 1.0:
            return
        self.last = now
        fill = int(round(self.width * p.fraction))
        bar = "#" * fill + "-" * (self.width - fill)
        extra = []
        if p.loss is not None:
            extra.append(f"loss {p.loss:.4g}")
        if p.eta is not None:
            extra.append(f"{p.eta:5.0f} s left")
        line = f"\r{p.stage:>8} [{bar}] {100 * p.fraction:5.1f}% " + " ".join(extra)
        self.stream.write(line.ljust(78))
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.stage = None


def add_run_options(p: argparse.ArgumentParser, distributed: bool) -> None:
    """The options of every run over files (model files, overwrite, quiet, force) and, for
    the methods that distribute, the dask cluster."""
    if distributed:
        g = p.add_argument_group("dask cluster (needs the 'large' extra; output must be .zarr)")
        x = g.add_mutually_exclusive_group()
        x.add_argument("--workers", type=int, metavar="N",
                       help="run inference on a local dask cluster of N worker processes")
        x.add_argument("--dask-scheduler", metavar="ADDR",
                       help="run inference on a running dask cluster, e.g. tcp://host:8786 "
                            "(paths must be visible to the workers)")
    g = p.add_argument_group("models and files")
    g.add_argument("--save-model", metavar="M.pt", help="save the trained model here")
    g.add_argument("--model", metavar="M.pt", help="apply this saved model; skip training")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("--force", action="store_true",
                   help="run even if the memory estimate exceeds free RAM")


def guarded(func: Callable[[Any], int], args: Any) -> int:
    """Run a subcommand; turn a cancel, Ctrl-C or a user error into a message and an exit
    status."""
    try:
        return int(func(args) or 0)
    except Cancelled as e:
        print(str(e) or "cancelled", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as e:
        print(f"neurorestore: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("neurorestore: error: out of memory (a smaller --chunk-frames/--tile-size, or "
              "a machine with more RAM)", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # never a traceback: one line, the traceback on request
        import os

        if os.environ.get("NEURORESTORE_DEBUG"):
            raise
        print(f"neurorestore: error: {type(e).__name__}: {_one_line(e)} (unexpected; "
              f"NEURORESTORE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _one_line(e: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(e).split()) or type(e).__name__
