"""`neurorestore live`: bad input exits 2 with one line; a session over files written by a
thread prints frames/s and latency and leaves the store of offline inference; Ctrl-C ends it
with a complete store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.models import save_model
from napari_neurorestore.core.progress import drain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def movie():
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=48, shape=(32, 32), n_cells=4, seed=2).raw


@pytest.fixture(scope="module")
def model_file(movie, tmp_path_factory, one_torch_thread):
    m = drain(dn.train(movie, DenoiseParams(epochs=1, patch_size=16, batch_size=4, seed=0,
                                            device="cpu")))
    return save_model(m, tmp_path_factory.mktemp("m") / "m.pt"), m


def write_files(folder: Path, movie, sizes, rate=300.0):
    t = 0
    for i, s in enumerate(sizes):
        time.sleep(s / rate)
        tmp = folder / f"f_{i + 1:03d}.tif.part"
        tifffile.imwrite(tmp, movie[t:t + s].astype(np.uint16), photometric="minisblack")
        os.replace(tmp, folder / f"f_{i + 1:03d}.tif")
        t += s


def test_bad_input_exits_2_with_one_line(tmp_path, model_file, capsys):
    mp = str(model_file[0])
    acq = tmp_path / "acq"
    acq.mkdir()
    (tmp_path / "exists.zarr").mkdir()
    cases = [
        (["live", str(tmp_path / "nope"), "-o", str(tmp_path / "o.zarr"), "--model", mp],
         "does not exist"),
        (["live", str(acq), "-o", str(tmp_path / "o.zarr"), "--model", str(tmp_path / "x.pt")],
         "model file"),
        (["live", str(acq), "-o", str(tmp_path / "exists.zarr"), "--model", mp],
         "--overwrite"),
        (["live", str(acq), "-o", str(acq / "o.zarr"), "--model", mp], "inside"),
    ]
    for argv, text in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("neurorestore: error:") and text in err[0]


def test_live_session_prints_rates_and_writes_the_offline_result(tmp_path, model_file, movie,
                                                                 capsys):
    import zarr

    path, model = model_file
    acq = tmp_path / "acq"
    acq.mkdir()
    sizes = [12, 12, 12, 12]
    w = threading.Thread(target=write_files, args=(acq, movie, sizes), daemon=True)
    w.start()
    out = tmp_path / "out.zarr"
    rc = main(["live", str(acq), "-o", str(out), "--model", str(path), "--idle-timeout", "1"])
    w.join()
    assert rc == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "p50" in printed and "p95" in printed
    assert "48 of 48 frames restored" in printed
    cat = movie[:48].astype(np.uint16).astype(np.float32)
    ref = drain(dn.predict(cat, model, device="cpu", context="causal",
                         ensemble="off"))  # live's setting
    got = zarr.open_array(str(out), mode="r")[:]
    assert np.abs(got - ref).max() <= 1e-3 * float(cat.max() - cat.min())


def test_ctrl_c_ends_with_a_complete_store(tmp_path, model_file, movie):
    import zarr

    path, model = model_file
    acq = tmp_path / "acq"
    acq.mkdir()
    write_files(acq, movie, [12, 12])
    out = tmp_path / "out.zarr"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from napari_neurorestore.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", "live", str(acq),
                             "-o", str(out), "--model", str(path), "--idle-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until both files are in the store
            time.sleep(0.2)
            try:
                rec = dict(zarr.open_array(str(out), mode="r").attrs["neurorestore_progress"])
            except Exception:
                continue
            if rec.get("frames_total") == 24:
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopped: cancelled" in stdout
    z = zarr.open_array(str(out), mode="r")
    rec = dict(z.attrs["neurorestore_progress"])
    assert rec["complete"] and rec["frames_done"] == 24
    cat = movie[:24].astype(np.uint16).astype(np.float32)
    ref = drain(dn.predict(cat, model, device="cpu", context="causal",
                         ensemble="off"))  # live's setting
    assert np.abs(z[:] - ref).max() <= 1e-3 * float(cat.max() - cat.min())
