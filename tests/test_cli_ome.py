"""`neurorestore denoise ... -o OUT.ome.zarr` writes a valid OME-Zarr (NGFF 0.4) image."""

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core import zarr_io

zarr = pytest.importorskip("zarr")


def test_denoise_writes_ome_zarr(tmp_path, tiny_movie):
    src = tmp_path / "m.tif"
    tifffile.imwrite(src, tiny_movie.raw[:24])
    out = tmp_path / "m.ome.zarr"
    assert main(["denoise", str(src), "-o", str(out), "--train-seconds", "1", "--epochs", "1",
                 "-q"]) == 0
    group = zarr.open_group(str(out), mode="r")
    assert group.attrs["multiscales"][0]["version"] == "0.4"
    assert group.attrs["neurorestore"]["method"] == "denoise"
    assert zarr_io.output_progress(out)["complete"]
    arr, axes = zarr_io.open_zarr(out)
    assert axes == "TYX" and arr.shape == (24, 40, 40) and np.isfinite(np.asarray(arr)).all()
    models = pytest.importorskip("ome_zarr_models.v04.image")
    models.Image.from_zarr(group)
