"""Transient fidelity (core/traces/transients.py): event detection, peak ratio, onset delay, flags."""

from __future__ import annotations

import numpy as np
import pytest

from napari_neurorestore.core import traces as tr
from napari_neurorestore.core.simulate import gaussian_blur_axis, simulate_calcium_movie
from napari_neurorestore.core.traces.tables import format_transients
from napari_neurorestore.core.traces.transients import (
    DEFAULTS,
    detect_events,
    noise_sd,
    smooth_trace,
    transient_fidelity,
)

ONSETS = (40, 110, 190, 250, 330)
AMPS = (1.0, 0.6, 1.4, 0.8, 1.0)


def transients(n=400, onsets=ONSETS, amps=AMPS, shift=0.0, scale=1.0, tau=15.0):
    """GCaMP-like ΔF/F: each event rises (1 - exp(-k/1.5)) and decays exp(-k/tau); the
    kernel is evaluated at t - onset - shift, so fractional shifts are exact."""
    t = np.arange(n, dtype=np.float64)
    out = np.zeros(n)
    for t0, a in zip(onsets, amps, strict=True):
        k = t - t0 - shift
        on = k > 0
        out[on] += a * (1 - np.exp(-k[on] / 1.5)) * np.exp(-k[on] / tau)
    return scale * out


@pytest.fixture
def noisy_ref():
    rng = np.random.default_rng(7)
    return transients() + rng.normal(0, 0.03, 400)


# ------------------------------------------------------------------ smoothing and noise


def test_smooth_trace_matches_scipy_and_is_nan_safe():
    ndi = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 50))
    for sigma in (0.7, 1.0, 2.5):
        np.testing.assert_allclose(smooth_trace(x, sigma),
                                   ndi.gaussian_filter1d(x, sigma, axis=-1, mode="reflect"),
                                   atol=1e-12)
    np.testing.assert_array_equal(smooth_trace(x, 0), x)
    y = np.full(30, 2.0)
    y[10:13] = np.nan
    s = smooth_trace(y, 1.0)
    assert np.isnan(s[10:13]).all()  # NaN frames stay NaN ...
    np.testing.assert_allclose(np.delete(s, [10, 11, 12]), 2.0)  # ... and do not leak
    assert np.isnan(smooth_trace(np.full(5, np.nan))).all()
    with pytest.raises(ValueError, match="smoothing width"):
        smooth_trace(x, -1)


def test_noise_sd_of_white_noise_ignores_transients():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.05, 4000)
    assert noise_sd(noise) == pytest.approx(0.05, rel=0.06)
    sig = transients(4000, onsets=range(50, 4000, 120), amps=[1.0] * 33)
    assert noise_sd(sig + noise) == pytest.approx(0.05, rel=0.1)


# ------------------------------------------------------------------ detection


def test_detect_events_finds_each_transient_once(noisy_ref):
    ev = detect_events(noisy_ref)
    assert len(ev) == len(ONSETS)
    # the peak of the kernel is a few frames after the onset
    for e, t0 in zip(ev, ONSETS, strict=True):
        assert t0 < e <= t0 + 8
    # events riding on the decay of an earlier one are split from it, unless too close
    ride = transients(onsets=(50, 70), amps=(1.0, 1.0)) + np.random.default_rng(2).normal(0, .02, 400)
    assert len(detect_events(ride)) == 2
    assert len(detect_events(ride, min_separation=30)) == 1
    # a minimum peak height drops the small events
    assert len(detect_events(noisy_ref, min_peak=0.65)) == 3


def test_noise_only_reference_has_no_events_and_no_flags():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 0.05, (4, 600))
    test = ref * 0.3
    assert all(len(detect_events(r)) == 0 for r in ref)
    rows = transient_fidelity(ref, test)
    for r in rows:
        assert r["n_events"] == 0 and len(r["events"]) == 0
        assert np.isnan(r["peak_ratio"]) and np.isnan(r["onset_delay"])
        assert r["flags"] == [] and len(r["flagged_events"]) == 0
    assert transient_fidelity(np.zeros(50), np.zeros(50))[0]["n_events"] == 0  # flat: no crash


# ------------------------------------------------------------------ fidelity


def test_identical_traces_ratio_one_delay_zero_no_flags(noisy_ref):
    (row,) = transient_fidelity(noisy_ref, noisy_ref)
    assert row["n_events"] == len(ONSETS)
    assert row["peak_ratio"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(row["peak_ratios"], 1.0)
    assert row["onset_delay"] == pytest.approx(0.0, abs=1e-9)
    assert row["flags"] == [] and len(row["flagged_events"]) == 0


def test_halved_transients_are_flagged_flattened(noisy_ref):
    (row,) = transient_fidelity(noisy_ref, transients(scale=0.5))
    assert row["peak_ratio"] == pytest.approx(0.5, abs=0.1)
    assert row["flags"] == ["flattened"]
    np.testing.assert_array_equal(row["flagged_events"], row["events"])
    assert abs(row["onset_delay"]) < 0.5
    # one flattened event of five: listed, but the median ratio does not flag the ROI
    amps = list(AMPS)
    amps[2] *= 0.4
    (row,) = transient_fidelity(noisy_ref, transients(amps=amps))
    assert row["flags"] == []
    assert row["flagged_events"].tolist() == [row["events"][2]]
    assert row["peak_ratios"][2] == pytest.approx(0.4, abs=0.1)


@pytest.mark.parametrize("shift", [3.0, -3.0])
def test_shift_by_three_frames_is_flagged(noisy_ref, shift):
    (row,) = transient_fidelity(noisy_ref, transients(shift=shift))
    assert row["onset_delay"] == pytest.approx(shift, abs=0.5)  # + = restored lags
    assert row["flags"] == ["shifted"]
    assert row["peak_ratio"] == pytest.approx(1.0, abs=0.1)  # the peaks are found anyway


def test_sub_frame_shift_is_measured_and_not_flagged():
    ref = transients()
    (row,) = transient_fidelity(ref, transients(shift=0.5))
    assert row["onset_delay"] == pytest.approx(0.5, abs=0.2)
    assert row["flags"] == []
    (row,) = transient_fidelity(ref, transients(shift=1.6))
    assert row["onset_delay"] == pytest.approx(1.6, abs=0.25) and row["flags"] == ["shifted"]
    # thresholds are parameters
    (row,) = transient_fidelity(ref, transients(shift=1.6), max_delay=2.0)
    assert row["flags"] == []
    (row,) = transient_fidelity(ref, transients(scale=0.7), min_peak_ratio=0.6)
    assert row["flags"] == []


def test_nan_frames_are_tolerated(noisy_ref):
    ref = noisy_ref.copy()
    test = transients(scale=0.5)
    ref[[5, 6, 200, 201, 399]] = np.nan
    test[[100, 115, 300]] = np.nan
    (row,) = transient_fidelity(ref, test)
    assert row["n_events"] == len(ONSETS)
    assert row["peak_ratio"] == pytest.approx(0.5, abs=0.1) and row["flags"] == ["flattened"]
    assert abs(row["onset_delay"]) < 0.5
    all_nan = np.full(400, np.nan)
    (row,) = transient_fidelity(all_nan, test)
    assert row["n_events"] == 0 and row["flags"] == []
    (row,) = transient_fidelity(ref, all_nan)  # events, but nothing to compare them with
    assert row["n_events"] == len(ONSETS) and np.isnan(row["peak_ratio"])
    assert row["flags"] == []


def test_2d_input_one_row_per_roi_and_1d_is_one_roi(noisy_ref):
    ref = np.stack([noisy_ref, noisy_ref, np.random.default_rng(5).normal(0, .03, 400)])
    test = np.stack([noisy_ref, transients(scale=0.5), ref[2]])
    rows = transient_fidelity(ref, test)
    assert len(rows) == 3
    assert [r["flags"] for r in rows] == [[], ["flattened"], []]
    assert [r["n_events"] for r in rows] == [5, 5, 0]
    assert rows[0]["events"].dtype == np.int64
    assert len(transient_fidelity(noisy_ref, noisy_ref)) == 1
    text = format_transients(rows)
    lines = text.splitlines()
    assert len(lines) == 4 and "peak_ratio" in lines[0]
    assert "⚠ flattened" in lines[2] and "⚠" not in lines[1] + lines[3]


def test_bad_input_raises_clear_value_errors(noisy_ref):
    with pytest.raises(ValueError, match="same shape"):
        transient_fidelity(noisy_ref, noisy_ref[:-1])
    with pytest.raises(ValueError, match=r"\(n_rois, n_frames\)"):
        transient_fidelity(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="one trace"):
        detect_events(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="array of numbers"):
        transient_fidelity(["a", "b"], [1, 2])
    for kw, msg in (({"threshold_sd": 0}, "threshold_sd"), ({"window": 1}, "window"),
                    ({"min_peak_ratio": -1}, "min_peak_ratio"), ({"max_delay": np.nan}, "max_delay"),
                    ({"smooth_frames": -0.5}, "smooth_frames")):
        with pytest.raises(ValueError, match=msg):
            transient_fidelity(noisy_ref, noisy_ref, **kw)
    with pytest.raises(ValueError, match="min_separation"):
        detect_events(noisy_ref, min_separation=1.5)


def test_defaults_are_the_signature_defaults():
    import inspect

    sig = inspect.signature(transient_fidelity).parameters
    for k in ("smooth_frames", "threshold_sd", "min_peak_ratio", "max_delay", "min_separation"):
        assert sig[k].default == DEFAULTS[k]
    assert sig["window"].default is None and DEFAULTS["window"] == 10


# ------------------------------------------------------------------ on the simulator


@pytest.fixture(scope="module")
def sim_dff():
    """ΔF/F (traces module, default F0) of the simulator's clean truth and of restorations."""
    kw = dict(n_frames=400, shape=(64, 64), n_cells=8, seed=4)
    sim = simulate_calcium_movie(**kw)
    half = simulate_calcium_movie(**kw, dff_per_spike=0.5).clean  # F0 + 0.5 ΔF, same events
    good = gaussian_blur_axis(sim.clean, 1.0, 0)
    good += np.random.default_rng(1).normal(0, 1.0, good.shape).astype(np.float32)
    shifted = np.concatenate([np.repeat(sim.clean[:1], 3, 0), sim.clean[:-3]])
    res = tr.compute_traces(sim.clean, sim.labels,
                            {"good": good, "half": half, "shifted": shifted, "raw": sim.raw},
                            names=["truth", "good", "half", "shifted", "raw"])
    return {lt.name: lt.dff for lt in res.layers}


def _summary(rows):
    return (np.nanmedian([r["peak_ratio"] for r in rows]),
            np.nanmedian([r["onset_delay"] for r in rows]),
            sum(bool(r["flags"]) for r in rows))


def test_simulator_truth_and_a_good_denoiser_raise_no_flag(sim_dff):
    truth = sim_dff["truth"]
    for name in ("truth", "good"):
        rows = transient_fidelity(truth, sim_dff[name])
        assert all(r["n_events"] >= 1 for r in rows)
        ratio, delay, n_flagged = _summary(rows)
        assert n_flagged == 0, (name, [r["flags"] for r in rows])
        assert ratio == pytest.approx(1.0, abs=0.06) and abs(delay) < 0.1
    # the raw movie as reference (the usual case in the widget), the truth as restored
    rows = transient_fidelity(sim_dff["raw"], truth)
    assert _summary(rows)[2] == 0


def test_simulator_halved_and_shifted_are_flagged(sim_dff):
    truth = sim_dff["truth"]
    rows = transient_fidelity(truth, sim_dff["half"])
    ratio, _, _ = _summary(rows)
    assert ratio == pytest.approx(0.5, abs=0.1)
    assert all("flattened" in r["flags"] for r in rows)
    rows = transient_fidelity(sim_dff["raw"], sim_dff["half"])
    assert all("flattened" in r["flags"] for r in rows)
    rows = transient_fidelity(truth, sim_dff["shifted"])
    _, delay, _ = _summary(rows)
    assert delay == pytest.approx(3.0, abs=0.5)
    assert all(r["flags"] == ["shifted"] for r in rows)


# ------------------------------------------------------------------ in the traces module


def test_fidelity_rows_and_csv_carry_the_transient_columns(tmp_path):
    import csv

    kw = dict(n_frames=200, shape=(48, 48), n_cells=4, seed=2)
    sim = simulate_calcium_movie(**kw)
    half = simulate_calcium_movie(**kw, dff_per_spike=0.5).clean
    res = tr.compute_traces(sim.clean, sim.labels, {"same": sim.clean.copy(), "half": half},
                            names=["truth", "same", "half"])
    rows = res.fidelity()
    assert len(rows) == 3 * len(res.roi_ids)
    expect = transient_fidelity(res.reference.dff, res.layer("half").dff)
    for i, rid in enumerate(res.roi_ids):
        ref_row, same, flat = rows[3 * i: 3 * i + 3]
        assert ref_row["roi"] == same["roi"] == flat["roi"] == rid
        assert (ref_row["layer"], same["layer"], flat["layer"]) == ("truth", "same", "half")
        assert ref_row["n_events"] == same["n_events"] == flat["n_events"] >= 1
        np.testing.assert_array_equal(ref_row["events"], detect_events(res.reference.dff[i]))
        assert np.isnan(ref_row["peak_ratio"]) and ref_row["flags"] == []
        assert same["peak_ratio"] == pytest.approx(1.0) and same["flags"] == []
        assert flat["flags"] == ["flattened"]
        assert flat["peak_ratio"] == pytest.approx(expect[i]["peak_ratio"])
        assert flat["onset_delay"] == pytest.approx(expect[i]["onset_delay"], nan_ok=True)
        assert {"pearson_r", "nrmse", "snr_db"} <= set(flat)  # the existing columns stay
    # options reach transient_fidelity; results are cached per set of options
    assert all(r["flags"] == [] for r in res.fidelity(min_peak_ratio=0.3))
    again = res.fidelity()
    assert again is not rows and [r["flags"] for r in again] == [r["flags"] for r in rows]
    again[2]["flags"].append("edited")  # the cache hands out copies of the rows
    assert res.fidelity()[2]["flags"] == ["flattened"]
    p = tmp_path / "fid.csv"
    tr.write_fidelity_csv(p, res)
    with open(p, newline="") as fh:
        fr = list(csv.DictReader(fh))
    assert list(fr[0]) == list(tr.FIDELITY_COLUMNS)
    assert [r["flags"] for r in fr[:3]] == ["", "", "flattened"]
    assert float(fr[2]["peak_ratio"]) == pytest.approx(rows[2]["peak_ratio"])
    assert int(fr[2]["n_events"]) == rows[2]["n_events"]
    assert fr[0]["peak_ratio"] == "nan"
