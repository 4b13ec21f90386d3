"""Issue 27, item 4: ``neurorestore traces ... -o traces.nwb`` writes F and ΔF/F of the raw
and restored movies as RoiResponseSeries, tied to the NWB file's PlaneSegmentation when the
ROIs came from one (a copy of it: the input is never written), else to a new one built
from the label masks; read back with pynwb, they equal the CSV's values."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
import tifffile
from roi_fixtures import LX, LY, nwb, truth

from napari_neurorestore.cli import main

pynwb = pytest.importorskip("pynwb")  # the 'rois' extra, installed with the dev tools


def _csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return {h: np.array([float(r[i]) for r in rows[1:]]) for i, h in enumerate(rows[0])}


@pytest.fixture
def movies(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(50)[:, None, None]
    data = 200 + 30 * rng.random((50, LY, LX)) + 50 * (truth() > 0) * np.sin(t / 5.0) ** 2
    raw, restored = tmp_path / "raw.tif", tmp_path / "restored.tif"
    tifffile.imwrite(raw, data.astype(np.float32))
    tifffile.imwrite(restored, (0.5 * data + 100).astype(np.float32))
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(labels, truth())
    return raw, restored, labels


def _series(nwbfile):
    mod = nwbfile.processing["neurorestore"]
    return mod["Fluorescence"].roi_response_series, mod["DfOverF"].roi_response_series


def _check_against_csv(nwbfile, cols, ids):
    fl, dff = _series(nwbfile)
    assert sorted(fl) == sorted(dff) == ["raw", "restored"]
    for name in ("raw", "restored"):
        f, d = fl[name], dff[name]
        assert f.data.shape == (50, len(ids)) and f.rate == 30.0
        for j, rid in enumerate(ids):
            np.testing.assert_allclose(f.data[:, j], cols[f"{name}:roi{rid}:F"], rtol=1e-12,
                                       atol=1e-9)
            np.testing.assert_allclose(d.data[:, j], cols[f"{name}:roi{rid}:dFF"],
                                       rtol=1e-12, atol=1e-9)
    return fl["raw"].rois


def test_label_image_rois_get_a_new_plane_segmentation(movies, tmp_path):
    raw, restored, labels = movies
    args = ["traces", str(raw), "--rois", str(labels), "--compare", str(restored),
            "--fps", "30"]
    assert main([*args, "-o", str(tmp_path / "t.csv")]) == 0
    assert main([*args, "-o", str(tmp_path / "t.nwb")]) == 0
    cols = _csv(tmp_path / "t.csv")
    lab = truth()
    with pynwb.NWBHDF5IO(str(tmp_path / "t.nwb"), "r") as io:
        f = io.read()
        region = _check_against_csv(f, cols, [1, 2, 3])
        ps = region.table
        assert list(region.data[:]) == [0, 1, 2] and list(ps.id[:]) == [1, 2, 3]
        for j, rid in enumerate([1, 2, 3]):  # the rows are the label image's masks
            np.testing.assert_array_equal(ps["image_mask"][j] > 0, lab == rid)
    assert not list(tmp_path.glob("*.incomplete*"))


def test_nwb_rois_tie_the_traces_to_their_plane_segmentation(movies, tmp_path):
    raw, restored, _labels = movies
    src = nwb(tmp_path / "session.nwb", truth())
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    args = ["traces", str(raw), "--rois", str(src), "--compare", str(restored), "--fps", "30"]
    assert main([*args, "-o", str(tmp_path / "t.csv")]) == 0
    assert main([*args, "-o", str(tmp_path / "t.nwb")]) == 0
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # the input is untouched
    cols = _csv(tmp_path / "t.csv")
    with pynwb.NWBHDF5IO(str(tmp_path / "t.nwb"), "r") as io:
        f = io.read()
        region = _check_against_csv(f, cols, [1, 2, 3])
        seg = f.processing["ophys"]["ImageSegmentation"]["cells"]
        assert region.table is seg  # the imported segmentation itself, not a new one
        assert list(region.data[:]) == [0, 1, 2]
        assert "movie" in f.acquisition  # a copy of the session, traces added
    # the output is never the input
    assert main([*args, "-o", str(src), "--overwrite"]) == 2


def test_nwb_output_refuses_volume_rois(tmp_path, capsys):
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "v.tif", rng.random((10, 3, 8, 8)).astype(np.float32),
                     photometric="minisblack")
    lab = np.zeros((3, 8, 8), np.int32)
    lab[1, 2:5, 2:5] = 1
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    assert main(["traces", str(tmp_path / "v.tif"), "--rois", str(tmp_path / "l.tif"), "-o",
                 str(tmp_path / "t.nwb")]) == 2
    assert "NWB output takes 2D ROIs" in capsys.readouterr().err
    assert not (tmp_path / "t.nwb").exists()
