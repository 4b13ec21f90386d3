"""Frames held out of the denoiser's training decide its checkpoint and its output: the
network, the self-check's Gaussian filter, or their blend (never worse than the Gaussian)."""

import dataclasses

import numpy as np
import pytest
import tifffile
import torch
from torch.nn.functional import pixel_unshuffle

from napari_neurorestore.cli.main import main
from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.denoise import centre as dc
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise import held as dh
from napari_neurorestore.core.methods.denoise.frames import neighbour_offsets
from napari_neurorestore.core.methods.denoise.post import blind_gaussian, gauss_halo
from napari_neurorestore.core.methods.denoise.spec import CONTEXT_HALO, GAUSS_HALO, DenoiseParams
from napari_neurorestore.core.models import TrainedModel, save_model
from napari_neurorestore.core.progress import drain

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Fixed(torch.nn.Module):
    """A stand-in network: ``s`` x the mean of its input frames, or ``image`` if given."""

    def __init__(self, s=1.0, image=None):
        super().__init__()
        self.s = torch.nn.Parameter(torch.tensor(float(s)))
        self.image = image

    def forward_unshuffled(self, xu):
        b, c, h, w = xu.shape
        if self.image is not None:
            return pixel_unshuffle(self.image.expand(b, 1, -1, -1), 2)
        return self.s * xu.reshape(b, c // 4, 4, h, w).mean(1)


def _static(rng, t=60, n=64, noise=1.0):
    yy, xx = np.mgrid[:n, :n]
    scene = (3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)
    return scene, scene[None] + rng.normal(0, noise, (t, n, n)).astype(np.float32)


def test_held_out_frames_are_never_training_targets(rng):
    raw = rng.normal(0, 1, (80, 32, 32)).astype(np.float32)
    src = dn._TrainingSource(raw, 11, rng)
    held = set(src.held.tolist())
    assert 4 <= len(held) <= 16
    assert not held & set(src.allowed.tolist())
    assert held | set(src.allowed.tolist()) == set(range(5, 75))
    assert src.n_windows == 70 - len(held)
    # too short a movie holds nothing out
    assert len(dh.held_out(30, 5, (32, 32))) == 0
    # the memory model counts the widest Gaussian's frames
    assert GAUSS_HALO == max(gauss_halo({"sigma_t": st, "weight": 1}) for st, _ in dc.GAUSS_GRID)
    assert GAUSS_HALO <= CONTEXT_HALO  # read with the context step's frames


def test_blind_gaussian_never_sees_its_frame(rng):
    x = torch.from_numpy(rng.normal(0, 1, (40, 16, 16)).astype(np.float32))
    ts = np.array([0, 10, 39])
    g = blind_gaussian(x, ts, 0, 40, 2.0, 1.0)
    y = x.clone()
    y[ts] += 100.0  # the frames themselves changed: their blind estimates must not
    torch.testing.assert_close(blind_gaussian(y, ts, 0, 40, 2.0, 1.0), g)
    # a block that starts later (as a chunk's) gives the same result
    torch.testing.assert_close(blind_gaussian(x[4:], np.array([10]), 4, 40, 2.0, 1.0), g[1:2])


def test_the_blend_weight_goes_to_the_better_predictor(rng):
    scene, raw = _static(rng)
    held = dh.held_out(len(raw), 5, raw.shape[-2:])
    off = neighbour_offsets(11)
    dev = torch.device("cpu")
    # a perfect network: the Gaussian (which averages noise) only adds error
    perfect = _Fixed(image=torch.from_numpy(scene)[None, None])
    fit = dh.choose(perfect, raw, held, off, dev, 1, 3.0, 0.5)
    assert fit["weight"] < 0.1 and fit["held_net_mse"] < fit["held_gauss_mse"]
    # a network that predicts nothing: the output is the Gaussian
    useless = _Fixed(image=torch.zeros((1, 1, 64, 64)))
    fit = dh.choose(useless, raw, held, off, dev, 1, 3.0, 0.5)
    assert fit["weight"] == 1.0 and dh.output_kind(fit["weight"]) == "gaussian"
    # two predictors with independent errors of equal size: an even blend
    x, clean = torch.ones((4, 1, 32, 32)), torch.zeros((4, 1, 32, 32))
    e1, e2 = (torch.from_numpy(rng.normal(0, 1, x.shape).astype(np.float32)) for _ in "ab")
    a = dh.fit_weight(clean + torch.from_numpy(rng.normal(0, 1, x.shape).astype(np.float32)),
                      clean + e1, clean + e2)
    assert 0.35 < a < 0.65 and dh.output_kind(a) == "blend"


def test_checkpoints_keep_the_best_held_out_weights(rng):
    scene, raw = _static(rng, noise=0.5)
    net = _Fixed(s=0.0)
    held = dh.held_out(len(raw), 5, raw.shape[-2:])
    ck = dh.Checkpoints(net, raw, held, neighbour_offsets(11), torch.device("cpu"), None, 40)
    values = {step: 1.0 + abs(step - 20) / 5 for step in range(1, 41)}  # best near step 20
    for step, s in values.items():
        with torch.no_grad():
            net.s.fill_(s)
        ck(step)
    summary = ck.finish(40)
    evaluated = dict(summary["evaluated"])
    # from FIRST_CHECK of the budget on, CHECKS + 1 times, and the last weights
    assert min(evaluated) == 4 and max(evaluated) == 40 and len(evaluated) <= dh.CHECKS + 2
    assert summary["best_step"] == min(evaluated, key=evaluated.get)
    assert abs(summary["best_step"] - 20) <= 2 and float(net.s) == pytest.approx(values[summary["best_step"]])
    assert summary["best_mse"] == min(evaluated.values()) < summary["last_mse"]


@pytest.fixture(scope="module")
def flat(one_torch_thread):
    """Pure noise over a constant: no network trained for a few steps beats a wide mean."""
    r = np.random.default_rng(1)
    clean = np.full((72, 32, 32), 50.0, np.float32)
    raw = clean + r.normal(0, 5, clean.shape).astype(np.float32)
    model = drain(dn.train(raw, DenoiseParams(epochs=1, train_seconds=None, patch_size=16,
                                              batch_size=4, device="cpu", seed=0)))
    return clean, raw, model


def test_where_the_gaussian_wins_the_output_is_the_gaussian(flat):
    clean, raw, model = flat
    check = model.info["self_check"]
    assert model.norm["gaussian"]["weight"] > 0.5
    assert check["output"] in ("gaussian", "blend") and check["held_out_frames"] >= 4
    assert "held out of training" in dc.format_check(check)
    params = DenoiseParams.from_dict(model.params)
    md = get("denoise").output_metadata(model, params, raw.shape)
    assert md["output"] == check["output"] and md["gaussian_weight"] > 0.5
    off = get("denoise").output_metadata(model, dataclasses.replace(params, gaussian_guard=False), raw.shape)
    assert off["output"] == "network" and off["gaussian_weight"] == 0
    guarded = drain(dn.predict(raw, model, device="cpu"))
    net = drain(dn.predict(raw, model, device="cpu", gaussian_guard=False))
    err = lambda x: float(((x - clean) ** 2).mean())  # noqa: E731
    assert err(guarded) < 0.7 * err(net)
    # chunks read the Gaussian's frames on each side: the result does not depend on them
    small = drain(dn.predict(raw, model, device="cpu", chunk_frames=5))
    np.testing.assert_allclose(small, guarded, rtol=0, atol=1e-3)
    # live mode (context=False: no frames beyond the net's window) leaves it out
    live = drain(dn.predict(raw, model, device="cpu", context=False, ensemble="off"))
    np.testing.assert_allclose(live, drain(dn.predict(raw, model, device="cpu", context=False,
                                                      ensemble="off", gaussian_guard=False)),
                               rtol=0, atol=1e-4)
    # weight 1: the Gaussian alone, whatever the network
    spec = {**model.norm["gaussian"], "weight": 1.0}
    only = TrainedModel("denoise", model.params, model.state_dict,
                        {**model.norm, "gaussian": spec}, model.info)
    g = drain(dn.predict(raw, only, device="cpu", chunk_frames=5))
    other = dn.build_net(params)  # untrained weights
    np.testing.assert_allclose(drain(dn.predict(raw, only, device="cpu", net=other)), g,
                               rtol=0, atol=1e-3)
    assert err(g) < 0.7 * err(net)


def test_the_guard_cannot_be_left_out_of_a_model_fitted_with_it(tmp_path, capsys, flat):
    clean, raw, model = flat
    src, m = tmp_path / "in.tif", tmp_path / "m.pt"
    tifffile.imwrite(src, raw)
    save_model(model, m)
    assert main(["denoise", str(src), "-o", str(tmp_path / "on.tif"), "--model", str(m),
                 "-q", "--device", "cpu"]) == 0
    # the CLI says which output was used
    out = capsys.readouterr().out.splitlines()
    assert "Gaussian filter (sigma_t=" in [ln for ln in out if "on.tif" in ln][0]
    # the steps after the network were fitted on the blend: without it they do not fit,
    # so leaving it out is refused in one line (exit 2), and nothing is written
    assert main(["denoise", str(src), "-o", str(tmp_path / "off.tif"), "--model", str(m),
                 "-q", "--device", "cpu", "--no-gaussian-guard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fitted on its blend with a Gaussian filter" in err[0]
    assert not (tmp_path / "off.tif").exists()
    params = dataclasses.replace(DenoiseParams.from_dict(model.params), gaussian_guard=False)
    with pytest.raises(ValueError, match="train a new model with it off"):
        drain(restore("denoise", raw, params, model=model))
    # where the blend is not applied anyway (live mode's causal step, no long context),
    # the setting changes nothing and is not refused
    for other in (dataclasses.replace(params, causal_context=True),
                  dataclasses.replace(params, long_context=False)):
        assert drain(restore("denoise", raw[:30], other, model=model)).data.shape == (30, 32, 32)
    # a model with no blend (weight 0) runs with the guard off
    zero = TrainedModel("denoise", model.params, model.state_dict,
                        {**model.norm, "gaussian": {**model.norm["gaussian"], "weight": 0.0}},
                        model.info)
    assert drain(restore("denoise", raw[:30], params, model=zero)).data.shape == (30, 32, 32)


    # set off at training: no blend is fitted, and the self-check says so
    net_only = drain(dn.train(raw, DenoiseParams(epochs=1, train_seconds=None, patch_size=16,
                                                 batch_size=4, device="cpu", seed=0,
                                                 gaussian_guard=False)))
    assert "gaussian" not in net_only.norm
    assert net_only.info["self_check"]["output_forced"]
    assert "output: the network (as set" in dc.format_check(net_only.info["self_check"])


def test_cycles_restart_the_learning_rate_and_report_their_ends():
    from napari_neurorestore.core.progress import CancelToken
    from napari_neurorestore.core.train import fit

    p = torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.p = p
    seen, ends = [], []
    batch = lambda: (torch.zeros(1), torch.zeros(1))  # noqa: E731
    loss = lambda out, y: model.p.sum()  # noqa: E731 - a constant gradient: Adam steps by lr
    before = [0.0]

    def on_step(step):
        seen.append(before[0] - float(p))
        before[0] = float(p)

    model.forward = lambda x: x
    drain(fit(model, batch, loss, 20, None, 1.0, CancelToken(), on_step=on_step,
              cycles=[0.5, 1.0], on_cycle=ends.append))
    assert ends == [10]
    np.testing.assert_allclose(seen[0], 1.0, rtol=1e-3)  # the first step of each cycle: lr
    np.testing.assert_allclose(seen[10], 1.0, rtol=1e-3)
    assert seen[9] < 0.2 and seen[19] < 0.2  # decayed to about 10 % at each cycle's end
    # a budget of up to 1.5x the default is one cycle; longer ones start with the default's
    assert dh.restarts(60.0) is None and dh.restarts(90.0) is None
    np.testing.assert_allclose(np.array(dh.restarts(300.0)) * 300, [60, 180, 300])


def test_an_earlier_checkpoint_within_the_noise_does_not_replace_the_last(rng):
    scene, raw = _static(rng, noise=0.5)
    net = _Fixed(s=0.0)
    held = dh.held_out(len(raw), 5, raw.shape[-2:])
    ck = dh.Checkpoints(net, raw, held, neighbour_offsets(11), torch.device("cpu"), None, 10)
    for step, s in enumerate([3.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0], 1):
        with torch.no_grad():
            net.s.fill_(s)
        ck(step)
    summary = ck.finish(10)
    evaluated = dict(summary["evaluated"])
    assert min(evaluated, key=evaluated.get) < 10  # an earlier one scored a little better
    assert summary["best_step"] == 10 and float(net.s) == 1.0  # but the last is kept
    assert summary["margin"] > 0


def test_a_longer_budget_evaluates_every_checkpoint_the_default_one_does():
    """With restarts, the first cycle is a default (60-s) run: its evaluation times are
    among the longer budget's, so the checkpoint a 60-s run keeps can be kept by a 300-s or
    900-s run too (a 300-s run evaluated from 30 s on, after the best weights of a 50-frame
    movie at 6 s)."""
    from napari_neurorestore.core.methods.denoise.held import CYCLE_SECONDS, schedule

    default = schedule(CYCLE_SECONDS) * CYCLE_SECONDS
    assert len(default) == 11 and default[0] == pytest.approx(0.1 * CYCLE_SECONDS)
    for seconds in (300.0, 900.0):
        longer = schedule(seconds) * seconds
        assert all(np.isclose(longer, t).any() for t in default)
        assert longer[-1] == pytest.approx(seconds) and np.all(np.diff(longer) > 0)


def test_a_step_cap_within_a_time_budget_anneals_the_rate_by_the_cap():
    from napari_neurorestore.core.progress import CancelToken
    from napari_neurorestore.core.train import fit

    model = torch.nn.Module()
    model.p = torch.nn.Parameter(torch.zeros(1))
    model.forward = lambda x: x
    seen, before = [], [0.0]

    def on_step(step):
        seen.append(before[0] - float(model.p))
        before[0] = float(model.p)

    history = drain(fit(model, lambda: (torch.zeros(1), torch.zeros(1)),
                        lambda out, y: model.p.sum(), 20, 600.0, 1.0, CancelToken(),
                        on_step=on_step, cycles=[0.1, 0.3, 1.0]))
    # the 20 steps end long before the 600 s (and its first cycle's 60 s): the rate
    # decays to about 10 % by the cap, with no restart
    assert len(history) == 20
    np.testing.assert_allclose(seen[0], 1.0, rtol=1e-3)
    assert seen[-1] < 0.2 and all(a >= b - 1e-6 for a, b in zip(seen[:-1], seen[1:], strict=True))


def test_a_short_movie_stops_after_max_passes_and_says_so(monkeypatch):
    monkeypatch.setattr(dh, "MAX_PASSES", 10)
    r = np.random.default_rng(0)
    raw = (50 + r.normal(0, 5, (40, 16, 16))).astype(np.float32)
    p = DenoiseParams(train_seconds=60, patch_size=16, batch_size=4, device="cpu", seed=0)
    model = drain(dn.train(raw, p))
    # 40 frames, window 11: 30 targets, 4 held out; 10 passes of 26 x 16 x 16 pixels
    # in crops of 16 x 16, 4 a step
    assert dh.step_cap(26, (16, 16), 4, 16) == 65
    assert model.info["steps"] == 65 and model.info["train_seconds"] < 30
    assert model.info["pass_cap"] == {"passes": 10, "steps": 65}
    line = get("denoise").training_summary(model.info)
    assert "training ended after 10 passes over the movie's frames (65 steps" in line
    # a run of set epochs is not capped
    capped = dh.step_cap(26, (16, 16), 4, 16)
    by_epochs = drain(dn.train(raw, dataclasses.replace(p, epochs=30, train_seconds=None)))
    assert by_epochs.info["steps"] > capped and "pass_cap" not in by_epochs.info
