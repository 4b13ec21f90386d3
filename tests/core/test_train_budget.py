"""Every method has the same training budget (60 s by default; steps/epochs end training
only when set), and the wall-time cap holds within 10 % (+ a little start-up)."""

import time

import pytest

from napari_neurorestore.core.methods import names, params_for
from napari_neurorestore.core.params import TRAIN_SECONDS
from napari_neurorestore.core.progress import drain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method", sorted(names()))
def test_same_time_budget_for_every_method(method):
    p = params_for(method)()
    length = "epochs" if hasattr(p, "epochs") else "steps"
    assert p.train_seconds == TRAIN_SECONDS == 60.0
    assert getattr(p, length) is None  # ends training only when set
    params_for(method)(**{length: 3, "train_seconds": None})
    with pytest.raises(ValueError, match=f"set {length} or train_seconds"):
        params_for(method)(**{length: None, "train_seconds": None})


def _data(method):
    from napari_neurorestore.core.methods.sparse.spec import make_sparse
    from napari_neurorestore.core.simulate import (
        degrade_axial,
        simulate_calcium_movie,
        simulate_neuron_volume,
    )

    if method == "sparse":
        movie = simulate_calcium_movie(n_frames=40, shape=(40, 40), n_cells=6, seed=3)
        return make_sparse(movie.raw, 4), dict(factor=4, patch_size=8, batch_size=4,
                                                  width=8, context=1)
    if method == "upsample":
        vol = simulate_neuron_volume((24, 48, 48), n_somata=2, n_neurites=4, seed=2)
        return vol[::2, ::2, ::2], dict(factor=2, patch_size=12, batch_size=2, width=8, depth=1)
    vol = simulate_neuron_volume((30, 48, 48), n_somata=2, n_neurites=6, seed=2)
    return degrade_axial(vol, 2.0, 2, photons=200, seed=1).raw, dict(z_ratio=2, sigma_z=1.0,
                                                                  patch_size=16, batch_size=2,
                                                                  width=4)


@pytest.mark.parametrize("method", ["sparse", "upsample", "isotropize"])
def test_train_seconds_cap_holds(method):
    from napari_neurorestore.core.methods import get

    m = get(method)
    data, kw = _data(method)
    length = "epochs" if method == "sparse" else "steps"
    warm = params_for(method)(**kw, **{length: 1}, seed=0, device="cpu")
    drain(m.train(m.train_input(data, warm), warm, None))  # torch's one-off start-up
    p = params_for(method)(**kw, train_seconds=2.0, seed=0, device="cpu")
    t0 = time.perf_counter()
    model = drain(m.train(m.train_input(data, p), p, None))
    took = time.perf_counter() - t0
    assert model.info["steps"] >= 1
    assert 1.5 < took < 2.2 + 0.3, took  # the budget alone ended it, within 10 % (+ start-up)


def test_fit_leaves_the_reserve_for_what_follows_training():
    import torch

    from napari_neurorestore.core.progress import CancelToken
    from napari_neurorestore.core.train import fit

    net = torch.nn.Conv2d(1, 1, 3, padding=1)

    def batch():
        x = torch.randn(4, 1, 32, 32)
        return x, x

    asked = []

    def reserve(step_seconds):
        asked.append(step_seconds)
        return 0.6

    t0 = time.perf_counter()
    history = drain(fit(net, batch, torch.nn.functional.mse_loss, 10**9, 1.0, 1e-3,
                        CancelToken(), reserve=reserve))
    took = time.perf_counter() - t0
    assert len(history) > 5 and asked and all(s > 0 for s in asked)
    assert 0.3 < took < 0.5, took  # 1 s less the 0.6 s kept
