"""`neurorestore report`: the trust report from the command line, on tiny simulated data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core.simulate import simulate_calcium_movie


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=120, shape=(48, 48), n_cells=8, seed=3)


@pytest.fixture
def files(tmp_path, sim):
    raw, clean, rois = tmp_path / "raw.tif", tmp_path / "clean.tif", tmp_path / "rois.tif"
    tifffile.imwrite(raw, sim.raw, metadata={"axes": "TYX"})
    tifffile.imwrite(clean, sim.clean.astype(np.float32), metadata={"axes": "TYX"})
    tifffile.imwrite(rois, sim.labels.astype(np.uint16))
    return raw, clean, rois


def test_clean_truth_passes_and_writes_html_and_json(files, tmp_path, capsys):
    raw, clean, _ = files
    out, js = tmp_path / "r.html", tmp_path / "r.json"
    rc = main(["report", str(raw), str(clean), "-o", str(out), "--json", str(js),
               "--no-transients"])
    printed = capsys.readouterr().out
    assert rc == 0
    d = json.loads(js.read_text())
    assert d["flags"] == [] and d["method"] is None
    assert "data:image/png;base64," in out.read_text()
    assert "no warnings" in printed
    assert printed.count("PASS ") >= 4 and "WARN" not in printed


def test_raw_as_output_is_flagged_but_exits_0(files, tmp_path, capsys):
    raw, _, _ = files
    js = tmp_path / "r.json"
    rc = main(["report", str(raw), str(raw), "-o", str(tmp_path / "r.html"), "--json", str(js),
               "--no-transients"])
    assert rc == 0
    assert "removed_nothing" in json.loads(js.read_text())["flags"]
    assert "WARN  removed_nothing" in capsys.readouterr().out


def test_provenance_gives_the_method_and_rois_feed_the_transients(files, tmp_path, sim, capsys):
    from napari_neurorestore.core.io import open_output_tiff

    raw, _, rois = files
    ours = tmp_path / "ours.tif"
    md = {"neurorestore": {"method": "denoise", "params": {"window": 5}, "train_seconds": 3.0}}
    mm = open_output_tiff(ours, sim.raw.shape, metadata=md)
    mm[:] = sim.clean
    mm.flush()
    del mm
    js = tmp_path / "r.json"
    rc = main(["report", str(raw), str(ours), "--rois", str(rois), "-o",
               str(tmp_path / "r.html"), "--json", str(js), "--max-frames", "100"])
    assert rc == 0, capsys.readouterr().err
    d = json.loads(js.read_text())
    assert d["method"] == "denoise" and d["metadata"]["params"] == {"window": 5}
    assert d["frames"] == [10, 110]
    assert len(d["transients"]) == int(sim.labels.max())
    assert "Transients" in (tmp_path / "r.html").read_text()


def test_bad_input_exits_2_and_writes_nothing(files, tmp_path, sim, capsys):
    raw, clean, _ = files
    out = tmp_path / "r.html"
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, sim.clean[:, :40, :40].astype(np.float32))
    assert main(["report", str(raw), str(small), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shape" in err and "--method" in err
    assert not out.exists()
    nan = tmp_path / "nan.tif"
    a = sim.clean.astype(np.float32)
    a[60, 5, 5] = np.nan
    tifffile.imwrite(nan, a)
    assert main(["report", str(raw), str(nan), "-o", str(out), "--no-transients"]) == 2
    assert "NaN" in capsys.readouterr().err and not out.exists()
    assert main(["report", str(raw), str(tmp_path / "nope.tif"), "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()


def test_existing_output_is_refused(files, tmp_path, capsys):
    raw, clean, _ = files
    out = tmp_path / "r.html"
    out.write_text("keep")
    assert main(["report", str(raw), str(clean), "-o", str(out), "--no-transients"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "keep"
    assert main(["report", str(raw), str(clean), "-o", str(out), "--no-transients",
                 "--overwrite"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
