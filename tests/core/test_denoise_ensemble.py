"""The denoiser's flip ensemble: the net averaged over flips and rotations of each window."""

import numpy as np
import pytest
import torch
from torch.nn.functional import pixel_unshuffle

from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise import spec as ds
from napari_neurorestore.core.methods.denoise.frames import predict_windows
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.progress import drain


def _net(seed=0):
    torch.manual_seed(seed)
    net = dn.build_net(DenoiseParams(window=5)).eval()
    for p in net.parameters():  # weights far from the identity, so members differ
        p.data.add_(0.2 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("size", [4, 8])
def test_the_ensemble_is_exactly_equivariant_to_its_transforms(rng, size):
    net = _net()
    x = torch.from_numpy(rng.normal(size=(2, 4, 16, 16)).astype(np.float32))
    with torch.inference_mode():
        def pred(v):
            return predict_windows(net, pixel_unshuffle(v, 2), size)
        one = pixel_unshuffle(x, 2)
        single = predict_windows(net, one, 1)
        assert torch.allclose(single, net(x), atol=1e-5)  # one member is the plain net
        base = pred(x)
        # a single pass is not equivariant; the ensemble is (its members undo each transform)
        assert not torch.allclose(predict_windows(net, pixel_unshuffle(x.flip(-1), 2), 1),
                                  single.flip(-1), atol=1e-3)
        assert torch.allclose(pred(x.flip(-1)), base.flip(-1), atol=1e-5)
        assert torch.allclose(pred(x.flip(-2)), base.flip(-2), atol=1e-5)
        if size == 8:
            assert torch.allclose(pred(x.transpose(-1, -2)), base.transpose(-1, -2), atol=1e-5)
        # and it is the mean of its members, not one of them
        assert not torch.allclose(base, single, atol=1e-3)


def test_the_ensemble_refuses_what_it_cannot_do(rng):
    net = _net()
    xu = pixel_unshuffle(torch.zeros(1, 4, 16, 24), 2)
    with pytest.raises(ValueError, match="square"):
        predict_windows(net, xu, 8)
    with pytest.raises(ValueError, match="1, 4 or 8"):
        predict_windows(net, xu, 3)
    with pytest.raises(ValueError, match="ensemble"):
        DenoiseParams(ensemble="yes")


def test_auto_decides_on_the_movie_size_and_the_frame_shape():
    small, big = (100, 64, 64), (ds.ENSEMBLE_AUTO_PIXELS // (64 * 64) + 1, 64, 64)
    assert ds.ensemble_size("auto", small) == 8
    assert ds.ensemble_size("auto", big) == 1
    assert ds.ensemble_size("on", big) == 8
    assert ds.ensemble_size("off", small) == 1
    assert ds.ensemble_size("auto", (100, 37, 29)) == 4  # padded to 40 x 32: flips only
    assert ds.ensemble_size("auto", (100, 62, 63)) == 8  # both padded to 64
    assert ds.ensemble_size("auto", (10, 4, 64, 64)) == 8  # planes count


def test_the_cost_model_counts_the_members():
    m = ds.METHOD
    on = m.memory_model((100, 64, 64), DenoiseParams(ensemble="on"), 2, False, False, False)
    off = m.memory_model((100, 64, 64), DenoiseParams(ensemble="off"), 2, False, False, False)
    assert on["work"] == 8 * off["work"] and on["unit_work"] == 8 * off["unit_work"]
    assert on["ram"]["predict"] > off["ram"]["predict"]


def test_the_ensemble_improves_a_trained_denoiser(tiny_movie):
    # no fitted steps after the net: the same net, with and without the ensemble
    model = drain(dn.train(tiny_movie.raw, DenoiseParams(
        epochs=60, patch_size=32, batch_size=8, seed=0, device="cpu", centre_correction=False)))
    rng = float(np.ptp(tiny_movie.clean))
    single = drain(dn.predict(tiny_movie.raw, model, ensemble="off"))
    flips = drain(dn.predict(tiny_movie.raw, model, ensemble="on"))
    auto = drain(dn.predict(tiny_movie.raw, model))  # 80 x 40 x 40: auto is on
    assert np.allclose(auto, flips, atol=1e-4 * rng)
    gain = psnr(flips, tiny_movie.clean, rng) - psnr(single, tiny_movie.clean, rng)
    assert gain > 0.2, gain  # 0.68 dB when written
    # chunking still does not change the result
    part = drain(dn.predict(tiny_movie.raw, model, ensemble="on", chunk_frames=7))
    assert np.abs(part - flips).max() <= 1e-4 * rng


def test_a_loaded_model_takes_the_callers_ensemble_setting(tiny_movie):
    model = drain(dn.train(tiny_movie.raw[:30], DenoiseParams(
        epochs=1, patch_size=16, batch_size=4, seed=0, device="cpu")))
    merged = ds.METHOD.merge_params(model, DenoiseParams(ensemble="off"))
    assert merged.ensemble == "off"
    got = drain(ds.METHOD.predict(tiny_movie.raw[:30], model, merged))
    ref = drain(dn.predict(tiny_movie.raw[:30], model, ensemble="off"))
    assert np.array_equal(got, ref)
