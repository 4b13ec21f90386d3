import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main


@pytest.fixture
def movie_path(tmp_path, tiny_movie):
    p = tmp_path / "in.tif"
    tifffile.imwrite(p, tiny_movie.raw[:30, :, :37])
    return p


def test_cli_denoise_save_and_reuse_model(movie_path, tmp_path, capsys):
    out = tmp_path / "out.tif"
    model = tmp_path / "m.pt"
    rc = main(["denoise", str(movie_path), "-o", str(out), "--epochs", "1", "--window", "5",
               "--seed", "1", "--device", "cpu", "--save-model", str(model), "-q"])
    assert rc == 0 and out.exists() and model.exists()
    raw = tifffile.imread(movie_path)
    res = tifffile.imread(out)
    assert res.shape == raw.shape and res.dtype == np.float32
    assert abs(res.mean() - raw.mean()) < 0.05 * raw.mean()  # input's units
    out2 = tmp_path / "out2.tif"
    assert main(["denoise", str(movie_path), "-o", str(out2), "--model", str(model), "-q"]) == 0
    np.testing.assert_allclose(tifffile.imread(out2), res, rtol=1e-5, atol=1e-4)
    assert "wrote" in capsys.readouterr().out


def test_cli_refuses_to_overwrite(movie_path, tmp_path, capsys):
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    rc = main(["denoise", str(movie_path), "-o", str(out), "--epochs", "1", "-q"])
    assert rc == 2 and out.read_bytes() == b"precious"
    assert "already exists" in capsys.readouterr().err
    rc = main(["denoise", str(movie_path), "-o", str(out), "--epochs", "1", "-q", "--overwrite",
               "--device", "cpu"])
    assert rc == 0 and tifffile.imread(out).shape == (30, 40, 37)


def test_cli_bad_input(tmp_path, capsys):
    p = tmp_path / "img.tif"
    tifffile.imwrite(p, np.zeros((32, 32), np.uint16))
    assert main(["denoise", str(p), "-o", str(tmp_path / "o.tif"), "-q"]) == 2
    assert "got 2D" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
    assert main(["denoise", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif")]) == 2


def test_cli_progress_bar_is_printed(movie_path, tmp_path, capsys):
    main(["denoise", str(movie_path), "-o", str(tmp_path / "o.tif"), "--epochs", "1",
          "--device", "cpu"])
    err = capsys.readouterr().err
    assert "train" in err and "predict" in err and "100.0%" in err


def test_python_api(tiny_movie, tmp_path):
    from napari_neurorestore import denoise
    from napari_neurorestore.core.models import save_model

    out, model = denoise(tiny_movie.raw[:20], epochs=1, patch_size=16, device="cpu",
                         return_model=True)
    assert out.shape == (20, 40, 40) and out.dtype == np.float32
    again = denoise(tiny_movie.raw[:20], model=model)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-4)
    path = save_model(model, tmp_path / "m.pt")  # a saved model's path works too
    np.testing.assert_allclose(denoise(tiny_movie.raw[:20], model=str(path)), out, rtol=1e-5,
                               atol=1e-4)


def test_demo_prints_psnr_noise_model_and_trust_verdict(capsys):
    assert main(["demo", "--frames", "60", "--size", "48", "--train-seconds", "2"]) == 0
    out = capsys.readouterr().out
    raw_db = float(out.split("PSNR raw")[1].split("dB")[0])
    den_db = float(out.split("PSNR denoised")[1].split("dB")[0])
    assert den_db > raw_db + 3
    assert "noise model: gain" in out and "trust checks" in out
