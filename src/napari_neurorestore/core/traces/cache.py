"""Per-ROI caches of traces and ΔF/F, so that after one ROI moves only its trace is
recomputed."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .dff import TraceParams, compute_f0, delta_f_over_f
from .extract import extract_traces
from .rois import MaskCache, Roi

__all__ = ["TraceCache"]


class TraceCache:
    """Per-ROI cache of F(t) (keyed by the movie and the ROI's pixels) and of F0/ΔF/F.

    After one ROI moves only that ROI's pixels are new, so only its trace is extracted.
    Entries of a movie that is garbage-collected are dropped; call :meth:`clear` (or
    :meth:`forget`) when a movie's data change in place.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = int(max_entries)
        self._f: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._d: OrderedDict[tuple, tuple] = OrderedDict()
        self._refs: dict[int, Any] = {}
        self.masks = MaskCache(max_entries)  # for rois_from_shapes / neuropil_rois
        self.extracted = 0  # ROI traces extracted so far (for tests and benchmarks)

    def _token(self, movie: Any) -> int:
        tok = id(movie)
        if tok not in self._refs:
            try:
                self._refs[tok] = weakref.ref(movie, lambda _r, t=tok: self.forget(t))
            except TypeError:  # not weak-referenceable: keep it alive so its id stays unique
                self._refs[tok] = lambda m=movie: m
        return tok

    def forget(self, movie_or_token: Any) -> None:
        """Drop the entries of one movie."""
        tok = movie_or_token if isinstance(movie_or_token, int) else id(movie_or_token)
        self._refs.pop(tok, None)
        for d in (self._f, self._d):
            for k in [k for k in d if k[0] == tok]:
                del d[k]

    def clear(self) -> None:
        self._f.clear()
        self._d.clear()
        self._refs.clear()

    def __len__(self) -> int:
        return len(self._f)

    def _trim(self) -> None:
        for d in (self._f, self._d):
            while len(d) > self.max_entries:
                d.popitem(last=False)

    def missing(self, movie: Any, rois: Iterable[Roi]) -> list[Roi]:
        """The ROIs whose traces in ``movie`` are not cached (unique by pixels)."""
        tok = self._token(movie)
        seen, out = set(), []
        for r in rois:
            if (tok, r.key) not in self._f and r.key not in seen:
                seen.add(r.key)
                out.append(r)
        return out

    def put(self, movie: Any, rois: Sequence[Roi], traces: np.ndarray) -> None:
        """Store traces computed elsewhere (e.g. in a worker thread)."""
        tok = self._token(movie)
        for r, tr in zip(rois, traces, strict=False):
            tr = np.array(tr, np.float64)
            tr.setflags(write=False)
            self._f[(tok, r.key)] = tr
        self.extracted += len(rois)
        self._trim()

    def traces(self, movie: Any, rois: Sequence[Roi], *, cancel: Any = None) -> np.ndarray:
        """(n_rois, n_frames) mean traces, extracting only the ROIs not cached yet."""
        miss = self.missing(movie, rois)
        if miss:
            self.put(movie, miss, extract_traces(movie, miss, cancel=cancel))
        tok = self._token(movie)
        n_frames = int(movie.shape[0])
        if not rois:
            return np.zeros((0, n_frames))
        out = []
        for r in rois:
            k = (tok, r.key)
            self._f.move_to_end(k)
            out.append(self._f[k])
        return np.stack(out)

    def dff(self, movie: Any, roi: Roi, bg: Roi | None, f: np.ndarray, b: np.ndarray,
            params: TraceParams) -> tuple[np.ndarray, np.ndarray]:
        """(F0, ΔF/F) of one ROI, cached by its pixels, its annulus's pixels and the F0 options."""
        key = (self._token(movie), roi.key, bg.key if bg is not None else None, params.f0_key())
        hit = self._d.get(key)
        if hit is None:
            fc = f - params.offset
            if params.neuropil:
                fc = fc - params.neuropil_coef * (b - params.offset)
            f0 = compute_f0(fc[None], params)[0]
            hit = (f0, delta_f_over_f(fc, f0))
            self._d[key] = hit
            self._trim()
        else:
            self._d.move_to_end(key)
        return hit
