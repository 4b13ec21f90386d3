"""Simulated data with ground truth, for tests, benchmarks and the sample data.

numpy only. The noise model is Poisson-Gaussian in camera units (ADU):
``raw = offset + gain * Poisson(photons) + Normal(0, read_noise)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SimulatedMovie:
    raw: np.ndarray  # (t, y, x) uint16, ADU
    clean: np.ndarray  # (t, y, x) float32, expected ADU (the ground truth)
    labels: np.ndarray  # (y, x) int32, soma masks (0 = background)
    traces: np.ndarray  # (n_cells, t) float32, true ΔF/F of each cell
    gain: float
    offset: float
    read_noise: float


def _transients(rng, n_cells, n_frames, rate, tau, amp):
    spikes = rng.random((n_cells, n_frames)) < rate
    heights = spikes * rng.uniform(0.5, 1.5, size=spikes.shape) * amp
    kernel_len = int(6 * tau)
    k = np.arange(kernel_len)
    kernel = (1 - np.exp(-k / 1.5)) * np.exp(-k / tau)  # GCaMP-like rise and decay
    kernel /= kernel.max()
    out = np.zeros((n_cells, n_frames), np.float64)
    for i in range(n_cells):
        out[i] = np.convolve(heights[i], kernel)[:n_frames]
    return out


def simulate_calcium_movie(
    n_frames: int = 600,
    shape: tuple[int, int] = (128, 128),
    n_cells: int = 30,
    baseline_photons: float = 4.5,
    background_photons: float = 1.0,
    spike_rate: float = 0.015,
    tau_frames: float = 15.0,
    dff_per_spike: float = 1.0,
    gain: float = 2.0,
    offset: float = 100.0,
    read_noise: float = 1.5,
    seed: int = 0,
) -> SimulatedMovie:
    """A GCaMP-like two-photon movie: soft-edged somata with transients over a dim,
    slowly fluctuating neuropil, with Poisson-Gaussian noise.

    With the defaults a soma pixel gets about 4-5 photons at rest and up to ~10 during
    transients.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    labels = np.zeros(shape, np.int32)
    footprints = []
    centres = []
    for _ in range(n_cells * 20):
        if len(footprints) == n_cells:
            break
        r = rng.uniform(4.0, 7.0)
        cy, cx = rng.uniform(r, ny - r), rng.uniform(r, nx - r)
        if any((cy - a) ** 2 + (cx - b) ** 2 < (r + s + 1) ** 2 for a, b, s in centres):
            continue
        centres.append((cy, cx, r))
        e = rng.uniform(0.8, 1.2)
        d = np.sqrt(((yy - cy) * e) ** 2 + ((xx - cx) / e) ** 2)
        fp = 1.0 / (1.0 + np.exp(np.clip((d - r) / 0.7, -50, 50)))  # soft disk
        fp *= 1.0 - 0.35 * np.exp(-(d**2) / (2 * (0.35 * r) ** 2))  # darker nucleus
        footprints.append(fp.astype(np.float32))
        labels[(d < r - 0.5) & (labels == 0)] = len(footprints)
    fps = np.stack(footprints)  # (n, y, x)
    traces = _transients(rng, len(footprints), n_frames, spike_rate, tau_frames, dff_per_spike)
    # neuropil: smooth spatial pattern with a slow temporal fluctuation and dim processes
    k = np.fft.fftfreq(ny)[:, None] ** 2 + np.fft.fftfreq(nx)[None, :] ** 2
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=shape)) * np.exp(-k / (2 * 0.03**2))))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    neuropil = background_photons * (0.6 + 0.8 * field).astype(np.float32)
    slow = 1.0 + 0.1 * np.sin(2 * np.pi * np.arange(n_frames) / max(n_frames / 2.0, 1.0))
    brightness = rng.uniform(0.7, 1.3, size=len(footprints))
    photons = np.empty((n_frames, ny, nx), np.float32)
    for t in range(n_frames):
        amp = baseline_photons * brightness * (1.0 + traces[:, t])
        photons[t] = np.tensordot(amp.astype(np.float32), fps, axes=1) + neuropil * slow[t]
    clean = (offset + gain * photons).astype(np.float32)
    noisy = offset + gain * rng.poisson(photons).astype(np.float32)
    noisy += rng.normal(0.0, read_noise, size=noisy.shape).astype(np.float32)
    raw = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
    return SimulatedMovie(raw, clean, labels, traces.astype(np.float32), gain, offset, read_noise)
