"""Ctrl-C while training: the first stops training and keeps the model (inference and
--save-model go on with it); a second aborts, and nothing poses as a finished result."""

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

from napari_neurorestore.core.models import load_model

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")


def _finish(proc: subprocess.Popen, reader: threading.Thread) -> str:
    """Wait for the process (stderr is read by ``reader`` alone); return its stdout."""
    proc.wait(timeout=60)
    reader.join(timeout=10)
    return proc.stdout.read()


def _start(args: list[str]) -> tuple[subprocess.Popen, list[str], threading.Event]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from napari_neurorestore.cli "
                             "import main; sys.exit(main(sys.argv[1:]))", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    training = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if line.lstrip().startswith("train"):
                training.set()

    proc.reader = threading.Thread(target=read, daemon=True)
    proc.reader.start()
    return proc, lines, training


@pytest.fixture
def movie(tmp_path):
    p = tmp_path / "movie.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(p, (100 + 10 * rng.standard_normal((24, 32, 32))).astype(np.float32))
    return p


def test_first_ctrl_c_stops_training_and_keeps_the_model(tmp_path, movie):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    proc, lines, training = _start(["denoise", str(movie), "-o", str(out), "--window", "5",
                                    "--train-seconds", "120", "--save-model", str(model)])
    try:
        assert training.wait(90), "".join(lines)
        t0 = time.monotonic()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout = _finish(proc, proc.reader)
    finally:
        proc.kill()
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 60  # not the 120-s budget
    assert "training stops after this step" in err
    assert "(stopped by Ctrl-C)" in stdout and "model saved to" in stdout
    assert load_model(model).info["steps"] >= 1
    restored = tifffile.imread(out)
    assert restored.shape == (24, 32, 32) and np.isfinite(restored).all()


def test_second_ctrl_c_aborts_and_leaves_no_finished_output(tmp_path):
    movie = tmp_path / "long.tif"  # long enough that the run is still going at the 2nd Ctrl-C
    rng = np.random.default_rng(0)
    tifffile.imwrite(movie, (100 + 10 * rng.standard_normal((600, 96, 96))).astype(np.float32))
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    proc, lines, training = _start(["denoise", str(movie), "-o", str(out), "--window", "5",
                                    "--train-seconds", "120", "--save-model", str(model)])
    try:
        assert training.wait(90), "".join(lines)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _finish(proc, proc.reader)
    finally:
        proc.kill()
    assert proc.returncode == 130, "".join(lines)
    assert not out.exists()  # no file under the result's name
