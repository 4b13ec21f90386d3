"""napari reader for TIFF stacks (*.tif, *.tiff) and zarr/OME-Zarr stores (*.zarr, *.ome.zarr):
keeps the file's axes and pixel sizes (OME-TIFF PhysicalSizeX/Y/Z, ImageJ spacing and
resolution tags, OME-Zarr coordinateTransformations: scale and translation). Large files come
back lazy (a memory map, or a dask array over a compressed TIFF or a zarr store), never read
whole."""

from __future__ import annotations

import os


def napari_get_reader(path):
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, (str, os.PathLike)):
        return None
    name = str(path).lower().rstrip("/\\")
    if name.endswith(".zarr"):
        return read_zarr_layer
    if not name.endswith((".tif", ".tiff")):
        return None
    return read_tiff_layer


def read_tiff_layer(path):
    import tifffile

    from .core.io import read_tiff
    from .core.ome import tiff_pixel_sizes

    data, axes = read_tiff(path, lazy=True)
    with tifffile.TiffFile(path) as tf:
        sizes = tiff_pixel_sizes(tf)
    axes = axes.upper()
    if len(axes) != data.ndim:
        axes = "TYX"[-data.ndim:] if data.ndim <= 3 else "TZYX"[-data.ndim:]
    scale = [sizes.get(a, 1.0) if a in "ZYX" else 1.0 for a in axes]
    name = os.path.basename(str(path))
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    meta = {"axes": axes, "source_path": str(path)}
    if sizes.get("unit"):
        meta["unit"] = sizes["unit"]
    return [(data, {"name": name, "scale": scale, "metadata": meta}, "image")]


def read_zarr_layer(path):
    """A zarr array, an OME-Zarr image or a napari-neurorestore output store, as a lazy
    (dask) layer, with the OME-Zarr's pixel sizes as scale and its translation as translate.
    A store still being written shows NaN for frames not yet restored."""
    from .core.io import PROGRESS_ATTR, read_array, zarr_attrs, zarr_geometry

    path = str(path).rstrip("/\\")
    data, axes = read_array(path, lazy=True)
    meta = {"axes": axes, "source_path": path}
    kwargs: dict = {}
    try:
        geo = zarr_geometry(path)
    except Exception:
        geo = None
    if geo is not None and len(geo["scale"]) == data.ndim:
        kwargs = {"scale": geo["scale"], "translate": geo["translate"]}
        if geo["units"]:
            meta["units"] = geo["units"]
            space = [geo["units"][a] for a in "XYZ" if a in geo["units"]]
            if space:
                meta["unit"] = space[0]
    try:
        attrs = zarr_attrs(path)
        for key in ("neurorestore", PROGRESS_ATTR):
            if key in attrs:
                meta[key] = attrs[key]
    except Exception:
        pass
    name = os.path.basename(path)
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    rec = meta.get(PROGRESS_ATTR)
    if isinstance(rec, dict) and rec.get("complete") is False:  # an interrupted run's store
        unit = next((k[:-5] for k in rec if k.endswith("_done")), "frames")
        what = f"{rec.get(f'{unit}_done', '?')}/{rec.get(f'{unit}_total', '?')}"
        name += f" [partial {what}{'' if unit == 'frames' else ' ' + unit}]"
    return [(data, {"name": name, **kwargs, "metadata": meta}, "image")]
