"""The method registry and the Method contract: names, lazy import, each method's grid and
forward model on tiny data, the one parameter-merge rule and the shared predict tail."""

import subprocess
import sys

import numpy as np
import pytest

from napari_neurorestore.core import methods
from napari_neurorestore.core.methods.base import Grid, Method
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.methods.isotropize.spec import IsotropizeParams
from napari_neurorestore.core.methods.sparse.spec import SparseParams
from napari_neurorestore.core.methods.upsample.spec import UpsampleParams
from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import Cancelled, PredictTally


def test_all_four_methods_are_registered():
    assert methods.names() == ("denoise", "sparse", "upsample", "isotropize")
    for name in methods.names():
        m = methods.get(name)
        assert isinstance(m, Method) and m.name == name
        assert m.params_class.method == name and m.noun and m.help
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        methods.get("nope")


def test_registry_and_grids_do_not_import_torch():
    code = ("import sys\n"
            "from napari_neurorestore.core import methods\n"
            "from napari_neurorestore.core.methods import params_for\n"
            "for n in methods.names():\n"
            "    m = methods.get(n)\n"
            "    m.grid((9, 8, 8), params_for(n)())\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_get_method_returns_the_heavy_module():
    mod = methods.get_method("sparse")
    assert hasattr(mod, "train") and hasattr(mod, "predict") and mod.SUFFIX == "sparse-restored"
    assert mod.__name__ == "napari_neurorestore.core.methods.sparse.heavy"  # its package's


def test_denoise_grid_and_identity_forward_model():
    m = methods.get("denoise")
    assert m.grid((10, 8, 8), DenoiseParams()) == Grid((10, 8, 8))
    x = np.arange(10 * 8 * 8, dtype=np.uint16).reshape(10, 8, 8)
    np.testing.assert_array_equal(m.to_input_grid(x, x.shape, {}), x.astype(np.float32))
    np.testing.assert_array_equal(m.to_input_grid(x, x.shape, {}, slice(2, 4)), x[2:4])
    with pytest.raises(ValueError, match="shapes differ"):
        m.to_input_grid(x, (10, 4, 8), {})


def test_sparse_grid_and_forward_model():
    m = methods.get("sparse")
    p = SparseParams(factor=2)
    g = m.grid((5, 4, 8), p)
    assert g.shape == (5, 8, 8) and g.scale_factors == (1.0, 0.5, 1.0)
    assert m.grid((5, 4, 8), SparseParams(factor=2, simulate=True)).shape == (5, 4, 8)
    restored = np.random.default_rng(0).random((5, 8, 8), dtype=np.float32)
    md = {"params": p.to_dict()}
    np.testing.assert_array_equal(m.to_input_grid(restored, (5, 4, 8), md), restored[:, ::2])
    xs = m.grid((5, 8, 4), SparseParams(factor=2, axis="x"))
    assert xs.shape == (5, 8, 8) and xs.scale_factors == (1.0, 1.0, 0.5)


def test_upsample_grid_and_forward_model():
    m = methods.get("upsample")
    g = m.grid((4, 6, 6), UpsampleParams(factor=2))
    assert g == Grid((8, 12, 12), (0.5, 0.5, 0.5), (-0.25, -0.25, -0.25))
    assert m.grid((4, 6, 6), UpsampleParams(factor=2, lateral_only=True)).shape == (4, 12, 12)
    x = np.random.default_rng(0).random((4, 6, 6), dtype=np.float32)
    up = x.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    np.testing.assert_allclose(m.to_input_grid(up, x.shape, {"factors": [2, 2, 2]}), x,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="does not give the input's shape"):
        m.to_input_grid(up, (4, 5, 6), {"factors": [2, 2, 2]})


def test_isotropize_grid_and_forward_model():
    m = methods.get("isotropize")
    g = m.grid((4, 6, 6), IsotropizeParams(z_ratio=2.0))
    assert g.shape == (7, 6, 6) and g.scale_factors == (0.5, 1.0, 1.0)
    iso = np.random.default_rng(0).random((7, 6, 6), dtype=np.float32)
    md = {"params": {"z_ratio": 2.0, "sigma_z": 0.0}}
    np.testing.assert_allclose(m.to_input_grid(iso, (4, 6, 6), md), iso[::2], rtol=1e-6)


def _model(method, params):
    return TrainedModel(method, params.to_dict(), {}, {"mean": 0.0, "std": 1.0})


def test_one_merge_rule_for_a_saved_model():
    m = methods.get("sparse")
    model = _model("sparse", SparseParams(factor=4, axis="x", epochs=3, denoise=True))
    p = m.merge_params(model, SparseParams(device="cpu", denoise=False, chunk_frames=5,
                                           epochs=99))
    assert (p.factor, p.axis, p.epochs) == (4, "x", 3)  # the model's
    assert (p.device, p.denoise, p.chunk_frames) == ("cpu", False, 5)  # the caller's
    with pytest.raises(ValueError, match="trained for factor 4, not 2"):
        m.merge_params(model, None, {"factor": 2})
    iso = methods.get("isotropize")
    with pytest.raises(ValueError, match="trained for z ratio 3.0, not 2.5"):
        iso.merge_params(_model("isotropize", IsotropizeParams(z_ratio=3.0)), None,
                         {"z_ratio": 2.5})
    with pytest.raises(ValueError, match="not a sparse-axis model"):
        m.check_model(_model("denoise", DenoiseParams()))


def test_predict_tally_counts_and_says_how_far_it_got():
    seen = []
    t = PredictTally(10, "frames", "restored", "restoring", lambda a, b: seen.append((a, b)))
    assert t.start("go").total == 10
    with pytest.raises(Cancelled, match="cancelled by the user: 4 of 10 frames were restored "
                                        "and written"):
        with t.cancel_message():
            t.written(0, 4)
            p = t.step(4)
            assert p.step == 4 and p.eta is not None and p.message == "restoring: 4/10 frames"
            raise Cancelled("stop")
    assert seen == [(0, 4)]


def test_restore_by_name_equals_the_method_function():
    import napari_neurorestore as nr

    movie = np.random.default_rng(0).poisson(20, (12, 16, 16)).astype(np.uint16)
    kw = dict(window=5, epochs=1, train_seconds=None, patch_size=16, batch_size=2, width=4,
              seed=0, device="cpu")
    by_name = nr.restore("denoise", movie, **kw)
    np.testing.assert_allclose(by_name, nr.denoise(movie, **kw), rtol=1e-5, atol=1e-4)
    assert by_name.shape == movie.shape and by_name.dtype == np.float32
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        nr.restore("nope", movie)
    with pytest.raises(TypeError, match="unknown parameter 'windw'"):
        nr.restore("denoise", movie, windw=5)
