"""napari writer: save an image layer as a float32 TIFF (never overwrites silently: napari
asks before overwriting, and the core refuses an existing path)."""

from __future__ import annotations


def write_image(path: str, data, attributes: dict) -> list[str]:
    import numpy as np
    import tifffile

    from .core.io import check_output_path

    p = check_output_path(path, overwrite=False)
    arr = np.asarray(data, dtype=np.float32)
    md = {"name": attributes.get("name")}
    tifffile.imwrite(p, arr, metadata={k: v for k, v in md.items() if v})
    return [str(p)]
