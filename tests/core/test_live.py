"""Live denoising (core/live.py): a writer thread produces TIFF files at a set rate, by rename
or growing in place; the watcher's store must equal offline inference of the concatenation."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import tifffile

from napari_neurorestore.core.live import PROGRESS_ATTR, natural_key, watch
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import CancelToken, drain

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(epochs=1, patch_size=16, batch_size=4, seed=0, device="cpu")
SHAPE = (32, 32)


@pytest.fixture(scope="module")
def movie():
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=60, shape=SHAPE, n_cells=4, seed=1).raw


@pytest.fixture(scope="module")
def model(movie, one_torch_thread):
    return drain(dn.train(movie, DenoiseParams(**FAST)))


class Writer(threading.Thread):
    """Writes ``blocks`` as acq_00001.tif, ... at ``rate`` frames/s. mode "rename": each file
    is written under a temporary name then renamed in; "grow": written in place, page by
    page. ``extra`` maps a file index to raw bytes written instead (a corrupt file)."""

    def __init__(self, folder, blocks, rate=300.0, mode="rename", extra=None, gap=0.0):
        super().__init__(daemon=True)
        self.folder, self.blocks, self.rate, self.mode = folder, blocks, rate, mode
        self.extra = extra or {}
        self.gap = gap
        self.error = None

    def run(self):
        try:
            for i, block in enumerate(self.blocks):
                name = self.folder / f"acq_{i + 1:05d}.tif"
                if i in self.extra:
                    name.write_bytes(self.extra[i])
                elif self.mode == "rename":
                    time.sleep(len(block) / self.rate)
                    tmp = self.folder / (name.name + ".part")
                    tifffile.imwrite(tmp, block, photometric="minisblack")
                    os.replace(tmp, name)
                else:
                    with tifffile.TiffWriter(name) as tw:
                        for f in block:
                            tw.write(f, contiguous=False, photometric="minisblack")
                            tw.filehandle.flush()
                            time.sleep(1.0 / self.rate)
                time.sleep(self.gap)
        except Exception as e:  # pragma: no cover
            self.error = e


def blocks_of(movie, sizes):
    out, t = [], 0
    for s in sizes:
        out.append(movie[t:t + s].astype(np.uint16))
        t += s
    return out


def offline(model, blocks):
    cat = np.concatenate(blocks).astype(np.float32)
    return cat, drain(dn.predict(cat, model, device="cpu", context="causal",
                         ensemble="off"))  # live's step (none without one); no ensemble


def run_live(tmp_path, model, writer=None, **kw):
    folder = tmp_path / "acq"
    folder.mkdir(exist_ok=True)
    if writer is not None:
        writer.folder = folder
        writer.start()
    kw.setdefault("idle_timeout", 1.0)
    kw.setdefault("threads", 1)  # tiny frames: one thread (the default measures)
    messages = []
    gen = watch(folder, tmp_path / "out.zarr", model, **kw)
    while True:
        try:
            messages.append(next(gen).message)
        except StopIteration as stop:
            res = stop.value
            break
    res.progress_messages = messages
    if writer is not None:
        writer.join(10)
        assert writer.error is None
    return res


def check_equal(res, model, blocks, tmp_path):
    import zarr

    cat, ref = offline(model, blocks)
    z = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    got = z[:]
    assert got.shape == ref.shape
    span = float(cat.max() - cat.min())
    assert np.abs(got - ref).max() <= 1e-3 * span
    rec = dict(z.attrs[PROGRESS_ATTR])
    assert rec["complete"] and rec["frames_done"] == rec["frames_total"] == len(cat)
    assert res.frames_restored == res.frames_arrived == len(cat)


@pytest.mark.parametrize("mode", ["rename", "grow"])
def test_live_equals_offline_inference(tmp_path, model, movie, mode):
    blocks = blocks_of(movie, [12, 3, 15, 10])  # a file shorter than the half window too
    res = run_live(tmp_path, model, Writer(None, blocks, mode=mode))
    assert res.stopped == "idle" and res.error is None
    assert [f.name for f in res.files] == [f"acq_{i:05d}.tif" for i in range(1, 5)]
    assert all(f.status == "restored" for f in res.files)
    assert [f.frames for f in res.files] == [12, 3, 15, 10]
    check_equal(res, model, blocks, tmp_path)
    assert len(res.latencies) == 4 and max(res.latencies) < 5
    assert res.fps > 0 and not res.files_skipped and not res.files_changed
    assert "p95" in res.summary()


def _with_causal_step(model, causal: bool):
    """``model`` with a causal long-context step of short windows (12 past frames, the
    window's k future ones: the session keeps 12 frames before the next one to restore),
    or without one (a model saved before the causal step)."""
    norm = {n: v for n, v in model.norm.items() if n not in ("context", "context_causal")}
    if causal:
        k = DenoiseParams.from_dict(model.params).half_window
        norm["context_causal"] = {"windows": [3, 12], "levels": [0, 1], "future": k,
                                  "weights": [[0.2, 0.1], [0.3, 0.2]]}
    return TrainedModel("denoise", model.params, model.state_dict, norm, model.info)


@pytest.mark.parametrize("causal", [True, False])
def test_live_applies_the_causal_step_and_says_so(tmp_path, model, movie, causal,
                                                  monkeypatch):
    import torch
    import zarr

    from napari_neurorestore.core.methods.denoise import context as dx

    made, running = [], dx._Running  # the step's sums are continued by each file

    class Counted(running):
        def __init__(self, *a):
            made.append(a)
            super().__init__(*a)

    monkeypatch.setattr(dx, "_Running", Counted)
    m = _with_causal_step(model, causal)
    blocks = blocks_of(movie, [12, 3, 15, 10, 20])
    before = torch.get_num_threads()
    res = run_live(tmp_path, m, Writer(None, blocks), threads=None)
    assert len(made) < (len(blocks) if causal else 1)  # made again only while a block outgrows it
    assert torch.get_num_threads() == before  # the measured thread count is put back
    check_equal(res, m, blocks, tmp_path)  # offline predict(context="causal")
    z = zarr.open_array(str(tmp_path / "out.zarr"), mode="r")
    assert z.attrs["neurorestore"]["long_context_applied"] == ("causal" if causal else "none")
    cat = np.concatenate(blocks).astype(np.float32)
    bare = drain(dn.predict(cat, m, device="cpu", context=False, ensemble="off"))
    diff = float(np.abs(z[:] - bare).max()) / float(np.ptp(cat))
    assert (diff > 1e-3) if causal else (diff < 1e-5)  # the step is applied, or none
    # the real-time margin, once, after the first file
    margin = [s for s in res.progress_messages if "keeps up with" in s]
    assert len(margin) == 1 and "32x32" in margin[0]
    assert res.first_rate > 0


def test_idle_timeout_without_files(tmp_path, model):
    t0 = time.monotonic()
    res = run_live(tmp_path, model, idle_timeout=0.5)
    assert 0.5 <= time.monotonic() - t0 < 3
    assert res.stopped == "idle" and res.output is None and res.frames_restored == 0
    assert not (tmp_path / "out.zarr").exists()


def test_cancel_keeps_a_complete_store(tmp_path, model, movie):
    blocks = blocks_of(movie, [12, 12, 12, 12])
    cancel = CancelToken()
    seen = []

    def on_frames(a, b):
        seen.append((a, b))
        if len(seen) == 2:
            cancel.cancel()

    res = run_live(tmp_path, model, Writer(None, blocks, gap=0.3), cancel=cancel,
                   idle_timeout=30, on_frames=on_frames)
    assert res.stopped == "cancelled"
    n_files = len(res.files_restored)
    assert 2 <= n_files < 4
    check_equal(res, model, blocks[:n_files], tmp_path)


def test_corrupt_and_partial_files_are_skipped(tmp_path, model, movie):
    blocks = blocks_of(movie, [12, 12, 12, 12, 12])
    import io

    buf = io.BytesIO()
    tifffile.imwrite(buf, blocks[3], photometric="minisblack")
    partial = buf.getvalue()[: len(buf.getvalue()) // 2]
    extra = {1: b"this is not a tiff file", 3: partial}
    res = run_live(tmp_path, model, Writer(None, blocks, extra=extra, gap=0.05),
                   corrupt_grace=0.5)
    assert [f.status for f in res.files] == ["restored", "skipped", "restored", "skipped",
                                             "restored"]
    assert "cannot be read" in res.files[1].message
    assert "skipped acq_00002.tif" in res.summary()
    check_equal(res, model, [blocks[0], blocks[2], blocks[4]], tmp_path)


def test_a_file_of_another_frame_size_stops_and_keeps_what_was_done(tmp_path, model, movie):
    blocks = blocks_of(movie, [12, 12])
    other = np.zeros((12, 16, 16), np.uint16)
    res = run_live(tmp_path, model, Writer(None, [*blocks, other, blocks[0]], gap=0.05),
                   idle_timeout=5)
    assert res.stopped == "error"
    assert "16x16" in res.error and "32x32" in res.error
    assert [f.status for f in res.files] == ["restored", "restored", "rejected"]
    check_equal(res, model, blocks, tmp_path)


def test_natural_order():
    names = ["a_10.tif", "a_2.tif", "a_1.tif"]
    assert sorted(names, key=natural_key) == ["a_1.tif", "a_2.tif", "a_10.tif"]


def test_bad_inputs(tmp_path, model):
    from napari_neurorestore.core.errors import InputError

    with pytest.raises(FileNotFoundError):
        drain(watch(tmp_path / "nope", tmp_path / "o.zarr", model))
    (tmp_path / "acq").mkdir()
    with pytest.raises(InputError, match="inside"):
        drain(watch(tmp_path / "acq", tmp_path / "acq" / "o.zarr", model))
    (tmp_path / "o.zarr").mkdir()
    with pytest.raises(FileExistsError):
        drain(watch(tmp_path / "acq", tmp_path / "o.zarr", model))
