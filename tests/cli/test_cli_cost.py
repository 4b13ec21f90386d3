"""The CLI prints the cost estimate before training and refuses runs that do not fit."""

import re

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core import cost


@pytest.fixture
def movie_path(tmp_path):
    p = tmp_path / "movie.tif"
    tifffile.imwrite(p, np.random.default_rng(0).poisson(20, (20, 32, 32)).astype(np.uint16))
    return p


def test_denoise_prints_the_estimate_before_training(movie_path, tmp_path, capsys):
    rc = main(["denoise", str(movie_path), "-o", str(tmp_path / "o.tif"), "--epochs", "1",
               "--window", "5", "--device", "cpu"])
    assert rc == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("estimate: "))
    assert "peak RAM ~" in line and "(streamed)" in line and re.search(r"inference (~\d|< 1 s)", line)
    assert err.index("estimate: ") < err.index("train")  # before the training bar


@pytest.mark.parametrize("argv", [
    ["sparse", "--factor", "2", "--epochs", "1", "--width", "4"],
    ["upsample", "--factor", "2", "--steps", "2", "--width", "4", "--patch-size", "16"],
    ["isotropize", "--z-ratio", "2", "--steps", "2", "--width", "4"],
])
def test_each_subcommand_prints_the_estimate(argv, movie_path, tmp_path, capsys):
    rc = main([argv[0], str(movie_path), "-o", str(tmp_path / "o.tif"), "--device", "cpu",
               *argv[1:]])
    assert rc == 0
    assert "estimate: peak RAM ~" in capsys.readouterr().err


def test_quiet_suppresses_the_estimate(movie_path, tmp_path, capsys):
    rc = main(["denoise", str(movie_path), "-o", str(tmp_path / "o.tif"), "--epochs", "1",
               "--window", "5", "--device", "cpu", "-q"])
    assert rc == 0
    assert "estimate" not in capsys.readouterr().err


def test_refused_when_it_would_not_fit(movie_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cost, "free_ram_bytes", lambda: 2**20)
    out = tmp_path / "o.tif"
    rc = main(["denoise", str(movie_path), "-o", str(out), "--epochs", "1", "--window", "5",
               "--device", "cpu", "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "-o OUT.zarr" in err and "--force" in err and "free" in err
    assert not out.exists()
    rc = main(["denoise", str(movie_path), "-o", str(out), "--epochs", "1", "--window", "5",
               "--device", "cpu", "-q", "--force"])
    assert rc == 0 and out.exists()
