"""Issue 13, "never lose the user's data": partial results never look finished, a failed
save leaves nothing, figures that could not be computed never PASS, and the widgets warn
on an incomplete result. (The table of bad inputs is tests/cli/test_bad_inputs.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli.main import main
from napari_neurorestore.core import arrays, engine, errors, io, paths, zarr_io
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def movie(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "in.tif"
    tifffile.imwrite(p, rng.poisson(20, (32, 16, 16)).astype(np.uint16))
    return p


def _interrupting(after: int):
    """A progress callback that presses Ctrl-C once ``after`` frames are predicted."""
    def cb(p):
        if p.stage == "predict" and p.step >= after:
            raise KeyboardInterrupt
    return cb


def _request(movie, out, **kw):
    params = DenoiseParams(train_seconds=0.5, epochs=1, chunk_frames=8, device="cpu")
    return engine.Request("denoise", [str(movie)], str(out), params, {}, quiet=True, **kw)


def test_interrupted_tiff_is_incomplete_and_nan(movie, tmp_path, capsys):
    out = tmp_path / "out.tif"
    before = movie.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        engine.restore_files(_request(movie, out), progress=_interrupting(8),
                             log=lambda m: print(m))
    assert not out.exists()  # never under the final name
    part = paths.incomplete_path(out)
    assert part.exists() and part.name == "out.incomplete.tif"
    a = tifffile.imread(part)
    assert np.isfinite(a[:8]).all() and np.isnan(a[-8:]).all()  # unwritten frames are NaN
    assert "out.incomplete.tif" in capsys.readouterr().out
    assert movie.read_bytes() == before
    # the report refuses it (one line, exit 2), and --incomplete assesses it anyway
    assert main(["report", str(movie), str(part), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and "Traceback" not in err
    assert io.is_incomplete(part)


def test_overwrite_keeps_the_old_output_until_complete(movie, tmp_path):
    out = tmp_path / "out.tif"
    tifffile.imwrite(out, np.full((2, 4, 4), 7, np.float32))
    old = out.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        engine.restore_files(_request(movie, out, overwrite=True), progress=_interrupting(8),
                             log=lambda m: None)
    assert out.read_bytes() == old
    # a later report on the old file warns that a stopped run left a temporary file
    assert "left over" in io.is_incomplete(out)
    engine.restore_files(_request(movie, out, overwrite=True), log=lambda m: None)
    assert not paths.incomplete_path(out).exists()
    a = tifffile.imread(out)
    assert a.shape == (32, 16, 16) and np.isfinite(a).all()
    assert io.is_incomplete(out) is None


def test_error_after_the_output_opened_leaves_nothing(movie, tmp_path, monkeypatch):
    from napari_neurorestore.core.methods import get

    m = get("denoise")

    def broken(*a, **k):
        raise ValueError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(type(m), "predict", broken)
    out = tmp_path / "out.tif"
    with pytest.raises(ValueError, match="boom"):
        engine.restore_files(_request(movie, out), log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_failed_model_save_leaves_no_file(movie, tmp_path, monkeypatch, capsys):
    import torch

    def full_disk(obj, f, *a, **k):
        with open(f, "wb"):
            pass
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    rc = main(["denoise", str(movie), "-o", str(tmp_path / "o.tif"), "--save-model",
               str(tmp_path / "m.pt"), "--train-seconds", "0.5", "--epochs", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "could not save the model" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_zarr_interrupted_keeps_its_progress_record(movie, tmp_path):
    pytest.importorskip("zarr")
    out = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        engine.restore_files(_request(movie, out), progress=_interrupting(8),
                             log=lambda m: None)
    rec = zarr_io.output_progress(out)
    assert rec["complete"] is False and rec["frames_done"] >= 8
    assert "complete: false" in io.is_incomplete(out)


def test_nan_figure_is_never_a_pass():
    from napari_neurorestore.core.trust.checks import Check, _never_nan_pass

    c = _never_nan_pass(Check("intensity_kept", float("nan"), "|x| <= 0.1", "pass", "ok"))
    assert c.status == "warn" and "could not be computed" in c.message
    ok = Check("intensity_kept", 0.01, "|x| <= 0.1", "pass", "ok")
    assert _never_nan_pass(ok) is ok


def test_report_on_all_zero_restoration_prints_no_nan_pass(movie, tmp_path, capsys):
    z = tmp_path / "zero.tif"
    tifffile.imwrite(z, np.zeros((32, 16, 16), np.float32))
    rc = main(["report", str(movie), str(z), "-o", str(tmp_path / "r.html"),
               "--no-transients"])
    out = capsys.readouterr().out
    assert rc == 0
    for line in out.splitlines():
        if line.strip().startswith("PASS"):
            assert "nan" not in line.split()[2].lower(), line


def test_traces_warn_on_nan_in_a_compare_movie(movie, tmp_path, capsys):
    a = tifffile.imread(movie).astype(np.float32)
    a[5:] = np.nan  # an incomplete restoration
    cmp_ = tmp_path / "restored.tif"
    tifffile.imwrite(cmp_, a)
    rois = tmp_path / "rois.tif"
    lab = np.zeros((16, 16), np.uint16)
    lab[2:6, 2:6] = 1
    tifffile.imwrite(rois, lab)
    rc = main(["traces", str(movie), "--rois", str(rois), "--compare", str(cmp_), "-o",
               str(tmp_path / "t.csv")])
    assert rc == 0
    assert "NaN" in capsys.readouterr().err


def test_widget_check_of_incomplete_layers(movie, tmp_path):
    from types import SimpleNamespace

    from napari_neurorestore._widgets.layers import incomplete_layer

    part = paths.incomplete_path(tmp_path / "o.tif")
    tifffile.imwrite(part, np.zeros((2, 4, 4), np.float32))
    assert "incomplete" in incomplete_layer(SimpleNamespace(
        name="o", metadata={"source_path": str(part)}))
    assert incomplete_layer(SimpleNamespace(name="in", metadata={"source_path": str(movie)}
                                            )) is None
    live = SimpleNamespace(name="live", metadata={arrays.PROGRESS_ATTR: {"complete": False}})
    assert "incomplete" in incomplete_layer(live)


def test_same_path_rules(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "l.tif").symlink_to(tmp_path / "a.tif")
    with pytest.raises(errors.InputError, match="would write over"):
        paths.check_distinct([("-o", tmp_path / "l.tif")], [("input", tmp_path / "a.tif")])
    with pytest.raises(errors.InputError, match="would write over"):
        paths.check_distinct([("-o", tmp_path / "s.zarr" / "0")], [("input", tmp_path / "s.zarr")])
    with pytest.raises(errors.InputError, match="would write over"):  # a store holding the input
        paths.check_distinct([("-o", tmp_path / "s.zarr")], [("input", tmp_path / "s.zarr/0")])
    with pytest.raises(errors.InputError, match="same file"):
        paths.check_distinct([("-o", "x.tif"), ("--save-model", "./x.tif")], [])
    paths.check_distinct([("-o", tmp_path / "b.tif"), ("--json", None)],
                      [("input", tmp_path / "a.tif")])


def test_constant_input_comes_back_constant(tmp_path):
    from napari_neurorestore import sparse

    z = np.zeros((16, 16, 16), np.float32)
    r = sparse(z, factor=2, epochs=1, width=8)
    assert r.shape == (16, 32, 16) and np.all(r == 0)
    p = tmp_path / "c.tif"
    tifffile.imwrite(p, np.full((16, 16, 16), 5, np.uint16))
    out = tmp_path / "o.tif"
    assert main(["sparse", str(p), "-o", str(out), "--factor", "2", "--epochs", "1",
                 "--width", "8", "-q"]) == 0
    assert np.all(tifffile.imread(out) == 5)
