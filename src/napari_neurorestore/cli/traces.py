"""``neurorestore traces``: ROI ΔF/F traces of a movie (and restored versions of it) from a
label image, written as CSV, with the fidelity table printed to stdout.

numpy and tifffile only (no torch, Qt or napari).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

DESCRIPTION = """\
ROI fluorescence traces and ΔF/F of MOVIE (t, y, x) or (t, z, y, x) for every ROI of a label
image (0 = background), and of each --compare movie (restored versions with the same number
of frames). Writes the traces as CSV (frame, time, then <layer>:roi<id>:F and :dFF columns)
and prints, per ROI, the SNR in dB of each movie and the Pearson r and NRMSE of each compare
movie's ΔF/F against MOVIE's; then the transient fidelity: events detected on MOVIE's ΔF/F
(lightly smoothed), each compare movie's peak ratio (median over events of its peak over
MOVIE's) and onset delay in frames (+ = it lags), with a warning when the peaks drop below
--min-peak-ratio ("flattened") or shift by more than --max-delay frames ("shifted").
"""

EPILOG = """\
F0 specs: percentile:20 (20th percentile of the trace), sliding:20:30s (20th percentile over a
sliding 30 s window; sliding:20:900 for 900 frames), first:50 (mean of the first 50 frames),
fixed:1200 (F0 = 1200).

example:
  neurorestore traces raw.tif --rois rois.tif --compare restored.tif --fps 30 -o traces.csv
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``traces`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "traces",
        help="ROI ΔF/F traces and fidelity figures from a label image",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("movie", help="reference movie TIFF, (t, y, x) or (t, z, y, x)")
    p.add_argument("--rois", required=True, metavar="ROIS",
                   help="label image TIFF ((y, x), or (z, y, x) for a volume movie; 0 = "
                        "background), or the ROIs of suite2p (stat.npy), CaImAn (.hdf5), NWB "
                        "(.nwb, a PlaneSegmentation) or Fiji/ImageJ (RoiSet.zip, .roi)")
    p.add_argument("--all-rois", action="store_true",
                   help="with suite2p's stat.npy: also the ROIs that iscell.npy says are not "
                        "cells; with CaImAn: also the rejected components")
    p.add_argument("--compare", nargs="+", action="extend", default=[], metavar="OTHER.tif",
                   help="movies to compare with the reference (same number of frames)")
    p.add_argument("--f0", default="percentile:20", metavar="SPEC",
                   help="how F0 is computed (default: percentile:20; see below)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (time column in seconds)")
    p.add_argument("--neuropil", type=float, default=None, metavar="COEF",
                   help="subtract COEF x the mean of an annulus around each ROI (e.g. 0.7)")
    p.add_argument("--annulus", type=float, nargs=2, default=None, metavar=("INNER", "OUTER"),
                   help="annulus radii in pixels from the ROI's edge (default: 2 8)")
    p.add_argument("--offset", type=float, default=0.0,
                   help="camera dark level subtracted from all intensities (default 0)")
    p.add_argument("--plane", type=int, default=None,
                   help="z plane of a 2D label image on a (t, z, y, x) movie")
    p.add_argument("-o", "--output", required=True, metavar="traces.csv",
                   help="traces CSV to write; traces.nwb: NWB (F and ΔF/F of each movie as "
                        "RoiResponseSeries; a copy of the --rois NWB file with them added, "
                        "else a new file with the ROIs' masks; needs pynwb)")
    p.add_argument("--fidelity", default=None, metavar="fidelity.csv",
                   help="also write the fidelity table as CSV")
    p.add_argument("--min-peak-ratio", type=float, default=0.8, metavar="R",
                   help="warn when restored peaks are below R x the reference's (default 0.8)")
    p.add_argument("--max-delay", type=float, default=1.0, metavar="FRAMES",
                   help="warn when restored transients shift by more than this (default 1)")
    p.add_argument("--event-threshold", type=float, default=4.0, metavar="SD",
                   help="events: rises of more than SD robust noise SDs (default 4)")
    p.add_argument("--tidy", action="store_true",
                   help="write the traces in long form (one row per layer, ROI and frame)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run_traces)
    return p


def _time_first(data: Any, axes: str) -> Any:
    axes = (axes or "").upper()
    if "T" in axes and axes.index("T") != 0 and len(axes) == data.ndim:
        data = np.moveaxis(data, axes.index("T"), 0)
    return data


def run_traces(args: argparse.Namespace) -> int:
    """Run the ``traces`` subcommand; returns the exit status (0 ok, 2 bad input)."""
    from ..core import traces as tr
    from ..core.errors import InputError
    from ..core.io import read_array, read_tiff
    from ..core.paths import check_distinct, check_output_path
    from ..core.traces.roi_files import read_roi_file, roi_file_format
    from ..core.traces.tables import format_transients

    prog = "neurorestore traces"
    try:
        check_distinct([("-o", args.output), ("--fidelity", args.fidelity)],
                       [("movie", args.movie), ("--rois file", args.rois)]
                       + [("--compare movie", c) for c in args.compare])
        out = check_output_path(args.output, args.overwrite)
        fid_out = check_output_path(args.fidelity, args.overwrite) if args.fidelity else None
        if not args.min_peak_ratio > 0:
            raise ValueError(f"--min-peak-ratio must be > 0, got {args.min_peak_ratio}")
        if not args.max_delay >= 0:
            raise ValueError(f"--max-delay must be >= 0 frames, got {args.max_delay}")
        if not args.event_threshold > 0:
            raise ValueError(f"--event-threshold must be > 0, got {args.event_threshold}")
        fields = tr.parse_f0(args.f0)
        if args.fps is not None:
            fields["fps"] = args.fps
        if args.neuropil is not None:
            fields["neuropil"] = True
            fields["neuropil_coef"] = args.neuropil
        if args.annulus is not None:
            fields["neuropil_inner"], fields["neuropil_outer"] = args.annulus
        fields["offset"] = args.offset
        params = tr.TraceParams(**fields)

        movie, axes = read_array(args.movie, lazy=True)
        movie = _time_first(movie, axes)
        roi_notes: list[str] = []
        if roi_file_format(args.rois) is not None:
            rf = read_roi_file(args.rois, all_rois=args.all_rois)
            labels, roi_notes = rf.for_frame(movie.shape[-2:]), rf.messages
        else:
            labels, _ = read_tiff(args.rois, lazy=False)
            labels = np.asarray(labels)
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise InputError(f"{args.rois} is not a label image (it holds fractional values)")
            labels = labels.astype(np.int64)
        spatial = tuple(movie.shape[1:]) if movie.ndim >= 3 else None
        if spatial is None:
            tr.check_trace_movie(movie, args.movie)
        rois = tr.rois_from_labels(labels, spatial, plane=args.plane)
        if not rois:
            raise InputError(f"{args.rois} holds no ROIs (all pixels are 0)")
        compare, names = [], [_stem(args.movie)]
        for path in args.compare:
            data, ax = read_array(path, lazy=True)
            compare.append(_time_first(data, ax))
            name = _stem(path)
            while name in names:
                name += "'"
            names.append(name)
        result = tr.compute_traces(movie, rois, compare, params=params, names=names)
        nan_notes = _nan_layers(result)
        if out.suffix.lower() == ".nwb":
            from ..core.traces.nwb_out import write_traces_nwb

            nwb_src = args.rois if roi_file_format(args.rois) == "nwb" else None
            write_traces_nwb(out, result, labels=labels, source=nwb_src)
        else:
            tr.write_traces_csv(out, result, tidy=args.tidy)
        rows = result.fidelity(min_peak_ratio=args.min_peak_ratio, max_delay=args.max_delay,
                               threshold_sd=args.event_threshold)
        if fid_out is not None:
            tr.write_fidelity_csv(fid_out, rows)
    except (InputError, ValueError, FileExistsError, FileNotFoundError, PermissionError,
            ImportError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    for m in roi_notes + result.messages:
        print(f"{prog}: note: {m}", file=sys.stderr)
    for m in nan_notes:
        print(f"{prog}: warning: {m}", file=sys.stderr)
    n_frames = result.n_frames
    print(f"{len(result.roi_ids)} ROIs, {n_frames} frames, {len(result.layers)} movie(s); "
          f"F0: {args.f0}" + (f", neuropil x{params.neuropil_coef}" if params.neuropil else ""))
    print(tr.format_fidelity(rows))
    print()
    print("transient fidelity (events on the reference; peak ratio and delay of each compare "
          "movie, in frames, + = it lags):")
    print(format_transients(rows))
    flagged = [r for r in rows if r.get("flags")]
    n_cmp = sum(r["role"] != "reference" for r in rows)
    if flagged:
        print(f"⚠ {len(flagged)} of {n_cmp} ROI/movie pairs flagged: " + "; ".join(
            f"ROI {r['roi']} {r['layer']}: {', '.join(r['flags'])}" for r in flagged))
    print(f"traces written to {out}" + (f"; fidelity table to {fid_out}" if fid_out else ""))
    return 0


def _stem(path: str) -> str:
    from pathlib import Path

    name = Path(path).name
    for ext in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _nan_layers(result: Any) -> list[str]:
    """Warnings for movies whose traces hold NaN (NaN pixels in an ROI make its ΔF/F NaN:
    e.g. an incomplete restoration, whose unwritten frames read as NaN)."""
    notes = []
    for layer in getattr(result, "layers", []):
        f = np.asarray(layer.f, dtype=float)
        if f.size and np.isnan(f).any():
            rois = int(np.isnan(f).any(axis=-1).sum())
            notes.append(f"{layer.name} has NaN values in {rois} ROI trace(s) (NaN pixels, "
                         f"e.g. an incomplete restoration): their ΔF/F is NaN")
    return notes
