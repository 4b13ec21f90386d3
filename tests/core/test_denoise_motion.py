"""Registration of the denoiser's prediction to the frame it restores (frame-to-frame motion)."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, shift

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.denoise import centre as dc
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise import motion as dm
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.models import TrainedModel, load_model, save_model
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import simulate_calcium_movie

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scene(rng, n=64):
    return gaussian_filter(rng.normal(size=(n, n)), 2.0).astype(np.float32) * 10


def test_register_finds_a_sub_pixel_shift_and_moves_the_prediction(rng):
    scene = _scene(rng)
    true = [(0.4, -0.7), (-1.2, 0.3), (0.0, 0.0)]
    # frame (p) = scene(p + d): scipy's shift moves content by -d
    centre = np.stack([shift(scene, (-dy, -dx), order=3, mode="reflect") for dy, dx in true])
    centre += rng.normal(0, 0.05, size=centre.shape).astype(np.float32)
    pred = np.repeat(scene[None], len(true), 0)
    out, d = dm.register(torch.from_numpy(centre), torch.from_numpy(pred))
    assert out.shape == pred.shape and out.dtype == torch.float32
    np.testing.assert_allclose(d.numpy(), np.array(true), atol=0.08)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    before = float(((pred - centre)[inner] ** 2).mean())
    after = float(((out.numpy() - centre)[inner] ** 2).mean())
    assert after < 0.05 * before


def test_motion_cv_sees_motion_and_not_noise(rng):
    scene = _scene(rng)
    moves = rng.normal(0, 0.5, size=(12, 2))
    moved = np.stack([shift(scene, -m, order=3, mode="reflect") for m in moves])
    noisy = moved + rng.normal(0, 1.0, size=moved.shape).astype(np.float32)
    pred = torch.from_numpy(np.repeat(scene[None], 12, 0))
    assert dm.motion_cv(torch.from_numpy(noisy.astype(np.float32)), pred) < -dm.CV_THRESHOLD
    still = np.repeat(scene[None], 12, 0) + rng.normal(0, 1.0, size=moved.shape)
    assert dm.motion_cv(torch.from_numpy(still.astype(np.float32)), pred) > -dm.CV_THRESHOLD


def _jittered(seed, jitter):
    sim = simulate_calcium_movie(n_frames=70, shape=(48, 48), n_cells=7, seed=seed)
    photons = (sim.clean - sim.offset) / sim.gain
    rng = np.random.default_rng(seed)
    moves = rng.normal(0, jitter, size=(len(photons), 2)) if jitter else np.zeros((len(photons), 2))
    photons = np.stack([np.clip(shift(p, m, order=3, mode="nearest"), 0, None)
                        for p, m in zip(photons, moves, strict=True)]).astype(np.float32)
    clean = sim.offset + sim.gain * photons
    raw = sim.offset + sim.gain * rng.poisson(photons * 3).astype(np.float32) / 3
    return raw.astype(np.float32), clean


def _params():
    return DenoiseParams(epochs=25, train_seconds=None, patch_size=32, batch_size=8,
                         device="cpu", seed=0)


def test_a_moving_recording_is_registered_and_restored_better(tmp_path):
    raw, clean = _jittered(1, 0.6)
    res = drain(restore("denoise", raw, _params()))
    assert res.model.norm.get("register") is True
    # the choice travels with a saved model (weights-only loading accepts its metadata)
    loaded = load_model(save_model(res.model, tmp_path / "m.pt"))
    assert loaded.norm["register"] is True
    np.testing.assert_allclose(drain(dn.predict(raw, loaded)), res.data, atol=1e-3)
    assert res.model.info["self_check"]["registered"] is True
    assert "motion found" in dc.format_check(res.model.info["self_check"])
    norm = {k: v for k, v in res.model.norm.items() if k != "register"}
    unregistered = TrainedModel("denoise", res.model.params, res.model.state_dict, norm,
                                res.model.info)
    without = drain(dn.predict(raw, unregistered))
    rng = float(np.ptp(clean))
    assert psnr(res.data, clean, rng) > psnr(without, clean, rng) + 1.0


def test_a_still_recording_is_not_registered():
    raw, _ = _jittered(2, 0.0)
    model = drain(dn.train(raw, _params()))
    assert "register" not in model.norm
    assert model.info["self_check"]["motion_cv"] > -dm.CV_THRESHOLD
    assert "motion found" not in dc.format_check(model.info["self_check"])
