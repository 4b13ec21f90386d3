"""``neurorestore denoise`` on large-recording paths: zarr output, several inputs, a local
dask cluster of 2 worker processes, interruption, output safety. Tiny data."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core import arrays, io, paths, zarr_io
from napari_neurorestore.core.simulate import simulate_calcium_movie

zarr = pytest.importorskip("zarr")
COMMON = ["--epochs", "1", "--window", "5", "--seed", "1", "--device", "cpu", "-q",
          "--chunk-frames", "7"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # (tests/conftest.py)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two small movies (one compressed, so it is read through tifffile's zarr view) and a
    model trained on the first."""
    d = tmp_path_factory.mktemp("large")
    raw = simulate_calcium_movie(n_frames=40, shape=(24, 28), n_cells=4, seed=2).raw
    tifffile.imwrite(d / "a.tif", raw)
    tifffile.imwrite(d / "b.tif", raw[5:38] + 3, compression="zlib")
    assert main(["denoise", str(d / "a.tif"), "-o", str(d / "a_ref.tif"), *COMMON,
                 "--save-model", str(d / "m.pt")]) == 0
    return d


def test_zarr_output_equals_tiff_output(files, tmp_path, capsys):
    out = tmp_path / "a.zarr"
    rc = main(["denoise", str(files / "a.tif"), "-o", str(out), "--model", str(files / "m.pt"),
               "-q", "--chunk-frames", "7"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    z = zarr.open_array(out, mode="r")
    assert z.chunks == (7, 24, 28) and z.dtype == np.float32
    np.testing.assert_allclose(z[:], tifffile.imread(files / "a_ref.tif"), rtol=1e-5, atol=1e-4)
    assert z.attrs[arrays.PROGRESS_ATTR]["complete"]
    md = z.attrs["neurorestore"]
    assert md["method"] == "denoise" and md["source"].endswith("a.tif")


def test_several_inputs_into_a_folder(files, tmp_path):
    outdir = tmp_path / "out"
    rc = main(["denoise", str(files / "a.tif"), str(files / "b.tif"), "-o", str(outdir),
               "--model", str(files / "m.pt"), "-q"])
    assert rc == 0
    # a folder of outputs holds OME-Zarr images (the data at level "0")
    assert sorted(p.name for p in outdir.iterdir()) == ["a_denoised.ome.zarr",
                                                        "b_denoised.ome.zarr"]
    assert zarr.open_array(outdir / "b_denoised.ome.zarr" / "0", mode="r").shape == (33, 24, 28)


def test_two_dask_workers_equal_single_process(files, tmp_path):
    """One call, two inputs -> one task graph on a LocalCluster of 2 worker processes
    (1 thread each), compared with single-process inference of the same model."""
    outdir = tmp_path / "dist"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "napari_neurorestore", "denoise", str(files / "a.tif"),
           str(files / "b.tif"), "-o", str(outdir), "--model", str(files / "m.pt"),
           "--workers", "2", "--chunk-frames", "7", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 local dask worker(s)" in r.stdout
    for name, src in (("a", "a.tif"), ("b", "b.tif")):
        single = tmp_path / f"{name}_single.zarr"
        assert main(["denoise", str(files / src), "-o", str(single), "--model",
                     str(files / "m.pt"), "-q", "--chunk-frames", "7"]) == 0
        ref = zarr.open_array(single, mode="r")[:]
        got = zarr.open_array(outdir / f"{name}_denoised.ome.zarr" / "0", mode="r")
        assert got.attrs[arrays.PROGRESS_ATTR]["complete"]
        assert np.abs(got[:] - ref).max() <= 1e-5 * float(np.ptp(ref))


def test_existing_store_is_kept_without_overwrite(files, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    io.open_output(out, (3, 4, 4), chunks=1)[:] = 7.0
    rc = main(["denoise", str(files / "a.tif"), "-o", str(out), "--model", str(files / "m.pt"),
               "-q"])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    assert zarr.open_array(out, mode="r").shape == (3, 4, 4)
    rc = main(["denoise", str(files / "a.tif"), "-o", str(out), "--model", str(files / "m.pt"),
               "-q", "--overwrite"])
    assert rc == 0 and zarr.open_array(out, mode="r").shape == (40, 24, 28)


def test_bad_output_fails_before_any_work(files, tmp_path, capsys, monkeypatch):
    from napari_neurorestore.core.methods.denoise import heavy as denoise

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(denoise, "train", no_training)
    a = str(files / "a.tif")
    assert main(["denoise", a, "-o", str(tmp_path / "nope" / "o.zarr"), *COMMON]) == 2
    assert "does not exist" in capsys.readouterr().err

    class Usage:
        free = 10

    monkeypatch.setattr(paths.shutil, "disk_usage", lambda _: Usage)
    assert main(["denoise", a, "-o", str(tmp_path / "o.zarr"), *COMMON]) == 2
    assert "not enough free disk space" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()
    monkeypatch.undo()
    assert main(["denoise", a, "-o", str(tmp_path / "o.tif"), "--workers", "2", *COMMON]) == 2
    assert "zarr" in capsys.readouterr().err
    assert main(["denoise", a, a, "-o", str(tmp_path / "d"), *COMMON]) == 2
    assert "same name" in capsys.readouterr().err
    rc = main(["denoise", a, str(files / "b.tif"), "-o", str(tmp_path / "d"), "--save-model",
               str(tmp_path / "m.pt"), *COMMON])
    assert rc == 2 and "--save-model takes one input" in capsys.readouterr().err


def test_interrupt_leaves_a_partial_store_and_says_how_far(files, tmp_path, capsys,
                                                           monkeypatch):
    calls = []
    original = zarr_io.ChunkRecorder.__call__

    def interrupt_after_two(self, a, b):
        original(self, a, b)
        calls.append((a, b))
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(zarr_io.ChunkRecorder, "__call__", interrupt_after_two)
    out = tmp_path / "p.zarr"
    rc = main(["denoise", str(files / "a.tif"), "-o", str(out), "--model", str(files / "m.pt"),
               "-q", "--chunk-frames", "7"])
    assert rc == 130
    err = capsys.readouterr().err
    assert "14 of 40 frames were restored and written" in err and "--overwrite" in err
    z = zarr.open_array(out, mode="r")
    assert z.attrs[arrays.PROGRESS_ATTR]["done_ranges"] == [[0, 14]]
    ref = tifffile.imread(files / "a_ref.tif")
    np.testing.assert_allclose(z[:14], ref[:14], rtol=1e-5, atol=1e-4)
    assert np.isnan(z[14:]).all()


def test_cancelling_a_distributed_run_leaves_consistent_stores(files, tmp_path):
    import re

    from napari_neurorestore.core.distributed import Job, distribute
    from napari_neurorestore.core.methods import get
    from napari_neurorestore.core.progress import Cancelled, CancelToken

    jobs = [Job(str(files / "a.tif"), str(tmp_path / "a.zarr"), str(files / "m.pt")),
            Job(str(files / "b.tif"), str(tmp_path / "b.zarr"), str(files / "m.pt"))]
    token = CancelToken()
    m = get("denoise")
    gen = distribute(m, jobs, m.params_class(chunk_frames=7, device="cpu"), workers=1,
                     cancel=token)
    with pytest.raises(Cancelled) as exc:
        for p in gen:
            if p.stage == "predict":
                token.cancel()
    m = re.search(r"(\d+) of 73 frames were restored and written", str(exc.value))
    assert m, str(exc.value)
    recorded = 0
    for name in ("a", "b"):
        z = zarr.open_array(tmp_path / f"{name}.zarr", mode="r")
        prog = z.attrs[arrays.PROGRESS_ATTR]
        recorded += prog["frames_done"]
        for a, b in prog["done_ranges"]:  # what the record says is done, is there
            assert not np.isnan(z[a:b]).any()
    assert recorded == int(m.group(1))
