"""A table of bad inputs fed to the CLI (in-process ``main``) and to the Python API.

Every CLI case must exit 2 with a short message and no traceback, leave the files it was
given byte-identical, and leave nothing behind (no output, no temporary file): the folder
holds exactly what it held before. Every API case must raise a clear TypeError/ValueError
and leave its input array unchanged. The cases fail before training (or train for a
fraction of a second), so the table runs in seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli.main import main

#: case id -> argv (``{d}`` is the case's folder); the cases that need files set up beyond
#: the shared ones say so in :data:`SETUP`
FAST = ["--train-seconds", "0.5", "-q"]
UP = ["--steps", "1", "--patch-size", "8", "--width", "4", "-q"]
CLI_CASES: dict[str, list[str]] = {
    # files
    "file-missing": ["denoise", "{d}/nope.tif", "-o", "{d}/o.tif", *FAST],
    "file-empty": ["denoise", "{d}/empty.tif", "-o", "{d}/o.tif", *FAST],
    "file-text": ["denoise", "{d}/text.tif", "-o", "{d}/o.tif", *FAST],
    "file-truncated": ["denoise", "{d}/trunc.tif", "-o", "{d}/o.tif", *FAST],
    "file-truncated-isotropize": ["isotropize", "{d}/trunc_vol.tif", "-o", "{d}/o.tif",
                                  "--z-ratio", "2", "-q"],
    "file-rgb": ["denoise", "{d}/rgb.tif", "-o", "{d}/o.tif", *FAST],
    "file-rgb-movie": ["denoise", "{d}/rgb_movie.tif", "-o", "{d}/o.tif", *FAST],
    "file-folder": ["denoise", "{d}/afolder", "-o", "{d}/o.tif", *FAST],
    "file-not-tiff-ext": ["denoise", "{d}/movie.png", "-o", "{d}/o.tif", *FAST],
    "traces-rois-missing": ["traces", "{d}/movie.tif", "--rois", "{d}/nope.tif", "-o",
                            "{d}/t.csv"],
    "report-restored-text": ["report", "{d}/movie.tif", "{d}/text.tif", "-o", "{d}/r.html"],
    # data
    "data-2d-denoise": ["denoise", "{d}/image.tif", "-o", "{d}/o.tif", *FAST],
    "data-5d": ["denoise", "{d}/five.tif", "-o", "{d}/o.tif", *FAST],
    "data-1-frame": ["denoise", "{d}/one.tif", "-o", "{d}/o.tif", *FAST],
    "data-3-frames": ["denoise", "{d}/three.tif", "-o", "{d}/o.tif", *FAST],
    "data-nan": ["denoise", "{d}/nan.tif", "-o", "{d}/o.tif", *FAST],
    "data-inf": ["denoise", "{d}/inf.tif", "-o", "{d}/o.tif", *FAST],
    "data-bool": ["denoise", "{d}/bool.tif", "-o", "{d}/o.tif", *FAST],
    "data-complex": ["denoise", "{d}/complex.tif", "-o", "{d}/o.tif", *FAST],
    "data-tiny-frames": ["denoise", "{d}/tiny.tif", "-o", "{d}/o.tif", *FAST],
    "data-movie-upsample": ["upsample", "{d}/five.tif", "-o", "{d}/o.tif", *UP],
    "data-labels-shape": ["sparse", "{d}/movie.tif", "--simulate", "--labels",
                          "{d}/bad_labels.tif", "-o", "{d}/o.tif", "--epochs", "1", "-q"],
    # outputs
    "out-exists": ["denoise", "{d}/movie.tif", "-o", "{d}/existing.tif", *FAST],
    "out-is-input": ["denoise", "{d}/movie.tif", "-o", "{d}/movie.tif", "--overwrite", *FAST],
    "out-is-input-dot": ["denoise", "{d}/movie.tif", "-o", "{d}/./movie.tif", "--overwrite",
                         *FAST],
    "out-is-input-symlink": ["denoise", "{d}/movie.tif", "-o", "{d}/link.tif", "--overwrite",
                             *FAST],
    "out-is-input-zarr": ["denoise", "{d}/movie.zarr", "-o", "{d}/movie.zarr", "--overwrite",
                          *FAST],
    "out-inside-input-zarr": ["denoise", "{d}/movie.zarr", "-o", "{d}/movie.zarr/x.tif",
                              "--overwrite", *FAST],
    "out-is-model": ["denoise", "{d}/movie.tif", "--model", "{d}/other.pt", "-o",
                     "{d}/other.pt", "--overwrite", "-q"],
    "save-model-is-input": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--save-model",
                            "{d}/movie.tif", "--overwrite", *FAST],
    "save-model-is-output": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--save-model",
                             "{d}/o.tif", "--overwrite", *FAST],
    "save-model-no-folder": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--save-model",
                             "{d}/nofolder/m.pt", *FAST],
    "traces-out-is-movie": ["traces", "{d}/movie.tif", "--rois", "{d}/labels.tif", "-o",
                            "{d}/movie.tif", "--overwrite"],
    "traces-out-is-rois": ["traces", "{d}/movie.tif", "--rois", "{d}/labels.tif", "-o",
                           "{d}/labels.tif", "--overwrite"],
    "report-out-is-raw": ["report", "{d}/movie.tif", "{d}/movie.tif", "-o", "{d}/movie.tif",
                          "--overwrite"],
    "report-json-is-html": ["report", "{d}/movie.tif", "{d}/movie.tif", "-o", "{d}/r.html",
                            "--json", "{d}/r.html"],
    "out-read-only": ["denoise", "{d}/movie.tif", "-o", "{ro}/o.tif", *FAST],
    "out-no-folder": ["denoise", "{d}/movie.tif", "-o", "{d}/nofolder/o.tif", *FAST],
    "out-png": ["denoise", "{d}/movie.tif", "-o", "{d}/o.png", *FAST],
    "out-h5": ["denoise", "{d}/movie.tif", "-o", "{d}/o.h5", *FAST],
    "out-no-extension": ["denoise", "{d}/movie.tif", "-o", "{d}/o", *FAST],
    "out-tif-is-a-folder": ["denoise", "{d}/movie.tif", "-o", "{d}/dir.tif", "--overwrite",
                            *FAST],
    "out-folder-not-zarr": ["denoise", "{d}/movie.tif", "-o", "{d}/afolder.zarr",
                            "--overwrite", *FAST],
    # models
    "model-missing": ["denoise", "{d}/movie.tif", "--model", "{d}/nope.pt", "-o", "{d}/o.tif",
                      "-q"],
    "model-corrupt": ["denoise", "{d}/movie.tif", "--model", "{d}/corrupt.pt", "-o",
                      "{d}/o.tif", "-q"],
    "model-text": ["denoise", "{d}/movie.tif", "--model", "{d}/text.tif", "-o", "{d}/o.tif",
                   "-q"],
    "model-other-method": ["denoise", "{d}/movie.tif", "--model", "{d}/other.pt", "-o",
                           "{d}/o.tif", "-q"],
    "model-upsample-factor": ["upsample", "{d}/vol.tif", "--model", "{d}/up2.pt",
                              "--factor", "3", "-o", "{d}/o.tif", "-q"],
    "model-sparse-factor": ["sparse", "{d}/movie.tif", "--model", "{d}/sparse4.pt",
                            "--factor", "2", "-o", "{d}/o.tif", "-q"],
    "model-folder": ["denoise", "{d}/movie.tif", "--model", "{d}/afolder", "-o", "{d}/o.tif",
                     "-q"],
    # options
    "opt-train-seconds-negative": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif",
                                   "--train-seconds", "-1", "-q"],
    "opt-train-seconds-text": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif",
                               "--train-seconds", "abc", "-q"],
    "opt-window-zero": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--window", "0", *FAST],
    "opt-upsample-factor": ["upsample", "{d}/vol.tif", "-o", "{d}/o.tif", "--factor", "99",
                            *UP],
    "opt-sparse-factor": ["sparse", "{d}/movie.tif", "-o", "{d}/o.tif", "--factor", "1",
                          "-q"],
    "opt-isotropize-no-ratio": ["isotropize", "{d}/vol.tif", "-o", "{d}/o.tif", "-q"],
    "opt-isotropize-ratio-nan": ["isotropize", "{d}/vol.tif", "-o", "{d}/o.tif",
                                 "--z-ratio", "nan", "-q"],
    "opt-workers-zero": ["upsample", "{d}/vol.tif", "-o", "{d}/o.zarr", "--workers", "0",
                         *UP],
    "opt-traces-fps-zero": ["traces", "{d}/movie.tif", "--rois", "{d}/labels.tif", "-o",
                            "{d}/t.csv", "--fps", "0"],
    "opt-report-max-frames": ["report", "{d}/movie.tif", "{d}/movie.tif", "-o", "{d}/r.html",
                              "--max-frames", "2"],
    "device-cuda-denoise": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--device", "cuda",
                            *FAST],
    "device-mps-denoise": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--device", "mps",
                           *FAST],
    "device-cuda-model": ["denoise", "{d}/movie.tif", "--model", "{d}/den.pt", "-o",
                          "{d}/o.tif", "--device", "cuda", "-q"],
    "device-cuda-upsample": ["upsample", "{d}/vol.tif", "-o", "{d}/o.tif", "--device", "cuda",
                             *UP],
    "device-mps-sparse": ["sparse", "{d}/movie.tif", "-o", "{d}/o.tif", "--device", "mps",
                          "-q"],
    "device-cuda-isotropize": ["isotropize", "{d}/vol.tif", "-o", "{d}/o.tif", "--z-ratio",
                               "2", "--device", "cuda", "-q"],
    "device-unknown": ["denoise", "{d}/movie.tif", "-o", "{d}/o.tif", "--device", "tpu",
                       *FAST],
}
#: cases that only make sense where the machine has no such device
NEEDS_NO = {"cuda": [k for k in CLI_CASES if "cuda" in k],
            "mps": [k for k in CLI_CASES if "mps" in k]}


def _tiny_model(method: str, params: dict, path: Path) -> None:
    from napari_neurorestore.core.models import TrainedModel, save_model

    save_model(TrainedModel(method, params, {}, {"mean": 0.0, "std": 1.0}), path)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The shared files of every case (copied into each case's own folder)."""
    d = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    movie = rng.poisson(20, (24, 16, 16)).astype(np.uint16)
    tifffile.imwrite(d / "movie.tif", movie)
    tifffile.imwrite(d / "vol.tif", rng.poisson(20, (8, 16, 16)).astype(np.uint16))
    tifffile.imwrite(d / "image.tif", movie[0])
    tifffile.imwrite(d / "five.tif", rng.poisson(20, (2, 2, 2, 16, 16)).astype(np.uint16))
    tifffile.imwrite(d / "one.tif", movie[:1])
    tifffile.imwrite(d / "three.tif", movie[:3])
    tifffile.imwrite(d / "tiny.tif", movie[:, :2, :2])
    f = movie.astype(np.float32)
    f[3, 4, 4] = np.nan
    tifffile.imwrite(d / "nan.tif", f)
    f[3, 4, 4] = np.inf
    tifffile.imwrite(d / "inf.tif", f)
    tifffile.imwrite(d / "bool.tif", movie > 20)
    tifffile.imwrite(d / "complex.tif", movie.astype(np.complex64))
    tifffile.imwrite(d / "rgb.tif", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                     photometric="rgb")
    tifffile.imwrite(d / "rgb_movie.tif", rng.integers(0, 255, (12, 16, 16, 3),
                                                       dtype=np.uint8), photometric="rgb")
    tifffile.imwrite(d / "labels.tif", (np.arange(256).reshape(16, 16) % 3).astype(np.uint16))
    tifffile.imwrite(d / "bad_labels.tif", np.ones((5, 7), np.uint16))
    tifffile.imwrite(d / "existing.tif", np.zeros((2, 4, 4), np.float32))
    raw = (d / "movie.tif").read_bytes()
    (d / "trunc.tif").write_bytes(raw[: len(raw) // 2])
    tifffile.imwrite(d / "trunc_vol.tif", rng.poisson(20, (8, 16, 16)).astype(np.uint16))
    raw = (d / "trunc_vol.tif").read_bytes()
    (d / "trunc_vol.tif").write_bytes(raw[: len(raw) - 300])
    (d / "empty.tif").write_bytes(b"")
    (d / "text.tif").write_text("not a tiff\n")
    (d / "movie.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (d / "corrupt.pt").write_bytes(os.urandom(256))
    (d / "afolder").mkdir()
    (d / "dir.tif").mkdir()
    (d / "afolder.zarr").mkdir()
    (d / "afolder.zarr" / "notes.txt").write_text("mine")
    (d / "link.tif").symlink_to("movie.tif")
    import zarr

    zarr.create_array(store=str(d / "movie.zarr"), data=movie, chunks=(8, 16, 16))
    _tiny_model("sparse", {"factor": 4, "axis": "y"}, d / "other.pt")
    _tiny_model("upsample", {"factor": 2, "lateral_only": False}, d / "up2.pt")
    _tiny_model("sparse", {"factor": 4, "axis": "y"}, d / "sparse4.pt")
    _tiny_model("denoise", {"window": 11}, d / "den.pt")
    return d


def _snapshot(d: Path) -> dict[str, str]:
    """Every path under ``d`` with the md5 of its bytes (links as their target)."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.md5(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _has(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input(case, template, tmp_path, capsys):
    for dev, cases in NEEDS_NO.items():
        if case in cases and _has(dev):
            pytest.skip(f"this machine has {dev}")
    d = tmp_path / "case"
    shutil.copytree(template, d, symlinks=True)
    ro = tmp_path / "readonly"
    ro.mkdir()
    if case == "out-read-only" and os.geteuid() == 0:  # root writes into 0o555 folders
        ro = Path("/proc")
    ro.chmod(0o555)
    argv = [a.format(d=d, ro=ro) for a in CLI_CASES[case]]
    before = _snapshot(d)
    try:
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own errors
            rc = e.code
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2, f"{case}: exit {rc}; stderr: {err[-800:]}"
    assert "Traceback" not in err, err[-2000:]
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert len(lines) == 1, err[-800:]  # one line names the problem
    assert len(lines[0]) < 600
    after = _snapshot(d)
    assert after == before, f"{case}: files changed or left behind: " + str(
        {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
         if before.get(k) != after.get(k)})


# --------------------------------------------------------------------------- the API
def _api_cases():
    from napari_neurorestore import denoise, isotropize, sparse, upsample

    m = np.random.default_rng(0).poisson(20, (24, 16, 16)).astype(np.float32)
    v = m[:8].copy()
    return {
        "denoise-list": (denoise, ([[1, 2], [3, 4]],), {}),
        "denoise-none": (denoise, (None,), {}),
        "denoise-path": (denoise, ("movie.tif",), {}),
        "denoise-scalar": (denoise, (np.float32(3.0),), {}),
        "denoise-2d": (denoise, (m[0],), {"train_seconds": 0.5}),
        "denoise-2-frames": (denoise, (m[:2],), {"train_seconds": 0.5}),
        "denoise-nan": (denoise, (np.where(m > 25, np.nan, m),), {"train_seconds": 0.5}),
        "denoise-inf": (denoise, (np.where(m > 25, np.inf, m),), {"train_seconds": 0.5}),
        "denoise-bool": (denoise, (m > 20,), {"train_seconds": 0.5}),
        "denoise-complex": (denoise, (m.astype(np.complex64),), {"train_seconds": 0.5}),
        "denoise-train-seconds-str": (denoise, (m,), {"train_seconds": "2"}),
        "denoise-train-seconds-neg": (denoise, (m,), {"train_seconds": -2}),
        "denoise-window-float": (denoise, (m,), {"window": 2.5}),
        "denoise-out-uint8": (denoise, (m,), {"out": np.zeros(m.shape, np.uint8),
                                              "train_seconds": 0.5}),
        "denoise-out-float64": (denoise, (m,), {"out": np.zeros(m.shape), "train_seconds": 0.5}),
        "denoise-device-cuda": (denoise, (m,), {"device": "cuda", "train_seconds": 0.5}),
        "denoise-device-unknown": (denoise, (m,), {"device": "tpu", "train_seconds": 0.5}),
        "denoise-model-missing": (denoise, (m,), {"model": "/nonexistent/m.pt"}),
        "denoise-unknown-param": (denoise, (m,), {"windwo": 5}),
        "upsample-factor-str": (upsample, (v,), {"factor": "2"}),
        "upsample-factor-99": (upsample, (v,), {"factor": 99}),
        "upsample-movie": (upsample, (m.reshape(2, 12, 16, 16)[:, :, :, :].reshape(
            2, 3, 4, 16, 16),), {}),
        "isotropize-no-ratio": (isotropize, (v,), {}),
        "isotropize-ratio-str": (isotropize, (v,), {"z_ratio": "2"}),
        "sparse-axis-z": (sparse, (m,), {"axis": "z"}),
        "sparse-factor-1": (sparse, (m,), {"factor": 1}),
    }


API_CASES = list(_api_cases())


@pytest.mark.parametrize("case", API_CASES)
def test_api_bad_input(case):
    func, args, kw = _api_cases()[case]
    if "cuda" in case and _has("cuda"):
        pytest.skip("this machine has cuda")
    before = [a.copy() for a in args if isinstance(a, np.ndarray)]
    with pytest.raises((TypeError, ValueError, FileNotFoundError)) as e:
        func(*args, **kw)
    msg = str(e.value)
    assert msg and "0D data of shape ()" not in msg
    assert len(msg) < 600
    after = [a for a in args if isinstance(a, np.ndarray)]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
