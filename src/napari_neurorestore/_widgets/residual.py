"""Residual layers (raw - restored on the input's grid), added by the Trust report and the
Restore docks: ``<raw> [removed]`` with a diverging colormap centred on 0."""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import unique_name

#: the diverging colormap of residual layers (centred on 0 by symmetric contrast limits)
RESIDUAL_COLORMAP = "PiYG"


def residual_layer_kwargs(raw_layer: Any, residual: np.ndarray, what: dict,
                          frames: tuple[int, int] | None = None) -> dict:
    """``add_image`` keyword arguments of a residual (raw - restored) layer: the raw layer's
    scale and translate (shifted to the first assessed frame), a diverging colormap with
    contrast limits symmetric about 0, and metadata saying what it is."""
    scale = tuple(float(s) for s in raw_layer.scale)
    translate = [float(t) for t in raw_layer.translate]
    if frames is not None and frames[0]:
        translate[0] += frames[0] * scale[0]
    sample = np.asarray(residual[:64] if np.ndim(residual) >= 3 else residual)  # lazy: 64 frames
    finite = np.abs(sample[np.isfinite(sample)])
    lim = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    meta = {"neurorestore": {"kind": "residual", "description":
                             "raw - restored on the input's grid (what the restoration "
                             "removed; positive where it lowered the intensity)",
                             "raw_layer": raw_layer.name, "frames": list(frames) if frames
                             else None, **what}}
    return {"name": f"{raw_layer.name} [removed]", "scale": scale,
            "translate": tuple(translate), "colormap": RESIDUAL_COLORMAP,
            "contrast_limits": (-lim, lim), "metadata": meta, "blending": "translucent"}


def add_residual(viewer: Any, raw_layer: Any, residual: np.ndarray, what: dict,
                 frames: tuple[int, int] | None = None) -> Any:
    """Add ``<raw> [removed]`` to ``viewer`` (a new layer, unique name)."""
    kw = residual_layer_kwargs(raw_layer, residual, what, frames)
    kw["name"] = unique_name(viewer, kw["name"])
    data = residual if hasattr(residual, "dask") else np.asarray(residual, np.float32)
    return viewer.add_image(data, **kw)
