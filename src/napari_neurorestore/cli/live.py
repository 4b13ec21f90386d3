"""``neurorestore live DIR -o OUT.zarr --model M.pt``: restore TIFF files as an acquisition
program writes them into DIR (see core/live.py), and print frames/s and per-file latency."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .common import EXIT_ERROR, EXIT_INTERRUPTED

DESCRIPTION = """\
Watch DIR for TIFF files written by an acquisition program (e.g. ScanImage with "frames per
file") and denoise each new file's frames, in name order, as soon as the file is complete,
appending them to one zarr store along time. Files may appear by rename or grow in place.
The last window//2 frames of a file wait for the next file's first frames; at the end they are
finished with the mirror rule, so the store equals `neurorestore denoise --model M.pt
--causal-context --ensemble off` of the concatenated movie: the full long-context step needs
the 64 frames after each frame, so live mode applies the model's causal one (past frames and
the window's own future; a model saved without it runs without the step), and the ensemble
costs 8x the time, so live mode leaves it out; an offline run adds them. After the first
file it says how many frames/s it keeps up with at the frame size. Ends after
--idle-timeout seconds without a new file, or on Ctrl-C; the store is complete either way.
Skipped files and frames are reported.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("live", help="denoise TIFF files as they are acquired",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="DIR", help="folder the acquisition program writes into")
    p.add_argument("-o", "--output", required=True, metavar="OUT.zarr",
                   help="output zarr store (outside DIR)")
    p.add_argument("--model", required=True, metavar="M.pt", help="a saved denoising model")
    p.add_argument("--idle-timeout", type=float, default=30.0, metavar="S",
                   help="stop after S seconds without a new file (default 30)")
    p.add_argument("--settle", type=float, default=0.25, metavar="S",
                   help="a file without a next one is complete once its size and mtime are "
                        "unchanged for S seconds (default 0.25)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads (default: up to the machine's cores, each file "
                        "measuring whether more than one is faster; 1 pins one thread, as "
                        "spinning threads on a busy CPU are slower than one)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-file lines")
    p.set_defaults(func=run)
    return p


def _check(args: Any) -> None:
    from ..core.live_files import _inside
    from ..core.paths import check_output_path

    folder, out, model = Path(args.folder), Path(args.output), Path(args.model)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    if not model.is_file():
        raise FileNotFoundError(f"model file {model} does not exist")
    if out.suffix.lower() != ".zarr":
        raise ValueError(f"the output must be a .zarr store, got {out.name}")
    if _inside(out, folder):
        raise ValueError(f"the output {out} must not be inside the watched folder {folder}")
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be at least 1")
    if args.idle_timeout <= 0:
        raise ValueError("--idle-timeout must be positive")
    check_output_path(out, args.overwrite)


def run(args: Any) -> int:
    _check(args)
    from ..core.live import watch
    from ..core.models import load_model
    from ..core.progress import CancelToken

    model = load_model(args.model)
    cancel = CancelToken()
    interrupted = []

    def on_sigint(signum, frame):  # first Ctrl-C: finish the store; a second one: abort
        interrupted.append(True)
        cancel.cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        gen = watch(args.folder, args.output, model, idle_timeout=args.idle_timeout,
                    cancel=cancel, overwrite=args.overwrite, settle=args.settle,
                    device=args.device, threads=args.threads)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                res = stop.value
                break
            if not args.quiet and p.message:
                print(p.message, file=sys.stderr, flush=True)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, old)
    print(res.summary())
    for m in res.messages:
        print(f"live: {m}")
    if res.output is not None:
        print(f"wrote {res.output} ({res.frames_restored} frames)")
    if res.error:
        print(f"neurorestore: error: {res.error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_INTERRUPTED if interrupted else 0
