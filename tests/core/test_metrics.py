import numpy as np
import pytest

from napari_neurorestore.core.metrics import nrmse, pearson, psnr, snr_db, ssim


def test_psnr_known_value():
    ref = np.zeros((10, 10))
    ref[0, 0] = 10.0
    x = ref + 1.0  # mse 1, range 10 -> 20 dB
    assert psnr(x, ref) == pytest.approx(20.0)
    assert psnr(ref, ref) == float("inf")


def test_ssim_identity_and_degradation(rng):
    a = rng.random((2, 32, 32))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a + 0.3 * rng.standard_normal(a.shape), a) < 0.8


def test_nrmse_pearson_snr():
    t = np.linspace(0, 1, 100)
    assert nrmse(t, t) == 0
    assert nrmse(t + 0.1, t) == pytest.approx(0.1)
    assert pearson(t, 2 * t + 1) == pytest.approx(1.0)
    assert np.isnan(pearson(t, np.ones_like(t)))
    assert snr_db(100.0, 1.0) == pytest.approx(20.0)
