"""Large recordings, headless: lazy input, streamed (chunked) output to zarr/TIFF, cancel,
output safety, training on a bounded sample. Tiny data; the dask cluster test is in
tests/test_cli_large.py."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from counting_array import CountingArray as Counting

from napari_neurorestore.core import arrays, errors, io, paths, zarr_io
from napari_neurorestore.core.methods.denoise import context as dx
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.progress import Cancelled, CancelToken, drain
from napari_neurorestore.core.simulate import simulate_calcium_movie

zarr = pytest.importorskip("zarr")
FAST = dict(epochs=1, patch_size=16, batch_size=4, seed=0, device="cpu", window=7)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return simulate_calcium_movie(n_frames=50, shape=(24, 20), n_cells=4, seed=1).raw


@pytest.fixture(scope="module")
def model(movie):
    return drain(dn.train(movie, DenoiseParams(**FAST)))


@pytest.fixture(scope="module")
def whole(movie, model):
    return drain(dn.predict(movie, model, chunk_frames=1000))


# --------------------------------------------------------------------------- chunked == whole
@pytest.mark.parametrize("chunk", [1, 6, 13])  # 1 frame, window - 1, odd
def test_zarr_output_chunked_equals_whole(movie, model, whole, tmp_path, chunk):
    out = io.open_output(tmp_path / "o.zarr", movie.shape, chunks=chunk, axes="TYX")
    assert out.chunks == (chunk, *movie.shape[1:])
    ret = drain(dn.predict(movie, model, out=out, chunk_frames=chunk))
    assert ret is out
    z = zarr.open_array(tmp_path / "o.zarr", mode="r")
    np.testing.assert_allclose(z[:], whole, rtol=1e-5, atol=1e-4)
    prog = zarr_io.output_progress(tmp_path / "o.zarr")
    assert prog == {"frames_done": 50, "frames_total": 50, "done_ranges": [[0, 50]],
                    "complete": True}
    assert z.attrs["axes"] == "TYX"


def test_subranges_at_awkward_offsets_tile_the_movie(movie, model, whole):
    out = np.full(movie.shape, np.nan, np.float32)
    for a, b in [(0, 1), (1, 7), (7, 20), (20, 49), (49, 50)]:
        drain(dn.predict(movie, model, out=out, chunk_frames=5, start=a, stop=b))
    np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-4)


def test_tiff_output_is_streamed_and_equal(movie, model, whole, tmp_path):
    out = io.open_output(tmp_path / "o.tif", movie.shape)
    assert isinstance(out, np.memmap)
    drain(dn.predict(movie, model, out=out, chunk_frames=6))
    out.flush()
    del out
    np.testing.assert_allclose(tifffile.imread(tmp_path / "o.tif"), whole, rtol=1e-5, atol=1e-4)


def test_4d_zarr_chunks_are_one_plane(model, movie, tmp_path):
    m4 = np.stack([movie[:20], movie[20:40]], axis=1)
    out = io.open_output(tmp_path / "o4.zarr", m4.shape, chunks=6)
    assert out.chunks == (6, 1, *m4.shape[2:])
    drain(dn.predict(m4, model, out=out, chunk_frames=6))
    ref = drain(dn.predict(m4, model, chunk_frames=100))
    np.testing.assert_allclose(out[:], ref, rtol=1e-5, atol=1e-4)


def test_chunk_writes_are_whole_chunks(movie, model, tmp_path):
    z = io.open_output(tmp_path / "o.zarr", movie.shape, chunks=8)
    writes = []

    class Spy:
        shape, dtype = z.shape, z.dtype

        def __setitem__(self, key, value):
            writes.append((key, value.shape))
            z[key] = value

    drain(dn.predict(movie, model, out=Spy(), chunk_frames=8))
    assert [k for k, _ in writes] == [slice(a, min(50, a + 8)) for a in range(0, 50, 8)]


# --------------------------------------------------------------------------- cancel
def test_cancel_leaves_a_readable_partial_store(movie, model, whole, tmp_path):
    out = io.open_output(tmp_path / "p.zarr", movie.shape, chunks=8)
    token = CancelToken()
    gen = dn.predict(movie, model, token, out=out, chunk_frames=8)
    with pytest.raises(Cancelled, match="16 of 50 frames were restored and written"):
        for p in gen:
            if p.step >= 16:
                token.cancel()
    z = zarr.open_array(tmp_path / "p.zarr", mode="r")  # a valid store
    prog = dict(z.attrs[arrays.PROGRESS_ATTR])
    assert prog["frames_done"] == 16 and prog["done_ranges"] == [[0, 16]]
    assert not prog["complete"]
    np.testing.assert_allclose(z[:16], whole[:16], rtol=1e-5, atol=1e-4)
    assert np.isnan(z[16:]).all()  # unwritten frames read as NaN, never as zeros


# --------------------------------------------------------------------------- output safety
def test_existing_store_is_not_overwritten_without_overwrite(movie, tmp_path):
    p = tmp_path / "o.zarr"
    z = io.open_output(p, movie.shape, chunks=8)
    z[:8] = 1.0
    with pytest.raises(FileExistsError, match="already exists"):
        io.open_output(p, movie.shape, chunks=8)
    assert zarr.open_array(p, mode="r")[0, 0, 0] == 1.0
    z2 = io.open_output(p, movie.shape, overwrite=True, chunks=8)
    assert np.isnan(z2[0, 0, 0])
    folder = tmp_path / "notes.zarr"
    folder.mkdir()
    (folder / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        io.open_output(folder, movie.shape, overwrite=True)
    assert (folder / "precious.txt").exists()


def test_bad_output_place_fails_before_work(movie, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.open_output(tmp_path / "missing" / "o.zarr", movie.shape)
    (tmp_path / "afile").write_text("")
    with pytest.raises((FileNotFoundError, NotADirectoryError)):
        io.open_output(tmp_path / "afile" / "o.zarr", movie.shape)

    class Usage:
        free = 1000

    monkeypatch.setattr(paths.shutil, "disk_usage", lambda _: Usage)
    for name in ("o.zarr", "o.tif"):
        with pytest.raises(OSError, match="not enough free disk space"):
            io.open_output(tmp_path / name, (1000, 64, 64))
        assert not (tmp_path / name).exists()


# --------------------------------------------------------------------------- lazy input
def test_compressed_tiff_opens_lazily_and_gives_the_same_result(movie, model, whole, tmp_path,
                                                                  monkeypatch):
    da = pytest.importorskip("dask.array")
    p = tmp_path / "c.tif"
    tifffile.imwrite(p, movie, compression="zlib")
    monkeypatch.setattr(io, "LAZY_MIN_BYTES", 0)
    data, axes = io.read_tiff(p, lazy=True)
    assert isinstance(data, da.Array) and data.shape == movie.shape
    assert data.chunksize == (1, *movie.shape[1:])
    arr, _ = io.open_array(p)
    assert isinstance(arr, zarr.Array)
    np.testing.assert_allclose(drain(dn.predict(data, model, chunk_frames=7)), whole,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(drain(dn.predict(arr, model, chunk_frames=7)), whole,
                               rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(io, "LAZY_MIN_BYTES", 2**40)  # small files are simply read
    assert isinstance(io.read_tiff(p, lazy=True)[0], np.ndarray)


def test_tiled_tiff_opens_lazily(movie, tmp_path):
    p = tmp_path / "t.tif"
    big = np.tile(movie[:4], (1, 2, 2))  # 48 x 40 frames in 16 x 16 tiles
    tifffile.imwrite(p, big, tile=(16, 16), compression="zlib")
    arr, axes = io.open_array(p)
    np.testing.assert_array_equal(arr[1:3], big[1:3])


def test_ome_zarr_input(movie, tmp_path):
    da = pytest.importorskip("dask.array")
    p = tmp_path / "in.ome.zarr"
    g = zarr.open_group(str(p), mode="w", zarr_format=2)
    g.create_array("0", data=movie[:, None, None], chunks=(10, 1, 1, 24, 20))
    g.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": "t", "type": "time"}, {"name": "c", "type": "channel"},
        {"name": "z", "type": "space"}, {"name": "y", "type": "space"},
        {"name": "x", "type": "space"}], "datasets": [{"path": "0"}]}]
    data, axes = io.read_array(p)
    assert axes == "TYX" and data.shape == movie.shape and isinstance(data, da.Array)
    np.testing.assert_array_equal(np.asarray(data[3:5]), movie[3:5])
    arr, axes = io.open_array(p)
    assert axes == "TYX" and arr.shape == movie.shape


def test_our_zarr_output_reads_back_with_axes(movie, tmp_path):
    io.open_output(tmp_path / "o.zarr", movie.shape, axes="TYX", metadata={"a": {"b": 1}})
    data, axes = io.read_array(tmp_path / "o.zarr")
    assert axes == "TYX" and data.shape == movie.shape
    with pytest.raises(errors.InputError, match="unsupported file type"):
        io.open_array(tmp_path / "movie.h5")


def test_napari_reader_returns_lazy_layers(movie, tmp_path, monkeypatch):
    da = pytest.importorskip("dask.array")
    from napari_neurorestore._reader import napari_get_reader

    io.open_output(tmp_path / "o.zarr", movie.shape, axes="TYX", metadata={"neurorestore": {}})
    (data, kw, kind), = napari_get_reader(str(tmp_path / "o.zarr"))(str(tmp_path / "o.zarr"))
    assert isinstance(data, da.Array) and kind == "image"
    assert kw["metadata"]["axes"] == "TYX"
    assert kw["metadata"][arrays.PROGRESS_ATTR]["frames_done"] == 0
    p = tmp_path / "c.tif"
    tifffile.imwrite(p, movie, compression="zlib")
    monkeypatch.setattr(io, "LAZY_MIN_BYTES", 0)
    (data, kw, kind), = napari_get_reader(str(p))(str(p))
    assert isinstance(data, da.Array)


# --------------------------------------------------------------------------- training sample
def test_training_reads_a_bounded_sample_never_the_whole_movie(monkeypatch):
    da = pytest.importorskip("dask.array")
    long = simulate_calcium_movie(n_frames=400, shape=(32, 32), n_cells=4, seed=2).raw
    frame_bytes = 4 * 32 * 32
    monkeypatch.setattr(dn, "TRAIN_CACHE_BYTES", 150 * frame_bytes)  # 150 of 400 frames
    for wrap in (lambda c: c, lambda c: da.from_array(c, chunks=(16, 32, 32))):
        counting = Counting(long)
        src = dn._TrainingSource(wrap(counting), 7, np.random.default_rng(0))
        read = sum(counting.reads)
        assert 0 < read <= 150 * 32 * 32 + 16 * 32 * 32  # the budget (+ one dask chunk)
        assert max(counting.reads) < long.size // 4
        assert sum(len(s) for s in src.segments) <= 150
        x, y = src.batch(2, 16)
        assert x.shape == (2, 6, 16, 16)


def test_inference_reads_each_frame_about_once(movie, model):
    counting = Counting(movie)
    drain(dn.predict(counting, model, chunk_frames=10))
    # every frame once (a chunk's halo is kept for the next chunk, not read again), plus
    # the net's window overlap at each of the 5 chunks' edges
    assert sum(counting.reads) <= movie.size + 5 * 2 * 3 * movie[0].size
    halo = max(3, dx.halo(model.norm.get("context")))
    assert max(counting.reads) <= (10 + 2 * halo) * movie[0].size


# --------------------------------------------------------------------------- worker task
def test_worker_task_writes_its_chunks_and_caches_the_model(movie, model, whole, tmp_path):
    from napari_neurorestore.core import distributed as dist
    from napari_neurorestore.core.models import save_model

    tifffile.imwrite(tmp_path / "in.tif", movie)
    save_model(model, tmp_path / "m.pt")
    from napari_neurorestore.core.methods import get

    m = get("denoise")
    jobs = [dist.Job(str(tmp_path / "in.tif"), str(tmp_path / "o.zarr"), str(tmp_path / "m.pt"))]
    params = m.params_class(chunk_frames=8, device="cpu")
    (r,) = dist.prepare_outputs(m, jobs, params)
    assert r.shape == movie.shape and r.out.chunks[0] == 8 and r.parts()[-1] == (48, 50)
    dist._MODELS.clear()
    for a in (40, 0, 48, 8):  # any order, disjoint chunks
        b = min(50, a + 8)
        assert dist.run_part("denoise", r.job, r.params, a, b) == (a, b)
    assert len(dist._MODELS) == 1  # loaded once
    z = zarr.open_array(tmp_path / "o.zarr", mode="r")
    np.testing.assert_allclose(z[:16], whole[:16], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(z[40:], whole[40:], rtol=1e-5, atol=1e-4)
    assert np.isnan(z[16:40]).all()
    with pytest.raises(FileExistsError):
        dist.prepare_outputs(m, jobs, params)
    bad = [dist.Job(jobs[0].input, str(tmp_path / "o.tif"), jobs[0].model)]
    with pytest.raises(ValueError, match="must end in .zarr"):
        dist.prepare_outputs(m, bad, params)


def test_memmapped_tiff_output_hands_written_pages_back(tmp_path, monkeypatch):
    """Any method writing into open_output_tiff's memmap (upsample, sparse, ...) keeps its
    resident memory bounded: written pages are flushed and dropped every RELEASE_BYTES."""
    calls = []
    release = arrays.release_pages
    monkeypatch.setattr(io, "RELEASE_BYTES", 4 * 10 * 16 * 16)  # every 10 frames
    monkeypatch.setattr(io, "release_pages", lambda mm: (calls.append(1), release(mm)))
    out = io.open_output_tiff(tmp_path / "o.tif", (40, 16, 16))
    assert isinstance(out, np.memmap)
    for t in range(40):
        out[t] = t
    out[3, 2, 1] = -1.0
    assert len(calls) == 4
    out.flush()
    back = tifffile.imread(tmp_path / "o.tif")
    assert back[3, 2, 1] == -1.0 and back[39, 0, 0] == 39 and back[10].min() == 10
