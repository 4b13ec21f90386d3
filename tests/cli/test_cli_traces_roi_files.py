"""`neurorestore traces --rois` with suite2p, CaImAn, NWB and ImageJ ROI files: the same
traces as the same masks given as a label image; the napari reader gives a Labels layer."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import roifile
import tifffile
from roi_fixtures import LX, LY, caiman, imagej_rois, nwb, suite2p, truth

from napari_neurorestore.cli import main


def _rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], float)


@pytest.fixture
def movie(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(60)[:, None, None]
    data = 200 + 30 * rng.random((60, LY, LX)) + 50 * (truth() > 0) * np.sin(t / 5.0) ** 2
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data.astype(np.float32), metadata={"axes": "TYX"})
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(labels, truth())
    return path, labels


def _file(kind, tmp_path):
    lab = truth()
    if kind == "suite2p":
        return suite2p(tmp_path / "plane0", lab, iscell=(1, 1, 1))
    if kind == "caiman":
        return caiman(tmp_path / "results.hdf5", lab)
    if kind == "nwb":
        return nwb(tmp_path / "rois.nwb", lab)
    path = tmp_path / "RoiSet.zip"
    roifile.roiwrite(path, imagej_rois(lab))
    return path


@pytest.mark.parametrize("kind", ["suite2p", "caiman", "nwb", "imagej"])
def test_roi_files_give_the_label_images_traces(kind, movie, tmp_path, capsys):
    path, labels = movie
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert main(["traces", str(path), "--rois", str(labels), "-o", str(ref)]) == 0
    assert main(["traces", str(path), "--rois", str(_file(kind, tmp_path)), "-o", str(out)]) == 0
    head_ref, a = _rows(ref)
    head, b = _rows(out)
    assert head == head_ref and "movie:roi3:dFF" in head
    np.testing.assert_allclose(b, a, atol=1e-6)
    assert "3 ROIs" in capsys.readouterr().out


def test_suite2p_non_cells_on_request(movie, tmp_path, capsys):
    path, _ = movie
    stat = suite2p(tmp_path / "plane0", truth())  # ROI 2 is not a cell
    out = tmp_path / "o.csv"
    assert main(["traces", str(path), "--rois", str(stat), "-o", str(out)]) == 0
    head, _ = _rows(out)
    assert "movie:roi2:F" not in head and "movie:roi3:F" in head
    captured = capsys.readouterr()
    assert "2 of 3 suite2p ROIs are cells" in captured.err
    assert main(["traces", str(path), "--rois", str(stat), "--all-rois", "-o", str(out),
                 "--overwrite"]) == 0
    assert "movie:roi2:F" in _rows(out)[0]


def test_a_frame_size_mismatch_exits_2_in_one_line(tmp_path, capsys):
    big = tmp_path / "big.tif"
    tifffile.imwrite(big, np.ones((30, LY + 4, LX), np.float32), metadata={"axes": "TYX"})
    rois = caiman(tmp_path / "results.hdf5", truth())
    assert main(["traces", str(big), "--rois", str(rois), "-o", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "results.hdf5" in err
    assert f"{LY}x{LX}" in err and f"{LY + 4}x{LX}" in err


@pytest.mark.parametrize("kind", ["suite2p", "caiman", "nwb", "imagej"])
def test_napari_reader_gives_a_labels_layer(kind, tmp_path):
    from napari_neurorestore._reader import napari_get_reader

    path = _file(kind, tmp_path)
    reader = napari_get_reader(str(path))
    assert reader is not None
    (data, kwargs, layer_type), = reader(str(path))
    assert layer_type == "labels" and data.dtype == np.int32
    expect = truth()
    if kind == "imagej":  # no frame size in the file (no viewer open): the ROIs' extent
        expect = expect[: data.shape[0], : data.shape[1]]
    np.testing.assert_array_equal(data, expect)
    assert kwargs["metadata"]["roi_format"] == kind


def test_napari_reader_leaves_other_zip_h5_and_npy_files_alone(tmp_path):
    import zipfile

    import h5py

    from napari_neurorestore._reader import napari_get_reader

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("a.txt", "x")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = 1
    np.save(tmp_path / "F.npy", np.zeros(3))
    for name in ("a.zip", "a.h5", "F.npy"):
        assert napari_get_reader(str(tmp_path / name)) is None


def test_traces_of_a_suite2p_plane_folder_with_its_own_rois(movie, tmp_path):
    from acquisition_fixtures import suite2p_plane

    path, labels = movie
    data = np.round(tifffile.imread(path)).astype(np.int16)
    folder = suite2p_plane(tmp_path / "suite2p" / "plane0", data)
    stat = suite2p(folder, truth(), iscell=(1, 1, 1))  # writes ops.npy again: same Ly, Lx
    np.save(folder / "ops.npy", {"Ly": LY, "Lx": LX, "nframes": len(data)}, allow_pickle=True)
    tif = tmp_path / "int.tif"
    tifffile.imwrite(tif, data, metadata={"axes": "TYX"})
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["traces", str(folder), "--rois", str(stat), "-o", str(a)]) == 0
    assert main(["traces", str(tif), "--rois", str(labels), "-o", str(b)]) == 0
    np.testing.assert_allclose(_rows(a)[1], _rows(b)[1], atol=1e-6)
