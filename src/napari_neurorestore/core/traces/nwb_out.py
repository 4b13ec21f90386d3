"""Traces out to NWB (``neurorestore traces ... -o traces.nwb``): F and ΔF/F of every movie
(the raw reference and each restored one) as ``RoiResponseSeries`` (pynwb; the ``rois``
extra), (time, ROI) arrays in a processing module ``neurorestore``: F in a
``Fluorescence``, ΔF/F in a ``DfOverF``, one series per movie named after it.

The series' ROIs are the rows of a ``PlaneSegmentation``:

* ROIs read from an NWB file (``--rois session.nwb``): that file's segmentation (the one
  the ROIs came from). The input is never written: the output is a copy of it
  (pynwb's export) with the traces added, so each series refers to the segmentation's own
  rows;
* otherwise a new file with a new ``PlaneSegmentation`` built from the label masks (one
  binary image mask per ROI, in the order of the traces), on a new imaging plane.

The rate is ``--fps`` (without it, 1 "frame" per second and the series' comments say so).
"""

from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .roi_files import _need

MODULE = "neurorestore"


def _series_name(name: str, taken: set[str]) -> str:
    out = str(name).replace("/", "_").replace(":", "_") or "movie"
    while out in taken:
        out += "_"
    taken.add(out)
    return out


def _add_traces(nwb: Any, ps: Any, result: Any, rows: list[int]) -> None:
    """The processing module with F and ΔF/F of every layer on ``rows`` of ``ps``."""
    from pynwb.ophys import DfOverF, Fluorescence, RoiResponseSeries

    if MODULE in nwb.processing:
        raise InputError(f"the NWB file already holds a processing module {MODULE!r}")
    mod = nwb.create_processing_module(MODULE, "ROI traces of the raw and restored movies "
                                               "(napari-neurorestore)")
    fl, dff = Fluorescence(name="Fluorescence"), DfOverF(name="DfOverF")
    fps = result.params.fps
    comments = "" if fps else "no frame rate given (--fps): rate 1.0 means 1 frame"
    names: set[str] = set()
    for lt in result.layers:
        name = _series_name(lt.name, names)
        what = "the raw (reference) movie" if lt.role == "reference" else "a restored movie"
        for container, data, unit, desc in (
                (fl, lt.f, "input intensity units", "mean F in each ROI"),
                (dff, lt.dff, "n.a.", f"ΔF/F (F0: {result.params.f0_mode})")):
            region = ps.create_roi_table_region(description=f"the ROIs of {name}",
                                                region=list(rows))
            container.add_roi_response_series(RoiResponseSeries(
                name=name, data=np.asarray(data, np.float64).T, rois=region, unit=unit,
                rate=float(fps or 1.0), description=f"{desc} of {what} {lt.name!r}",
                comments=comments))
    mod.add(fl)
    mod.add(dff)


def _new_file(labels: np.ndarray, roi_ids: list[int]) -> tuple[Any, Any]:
    """A new NWBFile with a PlaneSegmentation of one image mask per ROI (in order)."""
    from pynwb import NWBFile
    from pynwb.ophys import ImageSegmentation, OpticalChannel

    if labels.ndim != 2:
        raise InputError(f"NWB output takes 2D ROIs (a (y, x) label image); these are "
                         f"{labels.ndim}D: write -o traces.csv")
    nwb = NWBFile(session_description="ROI traces (napari-neurorestore)",
                  identifier=str(uuid.uuid4()),
                  session_start_time=datetime.datetime.now(datetime.timezone.utc))
    dev = nwb.create_device(name="microscope", description="unknown")
    plane = nwb.create_imaging_plane(
        name="plane", optical_channel=OpticalChannel(name="channel", description="unknown",
                                                     emission_lambda=float("nan")),
        description="the movie's plane", device=dev, excitation_lambda=float("nan"),
        indicator="unknown", location="unknown")
    mod = nwb.create_processing_module("ophys", "ROIs")
    seg = ImageSegmentation(name="ImageSegmentation")
    mod.add(seg)
    ps = seg.create_plane_segmentation(description="ROIs from the label image",
                                       imaging_plane=plane, name="PlaneSegmentation")
    for rid in roi_ids:
        ps.add_roi(image_mask=(labels == rid).astype(np.float32), id=int(rid))
    return nwb, ps


def write_traces_nwb(path: str | os.PathLike, result: Any, labels: np.ndarray | None = None,
                     source: str | os.PathLike | None = None) -> Path:
    """Write ``result`` (a :class:`~.fidelity.TraceResult`) to ``path``: into a copy of
    ``source`` (an NWB file whose first PlaneSegmentation the ROIs came from: their id
    ``k`` is its row ``k - 1``), or a new file with ``labels``' masks."""
    pynwb = _need("pynwb", "or writing NWB files")
    from pynwb.ophys import PlaneSegmentation

    out = Path(path)
    tmp = out.with_name(out.name[: -len(out.suffix)] + ".incomplete" + out.suffix)
    tmp.unlink(missing_ok=True)
    try:
        if source is not None:
            with pynwb.NWBHDF5IO(str(source), "r", load_namespaces=True) as src:
                nwb = src.read()
                segs = [o for o in nwb.objects.values() if isinstance(o, PlaneSegmentation)]
                ps = segs[0]
                rows = [int(r) - 1 for r in result.roi_ids]
                if rows and max(rows) >= len(ps):
                    raise InputError(f"ROI ids {result.roi_ids} do not fit the {len(ps)} rows "
                                     f"of {source}'s PlaneSegmentation")
                _add_traces(nwb, ps, result, rows)
                nwb.set_modified()
                with pynwb.NWBHDF5IO(str(tmp), "w") as io:
                    io.export(src_io=src, nwbfile=nwb)
        else:
            if labels is None:
                raise ValueError("labels are needed for a new PlaneSegmentation")
            nwb, ps = _new_file(np.asarray(labels), list(result.roi_ids))
            _add_traces(nwb, ps, result, list(range(len(result.roi_ids))))
            with pynwb.NWBHDF5IO(str(tmp), "w") as io:
                io.write(nwb)
        os.replace(tmp, out)  # a partial file never has the final name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
