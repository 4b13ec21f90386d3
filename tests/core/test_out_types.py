"""Issue 27, item 2: ``--dtype uint16|int16|float32`` on every method (the API's ``dtype=``):
integer outputs keep the input's units and offset, rounded to nearest and clipped (counted
in the provenance, one warning), and a partial integer output never looks finished."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli.main import main
from napari_neurorestore.core import engine, io, paths, zarr_io
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.out_types import IntegerOutput, output_dtype

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = ["--train-seconds", "0.5", "--epochs", "1", "-q"]


def _as(a, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.rint(np.asarray(a, np.float64)), info.min, info.max).astype(dtype)


def test_integer_output_rounds_clips_and_counts():
    o = IntegerOutput(np.full((2, 5), 7, np.uint16))
    o[0] = np.array([1.4, 1.6, -3.0, 70000.0, np.nan], np.float32)
    o[1, :2] = 2.5  # to nearest, halves to even (numpy's rint)
    assert o[0].tolist() == [1, 2, 0, 65535, 0] and o[1].tolist() == [2, 2, 7, 7, 7]
    rec = o.record()
    assert (rec["clipped_below"], rec["clipped_above"], rec["nan_as_zero"]) == (1, 1, 1)
    assert rec["dtype"] == "uint16" and rec["range"] == [0, 65535]
    assert "2 value(s)" in o.warning()
    i16 = IntegerOutput(np.zeros(3, np.int16))
    i16[:] = np.array([-40000.0, -2.6, 40000.0])
    assert i16[:].tolist() == [-32768, -3, 32767] and i16.warning() is not None


def test_unknown_dtype_is_one_line():
    assert output_dtype(None) == np.float32 and output_dtype("uint16") == np.uint16
    with pytest.raises(InputError, match="--dtype float64: unknown output type"):
        output_dtype("float64")


@pytest.fixture(scope="module")
def trained(tiny_movie_module):
    from napari_neurorestore import denoise

    raw = tiny_movie_module.raw
    f32, model = denoise(raw, train_seconds=0.5, epochs=1, device="cpu", return_model=True)
    return raw, f32, model


@pytest.fixture(scope="module")
def tiny_movie_module():
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=40, shape=(32, 32), n_cells=4, seed=3)


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_api_integer_output_is_the_float_output_rounded(trained, dtype):
    from napari_neurorestore import denoise, restore

    raw, f32, model = trained
    out = denoise(raw, model=model, device="cpu", dtype=dtype)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, _as(f32, dtype))  # the input's units and offset
    res = restore("denoise", raw, model=model, device="cpu", dtype=dtype, return_result=True)
    assert res.metadata["neurorestore"]["output_type"]["dtype"] == dtype
    with pytest.raises(TypeError, match=f"expected a {dtype} array"):
        denoise(raw, model=model, device="cpu", dtype=dtype, out=np.empty(raw.shape, np.float32))


def test_api_clipping_warns_once_and_is_recorded(trained):
    from napari_neurorestore import restore

    raw, _f32, model = trained
    low = raw.astype(np.float32) - 120.0  # most of the movie below 0: uint16 clips it
    with pytest.warns(UserWarning, match="outside the uint16 range") as rec:
        res = restore("denoise", low, model=model, device="cpu", dtype="uint16",
                      return_result=True)
    assert len([w for w in rec if "uint16 range" in str(w.message)]) == 1
    assert res.data.min() == 0
    assert res.metadata["neurorestore"]["output_type"]["clipped_below"] > 0


@pytest.fixture
def files(tmp_path, tiny_movie_module):
    p = tmp_path / "in.tif"
    tifffile.imwrite(p, tiny_movie_module.raw.astype(np.uint16))
    m = tmp_path / "m.pt"
    assert main(["denoise", str(p), "-o", str(tmp_path / "f.tif"), "--save-model", str(m),
                 "--device", "cpu", *FAST]) == 0
    return p, m, tifffile.imread(tmp_path / "f.tif")


@pytest.mark.parametrize("dtype,suffix", [("uint16", ".tif"), ("int16", ".zarr"),
                                          ("uint16", ".ome.zarr")])
def test_cli_dtype_writes_the_type_and_records_it(files, tmp_path, dtype, suffix, capsys):
    p, m, f32 = files
    out = tmp_path / f"o{suffix}"
    assert main(["denoise", str(p), "-o", str(out), "--model", str(m), "--dtype", dtype,
                 "--device", "cpu", "-q"]) == 0
    assert re.search(rf", {dtype}[;)]", capsys.readouterr().out)
    if suffix == ".tif":
        with tifffile.TiffFile(out) as tf:
            a = tf.asarray()
            md = json.loads(tf.pages.first.description)["neurorestore"]
    else:
        a, _ = zarr_io.open_zarr(out)
        a = np.asarray(a)
        md = zarr_io.zarr_attrs(out)["neurorestore"]
        assert zarr_io.output_progress(out)["complete"] is True
    assert a.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(a, _as(f32, dtype))
    rec = md["output_type"]
    assert rec["dtype"] == dtype and rec["clipped_below"] == 0 and rec["clipped_above"] == 0


def test_cli_clipping_warns_once(tmp_path, capsys):
    p = tmp_path / "neg.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(p, (rng.normal(0, 5, (24, 16, 16)) - 50).astype(np.float32))
    out = tmp_path / "o.tif"
    assert main(["denoise", str(p), "-o", str(out), "--dtype", "uint16", "--device", "cpu",
                 *FAST]) == 0
    err = capsys.readouterr().err
    assert err.count("outside the uint16 range") == 1
    with tifffile.TiffFile(out) as tf:
        md = json.loads(tf.pages.first.description)["neurorestore"]
        assert tf.asarray().max() == 0
    assert md["output_type"]["clipped_below"] > 0


def test_cli_bad_dtype_exits_2(files, tmp_path, capsys):
    p, m, _ = files
    with pytest.raises(SystemExit) as e:
        main(["denoise", str(p), "-o", str(tmp_path / "o.tif"), "--dtype", "float64"])
    assert e.value.code == 2
    assert main(["denoise", str(p), "-o", str(tmp_path / "o.zarr"), "--dtype", "int16",
                 "--workers", "1", "--model", str(m), "-q"]) == 2
    assert "leave out --dtype" in capsys.readouterr().err


def _interrupting(after):
    def cb(p):
        if p.stage == "predict" and p.step >= after:
            raise KeyboardInterrupt
    return cb


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_interrupted_integer_output_never_looks_finished(tmp_path, suffix, capsys):
    rng = np.random.default_rng(1)
    movie = tmp_path / "in.tif"
    tifffile.imwrite(movie, rng.poisson(20, (32, 16, 16)).astype(np.uint16))
    out = tmp_path / f"out{suffix}"
    params = DenoiseParams(train_seconds=0.5, epochs=1, chunk_frames=8, device="cpu")
    req = engine.Request("denoise", [str(movie)], str(out), params, {}, quiet=True,
                         dtype="uint16")
    with pytest.raises(KeyboardInterrupt):
        engine.restore_files(req, progress=_interrupting(8), log=print)
    assert "the rest reads as 0" in capsys.readouterr().out
    if suffix == ".tif":
        assert not out.exists()  # never under the final name
        a = tifffile.imread(paths.incomplete_path(out))
    else:
        assert zarr_io.output_progress(out)["complete"] is False
        a = np.asarray(zarr_io.open_zarr(out)[0])
        assert io.is_incomplete(out)
    assert a.dtype == np.uint16 and (a[:8] > 0).all() and (a[-8:] == 0).all()


def test_clip_record_reaches_an_imagej_tiffs_info(tmp_path):
    """With pixel sizes the TIFF is an ImageJ hyperstack: the record goes into its Info,
    beside the provenance, and the scale stays."""
    from napari_neurorestore.core.out_types import record_output_type, wrap

    p = tmp_path / "o.tif"
    raw = io.open_output(p, (4, 8, 8), metadata={"neurorestore": {"method": "m"}}, axes="TYX",
                         scale=[0.5, 2.0, 2.0], space_unit="um", time_unit="second",
                         temporary=True, dtype=np.uint16)
    out = wrap(raw, np.dtype(np.uint16))
    out[:2] = np.full((2, 8, 8), 70000.0)
    out[2:] = np.full((2, 8, 8), -1.0)
    assert record_output_type(out, raw, p)["clipped_above"] == 128
    io.finish_output(raw)
    del raw, out
    with tifffile.TiffFile(p) as tf:
        info = json.loads(tf.imagej_metadata["Info"])["neurorestore"]
        assert info["method"] == "m" and info["output_type"]["clipped_below"] == 128
        assert tf.imagej_metadata["unit"] == "um" and tf.pages.first.resolution == (0.5, 0.5)
        assert tf.asarray().dtype == np.uint16 and tf.asarray()[0, 0, 0] == 65535
