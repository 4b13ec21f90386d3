"""Trust checks: noise model, forward models, residual checks (tiny simulated data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter

from napari_neurorestore.core import trust
from napari_neurorestore.core.simulate import simulate_calcium_movie


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=150, shape=(48, 48), n_cells=8, seed=3)


@pytest.fixture(scope="module")
def cases(sim):
    raw = sim.raw.astype(np.float32)
    clean = sim.clean
    f0 = np.percentile(clean, 10, axis=0)
    return {"truth": clean, "raw": raw, "oversmooth": gaussian_filter(raw, (6, 2, 2)),
            "halved": f0 + 0.5 * (clean - f0)}


def test_box_mean_matches_scipy():
    x = np.random.default_rng(0).normal(size=(9, 12, 15))
    got = trust.box_mean(x, (3, 1, 5))
    ref = uniform_filter(x, size=(3, 1, 5), mode="nearest")
    np.testing.assert_allclose(got, ref, atol=1e-10)
    with pytest.raises(ValueError, match="odd"):
        trust.box_mean(x, (2, 1, 1))


@pytest.mark.parametrize("gain,offset,read", [(2.0, 100.0, 1.5), (6.0, 400.0, 3.0), (2.0, 100.0, 8.0)])
def test_noise_model_recovers_gain_and_offset(gain, offset, read):
    s = simulate_calcium_movie(n_frames=120, shape=(64, 64), n_cells=10, gain=gain,
                               offset=offset, read_noise=read, seed=1)
    nm = trust.estimate_noise(s.raw)
    data_range = float(s.raw.max()) - float(s.raw.min())
    assert nm.source == "temporal"
    assert abs(nm.gain / gain - 1) < 0.10
    # strong read noise (8 units, 2 per photon) would put the zero-variance intercept
    # 32 units low; the noise's skewness finds the offset
    assert abs(nm.offset - offset) < 0.05 * data_range
    assert abs(nm.read_var - read**2) < 0.5 * read**2 + 2.0
    # with the offset known, the intercept becomes the read-noise variance
    nm2 = trust.estimate_noise(s.raw, offset=offset)
    assert nm2.offset == offset
    assert abs(nm2.read_var - read**2) < 0.5 * read**2 + 1.0
    assert np.all(nm.variance([offset - 10, offset, offset + 50]) > 0)


def test_noise_model_spatial_for_images():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:256, 0:256]
    photons = 2 + 30 * (xx / 255.0)  # a smooth ramp: many intensity levels, little structure
    img = 50 + 3.0 * rng.poisson(photons)
    nm = trust.estimate_noise(img)
    assert nm.source == "spatial"
    assert abs(nm.gain / 3.0 - 1) < 0.15
    assert abs(nm.offset - 50) < 0.05 * float(np.ptp(img))


def test_noise_model_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        trust.estimate_noise(np.zeros(10))
    a = np.ones((20, 16, 16), np.float32)
    a[3, 4, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trust.estimate_noise(a)


def test_forward_models():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(5, 12, 10)).astype(np.float32)
    # sparse: the restored lines at the acquired positions
    md = {"neurorestore": {"method": "sparse", "params": {"factor": 3, "axis": "y"}}}
    back = trust.to_input_grid(full, (5, 4, 10), md)
    np.testing.assert_array_equal(back, full[:, ::3])
    back = trust.to_input_grid(full, (5, 4, 10), md, index=slice(1, 3))
    np.testing.assert_array_equal(back, full[1:3, ::3])
    # upsample: block means
    md = {"method": "upsample", "factors": [1, 2, 2]}
    back = trust.to_input_grid(full, (5, 6, 5), md)
    np.testing.assert_allclose(back[2, 1, 3], full[2, 2:4, 6:8].mean(), rtol=1e-6)
    # isotropize without blur, ratio 2: slices 0, 2, 4
    md = {"method": "isotropize", "z_ratio": 2.0, "sigma_z": 0.0}
    back = trust.to_input_grid(full, (3, 12, 10), md)
    np.testing.assert_allclose(back, full[::2], atol=1e-6)
    # ratio 1.5: linear interpolation at 0, 1.5, 3
    md = {"method": "isotropize", "z_ratio": 1.5, "sigma_z": 0.0}
    back = trust.to_input_grid(full[:4], (3, 12, 10), md)
    np.testing.assert_allclose(back[1], 0.5 * (full[1] + full[2]), atol=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        trust.to_input_grid(full, (5, 12, 9))
    with pytest.raises(ValueError, match="binning"):
        trust.to_input_grid(full, (5, 5, 5), {"method": "upsample", "factors": [1, 2, 2]})


def test_truth_raises_no_flag(sim, cases):
    rep = trust.assess(sim.raw, cases["truth"], transients=False)
    assert rep.flags == []
    assert 0.8 < rep.figures["variance_ratio"] < 1.2
    assert all(c.status in ("pass", "n/a") for c in rep.checks)
    assert rep.residual.shape == sim.raw.shape
    assert rep.structure_map.shape == sim.raw.shape[1:]


def test_identity_is_flagged_as_removing_nothing(sim, cases):
    rep = trust.assess(sim.raw, cases["raw"], transients=False)
    assert "removed_nothing" in rep.flags
    assert rep.figures["variance_ratio"] < 0.01


def test_oversmoothing_is_flagged(sim, cases):
    rep = trust.assess(sim.raw, cases["oversmooth"], transients=False)
    assert "residual_structure" in rep.flags
    assert rep.figures["structure_fraction"] > 0.1
    # the structure sits on the cells, not in the background
    on = rep.structure_map[sim.labels > 0].mean()
    off = rep.structure_map[sim.labels == 0].mean()
    assert on > 1.3 * off


def test_halved_transients_are_flagged(sim, cases):
    rep = trust.assess(sim.raw, cases["halved"], transients=False)
    assert "signal_correlation" in rep.flags
    assert "residual_structure" in rep.flags


def test_report_is_json_safe_and_upsample_not_a_denoiser():
    rng = np.random.default_rng(0)
    vol = rng.poisson(20, size=(8, 16, 16)).astype(np.float32)
    up = np.repeat(np.repeat(np.repeat(vol, 2, 0), 2, 1), 2, 2)  # bins back exactly
    rep = trust.assess(vol, up, {"neurorestore": {"method": "upsample", "factors": [2, 2, 2]}})
    assert rep.frames is None and rep.transients is None
    assert rep.figures["variance_ratio"] < 1e-6
    assert "removed_nothing" not in rep.flags  # upsampling is not meant to denoise
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["method"] == "upsample" and isinstance(d["flags"], list)
    assert d["noise_model"]["source"] == "spatial"


def test_assess_rejects_nan_output(sim):
    out = sim.clean.copy()
    out[5, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trust.assess(sim.raw, out, transients=False)


def test_large_movies_are_sampled(sim, cases):
    rep = trust.assess(sim.raw, cases["truth"], transients=False, max_voxels=40 * 48 * 48)
    assert rep.frames == (55, 95)
    assert rep.residual.shape == (40, 48, 48)
    assert rep.flags == []


def test_transient_checks_flag_halved_peaks_not_the_truth(sim, cases):
    ok = trust.assess(sim.raw, cases["truth"], rois=sim.labels)
    half = trust.assess(sim.raw, cases["halved"], rois=sim.labels)
    assert ok.figures["transient_rois_with_events"] >= 3
    assert ok.figures["peak_ratio_median"] > 0.85
    assert "flattened_transients" not in ok.flags and ok.flags == []
    assert "flattened_transients" in half.flags
    assert abs(half.figures["peak_ratio_median"] - 0.5) < 0.1
    assert half.traces["reference"].shape == (int(sim.labels.max()), sim.raw.shape[0])
    # without ROIs, the most active tiles are used
    auto = trust.assess(sim.raw, cases["halved"])
    assert "flattened_transients" in auto.flags


def test_isotropize_forward_model_truth_passes_lateral_blur_flagged():
    from napari_neurorestore.core.simulate import degrade_axial, simulate_neuron_volume

    vol = simulate_neuron_volume(shape=(40, 64, 64), seed=0)
    vol = np.asarray(getattr(vol, "clean", vol), np.float32)
    deg = degrade_axial(vol, 2.0, 2.5, photons=200)
    md = {"neurorestore": {"method": "isotropize", "z_ratio": 2.5, "sigma_z": 2.0}}
    ok = trust.assess(deg.raw, deg.truth, md)
    assert ok.flags == [] and ok.frames is None
    bad = trust.assess(deg.raw, gaussian_filter(deg.truth, (0, 1.5, 1.5)), md)
    assert "residual_structure" in bad.flags and "signal_correlation" in bad.flags


def test_sparse_forward_model_on_the_truth(sim):
    md = {"neurorestore": {"method": "sparse", "params": {"factor": 2, "axis": "y"}}}
    sparse_raw = sim.raw[:, ::2]
    ok = trust.assess(sparse_raw, sim.clean, md, transients=False)
    assert ok.flags == []
    same = trust.assess(sparse_raw, np.repeat(sparse_raw, 2, axis=1), md, transients=False)
    assert "removed_nothing" in same.flags


def test_lazy_residual(sim, monkeypatch):
    da = pytest.importorskip("dask.array")
    small = trust.lazy_residual(sim.raw, sim.clean)
    assert isinstance(small, np.ndarray)  # small numpy: in memory
    lazy = trust.lazy_residual(da.from_array(sim.raw, chunks=(30, 48, 48)), sim.clean)
    assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
    np.testing.assert_allclose(lazy[10:20].compute(), sim.raw[10:20] - sim.clean[10:20],
                               atol=1e-4)
    monkeypatch.setattr(trust.residuals, "LAZY_RESIDUAL_BYTES", 1000)
    assert isinstance(trust.lazy_residual(sim.raw, sim.clean), da.Array)  # large: lazy
    # another grid (sparse): in memory through the forward model
    md = {"neurorestore": {"method": "sparse", "params": {"factor": 2, "axis": "y"}}}
    r = trust.lazy_residual(sim.raw[:, ::2], sim.clean, md)
    assert isinstance(r, np.ndarray) and r.shape == sim.raw[:, ::2].shape


def test_four_d_movies(sim):
    raw4 = np.stack([sim.raw, sim.raw[::-1]], 1)  # (t, z, y, x)
    clean4 = np.stack([sim.clean, sim.clean[::-1]], 1)
    ok = trust.assess(raw4, clean4)
    assert ok.flags == [] and ok.structure_map.shape == (2, 48, 48)
    labels = np.stack([sim.labels, np.zeros_like(sim.labels)])  # ROIs on plane 0
    with_rois = trust.assess(raw4, clean4, rois=labels)
    assert len(with_rois.transients) == int(sim.labels.max())
    assert "removed_nothing" in trust.assess(raw4, raw4.astype(np.float32)).flags
