import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main

FAST = ["--epochs", "1", "--width", "8", "--seed", "0", "--device", "cpu", "-q"]


@pytest.fixture
def full_path(tmp_path, tiny_movie):
    p = tmp_path / "full.tif"
    tifffile.imwrite(p, tiny_movie.raw[:24])
    return p


@pytest.fixture
def sparse_path(tmp_path, tiny_movie):
    p = tmp_path / "sparse.tif"
    tifffile.imwrite(p, tiny_movie.raw[:24, ::4])
    return p


def test_cli_sparse_save_and_reuse_model(sparse_path, tmp_path, capsys):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    rc = main(["sparse", str(sparse_path), "-o", str(out), "--factor", "4",
               "--save-model", str(model), *FAST])
    assert rc == 0 and out.exists() and model.exists()
    raw = tifffile.imread(sparse_path)
    res = tifffile.imread(out)
    assert res.shape == (24, 40, 40) and res.dtype == np.float32
    assert abs(res.mean() - raw.mean()) < 0.05 * raw.mean()  # input's units
    assert "pixel size along y" in capsys.readouterr().out
    out2 = tmp_path / "out2.tif"
    assert main(["sparse", str(sparse_path), "-o", str(out2), "--model", str(model), "-q"]) == 0
    np.testing.assert_allclose(tifffile.imread(out2), res, rtol=1e-5, atol=1e-3)
    # a model for another factor is refused with a clear message
    rc = main(["sparse", str(sparse_path), "-o", str(tmp_path / "o3.tif"), "--model",
               str(model), "--factor", "2", "-q"])
    assert rc == 2 and "trained for factor 4" in capsys.readouterr().err


def test_cli_simulate_prints_figures(full_path, tmp_path, capsys):
    out = tmp_path / "sim.tif"
    assert main(["sparse", str(full_path), "--simulate", "--factor", "4", "-o", str(out),
                 *FAST]) == 0
    assert tifffile.imread(out).shape == (24, 40, 40)
    text = capsys.readouterr().out
    assert "PSNR" in text and "SSIM" in text and "trace NRMSE" in text and "cubic" in text


def test_cli_axis_x_and_no_denoise(sparse_path, tmp_path):
    xs = tmp_path / "xs.tif"
    tifffile.imwrite(xs, np.swapaxes(tifffile.imread(sparse_path), 1, 2))  # (24, 40, 10)
    out = tmp_path / "o.tif"
    assert main(["sparse", str(xs), "-o", str(out), "--axis", "x", "--no-denoise", *FAST]) == 0
    res = tifffile.imread(out)
    assert res.shape == (24, 40, 40)
    np.testing.assert_array_equal(res[:, :, ::4], tifffile.imread(xs).astype(np.float32))


def test_cli_reference_training(sparse_path, full_path, tmp_path, capsys):
    out = tmp_path / "o.tif"
    assert main(["sparse", str(sparse_path), "-o", str(out), "--reference", str(full_path),
                 *FAST]) == 0
    assert tifffile.imread(out).shape == (24, 40, 40)


def test_cli_refuses_a_reference_of_another_rig_before_any_work(sparse_path, tmp_path,
                                                                  capsys):
    """A reference whose frames are not the input's lines x factor is refused by the
    method's check_options, the one the Restore dock's reference picker gets."""
    ref, out = tmp_path / "ref.tif", tmp_path / "o.tif"
    tifffile.imwrite(ref, np.ones((4, 40, 20), np.float32))  # lines of 20, not 40 pixels
    assert main(["sparse", str(sparse_path), "-o", str(out), "--reference", str(ref),
                 *FAST]) == 2
    assert "do not match the input's" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("factor, match", [("1", "factor must be between 2 and 16"),
                                           ("16", "larger than the data allows")])
def test_cli_bad_factor(tmp_path, tiny_movie, capsys, factor, match):
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, tiny_movie.raw[:12, :24])  # 24 rows: M=16 keeps only 2 of them
    out = tmp_path / "o.tif"
    rc = main(["sparse", str(full), "--simulate", "--factor", factor, "-o", str(out), "-q"])
    assert rc == 2 and match in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_to_overwrite(sparse_path, tmp_path, capsys):
    out = tmp_path / "o.tif"
    out.write_bytes(b"precious")
    assert main(["sparse", str(sparse_path), "-o", str(out), *FAST]) == 2
    assert out.read_bytes() == b"precious" and "already exists" in capsys.readouterr().err


def test_python_api(tiny_movie):
    from napari_neurorestore import sparse

    out, model = sparse(tiny_movie.raw[:20, ::4], factor=4, epochs=1, width=8, device="cpu",
                        return_model=True)
    assert out.shape == (20, 40, 40) and out.dtype == np.float32
    again = sparse(tiny_movie.raw[:20, ::4], model=model)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-3)
    res = sparse(tiny_movie.raw[:20], factor=4, simulate=True, epochs=1, width=8,
                 device="cpu", labels=tiny_movie.labels, return_result=True)
    figs = res.metadata["neurorestore"]["simulation"]
    assert {"psnr", "ssim", "trace_nrmse", "cubic"} <= set(figs)


def test_cli_temporal_denoise_is_auto_by_default_and_honoured(sparse_path, tmp_path):
    from napari_neurorestore.core.models import load_model

    out, model = tmp_path / "o.tif", tmp_path / "m.pt"
    assert main(["sparse", str(sparse_path), "-o", str(out),
                 "--save-model", str(model), *FAST]) == 0
    m = load_model(model)  # auto at M=4: off
    assert m.params["temporal_denoise"] == "auto" and "denoiser" not in m.norm
    assert m.info["denoise_stage"] == "off (temporal_denoise=auto: on from M=8)"
    out2, model2 = tmp_path / "o2.tif", tmp_path / "m2.pt"
    # the flag alone (as before it took a value) turns it on
    assert main(["sparse", str(sparse_path), "-o", str(out2), "--temporal-denoise",
                 "--save-model", str(model2), *FAST]) == 0
    m2 = load_model(model2)
    assert m2.params["temporal_denoise"] == "on" and "denoiser" in m2.norm
    with pytest.raises(SystemExit) as e:  # argparse's one line, exit 2
        main(["sparse", str(sparse_path), "-o", str(tmp_path / "o3.tif"),
              "--temporal-denoise", "sometimes", *FAST])
    assert e.value.code == 2
