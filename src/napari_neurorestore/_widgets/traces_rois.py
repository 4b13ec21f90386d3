"""ROIs of the ROI traces dock: the Shapes layer it creates, ROI ids and colours, and the
masks of a Shapes or Labels layer on an image layer's pixel grid (by
:mod:`napari_neurorestore.core.traces`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import traces as tr
from ..core.errors import InputError
from .layers import unique_name

#: ROI colours (matplotlib's tab10), by ROI id, for the Shapes layers this widget creates.
PALETTE = np.array([
    [0.122, 0.467, 0.706], [1.000, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
    [0.580, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
    [0.737, 0.741, 0.133], [0.090, 0.745, 0.812],
])
#: the Shapes feature holding each shape's ROI id
ROI_FEATURE = "roi"


def palette_color(roi_id: int) -> np.ndarray:
    return np.r_[PALETTE[(int(roi_id) - 1) % len(PALETTE)], 1.0]


def layer_data(layer: Any) -> Any:
    """An Image layer's array (the full-resolution level of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def add_roi_layer(viewer: Any, ref: Any) -> Any:
    """Add a Shapes layer for ROIs over ``ref`` (its spatial scale and translate), in
    add-ellipse mode; each new shape gets the next ROI id (feature ``roi``, shown as text)."""
    ndim = max(2, ref.ndim - 1) if ref is not None else 2
    kwargs: dict[str, Any] = {}
    if ref is not None:
        kwargs["scale"] = tuple(ref.scale)[-ndim:]
        kwargs["translate"] = tuple(ref.translate)[-ndim:]
    layer = viewer.add_shapes(
        None,
        ndim=ndim,
        name=unique_name(viewer, "ROIs"),
        edge_width=1.0,
        edge_color=palette_color(1),
        face_color=[0, 0, 0, 0],
        features={ROI_FEATURE: np.zeros(0, np.int64)},
        feature_defaults={ROI_FEATURE: 0},
        text={"string": "{" + ROI_FEATURE + "}", "color": "white", "size": 9,
              "anchor": "upper_left"},
        **kwargs,
    )
    layer.mode = "add_ellipse"
    return layer


def number_new_shapes(layer: Any) -> None:
    """Give shapes without an id (0) the next ids and their palette colours."""
    feats = layer.features
    if ROI_FEATURE not in feats or len(feats) == 0 or len(feats) != len(layer.data):
        return  # empty, or in the middle of an edit
    ids = np.asarray(feats[ROI_FEATURE], dtype=np.int64).copy()
    seen: set[int] = set()
    new = np.zeros(len(ids), bool)
    for i, v in enumerate(ids):  # unnumbered or duplicated (copy-pasted) shapes
        if v <= 0 or v in seen:
            new[i] = True
        else:
            seen.add(int(v))
    if not new.any():
        return
    nxt = max(seen, default=0) + 1
    for i in np.flatnonzero(new):
        ids[i] = nxt
        nxt += 1
    feats = feats.copy()
    feats[ROI_FEATURE] = ids
    layer.features = feats
    layer.current_edge_color = palette_color(nxt)
    ec = np.array(layer.edge_color, dtype=float)
    if len(ec) == len(ids):
        for i in np.flatnonzero(new):
            ec[i] = palette_color(ids[i])
        layer.edge_color = ec
    layer.refresh_text()


def no_roi_message(src: Any, msgs: list[str]) -> str:
    """Why ``src`` gave no ROI, and what to do."""
    from napari.layers import Shapes

    if isinstance(src, Shapes):
        if len(src.data) == 0:
            return (f"The Shapes layer '{src.name}' has no shapes yet: draw ellipses, "
                    "rectangles or polygons on the movie.")
        return f"No usable ROI in '{src.name}': " + "; ".join(msgs)
    return f"The Labels layer '{src.name}' has no labels yet: paint one label per ROI."


def rois_from_shapes(src: Any, lay: Any, masks: Any, plane_of: Callable[[Any], int]
                     ) -> tuple[list[tr.Roi], list[str], dict]:
    """ROIs, notes and colours (by ROI id) of the Shapes layer ``src`` on ``lay``'s grid;
    ``plane_of(lay)``: the current z plane of a (t, z, y, x) ``lay`` for 2D shapes."""
    spatial = tuple(layer_data(lay).shape[1:])
    n_sp = len(spatial)
    n = len(src.data)
    ids = None
    if ROI_FEATURE in src.features and n:
        ids_arr = np.asarray(src.features[ROI_FEATURE], dtype=np.int64)
        if (ids_arr > 0).all() and len(set(ids_arr.tolist())) == n:
            ids = ids_arr.tolist()
    if ids is None:
        ids = list(range(1, n + 1))
    s_scale, s_trans = np.asarray(src.scale, float), np.asarray(src.translate, float)
    i_scale, i_trans = np.asarray(lay.scale, float), np.asarray(lay.translate, float)
    verts = []
    for v in src.data:
        w = np.asarray(v, float) * s_scale + s_trans  # world coordinates
        k = min(n_sp, w.shape[1])
        verts.append((w[:, -k:] - i_trans[-k:]) / i_scale[-k:])
    plane = plane_of(lay) if n_sp == 3 and src.ndim < 3 else None
    rois, msgs = tr.rois_from_shapes(verts, list(src.shape_type), spatial, ids=ids,
                                     plane=plane, masks=masks)
    colors = {}
    ec = np.asarray(src.edge_color, float) if n else np.zeros((0, 4))
    fc = np.asarray(src.face_color, float) if n else np.zeros((0, 4))
    distinct = len({tuple(np.round(c, 3)) for c in ec}) > 1 or n == 1
    for i, rid in enumerate(ids):
        c = ec[i] if ec[i][3] > 0 else fc[i]
        colors[rid] = c if (distinct and c[3] > 0) else palette_color(rid)
    return rois, msgs, colors


def rois_from_labels(src: Any, lay: Any, frame: int, plane_of: Callable[[Any], int]
                     ) -> tuple[list[tr.Roi], list[str], dict]:
    """ROIs, notes and colours of the Labels layer ``src`` on ``lay``'s grid: a time series
    of labels gives those of ``frame``; 2D labels on a (t, z, y, x) ``lay`` lie on
    ``plane_of(lay)``."""
    shape = tuple(int(s) for s in layer_data(lay).shape)
    spatial = shape[1:]
    lab = src.data
    msgs: list[str] = []
    plane = None
    if tuple(lab.shape) == spatial:
        pass
    elif tuple(lab.shape) == shape:
        lab = lab[frame]  # a time series of labels: the current frame's
        msgs.append(f"'{src.name}' has a time axis: its labels at frame "
                    f"{frame} are used")
    elif lab.ndim == 2 and len(spatial) == 3 and tuple(lab.shape) == spatial[1:]:
        plane = plane_of(lay)
    else:
        expected = [spatial, shape] if len(spatial) == 2 else [spatial[1:], spatial, shape]
        raise InputError(
            f"the Labels layer '{src.name}' has shape {tuple(lab.shape)}, which does not fit "
            f"'{lay.name}' ({shape[0]} frames of {spatial}): use a Labels layer of shape "
            + " or ".join(str(e) for e in expected[:-1]) + f" (one label image for all "
            f"frames), or {expected[-1]} (one per frame)"
        )
    rois = tr.rois_from_labels(np.asarray(lab), spatial, plane=plane)
    colors = {}
    for r in rois:
        try:
            colors[r.id] = np.asarray(src.get_color(r.id), float)
        except Exception:
            colors[r.id] = palette_color(r.id)
    return rois, msgs, colors
