"""napari reader for TIFF stacks (*.tif, *.tiff) and zarr/OME-Zarr stores (*.zarr, *.ome.zarr):
keeps the file's axes and pixel sizes (OME-TIFF PhysicalSizeX/Y/Z, ImageJ spacing and
resolution tags, OME-Zarr coordinateTransformations: scale and translation). Large files come
back lazy (a memory map, or a dask array over a compressed TIFF or a zarr store), never read
whole.

Acquisition formats (:mod:`napari_neurorestore.core.acquisition`): a ScanImage TIFF with
several channels or planes gives one layer per channel, never one interleaved stack; a
Scanbox ``.sbx`` likewise; a suite2p plane folder (``ops.npy`` + ``data.bin``) its registered
movie.

ROI files (suite2p ``stat.npy``, CaImAn ``.hdf5``/``.h5``, NWB ``.nwb``, Fiji/ImageJ
``.roi`` and ``RoiSet.zip``) open as a Labels layer (see
:mod:`napari_neurorestore.core.traces.roi_files`), which the ROI traces dock takes as is."""

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
    if os.path.isdir(str(path)) or name.endswith((".sbx", "data.bin")):
        from .core.acquisition import is_suite2p_folder

        folder = str(path)[: -len("data.bin")] if name.endswith("data.bin") else str(path)
        if name.endswith(".sbx") or is_suite2p_folder(folder or "."):
            return read_acquisition_layers
        return None
    if name.endswith((".npy", ".roi", ".zip", ".h5", ".hdf5", ".nwb")):
        from .core.traces.roi_files import roi_file_format

        return read_rois_layer if roi_file_format(path) is not None else None
    if not name.endswith((".tif", ".tiff")):
        return None
    return read_tiff_layer


def read_acquisition_layers(path, layers=None):
    """One lazy image layer per channel of a ScanImage TIFF or Scanbox file ((t, y, x), or
    (t, z, y, x) with several planes), or the registered movie of a suite2p plane folder."""
    from .core.acquisition import acquisition_layers

    layers = acquisition_layers(path) if layers is None else layers
    return [(data, {"name": name, "metadata": {"axes": axes, "source_path": str(path)}},
             "image") for data, name, axes in layers]


def read_tiff_layer(path):
    import tifffile

    from .core.acquisition import acquisition_layers
    from .core.io import read_tiff

    layers = acquisition_layers(path)  # ScanImage: never one interleaved stack
    if layers is not None:
        return read_acquisition_layers(path, layers)
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
    from .core.arrays import PROGRESS_ATTR
    from .core.io import read_array
    from .core.zarr_io import zarr_attrs, zarr_geometry

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


def _viewer_frames() -> list[tuple[int, int]]:
    """The (y, x) frames of the image layers open in napari's current viewer, newest first."""
    try:
        from napari import current_viewer

        viewer = current_viewer()
    except Exception:
        return []
    if viewer is None:
        return []
    frames = []
    for layer in reversed(list(viewer.layers)):
        shape = getattr(getattr(layer, "data", None), "shape", ())
        if type(layer).__name__ == "Image" and len(shape) >= 2:
            frames.append((int(shape[-2]), int(shape[-1])))
    return frames


def read_rois_layer(path):
    """The ROIs of a suite2p, CaImAn, NWB or ImageJ file as a Labels layer (y, x) on the
    file's frame size. ImageJ ROI files hold no frame size: their labels take the frame of
    the newest open image that holds them all, else the ROIs' extent."""
    from pathlib import Path

    from .core.traces.roi_files import read_roi_file

    rf = read_roi_file(path)
    labels = rf.labels
    if rf.frame_shape is None:
        for frame in _viewer_frames():
            try:
                labels = rf.for_frame(frame)
                break
            except ValueError:
                continue
    p = Path(str(path))
    name = f"{p.parent.name} ROIs" if p.name.lower() == "stat.npy" else f"{p.stem} ROIs"
    meta = {"source_path": str(path), "roi_format": rf.format, "messages": rf.messages,
            "frame_shape": rf.frame_shape}
    return [(labels, {"name": name, "metadata": meta}, "labels")]
