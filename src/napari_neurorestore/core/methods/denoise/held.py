"""Held-out frames: what decides the denoiser's checkpoint and its output.

A few frames of the longest training segment are never a training target
(:func:`held_out`). The network never sees a frame it predicts, so its blind error on a
held-out frame, ``|x_t - f_t|^2``, is its error against the clean frame plus the frame's
noise variance, without the optimism of a frame it was trained to predict (on a short
movie, long training learns the target frames' noise: thunder_first100, 60 s 0.90x the
tuned Gaussian's excess error, 300 s 1.14x). Two choices are made on them:

* the checkpoint (:class:`Checkpoints`): the weights with the lowest held-out blind
  error over training are kept where they beat the last weights by more than the noise of
  the comparison, so a longer budget can gain but should not lose;
* the output (:func:`fit_weight`): the network's prediction ``f`` is blended with the
  blind Gaussian filter of the neighbours ``g`` tuned by the self-check,
  ``f + a (g - f)``, with ``a`` in [0, 1] fitted by least squares on the held-out frames
  (both are blind to frame t, so this minimises the error against the clean frame). On a
  recording where the network is no better than the Gaussian, ``a`` is 1: the output is
  the Gaussian (followed by the same correction steps, fitted on it).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn.functional import pixel_unshuffle

from ...params import pass_cap_steps
from .frames import neighbour_index, predict_windows
from .post import blind_gaussian

#: share of a segment's target frames held out, and their bounds (frames; pixels in all)
HELD_SHARE = 0.1
HELD_MIN, HELD_MAX, HELD_PIXELS = 4, 8, 2**19
#: fewer target frames than this: nothing is held out (no checkpoint choice, no blend)
MIN_TARGETS = 24
#: a fitted weight this close to 0 or 1 is taken as 0 or 1 (the network or the Gaussian)
SNAP = 0.02
#: checkpoints: the first evaluation after this share of training, then this many more
FIRST_CHECK, CHECKS = 0.1, 10
#: an earlier checkpoint is kept over the last weights only when its held-out error is
#: lower by more than this many standard errors of the difference (else: noise)
MARGIN = 2.0
#: training that a time budget ends stops after this many passes over the training
#: targets' pixels at most (:func:`step_cap`): on a short movie a longer training fits the
#: noise of its few frames, and the held-out frames are too few to see it (allen_movie,
#: 50 frames of 100 x 100, fixed steps: 0.85 of the tuned Gaussian's excess error after 68
#: passes, 0.82 after 136, 0.84 after 232, 0.85 after 410, 0.99 after 956; thunder_first100,
#: 50 of 64 x 64: 0.79 after 143, 0.85 after 434 and 0.81 after 1300 with an early
#: checkpoint kept). A 600 x 128 x 128 movie makes about 16 passes in 60 s.
MAX_PASSES = 150
#: a time budget longer than this is cycles of the learning rate (warm restarts), the first
#: this long (s, the default budget) and each next twice the last, the last cut at the end
CYCLE_SECONDS = 60.0


def restarts(seconds: float | None) -> list[float] | None:
    """The ends of the learning rate's cycles (fractions of a budget of ``seconds``; see
    CYCLE_SECONDS) for :func:`~napari_neurorestore.core.train.fit`; None for one cycle.
    With the best of the cycles' ends kept (:class:`Checkpoints`), a longer budget starts
    with what the default one does, and can only add to it."""
    if seconds is None or seconds <= CYCLE_SECONDS * 1.5:
        return None
    ends, length = [CYCLE_SECONDS], 2 * CYCLE_SECONDS
    while ends[-1] + length < seconds - 0.5 * length:
        ends.append(ends[-1] + length)
        length *= 2
    return [e / seconds for e in ends] + [1.0]


def step_cap(n_targets: int, frame_shape, batch_size: int, patch_size: int) -> int:
    """The most optimisation steps of a run that its time budget ends: MAX_PASSES passes
    over the pixels of ``n_targets`` target frames of ``frame_shape``, batches of
    ``batch_size`` crops of ``patch_size`` (at most the frame)."""
    h, w = (int(s) for s in frame_shape[-2:])
    return pass_cap_steps(MAX_PASSES, max(1, n_targets) * h * w,
                          batch_size * min(patch_size, h) * min(patch_size, w))


def schedule(seconds: float | None) -> np.ndarray:
    """The checkpoints' evaluation points (fractions of the budget): CHECKS + 1 from
    FIRST_CHECK of it; with a budget of several cycles (:func:`restarts`) also those of the
    first cycle, which are a default run's, so that a longer budget evaluates every
    checkpoint the default one does (on a 50-frame movie the best came 6 s into 60)."""
    base = FIRST_CHECK + (1 - FIRST_CHECK) * np.arange(CHECKS + 1) / CHECKS
    if restarts(seconds) is None:
        return base
    return np.unique(np.concatenate([base, base * CYCLE_SECONDS / seconds]))


def held_out(n: int, k: int, frame_shape) -> np.ndarray:
    """The held-out frames of a segment of ``n`` frames (window half-width ``k``): evenly
    spread target frames, about HELD_SHARE of them within HELD_MIN..HELD_MAX and
    HELD_PIXELS; empty when the segment has fewer than MIN_TARGETS targets."""
    targets = n - 2 * k
    if targets < MIN_TARGETS:
        return np.zeros(0, int)
    by_pixels = HELD_PIXELS // max(1, int(frame_shape[0]) * int(frame_shape[1]))
    m = int(min(HELD_MAX, max(HELD_MIN, round(HELD_SHARE * targets)), max(1, by_pixels)))
    # not the segment's first/last frames: their windows are mirrored
    return np.unique(np.linspace(k + 1, n - 2 - k, m + 2).round().astype(int)[1:-1])


def predictions(net, seg: np.ndarray, ts: np.ndarray, offsets: np.ndarray, device,
                members: int = 1) -> torch.Tensor:
    """The net's blind predictions (len(ts), 1, H, W) of normalised frames ``seg[ts]``."""
    was_training = net.training
    net.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(ts), 4):
            x = torch.from_numpy(seg[neighbour_index(ts[i:i + 4], offsets, len(seg))])
            out.append(predict_windows(net, pixel_unshuffle(x.to(device), 2), members).float().cpu())
    net.train(was_training)
    return torch.cat(out)


class Checkpoints:
    """The training loop's ``on_step``: evaluates the net's blind error on the held-out
    frames at the points of :func:`schedule` (by time when
    ``seconds`` is given, by steps otherwise) and keeps a copy of the best weights.
    :meth:`finish` evaluates the final weights and puts the best back into the net when it
    is better by more than MARGIN standard errors (on 4 held-out frames of a 50-frame
    movie a noisy choice of an earlier checkpoint cost allen_movie 0.82 -> 0.86 of the
    Gaussian's excess error at 2400 steps)."""

    def __init__(self, net, seg, ts, offsets, device, seconds: float | None, total_steps: int,
                 threads=None):
        self.net, self.seg, self.ts, self.offsets, self.device = net, seg, ts, offsets, device
        self.threads = threads  # the training's ThreadChooser: evaluate on its chosen count
        self.target = torch.from_numpy(seg[ts])[:, None]
        self.seconds, self.total = seconds, total_steps
        self.t0 = time.perf_counter()
        self.done = 0
        self.points = schedule(seconds)
        self.best: tuple[float, int, dict] | None = None
        self.scores: list[tuple[int, float]] = []

    def _due(self, step: int) -> bool:
        """Whether a new point of the schedule was passed (several at once count once)."""
        frac = step / max(1, self.total)  # by steps, or by time where that comes first
        if self.seconds is not None:
            frac = max(frac, (time.perf_counter() - self.t0) / self.seconds)
        passed = int(np.searchsorted(self.points, frac, side="right"))
        due = passed > self.done
        self.done = max(self.done, passed)
        return due

    def evaluate(self, step: int) -> float:
        before = torch.get_num_threads()
        if self.threads is not None:  # not a count being tried (on a busy CPU, 2 threads
            torch.set_num_threads(self.threads.current)  # took 2.4 s where 1 took 0.05 s)
        try:
            pred = predictions(self.net, self.seg, self.ts, self.offsets, self.device)
        finally:
            torch.set_num_threads(before)
        err = (pred - self.target) ** 2
        mse = float(err.mean())
        self.scores.append((step, mse))
        if self.best is None or mse < self.best[0]:
            state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.best = (mse, step, state, err)
        self.last_err = err
        return mse

    def __call__(self, step: int) -> None:
        if len(self.ts) and self._due(step):
            self.evaluate(step)

    def cycle_end(self, step: int) -> None:
        """The training loop's ``on_cycle``: the weights at a learning-rate cycle's end."""
        if len(self.ts) and (not self.scores or self.scores[-1][0] != step):
            self.evaluate(step)

    def finish(self, steps: int) -> dict | None:
        """Evaluate the last weights, load the best; a summary for the model's info."""
        if not len(self.ts):
            return None
        if not self.scores or self.scores[-1][0] != steps:
            self.evaluate(steps)
        mse, step, state, err = self.best
        margin = MARGIN * standard_error(self.last_err - err)
        if self.scores[-1][1] - mse > margin:  # clearly better than the last weights
            self.net.load_state_dict(state)
        else:  # within the comparison's noise: the last (most trained, annealed) weights
            mse, step = self.scores[-1][1], self.scores[-1][0]
        return {"held_out_frames": int(len(self.ts)), "best_step": int(step),
                "best_mse": mse, "last_mse": self.scores[-1][1], "margin": margin,
                "evaluated": [[int(s), float(v)] for s, v in self.scores]}


def standard_error(d: torch.Tensor, block: int = 8) -> float:
    """Standard error of the mean of per-pixel differences ``d`` (n, 1, H, W): the larger
    of those from the spread of the means of block x block tiles (neighbouring pixels'
    errors are correlated: a per-pixel count would understate it) and of the frames' means
    (a transient in one frame moves all its pixels)."""
    h, w = d.shape[-2:]
    b = min(block, h, w)
    out = 0.0
    for means in (torch.nn.functional.avg_pool2d(d.double(), b).flatten(),
                  d.double().mean((1, 2, 3))):
        if len(means) > 1:
            out = max(out, float(means.std() / len(means) ** 0.5))
    return out


def fit_weight(x: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> float:
    """The weight ``a`` in [0, 1] minimising ``|x - f - a (g - f)|^2`` (snapped to 0 or 1
    within SNAP)."""
    d = (g - f).double()
    den = float((d * d).sum())
    a = float(((x - f).double() * d).sum()) / den if den > 0 else 0.0
    a = min(1.0, max(0.0, a))
    return 0.0 if a < SNAP else 1.0 if a > 1 - SNAP else a


def choose(net, seg: np.ndarray, held: np.ndarray, offsets, device, members: int,
           sigma_t: float, sigma_xy: float, register=None) -> dict:
    """Fit the blend weight on the held-out frames ``held`` of ``seg`` (``register``, when
    given, moves the net's predictions onto their frames as inference does). Returns the
    blend spec (``sigma_t``, ``sigma_xy``, ``weight``) and the held-out blind errors."""
    f = predictions(net, seg, held, offsets, device, members)
    x = torch.from_numpy(seg[held])[:, None]
    if register is not None:
        f = register(x[:, 0], f[:, 0])[0][:, None]
    g = blind_gaussian(torch.from_numpy(np.ascontiguousarray(seg)), held, 0, len(seg),
                       sigma_t, sigma_xy)
    a = fit_weight(x, f, g)
    d = seg[held] - 0.5 * (seg[held - 1] + seg[held + 1])
    return {"sigma_t": float(sigma_t), "sigma_xy": float(sigma_xy), "weight": a,
            "held_out_frames": int(len(held)),
            "held_net_mse": float(((x - f) ** 2).mean()),
            "held_gauss_mse": float(((x - g) ** 2).mean()),
            "held_blend_mse": float(((x - f - a * (g - f)) ** 2).mean()),
            "held_noise_var": float(d.var() / 1.5)}


def output_kind(weight: float) -> str:
    """"network", "gaussian" or "blend" for a blend weight."""
    return "network" if weight <= 0 else "gaussian" if weight >= 1 else "blend"


def blend_step(spec, dev):
    """The function ``(f, block, ts, first, n_total) -> f + a (g - f)`` of a model's blend
    on (B, 1, H, W) predictions (``f`` may be None where ``a`` is 1) (``block``: normalised frames ``first:`` holding
    :func:`.post.gauss_halo` frames each side of ``ts``); None without one (weight 0)."""
    if not spec or float(spec.get("weight", 0)) <= 0:
        return None
    a, st, sxy = float(spec["weight"]), float(spec["sigma_t"]), float(spec["sigma_xy"])

    def step(f, block, ts, first, n_total):
        g = blind_gaussian(block, ts, first, n_total, st, sxy).to(dev)
        return g if a >= 1 else f + a * (g - f)

    return step
