"""Sample data for File > Open Sample (simulated, generated on demand: no download)."""

from __future__ import annotations


def calcium_movie():
    """A noisy two-photon GCaMP movie (300 frames of 128x128, uint16, ~5 photons/soma pixel).

    Small enough to train the denoiser on in about a minute on a laptop CPU.
    """
    from .core.simulate import simulate_calcium_movie

    sim = simulate_calcium_movie(n_frames=300, shape=(128, 128), seed=1)
    meta = {"axes": "TYX",  # a movie: volume methods refuse it (as for a (t, y, x) file)
            "neurorestore_simulation": {"gain": sim.gain, "offset": sim.offset,
                                        "read_noise": sim.read_noise}}
    return [(sim.raw, {"name": "calcium movie (noisy)", "metadata": meta,
                       "contrast_limits": [float(sim.raw.min()), float(sim.raw.max())]}, "image")]
