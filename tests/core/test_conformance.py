"""One front door: every registered method, run with one saved model through the Python API,
the CLI and the Restore dock's job (headless), gives the same result (to float32 round-off)
and the same provenance, which is also that of the run that trained the model."""

import json

import numpy as np
import pytest
import tifffile

from napari_neurorestore import api
from napari_neurorestore._widgets.worker import restore_task
from napari_neurorestore.cli.main import main
from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods import get, names
from napari_neurorestore.core.models import save_model
from napari_neurorestore.core.progress import CancelToken, drain
from napari_neurorestore.core.report import read_provenance

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: each method's tiny input and training budget (a method added to the registry adds its own)
TINY = {
    "denoise": ((24, 16, 16), dict(window=5, epochs=1, train_seconds=None, patch_size=16,
                                   batch_size=4, width=4)),
    "sparse": ((12, 8, 24), dict(factor=2, epochs=1, train_seconds=None, patch_size=8,
                                 batch_size=2, width=8)),
    "upsample": ((8, 16, 16), dict(factor=2, steps=3, train_seconds=None, patch_size=8,
                                   batch_size=2, width=8, depth=1)),
    "isotropize": ((8, 24, 24), dict(z_ratio=2.0, sigma_z=1.0, steps=3, train_seconds=None,
                                     patch_size=16, batch_size=2, width=4)),
}
#: what differs between runs of one model by nature: the input file, and wall times
IGNORED = ("source",)


def _data(shape):
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.normal(size=shape), axis=-1)
    return (100 + 10 * smooth + rng.poisson(5.0, size=shape)).astype(np.uint16)


@pytest.fixture(scope="module", params=names())
def trained(request, one_torch_thread):
    """(name, input, the training run's result): one model per registered method."""
    name = request.param
    assert name in TINY, f"add a tiny input and budget for {name!r} to TINY"
    shape, tiny = TINY[name]
    data = _data(shape)
    params = get(name).params_class(seed=0, device="cpu", **tiny)
    return name, data, drain(restore(name, data, params))


def _provenance(md):
    rec = json.loads(json.dumps(md["neurorestore"], default=str))
    return {k: v for k, v in rec.items() if k not in IGNORED}


def test_api_cli_and_widget_give_one_result(trained, tmp_path):
    one_front_door(*trained, tmp_path)


def one_front_door(name, data, first, tmp_path):
    """The API, the CLI and the Restore dock's job apply ``first``'s model to ``data`` and
    give ``first``'s result and provenance (the run that trained the model)."""
    model = first.model
    assert first.data.dtype == np.float32 and np.isfinite(first.data).all()
    # (a) the Python API
    by_api = api.restore(name, data, model=model, device="cpu", return_result=True)
    # (b) the CLI, on a TIFF, with the saved model
    src, saved, out = tmp_path / "in.tif", tmp_path / "m.pt", tmp_path / "out.tif"
    tifffile.imwrite(src, data)
    save_model(model, saved)
    assert main([name, str(src), "-o", str(out), "--model", str(saved), "-q",
                 "--device", "cpu"]) == 0
    by_cli = tifffile.imread(out)
    # (c) the Restore dock's job, with the form holding the model's parameters
    params = get(name).params_class.from_dict({**model.params, "device": "cpu"})
    outcome = drain(restore_task(name, data, params, CancelToken(), model, None, None,
                                 params.to_dict()))
    assert outcome.error is None, outcome.error
    by_widget = outcome.result
    scale = float(np.ptp(first.data)) or 1.0
    for other in (by_api.data, by_cli, by_widget.data):
        assert other.shape == first.data.shape and other.dtype == np.float32
        np.testing.assert_allclose(other, first.data, rtol=0, atol=1e-5 * scale)
    want = _provenance(first.metadata)
    assert want["method"] == name and want["params"] == json.loads(json.dumps(model.params))
    assert _provenance(by_api.metadata) == want
    assert _provenance(by_widget.metadata) == want
    assert _provenance(read_provenance(out)) == want
    # the same grid in memory, and the method's own suffix
    for res in (by_api, by_widget):
        assert res.scale_factors == first.scale_factors
        assert res.translate_shift == first.translate_shift
        assert res.suffix == get(name).suffix


def test_every_method_is_covered():
    assert set(TINY) == set(names())
