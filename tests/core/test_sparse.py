import numpy as np
import pytest

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.methods.sparse import heavy as sp
from napari_neurorestore.core.methods.sparse.figures import auto_rois, format_simulation
from napari_neurorestore.core.methods.sparse.spec import (
    SparseParams,
    _Frames,
    cubic_upsample,
    frame_index,
    make_sparse,
)
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.models import load_model, save_model
from napari_neurorestore.core.progress import Cancelled, CancelToken, drain

FAST = dict(epochs=1, patch_size=8, batch_size=4, width=8, seed=0, device="cpu")


@pytest.fixture(scope="module")
def movie():
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=60, shape=(40, 40), n_cells=6, seed=3)


@pytest.fixture(scope="module")
def trained(movie):
    """A model trained briefly on the M=4 sparse movie, and its reconstruction."""
    sparse = make_sparse(movie.raw, 4)
    res = drain(restore("sparse", sparse,
                        SparseParams(factor=4, epochs=12, batch_size=8, width=8, seed=0,
                                     device="cpu", temporal_denoise=True)))
    return sparse, res


def test_cubic_baseline_conventions():
    ramp = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 5), np.float32)
    sparse = ramp[::3]
    up = cubic_upsample(sparse, 3)
    assert up.shape == (12, 5)
    np.testing.assert_allclose(up[::3], sparse, atol=1e-5)  # acquired lines kept
    np.testing.assert_allclose(up[:10], ramp[:10], atol=1e-4)  # cubic is exact on a line
    upx = cubic_upsample(sparse.T.copy(), 3, axis="x")
    np.testing.assert_allclose(upx, up.T, atol=1e-6)


def test_frame_index_mirrors_and_clips():
    idx = frame_index(np.arange(5), 2, 5)
    assert idx.shape == (5, 5) and idx.min() >= 0 and idx.max() <= 4
    assert list(idx[0]) == [2, 1, 0, 1, 2] and list(idx[2]) == [0, 1, 2, 3, 4]
    assert list(frame_index(np.array([0]), 2, 1)[0]) == [0] * 5  # a single frame


def test_training_batches_shapes(movie, rng):
    sparse = make_sparse(movie.raw, 4)
    src = sp._TrainingSource(_Frames(sparse, "y"), 4, 2, False, rng)
    x, y = src.batch(3, 8)
    assert x.shape == (3, 5, 8, 8) and y.shape == (3, 8, 8, 8)
    # the target at j = 0 is the centre frame's input sample, and is not scored
    np.testing.assert_array_equal(x[:, 2], y[:, 0])
    assert (y[:, 4] == 0).all() and (y[:, 5:] == 1).all()
    # one frame in 10 is held out for validation and is never a training centre
    assert list(src.held[0]) == [5, 15, 25, 35, 45, 55]
    assert not set(src.held[0]) & set(src.centres[0]) and len(src.centres[0]) == 54
    xv, yv = src.validation(6, 8)
    xv2, _ = src.validation(6, 8)
    np.testing.assert_array_equal(xv, xv2)  # a fixed validation set


def test_shape_scale_and_units(trained, movie):
    sparse, res = trained
    out = res.data
    assert out.shape == (60, 40, 40) and out.dtype == np.float32 and np.isfinite(out).all()
    assert res.scale_factors == (1.0, 0.25, 1.0) and res.translate_shift is None
    assert abs(out.mean() - sparse.mean()) < 0.05 * sparse.mean()  # input units, not 0-1
    md = res.metadata["neurorestore"]
    assert md["method"] == "sparse" and md["params"]["factor"] == 4 and res.suffix
    assert md["train_seconds"] >= 0


def test_reconstruction_beats_cubic_interpolation(trained, movie):
    sparse, res = trained
    rng = float(np.ptp(movie.clean))
    ours = psnr(res.data, movie.clean, rng)
    cubic = psnr(cubic_upsample(sparse, 4), movie.clean, rng)
    assert ours > cubic + 1.0, (ours, cubic)


def test_acquired_lines_stay_close_to_measured(trained, movie):
    sparse, res = trained
    model = res.model
    kept = drain(restore("sparse", sparse,
                         SparseParams(denoise=False, device="cpu"), model=model)).data
    np.testing.assert_array_equal(kept[:, ::4], sparse.astype(np.float32))  # exactly
    den = res.data[:, ::4]
    diff = den - sparse
    noise = np.std(sparse.astype(np.float32) - movie.clean[:, ::4])
    assert abs(diff.mean()) < 0.1 * noise  # no bias: the same intensity level
    assert np.sqrt((diff**2).mean()) < 1.5 * noise  # only (about) the noise is removed
    rng = float(np.ptp(movie.clean))
    assert psnr(den, movie.clean[:, ::4], rng) > psnr(sparse, movie.clean[:, ::4], rng)


def test_chunking_does_not_change_the_result(trained):
    sparse, res = trained
    for chunk in (1, 7, 23):
        part = drain(sp.predict(sparse, res.model, chunk_frames=chunk, batch_size=3))
        np.testing.assert_allclose(part, res.data, rtol=1e-5, atol=1e-3)


def test_out_array_of_wrong_shape_is_refused(trained):
    sparse, res = trained
    with pytest.raises(ValueError, match="expected"):
        drain(sp.predict(sparse, res.model, out=np.zeros(sparse.shape, np.float32)))


def test_axis_x_is_the_transpose_of_axis_y(movie):
    # without the denoising stage: its sampler draws different crops from transposed frames
    sparse = make_sparse(movie.raw[:20], 4)
    kw = dict(FAST, temporal_denoise=False)
    a = drain(restore("sparse", sparse, SparseParams(**kw))).data
    b = drain(restore("sparse", np.swapaxes(sparse, 1, 2), SparseParams(axis="x", **kw)))
    assert b.scale_factors == (1.0, 1.0, 0.25)
    np.testing.assert_allclose(np.swapaxes(b.data, 1, 2), a, rtol=1e-5, atol=1e-3)


def test_images_stacks_and_4d_movies(movie):
    img = make_sparse(movie.raw[0], 2)  # (20, 40)
    res = drain(restore("sparse", img, SparseParams(factor=2, **FAST)))
    assert res.data.shape == (40, 40) and res.scale_factors == (0.5, 1.0)
    assert res.model.info["context"] == 0  # a single image has no neighbours
    m4 = np.stack([movie.raw[:12], movie.raw[12:24]], axis=1)[:, :, ::4]  # (t, z, y, x)
    res = drain(restore("sparse", m4, SparseParams(**FAST)))
    assert res.data.shape == (12, 2, 40, 40) and res.scale_factors == (1, 1, 0.25, 1)
    plane = drain(sp.predict(np.ascontiguousarray(m4[:, 1]), res.model))
    np.testing.assert_allclose(res.data[:, 1], plane, rtol=1e-5, atol=1e-3)


def test_simulate_mode_reports_figures(movie):
    res = drain(restore("sparse", movie.raw[:40], SparseParams(simulate=True, **FAST),
                       labels=movie.labels))
    assert res.data.shape == (40, 40, 40) and res.scale_factors is None
    figs = res.metadata["neurorestore"]["simulation"]
    assert figs["factor"] == 4 and figs["n_rois"] == movie.labels.max()
    full = movie.raw[:40].astype(np.float32)
    assert figs["psnr"] == pytest.approx(psnr(res.data, full, float(np.ptp(full))), abs=1e-6)
    for f in (figs, figs["cubic"]):
        assert 0 < f["ssim"] <= 1 and 0 <= f["trace_nrmse"] < 1
    text = format_simulation(figs)
    assert "PSNR" in text and "cubic" in text
    lab = auto_rois(movie.raw)  # without labels: the 20 most active 8x8 tiles
    assert lab.max() == 20 and np.bincount(lab.ravel())[1:].tolist() == [64] * 20


def test_supervised_training_on_a_reference_stack(movie):
    ref = movie.raw[:40]  # fully sampled, same rig
    sparse = make_sparse(movie.raw[40:], 4)
    res = drain(restore("sparse", sparse,
                        SparseParams(epochs=1, batch_size=8, width=8, patch_size=16,
                                            seed=0, device="cpu"), reference=ref))
    assert res.model.info["teacher"] == "reference" and res.data.shape == (20, 40, 40)
    rng = float(np.ptp(movie.clean))
    assert (psnr(res.data, movie.clean[40:], rng)
            > psnr(cubic_upsample(sparse, 4), movie.clean[40:], rng) + 1.0)


@pytest.mark.parametrize("kw", [dict(factor=1), dict(factor=17), dict(factor=4.0),
                                dict(axis="z"), dict(context=-1), dict(simulate="yes"),
                                dict(patch_size=10), dict(train_seconds=0),
                                dict(device="tpu")])
def test_bad_parameters(kw):
    with pytest.raises(ValueError):
        SparseParams(**kw)


@pytest.mark.parametrize(
    "data, kw, match",
    [
        (np.zeros(32, np.uint16), {}, "got 1D"),
        (np.zeros((2, 2, 2, 8, 32), np.uint16), {}, "got 5D"),
        (np.zeros((4, 1, 32), np.uint16), {}, "only 1 acquired line"),
        (np.zeros((4, 8, 6), np.uint16), {}, "fully sampled axis has 6"),
        (np.zeros((4, 12, 64), np.uint16), dict(simulate=True, factor=8), "larger than"),
        (np.zeros((4, 8, 32), complex), {}, "unsupported data type"),
    ],
)
def test_bad_input_gives_a_clear_error(data, kw, match):
    with pytest.raises(InputError, match=match):
        drain(restore("sparse", data, SparseParams(**{**FAST, **kw})))


def test_nans_are_refused(movie):
    sparse = make_sparse(movie.raw[:10], 4).astype(np.float32)
    sparse[3, 2, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        drain(restore("sparse", sparse, SparseParams(**FAST)))


def test_model_round_trip_and_wrong_method(trained, tmp_path):
    sparse, res = trained
    path = save_model(res.model, tmp_path / "m.pt")
    loaded = load_model(path)
    again = drain(restore("sparse", sparse,
                          SparseParams(factor=8), model=loaded))  # the model's factor
    np.testing.assert_allclose(again.data, res.data, rtol=1e-5, atol=1e-3)
    loaded.method = "denoise"
    with pytest.raises(ValueError, match="not a sparse-axis model"):
        drain(restore("sparse", sparse, SparseParams(), model=loaded))


def test_cancel_stops_training(movie):
    token = CancelToken()
    gen = restore("sparse", make_sparse(movie.raw, 4),
                  SparseParams(epochs=10_000, device="cpu"), cancel=token)
    with pytest.raises(Cancelled):
        for p in gen:
            if p.stage == "train" and p.step >= 2:
                token.cancel()


def test_denoising_stage_restores_with_less_error_than_a_full_raw_scan(trained, movie):
    """The first stage (the denoiser on the acquired lines) makes the whole restored movie
    closer to the truth than the fully sampled raw movie, not just than cubic."""
    sparse, res = trained
    assert res.model.info["denoise_stage"].startswith("on") and "denoiser" in res.model.norm
    training = res.metadata["neurorestore"]["training"]  # the provenance records the stage
    assert training["denoise_stage_params"]["window"] == 15 and "self_check" in training
    clean = movie.clean
    err = float(np.mean((res.data - clean) ** 2))
    assert err < 0.7 * float(np.mean((movie.raw.astype(np.float32) - clean) ** 2))
    # the acquired lines are the first stage's values (a restored estimate, not the
    # measurement); with denoise off they are exactly the measurement (tested above)
    assert not np.array_equal(res.data[:, ::4], sparse.astype(np.float32))


def test_denoising_stage_off_or_impossible_is_recorded(movie):
    sparse = make_sparse(movie.raw[:20], 4)
    off = drain(restore("sparse", sparse, SparseParams(temporal_denoise=False, **FAST)))
    assert off.model.info["denoise_stage"].startswith("off") and "denoiser" not in off.model.norm
    assert off.metadata["neurorestore"]["params"]["temporal_denoise"] == "off"  # False: "off"
    assert SparseParams(temporal_denoise=True).temporal_denoise == "on"
    # "auto": on from M=8
    assert not SparseParams(factor=4).stage and SparseParams(factor=8).stage
    assert SparseParams(factor=4, temporal_denoise="on").stage
    assert not SparseParams(factor=16, temporal_denoise="off").stage
    with pytest.raises(ValueError, match="'auto', 'on' or 'off'"):
        SparseParams(temporal_denoise="yes")
    img = drain(restore("sparse", sparse[0], SparseParams(temporal_denoise=True, **FAST)))  # one frame
    assert img.model.info["denoise_stage"].startswith("skipped")


def test_self_check_says_when_the_factor_is_past_what_can_be_restored(trained, movie):
    from napari_neurorestore.core.methods import get

    _, res = trained  # a simulated movie at M=4: worth it
    check = res.model.info["self_check"]
    line = get("sparse").training_summary(res.model.info)
    assert check["gain_db"] > 1 and "past what" not in line and "over cubic" in line
    # a still scene of white noise: no line tells anything about its neighbours
    r = np.random.default_rng(0)
    scene = r.uniform(20, 200, (10, 40))
    res = drain(restore("sparse", r.poisson(scene, (30, 10, 40)).astype(np.float32),
                        SparseParams(**FAST)))
    line = get("sparse").training_summary(res.model.info)
    assert "past what the method can restore" in line, line
    # a scene that changes every frame: signal and noise cannot be told apart
    moving = r.poisson(r.uniform(20, 200, (30, 10, 40))).astype(np.float32)
    line = get("sparse").training_summary(
        drain(restore("sparse", moving, SparseParams(**FAST))).model.info)
    assert "too weak against the noise to judge" in line, line


def test_the_check_says_when_whole_objects_fall_between_the_lines():
    """The scores cannot see a soma that no acquired line crosses: the check measures the
    active structures' width along the fully sampled axis and calls M past what the method
    restores when the lines are further apart than that."""
    from napari_neurorestore.core.methods.sparse.check import structure_width
    from napari_neurorestore.core.methods.sparse.figures import verdict
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    sim = simulate_calcium_movie(n_frames=200, shape=(64, 64), n_cells=10, seed=1)
    w = structure_width(make_sparse(sim.raw, 8).astype(np.float32))
    assert w is not None and 8 < w < 16  # somata 8-14 px wide (radius 4-7)
    # white noise, still: no structure; too few frames: not measured
    r = np.random.default_rng(0)
    assert structure_width(r.poisson(50.0, (60, 8, 64)).astype(np.float32)) is None
    assert structure_width(sim.raw[:40, ::8].astype(np.float32)) is None
    good = {"factor": 8, "gain_db": 5.0, "vs_full_scan_db": 2.0, "unexplained": 0.1,
            "noise_var": 1.0, "signal_var": 5.0, "noise_lag1": 0.0, "structure_px": 10.5}
    assert "less noisy than a fully sampled scan" in verdict(good)
    line = verdict({**good, "factor": 16})
    assert "M=16 looks past what the method can restore" in line and "10 px" in line
    assert "less noisy" in verdict({**good, "structure_px": 7.5})  # within the margin
    assert "less noisy" in verdict({**good, "factor": 16, "structure_px": None})


def test_the_chain_fills_in_lines_with_cubic_plus_a_static_correction(trained):
    """With the first stage, the filled-in lines are cubic interpolation of the acquired
    (denoised) lines plus one correction map for the whole movie (fill.py): the soma's
    time course in them is its acquired lines', not a mean-squared-error mix with the
    neuropil's. Any part of the movie restored alone (a dask task) gets the same map."""
    from napari_neurorestore.core.methods.sparse.fill import sample_blocks

    sparse, res = trained
    assert res.model.info["fill"] == "static"
    out = np.asarray(res.data)
    diff = out - cubic_upsample(out[:, ::4], 4)
    np.testing.assert_allclose(diff, np.broadcast_to(diff[:1], diff.shape), atol=1e-3)
    assert np.abs(diff[0]).max() > 0.1  # the network's static part is not nothing
    np.testing.assert_allclose(diff[0, ::4], 0.0, atol=1e-3)  # the acquired lines: theirs
    part = drain(sp.predict(sparse, res.model, start=10, stop=30))
    np.testing.assert_allclose(part[10:30], out[10:30], rtol=1e-5, atol=1e-3)
    assert sample_blocks(30) == [(0, 30)] and sample_blocks(600) == [(0, 16), (292, 308),
                                                                      (584, 600)]
    # a model saved before the static fill (no "fill" in its record): the network's whole
    # fill, which changes from frame to frame
    import copy

    old = copy.deepcopy(res.model)
    del old.info["fill"]
    dyn = np.asarray(drain(sp.predict(sparse, old)))
    d2 = dyn - cubic_upsample(dyn[:, ::4], 4)
    assert np.abs(d2 - d2[:1]).max() > 0.1


def test_a_staged_model_refuses_a_movie_shorter_than_its_window(trained):
    from napari_neurorestore.core.errors import InputError

    sparse, res = trained
    with pytest.raises(InputError, match="first stage .* takes 15 frames at a time; the input "
                                         "has 8"):
        drain(sp.predict(sparse[:8], res.model))
    assert drain(sp.predict(sparse[:15], res.model)).shape == (15, *res.data.shape[1:])


def test_the_check_warns_about_traces_when_transients_are_short():
    """With the first stage, a signal that decorrelates within a few frames (low frame
    rates) gets a warning: the temporal denoiser flattens such transients."""
    from napari_neurorestore.core.methods.sparse.check import signal_frames
    from napari_neurorestore.core.methods.sparse.figures import format_check
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    def frames(tau):
        sim = simulate_calcium_movie(n_frames=300, shape=(64, 64), n_cells=10, seed=1,
                                     tau_frames=tau)
        return signal_frames(make_sparse(sim.raw, 8).astype(np.float32))

    fast, slow = frames(2.0), frames(15.0)
    assert fast <= 3 and slow >= 8, (fast, slow)
    assert signal_frames(np.zeros((20, 8, 64), np.float32)) is None  # too short
    check = {"factor": 8, "frames": 16, "gain_db": 5.0, "vs_full_scan_db": 2.0,
             "unexplained": 0.1, "noise_var": 1.0, "signal_var": 5.0, "noise_lag1": 0.0,
             "staged": True, "signal_frames": fast}
    assert "flattens such short transients" in format_check(check)
    assert "flattens" not in format_check({**check, "signal_frames": slow})
    assert "flattens" not in format_check({**check, "staged": False})  # no first stage
