"""The denoiser's centre-frame correction and its truth-free self-check."""

import numpy as np

from napari_neurorestore.core.engine import restore
from napari_neurorestore.core.methods.denoise import centre as dc
from napari_neurorestore.core.methods.denoise import heavy as dn
from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
from napari_neurorestore.core.metrics import psnr
from napari_neurorestore.core.models import TrainedModel
from napari_neurorestore.core.progress import drain


def test_mean_power_is_parseval(rng):
    for w in (40, 41):
        x = rng.normal(size=(4, 30, w)).astype(np.float32)
        spec = (np.abs(np.fft.rfft2(x)) ** 2).mean(0)
        assert abs(dc._mean_power(spec, (30, w)) - (x**2).mean()) < 1e-4


def test_wiener_kernel_is_zero_for_pure_noise_and_passes_missed_signal(rng):
    t, n = 40, 48
    yy, xx = np.mgrid[0:n, 0:n]
    blob = np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / 30.0).astype(np.float32)
    amp = np.r_[np.zeros(t // 2), np.ones(t - t // 2)]  # a step: a predictor misses it
    clean = amp[:, None, None] * blob * 3
    frames = clean + rng.normal(0, 0.5, size=clean.shape).astype(np.float32)
    ts = np.arange(2, t - 2)
    perfect = dc.estimate(frames, ts, clean[ts], gaussian=False)
    # nothing to add back: held-out frames say the correction only adds noise
    assert perfect["kernel"] is None and perfect["check"]["correction_cv"] > 0
    assert not perfect["check"]["corrected"]
    blind = dc.estimate(frames, ts, np.zeros_like(clean[ts]), gaussian=False)
    assert blind["check"]["correction_cv"] < 0 and blind["check"]["corrected"]
    k = np.array(blind["kernel"])
    assert k.shape == (dc.KERNEL, dc.KERNEL) and k.sum() > 0.5  # passes the blob's band
    # the error left after the correction is below the noise, and finite
    assert 0 < blind["check"]["net_error"] < blind["check"]["noise_var"]


def test_correction_improves_and_self_check_is_reported(tiny_movie):
    raw, clean = tiny_movie.raw, tiny_movie.clean
    # the long-context step is left out here: on this tiny movie it leaves the correction
    # nothing to add (tests/core/test_denoise_context.py)
    res = drain(restore("denoise", raw, DenoiseParams(epochs=30, train_seconds=None, patch_size=32,
                                          batch_size=8, device="cpu", seed=0,
                                          long_context=False)))
    check = res.model.info["self_check"]
    assert np.isfinite(check["gain_db"]) and check["noise_var"] > 0
    assert "dB over the best Gaussian" in dc.format_check(check)
    assert np.array(res.model.norm["centre_kernel"]).shape == (dc.KERNEL, dc.KERNEL)
    norm = {k: v for k, v in res.model.norm.items() if k != "centre_kernel"}
    temporal = TrainedModel("denoise", res.model.params, res.model.state_dict, norm,
                            res.model.info)
    without = drain(dn.predict(raw, temporal))
    rng = float(np.ptp(clean))
    assert psnr(res.data, clean, rng) > psnr(without, clean, rng)  # the frame itself helps
    assert res.metadata["neurorestore"]["training"]["self_check"] == check
    off = drain(dn.train(raw[:30], DenoiseParams(epochs=1, train_seconds=None, patch_size=16,
                                                 device="cpu", centre_correction=False)))
    assert "centre_kernel" not in off.norm and "self_check" not in off.info


def test_held_out_error_of_a_gain_matches_the_truth(rng):
    """applied_error(h) = |1-h|^2 (P_r - P_n) + h^2 P_n is the error of f + h * (x - f)
    against the clean frames, from noisy frames and the noise spectrum alone."""
    t, n = 64, 48
    yy, xx = np.mgrid[0:n, 0:n]
    clean = np.stack([np.sin(yy / 3.0 + 0.3 * i) * np.cos(xx / 5.0) for i in range(t)]).astype(np.float32)
    x = clean + rng.normal(0, 0.7, size=clean.shape).astype(np.float32)
    f = np.zeros_like(clean)  # a blind predictor that misses everything
    ts = np.arange(1, t - 1)
    p_r = dc._periodogram(x[ts] - f[ts])
    p_n = dc._periodogram(x[ts] - clean[ts])  # the true noise spectrum
    kernel = dc.kernel_from_gain(dc.wiener_gain(p_r, p_n), (n, n))
    h = dc.kernel_response(kernel, (n, n))
    from scipy.ndimage import correlate

    out = np.stack([correlate(r, kernel, mode="wrap") for r in x[ts] - f[ts]])
    taper = np.outer(np.hanning(n), np.hanning(n))
    taper /= np.sqrt((taper**2).mean())
    truth = float((((out - clean[ts]) * taper) ** 2).mean())
    est = dc.applied_error(p_r, p_n, h, (n, n))
    assert abs(est - truth) < 0.1 * truth
    assert est < dc.applied_error(p_r, p_n, 0.0, (n, n))  # the correction helps here


def _trace_r(movie, labels, truth):
    from napari_neurorestore.core.traces import extract_traces, rois_from_labels

    f = extract_traces(movie, rois_from_labels(labels))
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(f, truth, strict=True)]))


def test_transient_step_follows_fast_transients():
    """At a low frame rate a transient rises within one frame: the temporal prediction and
    a stationary filter both flatten it; the transient step brings it back."""
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    sim = simulate_calcium_movie(n_frames=90, shape=(48, 48), n_cells=7, tau_frames=2.0,
                                 spike_rate=0.04, seed=4)
    res = drain(restore("denoise", sim.raw,
                        DenoiseParams(epochs=25, train_seconds=None, patch_size=32,
                                              batch_size=8, device="cpu", seed=0)))
    spec = res.model.norm["transient"]
    assert spec["sigma"] == dc.TRANSIENT_SIGMA and spec["threshold"] > 0
    norm = {k: v for k, v in res.model.norm.items() if k != "transient"}
    without = drain(dn.predict(sim.raw, TrainedModel("denoise", res.model.params,
                                                     res.model.state_dict, norm, res.model.info)))
    rng = float(np.ptp(sim.clean))
    truth = _roi_means(sim.clean, sim.labels)
    assert psnr(res.data, sim.clean, rng) > psnr(without, sim.clean, rng) + 0.3
    # ROI traces: about 0.89 -> 0.96 here (raw 0.966)
    assert _trace_r(res.data, sim.labels, truth) > _trace_r(without, sim.labels, truth) + 0.03


def _roi_means(movie, labels):
    from napari_neurorestore.core.traces import extract_traces, rois_from_labels

    return list(extract_traces(movie, rois_from_labels(labels)))


def test_frames_narrower_than_the_kernel_get_a_smaller_kernel():
    """A crop of 8 rows (narrower than the 11-px centre kernel) trains and restores with the
    centre correction on (it raised a broadcast error before): the kernel fits the frame."""
    from napari_neurorestore.core.methods.denoise import heavy as dn
    from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
    from napari_neurorestore.core.progress import drain

    rng = np.random.default_rng(0)
    clean = np.broadcast_to((np.sin(np.linspace(0, 3, 8))[:, None] * 50 + 100)[None],
                            (60, 8, 64))
    noisy = (clean + rng.normal(0, 10, clean.shape)).astype(np.float32)
    model = drain(dn.train(noisy, DenoiseParams(epochs=2, device="cpu", window=5,
                                                long_context=False)))
    kernel = model.norm.get("centre_kernel")
    if kernel is not None:
        assert max(np.shape(kernel)) <= 7
    out = drain(dn.predict(noisy, model))
    assert out.shape == noisy.shape
    assert ((out - clean) ** 2).mean() < 0.5 * ((noisy - clean) ** 2).mean()
