"""The long-context step of the temporal denoiser: what a wide window knows that the
network's few frames do not.

The network sees ``window - 1`` neighbours of frame t, so the part of the scene that hardly
changes (cell bodies, neuropil texture, the mean image) is estimated from about ten noisy
frames. Blind means over wider windows, ``M_W(t) = mean(x_s, 0 < |s - t| <= W)`` (cut at
the movie's ends), estimate that part from tens of frames, and none of them sees frame t.
So a linear combination ``f + sum_j a_j (B_j - f)`` of the network's prediction ``f`` with
those means at several spatial scales (``B_j``: every W in WINDOWS at every pyramid level
in LEVELS, 2^l x 2^l means brought back bilinearly) is still blind to frame t's noise, and
because that noise is independent of all of them, the weights that minimise
``|x_t - combination|^2`` on the recording's own frames also minimise the error against
the clean frame. They are fitted by least squares on the check frames after training; the
step is kept only when the half of those frames left out of the fit says it helps. At
inference it is ``f (1 - sum a) + sum_l up^l(sum_W a_Wl pool^l(M_W))``: the windows are
mixed at each level, then the levels are summed coarse to fine.

Measured in benchmarks/bench_denoise.py (60 s of training): see the README's table.

The means need ``max(WINDOWS)`` frames on each side of a chunk (read with it). Live mode,
which restores frames as they arrive, cannot wait for them: it applies the *causal* step,
fitted the same way beside the full one and stored with it (``norm["context_causal"]``),
whose means reach back W frames but forward only ``future`` (the network's half-window,
frames live mode waits for anyway): ``M_W(t) = mean(x_s, t - W <= s <= t + min(W, future),
s != t)``. It is as blind to frame t as the full step. Offline runs keep the full step;
``predict(..., context="causal")`` applies the causal one (live mode's store, offline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.functional import avg_pool2d, interpolate

from .spec import CONTEXT_HALO
from .spec import select_context as select  # noqa: F401 -- heavy.predict's choice

#: half-widths (frames) of the blind temporal means; the widest is the spec's
#: CONTEXT_HALO (its memory model counts those frames)
WINDOWS = (5, 16, CONTEXT_HALO)
#: how far back the causal step's means reach (their future: the network's half-window).
#: A 128-frame mean makes up for the 59 future frames the 64-frame one loses, and the
#: chunk's halo is still 2 x CONTEXT_HALO frames (the memory model's). Held-out 600x256^2
#: simulation, net of 608 steps: full step 43.05 dB; causal (5, 16, 64) 42.54, (5, 16, 64,
#: 128) 42.69 (after the first 128 frames 42.85 against 43.07: the session's first frames
#: have few past frames)
CAUSAL_WINDOWS = (5, 16, CONTEXT_HALO, 2 * CONTEXT_HALO)
#: pyramid levels of each mean (0: as is; l: 2^l x 2^l means brought back bilinearly)
LEVELS = (0, 1, 2, 3)
#: ridge added to the normal equations, relative to their mean diagonal
RIDGE = 1e-6


def halo(spec: Any, after: bool = False) -> int:
    """Frames a chunk needs before it (``after``: after it) for a model's step (0 without
    one); a causal step needs only its ``future`` frames after."""
    if not spec:
        return 0
    wide = int(max(spec["windows"]))
    return min(wide, int(spec["future"])) if after and "future" in spec else wide


def prefix_sums(block: torch.Tensor) -> torch.Tensor:
    """(n, h, w) normalised frames -> (n + 1, h, w) running sums (float32; the frames are
    normalised, so a sum of a few hundred stays exact to about 1e-5). A loop of frame adds:
    torch's cumsum along the first axis was 10x slower here (0.13 s for 120 512x512 frames)."""
    s = torch.empty((block.shape[0] + 1, *block.shape[1:]), dtype=torch.float32)
    s[0].zero_()
    for i in range(block.shape[0]):
        torch.add(s[i], block[i], out=s[i + 1])
    return s


def window_bounds(ts, w: int, first: int, n_total: int, length: int, future: int | None = None):
    """Block indices ``a, b`` of the frames ``t - w .. t + min(w, future)`` (cut at the
    movie's ends; ``future`` None: ``w``) around movie frames ``ts`` (an array or one int),
    in a block of ``length`` frames that starts at movie frame ``first``; ValueError when
    the block does not hold them."""
    ahead = w if future is None else min(w, int(future))
    a = np.maximum(0, np.asarray(ts) - w) - first
    b = np.minimum(n_total, np.asarray(ts) + ahead + 1) - first
    if np.min(a) < 0 or np.max(b) > length:
        raise ValueError("the block does not hold the context window")
    return a, b


def blind_means(sums: torch.Tensor, block: torch.Tensor, ts: np.ndarray, first: int,
                n_total: int, windows, future: int | None = None) -> list[torch.Tensor]:
    """Blind means ``M_W`` of frames ``ts`` (movie indices) for every W (forward at most
    ``future`` frames: see :func:`window_bounds`): (len(ts), h, w) each. ``block`` holds movie frames ``first:first + len(block)`` (at least W beyond each
    of ``ts`` where the movie has them) and ``sums`` its :func:`prefix_sums`."""
    ts = np.asarray(ts)
    out = []
    for w in windows:
        a, b = window_bounds(ts, w, first, n_total, len(block), future)
        count = torch.from_numpy((b - a - 1).astype(np.float32))[:, None, None]
        out.append((sums[b] - sums[a] - block[ts - first]) / count)
    return out


def pool(frames: torch.Tensor) -> torch.Tensor:
    """(n, H, W) -> (n, ceil(H/2), ceil(W/2)): 2x2 means (four strided adds on even sizes,
    2x faster than avg_pool2d here)."""
    h, w = frames.shape[-2:]
    if h % 2 or w % 2:
        return avg_pool2d(frames[:, None], 2, ceil_mode=True)[:, 0]
    out = frames[:, 0::2, 0::2] + frames[:, 1::2, 0::2]
    return out.add_(frames[:, 0::2, 1::2]).add_(frames[:, 1::2, 1::2]).mul_(0.25)


def _up(x: torch.Tensor, size) -> torch.Tensor:
    """(B, 1, h, w) -> (B, 1, *size), bilinear."""
    return interpolate(x, size=tuple(int(v) for v in size), mode="bilinear", align_corners=False)


def level_sizes(size, levels: int) -> list[tuple[int, int]]:
    """Frame sizes of pyramid levels 0..levels (each the ceil half of the one before)."""
    sizes = [tuple(int(v) for v in size)]
    for _ in range(levels):
        sizes.append(tuple(-(-v // 2) for v in sizes[-1]))
    return sizes


def _up_chain(x: torch.Tensor, sizes, level: int) -> torch.Tensor:
    """A level-``level`` (B, 1, h, w) image brought back to level 0 one octave at a time."""
    for lv in range(level - 1, -1, -1):
        x = _up(x, sizes[lv])
    return x


def components(frames: torch.Tensor, ts: np.ndarray, first: int, n_total: int,
               windows, levels, future: int | None = None) -> list[torch.Tensor]:
    """``B_j`` of frames ``ts`` for every (W, level), in the order of ``weights[iw][il]``:
    (len(ts), H, W) each. Level 0: the blind mean itself; level l: its 2^l x 2^l means,
    brought back bilinearly one octave at a time (a blur of about 2^(l-1) px; what
    :class:`ContextStep` computes)."""
    full = blind_means(prefix_sums(frames), frames, ts, first, n_total, windows, future)
    sizes = level_sizes(frames.shape[-2:], max(levels))
    out = []
    for m in full:
        pyramid = [m]
        for _ in range(max(levels)):
            pyramid.append(pool(pyramid[-1]))
        out += [_up_chain(pyramid[lv][:, None], sizes, lv)[:, 0] for lv in levels]
    return out


def _solve(f: np.ndarray, x: np.ndarray, comps: list[np.ndarray]) -> np.ndarray:
    d = np.stack([(c - f).ravel() for c in comps], 1).astype(np.float64)
    r = (x - f).ravel().astype(np.float64)
    g = d.T @ d
    g += RIDGE * max(float(np.trace(g)) / len(g), 1e-12) * np.eye(len(g))
    return np.linalg.solve(g, d.T @ r)


def _combine(f: np.ndarray, comps: list[np.ndarray], a: np.ndarray) -> np.ndarray:
    out = f.astype(np.float64, copy=True)
    for ai, c in zip(a, comps, strict=True):
        out += ai * (c - f)
    return out


def fit(frames: np.ndarray, ts: np.ndarray, predicted: np.ndarray,
        windows=WINDOWS, levels=LEVELS, future: int | None = None
        ) -> tuple[dict | None, np.ndarray, float]:
    """Fit the step on normalised ``frames`` (the training segment) at its frames ``ts``,
    whose blind predictions are ``predicted``. Returns ``(spec or None, the prediction
    after the step (unchanged when None), held-out change of error)``: the change is the
    relative change of the blind error on the half of ``ts`` left out of the fit (weights
    fitted on the even-numbered check frames scored on the odd ones and back), and the
    step is kept only when it is negative. ``future``: the causal step (means forward at
    most ``future`` frames; the spec records it)."""
    if len(ts) < 2:
        return None, predicted, 0.0
    block = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    comps = [c.numpy() for c in components(block, ts, 0, len(frames), windows, levels, future)]
    x = frames[ts]
    before = after = 0.0
    for part in (np.arange(len(ts)) % 2 == 0, np.arange(len(ts)) % 2 == 1):
        a = _solve(predicted[part], x[part], [c[part] for c in comps])
        held = ~part
        before += float(((x[held] - predicted[held]) ** 2).sum())
        combined = _combine(predicted[held], [c[held] for c in comps], a)
        after += float(((x[held] - combined) ** 2).sum())
    change = after / max(before, 1e-30) - 1.0
    if not change < 0:
        return None, predicted, change
    a = _solve(predicted, x, comps)
    spec = {"windows": [int(w) for w in windows], "levels": [int(v) for v in levels],
            "weights": [[float(v) for v in row] for row in a.reshape(len(windows), len(levels))]}
    if future is not None:
        spec["future"] = int(future)
    return spec, _combine(predicted, comps, a).astype(np.float32), change


#: running sums are started again from zero after this many frames (float32's rounding
#: grows with the sum's length; over 512 frames kept sums differed from fresh ones by 8e-7)
REBASE = 2048


class _Running:
    """One plane's pyramid (levels 1 and up) and running sums at each level, kept in ring
    buffers of ``cap`` frames across consecutive blocks: a block that extends the last one
    only adds its new frames (frame g of level l sits at slot ``g % cap``, its running sum
    ``S_l[g]``, the sum of frames ``base .. g - 1``, at slot ``g % (cap + 1)``). Sums are
    only ever used as differences, so their common origin ``base`` does not matter."""

    def __init__(self, cap: int, sizes, levels, first: int, n_total: int):
        self.cap, self.sizes, self.levels, self.n_total = cap, sizes, levels, n_total
        self.base = self.start = self.end = first
        top = max(levels)
        self.frames = {lv: torch.empty((cap, *sizes[lv])) for lv in range(1, top + 1)}
        self.sums = {lv: torch.empty((cap + 1, *sizes[lv])) for lv in levels}
        for s in self.sums.values():
            s[first % (cap + 1)].zero_()

    def extends(self, first: int, n: int, n_total: int, size) -> bool:
        """Whether block ``first:first + n`` can continue this run (of a movie as long, or
        one that grew: live mode's)."""
        return (n_total >= self.n_total and tuple(size) == tuple(self.sizes[0]) and n <= self.cap
                and self.start <= first <= self.end <= first + n
                and first + n - self.base <= REBASE)

    def sum(self, lv: int, g: int) -> torch.Tensor:
        return self.sums[lv][g % (self.cap + 1)]

    def frame(self, lv: int, g: int) -> torch.Tensor:
        return self.frames[lv][g % self.cap]

    def extend(self, block: torch.Tensor, first: int) -> None:
        """Add the frames of ``block`` (movie frames ``first:``) beyond the run's end."""
        new = block[self.end - first:]
        g0, g1 = self.end, first + len(block)
        if not len(new):
            return
        level = new
        for lv in range(1, max(self.levels) + 1):
            level = pool(level)
            for j in range(len(level)):  # one copy per frame: the ring may wrap
                self.frame(lv, g0 + j).copy_(level[j])
        for lv in self.levels:
            for g in range(g0, g1):
                f = new[g - g0] if lv == 0 else self.frame(lv, g)
                torch.add(self.sum(lv, g), f, out=self.sum(lv, g + 1))
        self.end = g1
        self.start = max(self.base, g1 - self.cap)


class ContextStep:
    """A model's step at inference, on a chunk's normalised frames ``block`` (movie frames
    ``first:first + len(block)``, with :func:`halo` frames beyond the chunk where the movie
    has them): ``step(f, ts)`` returns ``f (1 - sum a) + sum_l up^l(sum_W a_Wl pool^l(M_W))``
    for the (B, 1, H, W) prediction ``f`` of frames ``ts``, the levels summed coarse to fine
    (one bilinear step per octave). :meth:`new_block` brings the block's pyramid and running
    sums up to date: when the block continues the last block of the same ``key`` (a plane),
    only its new frames are added (``capacity``: the longest block; ``runs``: how many keys
    are kept at once), otherwise they are made from the whole block."""

    def __init__(self, spec: dict, capacity: int = 0, runs: int = 1):
        self.windows = [int(w) for w in spec["windows"]]
        self.levels = [int(v) for v in spec["levels"]]
        self.a = np.asarray(spec["weights"], np.float64)  # (windows, levels)
        self.future = spec.get("future")  # None: the full step
        self.keep = float(1.0 - self.a.sum())
        self.capacity, self.max_runs = int(capacity), max(1, int(runs))
        self.runs: dict = {}

    def new_block(self, block: torch.Tensor, first: int, n_total: int, key: Any = None) -> None:
        self.first, self.n_total, self.block = first, n_total, block
        self.sizes = level_sizes(block.shape[-2:], max(self.levels))
        run = self.runs.get(key)
        if run is None or not run.extends(first, len(block), n_total, block.shape[-2:]):
            if key not in self.runs and len(self.runs) >= self.max_runs:
                self.runs.clear()
            run = _Running(max(len(block), self.capacity), self.sizes, self.levels, first,
                           n_total)
            self.runs[key] = run
        run.n_total = n_total
        run.extend(block, first)
        self.run = run

    def _mix(self, lv: int, ts: np.ndarray) -> torch.Tensor:
        """``sum_W a_Wl M_W`` at level ``lv`` for frames ``ts``: (B, 1, h, w). Frame by frame
        on views of the running sums (no gathered copies): ``M_W = (S_b - S_a - x) / n``."""
        run, j = self.run, self.levels.index(lv)
        out = torch.empty((len(ts), 1, *self.sizes[lv]), dtype=torch.float32)
        for k, t in enumerate(np.asarray(ts)):
            o = out[k, 0]
            total = 0.0
            for i, w in enumerate(self.windows):
                a, b = (int(v) + self.first for v in window_bounds(
                    int(t), w, self.first, self.n_total, len(self.block), self.future))
                c = float(self.a[i, j]) / (b - a - 1)
                if i == 0:
                    torch.mul(run.sum(lv, b), c, out=o)
                else:
                    o.add_(run.sum(lv, b), alpha=c)
                o.add_(run.sum(lv, a), alpha=-c)
                total += c
            x = self.block[int(t) - self.first] if lv == 0 else run.frame(lv, int(t))
            o.add_(x, alpha=-total)
        return out

    def __call__(self, f: torch.Tensor, ts: np.ndarray) -> torch.Tensor:
        acc = None
        for lv in range(max(self.levels), -1, -1):
            if acc is not None:
                acc = _up(acc, self.sizes[lv])
            if lv in self.levels:
                mix = self._mix(lv, ts)
                acc = mix if acc is None else acc.add_(mix)
        return f * self.keep + acc.to(f)


def context_step(spec: Any, capacity: int = 0, runs: int = 1) -> ContextStep | None:
    """A model's :class:`ContextStep` (see there for ``capacity`` and ``runs``); None
    without one."""
    return ContextStep(spec, capacity, runs) if spec else None
