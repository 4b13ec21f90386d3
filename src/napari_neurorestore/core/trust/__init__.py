"""Trust checks: did a restoration remove only noise, or also signal?

numpy only, for any pair (raw, restored), whether the restoration came from this plugin or
from another tool. The pieces:

* :mod:`.noise`: :func:`estimate_noise` fits the Poisson-Gaussian model
  ``var = gain * (mean - offset) + read_var`` of the raw data from the data itself
  (temporal second differences of a movie, spatial ones of a volume), and the noise's own
  lag-1 spatial correlation.
* :mod:`.forward`: :func:`to_input_grid` brings a restoration back onto the input's grid
  with the method's own forward model (keep every M-th row, bin, blur and sub-sample in z).
* :mod:`.assessment`: :func:`assess` computes the residual ``raw - forward(restored)`` on a
  sample of frames and checks it against the noise model: its variance (about 1 x the noise when exactly the
  noise was removed), its lag-1 autocorrelations, its correlation with the restored signal,
  a map of where it has structure, the intensity shift, and transient fidelity of ROI
  ΔF/F traces (:mod:`..traces.transients`; the given ROIs or the most active tiles).
* :mod:`.residuals`: the residual itself (:func:`residual`; :func:`lazy_residual` for a
  whole recording, with dask) and the structure map.
* :mod:`.checks`: the thresholds; each check has a value, a threshold and a status
  ``"pass"`` or ``"warn"``; warnings are collected in ``flags``.
* :mod:`.common`: small numpy helpers (box means, correlations, spectra).

The thresholds were calibrated on simulated Poisson-Gaussian movies (see
``benchmarks/bench_trust.py``, which prints every figure for a clean output, the raw movie,
an over-smoothing Gaussian, halved transients and the plugin's denoiser). They assume noise
that is independent from frame to frame; the noise's spatial correlation is measured and
accounted for (movies only; volumes are assumed spatially white).
"""

from .assessment import TrustReport, assess
from .checks import THRESHOLDS, Check
from .common import box_mean
from .forward import to_input_grid
from .noise import NoiseModel, estimate_noise
from .residuals import lazy_residual, residual, structure_map

__all__ = [
    "NoiseModel", "Check", "TrustReport", "THRESHOLDS", "estimate_noise", "to_input_grid",
    "residual", "assess", "box_mean", "DENOISING_METHODS", "lazy_residual",
    "structure_map",
]


def __getattr__(name: str):  # PEP 562: from the registry, on first use
    if name == "DENOISING_METHODS":
        from .checks import denoising_methods

        return denoising_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
