"""The input's pixel sizes, carried to the output's grid (``open_output``'s ``scale``,
``translate`` and units), so that ``-o OUT.ome.zarr`` and ``-o OUT.tif`` hold the right
pixel size and origin (upsampling: size / f and the shift of the first pixel's centre)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_TIFF = (".tif", ".tiff", ".btf", ".tf8")


def input_geometry(path: str | os.PathLike, axes: str, ndim: int) -> dict[str, Any] | None:
    """``{"scale", "translate", "space_unit", "time_unit"}`` per axis of the opened input
    (TIFF: OME/ImageJ/resolution tags; zarr: OME-Zarr's coordinate transformations), or
    None when it records no pixel size."""
    p = Path(path)
    axes = str(axes or "").upper()
    if p.suffix.lower() in _TIFF:
        import tifffile

        from .ome import tiff_pixel_sizes

        with tifffile.TiffFile(p) as tf:
            sizes = tiff_pixel_sizes(tf)
        if len(axes) != ndim or not any(a in sizes for a in "XYZT"):
            return None
        return {"scale": [float(sizes.get(a, 1.0)) for a in axes], "translate": [0.0] * ndim,
                "space_unit": sizes.get("unit"),
                "time_unit": "second" if "T" in sizes and "T" in axes else None}
    try:
        from .zarr_io import zarr_geometry

        geo = zarr_geometry(p)
    except Exception:  # a plain zarr array, or no zarr installed
        return None
    if geo is None or len(geo["scale"]) != ndim:
        return None
    units = geo["units"] or {}
    space = next((units[a] for a in "XYZ" if a in units), None)
    return {"scale": [float(s) for s in geo["scale"]],
            "translate": [float(t) for t in geo["translate"]], "space_unit": space,
            "time_unit": units.get("T")}


def output_geometry(path: str | os.PathLike, axes: str, ndim: int, grid: Any,
                    output: str | os.PathLike) -> dict[str, Any]:
    """``open_output``'s keyword arguments (``scale``, ``translate``, ``space_unit``,
    ``time_unit``) for the output of ``grid`` (a :class:`~.methods.base.Grid`: scale
    factors and origin shift, in input pixels, relative to the input). Empty when the input
    records no pixel size, except for an ``*.ome.zarr`` of a changed grid (then in pixels
    of the input)."""
    geo = input_geometry(path, axes, ndim)
    changed = grid.scale_factors is not None or grid.translate_shift is not None
    if geo is None:
        if not (changed and str(output).lower().rstrip("/\\").endswith(".ome.zarr")):
            return {}
        geo = {"scale": [1.0] * ndim, "translate": [0.0] * ndim, "space_unit": None,
               "time_unit": None}
    if len(grid.shape) != ndim:
        return {}
    f = list(grid.scale_factors or [1.0] * ndim)[-ndim:]
    d = list(grid.translate_shift or [0.0] * ndim)[-ndim:]
    f = [1.0] * (ndim - len(f)) + [float(v) for v in f]
    d = [0.0] * (ndim - len(d)) + [float(v) for v in d]
    s, t = geo["scale"], geo["translate"]
    return {"scale": [si * fi for si, fi in zip(s, f, strict=True)],
            "translate": [ti + di * si for ti, di, si in zip(t, d, s, strict=True)],
            "space_unit": geo["space_unit"], "time_unit": geo["time_unit"]}
