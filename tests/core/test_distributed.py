"""Sparse and isotropize inference on a dask cluster (one in-process worker, so it stays
fast): through the engine, the store equals single-process inference and its progress
record is complete. Tiny data and barely trained models."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_neurorestore.core import arrays, engine
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.isotropize import heavy as iso
from napari_neurorestore.core.methods.sparse import heavy as sp
from napari_neurorestore.core.methods.sparse.spec import make_sparse
from napari_neurorestore.core.models import save_model
from napari_neurorestore.core.progress import drain
from napari_neurorestore.core.simulate import (
    degrade_axial,
    simulate_calcium_movie,
    simulate_neuron_volume,
)

zarr = pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


def _sparse():
    raw = simulate_calcium_movie(n_frames=23, shape=(40, 36), n_cells=4, seed=5).raw
    data = make_sparse(raw, 4)
    p = get("sparse").params_class(factor=4, context=2, epochs=1, patch_size=8, batch_size=4,
                                   width=8, seed=0, device="cpu", chunk_frames=5)
    model = drain(sp.train(data, p))
    return data, model, p, drain(sp.predict(data, model, chunk_frames=1000, device="cpu")), 23


def _isotropize():
    v = simulate_neuron_volume((19, 45, 37), n_somata=1, n_neurites=4, seed=0)
    data = degrade_axial(v, 1.5, 3, photons=100, seed=0).raw.astype(np.uint16)
    p = get("isotropize").params_class(z_ratio=3, sigma_z=1.5, steps=2, patch_size=16,
                                       batch_size=2, width=4, seed=0, device="cpu",
                                       tile_size=16)
    model = drain(iso.train(data, p))
    return data, model, p, drain(iso.predict(data, model, tile_size=256, device="cpu")), 9


@pytest.mark.parametrize("name, make", [("sparse", _sparse), ("isotropize", _isotropize)])
def test_one_dask_worker_equals_single_process(name, make, scheduler, tmp_path):
    data, model, params, whole, parts = make()
    tifffile.imwrite(tmp_path / "in.tif", data)
    save_model(model, tmp_path / "m.pt")
    req = engine.Request(name, [str(tmp_path / "in.tif")], str(tmp_path / "o.zarr"), params,
                         model=str(tmp_path / "m.pt"), quiet=True, scheduler=scheduler)
    (done,) = engine.restore_files(req)
    assert done.where == scheduler and not done.trained
    z = zarr.open_array(tmp_path / "o.zarr", mode="r")
    np.testing.assert_allclose(z[:], whole, rtol=1e-5, atol=1e-4)
    prog = z.attrs[arrays.PROGRESS_ATTR]
    assert prog["complete"] and prog["done_ranges"] == [[0, parts]]


def test_sparse_simulation_does_not_distribute(tmp_path):
    p = get("sparse").params_class(simulate=True)
    req = engine.Request("sparse", [str(tmp_path / "in.tif")], str(tmp_path / "o.zarr"), p,
                         workers=1)
    with pytest.raises(ValueError, match="--simulate runs in this process"):
        get("sparse").check_request(req, None)


def test_a_distributed_output_keeps_the_input_pixel_sizes(scheduler, tmp_path):
    from napari_neurorestore.core.zarr_io import zarr_geometry

    data, model, params, _whole, _parts = _sparse()
    tifffile.imwrite(tmp_path / "in.tif", data.astype(np.float32), imagej=True,
                     resolution=(2.0, 2.0), metadata={"unit": "um"})  # 0.5 µm pixels
    save_model(model, tmp_path / "m.pt")
    req = engine.Request("sparse", [str(tmp_path / "in.tif")], str(tmp_path / "o.ome.zarr"),
                         params, model=str(tmp_path / "m.pt"), quiet=True, scheduler=scheduler)
    engine.restore_files(req)
    geo = zarr_geometry(tmp_path / "o.ome.zarr")
    assert geo["scale"][-2:] == pytest.approx([0.125, 0.5])  # y: every 4th line acquired
    assert geo["units"]["X"] == "micrometer"
