"""napari writer: save an image layer as a float32 TIFF (never overwrites silently: napari
asks before overwriting, and the core refuses an existing path). A layer with a scale other
than 1 is saved as an ImageJ hyperstack with its pixel sizes (resolution tags, z spacing and
unit), so Fiji and our reader open it with the same scale."""

from __future__ import annotations


def _space_unit(attributes: dict) -> str | None:
    """The layer's spatial unit: napari's ``units`` (>= 0.6), or what our reader recorded."""
    meta = attributes.get("metadata") or {}
    units = attributes.get("units")
    if units:
        u = str(list(units)[-1])
        if u and u not in ("pixel", "px"):
            return u
    if meta.get("unit"):
        return str(meta["unit"])
    mu = meta.get("units") or {}
    return next((str(mu[a]) for a in "XYZ" if a in mu), None)


def write_image(path: str, data, attributes: dict) -> list[str]:
    import numpy as np
    import tifffile

    from .core.arrays import _default_axes
    from .core.io import _imagej_axes
    from .core.ome import tiff_scale_kwargs
    from .core.paths import check_output_path

    try:
        p = check_output_path(path, overwrite=False)
    except FileExistsError:  # napari's Save dialog: GUI words, not the command line's
        raise FileExistsError(f"{path} already exists: this writer never replaces a file; "
                              f"choose another name (or move the existing file away)") from None
    arr = np.asarray(data, dtype=np.float32)
    md = {"name": attributes.get("name")}
    md = {k: v for k, v in md.items() if v}
    scale = attributes.get("scale")
    kw: dict = {}
    if scale is not None and len(scale) == arr.ndim and any(float(s) != 1.0 for s in scale):
        axes = str((attributes.get("metadata") or {}).get("axes") or "").upper()
        if len(axes) != arr.ndim:
            axes = _default_axes(arr.ndim)
        try:
            unit = _space_unit(attributes)
            kw = tiff_scale_kwargs(axes, [float(s) for s in scale], unit)
        except ValueError:  # a unit Fiji would not know: pixel sizes without a unit
            kw = tiff_scale_kwargs(axes, [float(s) for s in scale], None)
        if _imagej_axes(axes, arr.ndim):
            md = {"axes": axes, **kw.pop("metadata")}
        else:
            kw = {"resolution": kw["resolution"]}
    tifffile.imwrite(p, arr, photometric="minisblack", metadata=md, **kw)
    return [str(p)]
