"""Checks of the Restore dock before a run, in GUI words: a volume method (upsample,
isotropize: ``Method.keeps_time`` False) is not given a movie, whose time axis it would take
for z, nor data of a dimension it cannot take (refused up front, not by a failure later).

Whether a layer's first axis is time is read, in this order, from napari's axis label of
that axis (the user can edit it beside the slider: an explicit label decides), the layer's
own axis labels, and the axes our reader recorded from the file (``metadata["axes"]``)."""

from __future__ import annotations

import re
from typing import Any

#: axis labels that name time
TIME_LABELS = ("t", "time", "frame", "frames")


def _set_label(label: Any) -> str | None:
    """``label`` when someone set it (napari's defaults are numbers: "0", "-3", ...)."""
    text = str(label).strip()
    return None if not text or re.fullmatch(r"-?\d+", text) else text


def time_axis_reason(layer: Any, viewer: Any = None) -> str | None:
    """Why ``layer``'s first axis is time (None: nothing says so)."""
    ndim = int(layer.ndim)
    labels = []
    try:
        dims = tuple(viewer.dims.axis_labels) if viewer is not None else ()
        if len(dims) >= ndim:
            labels.append(("napari labels its first axis", dims[len(dims) - ndim]))
    except Exception:  # noqa: BLE001 -- a viewer without dims
        pass
    own = tuple(getattr(layer, "axis_labels", None) or ())
    if own:
        labels.append(("the layer labels its first axis", own[0]))
    for where, label in labels:
        text = _set_label(label)
        if text is not None:  # an explicit label decides
            return f"{where} '{text}'" if text.lower() in TIME_LABELS else None
    axes = str((getattr(layer, "metadata", None) or {}).get("axes") or "")
    if len(axes) == ndim and axes[:1].upper() == "T":
        return f"its recorded axes are '{axes}'"
    return None


def volume_refusal(method: str, layer: Any, data: Any, params: Any, training: bool,
                   viewer: Any = None) -> str | None:
    """Why ``method`` cannot run on ``layer`` (None: nothing against it found here)."""
    from ..core.errors import InputError
    from ..core.methods import get

    m = get(method)
    if m.keeps_time:
        return None
    label = m.label or method
    if layer.ndim >= 3:
        why = time_axis_reason(layer, viewer)
        if why:
            return (f"'{layer.name}' is a movie ({why}): {label} works on (z, y, x) volumes "
                    f"and would take its time axis for z. If that axis is z, label it 'z' "
                    f"(click the axis name beside its slider) and try again.")
    try:
        m.check_input(data, params, training=training)
    except (InputError, ValueError) as e:
        return f"layer '{layer.name}': {e}"
    return None
