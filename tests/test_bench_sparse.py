"""bench_sparse's figures: the truth-free noise floors of the real protocol and the trace
error budget of the simulation; the ΔF/F they share with the method's figures."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sparse  # noqa: E402

from napari_neurorestore.core.methods.sparse.figures import dff, roi_dff  # noqa: E402
from napari_neurorestore.core.simulate import simulate_calcium_movie  # noqa: E402


def test_dff_is_the_change_over_the_percentile_baseline():
    f = np.array([[10.0] * 8 + [20.0, 30.0]])
    np.testing.assert_allclose(dff(f), [[0.0] * 8 + [1.0, 2.0]])
    movie = np.broadcast_to(f[0][:, None, None], (10, 4, 4)).copy()
    labels = np.zeros((4, 4), int)
    labels[1:3, 1:3] = 1
    np.testing.assert_allclose(roi_dff(movie, labels), dff(f))


def test_noise_floors_recover_the_noise_variance_under_a_slow_signal():
    rng = np.random.default_rng(0)
    t = np.arange(400, dtype=np.float32)
    slow = 50 + 20 * np.sin(2 * np.pi * t / 200)[:, None, None]
    movie = (slow + rng.normal(0, 3.0, (400, 16, 16))).astype(np.float32)
    second, odd_even = bench_sparse.noise_floors(movie)
    assert abs(second - 9.0) < 0.6 and abs(odd_even - 9.0) < 0.6
    # a fast signal (changes every frame) is not noise, and both estimates err high on it
    fast = movie + 10 * (np.arange(400) % 2)[:, None, None]
    assert min(bench_sparse.noise_floors(fast)) > 20


def test_trace_budget_names_each_source_of_trace_error():
    sim = simulate_calcium_movie(n_frames=60, shape=(32, 32), n_cells=3, seed=1)
    truth = roi_dff(sim.clean, sim.labels)
    rng = float(np.ptp(sim.clean))
    line = bench_sparse.trace_budget(sim.clean, sim.raw, sim.clean, sim.labels, truth, 4, rng)
    assert "(ours 0.00 %)" in line  # the truth itself
    # ... whose acquired rows interpolated are the clean movie's cubic interpolation
    part = line.split("cubic of ours' acquired rows ")[1].split(" ")[0]
    assert part == line.split("cubic of the clean movie ")[1].split(" ")[0]
    noisy = bench_sparse.trace_budget(sim.raw.astype(np.float32), sim.raw, sim.clean,
                                      sim.labels, truth, 4, rng)
    assert "(ours 0.00 %)" not in noisy
    # the raw acquired rows' traces are the same whatever 'ours' is, and worse than the
    # clean acquired rows'
    raw_part = line.split("raw acquired rows")[1].split(";")[0]
    assert raw_part == noisy.split("raw acquired rows")[1].split(";")[0]
    acq = [float(t.split("ours on the acquired rows only ")[1].split(" ")[0]) for t in (line, noisy)]
    assert acq[0] < acq[1]


def test_the_oracle_deconvolution_recovers_the_simulators_traces():
    """_trace_bound: with the simulator's own kernel, a noise-free trace is fitted almost
    exactly, and on noisy traces the fit beats the raw traces (the floor is a floor)."""
    from _trace_bound import kernel_filter, oracle_traces
    from scipy.signal import lfilter

    from napari_neurorestore.core.metrics import nrmse

    t = 300
    spikes = np.zeros((3, t))
    spikes[0, [20, 90, 200]] = 1.0
    spikes[1, [50, 51, 180]] = 0.7
    spikes[2, [10, 250]] = 1.3
    b, a = kernel_filter(15.0, 1.5)
    calcium = lfilter(b, a, spikes, axis=1) / lfilter(b, a, np.eye(1, 60)[0]).max()
    f = 100.0 + 20.0 * calcium
    truth = dff(f)

    def score(g):
        return float(np.mean([nrmse(x, y) for x, y in zip(dff(g), truth, strict=True)]))

    clean_score, _ = oracle_traces(f + 1e-3 * np.random.default_rng(0).normal(size=f.shape),
                                   15.0, 1.5, score)
    assert clean_score < 0.01
    noisy = f + np.random.default_rng(1).normal(0, 2.0, f.shape)
    floor, mult = oracle_traces(noisy, 15.0, 1.5, score)
    assert floor < 0.6 * score(noisy) and mult > 0
