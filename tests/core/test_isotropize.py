import numpy as np
import pytest

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.methods import get, params_for
from napari_neurorestore.core.methods.isotropize import axial
from napari_neurorestore.core.methods.isotropize import heavy as iso
from napari_neurorestore.core.methods.isotropize.spec import IsotropizeParams
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.models import load_model, save_model
from napari_neurorestore.core.progress import Cancelled, CancelToken, drain
from napari_neurorestore.core.simulate import degrade_axial, simulate_beads, simulate_neuron_volume

FAST = dict(steps=3, patch_size=16, batch_size=2, width=4, seed=0, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def neuron():
    v = simulate_neuron_volume((46, 48, 48), n_somata=2, n_neurites=10, seed=2)
    return degrade_axial(v, 2.0, 3, photons=200, seed=1)


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("n,r,expected", [(10, 3, 28), (10, 1, 10), (5, 2.5, 11), (7, 1.7, 11),
                                          (3, 2, 5)])
def test_output_slices_and_positions(n, r, expected):
    assert axial.output_slices(n, r) == expected == round((n - 1) * r) + 1
    pos = axial.output_positions(n, r)
    assert len(pos) == expected and pos[0] == 0
    np.testing.assert_allclose(pos, np.arange(expected) / r)


def test_cubic_interpolation_keeps_samples_and_reproduces_quadratics():
    z = np.arange(9, dtype=np.float64)
    col = 0.3 * z**2 - 2 * z + 5
    block = np.broadcast_to(col[:, None, None], (9, 2, 3)).astype(np.float32)
    out = axial.interp_z(block, 2.5)
    assert out.shape == (axial.output_slices(9, 2.5), 2, 3)
    # output slice k lies at input position k / R; acquired positions are returned unchanged
    np.testing.assert_allclose(out[::5], block[::2], rtol=1e-6)
    pos = axial.output_positions(9, 2.5)
    inner = (pos >= 1) & (pos <= 7)  # Keys' cubic is exact for quadratics away from the ends
    np.testing.assert_allclose(out[inner, 0, 0], (0.3 * pos**2 - 2 * pos + 5)[inner], rtol=1e-5)


def test_z_ratio_from_scale():
    assert axial.z_ratio_from_scale((3.0, 1.0, 1.0)) == 3.0
    assert axial.z_ratio_from_scale((1.0, 2.0, 0.4, 0.4)) == pytest.approx(5.0)
    assert axial.z_ratio_from_scale((1.0, 1.0, 1.0)) is None  # default scale: not set
    assert axial.z_ratio_from_scale((0.5, 0.5)) is None
    assert axial.z_ratio_from_scale(None) is None
    assert axial.z_ratio_from_scale is axial.z_ratio_from_scale


def test_sigma_z_estimate_is_close_to_the_truth():
    v = simulate_neuron_volume((60, 96, 96), seed=4)
    for sigma, r in ((2.0, 3), (1.0, 2), (3.0, 2.5)):
        d = degrade_axial(v, sigma, r, photons=200, seed=0)
        est = axial.estimate_sigma_z(d.raw, r)
        assert abs(est - sigma) < 0.35 * sigma + 0.2, (sigma, r, est)
    # no extra axial blur: a small estimate
    assert axial.estimate_sigma_z(degrade_axial(v, 0.0, 2, photons=200).raw, 2) < 0.8


def test_noise_estimate_finds_poisson_gain():
    v = simulate_neuron_volume((40, 64, 64), seed=1)
    for gain in (1.0, 3.0):
        d = degrade_axial(v, 1.0, 2, photons=300, seed=0)
        a, b = axial.estimate_noise(d.raw * gain)
        assert 0.7 * gain < a < 1.4 * gain and b < 5 * gain**2


# ----------------------------------------------------------------------------- params
def test_params_validation_and_registry():
    assert params_for("isotropize") is IsotropizeParams and IsotropizeParams.method == "isotropize"
    p = IsotropizeParams(z_ratio=3)
    assert p.z_ratio == 3.0 and isinstance(p.z_ratio, float) and p.degradation == "gaussian"
    assert IsotropizeParams.from_dict({**p.to_dict(), "junk": 1}) == p
    import dataclasses

    f = {f.name: f for f in dataclasses.fields(IsotropizeParams)}
    assert f["degradation"].metadata["choices"] == ("gaussian", "learned")
    assert IsotropizeParams(z_ratio=1).z_ratio == 1.0  # isotropic sampling, axial blur only
    for bad in (dict(z_ratio=0.5), dict(z_ratio=0), dict(z_ratio=True), dict(z_ratio="3"),
                dict(degradation="cyclegan"), dict(sigma_z=-1), dict(steps=0),
                dict(patch_size=18), dict(device="tpu"), dict(train_seconds=0),
                dict(tile_size=4), dict(squeeze_augment=0.1), dict(squeeze_augment=True)):
        with pytest.raises(ValueError):
            IsotropizeParams(**bad)
    assert IsotropizeParams(squeeze_augment=0.5).squeeze_augment == 0.5
    assert IsotropizeParams().squeeze_augment == 1.0  # off: it cost the simulation 0.3 dB


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape,msg", [((32, 32), "2D"), ((2, 32, 32), "at least 3"),
                                       ((4, 8, 32), "too small"), ((2, 4, 32, 32), "4D")])
def test_bad_input_shapes(shape, msg):
    with pytest.raises(InputError, match=msg):
        drain(restore("isotropize", np.ones(shape, np.float32),
                      IsotropizeParams(z_ratio=2, **FAST)))


def test_bad_input_values():
    v = np.ones((5, 20, 20), np.float32)
    v[2, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        drain(restore("isotropize", v, IsotropizeParams(z_ratio=2, **FAST)))
    with pytest.raises(InputError, match="data type"):
        drain(restore("isotropize", np.ones((5, 20, 20), bool),
                      IsotropizeParams(z_ratio=2, **FAST)))


# ----------------------------------------------------------------------------- run
@pytest.mark.parametrize("r", [3, 2.5])
def test_shape_scale_units_and_metadata(neuron, r):
    raw = neuron.raw[:7, :37, :29].astype(np.uint16)  # integer input, odd lateral sizes
    res = drain(restore("isotropize", raw, IsotropizeParams(z_ratio=r, sigma_z=2.0, **FAST)))
    nz = round(6 * r) + 1
    assert res.data.shape == (nz, 37, 29) and res.data.dtype == np.float32
    assert np.isfinite(res.data).all()
    assert res.scale_factors == pytest.approx((1 / r, 1.0, 1.0)) and res.translate_shift is None
    # the input's intensity units (photon counts here), not 0-1
    assert abs(res.data.mean() - raw.mean()) < 0.1 * raw.mean()
    md = res.metadata["neurorestore"]
    assert md["method"] == "isotropize" and md["z_ratio"] == r and md["sigma_z"] == 2.0
    assert md["params"]["z_ratio"] == r and md["output_slices"] == nz
    assert res.suffix == "isotropic"


def test_restores_better_than_cubic_and_keeps_lateral_slices(neuron):
    """60 steps of a small net beat cubic interpolation in z against the isotropic truth,
    and the slices at acquired positions stay close to the input (not degraded)."""
    d = neuron
    rng = float(np.ptp(d.truth))
    p = IsotropizeParams(z_ratio=3, sigma_z=2.0, steps=60, patch_size=32, batch_size=4,
                         width=8, seed=0, device="cpu")
    res = drain(restore("isotropize", d.raw, p))
    out = res.data
    cubic = axial.interp_z(d.raw, 3)
    assert psnr(out, d.truth, rng) > psnr(cubic, d.truth, rng) + 0.4
    # the truth-free self-check tracks the true gain (here ~0.7 dB) on held-out lateral slices
    check = res.model.info["self_check"]
    gain = psnr(out, d.truth, rng) - psnr(cubic, d.truth, rng)
    assert check["held_out"] and abs(check["gain_signal_db"] - gain) < 1.0
    assert 0 < check["gain_db"] < check["gain_signal_db"]  # the slices' own noise lowers it
    assert check["gain_db"] - 0.2 < gain < check["gain_signal_db"] + 0.2  # brackets the truth
    assert "held-out lateral slices" in get("isotropize").training_summary(res.model.info)
    acq = out[::3]  # output slice 3j lies on input slice j
    assert psnr(acq, d.raw, float(np.ptp(d.raw))) > 30
    # against the truth, the acquired slices are at least as good as the input's own
    assert psnr(acq, d.truth[::3], rng) > psnr(d.raw, d.truth[::3], rng) - 0.2


def test_sigma_estimated_when_not_given(neuron):
    m = drain(iso.train(neuron.raw, IsotropizeParams(z_ratio=3, **FAST)))
    assert m.info["sigma_z_estimated"] is not None
    assert 0.8 < m.info["sigma_z_used"] < 3.5


def test_learned_mode_runs_on_tiny_data(neuron):
    raw = neuron.raw[:8, :32, :32]
    p = IsotropizeParams(z_ratio=3, degradation="learned", **{**FAST, "steps": 4})
    res = drain(restore("isotropize", raw, p))
    assert res.data.shape == (22, 32, 32) and np.isfinite(res.data).all()
    k = np.array(res.model.info["learned_kernel"])
    assert k.min() >= 0 and abs(k.sum() - 1) < 1e-3 and len(k) % 2 == 1
    assert np.isfinite(res.model.info["learned_sigma"])
    assert res.metadata["neurorestore"]["params"]["degradation"] == "learned"


def test_gaussian_mode_with_ratio_one_runs(neuron):
    raw = neuron.raw[:6, :24, :24]
    res = drain(restore("isotropize", raw, IsotropizeParams(z_ratio=1, sigma_z=1.5, **FAST)))
    assert res.data.shape == raw.shape and res.scale_factors == (1.0, 1.0, 1.0)


def test_result_does_not_depend_on_tiling(neuron):
    raw = neuron.raw[:6, :47, :41]
    model = drain(iso.train(raw, IsotropizeParams(z_ratio=2.5, sigma_z=1.5, **FAST)))
    # make the network's residual non-trivial, so context errors would show
    import torch

    g = torch.Generator().manual_seed(0)
    model.state_dict = {k: v + 0.3 * torch.randn(v.shape, generator=g)
                        for k, v in model.state_dict.items()}
    whole = drain(iso.predict(raw, model, tile_size=256, device="cpu"))
    assert np.abs(whole - axial.interp_z(raw, 2.5)).max() > 0.1 * float(np.ptp(raw))
    for tile in (16, 19, 30):
        out = np.full(whole.shape, -1.0, np.float32)
        drain(iso.predict(raw, model, out=out, tile_size=tile, device="cpu"))
        np.testing.assert_allclose(out, whole, rtol=1e-4, atol=1e-3 * float(np.ptp(whole)))
    with pytest.raises(ValueError, match="shape"):
        drain(iso.predict(raw, model, out=np.zeros((3, 47, 41), np.float32)))


def test_model_round_trip_and_wrong_model(neuron, tmp_path):
    raw = neuron.raw[:5, :24, :24]
    res = drain(restore("isotropize", raw, IsotropizeParams(z_ratio=2, sigma_z=1.0, **FAST)))
    path = save_model(res.model, tmp_path / "iso.pt")
    again = drain(restore("isotropize", raw,
                          IsotropizeParams(z_ratio=2, **FAST), model=load_model(path)))
    np.testing.assert_allclose(again.data, res.data, rtol=1e-5, atol=1e-3)
    wrong = load_model(path)
    wrong.method = "denoise"
    with pytest.raises(ValueError, match="not an axial"):
        drain(restore("isotropize", raw, IsotropizeParams(z_ratio=2, **FAST), model=wrong))


def test_cancel_stops_training(neuron):
    tok = CancelToken()
    tok.cancel()
    with pytest.raises(Cancelled):
        drain(restore("isotropize", neuron.raw[:5, :24, :24],
                      IsotropizeParams(z_ratio=2, **FAST), cancel=tok))


def test_beads_simulation_and_axial_degradation():
    vol, centres = simulate_beads((24, 40, 40), n_beads=5, sigma=1.0, seed=0)
    assert vol.shape == (24, 40, 40) and len(centres) == 5
    d = degrade_axial(vol, 2.0, 3, photons=None)
    assert d.raw.shape == (8, 40, 40) and d.truth.shape == (22, 40, 40)
    np.testing.assert_allclose(d.positions, np.arange(8) * 3.0)
    # axial blur keeps the mass of each bead and widens it along z only
    assert abs(d.raw.sum() * 3 - vol[:22].sum()) < 0.1 * vol.sum()


def test_python_api(neuron):
    import napari_neurorestore as nr

    raw = neuron.raw[:5, :24, :24]
    with pytest.raises(ValueError, match="z_ratio is required"):
        nr.isotropize(raw)
    res = nr.isotropize(raw, 2, sigma_z=1.0, return_result=True, **FAST)
    assert res.data.shape == (9, 24, 24) and res.scale_factors == (0.5, 1.0, 1.0)
    out, model = nr.isotropize(raw, 2, sigma_z=1.0, return_model=True, **FAST)
    again = nr.isotropize(raw, model=model, device="cpu")
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="trained for z ratio"):
        nr.isotropize(raw, 3, model=model)


# ----------------------------------------------------------------------------- self-check
def test_training_slices_exclude_the_held_out_ones():
    from napari_neurorestore.core.methods.isotropize.data import HOLDOUT_EVERY, _Source

    vol = np.arange(2 * HOLDOUT_EVERY, dtype=np.float32)[:, None, None] + np.zeros((1, 16, 16))
    src = _Source(vol, 3.0, 8, 2, np.random.default_rng(0), need_axial=False)
    train = {float(v) for v in src.slices[:, 2, 2]}
    held = {float(v) for v in src.check_slices[:, 2, 2]}
    assert src.held_out and len(held) == 2 and not train & held
    assert len(train) + len(held) == 2 * HOLDOUT_EVERY
    crops = src.lateral(6, check=True, rng=np.random.default_rng(1))
    assert {float(v) for v in crops[:, 3, 3]} <= held
    short = _Source(vol[:HOLDOUT_EVERY], 3.0, 8, 2, np.random.default_rng(0), need_axial=False)
    assert short.held_out and len(short.check_slices) == 1 and len(short.slices) == 7
    values = sorted([*short.slices[:, 2, 2], *short.check_slices[:, 2, 2]])
    assert short.check_slices[0, 2, 2] == values[HOLDOUT_EVERY // 2]  # its middle slice
    few = _Source(vol[:5], 3.0, 8, 2, np.random.default_rng(0), need_axial=False)
    assert not few.held_out and few.check_slices is few.slices  # too few: none held out


def test_squeezed_crops_have_finer_structure_along_the_degraded_axis():
    """squeeze_augment: half of the training crops are squeezed along the degraded axis
    (on the 11-slice stardist volume, made isotropic: +3.38 -> +4.53 dB over cubic at 600
    steps); the held-out check's crops never are; train() passes the setting on."""
    from napari_neurorestore.core.methods.isotropize.data import _Source

    yy, xx = np.mgrid[0:48, 0:48]
    vol = np.repeat((np.sin(2 * np.pi * yy / 16) + np.sin(2 * np.pi * xx / 16))[None], 4, 0)
    src = _Source(vol.astype(np.float32), 3.0, 16, 4, np.random.default_rng(0), False)
    rng = np.random.default_rng(1)
    plain = np.stack([src._squeezed(src.slices, 1.0, rng) for _ in range(8)])
    half = np.stack([src._squeezed(src.slices, 0.5, rng) for _ in range(8)])
    assert half.shape == plain.shape == (8, 24, 16)

    def energy(c):  # of the first difference along the degraded axis
        return float(np.mean(np.diff(c, axis=1) ** 2))
    assert energy(half) > 3 * energy(plain)  # half the period: 4x the energy
    assert np.abs(half).max() <= np.abs(vol).max() + 1e-5  # averaged, not extrapolated
    src.squeeze = 0.5
    check = src.lateral(8, check=True, rng=np.random.default_rng(2))
    assert energy(check) < 1.5 * energy(plain)
    seen = []

    class Spy(_Source):
        def lateral(self, batch, check=False, rng=None):
            seen.append(self.squeeze)
            return super().lateral(batch, check, rng)
    orig, iso._Source = iso._Source, Spy
    try:
        drain(iso.train(vol[:, :32, :32].astype(np.float32) + 2, IsotropizeParams(
            z_ratio=2, steps=2, train_seconds=None, patch_size=16, squeeze_augment=0.6,
            seed=0, device="cpu")))
    finally:
        iso._Source = orig
    assert seen and set(seen) == {0.6}


def test_self_check_warns_when_the_restorer_gains_nothing(neuron):
    """A restorer that has barely trained (3 steps; its output layer starts at zero, so it
    returns its cubic input) gains ~0 dB on the held-out slices: the summary warns that the
    setting is past what the method restores."""
    m = drain(iso.train(neuron.raw, IsotropizeParams(z_ratio=3, sigma_z=2.0, **FAST)))
    assert abs(m.info["self_check"]["gain_db"]) < 1.0
    line = get("isotropize").training_summary(m.info)
    assert "WARNING" in line and "past what the method restores" in line


def test_self_check_line():
    from napari_neurorestore.core.methods.isotropize.spec import format_check

    assert format_check(None) is None and format_check({}) is None
    ok = format_check({"gain_db": 0.8, "gain_signal_db": 6.0, "held_out": True}, 2.0)
    assert "between +0.80 dB" in ok and "and +6.00 dB (on their structure)" in ok
    assert "sigma_z 2 px" in ok and "WARNING" not in ok and "a bracket" in ok
    bad = format_check({"gain_db": 0.3, "gain_signal_db": None, "held_out": False})
    assert "too few to hold any out" in bad and "WARNING" in bad
    assert "WARNING" in format_check({"gain_db": 0.3, "gain_signal_db": 0.9, "held_out": True})


def test_sigma_z_assumed_on_a_short_stack(neuron):
    """Fewer slices than the spectral fit needs: sigma_z is the prior 0.6 R, recorded as
    such and said by the summary (not a silent 0)."""
    m = drain(iso.train(neuron.raw[:10], IsotropizeParams(z_ratio=3, **FAST)))
    assert m.info["sigma_z_source"] == "prior" and m.info["sigma_z_estimated"] is None
    assert m.info["sigma_z_used"] == pytest.approx(1.8)
    assert "sigma_z was assumed" in get("isotropize").training_summary(m.info)
    given = drain(iso.train(neuron.raw[:10], IsotropizeParams(z_ratio=3, sigma_z=1.0, **FAST)))
    assert given.info["sigma_z_source"] == "given" and given.info["sigma_z_used"] == 1.0


def test_a_small_stack_stops_after_max_passes_and_says_so(neuron, monkeypatch):
    import napari_neurorestore.core.methods.isotropize.heavy as heavy_mod
    from napari_neurorestore.core.params import pass_cap_steps

    monkeypatch.setattr(heavy_mod, "MAX_PASSES", 2)
    raw = neuron.raw
    p = IsotropizeParams(z_ratio=3.0, steps=None, train_seconds=60, patch_size=16,
                         batch_size=2, width=4, seed=0, device="cpu")
    model = drain(iso.train(raw, p))
    from napari_neurorestore.core.methods.isotropize.data import _Source

    # the training slices (not those held out for the self-check), crops of 16 x 16
    src = _Source(raw, 3.0, 16, 4, np.random.default_rng(0), False)
    n, h, w = raw.shape
    assert len(src.slices) < n
    cap = pass_cap_steps(2, len(src.slices) * h * w, 2 * 16 * 16)
    assert model.info["steps"] == cap and model.info["pass_cap"] == {"passes": 2, "steps": cap}
    assert model.info["train_seconds"] < 30
    line = get("isotropize").training_summary(model.info)
    assert f"training ended after 2 passes over the lateral slices ({cap} steps" in line
    # set steps are not capped
    more = drain(iso.train(raw, IsotropizeParams(**{**FAST, "steps": cap + 5}, z_ratio=3.0)))
    assert more.info["steps"] == cap + 5 and "pass_cap" not in more.info
