import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core.methods.upsample.spec import bin_array
from napari_neurorestore.core.simulate import simulate_neuron_volume

FAST = ["--steps", "3", "--patch-size", "12", "--width", "8", "--seed", "1", "--device", "cpu",
        "-q"]


@pytest.fixture(scope="module")
def coarse():
    truth = simulate_neuron_volume((16, 48, 48), n_somata=2, n_neurites=4, seed=1)
    return (bin_array(truth, (2, 2, 2)) * 3000).astype(np.uint16)  # (8, 24, 24)


@pytest.fixture
def vol_path(tmp_path, coarse):
    p = tmp_path / "in.tif"
    tifffile.imwrite(p, coarse)
    return p


def test_cli_upsample_save_and_reuse_model(vol_path, coarse, tmp_path, capsys):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    rc = main(["upsample", str(vol_path), "-o", str(out), "--factor", "2",
               "--save-model", str(model), *FAST])
    assert rc == 0 and out.exists() and model.exists()
    res = tifffile.imread(out)
    assert res.shape == (16, 48, 48) and res.dtype == np.float32
    # the input's units: binning the output gives the input back (back-projection)
    np.testing.assert_allclose(bin_array(res, (2, 2, 2)), coarse, rtol=1e-4, atol=0.05)
    assert "wrote" in capsys.readouterr().out
    out2 = tmp_path / "out2.tif"
    assert main(["upsample", str(vol_path), "-o", str(out2), "--model", str(model), "-q",
                 "--tile-size", "8"]) == 0
    np.testing.assert_allclose(tifffile.imread(out2), res, rtol=1e-4, atol=1e-3)


def test_cli_upsample_lateral_only_2d_and_progress(tmp_path, coarse, capsys):
    p = tmp_path / "img.tif"
    tifffile.imwrite(p, coarse[3])
    out = tmp_path / "o.tif"
    assert main(["upsample", str(p), "-o", str(out), "--factor", "3", *FAST[:-1]]) == 0
    assert tifffile.imread(out).shape == (72, 72)
    err = capsys.readouterr().err
    assert "train" in err and "predict" in err and "100.0%" in err
    v = tmp_path / "v.tif"
    tifffile.imwrite(v, coarse[:2])
    out3 = tmp_path / "o3.tif"
    assert main(["upsample", str(v), "-o", str(out3), "--lateral-only", *FAST]) == 0
    assert tifffile.imread(out3).shape == (2, 72, 72)


def test_cli_upsample_bad_input(tmp_path, vol_path, capsys):
    out = tmp_path / "o.tif"
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((8, 10, 10), np.uint16))
    assert main(["upsample", str(small), "-o", str(out), *FAST[:2], "-q"]) == 2
    assert "smaller than one training patch" in capsys.readouterr().err
    four = tmp_path / "four.tif"
    tifffile.imwrite(four, np.zeros((2, 3, 32, 32), np.uint16))
    assert main(["upsample", str(four), "-o", str(out), "-q"]) == 2
    assert "got 4D" in capsys.readouterr().err
    assert not out.exists()
    for f in ("1", "5"):
        with pytest.raises(SystemExit) as e:
            main(["upsample", str(vol_path), "-o", str(out), "--factor", f])
        assert e.value.code == 2
    out.write_bytes(b"precious")
    assert main(["upsample", str(vol_path), "-o", str(out), *FAST]) == 2
    assert out.read_bytes() == b"precious" and "already exists" in capsys.readouterr().err


def test_python_api(coarse):
    from napari_neurorestore import upsample

    out, model = upsample(coarse, 2, steps=3, patch_size=12, width=8, device="cpu",
                          return_model=True)
    assert out.shape == (16, 48, 48) and out.dtype == np.float32
    res = upsample(coarse, 2, model=model, return_result=True)
    np.testing.assert_allclose(res.data, out, rtol=1e-5, atol=1e-3)
    assert res.scale_factors == (0.5, 0.5, 0.5) and res.translate_shift == (-0.25,) * 3
