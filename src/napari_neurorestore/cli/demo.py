"""``neurorestore demo``: denoise a simulated movie with ground truth and print figures."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="headless demo: denoise a simulated movie, print figures")
    p.add_argument("--frames", type=int, default=300, metavar="T",
                   help="frames of the simulated movie (default 300)")
    p.add_argument("--size", type=int, default=128, metavar="PX",
                   help="side of the simulated field of view in pixels (default 128)")
    p.add_argument("--train-seconds", type=float, default=30.0, metavar="S",
                   help="the denoiser's training time budget in seconds (default 30)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the simulation and of the training (default 0)")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    import numpy as np

    from ..api import denoise
    from ..core.metrics import psnr
    from ..core.simulate import simulate_calcium_movie
    from ..core.trust import assess
    from .common import ProgressBar

    sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size),
                                 seed=args.seed)
    print(f"simulated calcium movie {sim.raw.shape} uint16 with ground truth")
    bar = ProgressBar()
    out = denoise(sim.raw, train_seconds=args.train_seconds, epochs=1000, seed=args.seed,
                  progress=bar)
    bar.close()
    rng = float(np.ptp(sim.clean))
    print(f"PSNR raw      {psnr(sim.raw, sim.clean, rng):6.2f} dB")
    print(f"PSNR denoised {psnr(out, sim.clean, rng):6.2f} dB  (benchmarks/bench_denoise.py "
          "compares with a tuned Gaussian filter)")
    rep = assess(sim.raw, out, {"method": "denoise"}, rois=sim.labels)
    print(f"noise model: gain {rep.noise.gain:.3g} (true {sim.gain:g}), offset "
          f"{rep.noise.offset:.4g} (true {sim.offset:g})")
    print("trust checks (neurorestore report): "
          + (", ".join(rep.flags) if rep.flags else "no warnings"))
    return 0
