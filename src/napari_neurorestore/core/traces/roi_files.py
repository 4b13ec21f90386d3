"""The user's own ROIs, from the files of the field's tools, as a (y, x) label image.

* suite2p ``stat.npy`` (with ``iscell.npy`` beside it: cells only unless ``all_rois``);
* CaImAn HDF5 results (``estimates/A``, a sparse CSC matrix of pixels in Fortran order,
  the frame size from ``dims``; accepted components only, ``estimates/idx_components``,
  unless ``all_rois``), read with h5py;
* NWB ``PlaneSegmentation`` (image masks or pixel masks), read with pynwb;
* Fiji/ImageJ ``RoiSet.zip`` / ``.roi`` (rectangles, ovals, polygons, freehand and traced
  outlines), read with roifile and rasterised by :func:`.rois.shape_pixels`.

The rules, the same for every format:

* ROI ids are each ROI's position in the file + 1 (suite2p's ROI n is label n + 1, also
  when non-cells are left out, so the ids match suite2p's GUI and ``F.npy`` rows).
* Weighted masks keep the pixels of weight > 0 (suite2p's ``lam``, CaImAn's ``A``, NWB's
  weights), as suite2p's extraction and its cell-pixel map do.
* A pixel that two or more ROIs claim belongs to none of them (background): suite2p's
  extraction leaves such pixels out (``allow_overlap`` False; its ``overlap`` flags are
  used when present) and a label image holds one ROI per pixel. How many pixels this
  dropped, and ROIs left with no pixel, are reported in ``messages``.
* A frame size that differs from the movie's is refused (:meth:`RoiLabels.check_frame`).
  ImageJ ROI files hold no frame size: their ROIs must lie inside the movie's frame.

numpy only at import; h5py, pynwb, roifile and scipy are imported by the reader that needs
them (the ``rois`` extra).
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .rois import shape_pixels

__all__ = ["RoiLabels", "roi_file_format", "read_roi_file", "labels_from_masks"]

INSTALL_HINT = 'pip install "napari-neurorestore[rois]"'


def _need(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"reading {what} needs {module.split('.')[0]}: "
                          f"{INSTALL_HINT}") from e


@dataclass
class RoiLabels:
    """ROIs read from a file: ``labels`` (y, x) int32, 0 = background, ids = position in
    the file + 1; ``frame_shape`` (y, x), or None when the file does not say (ImageJ)."""

    labels: np.ndarray
    frame_shape: tuple[int, int] | None
    path: str
    format: str
    messages: list[str] = field(default_factory=list)

    @property
    def ids(self) -> np.ndarray:
        ids = np.unique(self.labels)
        return ids[ids > 0]

    def check_frame(self, movie_frame: Sequence[int]) -> None:
        """Refuse ROIs drawn on another frame size than the movie's (one line naming the
        file and both sizes)."""
        movie = tuple(int(s) for s in movie_frame[-2:])
        if self.frame_shape is not None and tuple(self.frame_shape) != movie:
            raise InputError(f"{self.path}: its ROIs are on {_size(self.frame_shape)} frames "
                             f"but the movie's frames are {_size(movie)}")

    def for_frame(self, movie_frame: Sequence[int]) -> np.ndarray:
        """The label image on the movie's (y, x) frame, after :meth:`check_frame`."""
        self.check_frame(movie_frame)
        movie = tuple(int(s) for s in movie_frame[-2:])
        if self.labels.shape == movie:
            return self.labels
        # ImageJ: the labels span the ROIs' extent, which must lie inside the movie's frame
        ys, xs = np.nonzero(self.labels)
        if ys.size and (ys.max() >= movie[0] or xs.max() >= movie[1]):
            raise InputError(f"{self.path}: its ROIs reach {_size((ys.max() + 1, xs.max() + 1))}"
                             f" but the movie's frames are {_size(movie)}")
        out = np.zeros(movie, np.int32)
        ny, nx = min(movie[0], self.labels.shape[0]), min(movie[1], self.labels.shape[1])
        out[:ny, :nx] = self.labels[:ny, :nx]
        return out


def _size(shape: Sequence[int]) -> str:
    return f"{int(shape[0])}x{int(shape[1])} (y x)"


def roi_file_format(path: str | Path) -> str | None:
    """"suite2p", "caiman", "nwb" or "imagej" for a file this module reads (by its name, and
    for .zip/.h5/.hdf5 by a look inside), else None."""
    p = Path(path)
    name = p.name.lower()
    if name == "stat.npy":
        return "suite2p"
    if name.endswith(".roi"):
        return "imagej"
    if name.endswith(".nwb"):
        return "nwb"
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(p) as z:
                names = z.namelist()
        except (OSError, zipfile.BadZipFile):
            return None
        return "imagej" if names and any(n.lower().endswith(".roi") for n in names) else None
    if name.endswith((".h5", ".hdf5")):
        try:
            import h5py
        except ImportError:  # cannot look inside: reading it says what to install
            return "caiman"
        try:
            with h5py.File(p, "r") as f:
                return "caiman" if isinstance(f.get("estimates/A"), h5py.Group) else None
        except OSError:
            return None
    return None


def read_roi_file(path: str | Path, *, all_rois: bool = False,
                  pixel_mask_order: str = "xy") -> RoiLabels:
    """Read the ROIs of a suite2p, CaImAn, NWB or ImageJ file as a label image (see the
    module's docstring for the rules). ``all_rois``: also suite2p's non-cells and CaImAn's
    rejected components. ``pixel_mask_order``: the column order of NWB pixel masks, "xy"
    (the NWB schema's) or "yx" (what suite2p's NWB export writes); an "xy" reading that
    falls outside the frame while "yx" fits is read as "yx", with a message."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    fmt = roi_file_format(p)
    if fmt is None:
        raise InputError(f"{p}: not an ROI file this reads (suite2p stat.npy, CaImAn .hdf5, "
                         f"NWB .nwb, ImageJ .roi or RoiSet.zip)")
    reader = {"suite2p": _read_suite2p, "caiman": _read_caiman, "nwb": _read_nwb,
              "imagej": _read_imagej}[fmt]
    kwargs = {"pixel_mask_order": pixel_mask_order} if fmt == "nwb" else {}
    if fmt in ("suite2p", "caiman"):
        kwargs["all_rois"] = all_rois
    try:
        masks, frame, messages = reader(p, **kwargs)
    except (InputError, ImportError, FileNotFoundError):
        raise
    except Exception as e:  # the library's own errors: a damaged or foreign file
        raise InputError(f"{p} cannot be read as {fmt} ROIs ({type(e).__name__}: {e})") from e
    labels, more = labels_from_masks(masks, frame, str(p))
    return RoiLabels(labels, None if fmt == "imagej" else frame, str(p), fmt, messages + more)


def labels_from_masks(masks: Sequence[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]],
                      frame: tuple[int, int], where: str = "the ROI file"
                      ) -> tuple[np.ndarray, list[str]]:
    """A (y, x) int32 label image from ``(id, ys, xs, weights)`` masks: pixels of weight
    > 0 (all when ``weights`` is None); pixels claimed by several ROIs go to none.
    Returns (labels, messages)."""
    ny, nx = int(frame[0]), int(frame[1])
    count = np.zeros(ny * nx, np.int32)
    label = np.zeros(ny * nx, np.int32)
    kept = []
    for rid, ys, xs, w in masks:
        ys, xs = np.asarray(ys, np.int64).ravel(), np.asarray(xs, np.int64).ravel()
        if w is not None:
            keep = np.asarray(w, np.float64).ravel() > 0
            ys, xs = ys[keep], xs[keep]
        if ys.size and (ys.min() < 0 or xs.min() < 0 or ys.max() >= ny or xs.max() >= nx):
            raise InputError(f"{where}: ROI {rid} has pixels outside its {_size(frame)} frame")
        idx = np.unique(ys * nx + xs)
        count[idx] += 1
        label[idx] = rid
        kept.append(rid)
    shared = count > 1
    label[shared] = 0
    messages = []
    if shared.any():
        messages.append(f"{int(shared.sum())} pixel(s) claimed by several ROIs belong to "
                        f"none of them")
    present = set(np.unique(label).tolist())
    empty = [r for r in kept if r not in present]
    if empty:
        messages.append(f"{len(empty)} ROI(s) have no pixel of their own and are left out: "
                        f"{', '.join(map(str, empty[:10]))}" + (" ..." if len(empty) > 10 else ""))
    return label.reshape(ny, nx), messages


# --------------------------------------------------------------------------- suite2p
def _read_suite2p(p: Path, all_rois: bool = False):
    from ..acquisition import suite2p_ops

    stat = np.load(p, allow_pickle=True)
    ops = suite2p_ops(p.parent)
    if ops is None or "Ly" not in ops or "Lx" not in ops:
        raise InputError(f"{p}: the frame size (Ly, Lx) is in ops.npy beside it, which is "
                         f"missing or lacks Ly/Lx")
    frame = (int(ops["Ly"]), int(ops["Lx"]))
    keep = np.ones(len(stat), bool)
    messages = []
    iscell_path = p.parent / "iscell.npy"
    if not all_rois:
        if iscell_path.exists():
            iscell = np.load(iscell_path)
            iscell = iscell[:, 0] if iscell.ndim == 2 else iscell
            if len(iscell) != len(stat):
                raise InputError(f"{iscell_path} has {len(iscell)} rows but {p} has "
                                 f"{len(stat)} ROIs")
            keep = iscell > 0.5
            messages.append(f"{int(keep.sum())} of {len(stat)} suite2p ROIs are cells "
                            f"(iscell.npy); all ROIs on request")
        else:
            messages.append(f"no iscell.npy beside {p.name}: all {len(stat)} ROIs used")
    masks = []
    for i, s in enumerate(stat):
        if not keep[i]:
            continue
        ys, xs = np.asarray(s["ypix"]), np.asarray(s["xpix"])
        lam = np.asarray(s["lam"]) if "lam" in s else None
        if "overlap" in s:  # suite2p's extraction: overlapping pixels left out
            own = ~np.asarray(s["overlap"], bool)
            ys, xs = ys[own], xs[own]
            lam = lam[own] if lam is not None else None
        masks.append((i + 1, ys, xs, lam))
    return masks, frame, messages


# --------------------------------------------------------------------------- CaImAn
def _h5_array(f: Any, key: str) -> np.ndarray | None:
    node = f.get(key)
    if node is None or not hasattr(node, "shape"):
        return None
    a = np.asarray(node[()])
    return a if a.dtype.kind in "iuf" else None


def _read_caiman(p: Path, all_rois: bool = False):
    h5py = _need("h5py", "CaImAn results")
    sparse = _need("scipy.sparse", "CaImAn results")
    with h5py.File(p, "r") as f:
        g = f["estimates/A"]
        shape = tuple(int(s) for s in g["shape"][()])
        A = sparse.csc_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=shape)
        dims = _h5_array(f, "dims")
        if dims is None:
            dims = _h5_array(f, "estimates/dims")
        good = None if all_rois else _h5_array(f, "estimates/idx_components")
    if dims is None or len(dims) != 2:
        raise InputError(f"{p}: no 2D frame size ('dims') in this CaImAn file")
    frame = (int(dims[0]), int(dims[1]))
    if A.shape[0] != frame[0] * frame[1]:
        raise InputError(f"{p}: estimates/A has {A.shape[0]} pixel rows but dims is "
                         f"{frame[0]}x{frame[1]}")
    n = A.shape[1]
    keep = np.ones(n, bool)
    messages = []
    if good is not None:
        keep[:] = False
        keep[np.asarray(good, np.int64).ravel()] = True
        messages.append(f"{int(keep.sum())} of {n} CaImAn components accepted "
                        f"(estimates/idx_components); all components on request")
    masks = []
    for k in range(n):
        if not keep[k]:
            continue
        col = A[:, k].tocoo()
        # Fortran order: pixel p is (y, x) = (p % d1, p // d1)
        masks.append((k + 1, col.row % frame[0], col.row // frame[0], col.data))
    return masks, frame, messages


# --------------------------------------------------------------------------- NWB
def _read_nwb(p: Path, pixel_mask_order: str = "xy"):
    pynwb = _need("pynwb", "NWB files")
    from pynwb.ophys import PlaneSegmentation, TwoPhotonSeries

    if pixel_mask_order not in ("xy", "yx"):
        raise ValueError(f"pixel_mask_order must be 'xy' or 'yx', got {pixel_mask_order!r}")
    with pynwb.NWBHDF5IO(str(p), "r", load_namespaces=True) as io:
        nwb = io.read()
        objs = list(nwb.objects.values())
        segs = [o for o in objs if isinstance(o, PlaneSegmentation)]
        if not segs:
            raise InputError(f"{p} holds no PlaneSegmentation (no ROIs)")
        ps = segs[0]
        messages = [] if len(segs) == 1 else [
            f"{p.name} holds {len(segs)} PlaneSegmentations: {ps.name!r} is used"]
        cols = set(ps.colnames)
        frame = None
        series = [o for o in objs if isinstance(o, TwoPhotonSeries)
                  and o.imaging_plane is ps.imaging_plane]
        if series and getattr(series[0].data, "ndim", 0) >= 3:
            frame = tuple(int(s) for s in series[0].data.shape[-2:])
        masks = []
        if "image_mask" in cols:
            im = np.asarray(ps["image_mask"].data[()])
            if im.ndim != 3:
                raise InputError(f"{p}: image masks of {im.ndim - 1} dimensions; 2D expected")
            frame = (int(im.shape[1]), int(im.shape[2]))
            for i in range(im.shape[0]):
                ys, xs = np.nonzero(im[i] > 0)
                masks.append((i + 1, ys, xs, None))
        elif "pixel_mask" in cols:
            rows = [np.asarray(ps["pixel_mask"][i].tolist(), np.float64).reshape(-1, 3)
                    if len(ps["pixel_mask"][i]) else np.zeros((0, 3))
                    for i in range(len(ps))]
            a, b = (1, 0) if pixel_mask_order == "xy" else (0, 1)  # (y, x) columns
            if frame is not None and pixel_mask_order == "xy":
                allpix = np.concatenate(rows) if rows else np.zeros((0, 3))
                if allpix.size and (allpix[:, 1].max() >= frame[0]
                                    or allpix[:, 0].max() >= frame[1]) and (
                        allpix[:, 0].max() < frame[0] and allpix[:, 1].max() < frame[1]):
                    a, b = 0, 1
                    messages.append("its pixel masks fit the frame only as (y, x, weight) "
                                    "(as suite2p writes them), not the NWB schema's (x, y, "
                                    "weight): read as (y, x)")
            for i, r in enumerate(rows):
                masks.append((i + 1, r[:, a].astype(np.int64), r[:, b].astype(np.int64), r[:, 2]))
        else:
            raise InputError(f"{p}: the PlaneSegmentation has neither image_mask nor "
                             f"pixel_mask (voxel masks are not read)")
    if frame is None:
        raise InputError(f"{p}: no frame size (no image masks and no TwoPhotonSeries on the "
                         f"segmentation's imaging plane)")
    return masks, frame, messages


# --------------------------------------------------------------------------- ImageJ
def _read_imagej(p: Path):
    roifile = _need("roifile", "ImageJ ROI files")
    rois = roifile.roiread(str(p))
    rois = rois if isinstance(rois, list) else [rois]
    T = roifile.ROI_TYPE
    shapes, messages = [], []
    for i, r in enumerate(rois):
        rid = i + 1
        if r.composite or r.roitype not in (T.RECT, T.OVAL, T.POLYGON, T.FREEHAND, T.TRACED):
            kind = "composite" if r.composite else T(r.roitype).name.lower()
            messages.append(f"ROI {rid} ({r.name or 'unnamed'}) is a {kind} ROI, which has no "
                            f"area here; left out")
            continue
        # ImageJ's pixel (i, j) spans [j, j+1) x [i, i+1): its centre is at +0.5, ours at 0
        if r.roitype in (T.RECT, T.OVAL):
            t, lft, b, rt = r.top - 0.5, r.left - 0.5, r.bottom - 0.5, r.right - 0.5
            v = np.array([[t, lft], [t, rt], [b, rt], [b, lft]], float)
            kind = "rectangle" if r.roitype == T.RECT else "ellipse"  # an oval: its box
        else:
            xy = np.asarray(r.coordinates(), float)
            v, kind = np.stack([xy[:, 1], xy[:, 0]], axis=1) - 0.5, "polygon"
        shapes.append((rid, v, kind))
    if not shapes:
        raise InputError(f"{p} holds no area ROIs")
    ny = int(np.ceil(max(v[:, 0].max() for _, v, _ in shapes) + 0.5)) + 1
    nx = int(np.ceil(max(v[:, 1].max() for _, v, _ in shapes) + 0.5)) + 1
    masks = []
    for rid, v, kind in shapes:
        if (v < -0.5).any():
            raise InputError(f"{p}: ROI {rid} reaches outside the image (negative coordinates)")
        ys, xs = shape_pixels(v, kind, (ny, nx))
        masks.append((rid, ys, xs, None))
    return masks, (ny, nx), messages
