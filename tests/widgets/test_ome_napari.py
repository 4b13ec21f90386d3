"""OME-Zarr and calibrated TIFF outputs open in napari, through our reader, with their scale
(headless viewer under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore.core import io
from napari_neurorestore.core.zarr_io import ChunkRecorder

pytestmark = pytest.mark.gui
pytest.importorskip("zarr")


def test_ome_zarr_opens_in_napari_with_its_scale(make_napari_viewer, tmp_path):
    p = tmp_path / "up.ome.zarr"
    scale, translate = [3.0, 1 / 3, 1 / 3], [0.0, -1 / 3, -1 / 3]
    z = io.open_output(p, (4, 12, 12), axes="ZYX", scale=scale, translate=translate,
                       space_unit="micrometer",
                       metadata={"neurorestore": {"method": "upsample"}})
    z[:] = np.random.default_rng(0).random((4, 12, 12), dtype=np.float32)
    ChunkRecorder(z)(0, 4)  # recorded as the core does: complete (else it opens as partial)
    viewer = make_napari_viewer()
    layers = viewer.open(str(p), plugin="napari-neurorestore")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.name == "up"
    np.testing.assert_allclose(layer.scale, scale)
    np.testing.assert_allclose(layer.translate, translate)
    assert layer.metadata["neurorestore"]["method"] == "upsample"
    np.testing.assert_array_equal(np.asarray(layer.data), np.asarray(z))


def test_calibrated_tiff_opens_in_napari_with_its_scale(make_napari_viewer, tmp_path):
    p = tmp_path / "vol.tif"
    mm = io.open_output(p, (3, 8, 8), axes="ZYX", scale=[2.0, 0.5, 0.5], space_unit="um")
    mm[:] = 1.0
    del mm
    viewer = make_napari_viewer()
    layer = viewer.open(str(p), plugin="napari-neurorestore")[0]
    np.testing.assert_allclose(layer.scale, [2.0, 0.5, 0.5])
