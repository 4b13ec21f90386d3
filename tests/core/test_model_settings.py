"""One rule for the parameters of a run that applies a saved model: a parameter the model
fixes is refused when another value is given (one message, in the CLI, the API and the
widget's job); a run-time setting is applied (the denoiser's steps after its network)."""

import numpy as np
import pytest
import tifffile

from napari_neurorestore import api
from napari_neurorestore.cli.main import main
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.models import TrainedModel, save_model
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.report import read_provenance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def movie():
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=80, shape=(40, 40), n_cells=6, seed=3).raw


@pytest.fixture(scope="module")
def context_model(movie, one_torch_thread):
    """A denoiser with every step after its network (the long-context step included)."""
    model = drain(dn.train(movie, DenoiseParams(epochs=20, train_seconds=None, patch_size=32,
                                                batch_size=8, device="cpu", seed=0)))
    assert model.norm.get("context") and model.norm.get("transient")
    assert model.norm["context_causal"]["future"] == 5  # the causal step, beside the full one
    return model


def _cli(tmp_path, movie, model, name, *flags):
    src, m, out = tmp_path / "in.tif", tmp_path / "m.pt", tmp_path / f"{name}.tif"
    if not src.exists():
        tifffile.imwrite(src, movie)
        save_model(model, m)
    assert main(["denoise", str(src), "-o", str(out), "--model", str(m), "-q",
                 "--device", "cpu", *flags]) == 0
    return tifffile.imread(out)


def test_the_steps_after_the_network_are_run_time_settings(tmp_path, movie, context_model):
    full = _cli(tmp_path, movie, context_model, "full", "--ensemble", "off")
    live = _cli(tmp_path, movie, context_model, "live", "--ensemble", "off",
                "--no-long-context")
    bare = _cli(tmp_path, movie, context_model, "bare", "--ensemble", "off",
                "--no-centre-correction")
    scale = float(np.ptp(full))
    # the flag is applied: the output differs, by more than round-off
    assert np.abs(live - full).max() > 1e-3 * scale
    assert np.abs(bare - live).max() > 1e-3 * scale
    ref = drain(dn.predict(movie, context_model, device="cpu", context=False, ensemble="off"))
    np.testing.assert_allclose(live, ref, rtol=0, atol=1e-5 * scale)
    # live mode equals `neurorestore denoise --model M --causal-context --ensemble off`
    # (core.live runs predict with context="causal", ensemble="off")
    causal = _cli(tmp_path, movie, context_model, "causal", "--ensemble", "off",
                  "--causal-context")
    ref = drain(dn.predict(movie, context_model, device="cpu", context="causal", ensemble="off"))
    np.testing.assert_allclose(causal, ref, rtol=0, atol=1e-5 * scale)
    assert min(np.abs(causal - full).max(), np.abs(causal - live).max()) > 1e-3 * scale
    md = read_provenance(tmp_path / "causal.tif")["neurorestore"]
    assert md["long_context_applied"] == "causal"
    assert read_provenance(tmp_path / "full.tif")["neurorestore"]["long_context_applied"] == "full"
    assert read_provenance(tmp_path / "live.tif")["neurorestore"]["long_context_applied"] == "none"
    # without the steps fitted after training: the network alone
    norm = {k: context_model.norm[k] for k in ("mean", "std")}
    net_only = TrainedModel("denoise", context_model.params, context_model.state_dict, norm,
                            context_model.info)
    np.testing.assert_allclose(bare, drain(dn.predict(movie, net_only, device="cpu",
                                                      ensemble="off")),
                               rtol=0, atol=1e-5 * scale)
    # the API applies the same settings
    same = api.denoise(movie, model=context_model, long_context=False, ensemble="off",
                       device="cpu")
    np.testing.assert_allclose(same, live, rtol=0, atol=1e-5 * scale)


def _fake(method, **params):
    m = get(method)
    return TrainedModel(method, m.params_class(**params).to_dict(), {}, {"mean": 0.0,
                                                                          "std": 1.0})


@pytest.mark.parametrize("method, trained, given, message", [
    ("sparse", {"factor": 2}, {"factor": 3}, "the model was trained for factor 2, not 3"),
    ("sparse", {"axis": "x"}, {"axis": "y"}, "the model was trained for axis 'x', not 'y'"),
    ("upsample", {"factor": 2}, {"factor": 4}, "the model was trained for factor 2, not 4"),
    ("upsample", {"lateral_only": True}, {"lateral_only": False},
     "the model was trained for lateral only True, not False"),
    ("isotropize", {"z_ratio": 2.0}, {"z_ratio": 3.0},
     "the model was trained for z ratio 2.0, not 3.0"),
    # every field that is not a run-time setting is fixed (these were silently ignored)
    ("denoise", {"window": 11}, {"window": 7}, "the model was trained for window 11, not 7"),
    ("sparse", {"context": 6}, {"context": 2}, "the model was trained for context 6, not 2"),
    ("upsample", {"width": 16}, {"width": 8}, "the model was trained for width 16, not 8"),
])
def test_a_fixed_parameter_is_refused_with_one_message(tmp_path, capsys, method, trained,
                                                       given, message):
    model = _fake(method, **trained)
    data = np.zeros((4, 24, 24), np.float32)
    with pytest.raises(ValueError) as by_name:
        api.restore(method, data, model=model, **given)
    with pytest.raises(ValueError) as by_function:
        getattr(api, method)(data, model=model, **given)
    assert str(by_name.value) == str(by_function.value) == message
    from napari_neurorestore._widgets.worker import restore_task

    params = get(method).params_class(**given)
    job = restore_task(method, data, params, _token(), model, None, None, params.to_dict())
    assert str(drain(job).error) == message
    src, m = tmp_path / "in.tif", tmp_path / "m.pt"
    tifffile.imwrite(src, data)
    save_model(model, m)
    flags = []
    for k, v in given.items():
        flag = "--" + k.replace("_", "-")
        flags += [flag] if isinstance(v, bool) else [flag, str(v)]
    if given == {"lateral_only": False}:
        pytest.skip("no CLI flag sets lateral_only to False (the default)")
    assert main([method, str(src), "-o", str(tmp_path / "o.tif"), "--model", str(m), "-q",
                 *flags]) != 0
    assert capsys.readouterr().err.strip() == f"neurorestore: error: {message}"


def _token():
    from napari_neurorestore.core.progress import CancelToken

    return CancelToken()


def test_a_fixed_parameter_not_given_is_the_models(rng):
    data = rng.random((3, 8, 24), dtype=np.float32) * 100
    model = api.sparse(data, factor=2, epochs=1, batch_size=2, width=8, patch_size=8,
                       train_seconds=None, device="cpu", return_model=True)[1]
    out = api.sparse(data, model=model, device="cpu")  # the model's factor 2, not 4
    assert out.shape == (3, 16, 24)
    assert api.sparse(data, model=model, factor=2, device="cpu").shape == (3, 16, 24)


def test_upsample_run_time_settings_are_applied_in_memory(rng):
    vol = (rng.random((8, 16, 16), dtype=np.float32) * 100).astype(np.float32)
    _, model = api.upsample(vol, factor=2, steps=3, train_seconds=None, patch_size=8,
                            batch_size=2, width=8, depth=1, device="cpu", return_model=True)
    plain = api.upsample(vol, model=model, device="cpu")
    for setting in ({"ensemble": True}, {"back_projection": False}):
        other = api.upsample(vol, model=model, device="cpu", **setting)
        assert np.abs(other - plain).max() > 1e-4 * float(np.ptp(plain)), setting
        assert np.array_equal(other, api.upsample(vol, model=model, device="cpu", **setting))
