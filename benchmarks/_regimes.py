"""Simulated two-photon calcium movies over many acquisition regimes, for the denoiser's
benchmark. Written independently of ``core.simulate`` (which the unit tests and the demo
use) so that the benchmark does not score the denoiser on the generator it was built
against: other cell shapes (elliptic somata with a ring-shaped cytosol and dendrite
stubs), spike trains turned into GCaMP6f/6s-like double-exponential transients with
rise and decay times in seconds, a frame rate, sub-pixel motion jitter, and
Poisson-Gaussian noise that can be spatially correlated (as motion correction and the
detector's bandwidth make real two-photon noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: (rise, decay) time constants in seconds of a single action potential's transient
KINETICS = {"6f": (0.05, 0.40), "6s": (0.18, 1.40), "7f": (0.03, 0.30)}


@dataclass(frozen=True)
class Regime:
    name: str = "base"
    frames: int = 600
    size: int = 128
    hz: float = 30.0
    photons: float = 6.0         # photons per soma pixel at rest
    kinetics: str = "6f"
    rate_hz: float = 0.5         # mean firing rate of a cell (bursty)
    jitter_px: float = 0.0       # std of the per-frame rigid motion (pixels)
    noise_corr: float = 0.0      # lag-1 correlation of the noise along y and along x
    gain: float = 3.0
    offset: float = 60.0
    read_noise: float = 2.0
    seed: int = 0


@dataclass
class Movie:
    raw: np.ndarray     # (t, y, x) uint16
    clean: np.ndarray   # (t, y, x) float32, same units as raw (noise-free, offset included)
    labels: np.ndarray  # (y, x) int32 soma masks
    regime: Regime


def _correlated(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance Gaussian noise whose lag-1 correlation along y and x is ``rho``
    (separable 3-tap kernel [a, 1, a] with 2a / (1 + 2a^2) = rho)."""
    z = rng.standard_normal(shape).astype(np.float32)
    if rho <= 0:
        return z
    a = (1 - np.sqrt(1 - 2 * rho**2)) / (2 * rho)
    k = np.array([a, 1.0, a], np.float32) / np.sqrt(1 + 2 * a * a)
    for ax in (-1, -2):
        z = (k[0] * np.roll(z, 1, ax) + k[1] * z + k[2] * np.roll(z, -1, ax))
    return z


def _transients(rng, n_cells, n_frames, hz, kinetics, rate_hz):
    rise, decay = KINETICS[kinetics]
    t = np.arange(int(np.ceil(6 * decay * hz)) + 1) / hz
    kernel = (np.exp(-t / decay) - np.exp(-t / rise))
    kernel /= kernel.max()
    out = np.zeros((n_cells, n_frames), np.float32)
    for c in range(n_cells):
        # bursty: a slowly varying rate (log-normal), Poisson spikes per frame
        lam = rate_hz / hz * np.exp(rng.normal(0, 1.0) + np.convolve(
            rng.normal(0, 1.2, n_frames), np.ones(int(hz)) / int(hz), mode="same"))
        spikes = rng.poisson(np.clip(lam, 0, 2)).astype(np.float32)
        out[c] = 0.8 * np.convolve(spikes, kernel)[:n_frames]
    return out


def _shift(img: np.ndarray, dy: float, dx: float) -> np.ndarray:
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    ph = np.exp(-2j * np.pi * (fy * dy + fx * dx))
    return np.real(np.fft.ifft2(np.fft.fft2(img) * ph)).astype(np.float32)


def make_movie(r: Regime) -> Movie:
    rng = np.random.default_rng(1000 + r.seed)
    n = r.size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    n_cells = max(4, int(round(30 * (n / 128) ** 2)))
    fps, labels, centres = [], np.zeros((n, n), np.int32), []
    for _ in range(n_cells * 30):
        if len(fps) == n_cells:
            break
        rad = rng.uniform(3.5, 6.5)
        cy, cx = rng.uniform(rad, n - rad, size=2)
        if any(np.hypot(cy - a, cx - b) < rad + s + 2 for a, b, s in centres):
            continue
        centres.append((cy, cx, rad))
        th = rng.uniform(0, np.pi)
        ecc = rng.uniform(0.7, 1.0)
        u = (yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)
        v = (-(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)) / ecc
        d = np.hypot(u, v)
        ring = np.clip(1.3 - 0.7 * np.exp(-(d / (0.5 * rad)) ** 4), 0, None)
        fp = ring * np.exp(-np.clip(d - rad, 0, None) ** 2 / 0.8)
        for _ in range(rng.integers(1, 4)):  # dendrite stubs
            ang = rng.uniform(0, 2 * np.pi)
            along = (yy - cy) * np.sin(ang) + (xx - cx) * np.cos(ang)
            across = -(yy - cy) * np.cos(ang) + (xx - cx) * np.sin(ang)
            length = rng.uniform(2, 4) * rad
            fp += 0.5 * np.exp(-across**2 / 1.0) * ((along > 0) & (along < length)) * np.exp(-along / length)
        fps.append(fp.astype(np.float32))
        labels[(d < rad - 0.5) & (labels == 0)] = len(fps)
    fps = np.stack(fps)
    tr = _transients(rng, len(fps), r.frames, r.hz, r.kinetics, r.rate_hz)
    k = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None, :] ** 2
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * np.exp(-k / (2 * 0.05**2))))
    field = ((field - field.min()) / (np.ptp(field) + 1e-9)).astype(np.float32)
    bright = rng.uniform(0.6, 1.4, len(fps)).astype(np.float32)
    slow = 1 + 0.15 * np.sin(2 * np.pi * np.arange(r.frames) / max(r.frames / 1.5, 1) + rng.uniform(0, 6))
    photons = np.empty((r.frames, n, n), np.float32)
    jitter = rng.normal(0, r.jitter_px, size=(r.frames, 2)) if r.jitter_px > 0 else None
    for t in range(r.frames):
        img = np.tensordot(r.photons * bright * (1 + tr[:, t]), fps, axes=1)
        img += 0.25 * r.photons * (0.5 + field) * slow[t]
        if jitter is not None:
            img = np.clip(_shift(img, *jitter[t]), 0, None)
        photons[t] = img
    clean = (r.offset + r.gain * photons).astype(np.float32)
    shot = rng.poisson(photons).astype(np.float32) - photons
    if r.noise_corr > 0:  # correlate the shot noise's spatial pattern, keep its variance map
        shot = np.sqrt(photons) * _correlated(rng, photons.shape, r.noise_corr)
    noise = r.gain * shot + r.read_noise * _correlated(rng, photons.shape, r.noise_corr)
    raw = np.clip(np.rint(clean + noise), 0, 65535).astype(np.uint16)
    return Movie(raw, clean, labels, r)


def noise_lag1(movie: np.ndarray) -> tuple[float, float]:
    """Lag-1 correlation along y and x of frame-to-frame differences (the noise's own)."""
    d = np.diff(movie[: min(len(movie), 200)].astype(np.float32), axis=0)
    d -= d.mean()
    cy = float((d[:, 1:] * d[:, :-1]).mean() / d.var())
    cx = float((d[..., 1:] * d[..., :-1]).mean() / d.var())
    return cy, cx


#: the benchmark's regimes: each changes one thing from "base"
REGIMES = [
    Regime("base"),
    Regime("1 photon", photons=1.0),
    Regime("30 photons", photons=30.0),
    Regime("7.5 Hz", hz=7.5),
    Regime("60 Hz", hz=60.0),
    Regime("GCaMP6s", kinetics="6s"),
    Regime("jitter 0.5 px", jitter_px=0.5),
    Regime("corr 0.1", noise_corr=0.1),
    Regime("corr 0.3", noise_corr=0.3),
    Regime("corr 0.5", noise_corr=0.5),
    Regime("50 frames", frames=50),
    Regime("2000 frames", frames=2000),
    Regime("512x512", size=512, frames=200),
]
