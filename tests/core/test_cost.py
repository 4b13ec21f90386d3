"""core/cost.py: the RAM model, output sizes, the refusal, the probe and lazy inputs."""

import re
import time

import numpy as np
import pytest

from napari_neurorestore.core import cost
from napari_neurorestore.core.cost import estimate_cost, refuse_if_too_big
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.methods.isotropize.spec import IsotropizeParams
from napari_neurorestore.core.methods.sparse.spec import SparseParams
from napari_neurorestore.core.methods.upsample.spec import UpsampleParams


class Shaped:
    """An array stand-in with a shape and a dtype; counts the elements anyone reads."""

    def __init__(self, shape, dtype=np.uint16):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)
        self.read = 0

    def __getitem__(self, key):
        block = np.zeros(self.shape, self.dtype)[key]
        self.read += block.size
        return block

    def __array__(self, dtype=None, copy=None):
        self.read += int(np.prod(self.shape))
        return np.zeros(self.shape, dtype or self.dtype)


def test_ram_grows_with_data_in_memory_and_is_bounded_when_streamed():
    p = DenoiseParams()
    sizes = [200, 2_000, 20_000, 200_000]
    mem = [estimate_cost("denoise", Shaped((t, 256, 256)), p, probe=False).peak_ram_bytes
           for t in sizes]
    streamed = [estimate_cost("denoise", Shaped((t, 256, 256)), p, streaming=True,
                              probe=False).peak_ram_bytes for t in sizes]
    assert all(a < b for a, b in zip(mem, mem[1:], strict=False))
    # in memory, the output alone grows by 4 bytes per pixel
    assert mem[-1] - mem[-2] >= 4 * (sizes[-1] - sizes[-2]) * 256 * 256 * 0.99
    # streamed: the training cache is capped (768 MB, so from ~3000 frames of 256 x 256
    # on it samples runs of frames) and inference holds one chunk
    assert streamed[-1] == streamed[-2]
    assert max(streamed) < 2 * 2**30
    huge = estimate_cost("denoise", Shaped((10**7, 256, 256)), p, streaming=True, probe=False)
    assert huge.peak_ram_bytes == streamed[-1]


@pytest.mark.parametrize("method,shape,params", [
    ("sparse", (1000, 64, 256), SparseParams(factor=4)),
    ("upsample", (64, 256, 256), UpsampleParams(factor=3)),
    ("isotropize", (200, 512, 512), IsotropizeParams(z_ratio=3.0)),
])
def test_streamed_runs_do_not_hold_the_output(method, shape, params):
    mem = estimate_cost(method, Shaped(shape), params, probe=False)
    streamed = estimate_cost(method, Shaped(shape), params, streaming=True, probe=False)
    out_bytes = 4 * int(np.prod(mem.output_shape))
    assert mem.breakdown["output"] == out_bytes
    assert streamed.breakdown["output"] == 0
    assert streamed.peak_ram_bytes < mem.peak_ram_bytes


@pytest.mark.parametrize("method,shape,params,expected", [
    ("denoise", (50, 30, 40), DenoiseParams(), (50, 30, 40)),
    ("sparse", (10, 8, 32), SparseParams(factor=4), (10, 32, 32)),
    ("sparse", (10, 32, 8), SparseParams(factor=3, axis="x"), (10, 32, 24)),
    ("sparse", (5, 4, 8, 32), SparseParams(factor=2), (5, 4, 16, 32)),
    ("upsample", (8, 16, 20), UpsampleParams(factor=3), (24, 48, 60)),
    ("upsample", (8, 16, 20), UpsampleParams(factor=2, lateral_only=True), (8, 32, 40)),
    ("upsample", (16, 20), UpsampleParams(factor=4), (64, 80)),
    ("isotropize", (5, 16, 16), IsotropizeParams(z_ratio=3.0), (13, 16, 16)),
    ("isotropize", (11, 16, 16), IsotropizeParams(z_ratio=2.5), (26, 16, 16)),
])
def test_output_shape_per_method(method, shape, params, expected):
    est = estimate_cost(method, Shaped(shape), params, probe=False)
    assert est.output_shape == expected
    assert est.breakdown["output"] == 4 * int(np.prod(expected))


def test_output_shapes_match_the_methods_helpers():
    from napari_neurorestore.core.methods.isotropize.axial import output_slices
    from napari_neurorestore.core.methods.sparse import spec as sparse
    from napari_neurorestore.core.methods.upsample.spec import output_shape

    est = estimate_cost("sparse", Shaped((3, 7, 9)), SparseParams(factor=5), probe=False)
    assert est.output_shape == sparse.output_shape((3, 7, 9), 5, "y")
    est = estimate_cost("upsample", Shaped((6, 7, 9)), UpsampleParams(factor=2), probe=False)
    assert est.output_shape == output_shape((6, 7, 9), (2, 2, 2))
    est = estimate_cost("isotropize", Shaped((9, 7, 9)), IsotropizeParams(z_ratio=1.7),
                        probe=False)
    assert est.output_shape[0] == output_slices(9, 1.7)


def test_refused_when_free_memory_is_small(monkeypatch):
    monkeypatch.setattr(cost, "free_ram_bytes", lambda: 64 * 2**20)
    est = estimate_cost("denoise", Shaped((2000, 512, 512)), DenoiseParams(), probe=False)
    assert not est.fits
    assert est.free_ram_bytes == 64 * 2**20
    assert "NOT fit" in est.summary()
    with pytest.raises(InputError, match="stream the result to disk.*-o OUT.zarr"):
        refuse_if_too_big(est, "-o OUT.zarr")
    streamed = estimate_cost("denoise", Shaped((2000, 512, 512)), DenoiseParams(),
                             streaming=True, probe=False)
    with pytest.raises(InputError, match="even with its result streamed"):
        refuse_if_too_big(streamed, "-o OUT.zarr")


def test_fits_with_plenty_of_memory(monkeypatch):
    monkeypatch.setattr(cost, "free_ram_bytes", lambda: 2**40)
    est = estimate_cost("denoise", Shaped((2000, 512, 512)), DenoiseParams(), probe=False)
    assert est.fits
    refuse_if_too_big(est, "-o OUT.zarr")  # no error


def test_free_ram_is_read():
    free = cost.free_ram_bytes()
    assert free is None or 0 < free < 2**50


def test_lazy_input_is_not_materialised():
    data = Shaped((40, 64, 64))
    est = estimate_cost("denoise", data, DenoiseParams(train_seconds=5), probe=True)
    assert data.read == 0
    assert est.probe_items_per_s is not None and est.probe_items_per_s > 0
    for method, shape, p in [("sparse", (6, 16, 64), SparseParams(factor=2, context=1)),
                             ("upsample", (8, 32, 32), UpsampleParams(factor=2, width=4,
                                                                      depth=1)),
                             ("isotropize", (6, 32, 32), IsotropizeParams(z_ratio=2.0,
                                                                          width=4))]:
        d = Shaped(shape)
        estimate_cost(method, d, p, probe=True)
        assert d.read == 0, method


def test_probe_timer_stops_within_its_budget():
    calls = []

    def run_once(size):
        calls.append(size)
        time.sleep(0.002 * size)

    t0 = time.perf_counter()
    rate = cost._timed(run_once, lambda size: size, seconds=0.3, max_seconds=1.0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.5
    assert calls[:2] == [1, 1]  # warm-up
    assert max(calls) * 0.002 >= 0.1  # it grew the input until a run took long enough
    assert 300 < rate < 520  # ~500 units/s minus sleep overhead


def test_probe_times_training_and_inference():
    data = Shaped((60, 64, 64))
    est = estimate_cost("denoise", data, DenoiseParams(epochs=3), probe=True)
    assert est.train_seconds > 0 and not est.train_capped
    assert est.infer_seconds > 0
    assert "frames/s probed" in est.summary()
    # frames/s at this frame size and the whole input give the inference time
    assert est.infer_seconds == pytest.approx(60 / est.probe_items_per_s, rel=1e-6)
    capped = estimate_cost("denoise", data, DenoiseParams(epochs=10**6, train_seconds=7),
                           probe=False)
    assert capped.train_seconds == 7 and capped.train_capped
    assert "training ≤ 7 s" in capped.summary()


def test_a_given_model_skips_training():
    from napari_neurorestore.core.models import TrainedModel

    m = TrainedModel("denoise", DenoiseParams(window=5).to_dict(), {}, {"mean": 0, "std": 1})
    est = estimate_cost("denoise", Shaped((30, 32, 32)), model=m, probe=False)
    assert est.train_seconds is None
    assert "training" not in est.summary()
    assert est.breakdown["train"] > 0  # listed, but not part of the peak
    assert est.peak_ram_bytes == cost.RUNTIME_BYTES + est.breakdown["output"] \
        + est.breakdown["predict"]
    with pytest.raises(ValueError, match="not a 'sparse' model"):
        estimate_cost("sparse", Shaped((3, 8, 32)), model=m, probe=False)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method"):
        estimate_cost("deblur", Shaped((3, 8, 8)), probe=False)
    with pytest.raises(InputError, match="movie"):
        estimate_cost("denoise", Shaped((8, 8)), probe=False)
    with pytest.raises(InputError, match=r"\(z, y, x\) volume"):
        estimate_cost("isotropize", Shaped((3, 8, 8, 8)), probe=False)
    with pytest.raises(InputError, match="shape"):
        estimate_cost("denoise", np.float32(1.0), probe=False)
    with pytest.raises(ValueError, match="params are for"):
        estimate_cost("denoise", Shaped((30, 8, 8)), SparseParams(), probe=False)


def test_to_dict_and_summary():
    est = estimate_cost("upsample", Shaped((8, 32, 32)), UpsampleParams(), probe=False)
    d = est.to_dict()
    assert d["peak_ram_bytes"] == est.peak_ram_bytes
    assert d["summary"].startswith("peak RAM ~")
    assert re.search(r"inference (~\d|< 1 s)", d["summary"]) and "not probed" in d["summary"]
    assert est.gpu_bytes is None
    assert estimate_cost("upsample", Shaped((8, 32, 32)), UpsampleParams(), device="cuda",
                         probe=False).gpu_bytes > cost.GPU_CONTEXT_BYTES


def test_staged_upsample_counts_both_passes():
    """A staged 4x (the default) runs the 2x network over the input and then over the 2x
    intermediate: its inference estimate counts both passes, each weighted by its fine-grid
    share (measured on this (24, 72, 72) input, 1 thread: 31-33 s staged vs 32-58 s one 4x
    pass; the estimate says 0.59x; counting coarse voxels alone said 4.3x), and its training
    crops are the 2x network's (16^3, 8^3 coarse)."""
    shape = (24, 72, 72)
    one = estimate_cost("upsample", Shaped(shape), UpsampleParams(factor=4, two_stage=False),
                        probe=False)
    two = estimate_cost("upsample", Shaped(shape), UpsampleParams(factor=4), probe=False)
    assert one.output_shape == two.output_shape == (96, 288, 288)
    assert 0.4 < two.infer_seconds / one.infer_seconds < 1.5
    two_lateral = estimate_cost("upsample", Shaped(shape),
                                UpsampleParams(factor=4, lateral_only=True), probe=False)
    assert two_lateral.output_shape == (24, 288, 288)
    net, x, y = get("upsample").probe_batch(shape, UpsampleParams(factor=4))
    assert tuple(y.shape[2:]) == (16, 16, 16) and tuple(x.shape[2:]) == (8, 8, 8)
