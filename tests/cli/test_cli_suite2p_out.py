"""Issue 27, item 2: the suite2p round trip. ``neurorestore denoise suite2p/plane0 -o
denoised/plane0`` writes a new plane folder that suite2p reads (its ops' Ly, Lx, nframes,
reg_file pointing at our int16 data.bin of the right size, the other paths moved), and the
registered data.bin is byte-identical afterwards. suite2p itself runs on such a folder in
benchmarks/bench_suite2p.py (it needs its own environment)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from napari_neurorestore.cli.main import main
from napari_neurorestore.core import engine
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = ["--train-seconds", "0.5", "--epochs", "1", "--device", "cpu", "-q"]


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _load(p):
    return np.load(p, allow_pickle=True).item()


@pytest.fixture
def plane(tmp_path):
    """A suite2p 1.x plane folder as its registration leaves it (numpy, suite2p's layout):
    data.bin int16 (nframes, Ly, Lx), db.npy/settings.npy/reg_outputs.npy/ops.npy, and
    detection outputs of the raw movie."""
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    s = simulate_calcium_movie(n_frames=48, shape=(32, 40), n_cells=5, seed=2)
    folder = tmp_path / "suite2p" / "plane0"
    folder.mkdir(parents=True)
    np.asarray(s.raw, np.int16).tofile(folder / "data.bin")
    t, ly, lx = s.raw.shape
    db = {"Ly": ly, "Lx": lx, "nframes": t, "reg_file": str(folder / "data.bin"),
          "save_path": str(folder), "db_path": str(folder / "db.npy"),
          "settings_path": str(folder / "settings.npy"), "data_path": [str(tmp_path)],
          "save_path0": str(tmp_path), "fast_disk": str(folder), "nchannels": 1,
          "keep_movie_raw": False}
    reg = {"yoff": np.zeros(t), "xoff": np.zeros(t), "meanImg": s.raw.mean(0),
           "yrange": [0, ly], "xrange": [0, lx], "badframes": np.zeros(t, bool)}
    np.save(folder / "db.npy", db, allow_pickle=True)
    np.save(folder / "settings.npy", {"tau": 1.0, "fs": 30.0}, allow_pickle=True)
    np.save(folder / "reg_outputs.npy", reg, allow_pickle=True)
    np.save(folder / "ops.npy", {**db, "tau": 1.0, "fs": 30.0, **reg}, allow_pickle=True)
    np.save(folder / "stat.npy", np.array([{"ypix": [1], "xpix": [1]}]), allow_pickle=True)
    return folder, s


def test_plane_folder_out_has_suite2p_layout_and_input_is_untouched(plane, tmp_path):
    folder, s = plane
    before = {p.name: _sha(p) for p in folder.iterdir()}
    out = tmp_path / "denoised" / "suite2p" / "plane0"  # its parents are created
    model = tmp_path / "m.pt"
    assert main(["denoise", str(folder), "-o", str(out) + "/", "--save-model", str(model),
                 *FAST]) == 0
    assert {p.name: _sha(p) for p in folder.iterdir()} == before  # byte-identical, no more
    t, ly, lx = s.raw.shape
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["data.bin", "db.npy", "settings.npy", "reg_outputs.npy", "ops.npy",
         "neurorestore.json"])  # the raw movie's detection (stat.npy) is not copied
    assert (out / "data.bin").stat().st_size == t * ly * lx * 2
    for name in ("ops.npy", "db.npy"):
        ops = _load(out / name)
        assert (ops["Ly"], ops["Lx"], ops["nframes"]) == (ly, lx, t)
        assert ops["reg_file"] == str((out / "data.bin").resolve())
        assert ops["save_path"] == str(out.resolve())
        assert ops["fast_disk"] == str(out.resolve())
        assert ops["data_path"] == [str(tmp_path)]  # not a path of the plane: as it was
    assert _load(out / "db.npy")["db_path"] == str((out / "db.npy").resolve())
    assert _load(out / "settings.npy") == {"tau": 1.0, "fs": 30.0}
    np.testing.assert_array_equal(_load(out / "reg_outputs.npy")["yoff"], np.zeros(t))
    # the int16 movie is the float32 result of the same model, rounded: the input's units
    assert main(["denoise", str(folder), "-o", str(tmp_path / "f.tif"), "--model",
                 str(model), "-q", "--device", "cpu"]) == 0
    import tifffile

    f32 = tifffile.imread(tmp_path / "f.tif")
    got = np.fromfile(out / "data.bin", np.int16).reshape(t, ly, lx)
    np.testing.assert_array_equal(got, np.clip(np.rint(f32), -32768, 32767).astype(np.int16))
    assert abs(float(got.mean()) - float(s.raw.mean())) < 2.0
    md = json.loads((out / "neurorestore.json").read_text())["neurorestore"]
    assert md["method"] == "denoise" and md["output_type"]["dtype"] == "int16"
    # and our own reader opens it as a plane folder again
    from napari_neurorestore.core.io import open_array

    a, axes = open_array(out)
    assert a.shape == (t, ly, lx) and a.dtype == np.int16 and axes == "TYX"


@pytest.mark.parametrize("target", ["{f}", "{f}/", "{f}/data.bin", "{f}/denoised",
                                    "{f}/.."])
def test_never_over_the_registered_folder(plane, target, capsys):
    folder, _ = plane
    before = {p.name: _sha(p) for p in folder.iterdir()}
    assert main(["denoise", str(folder), "-o", target.format(f=folder), "--overwrite",
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert "never replaced" in err and err.count("\n") == 1
    assert {p.name: _sha(p) for p in folder.iterdir()} == before


def test_plane_folder_out_refusals(plane, tmp_path, capsys):
    folder, s = plane
    out = tmp_path / "den"
    # a type other than int16
    assert main(["denoise", str(folder), "-o", str(out), "--dtype", "uint16", *FAST]) == 2
    assert "holds int16" in capsys.readouterr().err
    # a folder output of an input that is not a plane folder
    import tifffile

    tifffile.imwrite(tmp_path / "m.tif", s.raw)
    assert main(["denoise", str(tmp_path / "m.tif"), "-o", str(out), *FAST]) == 2
    assert "not one: use -o OUT.tif" in capsys.readouterr().err
    assert not out.exists()
    # an existing plane is kept unless --overwrite
    assert main(["denoise", str(folder), "-o", str(out), *FAST]) == 0
    assert main(["denoise", str(folder), "-o", str(out), *FAST]) == 2
    assert "already holds a suite2p plane" in capsys.readouterr().err
    assert main(["denoise", str(folder), "-o", str(out), "--overwrite", *FAST]) == 0


def test_a_stopped_run_leaves_no_plane(plane, tmp_path):
    folder, _ = plane
    out = tmp_path / "den" / "plane0"
    params = DenoiseParams(train_seconds=0.5, epochs=1, chunk_frames=8, device="cpu")
    req = engine.Request("denoise", [str(folder)], str(out), params, {}, quiet=True)

    def stop(p):
        if p.stage == "predict" and p.step >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.restore_files(req, progress=stop, log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == ["data.incomplete.bin"]
    from napari_neurorestore.core.acquisition import is_suite2p_folder

    assert not is_suite2p_folder(out)
