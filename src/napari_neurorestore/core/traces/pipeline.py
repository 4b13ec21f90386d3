"""The whole pipeline: ROIs and movies -> F, background, F0, ΔF/F of every layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError
from .cache import TraceCache
from .dff import TraceParams
from .extract import check_trace_movie
from .fidelity import LayerTraces, TraceResult
from .rois import Roi, neuropil_rois, rois_from_labels

__all__ = ["layer_traces", "compute_traces"]


def layer_traces(name: str, movie: Any, rois: Sequence[Roi], bg_rois: Sequence[Roi],
                 params: TraceParams, cache: TraceCache | None = None, role: str = "compare",
                 cancel: Any = None) -> LayerTraces:
    """F, background, F0 and ΔF/F of one movie for ``rois`` (and their annuli ``bg_rois``)."""
    cache = TraceCache() if cache is None else cache
    nb = [b for b in bg_rois if b.size]
    f = cache.traces(movie, list(rois), cancel=cancel)
    fb = cache.traces(movie, nb, cancel=cancel) if nb else np.zeros((0, f.shape[1]))
    bmap = {b.key: row for b, row in zip(nb, fb, strict=False)}
    T = f.shape[1]
    back = np.full((len(rois), T), np.nan)
    f0 = np.full((len(rois), T), np.nan)
    dff = np.full((len(rois), T), np.nan)
    for i, (r, b) in enumerate(zip(rois, bg_rois, strict=False)):
        if b.size:
            back[i] = bmap[b.key]
        f0[i], dff[i] = cache.dff(movie, r, b if b.size else None, f[i], back[i], params)
    return LayerTraces(name, f, back, f0, dff, role, float(params.offset))


def compute_traces(
    reference: Any,
    rois: Sequence[Roi] | np.ndarray,
    compare: Sequence[Any] | Mapping[str, Any] = (),
    *,
    params: TraceParams | None = None,
    names: Sequence[str] | None = None,
    compare_rois: Sequence[Sequence[Roi] | None] | None = None,
    background_rois: Sequence[Sequence[Roi]] | None = None,
    cache: TraceCache | None = None,
    cancel: Any = None,
    **overrides: Any,
) -> TraceResult:
    """ROI traces, ΔF/F and fidelity figures of a reference movie and compare movies.

    Parameters
    ----------
    reference : (t, y, x) or (t, z, y, x) array (numpy, memmap or lazy).
    rois : a list of :class:`Roi`, or an integer label image (0 = background) of the
        reference's frame shape.
    compare : movies with the reference's number of frames (a list, or a dict name -> movie).
    params : :class:`TraceParams` (``overrides`` replace its fields, e.g. ``fps=30``).
    names : layer names (reference first; default "reference", "compare1", ...).
    compare_rois : per compare movie, the same ROIs in its own pixel grid (for movies of
        another frame size), or None to use ``rois``.
    background_rois : per movie (reference first), the annuli of its ROIs as made by
        :func:`neuropil_rois` with ``params``' radii (computed when not given).
    cache : a :class:`TraceCache` to reuse traces across calls.

    Returns
    -------
    :class:`TraceResult`; ``.table()`` is a tidy table, ``.fidelity()`` the fidelity rows.
    """
    params = TraceParams() if params is None else params
    if overrides:
        params = replace(params, **overrides)
    n_frames, spatial = check_trace_movie(reference, "the reference")
    if isinstance(compare, Mapping):
        cnames, cmovies = list(compare.keys()), list(compare.values())
    else:
        cmovies, cnames = list(compare), None
    if names is None:
        names = ["reference"] + (cnames or [f"compare{i + 1}" for i in range(len(cmovies))])
    names = [str(n) for n in names]
    if len(names) != 1 + len(cmovies):
        raise ValueError(f"{len(names)} names for {1 + len(cmovies)} movies")
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique, got {names}")
    for nm, mv in zip(names[1:], cmovies, strict=False):
        t, _ = check_trace_movie(mv, f"'{nm}'")
        if t != n_frames:
            raise InputError(
                f"'{nm}' has {t} frames but the reference '{names[0]}' has {n_frames}: compare "
                "layers must share the reference's time axis"
            )
    if not isinstance(rois, (list, tuple)):
        rois = rois_from_labels(np.asarray(rois), spatial)
    rois = list(rois)
    if not rois:
        raise InputError("no ROIs: draw shapes or paint labels first")
    if len({r.id for r in rois}) != len(rois):
        raise InputError("ROI ids must be unique")
    messages = []
    if params.f0_mode == "first" and params.f0_first_frames > n_frames:
        raise InputError(
            f"F0 from the first {params.f0_first_frames} frames, but the movie has {n_frames}"
        )
    cache = TraceCache() if cache is None else cache
    per_layer = [rois] + [list(cr) if cr is not None else rois
                          for cr in (compare_rois or [None] * len(cmovies))]
    if background_rois is not None and len(background_rois) != len(per_layer):
        raise ValueError(f"{len(background_rois)} annulus lists for {len(per_layer)} movies")
    layers = []
    for k, (nm, mv, lr) in enumerate(zip(names, [reference] + cmovies, per_layer, strict=True)):
        if [r.id for r in lr] != [r.id for r in rois]:
            raise ValueError(f"the ROIs of '{nm}' must have the reference's ids, in order")
        if background_rois is None:
            bg = neuropil_rois(lr, params.neuropil_inner, params.neuropil_outer, masks=cache.masks)
        else:
            bg = list(background_rois[k])
            if [b.id for b in bg] != [r.id for r in lr]:
                raise ValueError(f"the annuli of '{nm}' must match its ROIs")
        if k == 0:
            empty = [r.id for r in bg if not r.size]
            if empty:
                messages.append(
                    f"ROI(s) {', '.join(map(str, empty))}: no background pixels around them "
                    "(no SNR" + ("; no neuropil subtraction" if params.neuropil else "") + ")"
                )
        layers.append(layer_traces(nm, mv, lr, bg, params, cache,
                                   "reference" if k == 0 else "compare", cancel))
    bad = [r.id for i, r in enumerate(rois) if not np.isfinite(layers[0].f0[i]).all()
           or (layers[0].f0[i] <= 0).any()]
    if bad:
        messages.append(
            f"ROI(s) {', '.join(map(str, bad))}: F0 <= 0 somewhere, so ΔF/F is undefined there"
            + (" (lower the neuropil coefficient?)" if params.neuropil else "")
        )
    return TraceResult([r.id for r in rois], layers, params, messages, [r.size for r in rois])
