"""``neurorestore sparse|upsample|isotropize -o OUT.zarr``: zarr round trip (equal to the TIFF
output), Ctrl-C leaves a readable partial store and says how far it got, an existing
output is refused without --overwrite, and a bad output fails before any training.
Tiny data and saved tiny models: this tests the streaming, not the quality."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core import arrays, io, paths, zarr_io
from napari_neurorestore.core.methods.upsample.spec import bin_array
from napari_neurorestore.core.simulate import simulate_calcium_movie, simulate_neuron_volume

zarr = pytest.importorskip("zarr")
TOL = dict(rtol=1e-5, atol=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # (tests/conftest.py)


def interrupt_after(monkeypatch, n_calls: int) -> None:
    """Ctrl-C right after the ``n_calls``-th chunk/tile is recorded."""
    calls = []
    original = zarr_io.ChunkRecorder.__call__

    def interrupting(self, a, b):
        original(self, a, b)
        calls.append((a, b))
        if len(calls) == n_calls:
            raise KeyboardInterrupt

    monkeypatch.setattr(zarr_io.ChunkRecorder, "__call__", interrupting)


def no_training(monkeypatch, module) -> None:
    def fail(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(module, "train", fail)


def check_bad_outputs(argv_for, method_module, tmp_path, capsys, monkeypatch) -> None:
    """Missing folder, full disk, existing store: clear errors before any training."""
    no_training(monkeypatch, method_module)
    assert main(argv_for(tmp_path / "nope" / "o.zarr")) == 2
    assert "does not exist" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if not os.access(ro, os.W_OK):  # (root can write anywhere)
            assert main(argv_for(ro / "o.zarr")) == 2
            assert "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)

    class Usage:
        free = 10

    disk_usage = paths.shutil.disk_usage
    monkeypatch.setattr(paths.shutil, "disk_usage", lambda _: Usage)
    assert main(argv_for(tmp_path / "o.zarr")) == 2
    assert "not enough free disk space" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()
    monkeypatch.setattr(paths.shutil, "disk_usage", disk_usage)
    existing = tmp_path / "e.zarr"
    io.open_output(existing, (3, 4, 4), chunks=1)[:] = 7.0
    assert main(argv_for(existing)) == 2
    assert "already exists" in capsys.readouterr().err
    assert zarr.open_array(existing, mode="r")[0, 0, 0] == 7.0  # untouched


# ----------------------------------------------------------------------------- upsample
UP = ["--steps", "3", "--patch-size", "12", "--width", "8", "--seed", "1", "--device", "cpu",
      "-q"]


@pytest.fixture(scope="module")
def up_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("up")
    truth = simulate_neuron_volume((22, 52, 44), n_somata=2, n_neurites=4, seed=1)
    vol = (bin_array(truth, (2, 2, 2)) * 3000).astype(np.uint16)  # (11, 26, 22)
    tifffile.imwrite(d / "in.tif", vol)
    assert main(["upsample", str(d / "in.tif"), "-o", str(d / "ref.tif"), "--factor", "2",
                 "--save-model", str(d / "m.pt"), "--tile-size", "64", *UP]) == 0
    return d


def test_upsample_zarr_round_trip(up_files, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    assert main(["upsample", str(up_files / "in.tif"), "-o", str(out), "--model",
                 str(up_files / "m.pt"), "--tile-size", "9", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    z = zarr.open_array(out, mode="r")
    assert z.shape == (22, 52, 44) and z.dtype == np.float32 and z.chunks == (18, 18, 18)
    np.testing.assert_allclose(z[:], tifffile.imread(up_files / "ref.tif"), **TOL)
    assert z.attrs["axes"] == "ZYX" and z.attrs["neurorestore"]["method"] == "upsample"
    prog = z.attrs[arrays.PROGRESS_ATTR]
    assert prog["complete"] and prog["tiles_done"] == prog["tiles_total"] == 2 * 3 * 3
    # a zarr store as the input (read tile by tile): the same result
    src = tmp_path / "in.zarr"
    zin = zarr.create_array(store=str(src), shape=(11, 26, 22), chunks=(4, 26, 22),
                            dtype="uint16")
    zin[:] = tifffile.imread(up_files / "in.tif")
    out2 = tmp_path / "o2.tif"
    assert main(["upsample", str(src), "-o", str(out2), "--model", str(up_files / "m.pt"),
                 "--tile-size", "13", "-q"]) == 0
    np.testing.assert_allclose(tifffile.imread(out2), z[:], **TOL)


def test_upsample_interrupt_leaves_a_partial_store(up_files, tmp_path, capsys, monkeypatch):
    interrupt_after(monkeypatch, 2)
    out = tmp_path / "p.zarr"
    rc = main(["upsample", str(up_files / "in.tif"), "-o", str(out), "--model",
               str(up_files / "m.pt"), "--tile-size", "9", "-q"])
    assert rc == 130
    err = capsys.readouterr().err
    assert "2 of 18 tiles were restored and written" in err and "--overwrite" in err
    z = zarr.open_array(out, mode="r")
    assert z.attrs[arrays.PROGRESS_ATTR]["done_ranges"] == [[0, 2]]
    ref = tifffile.imread(up_files / "ref.tif")
    np.testing.assert_allclose(z[:18, :18, :36], ref[:18, :18, :36], **TOL)
    assert np.isnan(z[:18, :18, 36:]).all() and np.isnan(z[18:]).all()


def test_upsample_bad_outputs_fail_before_training(up_files, tmp_path, capsys, monkeypatch):
    from napari_neurorestore.core.methods.upsample import heavy as upsample

    def argv(o):
        return ["upsample", str(up_files / "in.tif"), "-o", str(o), "--factor", "2", *UP]

    check_bad_outputs(argv, upsample, tmp_path, capsys, monkeypatch)


# ----------------------------------------------------------------------------- sparse
SP = ["--factor", "4", "--context", "2", "--epochs", "1", "--width", "8", "--seed", "0",
      "--device", "cpu", "--train-seconds", "1", "-q"]


@pytest.fixture(scope="module")
def sp_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sp")
    raw = simulate_calcium_movie(n_frames=23, shape=(40, 36), n_cells=4, seed=5).raw
    tifffile.imwrite(d / "in.tif", raw[:, ::4])
    assert main(["sparse", str(d / "in.tif"), "-o", str(d / "ref.tif"),
                 "--save-model", str(d / "m.pt"), *SP]) == 0
    return d


def test_sparse_zarr_round_trip(sp_files, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    assert main(["sparse", str(sp_files / "in.tif"), "-o", str(out), "--model",
                 str(sp_files / "m.pt"), "--chunk-frames", "4", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    z = zarr.open_array(out, mode="r")
    assert z.shape == (23, 40, 36) and z.chunks == (4, 40, 36)
    np.testing.assert_allclose(z[:], tifffile.imread(sp_files / "ref.tif"), **TOL)
    assert z.attrs[arrays.PROGRESS_ATTR]["complete"]
    assert z.attrs["neurorestore"]["method"] == "sparse"


def test_sparse_simulate_into_zarr(sp_files, tmp_path, capsys):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, simulate_calcium_movie(n_frames=12, shape=(40, 36), n_cells=4,
                                                  seed=5).raw)
    out = tmp_path / "sim.zarr"
    assert main(["sparse", str(full), "--simulate", "-o", str(out), "--model",
                 str(sp_files / "m.pt"), "-q"]) == 0
    assert "cubic interpolation" in capsys.readouterr().out
    z = zarr.open_array(out, mode="r")
    assert z.shape == (12, 40, 36) and not np.isnan(z[:]).any()
    assert z.attrs[arrays.PROGRESS_ATTR]["complete"]


def test_sparse_interrupt_leaves_a_partial_store(sp_files, tmp_path, capsys, monkeypatch):
    interrupt_after(monkeypatch, 3)
    out = tmp_path / "p.zarr"
    rc = main(["sparse", str(sp_files / "in.tif"), "-o", str(out), "--model",
               str(sp_files / "m.pt"), "--chunk-frames", "5", "-q"])
    assert rc == 130
    err = capsys.readouterr().err
    assert "15 of 23 frames were restored and written" in err and "--overwrite" in err
    z = zarr.open_array(out, mode="r")
    assert z.attrs[arrays.PROGRESS_ATTR]["done_ranges"] == [[0, 15]]
    np.testing.assert_allclose(z[:15], tifffile.imread(sp_files / "ref.tif")[:15], **TOL)
    assert np.isnan(z[15:]).all()


def test_sparse_bad_outputs_fail_before_training(sp_files, tmp_path, capsys, monkeypatch):
    from napari_neurorestore.core.methods.sparse import heavy as sparse

    def argv(o):
        return ["sparse", str(sp_files / "in.tif"), "-o", str(o), *SP]

    check_bad_outputs(argv, sparse, tmp_path, capsys, monkeypatch)


# ----------------------------------------------------------------------------- isotropize
ISO = ["--z-ratio", "3", "--sigma-z", "1.5", "--steps", "2", "--width", "4", "--seed", "0",
       "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def iso_files(tmp_path_factory):
    from napari_neurorestore.core.simulate import degrade_axial

    d = tmp_path_factory.mktemp("iso")
    v = simulate_neuron_volume((19, 45, 37), n_somata=1, n_neurites=4, seed=0)
    tifffile.imwrite(d / "in.tif", degrade_axial(v, 1.5, 3, photons=100, seed=0).raw
                     .astype(np.uint16))  # (7, 45, 37)
    assert main(["isotropize", str(d / "in.tif"), "-o", str(d / "ref.tif"),
                 "--save-model", str(d / "m.pt"), *ISO]) == 0
    return d


def test_isotropize_zarr_round_trip(iso_files, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    assert main(["isotropize", str(iso_files / "in.tif"), "-o", str(out), "--model",
                 str(iso_files / "m.pt"), "--tile-size", "17", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    z = zarr.open_array(out, mode="r")
    assert z.shape == (19, 45, 37) and z.chunks == (19, 17, 17)
    np.testing.assert_allclose(z[:], tifffile.imread(iso_files / "ref.tif"), **TOL)
    prog = z.attrs[arrays.PROGRESS_ATTR]
    assert prog["complete"] and prog["tiles_total"] == 9
    assert z.attrs["axes"] == "ZYX" and z.attrs["neurorestore"]["method"] == "isotropize"


def test_isotropize_interrupt_leaves_a_partial_store(iso_files, tmp_path, capsys,
                                                     monkeypatch):
    interrupt_after(monkeypatch, 2)
    out = tmp_path / "p.zarr"
    rc = main(["isotropize", str(iso_files / "in.tif"), "-o", str(out), "--model",
               str(iso_files / "m.pt"), "--tile-size", "17", "-q"])
    assert rc == 130
    err = capsys.readouterr().err
    assert "2 of 9 tiles were restored and written" in err and "--overwrite" in err
    z = zarr.open_array(out, mode="r")
    assert z.attrs[arrays.PROGRESS_ATTR]["done_ranges"] == [[0, 2]]
    ref = tifffile.imread(iso_files / "ref.tif")
    np.testing.assert_allclose(z[:, :17, :34], ref[:, :17, :34], **TOL)
    assert np.isnan(z[:, :17, 34:]).all() and np.isnan(z[:, 17:]).all()


def test_isotropize_bad_outputs_fail_before_training(iso_files, tmp_path, capsys,
                                                     monkeypatch):
    from napari_neurorestore.core.methods.isotropize import heavy as isotropize

    def argv(o):
        return ["isotropize", str(iso_files / "in.tif"), "-o", str(o), *ISO]

    check_bad_outputs(argv, isotropize, tmp_path, capsys, monkeypatch)


def test_upsample_two_dask_workers_equal_single_process(up_files, tmp_path, capsys):
    """Tiles as tasks on a LocalCluster of 2 worker processes (1 thread each), compared
    with the single-process output of the same model."""
    import os
    import subprocess
    import sys

    out = tmp_path / "dist.zarr"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "napari_neurorestore", "upsample", str(up_files / "in.tif"),
           "-o", str(out), "--model", str(up_files / "m.pt"), "--tile-size", "9",
           "--workers", "2", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 local dask worker(s)" in r.stdout
    z = zarr.open_array(out, mode="r")
    assert z.chunks == (18, 18, 18)
    prog = z.attrs[arrays.PROGRESS_ATTR]
    assert prog["complete"] and prog["done_ranges"] == [[0, 18]]
    ref = tifffile.imread(up_files / "ref.tif")
    assert np.abs(z[:] - ref).max() <= 1e-5 * float(np.ptp(ref))
    # a TIFF output cannot be written by several processes: refused before any work
    assert main(["upsample", str(up_files / "in.tif"), "-o", str(tmp_path / "o.tif"),
                 "--model", str(up_files / "m.pt"), "--workers", "2", "-q"]) == 2
    assert "zarr" in capsys.readouterr().err
