"""napari reader for TIFF stacks (*.tif, *.tiff) and zarr/OME-Zarr stores (*.zarr): keeps the
file's axes and pixel sizes. Large files come back lazy (a memory map, or a dask array over a
compressed TIFF or a zarr store), never read whole."""

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


def _pixel_sizes(tf, axes: str) -> dict[str, float]:
    """Pixel sizes from ImageJ metadata (spacing for z) or resolution tags, when present."""
    sizes: dict[str, float] = {}
    try:
        page = tf.pages[0]
        ij = tf.imagej_metadata or {}
        xr = page.tags.get("XResolution")
        yr = page.tags.get("YResolution")
        if xr is not None:
            num, den = xr.value
            if num:
                sizes["X"] = den / num
        if yr is not None:
            num, den = yr.value
            if num:
                sizes["Y"] = den / num
        if "spacing" in ij:
            sizes["Z"] = float(ij["spacing"])
        if "finterval" in ij:
            sizes["T"] = float(ij["finterval"])
    except Exception:
        return {}
    if sizes.get("X") == 1.0 and sizes.get("Y") == 1.0:
        sizes.pop("X"), sizes.pop("Y")
    return sizes


def read_tiff_layer(path):
    import tifffile

    from .core.io import read_tiff

    data, axes = read_tiff(path, lazy=True)
    with tifffile.TiffFile(path) as tf:
        sizes = _pixel_sizes(tf, axes)
    axes = axes.upper()
    if len(axes) != data.ndim:
        axes = "TYX"[-data.ndim:] if data.ndim <= 3 else "TZYX"[-data.ndim:]
    scale = [sizes.get(a, 1.0) if a in "ZYX" else 1.0 for a in axes]
    name = os.path.splitext(os.path.basename(str(path)))[0]
    meta = {"axes": axes, "source_path": str(path)}
    return [(data, {"name": name, "scale": scale, "metadata": meta}, "image")]


def read_zarr_layer(path):
    """A zarr array, an OME-Zarr image or a napari-neurorestore output store, as a lazy
    (dask) layer. A store still being written shows NaN for frames not yet restored."""
    from .core.io import PROGRESS_ATTR, read_array

    path = str(path).rstrip("/\\")
    data, axes = read_array(path, lazy=True)
    meta = {"axes": axes, "source_path": path}
    try:
        import zarr

        attrs = dict(zarr.open(path, mode="r").attrs)
        for key in ("neurorestore", PROGRESS_ATTR):
            if key in attrs:
                meta[key] = attrs[key]
    except Exception:
        pass
    name = os.path.splitext(os.path.basename(path))[0]
    return [(data, {"name": name, "metadata": meta}, "image")]
