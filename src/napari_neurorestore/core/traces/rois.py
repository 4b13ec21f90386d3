"""ROI masks: labels and napari-Shapes-like geometry -> :class:`Roi`, and background annuli.

* :func:`rois_from_labels` (a label image, 0 = background) and :func:`rois_from_shapes`
  (vertex arrays with shape types ``"ellipse"``, ``"rectangle"``, ``"polygon"``,
  rasterised by :func:`shape_pixels`, pixel centres at integer coordinates, boundary
  included). An :class:`Roi` holds the flat indices of its pixels in the movie's spatial
  grid ((y, x), or (z, y, x) for a volume movie: an ROI drawn on one plane of a
  (t, z, y, x) movie lives on that plane) and a content key used for caching.
* :func:`neuropil_rois`: an annulus around each ROI (inner < distance <= outer pixels,
  in-plane, other ROIs' pixels excluded), for background subtraction and for the SNR.
* :class:`MaskCache`: a bounded memo of rasterised shapes and rings.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["AREA_SHAPE_TYPES", "Roi", "MaskCache", "shape_pixels", "shape_mask",
           "rois_from_labels", "rois_from_shapes", "neuropil_rois"]

AREA_SHAPE_TYPES = ("ellipse", "rectangle", "polygon")


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


#: shapes enclosing less than this many pixels' area are left out (a polygon whose vertices
#: lie on a line would otherwise become the pixels on that line)
MIN_ROI_AREA = 0.5


def shape_area(vertices: np.ndarray, shape_type: str) -> float:
    """The area (pixels) a 2-D shape covers: an ellipse's from its 4 bounding-box corners,
    a rectangle's or polygon's convex hull's (so a self-crossing polygon is not taken for
    a flat one); inf when it cannot tell (:func:`shape_pixels` then says what is wrong)."""
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 2 or not np.isfinite(v).all():
        return float("inf")
    st = str(shape_type).lower()
    if st == "ellipse":
        if len(v) != 4:
            return float("inf")
        a, b = (v[1] - v[0]) / 2.0, (v[2] - v[1]) / 2.0
        return float(np.pi * abs(a[0] * b[1] - a[1] * b[0]))
    if len(v) < 3:
        return float("inf")
    pts = sorted({(float(p[0]), float(p[1])) for p in v})
    if len(pts) < 3:
        return 0.0

    def half(points: list) -> list:  # Andrew's monotone chain
        out: list = []
        for p in points:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    hull = np.array(half(pts) + half(pts[::-1]))
    if len(hull) < 3:
        return 0.0
    y, x = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(y, np.roll(x, -1)) - np.dot(x, np.roll(y, -1))) / 2.0)


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
        area = shape_area(v[:, -2:], st)
        if area < MIN_ROI_AREA:  # e.g. a polygon on a line: the pixels on it, not an area
            messages.append(f"ROI {rid} has no area ({area:.2g} pixels: its vertices lie on "
                            f"a line or a point); left out (draw it larger)")
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


def auto_rois(movie: np.ndarray, n_rois: int = 20, size: int = 8) -> np.ndarray:
    """ROIs when none are given: the ``n_rois`` most active ``size`` x ``size`` tiles of a
    (t, y, x) movie (largest temporal std of the tile mean). A (y, x) label image."""
    h, w = movie.shape[-2:]
    size = max(1, min(size, h // 2, w // 2))
    ny, nx = h // size, w // size
    lab = np.zeros((h, w), np.int32)
    if ny * nx == 0 or movie.ndim != 3:
        return lab
    tiles = np.asarray(movie[:, :ny * size, :nx * size], np.float32)
    tiles = tiles.reshape(len(movie), ny, size, nx, size)
    score = tiles.mean((2, 4)).std(0).ravel()
    for i, j in enumerate(np.argsort(score)[::-1][:n_rois]):
        r, c = divmod(int(j), nx)
        lab[r * size:(r + 1) * size, c * size:(c + 1) * size] = i + 1
    return lab
