"""Peer denoisers for ``bench_denoise.py``, each run in its own interpreter.

The benchmark runs in the project's environment and never imports a peer: it writes the
movie to an .npy, runs this file with the peer's Python (a separate virtual environment,
see benchmarks/README.md) and reads back the restored movie (.npy) and a JSON of timings.

    PEER_PYTHON benchmarks/_peers.py careamics IN.npy OUT.npy INFO.json --seconds 60
                [--seed 0] [--fps-frames 16]

Peers:
  careamics  CAREamics Noise2Void, 2D U-Net on 64x64 patches drawn from every frame
             (axes SYX: each frame is an independent sample), trained until the wall-time
             budget (a Lightning callback stops at the deadline), then the whole movie is
             predicted. Returns float32 in the input's units (CAREamics denormalizes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: the venv with the peers installed (benchmarks/README.md); --peer-python overrides it
DEFAULT_PEER_PYTHON = "/work/venv-bench/bin/python"
PEERS = ("careamics", "deepcad")
#: why a peer is not run (printed by the benchmark instead of its numbers)
NOT_RUN = {
    "deepcad": "the PyPI package 'deepcad' 1.3.0 is an sdist without any module (only "
               "setup.py and README); DeepCAD-RT's code from its repository has not been "
               "made to run on a CPU here",
}


# ---------------------------------------------------------------- benchmark side

def peer_python(arg: str | None) -> tuple[str | None, str]:
    """The interpreter to run peers with, or None and the reason it cannot be used."""
    path = arg or DEFAULT_PEER_PYTHON
    if not os.path.exists(path):
        how = "--peer-python" if arg else f"the default {DEFAULT_PEER_PYTHON}"
        return None, f"{how} does not exist (install it: benchmarks/README.md)"
    return path, ""


def run_peer(name: str, movie: np.ndarray, seconds: float, python: str, seed: int = 0,
             fps_frames: int = 0, timeout: float | None = None):
    """Run peer ``name`` on ``movie`` in a subprocess of ``python``: (restored, info)."""
    with tempfile.TemporaryDirectory(prefix="peer_") as tmp:
        src, out, info = (os.path.join(tmp, f) for f in ("in.npy", "out.npy", "info.json"))
        np.save(src, np.ascontiguousarray(movie))
        cmd = [python, os.path.abspath(__file__), name, src, out, info, "--seconds",
               str(seconds), "--seed", str(seed), "--fps-frames", str(fps_frames)]
        # generous: setup, the budget, prediction and the optional 512x512 timing
        timeout = timeout or 300 + 3 * seconds + 10 * fps_frames
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        if p.returncode != 0:
            tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"peer {name} exited {p.returncode}:\n{tail}")
        with open(info) as f:
            return np.load(out), json.load(f)


# ---------------------------------------------------------------- peer side

def _torchvision_without_ops() -> None:
    """Let ``import torchvision`` work when its compiled ops cannot load.

    CAREamics imports torchvision (for LVAE transforms and the BioImage Model Zoo env
    text; N2V does not use it). The torchvision wheel on PyPI is built against CUDA torch
    and its ``_C`` extension does not load next to a CPU-only torch; torchvision then
    still registers fake kernels for ``nms``/``qnms`` unconditionally, which fails on
    the missing operators. Defining the two schemas (never called) lets it import.
    """
    import torch

    try:
        import torchvision  # noqa: F401
        return
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for m in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[m]
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    globals()["_TV_LIB"] = lib  # keep the library (and its definitions) alive


def _pad_to(movie: np.ndarray, mult: int) -> np.ndarray:
    py, px = (-movie.shape[1]) % mult, (-movie.shape[2]) % mult
    return np.pad(movie, ((0, 0), (0, py), (0, px)), mode="reflect") if py or px else movie


def careamics_n2v(train_movie: np.ndarray, seconds: float, *, seed: int = 0,
                  patch: int = 64, batch_size: int = 16, fps_frames: int = 0):
    """Train CAREamics N2V on ``train_movie`` (t, y, x) for ``seconds`` of wall time
    (from the CAREamist's construction to the end of training) and restore the movie.

    Returns (restored float32 in the input's units, info with train_seconds, steps,
    epochs, infer_fps at the movie's frame size, and infer_fps_512 over ``fps_frames``
    frames of 512x512 when ``fps_frames`` > 0)."""
    _torchvision_without_ops()
    import careamics
    import torch
    from careamics import CAREamist
    from careamics.config.factories import create_advanced_n2v_config
    from lightning.pytorch.callbacks import Callback

    class Deadline(Callback):
        """Stop when the next step would end past the deadline."""

        def __init__(self, t0: float, seconds: float):
            self.end, self.steps, self.start = t0 + seconds, 0, t0

        def on_train_batch_start(self, trainer, *args):
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, *args):
            now = time.perf_counter()
            self.steps += 1
            if now + (now - self.start) > self.end:  # the next step would end too late
                trainer.should_stop = True

    movie = np.asarray(train_movie, np.float32)
    t, h, w = movie.shape
    p = min(patch, 1 << (min(h, w).bit_length() - 1))  # a power of two that fits the frame
    with tempfile.TemporaryDirectory(prefix="careamics_") as work:
        t0 = time.perf_counter()
        cfg = create_advanced_n2v_config(
            experiment_name="bench", data_type="array", axes="SYX", patch_size=[p, p],
            batch_size=batch_size, num_epochs=100_000, n_val_patches=8, num_workers=0,
            seed=seed + 1, logger="none")  # CAREamics wants a seed > 0
        stop = Deadline(t0, seconds)
        cm = CAREamist(cfg, work_dir=work, callbacks=[stop], enable_progress_bar=False)
        cm.train(train_data=movie)
        train_s = time.perf_counter() - t0
        ckpt = os.path.join(work, "final.ckpt")
        cm.trainer.save_checkpoint(ckpt)

        def predict(x):
            xp = _pad_to(x, 16)
            out, _ = cm.predict(xp, axes="SYX", batch_size=4, checkpoint=ckpt)
            out = np.concatenate([np.asarray(o, np.float32).reshape(-1, *xp.shape[1:])
                                  for o in out])
            return out[:, : x.shape[1], : x.shape[2]]

        t1 = time.perf_counter()
        restored = predict(movie)
        fps = t / (time.perf_counter() - t1)
        info = dict(peer=f"careamics {careamics.__version__} N2V 2D", train_seconds=train_s,
                    steps=stop.steps, epochs=cm.trainer.current_epoch, patch=p,
                    batch_size=batch_size, threads=torch.get_num_threads(), infer_fps=fps)
        if fps_frames > 0:
            big = np.random.default_rng(1).poisson(5.0, (fps_frames + 2, 512, 512))
            predict(big[:2].astype(np.float32))  # warm-up
            t2 = time.perf_counter()
            predict(big[2:].astype(np.float32))
            info["infer_fps_512"] = fps_frames / (time.perf_counter() - t2)
    return restored, info


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["careamics"])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("info")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps-frames", type=int, default=0)
    a = ap.parse_args()
    restored, info = careamics_n2v(np.load(a.input), a.seconds, seed=a.seed,
                                   fps_frames=a.fps_frames)
    np.save(a.output, restored.astype(np.float32))
    Path(a.info).write_text(json.dumps(info))


if __name__ == "__main__":
    main()
