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


# ----------------------------------------------------------------------------- neuron volume
def _gaussian_blur_fft(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (numpy FFT) with a zero border: pads 4 sigma, blurs, crops."""
    if sigma <= 0:
        return x
    pad = int(np.ceil(4 * sigma)) + 1
    xp = np.pad(x, pad)
    f = np.fft.rfftn(xp)
    for ax, n in enumerate(xp.shape):
        k = np.fft.rfftfreq(n) if ax == xp.ndim - 1 else np.fft.fftfreq(n)
        g = np.exp(-2 * (np.pi * sigma * k) ** 2)
        shape = [1] * xp.ndim
        shape[ax] = len(k)
        f *= g.reshape(shape)
    out = np.fft.irfftn(f, s=xp.shape)
    return out[tuple(slice(pad, pad + n) for n in x.shape)]


def _splat(grid: np.ndarray, pts: np.ndarray, w: np.ndarray) -> None:
    """Add weights ``w`` at sub-pixel points ``pts`` (n, ndim) with linear interpolation."""
    nd = grid.ndim
    base = np.floor(pts).astype(np.int64)
    frac = pts - base
    for corner in range(2**nd):
        offs = np.array([(corner >> k) & 1 for k in range(nd)])
        idx = base + offs
        wt = w * np.prod(np.where(offs == 1, frac, 1 - frac), axis=1)
        ok = np.all((idx >= 0) & (idx < np.array(grid.shape)), axis=1)
        np.add.at(grid, tuple(idx[ok].T), wt[ok])


def simulate_neuron_volume(
    shape: tuple[int, ...] = (64, 192, 192),
    n_somata: int | None = None,
    n_neurites: int | None = None,
    seed: int = 0,
    soma_radius: tuple[float, float] = (4.0, 8.0),
    neurite_sigma: tuple[float, float] = (0.6, 1.5),
    psf_sigma: float = 0.7,
    background: float = 0.04,
) -> np.ndarray:
    """A clean fluorescence volume of neurons: soft ellipsoidal somata (darker nucleus),
    dendrites growing from them and thin axon-like fibres crossing the field, all smooth
    random curves of Gaussian cross-section, over a dim smooth background, blurred by a
    Gaussian PSF of ``psf_sigma`` pixels. ``shape`` is (z, y, x) or (y, x) (a 2D image of
    the same kind of structures). Returns float32 in about [0, 1.3] (somata ~1).

    ``n_somata`` defaults to one per 80,000 voxels (per 2,500 pixels in 2D);
    ``n_neurites`` (free fibres) defaults to twice that. Each soma grows 3-5 dendrites.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if nd not in (2, 3):
        raise ValueError(f"shape must be (z, y, x) or (y, x), got {shape}")
    size = np.array(shape, float)
    n_vox = float(np.prod(size))
    if n_somata is None:
        n_somata = max(1, int(round(n_vox / (80000.0 if nd == 3 else 2500.0))))
    if n_neurites is None:
        n_neurites = 2 * n_somata
    vol = np.zeros(shape, np.float64)
    grids: dict[int, np.ndarray] = {}
    sig_bins = np.linspace(neurite_sigma[0], neurite_sigma[1], 4)

    def grow(start, direction, length, amp):
        sig_i = int(rng.integers(0, len(sig_bins)))
        sig = sig_bins[sig_i]
        step = 0.5
        n = max(2, int(length / step))
        pts = np.empty((n, nd))
        p = np.array(start, float)
        d = np.array(direction, float)
        d /= np.linalg.norm(d) + 1e-12
        for i in range(n):
            d = d + rng.normal(0, 0.12, nd)
            d /= np.linalg.norm(d) + 1e-12
            p = p + step * d
            pts[i] = p
        taper = np.linspace(1.0, 0.6, n)
        # a tube of Gaussian cross-section sigma and peak `amp`: line density amp * area
        dens = amp * ((2 * np.pi * sig**2) if nd == 3 else (np.sqrt(2 * np.pi) * sig))
        g = grids.setdefault(sig_i, np.zeros(shape, np.float64))
        _splat(g, pts, dens * step * taper)

    centres = []
    for _ in range(n_somata * 30):
        if len(centres) == n_somata:
            break
        r = rng.uniform(*soma_radius)
        c = rng.uniform(0, 1, nd) * size
        if any(np.linalg.norm(c - c2) < r + r2 + 2 for c2, r2 in centres):
            continue
        centres.append((c, r))
    for c, r in centres:
        axes_r = r * rng.uniform(0.8, 1.25, nd)
        lo = np.maximum(0, np.floor(c - axes_r - 3)).astype(int)
        hi = np.minimum(size, np.ceil(c + axes_r + 3)).astype(int)
        if np.any(hi <= lo):
            continue
        grid = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij")
        d = np.sqrt(sum(((g - ci) / ai) ** 2 for g, ci, ai in zip(grid, c, axes_r, strict=True)))
        fp = 1.0 / (1.0 + np.exp(np.clip((d - 1.0) * r / 0.7, -50, 50)))
        fp *= 1.0 - 0.35 * np.exp(-(d**2) / (2 * 0.35**2))
        region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        vol[region] += rng.uniform(0.75, 1.15) * fp
        for _ in range(int(rng.integers(3, 6))):
            d0 = rng.normal(size=nd)
            d0 /= np.linalg.norm(d0)
            grow(c + d0 * r * 0.9, d0, rng.uniform(20, 70), rng.uniform(0.4, 0.9))
    for _ in range(n_neurites):
        start = rng.uniform(0, 1, nd) * size
        grow(start, rng.normal(size=nd), rng.uniform(0.5, 1.5) * size.max(), rng.uniform(0.25, 0.8))
    for sig_i, g in grids.items():
        vol += _gaussian_blur_fft(g, sig_bins[sig_i])
    field = _gaussian_blur_fft(rng.normal(size=shape), 0.08 * size.max())
    field = (field - field.min()) / (np.ptp(field) + 1e-12)
    vol += background * (0.5 + field)
    vol = _gaussian_blur_fft(vol, psf_sigma)
    return np.clip(vol, 0, None).astype(np.float32)


# ----------------------------------------------------------------------------- beads, axial degradation
def _gaussian_taps(offsets: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian weights at (possibly fractional) ``offsets`` (last axis)."""
    if sigma <= 0:
        w = (np.abs(offsets) < 0.5).astype(np.float64)
    else:
        w = np.exp(-0.5 * (offsets / sigma) ** 2)
    return w / w.sum(axis=-1, keepdims=True)


def gaussian_blur_axis(vol: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Separable Gaussian blur of ``vol`` along ``axis`` (mirror boundary), float32."""
    vol = np.asarray(vol, np.float32)
    if sigma <= 0:
        return vol.copy()
    r = int(np.ceil(4 * sigma))
    w = _gaussian_taps(np.arange(-r, r + 1, dtype=np.float64), sigma).astype(np.float32)
    v = np.moveaxis(vol, axis, 0)
    n = v.shape[0]
    idx = np.arange(-r, n + r)
    idx = np.abs(idx)
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx).clip(0, n - 1)
    p = v[idx]
    out = np.zeros_like(v)
    for k in range(2 * r + 1):
        out += w[k] * p[k:k + n]
    return np.moveaxis(out, 0, axis)


def gaussian_blur(vol: np.ndarray, sigma) -> np.ndarray:
    """Separable Gaussian blur with one sigma per axis (a scalar applies to every axis)."""
    sig = np.broadcast_to(np.asarray(sigma, float), (np.ndim(vol),))
    out = np.asarray(vol, np.float32)
    for ax, s in enumerate(sig):
        out = gaussian_blur_axis(out, float(s), ax)
    return out


def simulate_beads(
    shape: tuple[int, int, int] = (48, 96, 96),
    n_beads: int = 40,
    sigma: float = 1.0,
    background: float = 0.01,
    min_distance: float = 10.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-resolution beads imaged with an isotropic Gaussian PSF of ``sigma`` voxels.

    Returns (volume (z, y, x) float32 with bead peaks of about 1, centres (n, 3) in voxels);
    beads keep ``min_distance`` from each other and from the borders.
    """
    rng = np.random.default_rng(seed)
    margin = max(3 * sigma, 6.0)
    centres: list[np.ndarray] = []
    for _ in range(n_beads * 50):
        if len(centres) == n_beads:
            break
        c = np.array([rng.uniform(margin, s - 1 - margin) for s in shape])
        if all(np.linalg.norm(c - o) >= min_distance for o in centres):
            centres.append(c)
    vol = np.zeros(shape, np.float32)
    r = int(np.ceil(4 * sigma))
    for c in centres:
        lo = np.maximum(np.floor(c).astype(int) - r, 0)
        hi = np.minimum(np.floor(c).astype(int) + r + 2, shape)
        g = [np.exp(-0.5 * ((np.arange(a, b) - cc) / sigma) ** 2) for a, b, cc in zip(lo, hi, c, strict=True)]
        vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] += (
            g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :]).astype(np.float32)
    return (background + vol).astype(np.float32), np.array(centres).reshape(-1, 3)


@dataclass
class AxiallyDegraded:
    raw: np.ndarray  # (n, y, x) float32: the acquired slices (photon counts when noisy)
    truth: np.ndarray  # (round((n - 1) R) + 1, y, x) float32: isotropic truth, same units
    ratio: float  # R, the z / xy pixel-size ratio
    sigma_z: float  # extra axial Gaussian blur, in lateral (fine) voxels
    positions: np.ndarray  # (n,) fine-grid z positions of the acquired slices


def degrade_axial(volume: np.ndarray, sigma_z: float, ratio: float,
                  photons: float | None = 200.0, seed: int = 0) -> AxiallyDegraded:
    """Simulate an anisotropic acquisition of an isotropic ``volume`` (z, y, x).

    The volume is blurred along z by a Gaussian of ``sigma_z`` fine voxels, sampled at
    z = 0, R, 2R, ... (fractional positions for non-integer ``ratio`` R are evaluated
    exactly with a shifted Gaussian kernel; mirror boundary) and, unless ``photons`` is
    None, Poisson noise is added with ``photons`` expected photons per unit of intensity.
    ``truth`` is the volume on the isotropic output grid of the acquisition (fine slices
    0 .. round((n - 1) R)), in the same units as ``raw``.
    """
    vol = np.asarray(volume, np.float32)
    nz = vol.shape[0]
    ratio = float(ratio)
    n = int(np.floor((nz - 1) / ratio + 1e-9)) + 1
    pos = np.arange(n) * ratio
    r = int(np.ceil(4 * max(sigma_z, 0.5))) + 1
    raw = np.empty((n, *vol.shape[1:]), np.float32)
    for j, s in enumerate(pos):
        i = np.arange(int(np.floor(s)) - r, int(np.floor(s)) + r + 2)
        w = _gaussian_taps(s - i.astype(np.float64), sigma_z) if sigma_z > 0 else None
        ii = np.abs(i)
        ii = np.where(ii >= nz, 2 * (nz - 1) - ii, ii).clip(0, nz - 1)
        if w is None:  # no blur: linear interpolation at s
            f = s - np.floor(s)
            a = int(np.floor(s))
            raw[j] = (1 - f) * vol[a] + (f * vol[min(a + 1, nz - 1)] if f > 0 else 0)
        else:
            raw[j] = np.tensordot(w.astype(np.float32), vol[ii], axes=1)
    n_out = int(round((n - 1) * ratio)) + 1
    truth = vol[:n_out].copy()
    scale = 1.0 if photons is None else float(photons)
    if photons is not None:
        rng = np.random.default_rng(seed)
        raw = rng.poisson(np.clip(raw, 0, None) * scale).astype(np.float32)
    return AxiallyDegraded(raw, truth * scale, ratio, float(sigma_z), pos)
