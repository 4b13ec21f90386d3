"""The denoiser's long-context step: blind wide means combined by least squares."""

import numpy as np
import pytest
import torch

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.denoise import context as dx
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import drain


def _static_scene(rng, t=120, n=40, sigma=1.0):
    yy, xx = np.mgrid[0:n, 0:n]
    scene = (np.sin(yy / 2.0) * np.cos(xx / 3.0) + np.exp(-((yy - 20) ** 2 + (xx - 14) ** 2) / 20.0))
    amp = 1 + 0.3 * np.sin(np.arange(t) / 9.0)  # a slow change the short window follows
    clean = (amp[:, None, None] * scene[None]).astype(np.float32)
    return clean, (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)


def _short_blind_mean(x, k=2):
    block = torch.from_numpy(x)
    ts = np.arange(len(x))
    return dx.blind_means(dx.prefix_sums(block), block, ts, 0, len(x), [k])[0].numpy()


def test_blind_means_never_see_their_frame(rng):
    x = rng.normal(size=(30, 8, 8)).astype(np.float32)
    block = torch.from_numpy(x)
    ts = np.array([0, 5, 29])
    before = dx.blind_means(dx.prefix_sums(block), block, ts, 0, 30, [3, 64])
    y = x.copy()
    y[5] += 100.0  # frame 5 changes: its own means must not
    b2 = torch.from_numpy(y)
    after = dx.blind_means(dx.prefix_sums(b2), b2, ts, 0, 30, [3, 64])
    for m0, m1 in zip(before, after, strict=True):
        assert torch.allclose(m0[1], m1[1], atol=1e-4)
    assert torch.allclose(before[0][0], after[0][0], atol=1e-4)  # frames 1-3 only
    assert not torch.allclose(before[1][0], after[1][0])  # the 64-frame mean includes 5
    # the mean over frames 2..8 without 5, by hand; and the cut at the movie's start
    assert torch.allclose(before[0][1], torch.from_numpy(x[[2, 3, 4, 6, 7, 8]].mean(0)), atol=1e-5)
    assert torch.allclose(before[0][0], torch.from_numpy(x[1:4].mean(0)), atol=1e-5)
    with pytest.raises(ValueError, match="context window"):
        dx.blind_means(dx.prefix_sums(block[:10]), block[:10], np.array([9]), 0, 30, [3])


def test_fit_learns_the_static_part_from_wide_means(rng):
    clean, x = _static_scene(rng)
    ts = np.arange(8, 112, 2)
    pred = _short_blind_mean(x)  # a blind predictor from 4 frames: noisy
    spec, better, change = dx.fit(x, ts, pred[ts])
    assert spec is not None and change < -0.05

    def err(p):
        return float(((p - clean[ts]) ** 2).mean())

    assert err(better) < 0.5 * err(pred[ts])  # the wide means know the scene far better
    # the torch step applied to the same frames gives the same result
    step = dx.context_step(spec)
    step.new_block(torch.from_numpy(x), 0, len(x))
    out = step(torch.from_numpy(pred[ts])[:, None], ts)[:, 0].numpy()
    assert np.abs(out - better).max() < 1e-3
    # and on a block that starts later (a chunk with its halo)
    step.new_block(torch.from_numpy(x[30:]), 30, len(x))
    late = ts[ts >= 30 + 64]
    assert late.size and np.abs(step(torch.from_numpy(pred[late])[:, None], late)[:, 0].numpy()
                                - better[np.isin(ts, late)]).max() < 1e-3
    assert dx.context_step(None) is None


def _chunked(step, x, chunk, halo, key=None):
    """The step's output for every frame, block by block as inference reads them."""
    n, out = len(x), []
    f = torch.from_numpy(x[:, None] * 0.5)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        lo, hi = max(0, a - halo), min(n, b + halo)
        step.new_block(torch.from_numpy(x[lo:hi]), lo, n, key=key)
        out.append(step(f[a:b], np.arange(a, b)))
    return torch.cat(out)


def test_running_sums_kept_across_chunks_give_the_same_step(rng, monkeypatch):
    spec = {"windows": [3, 8], "levels": [0, 1, 2],
            "weights": [[0.2, 0.1, 0.05], [0.3, 0.1, 0.1]]}
    x = rng.normal(1.0, 1.0, size=(90, 12, 20)).astype(np.float32)
    whole = dx.context_step(spec)
    whole.new_block(torch.from_numpy(x), 0, len(x))
    ref = whole(torch.from_numpy(x[:, None] * 0.5), np.arange(len(x)))
    # a ring of 7 + 16 frames: it wraps many times; each block adds only its new frames
    kept = dx.context_step(spec, capacity=7 + 16)
    assert torch.allclose(_chunked(kept, x, 7, 8), ref, atol=1e-5)
    run = kept.runs[None]
    assert run.base == 0 and run.end == len(x)  # one run: nothing was made again
    # a block that does not continue the run (back to the start) starts a new one
    assert torch.allclose(_chunked(kept, x, 7, 8), ref, atol=1e-5)
    assert kept.runs[None] is not run
    # sums are started again after REBASE frames: the same result
    monkeypatch.setattr(dx, "REBASE", 30)
    rebased = dx.context_step(spec, capacity=23)
    assert torch.allclose(_chunked(rebased, x, 7, 8), ref, atol=1e-5)
    assert rebased.runs[None].base > 0
    # planes take turns: with room for one run each plane starts again, with two both go on
    for runs in (1, 2):
        step = dx.context_step(spec, capacity=23, runs=runs)
        n, outs = len(x), {0: [], 1: []}
        f = torch.from_numpy(x[:, None] * 0.5)
        for a in range(0, n, 7):
            lo, hi = max(0, a - 8), min(n, a + 15)
            for plane, movie in ((0, x), (1, x[:, ::-1].copy())):
                step.new_block(torch.from_numpy(movie[lo:hi]), lo, n, key=plane)
                fp = f if plane == 0 else torch.from_numpy(movie[:, None] * 0.5)
                outs[plane].append(step(fp[a:a + 7], np.arange(a, min(n, a + 7))))
        assert torch.allclose(torch.cat(outs[0]), ref, atol=1e-5)
        assert len(step.runs) == runs
    other = dx.context_step(spec)
    other.new_block(torch.from_numpy(x[:, ::-1].copy()), 0, n)
    assert torch.allclose(torch.cat(outs[1]), other(torch.from_numpy(x[:, ::-1, None] * 0.5)
                                                   .reshape(n, 1, 12, 20), np.arange(n)),
                          atol=1e-5)


def test_fit_leaves_the_step_out_when_the_prediction_is_already_right(rng):
    clean, x = _static_scene(rng)
    ts = np.arange(8, 112, 2)
    perfect = clean[ts]  # a perfect blind predictor
    spec, same, change = dx.fit(x, ts, perfect)
    assert spec is None and change >= 0 and same is perfect


def test_context_step_improves_the_denoiser_and_does_not_depend_on_chunks(tiny_movie):
    raw, clean = tiny_movie.raw, tiny_movie.clean
    trained = drain(restore("denoise", raw,
                            DenoiseParams(epochs=20, train_seconds=None, patch_size=32,
                                              batch_size=8, device="cpu", seed=0)))
    model = trained.model
    assert model.norm["context"]["windows"] == list(dx.WINDOWS)
    assert model.info["self_check"]["context"] and model.info["self_check"]["context_cv"] < 0
    rng = float(np.ptp(clean))
    norm = {k: v for k, v in model.norm.items() if k != "context"}
    without = drain(dn.predict(raw, TrainedModel("denoise", model.params, model.state_dict,
                                                 norm, model.info)))
    assert psnr(trained.data, clean, rng) > psnr(without, clean, rng) + 0.3
    # chunks of 7 frames read their own 64-frame halo: the same result
    small = drain(dn.predict(raw, model, chunk_frames=7))
    assert np.abs(small - trained.data).max() < 1e-4 * rng
    # the caller's float32 frames are read without a copy: they must come back untouched
    raw32 = np.ascontiguousarray(raw, dtype=np.float32)
    before = raw32.copy()
    drain(dn.predict(raw32, model, chunk_frames=16))
    assert np.array_equal(raw32, before)
    # live mode leaves the step out
    live = drain(dn.predict(raw, model, context=False))
    assert np.abs(live - trained.data).max() > 1e-3 * rng


def test_context_step_is_optional_and_off_without_the_centre_correction(tiny_movie):
    off = drain(dn.train(tiny_movie.raw, DenoiseParams(epochs=1, train_seconds=None,
                                                       patch_size=16, device="cpu",
                                                       long_context=False)))
    assert "context" not in off.norm and not off.info["self_check"]["context"]
    none = drain(dn.train(tiny_movie.raw[:40], DenoiseParams(
        epochs=1, train_seconds=None, patch_size=16, device="cpu", centre_correction=False)))
    assert "context" not in none.norm


def test_causal_step_reads_no_frame_after_its_future(rng):
    """The causal step (live mode's) of frame t reads frames up to t + future only: frames
    after them change nothing; it is fitted like the full step and helps as well on a
    scene that hardly changes; applied chunk by chunk with ``future`` frames after each
    chunk, it gives the same result."""
    clean, x = _static_scene(rng, t=150)
    ts = np.arange(8, 140, 2)
    pred = _short_blind_mean(x)
    spec, better, change = dx.fit(x, ts, pred[ts], windows=(2, 16, 64), future=2)
    assert spec is not None and spec["future"] == 2 and change < -0.05
    assert dx.halo(spec) == 64 and dx.halo(spec, after=True) == 2

    def err(p):
        return float(((p - clean[ts]) ** 2).mean())

    assert err(better) < 0.5 * err(pred[ts])  # a gain over no context
    f = torch.from_numpy(pred[:, None])
    t = 70

    def at_t(spec, movie):  # a new step each time: a step keeps its running sums
        step = dx.context_step(spec)
        step.new_block(torch.from_numpy(movie), 0, len(movie))
        return step(f[t:t + 1], np.array([t]))

    ref = at_t(spec, x)
    later = x.copy()
    later[t + 3:] += rng.normal(0, 5.0, later[t + 3:].shape).astype(np.float32)
    assert torch.equal(at_t(spec, later), ref)
    nearer = x.copy()
    nearer[t + 2] += 5.0  # frame t + future is read: the step's output changes
    assert not torch.allclose(at_t(spec, nearer), ref, atol=1e-3)
    # the full step of the same windows reads 64 frames ahead: it changes
    full, _, _ = dx.fit(x, ts, pred[ts], windows=(2, 16, 64))
    assert "future" not in full
    assert not torch.allclose(at_t(full, later), at_t(full, x), atol=1e-3)
    step = dx.context_step(spec)
    # the torch step equals the fit's combination; chunk by chunk (64 frames before each
    # chunk, 2 after) the same
    step.new_block(torch.from_numpy(x), 0, len(x))
    whole = step(f[ts], ts)[:, 0].numpy()
    assert np.abs(whole - better).max() < 1e-3
    chunked = dx.context_step(spec, capacity=9 + 66)
    out = []
    for a in range(0, len(x), 9):
        b = min(len(x), a + 9)
        lo, hi = max(0, a - 64), min(len(x), b + 2)
        chunked.new_block(torch.from_numpy(x[lo:hi]), lo, len(x))
        out.append(chunked(f[a:b], np.arange(a, b)))
    step.new_block(torch.from_numpy(x), 0, len(x))
    assert torch.allclose(torch.cat(out), step(f, np.arange(len(x))), atol=1e-5)


def test_which_step_a_run_applies():
    full = {"windows": [5], "levels": [0], "weights": [[0.1]]}
    causal = {**full, "future": 5}
    norm = {"context": full, "context_causal": causal}
    assert dx.select(norm, True) is full and dx.select(norm, "causal") is causal
    assert dx.select(norm, False) is None
    assert dx.select({"context": full}, "causal") is None  # an old model: no causal step
    with pytest.raises(ValueError, match="causal"):
        dx.select(norm, "sideways")
