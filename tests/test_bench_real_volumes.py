"""The benchmark's recipe that makes a real volume an isotropic truth
(benchmarks/_real_volumes.py): it must find how much blurrier z is than y and x."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _real_volumes import isotropic_truth, isotropy_blur, structure_sigma2  # noqa: E402


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    v = np.zeros((64, 64, 64), np.float32)
    v[tuple(rng.integers(0, 64, (3, 300)))] = 1.0
    return v


def test_isotropy_blur_finds_the_extra_axial_width(points):
    vol = gaussian_filter(points, (2.5, 1.0, 1.0)) * 100 + 10
    vol += np.random.default_rng(1).normal(0, 0.02 * vol.std(), vol.shape)  # white noise
    s, wz, wl = isotropy_blur(vol)
    assert wz == pytest.approx(2.5**2, rel=0.25) and wl == pytest.approx(1.0, rel=0.3)
    assert s == pytest.approx(np.sqrt(2.5**2 - 1.0), abs=0.4)
    truth, used = isotropic_truth(vol)
    assert used == s and truth.shape == vol.shape and truth.min() >= 0
    assert structure_sigma2(truth, 0) == pytest.approx(structure_sigma2(truth, 2), rel=0.25)


def test_an_isotropic_volume_is_left_alone(points):
    vol = gaussian_filter(points, 1.5)
    assert isotropy_blur(vol)[0] < 0.6
    assert isotropic_truth(vol, 0.0)[1] == 0.0
