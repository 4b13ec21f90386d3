"""The checks of :func:`~.assessment.assess`: each figure against its threshold."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .common import _method_obj

__all__ = ["THRESHOLDS", "Check", "denoising_methods"]


def denoising_methods() -> tuple[str | None, ...]:
    """The methods whose purpose includes removing noise (``Method.removes_noise`` with
    default parameters): "removed nothing" is a warning for them. ``None`` (an output of
    another tool on the same grid) counts as a denoiser."""
    from ..methods import get, names

    return (None, *[n for n in names() if get(n).removes_noise({})])

#: Thresholds of the checks (calibrated in benchmarks/bench_trust.py; documented in README).
THRESHOLDS: dict[str, float] = {
    # residual variance / the noise model's prediction
    "variance_ratio_nothing": 0.1,   # below: the output is (almost) the input
    "variance_ratio_low": 0.5,       # below: much of the noise was left
    "variance_ratio_high": 1.3,     # above: more than the noise was removed
    # lag-1 autocorrelation of the residual minus that of the noise, largest over the axes
    # (one-sided: smooth structure correlates positively; a denoiser that mixes in the
    # noise of neighbouring frames or pixels makes it negative, which is not signal loss)
    "autocorr": 0.05,
    # Pearson r between the residual and the restored signal's fluctuations (one-sided:
    # negative when the output carries noise from neighbouring frames)
    "signal_correlation": 0.15,
    # fraction of the field of view whose residual has structure (map above its threshold)
    "structure_fraction": 0.02,
    # mean residual / mean signal above the offset
    "intensity_shift": 0.05,
    # transient fidelity (median over ROIs with events)
    "peak_ratio": 0.8,
    "onset_delay": 1.0,
}


@dataclass
class Check:
    """One figure with its threshold and a pass/warn verdict."""

    name: str
    value: float | None
    threshold: str
    status: str  # "pass", "warn" or "n/a"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_denoising(method: str | None, md: dict) -> bool:
    m = _method_obj(method)
    return method is None or (m is not None and m.removes_noise(md))


def _verdict(name: str, value: float, threshold: str, warn: bool, message: str,
             why: str = "") -> Check:
    """A check that warns when ``warn``; ``why`` is added to the message of a warning."""
    return Check(name, value, threshold, "warn" if warn else "pass",
                 message + (why if warn else ""))


def _checks(figs, th, method, md, zero, temporal) -> list[Check]:
    return [_never_nan_pass(c) for c in _raw_checks(figs, th, method, md, zero, temporal)]


def _never_nan_pass(c: Check) -> Check:
    """A figure that is NaN or infinite (an all-zero or all-NaN restoration, a constant
    input) is never a PASS: it is a warning that says the figure could not be computed."""
    if c.status != "pass" or c.value is None or math.isfinite(float(c.value)):
        return c
    return Check(c.name, c.value, c.threshold, "warn",
                 f"this figure could not be computed ({c.value}): the restoration (or the "
                 "input) may be constant, empty or hold NaN")


def _raw_checks(figs, th, method, md, zero, temporal) -> list[Check]:
    out: list[Check] = []
    vr = figs["variance_ratio"]
    if _is_denoising(method, md):
        if vr < th["variance_ratio_nothing"]:
            out.append(Check("removed_nothing", vr, f"< {th['variance_ratio_nothing']}", "warn",
                             f"the residual has {vr:.2f} x the noise's variance: the output is "
                             "almost the input (an identity mapping?)"))
        elif vr < th["variance_ratio_low"]:
            out.append(Check("noise_left", vr, f"< {th['variance_ratio_low']}", "warn",
                             f"only {vr:.2f} x the noise's variance was removed: much noise "
                             "is left"))
        else:
            out.append(Check("noise_removed", vr, f">= {th['variance_ratio_low']}", "pass",
                             f"the residual has {vr:.2f} x the noise's variance"))
    if vr > th["variance_ratio_high"]:
        out.append(Check("signal_removed", vr, f"> {th['variance_ratio_high']}", "warn",
                         f"the residual has {vr:.2f} x the noise's variance: more than the "
                         "noise was removed"))
    else:
        out.append(Check("variance_within_noise", vr, f"<= {th['variance_ratio_high']}",
                         "pass", f"the residual has {vr:.2f} x the noise's variance"))
    sh = figs["intensity_shift"]
    if math.isfinite(sh) and abs(sh) > th["intensity_shift"]:
        out.append(Check("intensity_shift", sh, f"|x| > {th['intensity_shift']}", "warn",
                         f"the output's mean differs from the input's by {100 * sh:+.1f} % of "
                         "the signal above the offset: the intensity scale changed"))
    else:
        out.append(Check("intensity_kept", sh, f"|x| <= {th['intensity_shift']}", "pass",
                         "the output keeps the input's intensity scale"))
    # the residual's correlations: with itself (lag 1) and with the restored signal
    for name, key, fig, what, why in (
            ("residual_autocorrelation", "autocorr", "autocorr_excess",
             "largest lag-1 autocorrelation of the residual beyond the noise's: ",
             " (structure removed: stripes, blur or edges)"),
            ("signal_correlation", "signal_correlation", "signal_correlation",
             "Pearson r of the residual with the restored signal: ",
             " (the residual follows the signal: signal was removed)")):
        v = figs[fig]
        if zero or not math.isfinite(v):
            out.append(Check(name, None, f"<= {th[key]}", "n/a", "no residual"))
        else:
            out.append(_verdict(name, v, f"<= {th[key]}", v > th[key], f"{what}{v:.3f}", why))
    sf = figs["structure_fraction"]
    out.append(_verdict("residual_structure", sf, f"<= {th['structure_fraction']}",
                        sf > th["structure_fraction"],
                        f"{100 * sf:.1f} % of the field of view has structure in the residual",
                        " (see the structure map)"))
    pr = figs.get("peak_ratio_median")
    if pr is not None:
        out.append(_verdict("flattened_transients", pr, f">= {th['peak_ratio']}",
                            pr < th["peak_ratio"], f"median restored/raw transient peak: {pr:.2f}",
                            " (ΔF/F peaks flattened)"))
    dl = figs.get("onset_delay_median")
    if dl is not None:
        out.append(_verdict("shifted_transients", dl, f"|x| <= {th['onset_delay']} frame",
                            abs(dl) > th["onset_delay"], f"median onset delay {dl:+.2f} frames"))
    return out


def transients_available() -> bool:
    """Whether the transient checks' module (``core.traces.transients``) can be imported."""
    import importlib

    try:
        importlib.import_module("napari_neurorestore.core.traces.transients")
    except ImportError:
        return False
    return True
