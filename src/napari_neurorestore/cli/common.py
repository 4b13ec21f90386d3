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
    """A text progress bar on stderr.

    On a terminal: one line, updated in place with carriage returns (a newline per stage).
    Elsewhere (a file, a pipe, a cluster job's log) it never writes a carriage return: one
    line per ``step`` of progress (5 %) or per ``every`` seconds, whichever comes first,
    and one at each stage's start and end, so that logs stay readable.
    """

    def __init__(self, stream=None, width: int = 30, quiet: bool = False,
                 tty: bool | None = None, step: float = 0.05, every: float = 10.0):
        self.stream = stream or sys.stderr
        self.width = width
        self.quiet = quiet
        if tty is None:
            try:
                tty = bool(self.stream.isatty())
            except (AttributeError, ValueError):  # no isatty, or a closed stream
                tty = False
        self.tty = tty
        self.step, self.every = step, every
        self.stage = None
        self.last = 0.0
        self.last_fraction = 0.0

    def _line(self, p: Progress) -> str:
        fill = int(round(self.width * min(max(p.fraction, 0.0), 1.0)))
        bar = "#" * fill + "-" * (self.width - fill)
        extra = []
        if p.loss is not None:
            extra.append(f"loss {p.loss:.4g}")
        if p.eta is not None:
            extra.append(f"{p.eta:5.0f} s left")
        return f"{p.stage:>8} [{bar}] {100 * p.fraction:5.1f}% " + " ".join(extra)

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        new_stage = p.stage != self.stage
        if not self.tty:
            self._log(p, now, new_stage)
            return
        if new_stage and self.stage is not None:
            self.stream.write("\n")
        self.stage = p.stage
        if not new_stage and now - self.last < 0.2 and p.fraction < 1.0:
            return
        self.last = now
        self.stream.write(("\r" + self._line(p)).ljust(78))
        self.stream.flush()

    def _log(self, p: Progress, now: float, new_stage: bool) -> None:
        """Not a terminal: whole lines, one per ``step`` of progress or ``every`` seconds."""
        done = p.fraction >= 1.0
        if not new_stage:
            if self.last_fraction >= 1.0:
                return  # this stage's last line is written
            if not (done or p.fraction >= self.last_fraction + self.step
                    or now - self.last >= self.every):
                return
        self.stage, self.last, self.last_fraction = p.stage, now, p.fraction
        self.stream.write(self._line(p).rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self.stage is not None:
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()
            self.stage = None


class CtrlCStopsTraining:
    """Progress hook and SIGINT handler of a run: a first Ctrl-C while training ends
    training after the current step and keeps the model learned so far (inference and
    ``--save-model`` go on with it); another Ctrl-C, or one outside training, interrupts as
    usual. A context manager (the handler is installed only in the main thread)."""

    def __init__(self, progress: Callable[[Progress], None]) -> None:
        from ..core.progress import CancelToken

        self.token = CancelToken()
        self.progress = progress
        self.stage: str | None = None
        self._old: Any = None

    def __call__(self, p: Progress) -> None:
        self.stage = p.stage
        self.progress(p)

    def close(self) -> None:
        if hasattr(self.progress, "close"):
            self.progress.close()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.stage == "train" and not self.token.training_stopped:
            self.token.stop_training()
            print("\nCtrl-C: training stops after this step and the model learned so far is "
                  "kept (press Ctrl-C again to abort)", file=sys.stderr, flush=True)
            return
        raise KeyboardInterrupt

    def __enter__(self) -> CtrlCStopsTraining:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


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
    g.add_argument("--dtype", choices=("float32", "uint16", "int16"), default=None,
                   help="the output's type (default float32; int16 for a suite2p folder): "
                        "uint16/int16 keep the input's units, rounded to nearest and clipped "
                        "to the type's range (the count of clipped values goes into the "
                        "output's metadata)")
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
        return _interrupted()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return _interrupted()
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


def _interrupted() -> int:
    """The exit status of an interrupted run. Reads of a lazily opened input that the
    interrupt abandoned (zarr's asyncio tasks) are left on purpose: asyncio's "Task was
    destroyed but it is pending!" at exit would bury the message above in dozens of lines."""
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return EXIT_INTERRUPTED


def _one_line(e: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(e).split()) or type(e).__name__
