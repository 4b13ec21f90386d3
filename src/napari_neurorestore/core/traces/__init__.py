"""ROI fluorescence traces: masks -> F(t) -> F0 -> ΔF/F, and fidelity figures.

numpy only (no torch, Qt or napari). The modules, in the order they are used:

* :mod:`.rois`: ROI masks from a label image (:func:`rois_from_labels`) or from
  napari-Shapes-like geometry (:func:`rois_from_shapes`, rasterised by
  :func:`shape_pixels`), and the background annulus of each ROI (:func:`neuropil_rois`).
* :mod:`.extract`: :func:`extract_traces`, the mean of each ROI in every frame, read in
  chunks of frames so memmaps and dask arrays are never materialised whole.
* :mod:`.cache`: :class:`TraceCache` keeps per-ROI traces keyed by the ROI's pixels, so
  after one ROI moves only its trace is recomputed.
* :mod:`.dff`: :class:`TraceParams`, :func:`parse_f0`, :func:`compute_f0` (percentile,
  sliding-window percentile, mean of the first N frames, fixed value) and
  :func:`delta_f_over_f` = (F - F0) / F0.
* :mod:`.fidelity`: :class:`LayerTraces`, :class:`TraceResult` (a tidy table, the wide
  columns) and :func:`fidelity_rows` (SNR, Pearson r, NRMSE and transient fidelity).
* :mod:`.transients`: do restored ΔF/F traces keep the reference's calcium events?
* :mod:`.pipeline`: :func:`compute_traces`, the whole pipeline for a reference movie and
  compare movies.
* :mod:`.tables`: the CSV writers and the plain-text tables of the CLI.
"""

from .cache import TraceCache
from .dff import F0_MODES, TraceParams, compute_f0, delta_f_over_f, parse_f0, sliding_percentile
from .extract import CHUNK_BYTES, check_trace_movie, extract_traces
from .fidelity import LayerTraces, TraceResult, fidelity_rows
from .pipeline import compute_traces, layer_traces
from .rois import (
    AREA_SHAPE_TYPES,
    MaskCache,
    Roi,
    neuropil_rois,
    rois_from_labels,
    rois_from_shapes,
    shape_mask,
    shape_pixels,
)
from .tables import (
    FIDELITY_COLUMNS,
    format_fidelity,
    write_fidelity_csv,
    write_table_csv,
    write_traces_csv,
)

__all__ = [
    "AREA_SHAPE_TYPES",
    "CHUNK_BYTES",
    "F0_MODES",
    "Roi",
    "TraceParams",
    "LayerTraces",
    "TraceResult",
    "TraceCache",
    "MaskCache",
    "parse_f0",
    "shape_pixels",
    "shape_mask",
    "rois_from_labels",
    "rois_from_shapes",
    "neuropil_rois",
    "check_trace_movie",
    "extract_traces",
    "compute_f0",
    "sliding_percentile",
    "delta_f_over_f",
    "layer_traces",
    "compute_traces",
    "fidelity_rows",
    "write_traces_csv",
    "write_fidelity_csv",
    "write_table_csv",
    "format_fidelity",
    "FIDELITY_COLUMNS",
]
