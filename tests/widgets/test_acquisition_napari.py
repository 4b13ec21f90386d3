"""Acquisition and ROI files open in napari through our reader (headless viewer under
xvfb-run): ScanImage channels as separate layers, a suite2p plane folder, ROI files as
Labels layers (an ImageJ RoiSet on the open movie's frame)."""

from __future__ import annotations

import numpy as np
import pytest
import roifile
from acquisition_fixtures import scanimage_2ch_3planes, suite2p_plane
from roi_fixtures import LX, LY, imagej_rois, suite2p, truth

pytestmark = pytest.mark.gui


def test_scanimage_channels_and_suite2p_folder_open_in_napari(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    si = scanimage_2ch_3planes(tmp_path / "si.tif")
    layers = viewer.open(str(si), plugin="napari-neurorestore")
    assert [lay.name for lay in layers] == ["si ch1", "si ch2"]
    assert all(lay.data.shape == (4, 3, 5, 6) for lay in layers)
    movie = np.arange(3 * LY * LX, dtype=np.int16).reshape(3, LY, LX)
    folder = suite2p_plane(tmp_path / "plane0", movie)
    layer = viewer.open(str(folder), plugin="napari-neurorestore")[0]
    np.testing.assert_array_equal(np.asarray(layer.data), movie)


def test_roi_files_open_as_labels_on_the_movies_frame(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    stat = suite2p(tmp_path / "plane0", truth(), iscell=(1, 1, 1))
    lab = viewer.open(str(stat), plugin="napari-neurorestore")[0]
    assert type(lab).__name__ == "Labels" and lab.name == "plane0 ROIs"
    np.testing.assert_array_equal(lab.data, truth())
    viewer.add_image(np.zeros((5, LY + 3, LX + 4), np.float32), name="movie")
    zpath = tmp_path / "RoiSet.zip"
    roifile.roiwrite(zpath, imagej_rois(truth()))
    ij = viewer.open(str(zpath), plugin="napari-neurorestore")[0]
    assert ij.data.shape == (LY + 3, LX + 4)  # the open movie's frame, not the ROIs' extent
    np.testing.assert_array_equal(ij.data[:LY, :LX], truth())
    assert not ij.data[LY:].any() and not ij.data[:, LX:].any()
