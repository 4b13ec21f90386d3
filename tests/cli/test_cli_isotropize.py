import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main

FAST = ["--steps", "2", "--width", "4", "--device", "cpu", "-q"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def volume_path(tmp_path):
    from napari_neurorestore.core.simulate import degrade_axial, simulate_neuron_volume

    v = simulate_neuron_volume((19, 32, 28), n_somata=1, n_neurites=4, seed=0)
    raw = degrade_axial(v, 1.5, 3, photons=100, seed=0).raw.astype(np.uint16)  # 7 slices
    p = tmp_path / "vol.tif"
    tifffile.imwrite(p, raw)
    return p


def test_cli_isotropize_save_and_reuse_model(volume_path, tmp_path, capsys):
    out = tmp_path / "iso.tif"
    model = tmp_path / "iso.pt"
    rc = main(["isotropize", str(volume_path), "-o", str(out), "--z-ratio", "3",
               "--save-model", str(model), *FAST])
    assert rc == 0 and out.exists() and model.exists()
    raw = tifffile.imread(volume_path)
    res = tifffile.imread(out)
    assert res.shape == (19, 32, 28) and res.dtype == np.float32  # round(6 * 3) + 1 slices
    np.testing.assert_allclose(res[::3].mean(), raw.mean(), rtol=0.15)  # the input's units
    with tifffile.TiffFile(out) as tf:
        assert tf.series[0].axes == "ZYX"
    said = capsys.readouterr().out
    assert "wrote" in said
    # 2 steps gain nothing: the self-check says so (7 slices: sigma_z assumed)
    assert "self-check" in said and "WARNING" in said and "sigma_z was assumed" in said
    out2 = tmp_path / "iso2.tif"
    assert main(["isotropize", str(volume_path), "-o", str(out2), "--model", str(model),
                 "-q"]) == 0
    np.testing.assert_allclose(tifffile.imread(out2), res, rtol=1e-5, atol=1e-3)
    # a model trained for another ratio is refused
    rc = main(["isotropize", str(volume_path), "-o", str(tmp_path / "x.tif"), "--model",
               str(model), "--z-ratio", "2", "-q"])
    assert rc == 2 and "z ratio" in capsys.readouterr().err


def test_cli_isotropize_non_integer_ratio_and_learned(volume_path, tmp_path):
    out = tmp_path / "iso.tif"
    rc = main(["isotropize", str(volume_path), "-o", str(out), "--z-ratio", "2.5",
               "--degradation", "learned", *FAST])
    assert rc == 0 and tifffile.imread(out).shape == (16, 32, 28)  # round(6 * 2.5) + 1


def test_cli_isotropize_errors(volume_path, tmp_path, capsys):
    out = tmp_path / "iso.tif"
    assert main(["isotropize", str(volume_path), "-o", str(out), *FAST]) == 2
    assert "--z-ratio is required" in capsys.readouterr().err
    assert main(["isotropize", str(volume_path), "-o", str(out), "--z-ratio", "0.5", *FAST]) == 2
    assert "--z-ratio must be" in capsys.readouterr().err  # the flag, not the field
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.ones((32, 32), np.uint16))
    assert main(["isotropize", str(flat), "-o", str(out), "--z-ratio", "2", *FAST]) == 2
    assert "3D volume" in capsys.readouterr().err
    out.write_bytes(b"precious")
    assert main(["isotropize", str(volume_path), "-o", str(out), "--z-ratio", "2", *FAST]) == 2
    assert out.read_bytes() == b"precious" and "already exists" in capsys.readouterr().err


def test_cli_isotropize_squeeze_augment(volume_path, tmp_path, capsys):
    """--squeeze-augment is recorded with the model; out of range: one line, exit 2."""
    from napari_neurorestore.core.models import load_model

    model = tmp_path / "sq.pt"
    assert main(["isotropize", str(volume_path), "-o", str(tmp_path / "sq.tif"), "--z-ratio",
                 "3", "--squeeze-augment", "0.5", "--save-model", str(model), *FAST]) == 0
    assert load_model(model).params["squeeze_augment"] == 0.5
    rc = main(["isotropize", str(volume_path), "-o", str(tmp_path / "bad.tif"), "--z-ratio",
               "3", "--squeeze-augment", "0.1", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "--squeeze-augment" in err and len(err.strip().splitlines()) == 1
