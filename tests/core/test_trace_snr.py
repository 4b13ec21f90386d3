"""The traces' SNR (ΔF/F peak over the baseline noise std, dB) rises when the noise falls;
the contrast (ROI mean over its annulus's) is a property of the scene."""

import numpy as np
import pytest

from napari_neurorestore.core import traces as tr
from napari_neurorestore.core.traces.fidelity import trace_snr_db


def test_trace_snr_of_known_peak_and_noise():
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    clean = sum(np.where(t >= o, np.exp(-(t - o) / 20.0), 0.0) for o in range(100, 4000, 400))
    noisy = clean + rng.normal(0, 0.05, t.size)
    # peak ~1 over noise 0.05: 20 log10(20) = 26 dB (the percentile peak adds a little)
    assert 24 < trace_snr_db(noisy) < 30
    less = clean + rng.normal(0, 0.01, t.size)
    assert trace_snr_db(less) == pytest.approx(trace_snr_db(noisy) + 20 * np.log10(5), abs=2)
    assert np.isnan(trace_snr_db(np.zeros(100)))
    assert np.isnan(trace_snr_db(np.array([1.0, np.nan])))


def test_snr_rises_for_a_denoised_trace_and_contrast_does_not_change_much():
    from scipy.ndimage import gaussian_filter1d

    from napari_neurorestore.core.simulate import simulate_calcium_movie

    sim = simulate_calcium_movie(n_frames=300, shape=(48, 48), n_cells=6, seed=1)
    denoised = gaussian_filter1d(sim.raw.astype(np.float64), 1.5, axis=0)
    res = tr.compute_traces(sim.raw, sim.labels, {"denoised": denoised})
    rows = res.fidelity()
    by = {(r["roi"], r["role"]): r for r in rows}
    rois = sorted({r["roi"] for r in rows})
    gains = [by[(i, "compare")]["snr_db"] - by[(i, "reference")]["snr_db"] for i in rois]
    assert np.nanmin(gains) > 3.0, gains  # the denoised traces' SNR is higher, every ROI
    for i in rois:
        assert by[(i, "compare")]["contrast_db"] == pytest.approx(
            by[(i, "reference")]["contrast_db"], abs=0.2)
    from napari_neurorestore.core.traces.tables import FIDELITY_COLUMNS, format_fidelity

    assert {"snr_db", "contrast_db"} <= set(FIDELITY_COLUMNS)
    assert "contrast_db" in format_fidelity(rows).splitlines()[0]
