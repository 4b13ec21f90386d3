"""The odd/even protocol of bench_denoise's real recordings (benchmarks/_odd_even.py): its
truth-free estimates, and the bias it has where the signal changes between frames."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, shift

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _odd_even import adjacent_change, excess_ratio, noise_floor, perfect_ratio, split  # noqa: E402


def _scene(n=40, size=48, drift=0.0, jitter=0.0, seed=0):
    """A smooth scene drifting ``drift`` px per frame along y, jittered by ``jitter`` px."""
    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.random((size, size)), 2.0) * 400
    dy = drift * np.arange(n) + rng.normal(0, jitter, n) if jitter or drift else np.zeros(n)
    return np.stack([shift(base, (d, 0), order=3, mode="wrap") for d in dy])


def test_adjacent_change_finds_noise_and_signal_change():
    rng = np.random.default_rng(1)
    static = _scene() + rng.normal(0, 5, (40, 48, 48))
    var, d = adjacent_change(static)
    assert var == pytest.approx(25, rel=0.1) and abs(d) < 2.5
    clean = _scene(drift=0.3)
    true_d = float(((clean[1:] - clean[:-1]) ** 2).mean())
    var, d = adjacent_change(clean + rng.normal(0, 5, clean.shape))
    assert var == pytest.approx(25, rel=0.15) and d == pytest.approx(true_d, rel=0.25)
    assert true_d > 5  # a real change, which the static movie has not


def test_protocol_rewards_a_temporal_blur_where_the_signal_moves():
    """The perfect restoration (the clean even frames) scores worse than a temporal blur
    against the odd frames when the scene moves (motion jitter), though its true error is zero: the
    protocol's ratio is no truth where D is large (the README's "Why real recordings
    gain less")."""
    rng = np.random.default_rng(2)
    clean = _scene(n=60, jitter=0.5)
    even, odd = split(clean + rng.normal(0, 5, clean.shape))
    ce = clean[0::2][:len(even)]
    blur = gaussian_filter(ce, (1.5, 0, 0))
    # the true floor (the second differences' estimate takes in the jitter too, above
    # the blur's whole error here): the bias below is D's alone
    floor = 25.0
    assert noise_floor(odd) > floor + 5
    g_mse = float(((blur - odd) ** 2).mean())
    assert float(((blur - ce) ** 2).mean()) > 1.0  # the blur is wrong against the truth
    assert excess_ratio(ce, odd, g_mse, floor) > 1.0  # yet the truth scores worse
    # with a static scene the truth wins, as it should
    clean = _scene(n=60)
    even, odd = split(clean + rng.normal(0, 5, clean.shape))
    ce = clean[0::2][:len(even)]
    noisy_g = ce + rng.normal(0, 2, ce.shape)
    assert excess_ratio(ce, odd, float(((noisy_g - odd) ** 2).mean()), noise_floor(odd)) < 0.2


def test_perfect_ratio_estimates_the_truths_own_score():
    """Where the scene drifts, the truth-free estimate of what the clean frames score on
    the protocol matches their actual score, and is far above 0."""
    rng = np.random.default_rng(3)
    clean = _scene(n=160, drift=0.2)
    movie = clean + rng.normal(0, 5, clean.shape)
    even, odd = split(movie)
    ce = clean[0::2][:len(even)]
    blur = gaussian_filter(even, (1.0, 1.0, 1.0))
    g_mse, floor = float(((blur - odd) ** 2).mean()), noise_floor(odd)
    actual = excess_ratio(ce, odd, g_mse, floor)
    assert actual > 0.15
    assert perfect_ratio(movie, g_mse, floor) == pytest.approx(actual, abs=0.06)
