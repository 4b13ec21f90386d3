"""The user's ROIs from suite2p, CaImAn, NWB and ImageJ files, each fixture written by the
format's own library (numpy in suite2p's layout, h5py in CaImAn's, pynwb, roifile)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from roi_fixtures import LX, LY
from roi_fixtures import caiman as _caiman
from roi_fixtures import imagej_rois as _imagej_rois
from roi_fixtures import nwb as _nwb
from roi_fixtures import suite2p as _suite2p
from roi_fixtures import truth as _truth

from napari_neurorestore.core import traces as tr
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.traces.roi_files import read_roi_file, roi_file_format


def _movie():
    rng = np.random.default_rng(0)
    return (100 + 20 * rng.random((40, LY, LX))).astype(np.float32)


def _same_traces(labels, truth):
    movie = _movie()
    a = tr.compute_traces(movie, labels).layers[0]
    b = tr.compute_traces(movie, truth).layers[0]
    np.testing.assert_allclose(a.f, b.f, atol=1e-6)
    np.testing.assert_allclose(a.dff, b.dff, atol=1e-6)


# --------------------------------------------------------------------------- suite2p


def test_suite2p_cells_only_by_default_all_on_request(tmp_path):
    truth = _truth()
    path = _suite2p(tmp_path / "plane0", truth)
    assert roi_file_format(path) == "suite2p"
    cells = read_roi_file(path)
    assert cells.frame_shape == (LY, LX) and cells.labels.dtype == np.int32
    expect = np.where(truth == 2, 0, truth)  # ROI 2 is not a cell
    np.testing.assert_array_equal(cells.labels, expect)
    allr = read_roi_file(path, all_rois=True)
    np.testing.assert_array_equal(allr.labels, truth)  # lam 0 and overlap pixels left out
    assert list(allr.ids) == [1, 2, 3]
    _same_traces(allr.labels, truth)


def test_suite2p_without_ops_or_iscell(tmp_path):
    path = _suite2p(tmp_path / "p", _truth())
    (tmp_path / "p" / "iscell.npy").unlink()
    r = read_roi_file(path)
    assert list(r.ids) == [1, 2, 3] and any("no iscell.npy" in m for m in r.messages)
    (tmp_path / "p" / "ops.npy").unlink()
    with pytest.raises(InputError, match="Ly"):
        read_roi_file(path)


# --------------------------------------------------------------------------- CaImAn


def test_caiman_hdf5(tmp_path):
    truth = _truth()
    path = _caiman(tmp_path / "results.hdf5", truth)
    assert roi_file_format(path) == "caiman"
    r = read_roi_file(path)
    assert r.frame_shape == (LY, LX)
    np.testing.assert_array_equal(r.labels, truth)
    _same_traces(r.labels, truth)
    part = read_roi_file(_caiman(tmp_path / "b.h5", truth, accepted=[0, 2]))
    assert list(part.ids) == [1, 3]
    assert list(read_roi_file(tmp_path / "b.h5", all_rois=True).ids) == [1, 2, 3]


def test_an_hdf5_that_is_not_caiman_is_not_an_roi_file(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data"] = np.zeros(3)
    assert roi_file_format(tmp_path / "other.h5") is None
    with pytest.raises(InputError, match="not an ROI file"):
        read_roi_file(tmp_path / "other.h5")


# --------------------------------------------------------------------------- NWB


@pytest.mark.parametrize("kind", ["pixel", "image"])
def test_nwb_plane_segmentation(tmp_path, kind):
    truth = _truth()
    path = _nwb(tmp_path / f"{kind}.nwb", truth, kind)
    assert roi_file_format(path) == "nwb"
    r = read_roi_file(path)
    assert r.frame_shape == (LY, LX)
    np.testing.assert_array_equal(r.labels, truth)
    _same_traces(r.labels, truth)


def test_nwb_pixel_masks_written_as_yx_like_suite2p(tmp_path):
    truth = _truth()
    path = _nwb(tmp_path / "s2p.nwb", truth, "pixel", yx=True)
    r = read_roi_file(path, pixel_mask_order="yx")
    np.testing.assert_array_equal(r.labels, truth)
    # read as the schema's (x, y), the masks fall outside the frame: read as (y, x), said so
    guessed = read_roi_file(path)
    np.testing.assert_array_equal(guessed.labels, truth)
    assert any("(y, x" in m for m in guessed.messages)


# --------------------------------------------------------------------------- ImageJ


def test_imagej_roiset_zip_and_single_roi(tmp_path):
    import roifile

    truth = _truth()
    rois = _imagej_rois(truth)
    zpath = tmp_path / "RoiSet.zip"
    roifile.roiwrite(zpath, rois)
    assert roi_file_format(zpath) == "imagej"
    r = read_roi_file(zpath)
    assert r.frame_shape is None  # ImageJ files do not say
    labels = r.for_frame((LY, LX))
    np.testing.assert_array_equal(labels, truth)
    _same_traces(labels, truth)
    single = tmp_path / "one.roi"
    rois[2].tofile(single)
    np.testing.assert_array_equal(read_roi_file(single).for_frame((LY, LX)),
                                  np.where(truth == 3, 1, 0))
    with pytest.raises(InputError, match=r"RoiSet.zip.*reach 18x23.*10x10"):
        r.for_frame((10, 10))


def test_a_zip_without_roi_files_is_not_an_roi_file(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("a.txt", "hello")
    assert roi_file_format(tmp_path / "x.zip") is None


# --------------------------------------------------------------------------- rules
def test_a_frame_size_that_differs_from_the_movies_is_refused_in_one_line(tmp_path):
    path = _caiman(tmp_path / "results.hdf5", _truth())
    r = read_roi_file(path)
    with pytest.raises(InputError) as e:
        r.check_frame((30, LY, 40))
    msg = str(e.value)
    assert "\n" not in msg and "results.hdf5" in msg
    assert f"{LY}x{LX}" in msg and f"{LY}x40" in msg


def test_overlapping_pixels_belong_to_no_roi(tmp_path):
    lab = _truth()
    path = _nwb(tmp_path / "o.nwb", lab, "image")
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "a") as io:  # ROI 3 grows over part of ROI 1
        nwb = io.read()
        ps = nwb.processing["ophys"]["ImageSegmentation"]["cells"]
        m = np.zeros((LY, LX))
        m[2:4, 3:5] = 1.0
        ps.add_roi(image_mask=m)
        io.write(nwb)
    r = read_roi_file(path)
    expect = lab.copy()
    expect[2:4, 3:5] = 0
    np.testing.assert_array_equal(r.labels, expect)
    assert any("several ROIs" in m for m in r.messages)
    assert any("no pixel of their own" in m for m in r.messages)  # ROI 4 lost them all


def test_a_missing_library_names_the_extra(tmp_path, monkeypatch):
    path = _caiman(tmp_path / "results.hdf5", _truth())
    real = importlib.import_module

    def no_h5py(name, *a, **k):
        if name.split(".")[0] == "h5py":
            raise ImportError("No module named 'h5py'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_h5py)
    with pytest.raises(ImportError, match=r'pip install "napari-neurorestore\[rois\]"'):
        read_roi_file(path, all_rois=True)
