"""Pixel sizes through the pipeline: the input's pixel size, on the output's grid, in
OME-Zarr and TIFF outputs (upsampling: size / f and the origin shift)."""

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli.main import main

UP = ["--factor", "2", "--steps", "2", "--patch-size", "12", "--width", "4", "--depth", "1",
      "--seed", "0", "--device", "cpu", "-q"]


@pytest.fixture
def calibrated(tmp_path):
    """A (y, x) image of 0.5 µm pixels (ImageJ TIFF)."""
    path = tmp_path / "img.tif"
    img = np.random.default_rng(0).poisson(20, (32, 32)).astype(np.uint16)
    tifffile.imwrite(path, img, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "um"})
    return path


def test_upsampled_ome_zarr_carries_scale_and_origin_shift(calibrated, tmp_path):
    pytest.importorskip("zarr")
    from napari_neurorestore.core.io import read_array
    from napari_neurorestore.core.zarr_io import zarr_geometry

    out = tmp_path / "up.ome.zarr"
    assert main(["upsample", str(calibrated), "-o", str(out), *UP]) == 0
    geo = zarr_geometry(out)
    assert geo["scale"] == pytest.approx([0.25, 0.25])
    assert geo["translate"] == pytest.approx([-0.125, -0.125])  # -(f - 1) / (2 f) * 0.5
    assert geo["units"] == {"Y": "micrometer", "X": "micrometer"}
    assert read_array(str(out), lazy=True)[0].shape == (64, 64)


def test_upsampled_tiff_carries_the_resolution(calibrated, tmp_path):
    from napari_neurorestore.core.ome import tiff_pixel_sizes

    out = tmp_path / "up.tif"
    assert main(["upsample", str(calibrated), "-o", str(out), *UP]) == 0
    with tifffile.TiffFile(out) as tf:
        sizes = tiff_pixel_sizes(tf)
        assert tf.series[0].shape == (64, 64)
    assert sizes["X"] == pytest.approx(0.25) and sizes["Y"] == pytest.approx(0.25)
    assert sizes["unit"] == "micrometer"


def test_output_geometry_of_an_unchanged_grid_and_an_uncalibrated_input(tmp_path):
    from napari_neurorestore.core.methods.base import Grid
    from napari_neurorestore.core.pixel_sizes import output_geometry

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, 8, 8), np.uint16))
    assert output_geometry(plain, "QYX", 3, Grid((4, 8, 8)), tmp_path / "o.tif") == {}
    geo = output_geometry(plain, "QYX", 3, Grid((4, 16, 16), (1, 0.5, 0.5), (0, -0.25, -0.25)),
                          tmp_path / "o.ome.zarr")  # in input pixels
    assert geo["scale"] == [1.0, 0.5, 0.5] and geo["translate"] == [0.0, -0.25, -0.25]
