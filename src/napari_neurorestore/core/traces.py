"""ROI fluorescence traces: masks -> F(t) -> F0 -> ΔF/F, and fidelity figures.

numpy only (no torch, Qt or napari). The pieces, in the order they are used:

* ROI masks: :func:`rois_from_labels` (a label image, 0 = background) and
  :func:`rois_from_shapes` (napari-Shapes-like geometry: vertex arrays with shape types
  ``"ellipse"``, ``"rectangle"``, ``"polygon"``, rasterised here, pixel centres at integer
  coordinates, boundary included). An :class:`Roi` holds the flat indices of its pixels in
  the movie's spatial grid ((y, x), or (z, y, x) for a volume movie: an ROI drawn on one
  plane of a (t, z, y, x) movie lives on that plane) and a content key used for caching.
* :func:`neuropil_rois`: an annulus around each ROI (inner < distance <= outer pixels,
  in-plane, other ROIs' pixels excluded), for background subtraction and for the SNR.
* :func:`extract_traces`: the mean of each ROI in every frame, vectorised (one gather and
  one segmented sum per chunk of frames), reading the movie in chunks of frames, so numpy
  memmaps and dask arrays are never materialised whole. :class:`TraceCache` keeps per-ROI
  traces keyed by the ROI's pixels, so after one ROI moves only its trace is recomputed.
* :func:`compute_f0` (percentile of the trace, sliding-window percentile, mean of the
  first N frames, fixed value) and :func:`delta_f_over_f` = (F - F0) / F0.
* :func:`compute_traces`: the whole pipeline for a reference movie and compare movies,
  returning a :class:`TraceResult` with a tidy table (:meth:`TraceResult.table`), the
  fidelity rows (:meth:`TraceResult.fidelity`) and CSV writers.

Fidelity figures follow the fiberscopy paper: Pearson r and NRMSE (RMSE between the compare
ΔF/F and the reference ΔF/F over the range of the compare ΔF/F) per ROI, and
SNR = 10 log10(P_signal / P_noise) with P_signal the mean intensity of the ROI and P_noise
the mean intensity of the background annulus adjacent to it. Transient fidelity
(:mod:`.transients`) adds, per ROI and compare layer, the number of events detected on the
reference, the restored/reference peak ratio, the onset delay and the "flattened"/"shifted"
flags.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .io import InputError
from .metrics import nrmse, pearson, snr_db
from .transients import detect_events, transient_fidelity

__all__ = [
    "AREA_SHAPE_TYPES",
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

#: The columns of the fidelity CSV (see :func:`fidelity_rows`), in order.
FIDELITY_COLUMNS = ("roi", "layer", "role", "snr_db", "pearson_r", "nrmse", "n_events",
                    "peak_ratio", "onset_delay", "flags")

AREA_SHAPE_TYPES = ("ellipse", "rectangle", "polygon")
F0_MODES = ("percentile", "sliding", "first", "fixed")
CHUNK_BYTES = 64 * 2**20  # bound on the memory one chunk of frames may take while extracting


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class TraceParams:
    """How ΔF/F is computed.

    f0_mode : "percentile" (a percentile of the whole trace), "sliding" (the percentile over
        a sliding window centred on each frame, for drifting baselines), "first" (the mean
        of the first ``f0_first_frames`` frames) or "fixed" (``f0_value``).
    f0_percentile : the percentile (0-100, linear interpolation) for "percentile"/"sliding".
    f0_window, f0_window_unit : the sliding window's length, in seconds ("s", needs ``fps``)
        or in frames ("frames"). Frame t's window is frames [t - w//2, t - w//2 + w),
        truncated at the ends of the movie.
    f0_first_frames : N for "first".
    f0_value : F0 for "fixed", in the movie's intensity units.
    neuropil : subtract ``neuropil_coef`` x the mean of the background annulus from F
        before F0 and ΔF/F are computed.
    neuropil_inner, neuropil_outer : the annulus holds the pixels whose distance (in
        pixels, in-plane, between pixel centres) to the nearest ROI pixel is in
        (inner, outer]; pixels of any ROI are left out. The annulus is also the "adjacent
        background" of the SNR, so it is computed whether or not ``neuropil`` is set.
    offset : the camera's dark level (offset), subtracted from every intensity (ROI and
        annulus) before neuropil subtraction, F0, ΔF/F and the SNR; 0 leaves them as they are.
    fps : frames per second (None: unknown; time is then in frames).
    """

    f0_mode: str = "percentile"
    f0_percentile: float = 20.0
    f0_window: float = 30.0
    f0_window_unit: str = "s"
    f0_first_frames: int = 30
    f0_value: float = 100.0
    neuropil: bool = False
    neuropil_coef: float = 0.7
    neuropil_inner: float = 2.0
    neuropil_outer: float = 8.0
    offset: float = 0.0
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.f0_mode not in F0_MODES:
            raise ValueError(f"f0_mode must be one of {F0_MODES}, got {self.f0_mode!r}")
        if not 0.0 <= float(self.f0_percentile) <= 100.0:
            raise ValueError(f"f0_percentile must be between 0 and 100, got {self.f0_percentile}")
        if self.f0_window_unit not in ("s", "frames"):
            raise ValueError(f"f0_window_unit must be 's' or 'frames', got {self.f0_window_unit!r}")
        if not self.f0_window > 0:
            raise ValueError(f"f0_window must be positive, got {self.f0_window}")
        if isinstance(self.f0_first_frames, bool) or int(self.f0_first_frames) != self.f0_first_frames \
                or self.f0_first_frames < 1:
            raise ValueError(f"f0_first_frames must be an integer >= 1, got {self.f0_first_frames}")
        if not (math.isfinite(self.f0_value) and self.f0_value > 0):
            raise ValueError(f"f0_value must be a positive number, got {self.f0_value}")
        if not (math.isfinite(self.neuropil_coef) and self.neuropil_coef >= 0):
            raise ValueError(f"neuropil_coef must be >= 0, got {self.neuropil_coef}")
        if not 0 <= self.neuropil_inner < self.neuropil_outer:
            raise ValueError(
                "the annulus needs 0 <= neuropil_inner < neuropil_outer, got "
                f"{self.neuropil_inner} and {self.neuropil_outer}"
            )
        if not math.isfinite(self.offset):
            raise ValueError(f"offset must be a finite number, got {self.offset}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number or None, got {self.fps}")
        if self.f0_mode == "sliding" and self.f0_window_unit == "s" and self.fps is None:
            raise ValueError("a sliding window in seconds needs the frame rate (fps)")

    def window_frames(self) -> int:
        """The sliding window's length in frames (at least 1)."""
        if self.f0_window_unit == "frames":
            return max(1, int(round(self.f0_window)))
        if self.fps is None:
            raise ValueError("a sliding window in seconds needs the frame rate (fps)")
        return max(1, int(round(self.f0_window * self.fps)))

    def f0_key(self) -> tuple:
        """What F0/ΔF/F depend on (besides F): used as a cache key."""
        m = self.f0_mode
        key: tuple = (m, float(self.offset), self.neuropil,
                      self.neuropil_coef if self.neuropil else None)
        if m == "percentile":
            return key + (float(self.f0_percentile),)
        if m == "sliding":
            return key + (float(self.f0_percentile), self.window_frames())
        if m == "first":
            return key + (int(self.f0_first_frames),)
        return key + (float(self.f0_value),)


def parse_f0(spec: str) -> dict[str, Any]:
    """Parse the CLI's ``--f0`` spec into :class:`TraceParams` fields.

    ``percentile:20``, ``sliding:20:30s`` (20th percentile over 30 s windows; ``sliding:20:900``
    or ``sliding:20:900f`` for 900 frames), ``first:50`` (mean of the first 50 frames),
    ``fixed:1200`` (F0 = 1200). ``percentile`` alone uses the default 20th percentile.
    """
    parts = [p.strip() for p in str(spec).strip().split(":")]
    mode = parts[0].lower()
    aliases = {"pct": "percentile", "p": "percentile", "window": "sliding", "mean": "first",
               "value": "fixed"}
    mode = aliases.get(mode, mode)
    if mode not in F0_MODES:
        raise ValueError(
            f"unknown F0 mode {parts[0]!r} in {spec!r}: use percentile:P, sliding:P:Ns, "
            "sliding:P:N (frames), first:N or fixed:VALUE"
        )
    try:
        if mode == "percentile":
            if len(parts) > 2:
                raise ValueError
            return {"f0_mode": mode, **({"f0_percentile": float(parts[1])} if len(parts) == 2 else {})}
        if mode == "sliding":
            if len(parts) != 3:
                raise ValueError
            w, unit = parts[2].lower().replace(" ", ""), "frames"
            for suffix, u in (("frames", "frames"), ("sec", "s"), ("s", "s"), ("f", "frames")):
                if w.endswith(suffix):
                    w, unit = w[: -len(suffix)], u
                    break
            return {"f0_mode": mode, "f0_percentile": float(parts[1]), "f0_window": float(w),
                    "f0_window_unit": unit}
        if mode == "first":
            if len(parts) != 2:
                raise ValueError
            n = float(parts[1])
            if n != int(n):
                raise ValueError
            return {"f0_mode": mode, "f0_first_frames": int(n)}
        if len(parts) != 2:
            raise ValueError
        return {"f0_mode": mode, "f0_value": float(parts[1])}
    except ValueError:
        raise ValueError(
            f"cannot read the F0 spec {spec!r}: use percentile:20, sliding:20:30s, "
            "sliding:20:900 (frames), first:50 or fixed:1200"
        ) from None


# ----------------------------------------------------------------------------- ROI masks


class Roi:
    """One region of interest: the flat indices of its pixels in a spatial grid.

    Parameters
    ----------
    id : the ROI's number (a label value, or a Shapes layer's ROI id).
    index : flat (C-order) indices into ``spatial_shape`` (sorted, unique).
    spatial_shape : the movie's frame shape, (y, x) or (z, y, x).
    """

    __slots__ = ("id", "index", "spatial_shape", "key", "__weakref__")

    def __init__(self, id: int, index: np.ndarray, spatial_shape: Sequence[int]) -> None:
        self.id = int(id)
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        idx = np.unique(np.asarray(index, dtype=np.int64).ravel())
        if idx.size and (idx[0] < 0 or idx[-1] >= int(np.prod(self.spatial_shape))):
            raise ValueError("ROI pixel index outside the spatial grid")
        idx.setflags(write=False)
        self.index = idx
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(self.spatial_shape).encode())
        h.update(idx.tobytes())
        self.key = h.hexdigest()

    @property
    def size(self) -> int:
        return int(self.index.size)

    @property
    def coords(self) -> tuple[np.ndarray, ...]:
        """Pixel coordinates, one array per spatial axis."""
        return np.unravel_index(self.index, self.spatial_shape)

    def mask(self) -> np.ndarray:
        """The ROI as a boolean array of ``spatial_shape``."""
        m = np.zeros(int(np.prod(self.spatial_shape)), bool)
        m[self.index] = True
        return m.reshape(self.spatial_shape)

    def __repr__(self) -> str:
        return f"Roi(id={self.id}, pixels={self.size}, spatial_shape={self.spatial_shape})"


def _on_segments(py, px, a, b, eps=1e-9):
    """Which points (py, px) lie on the segment a-b (within eps)."""
    d = b - a
    L2 = float(d @ d)
    if L2 == 0:
        return (np.abs(py - a[0]) <= eps) & (np.abs(px - a[1]) <= eps)
    t = np.clip(((py - a[0]) * d[0] + (px - a[1]) * d[1]) / L2, 0.0, 1.0)
    return (py - (a[0] + t * d[0])) ** 2 + (px - (a[1] + t * d[1])) ** 2 <= eps * eps


def _inside_polygon(py, px, poly):
    """Even-odd rule plus the boundary (closed polygon), vectorised over the points."""
    inside = np.zeros(py.shape, bool)
    on_edge = np.zeros(py.shape, bool)
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        (ay, ax), (by, bx) = a, b
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (px < xint)
        on_edge |= _on_segments(py, px, a, b)
    return inside | on_edge


def shape_pixels(vertices: np.ndarray, shape_type: str, frame_shape: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise one 2-D shape: the (y, x) pixel coordinates whose centres lie inside.

    ``vertices`` is a (k, 2) array of (y, x) in pixel coordinates (pixel (i, j) has its
    centre at (i, j), as in napari). "ellipse": the 4 corners of its bounding box in order
    (napari's representation; rotated boxes work); "rectangle": its 4 corners; "polygon":
    its vertices. The boundary counts as inside. Pixels outside ``frame_shape`` are dropped.
    """
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 2 or not np.isfinite(v).all():
        raise ValueError("vertices must be a finite (k, 2) array of (y, x)")
    st = str(shape_type).lower()
    if st not in AREA_SHAPE_TYPES:
        raise ValueError(f"shape type {shape_type!r} has no area: use {', '.join(AREA_SHAPE_TYPES)}")
    if st in ("ellipse", "rectangle") and len(v) != 4:
        raise ValueError(f"an {st} needs its 4 bounding-box corners, got {len(v)} vertices")
    if st == "polygon" and len(v) < 3:
        raise ValueError(f"a polygon needs at least 3 vertices, got {len(v)}")
    ny, nx = int(frame_shape[0]), int(frame_shape[1])
    y0 = max(0, int(np.floor(v[:, 0].min())))
    y1 = min(ny - 1, int(np.ceil(v[:, 0].max())))
    x0 = max(0, int(np.floor(v[:, 1].min())))
    x1 = min(nx - 1, int(np.ceil(v[:, 1].max())))
    empty = np.zeros(0, np.int64)
    if y1 < y0 or x1 < x0:
        return empty, empty
    gy, gx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    py, px = gy.ravel().astype(np.float64), gx.ravel().astype(np.float64)
    if st == "ellipse":
        c = v.mean(axis=0)
        a = (v[1] - v[0]) / 2.0
        b = (v[2] - v[1]) / 2.0
        m = np.stack([a, b], axis=1)  # columns: the two half-axis vectors
        if abs(np.linalg.det(m)) < 1e-12:
            return empty, empty
        s, r = np.linalg.solve(m, np.stack([py - c[0], px - c[1]]))
        inside = s * s + r * r <= 1.0 + 1e-9
    else:
        inside = _inside_polygon(py, px, v)
    return gy.ravel()[inside].astype(np.int64), gx.ravel()[inside].astype(np.int64)


def shape_mask(vertices: np.ndarray, shape_type: str, frame_shape: Sequence[int]) -> np.ndarray:
    """:func:`shape_pixels` as a boolean (y, x) mask of ``frame_shape``."""
    m = np.zeros(tuple(int(s) for s in frame_shape[-2:]), bool)
    ys, xs = shape_pixels(vertices, shape_type, frame_shape[-2:])
    m[ys, xs] = True
    return m


def rois_from_labels(labels: np.ndarray, spatial_shape: Sequence[int] | None = None,
                     plane: int | None = None) -> list[Roi]:
    """One ROI per non-zero label of an integer label image.

    ``labels`` has the movie's spatial shape ((y, x) or (z, y, x)), or is (y, x) for a
    (z, y, x) ``spatial_shape`` together with ``plane`` (the z index its ROIs lie on).
    """
    lab = np.asarray(labels)
    if lab.dtype.kind not in "iub":
        raise InputError(f"a label image must hold integers, got {lab.dtype}")
    spatial = tuple(int(s) for s in (lab.shape if spatial_shape is None else spatial_shape))
    if lab.shape == spatial:
        offset = 0
    elif lab.ndim == 2 and len(spatial) == 3 and lab.shape == spatial[1:]:
        if plane is None:
            raise InputError(
                "a 2D label image on a (z, y, x) movie needs the plane its ROIs lie on"
            )
        if not 0 <= int(plane) < spatial[0]:
            raise InputError(f"plane {plane} is outside the movie's {spatial[0]} planes")
        offset = int(plane) * spatial[1] * spatial[2]
    else:
        raise InputError(
            f"the label image has shape {lab.shape} but the movie's frames are {spatial}"
        )
    flat = lab.ravel()
    nz = np.flatnonzero(flat)
    if nz.size == 0:
        return []
    vals = flat[nz].astype(np.int64)
    if (vals < 0).any():
        raise InputError("label images must not hold negative labels")
    order = np.argsort(vals, kind="stable")
    vals, nz = vals[order], nz[order]
    ids, starts = np.unique(vals, return_index=True)
    groups = np.split(nz, starts[1:])
    return [Roi(i, g.astype(np.int64) + offset, spatial) for i, g in zip(ids, groups, strict=False)]


def rois_from_shapes(
    shapes: Sequence[np.ndarray],
    shape_types: Sequence[str] | str,
    spatial_shape: Sequence[int],
    ids: Sequence[int] | None = None,
    plane: int | None = None,
    masks: MaskCache | None = None,
) -> tuple[list[Roi], list[str]]:
    """Rasterise napari-Shapes-like geometry into ROIs.

    ``shapes``: one (k, D) vertex array per shape in the movie's pixel coordinates; the
    last two columns are (y, x). For a (z, y, x) ``spatial_shape`` the column before them
    is z (all vertices of a shape must lie on one plane), or, for 2-column vertices, the
    shapes lie on ``plane``. Other leading columns (time) are ignored.
    ``ids``: the ROI ids (default 1, 2, ...). ``masks``: a :class:`MaskCache` so that only
    shapes whose geometry changed since an earlier call are rasterised again.

    Returns ``(rois, messages)``: shapes that are lines or paths, cover no pixel centre, lie
    outside the image or off a plane are left out, each with a message saying why.
    """
    spatial = tuple(int(s) for s in spatial_shape)
    if len(spatial) not in (2, 3):
        raise InputError(f"ROIs need a (y, x) or (z, y, x) frame, got {spatial}")
    n = len(shapes)
    types = [shape_types] * n if isinstance(shape_types, str) else list(shape_types)
    if len(types) != n:
        raise ValueError(f"{n} shapes but {len(types)} shape types")
    ids = list(range(1, n + 1)) if ids is None else [int(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"{n} shapes but {len(ids)} ids")
    if len(set(ids)) != len(ids):
        raise InputError("ROI ids must be unique")
    rois: list[Roi] = []
    messages: list[str] = []
    frame = spatial[-2:]
    for verts, st, rid in zip(shapes, types, ids, strict=False):
        v = np.asarray(verts, np.float64)
        if v.ndim != 2 or v.shape[1] < 2:
            messages.append(f"ROI {rid}: vertices must be a (k, D>=2) array; left out")
            continue
        if str(st).lower() not in AREA_SHAPE_TYPES:
            messages.append(f"ROI {rid} is a {st}, which has no area; left out "
                            f"(draw an ellipse, rectangle or polygon)")
            continue
        offset = 0
        if len(spatial) == 3:
            if v.shape[1] >= 3:
                z = v[:, -3]
                if np.ptp(z) > 0.5:
                    messages.append(f"ROI {rid} is not drawn on a single plane; left out")
                    continue
                zi = int(np.round(z.mean()))
            elif plane is not None:
                zi = int(plane)
            else:
                messages.append(f"ROI {rid}: 2D shapes on a (z, y, x) movie need a plane; left out")
                continue
            if not 0 <= zi < spatial[0]:
                messages.append(f"ROI {rid} lies on plane {zi}, outside the movie's "
                                f"{spatial[0]} planes; left out")
                continue
            offset = zi * frame[0] * frame[1]
        try:
            yx = np.ascontiguousarray(v[:, -2:])
            if masks is None:
                ys, xs = shape_pixels(yx, st, frame)
            else:
                ys, xs = masks.get(("shape", str(st).lower(), frame, yx.shape, yx.tobytes()),
                                   lambda yx=yx, st=st: shape_pixels(yx, st, frame))
        except ValueError as e:
            messages.append(f"ROI {rid}: {e}; left out")
            continue
        if ys.size == 0:
            lo, hi = v[:, -2:].min(0), v[:, -2:].max(0)
            outside = (hi < -0.5).any() or (lo > np.array(frame) - 0.5).any()
            why = "lies outside the image" if outside else "covers no pixel centre"
            messages.append(f"ROI {rid} {why}; left out")
            continue
        idx = ys * frame[1] + xs + offset
        rois.append(Roi(rid, idx, spatial))
    return rois, messages


def _ring_pixels(ys, xs, frame, inner, outer):
    """Pixels (y, x) of one plane whose distance to the nearest of (ys, xs) is in (inner, outer]."""
    ny, nx = frame
    r = int(np.ceil(outer))
    y0, y1 = max(0, ys.min() - r), min(ny - 1, ys.max() + r)
    x0, x1 = max(0, xs.min() - r), min(nx - 1, xs.max() + r)
    h, w = y1 - y0 + 1, x1 - x0 + 1
    inroi = np.zeros((h, w), bool)
    inroi[ys - y0, xs - x0] = True
    # boundary pixels suffice for the nearest-pixel distance of outside points
    pad = np.pad(inroi, 1)
    interior = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    by, bx = np.nonzero(inroi & ~interior)
    cy, cx = np.nonzero(~inroi)
    best = np.full(cy.size, np.inf)
    step = max(1, 2**22 // max(1, by.size))
    for s in range(0, cy.size, step):
        dy = cy[s : s + step, None] - by[None, :]
        dx = cx[s : s + step, None] - bx[None, :]
        best[s : s + step] = np.sqrt((dy * dy + dx * dx).min(axis=1))
    sel = (best > inner) & (best <= outer + 1e-9)
    return cy[sel] + y0, cx[sel] + x0


def neuropil_rois(rois: Sequence[Roi], inner: float = 2.0, outer: float = 8.0,
                  exclude: Iterable[Roi] | None = None, masks: MaskCache | None = None
                  ) -> list[Roi]:
    """The background annulus of each ROI (same id; possibly empty).

    Pixels whose in-plane distance to the ROI's nearest pixel is in (inner, outer] form
    the annulus; pixels of any ROI in ``rois`` (and in ``exclude``) are left out.
    ``masks``: a :class:`MaskCache` keeping each ROI's ring between calls.
    """
    if not rois:
        return []
    spatial = rois[0].spatial_shape
    if any(r.spatial_shape != spatial for r in rois):
        raise ValueError("all ROIs must share one spatial grid")
    n_sp = int(np.prod(spatial))
    taken = np.zeros(n_sp, bool)
    for r in list(rois) + list(exclude or []):
        taken[r.index] = True
    frame = spatial[-2:]
    plane_px = frame[0] * frame[1]
    def ring(r: Roi) -> np.ndarray:
        parts = []
        planes = r.index // plane_px
        for z in np.unique(planes):
            local = r.index[planes == z] - z * plane_px
            ys, xs = np.divmod(local, frame[1])
            ry, rx = _ring_pixels(ys, xs, frame, inner, outer)
            parts.append(ry * frame[1] + rx + z * plane_px)
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    out = []
    for r in rois:
        if masks is None:
            idx = ring(r)
        else:
            idx = masks.get(("ring", r.key, float(inner), float(outer)), lambda r=r: ring(r))
        idx = idx[~taken[idx]]
        out.append(Roi(r.id, idx, spatial))
    return out


# ----------------------------------------------------------------------------- extraction


def check_trace_movie(movie: Any, what: str = "the movie") -> tuple[int, tuple[int, ...]]:
    shape = tuple(int(s) for s in getattr(movie, "shape", ()))
    dt = np.dtype(getattr(movie, "dtype", np.float64))
    if dt.kind not in "uifb":
        raise InputError(f"{what} has data type {dt}; expected integer or float intensities")
    if len(shape) < 3:
        kind = "a single frame" if len(shape) == 2 else f"{len(shape)}D data"
        raise InputError(
            f"{what} is {kind} of shape {shape}: traces need a time axis, "
            "(t, y, x) or (t, z, y, x)"
        )
    if len(shape) > 4:
        raise InputError(f"{what} has {len(shape)} axes {shape}: expected (t, y, x) or (t, z, y, x)")
    return shape[0], shape[1:]


def extract_traces(movie: Any, rois: Sequence[Roi], *, chunk_bytes: int = CHUNK_BYTES,
                   cancel: Any = None) -> np.ndarray:
    """Mean intensity of each ROI in every frame: an (n_rois, n_frames) float64 array.

    ``movie`` is (t, y, x) or (t, z, y, x): a numpy array, a numpy memmap or any lazy array
    that supports basic slicing (dask, zarr): it is read in chunks of frames (at most about
    ``chunk_bytes`` at a time); for a C-contiguous numpy array or memmap only the ROIs' pixels
    are touched. Empty ROIs give NaN. ``cancel``: an optional CancelToken, checked per chunk.
    """
    n_frames, spatial = check_trace_movie(movie)
    n = len(rois)
    out = np.full((n, n_frames), np.nan)
    for r in rois:
        if r.spatial_shape != spatial:
            raise InputError(
                f"ROI {r.id} was made for frames of {r.spatial_shape} but the movie's frames "
                f"are {spatial}"
            )
    use = [i for i, r in enumerate(rois) if r.size]
    if not use or n_frames == 0:
        return out
    sizes = np.array([rois[i].size for i in use])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    idx = np.concatenate([rois[i].index for i in use])
    itemsize = np.dtype(movie.dtype).itemsize
    rows = np.asarray(use)
    if isinstance(movie, np.ndarray) and movie.flags.c_contiguous:
        # gather straight from the frames: only the ROI pixels are read
        step = max(1, int(chunk_bytes // max(1, idx.size * (8 + itemsize))))
        flat_len = int(np.prod(spatial))
        for t0 in range(0, n_frames, step):
            if cancel is not None:
                cancel.check()
            t1 = min(n_frames, t0 + step)
            block = movie[t0:t1].reshape(t1 - t0, flat_len)
            g = np.take(block, idx, axis=1)
            sums = np.add.reduceat(g, starts, axis=1, dtype=np.float64)
            out[rows, t0:t1] = (sums / sizes).T
        return out
    # lazy or strided arrays: read the ROIs' bounding box, a chunk of frames at a time
    coords = np.unravel_index(idx, spatial)
    lo = [int(c.min()) for c in coords]
    hi = [int(c.max()) + 1 for c in coords]
    box = tuple(h - a for a, h in zip(lo, hi, strict=False))
    local = np.ravel_multi_index(tuple(c - a for c, a in zip(coords, lo, strict=False)), box)
    sl = tuple(slice(a, h) for a, h in zip(lo, hi, strict=False))
    step = max(1, int(chunk_bytes // max(1, int(np.prod(box)) * max(itemsize, 8))))
    for t0 in range(0, n_frames, step):
        if cancel is not None:
            cancel.check()
        t1 = min(n_frames, t0 + step)
        block = np.asarray(movie[(slice(t0, t1),) + sl]).reshape(t1 - t0, -1)
        g = np.take(block, local, axis=1)
        sums = np.add.reduceat(g, starts, axis=1, dtype=np.float64)
        out[rows, t0:t1] = (sums / sizes).T
    return out


class MaskCache:
    """A bounded memo of rasterised shapes and annulus rings, keyed by their geometry."""

    def __init__(self, max_entries: int = 8192) -> None:
        self.max_entries = int(max_entries)
        self._d: OrderedDict[tuple, Any] = OrderedDict()
        self.computed = 0  # masks rasterised so far (for tests and benchmarks)

    def get(self, key: tuple, make: Any) -> Any:
        hit = self._d.get(key)
        if hit is None:
            hit = make()
            self.computed += 1
            self._d[key] = hit
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)
        else:
            self._d.move_to_end(key)
        return hit

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


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


# ----------------------------------------------------------------------------- F0 and ΔF/F


def _sliding_percentile_sorted(row: np.ndarray, q: float, w: int, out: np.ndarray) -> None:
    """One row of :func:`sliding_percentile` with a sorted window updated frame by frame
    (O(T log w) comparisons instead of O(T w log w)); same interpolation as numpy's."""
    from bisect import bisect_left, insort

    T = row.shape[0]
    h = w // 2
    vals = row.tolist()
    qf = float(np.true_divide(q, 100))
    win: list[float] = []
    a0 = b0 = 0
    for t in range(T):
        a = t - h if t > h else 0
        b = t - h + w
        if b > T:
            b = T
        for j in range(b0, b):
            insort(win, vals[j])
        for j in range(a0, a):
            del win[bisect_left(win, vals[j])]
        a0, b0 = a, b
        n = len(win)
        v = qf * (n - 1)
        lo = int(v)
        if lo + 1 < n:
            g = v - lo
            x0, x1 = win[lo], win[lo + 1]
            d = x1 - x0
            out[t] = x0 + d * g if g < 0.5 else x1 - d * (1 - g)
        else:
            out[t] = win[n - 1]


def sliding_percentile(f: np.ndarray, q: float, window: int) -> np.ndarray:
    """Percentile ``q`` of each row over a sliding window of ``window`` frames.

    Frame t's window is [t - window//2, t - window//2 + window), truncated at both ends
    (numpy's linear-interpolation percentile). ``f`` is (..., T); the result has its shape.
    """
    f = np.asarray(f, np.float64)
    T = f.shape[-1]
    w = int(min(max(1, window), T))
    h = w // 2
    out = np.empty_like(f)
    if T == 0:
        return out
    rows = f.reshape(-1, T)
    res = out.reshape(-1, T)
    finite = np.isfinite(rows).all(axis=1)
    if w > 48:  # long windows: a sorted window per row
        for i in np.flatnonzero(finite):
            _sliding_percentile_sorted(rows[i], q, w, res[i])
        todo = np.flatnonzero(~finite)
    else:
        todo = np.arange(rows.shape[0])
    if todo.size == 0:
        return out
    # short windows (or rows with NaN): numpy on full windows, then the truncated ends
    view = np.lib.stride_tricks.sliding_window_view(rows, w, axis=-1)  # (n, T-w+1, w)
    per_row = max(1, int(CHUNK_BYTES // max(1, w * 8)))
    for i in todo:
        for s in range(0, T - w + 1, per_row):
            e = min(T - w + 1, s + per_row)
            res[i, s + h : e + h] = np.percentile(view[i, s:e], q, axis=-1)
    for t in list(range(0, h)) + list(range(T - w + h + 1, T)):
        a, b = max(0, t - h), min(T, t - h + w)
        res[todo, t] = np.percentile(rows[todo, a:b], q, axis=-1)
    return out


def compute_f0(f: np.ndarray, params: TraceParams) -> np.ndarray:
    """F0 of each trace: (n_rois, n_frames) F -> (n_rois, n_frames) F0 (NaNs ignored)."""
    f = np.atleast_2d(np.asarray(f, np.float64))
    T = f.shape[-1]
    m = params.f0_mode
    if m == "fixed":
        return np.full(f.shape, float(params.f0_value))
    if T == 0:
        return np.empty_like(f)
    if m == "percentile":
        with np.errstate(all="ignore"):
            f0 = np.percentile(f, params.f0_percentile, axis=-1, keepdims=True)
    elif m == "first":
        n = int(params.f0_first_frames)
        if n > T:
            raise InputError(f"F0 from the first {n} frames, but the movie has {T}")
        f0 = f[..., :n].mean(axis=-1, keepdims=True)
    else:
        return sliding_percentile(f, params.f0_percentile, params.window_frames())
    return np.broadcast_to(f0, f.shape).copy()


def delta_f_over_f(f: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """(F - F0) / F0; NaN where F0 <= 0 or is not finite (ΔF/F is undefined there)."""
    f = np.asarray(f, np.float64)
    f0 = np.broadcast_to(np.asarray(f0, np.float64), f.shape)
    ok = np.isfinite(f0) & (f0 > 0)
    out = np.full(f.shape, np.nan)
    np.divide(f - f0, f0, out=out, where=ok)
    return out


# ----------------------------------------------------------------------------- results


def _finite_mean(a: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


@dataclass
class LayerTraces:
    """Traces of one movie (layer). Arrays are (n_rois, n_frames).

    f : mean intensity in each ROI (as in the movie). background : mean intensity in its
    annulus (NaN when the annulus is empty). f0, dff : baseline and ΔF/F of
    F - offset (- coef x (background - offset) when neuropil subtraction is on).
    offset : the dark level that was subtracted (see :class:`TraceParams`).
    """

    name: str
    f: np.ndarray
    background: np.ndarray
    f0: np.ndarray
    dff: np.ndarray
    role: str = "compare"
    offset: float = 0.0

    def snr_db(self) -> np.ndarray:
        """Per ROI: 10 log10(P_signal / P_noise), P_signal the mean intensity of the ROI and
        P_noise the mean intensity of the annulus adjacent to it (both less ``offset``);
        NaN when either is not positive."""
        out = np.full(self.f.shape[0], np.nan)
        for i in range(self.f.shape[0]):
            ps = _finite_mean(self.f[i]) - self.offset
            pn = _finite_mean(self.background[i]) - self.offset
            if ps > 0 and pn > 0:  # False for NaN
                out[i] = snr_db(ps, pn)
        return out


@dataclass
class TraceResult:
    """Traces of every layer for the same ROIs; ``layers[0]`` is the reference."""

    roi_ids: list[int]
    layers: list[LayerTraces]
    params: TraceParams
    messages: list[str] = field(default_factory=list)
    roi_sizes: list[int] = field(default_factory=list)
    _fidelity: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_frames(self) -> int:
        return int(self.layers[0].f.shape[1]) if self.layers else 0

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.n_frames)

    @property
    def time(self) -> np.ndarray:
        """Time of each frame in seconds (frames when ``params.fps`` is None)."""
        fps = self.params.fps
        return self.frames / fps if fps else self.frames.astype(np.float64)

    @property
    def reference(self) -> LayerTraces:
        return self.layers[0]

    def layer(self, name: str) -> LayerTraces:
        for lt in self.layers:
            if lt.name == name:
                return lt
        raise KeyError(name)

    def table(self) -> dict[str, np.ndarray]:
        """A tidy (long) table as a dict of equal-length columns: one row per layer, ROI and
        frame, with columns layer, role, roi, frame, time, f, background, f0, dff.
        ``pandas.DataFrame(result.table())`` makes a data frame of it."""
        T, n = self.n_frames, len(self.roi_ids)
        cols: dict[str, list] = {k: [] for k in
                                 ("layer", "role", "roi", "frame", "time", "f", "background", "f0", "dff")}
        for lt in self.layers:
            cols["layer"].append(np.repeat(np.array([lt.name], object), n * T))
            cols["role"].append(np.repeat(np.array([lt.role], object), n * T))
            cols["roi"].append(np.repeat(np.asarray(self.roi_ids, np.int64), T))
            cols["frame"].append(np.tile(self.frames, n))
            cols["time"].append(np.tile(self.time, n))
            for k, a in (("f", lt.f), ("background", lt.background), ("f0", lt.f0), ("dff", lt.dff)):
                cols[k].append(np.asarray(a, np.float64).reshape(-1))
        return {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}

    def wide_columns(self) -> dict[str, np.ndarray]:
        """frame, time, then per layer and ROI its F (and background when neuropil
        subtraction is on) and ΔF/F: the layout of :func:`write_traces_csv`."""
        cols: dict[str, np.ndarray] = {"frame": self.frames}
        cols["time_s" if self.params.fps else "time_frames"] = self.time
        for lt in self.layers:
            for i, rid in enumerate(self.roi_ids):
                cols[f"{lt.name}:roi{rid}:F"] = lt.f[i]
                if self.params.neuropil:
                    cols[f"{lt.name}:roi{rid}:F_neuropil"] = lt.background[i]
                cols[f"{lt.name}:roi{rid}:dFF"] = lt.dff[i]
        return cols

    def fidelity(self, **transient_options: Any) -> list[dict[str, Any]]:
        """See :func:`fidelity_rows` (computed once per set of options, then reused)."""
        key = tuple(sorted(transient_options.items()))
        if key not in self._fidelity:
            self._fidelity[key] = fidelity_rows(self, **transient_options)
        return [{k: (list(v) if isinstance(v, list) else
                     v.copy() if isinstance(v, np.ndarray) else v) for k, v in r.items()}
                for r in self._fidelity[key]]


def fidelity_rows(result: TraceResult, **transient_options: Any) -> list[dict[str, Any]]:
    """One row per ROI and layer: roi, layer, role, snr_db (the fiberscopy definition),
    and for compare layers pearson_r and nrmse of its ΔF/F against the reference's ΔF/F
    (RMSE over the range of the compare trace; NaN for the reference row).

    Transient fidelity (:func:`~.transients.transient_fidelity`, options passed on, e.g.
    ``smooth_frames``, ``threshold_sd``, ``min_peak_ratio``, ``max_delay``): ``n_events``
    (events detected on the reference's ΔF/F, in every row), ``events`` (their frames),
    and for compare layers ``peak_ratio``, ``onset_delay`` (frames; + = the compare layer
    lags), ``flags`` (list: "flattened", "shifted") and ``flagged_events`` (frames of the
    events whose own ratio is low). The reference row has NaN ratio and delay, no flags.
    """
    ref = result.reference
    snr = [lt.snr_db() for lt in result.layers]
    det = {k: transient_options[k] for k in ("smooth_frames", "threshold_sd", "min_separation",
                                             "min_peak") if k in transient_options}
    events = [detect_events(np.asarray(ref.dff[i], np.float64), **det)
              for i in range(len(result.roi_ids))]
    trans = {lt.name: transient_fidelity(ref.dff, lt.dff, **transient_options)
             for lt in result.layers if lt.role != "reference"}
    rows = []
    for i, rid in enumerate(result.roi_ids):
        r0 = ref.dff[i]
        for j, lt in enumerate(result.layers):
            row: dict[str, Any] = {"roi": int(rid), "layer": lt.name, "role": lt.role,
                                   "snr_db": float(snr[j][i])}
            if lt.role == "reference":
                row["pearson_r"] = float("nan")
                row["nrmse"] = float("nan")
                row.update(n_events=int(events[i].size), events=events[i],
                           peak_ratio=float("nan"), onset_delay=float("nan"), flags=[],
                           flagged_events=np.zeros(0, np.int64))
            else:
                x = lt.dff[i]
                ok = np.isfinite(x) & np.isfinite(r0)
                if ok.sum() >= 2:
                    row["pearson_r"] = pearson(x[ok], r0[ok])
                    row["nrmse"] = nrmse(x[ok], r0[ok])
                else:
                    row["pearson_r"] = row["nrmse"] = float("nan")
                t = trans[lt.name][i]
                row.update(n_events=t["n_events"], events=t["events"],
                           peak_ratio=t["peak_ratio"], onset_delay=t["onset_delay"],
                           flags=list(t["flags"]), flagged_events=t["flagged_events"])
            rows.append(row)
    return rows


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


# ----------------------------------------------------------------------------- CSV


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_table_csv(path: str | os.PathLike, columns: Mapping[str, Sequence[Any]]) -> None:
    """Write a dict of equal-length columns as CSV (header row first)."""
    keys = list(columns)
    cols = [columns[k] for k in keys]
    n = len(cols[0]) if cols else 0
    if any(len(c) != n for c in cols):
        raise ValueError("all columns must have the same length")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for i in range(n):
            w.writerow([_fmt(c[i]) for c in cols])


def write_traces_csv(path: str | os.PathLike, result: TraceResult, tidy: bool = False) -> None:
    """Traces as CSV: by default wide (frame, time, then ``<layer>:roi<id>:F`` and
    ``<layer>:roi<id>:dFF`` columns per layer and ROI); ``tidy`` writes :meth:`TraceResult.table`."""
    write_table_csv(path, result.table() if tidy else result.wide_columns())


def write_fidelity_csv(path: str | os.PathLike, rows: TraceResult | Sequence[Mapping[str, Any]]
                       ) -> None:
    """The fidelity rows (see :func:`fidelity_rows`) as CSV: the columns of
    :data:`FIDELITY_COLUMNS`; ``flags`` joined by ";" (empty when none)."""
    if isinstance(rows, TraceResult):
        rows = rows.fidelity()

    def cell(r: Mapping[str, Any], k: str) -> Any:
        v = r.get(k)
        if k == "flags":
            return ";".join(v or [])
        return float("nan") if v is None and k in ("peak_ratio", "onset_delay") else v

    write_table_csv(path, {k: [cell(r, k) for r in rows] for k in FIDELITY_COLUMNS})


def format_fidelity(rows: Sequence[Mapping[str, Any]]) -> str:
    """The fidelity rows as a plain-text table (for the CLI)."""
    head = ["roi", "layer", "snr_db", "pearson_r", "nrmse"]
    def f(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4f}"
        return str(v)
    body = [[f(r.get(k)) for k in head] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if i != 1 else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths, strict=False)))]
    for b in body:
        lines.append("  ".join(c.rjust(w) if i != 1 else c.ljust(w)
                               for i, (c, w) in enumerate(zip(b, widths, strict=False))))
    return "\n".join(lines)
