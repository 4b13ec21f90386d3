"""The one pipeline (core/engine.py): every check before any work, and the in-memory path."""

import numpy as np
import pytest
import tifffile

from napari_neurorestore.core import engine
from napari_neurorestore.core.methods import get, names
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.methods.sparse.spec import SparseParams
from napari_neurorestore.core.models import TrainedModel, save_model
from napari_neurorestore.core.progress import drain


@pytest.fixture
def movie_path(tmp_path, tiny_movie):
    p = tmp_path / "m.tif"
    tifffile.imwrite(p, tiny_movie.raw[:20])
    return p


@pytest.fixture
def no_training(monkeypatch):
    calls = []

    def train(*a, **k):
        calls.append(a)
        raise AssertionError("trained before the checks")

    monkeypatch.setattr(get("denoise").impl(), "train", train)
    return calls


def _req(movie_path, out, **kw):
    return engine.Request("denoise", [str(movie_path)], str(out),
                          DenoiseParams(epochs=1, window=5, device="cpu"), quiet=True, **kw)


def test_existing_output_is_refused_before_training(movie_path, tmp_path, no_training):
    out = tmp_path / "o.tif"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        engine.restore_files(_req(movie_path, out))
    assert out.read_bytes() == b"precious" and not no_training


def test_a_model_of_another_method_is_refused(movie_path, tmp_path, no_training):
    m = tmp_path / "s.pt"
    save_model(TrainedModel("sparse", SparseParams().to_dict(), {}, {"mean": 0, "std": 1}), m)
    with pytest.raises(ValueError, match="is a 'sparse' model, not a denoising model"):
        engine.restore_files(_req(movie_path, tmp_path / "o.tif", model=str(m)))
    assert not no_training and not (tmp_path / "o.tif").exists()


def test_simulation_labels_of_another_shape_are_refused_before_training(
        movie_path, tmp_path, monkeypatch):
    from napari_neurorestore.core.errors import InputError

    def train(*a, **k):
        raise AssertionError("trained before the checks")

    monkeypatch.setattr(get("sparse").impl(), "train", train)
    labels = tmp_path / "l.tif"
    tifffile.imwrite(labels, np.ones((5, 7), np.uint16))
    req = engine.Request("sparse", [str(movie_path)], str(tmp_path / "o.tif"),
                         SparseParams(simulate=True, epochs=1), quiet=True,
                         options={"labels": str(labels)})
    with pytest.raises(InputError, match=r"labels of shape \(5, 7\) do not match"):
        engine.restore_files(req)
    assert not (tmp_path / "o.tif").exists()


def test_dask_only_for_methods_that_distribute(movie_path, tmp_path):
    from types import SimpleNamespace

    req = engine.Request("toy", [str(movie_path)], str(tmp_path / "o.zarr"), workers=2)
    toy = SimpleNamespace(name="toy", distributed=False)
    with pytest.raises(ValueError, match="toy does not run on dask"):
        engine.check_outputs(toy, req, [tmp_path / "o.zarr"])
    assert all(get(n).distributed for n in names())  # every registered method does
    bad = _req(movie_path, tmp_path / "o.tif", workers=2)
    with pytest.raises(ValueError, match="write zarr stores"):
        engine.restore_files(bad)


def test_output_paths_of_several_inputs(tmp_path):
    m = get("denoise")
    outs = engine.output_paths(m, ["a.tif", "b.ome.zarr"], str(tmp_path / "out"))
    assert [o.name for o in outs] == ["a_denoised.ome.zarr", "b_denoised.ome.zarr"]
    with pytest.raises(ValueError, match="must be a folder"):
        engine.output_paths(m, ["a.tif", "b.tif"], "x.zarr")
    with pytest.raises(ValueError, match="takes one input"):
        engine.output_paths(get("upsample"), ["a.tif", "b.tif"], str(tmp_path))


def test_files_and_memory_paths_agree(movie_path, tmp_path, tiny_movie):
    out = tmp_path / "o.tif"
    (done,) = engine.restore_files(_req(movie_path, out, save_model=str(tmp_path / "m.pt")))
    assert done.trained and done.grid.shape == (20, 40, 40)
    res = drain(engine.restore("denoise", tiny_movie.raw[:20], DenoiseParams(device="cpu"),
                               model=str(tmp_path / "m.pt")))
    np.testing.assert_allclose(res.data, tifffile.imread(out), rtol=1e-5, atol=1e-3)


def test_training_only_inputs_are_refused_with_a_saved_model():
    """A saved model is applied without training: a reference stack (used only to train)
    given with it would be ignored, so it is refused, in memory as the CLI refuses it."""
    from napari_neurorestore.core.engine import restore
    from napari_neurorestore.core.methods import params_for
    from napari_neurorestore.core.models import TrainedModel
    from napari_neurorestore.core.progress import drain

    data = np.random.default_rng(0).random((8, 16, 32)).astype(np.float32)
    ref = np.random.default_rng(1).random((8, 64, 32)).astype(np.float32)
    model = TrainedModel("sparse", params_for("sparse")().to_dict(), {}, {})
    with pytest.raises(ValueError, match="reference .*would be ignored"):
        drain(restore("sparse", data, model=model, reference=ref))


def test_sparse_roi_labels_without_simulate_are_refused():
    """ROI labels only score a simulation: given without simulate they are refused rather
    than silently unused (the dock's picker reaches this check too)."""
    from napari_neurorestore.core.engine import restore
    from napari_neurorestore.core.methods import params_for
    from napari_neurorestore.core.progress import drain

    data = np.random.default_rng(0).random((8, 16, 32)).astype(np.float32)
    labels = np.zeros((64, 32), np.int32)
    with pytest.raises(ValueError, match="simulation only"):
        drain(restore("sparse", data, params_for("sparse")(train_seconds=1.0), labels=labels))
