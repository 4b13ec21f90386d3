"""Streamed outputs of the sparse, upsample and isotropize methods: tiled/chunked output in
a zarr store equals whole-array inference, writes are whole chunks, the input is read
piece by piece, and a cancel leaves a readable partial store that says how far it got.
Tiny data and barely trained models: this tests the streaming, not the quality."""

from __future__ import annotations

import numpy as np
import pytest
from counting_array import CountingArray as Lazy

from napari_neurorestore.core import arrays, io, zarr_io
from napari_neurorestore.core.methods.isotropize import heavy as iso
from napari_neurorestore.core.methods.isotropize import spec as iso_spec
from napari_neurorestore.core.methods.isotropize.spec import IsotropizeParams
from napari_neurorestore.core.methods.sparse import heavy as sp
from napari_neurorestore.core.methods.sparse.spec import SparseParams, make_sparse
from napari_neurorestore.core.methods.upsample import heavy as up
from napari_neurorestore.core.methods.upsample import spec as up_spec
from napari_neurorestore.core.methods.upsample.spec import UpsampleParams, bin_array
from napari_neurorestore.core.progress import Cancelled, CancelToken, drain
from napari_neurorestore.core.simulate import simulate_calcium_movie, simulate_neuron_volume

zarr = pytest.importorskip("zarr")
TOL = dict(rtol=1e-5, atol=1e-4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Spy:
    """Records the regions written into a zarr array."""

    def __init__(self, z):
        self.z, self.shape, self.dtype = z, z.shape, z.dtype
        self.writes: list[tuple] = []

    def __setitem__(self, key, value):
        self.writes.append(key)
        self.z[key] = value


def assert_whole_chunks(writes, chunks, shape):
    """Every write starts on a chunk boundary and spans whole chunks (or ends at the edge)."""
    for key in writes:
        key = key if isinstance(key, tuple) else (key,)
        for ax, sl in enumerate(key):
            if isinstance(sl, int):
                assert chunks[ax] == 1
                continue
            a, b = sl.indices(shape[ax])[:2]
            assert a % chunks[ax] == 0, (key, chunks)
            assert (b - a) % chunks[ax] == 0 or b == shape[ax], (key, chunks)


# ----------------------------------------------------------------------------- upsample
UP_FAST = dict(steps=3, patch_size=12, batch_size=2, width=8, depth=1, seed=0, device="cpu",
               train_seconds=None)


@pytest.fixture(scope="module")
def up_vol():
    truth = simulate_neuron_volume((22, 52, 44), n_somata=2, n_neurites=4, seed=3)
    return (bin_array(truth, (2, 2, 2)) * 1000 + 100).astype(np.uint16)  # (11, 26, 22)


@pytest.fixture(scope="module")
def up_model(up_vol):
    return drain(up.train(up_vol, UpsampleParams(factor=2, **UP_FAST)))


@pytest.fixture(scope="module")
def up_whole(up_vol, up_model):
    return drain(up.predict(up_vol, up_model, device="cpu", tile_size=64))


@pytest.mark.parametrize("tile", [8, 9, 13])  # tile 9 and 13: odd, edge tiles of 2 and 0-4
def test_upsample_zarr_tiles_equal_whole(up_vol, up_model, up_whole, tmp_path, tile):
    shape_out = up_whole.shape
    chunks = up_spec.output_chunks(up_model, up_vol.shape, tile)
    assert chunks == tuple(min(s, tile) * 2 for s in up_vol.shape)
    n_tiles = up_spec.output_tiles(up_model, up_vol.shape, tile)["total"]
    assert n_tiles == int(np.prod([-(-s // tile) for s in up_vol.shape]))
    z = io.open_output(tmp_path / "u.zarr", shape_out, chunk_shape=chunks, axes="ZYX",
                       unit="tiles", total=n_tiles)
    spy = Spy(z)
    lazy = Lazy(up_vol)
    drain(up.predict(lazy, up_model, out=spy, device="cpu", tile_size=tile,
                     on_chunk=zarr_io.ChunkRecorder(z, n_tiles, "tiles")))
    assert len(spy.writes) == n_tiles
    assert_whole_chunks(spy.writes, chunks, shape_out)
    assert len(lazy.reads) == n_tiles  # one read per tile (with its halo), never whole
    got = zarr.open_array(tmp_path / "u.zarr", mode="r")
    np.testing.assert_allclose(got[:], up_whole, **TOL)
    prog = zarr_io.output_progress(tmp_path / "u.zarr")
    assert prog["tiles_done"] == n_tiles and prog["complete"]


def test_upsample_two_stage_streams_into_zarr(up_vol, tmp_path):
    vol = up_vol[:, :20, :20]
    model = drain(up.train(vol, UpsampleParams(factor=4, two_stage=True, **UP_FAST)))
    whole = drain(up.predict(vol, model, device="cpu", tile_size=64))
    chunks = up_spec.output_chunks(model, vol.shape, 9)
    assert chunks == (18, 18, 18)  # the second 2x pass writes the output
    z = io.open_output(tmp_path / "u4.zarr", whole.shape, chunk_shape=chunks)
    spy = Spy(z)
    n = up_spec.output_tiles(model, vol.shape, 9)["total"]
    drain(up.predict(vol, model, out=spy, device="cpu", tile_size=9,
                     on_chunk=zarr_io.ChunkRecorder(z, n, "tiles")))
    assert_whole_chunks(spy.writes, chunks, whole.shape)
    np.testing.assert_allclose(z[:], whole, **TOL)
    assert zarr_io.output_progress(z)["complete"]


def test_upsample_cancel_leaves_a_readable_partial_store(up_vol, up_model, up_whole,
                                                         tmp_path):
    tile = 9
    tiles = up_spec.output_tiles(up_model, up_vol.shape, tile)
    z = io.open_output(tmp_path / "p.zarr", up_whole.shape,
                       chunk_shape=up_spec.output_chunks(up_model, up_vol.shape, tile),
                       unit="tiles", total=tiles["total"])
    token = CancelToken()
    gen = up.predict(up_vol, up_model, token, out=z, device="cpu", tile_size=tile)
    with pytest.raises(Cancelled, match=f"3 of {tiles['total']} output tiles were "
                                        f"upsampled and written"):
        for p in gen:
            if p.step >= 3:
                token.cancel()
    got = zarr.open_array(tmp_path / "p.zarr", mode="r")
    prog = got.attrs[arrays.PROGRESS_ATTR]
    assert prog["tiles_done"] == 3 and prog["done_ranges"] == [[0, 3]]
    assert not prog["complete"] and prog["tile_shape"] == [18, 18, 18]
    # tiles 0-2 (C order over a 2x3x3 grid): z 0-8, y 0-8, x 0-8 / 9-17 / 18-21
    np.testing.assert_allclose(got[:18, :18, :], up_whole[:18, :18, :], **TOL)
    assert np.isnan(got[18:]).all() and np.isnan(got[:18, 18:]).all()


def test_upsample_auto_tile_size_fits_the_budget(up_model):
    small = up.auto_tile_size(up_model, 3, 64 * 2**20)
    large = up.auto_tile_size(up_model, 3, 8 * 2**30)
    assert 8 <= small < large <= UpsampleParams.from_dict(up_model.params).tile_size
    four = drain(up.train(np.random.default_rng(0).poisson(50, (8, 24, 24)).astype(np.uint16),
                          UpsampleParams(factor=4, steps=1, patch_size=12, seed=0,
                                         device="cpu", train_seconds=None)))
    t = up.auto_tile_size(four, 3, int(1.25 * 2**30))  # default width/depth, factor 4
    halo = up.halo_for(up.build_net(UpsampleParams.from_dict(four.params), 3),
                       UpsampleParams.from_dict(four.params))
    assert up.BYTES_PER_BLOCK_VOXEL * 64 * (t + 2 * halo) ** 3 <= 1.25 * 2**30
    assert up.BYTES_PER_BLOCK_VOXEL * 64 * (t + 8 + 2 * halo) ** 3 > 1.25 * 2**30


# ----------------------------------------------------------------------------- sparse
SP_FAST = dict(factor=4, context=2, epochs=1, patch_size=8, batch_size=4, width=8, seed=0,
               device="cpu", train_seconds=1.0)


@pytest.fixture(scope="module")
def sp_movie():
    raw = simulate_calcium_movie(n_frames=23, shape=(40, 36), n_cells=4, seed=5).raw
    return make_sparse(raw, 4)  # (23, 10, 36)


@pytest.fixture(scope="module")
def sp_model(sp_movie):
    return drain(sp.train(sp_movie, SparseParams(**SP_FAST)))


@pytest.fixture(scope="module")
def sp_whole(sp_movie, sp_model):
    return drain(sp.predict(sp_movie, sp_model, chunk_frames=1000, device="cpu"))


@pytest.mark.parametrize("chunk", [1, 4, 7])  # 1 frame, window - 1 (context 2: 5 frames), odd
def test_sparse_zarr_chunks_equal_whole(sp_movie, sp_model, sp_whole, tmp_path, chunk):
    z = io.open_output(tmp_path / "s.zarr", sp_whole.shape, chunks=chunk)
    spy = Spy(z)
    lazy = Lazy(sp_movie)
    drain(sp.predict(lazy, sp_model, out=spy, chunk_frames=chunk, device="cpu",
                     on_chunk=zarr_io.ChunkRecorder(z)))
    assert_whole_chunks(spy.writes, z.chunks, z.shape)
    # a chunk and its context at a time (and the denoising stage's halo of 2 frames)
    halo = 4 if "denoiser" in sp_model.norm else 0
    assert max(lazy.reads) <= (chunk + 4 + halo) * 10 * 36
    np.testing.assert_allclose(zarr.open_array(tmp_path / "s.zarr", mode="r")[:], sp_whole,
                               **TOL)
    assert zarr_io.output_progress(tmp_path / "s.zarr")["done_ranges"] == [[0, 23]]


def test_sparse_4d_streams_plane_by_plane(sp_movie, sp_model, tmp_path):
    m4 = np.stack([sp_movie[:11], sp_movie[11:22]], axis=1)  # (11, 2, 10, 36)
    ref = drain(sp.predict(m4, sp_model, chunk_frames=100, device="cpu"))
    z = io.open_output(tmp_path / "s4.zarr", ref.shape, chunks=3)
    assert z.chunks == (3, 1, 40, 36)
    spy = Spy(z)
    drain(sp.predict(m4, sp_model, out=spy, chunk_frames=3, device="cpu",
                     on_chunk=zarr_io.ChunkRecorder(z)))
    assert_whole_chunks(spy.writes, z.chunks, z.shape)
    np.testing.assert_allclose(z[:], ref, **TOL)
    assert zarr_io.output_progress(z)["complete"]


def test_sparse_cancel_leaves_a_readable_partial_store(sp_movie, sp_model, sp_whole, tmp_path):
    z = io.open_output(tmp_path / "p.zarr", sp_whole.shape, chunks=5)
    token = CancelToken()
    gen = sp.predict(sp_movie, sp_model, token, out=z, chunk_frames=5, device="cpu")
    with pytest.raises(Cancelled, match="10 of 23 frames were reconstructed and written"):
        for p in gen:
            if p.step >= 10:
                token.cancel()
    got = zarr.open_array(tmp_path / "p.zarr", mode="r")
    prog = got.attrs[arrays.PROGRESS_ATTR]
    assert prog["frames_done"] == 10 and prog["done_ranges"] == [[0, 10]]
    np.testing.assert_allclose(got[:10], sp_whole[:10], **TOL)
    assert np.isnan(got[10:]).all()


# ----------------------------------------------------------------------------- isotropize
@pytest.fixture(scope="module")
def iso_vol():
    from napari_neurorestore.core.simulate import degrade_axial

    v = simulate_neuron_volume((19, 45, 37), n_somata=1, n_neurites=4, seed=0)
    return degrade_axial(v, 1.5, 3, photons=100, seed=0).raw.astype(np.uint16)  # (7, 45, 37)


@pytest.fixture(scope="module")
def iso_model(iso_vol):
    return drain(iso.train(iso_vol, IsotropizeParams(z_ratio=3, sigma_z=1.5, steps=2,
                                                     patch_size=16, batch_size=2, width=4,
                                                     seed=0, device="cpu")))


@pytest.fixture(scope="module")
def iso_whole(iso_vol, iso_model):
    return drain(iso.predict(iso_vol, iso_model, tile_size=256, device="cpu"))


@pytest.mark.parametrize("tile", [16, 17, 23])  # the smallest block, odd block sides
def test_isotropize_zarr_blocks_equal_whole(iso_vol, iso_model, iso_whole, tmp_path, tile):
    chunks = iso_spec.output_chunks(iso_vol.shape, 3, tile)
    assert chunks == (19, tile, tile)
    tiles = iso_spec.output_tiles(iso_vol.shape, 3, tile)
    z = io.open_output(tmp_path / "i.zarr", iso_whole.shape, chunk_shape=chunks, axes="ZYX",
                       unit="tiles", total=tiles["total"])
    spy = Spy(z)
    lazy = Lazy(iso_vol)
    drain(iso.predict(lazy, iso_model, out=spy, tile_size=tile, device="cpu",
                      on_chunk=zarr_io.ChunkRecorder(z, tiles["total"], "tiles")))
    assert len(spy.writes) == tiles["total"] == len(lazy.reads)  # one read per block
    assert_whole_chunks(spy.writes, chunks, iso_whole.shape)
    np.testing.assert_allclose(zarr.open_array(tmp_path / "i.zarr", mode="r")[:], iso_whole,
                               **TOL)
    assert zarr_io.output_progress(tmp_path / "i.zarr")["complete"]


def test_isotropize_cancel_leaves_a_readable_partial_store(iso_vol, iso_model, iso_whole,
                                                           tmp_path):
    tiles = iso_spec.output_tiles(iso_vol.shape, 3, 16)  # a 3 x 3 grid of blocks
    assert tiles["total"] == 9 and tiles["extra"]["tile_grid"] == [1, 3, 3]
    z = io.open_output(tmp_path / "p.zarr", iso_whole.shape,
                       chunk_shape=iso_spec.output_chunks(iso_vol.shape, 3, 16))
    token = CancelToken()
    gen = iso.predict(iso_vol, iso_model, token, out=z, tile_size=16, device="cpu")
    with pytest.raises(Cancelled, match="4 of 9 lateral blocks were restored and written"):
        for p in gen:
            if p.step >= 4:
                token.cancel()
    got = zarr.open_array(tmp_path / "p.zarr", mode="r")
    prog = got.attrs[arrays.PROGRESS_ATTR]
    assert prog["tiles_done"] == 4 and prog["done_ranges"] == [[0, 4]]
    assert prog["tile_grid"] == [1, 3, 3]
    np.testing.assert_allclose(got[:, :16, :], iso_whole[:, :16, :], **TOL)  # row 0
    np.testing.assert_allclose(got[:, 16:32, :16], iso_whole[:, 16:32, :16], **TOL)
    assert np.isnan(got[:, 16:32, 16:]).all() and np.isnan(got[:, 32:]).all()
