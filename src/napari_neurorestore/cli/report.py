"""``neurorestore report``: what a restoration removed, flattened or invented, as one
self-contained HTML file (and its figures as JSON), with the checks printed to stdout.

numpy, tifffile and matplotlib only (no torch, Qt or napari).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..core.trust.checks import transients_available

DESCRIPTION = """\
Compare a restored movie or volume with the raw data it came from: fit the raw data's
Poisson-Gaussian noise model, bring the restoration back onto the input's grid, and check
that the residual (raw - restored) looks like that noise: its variance, autocorrelation,
correlation with the signal, a map of where it has structure, the intensity scale and,
for movies, the fidelity of ROI transients. Warnings are not errors: the exit status is 0
whatever the checks say, 2 for bad input.

The method (and its parameters) come from --method or from the provenance this plugin
writes into its outputs; outputs of other tools on the input's grid work without either.
"""

EPILOG = """\
example:
  neurorestore report raw.tif raw_denoised.tif -o report.html --json figures.json
  neurorestore report vol.tif vol_up.tif --method upsample -o up.html
"""



def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "report", help="trust report: what a restoration removed, flattened or invented",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", help="the raw input (TIFF or zarr)")
    p.add_argument("restored", help="its restoration (TIFF or zarr; ours or another tool's)")
    p.add_argument("--rois", metavar="ROIS.tif", default=None,
                   help="label image (y, x) for the transient checks (default: the most "
                        "active 8x8 tiles)")
    p.add_argument("-o", "--output", required=True, metavar="report.html",
                   help="the HTML report to write")
    p.add_argument("--json", default=None, metavar="figures.json",
                   help="also write every figure, check and flag as JSON")
    from ..core.methods import names

    p.add_argument("--method", choices=names(), default=None,
                   help="the method that made RESTORED (default: from its provenance, else "
                        "an output on the input's grid)")
    p.add_argument("--offset", type=float, default=None,
                   help="camera dark level, if known (default: estimated)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="assess at most N frames of a movie (a block from its middle)")
    p.add_argument("--no-transients", dest="transients", action="store_false",
                   help="skip the ROI transient checks")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--incomplete", action="store_true",
                   help="assess RESTORED even if it is an incomplete result (a stopped run)")
    p.set_defaults(func=run_report)
    return p




def format_check(c: Any) -> str:
    """One line per check: PASS/WARN/N/A, name, value, threshold, message."""
    v = "–" if c.value is None else f"{c.value:.4g}"
    return f"{c.status.upper():>4}  {c.name:<26} {v:>10}  ({c.threshold})  {c.message}"


def run_report(args: argparse.Namespace) -> int:
    """Run the ``report`` subcommand; returns the exit status (0 ok, 2 bad input)."""
    from pathlib import Path

    from ..core import trust
    from ..core.errors import InputError
    from ..core.io import is_incomplete, read_array
    from ..core.methods import names
    from ..core.paths import check_distinct, check_output_path
    from ..core.report import read_provenance, write_report
    from ..core.trust.common import _same_grid

    prog = "neurorestore report"
    notes: list[str] = []
    try:
        check_distinct([("-o", args.output), ("--json", args.json)],
                       [("raw input", args.raw), ("restored input", args.restored),
                        ("--rois file", args.rois)])
        out = check_output_path(args.output, args.overwrite)
        jout = check_output_path(args.json, args.overwrite) if args.json else None
        why = is_incomplete(args.restored)
        if why is not None and not args.incomplete:
            raise InputError(f"{why}; a report on it would assess frames that were never "
                             f"restored (--incomplete assesses it anyway)")
        if why is not None:
            notes.append(f"{why}; assessed anyway (--incomplete)")
        if args.max_frames is not None and args.max_frames < 16:
            raise InputError("--max-frames must be at least 16")
        raw, _ = read_array(args.raw, lazy=True)
        restored, _ = read_array(args.restored, lazy=True)
        metadata = read_provenance(args.restored)
        method = args.method or (metadata.get("neurorestore") or {}).get("method")
        if _same_grid(method) and tuple(raw.shape) != tuple(restored.shape):
            others = [n for n in names() if not _same_grid(n)]
            raise InputError(
                f"{args.restored} has shape {tuple(restored.shape)} but {args.raw} has "
                f"{tuple(raw.shape)}: an output on another grid needs --method "
                f"({', '.join(others[:-1])} or {others[-1]})")
        rois = None
        if args.rois:
            rois = np.asarray(read_array(args.rois, lazy=False)[0])
            if rois.dtype.kind == "f":
                if not np.all(rois == np.round(rois)):
                    raise InputError(f"{args.rois} is not a label image (fractional values)")
                rois = rois.astype(np.int64)
            if rois.shape != tuple(raw.shape[-rois.ndim:]):
                raise InputError(f"{args.rois} has shape {rois.shape}; the frames of "
                                 f"{args.raw} are {tuple(raw.shape[-2:])}")
        transients = bool(args.transients)
        if transients and not transients_available():
            transients = False
            notes.append("transient checks skipped (core.traces.transients is not installed)")
        kw: dict[str, Any] = {}
        if args.max_frames is not None:
            kw["max_voxels"] = int(args.max_frames) * int(np.prod(raw.shape[1:]))
        report = trust.assess(raw, restored, metadata, method=args.method, rois=rois,
                              offset=args.offset, transients=transients, **kw)
        write_report(report, out, raw_name=Path(args.raw).name,
                     restored_name=Path(args.restored).name, overwrite=args.overwrite,
                     json_path=jout)
    except (InputError, ValueError, FileExistsError, FileNotFoundError, PermissionError,
            MemoryError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    for n in notes:
        print(f"{prog}: note: {n}", file=sys.stderr)
    print(report.noise.summary())
    if report.frames:
        print(f"frames {report.frames[0]}-{report.frames[1] - 1} assessed; "
              f"method: {report.method or 'unknown (same grid)'}")
    for c in report.checks:
        print(format_check(c))
    print("no warnings" if not report.flags else f"{len(report.flags)} warning(s): "
           + ", ".join(report.flags))
    print(f"report written to {out}" + (f"; figures to {jout}" if jout else ""))
    return 0

