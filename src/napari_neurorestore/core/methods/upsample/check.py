"""Upsampling's truth-free self-check: the trained model applied to the input binned by the
factor, scored against the input itself, next to cubic interpolation of the same binned
input.

There is no ground truth at the output's scale; one scale coarser there is: the input. The
figure says how much the network adds over cubic interpolation where it can be measured.
For a one-stage model it is optimistic (the network trained on pairs at that scale); for a
staged 4x model the 4x check runs both stages on data whose coarsest half it never trained
on. Either way, where the network adds little there, it has learned little to add at the
output's scale, and the setting is past what it restores on this volume.

Importing this module does not import torch (the faces format the check's line).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: below this gain over cubic (dB, at the check scale) the check says the factor is past
#: what the network restores on this volume. The check underestimates at 4x (its volume is
#: 4x coarser, and small): a simulated 48^3 input whose true gain was +3.35 dB checked
#: +0.94 dB; white noise checks about 0; at 2x the check is close (+4.2 / +6.6 dB checked,
#: +4.3 / +5.7 dB true). At 3x and above the line says that it reads low.
WORTH_DB = 0.3
#: the binned input needs at least this many pixels along every upsampled axis
MIN_CHECK_SIDE = 4
#: input voxels the self-check upsamples back (a centre crop of the input): ~1 s on a CPU
CHECK_VOXELS = 2**19


def centre_block(block: np.ndarray, voxels: int = CHECK_VOXELS) -> np.ndarray:
    """The centre of ``block`` (at most about ``voxels`` voxels; a copy) for the check."""
    side = int(round(voxels ** (1 / block.ndim)))
    sl = tuple(slice(max(0, (n - side) // 2), max(0, (n - side) // 2) + side)
               for n in block.shape)
    return np.array(block[sl], np.float32)


def self_check(volume: np.ndarray, factors: tuple[int, ...], predict_fn: Any
               ) -> dict[str, Any]:
    """Gain (dB) of a model over cubic interpolation at one scale coarser.

    ``volume``: the input (or a block of it); ``factors``: the model's per-axis factors;
    ``predict_fn(x)`` upsamples an array with the model (its stages and back-projection
    included). Returns ``{"gain_db", "check_shape", "factor"}`` or ``{"skipped": why}``.
    """
    import torch

    from .net import bin_down, interp_upsample

    factor = max(factors)
    coarse_shape = [s // f for s, f in zip(volume.shape, factors, strict=True)]
    if any(n < MIN_CHECK_SIDE for n, f in zip(coarse_shape, factors, strict=True) if f > 1):
        return {"skipped": f"the input binned {factor}x ({'x'.join(map(str, coarse_shape))}) "
                           f"is too small to check on"}
    ref = np.ascontiguousarray(volume[tuple(slice(0, n * f) for n, f in
                                            zip(coarse_shape, factors, strict=True))],
                               np.float32)
    with torch.no_grad():
        coarse_t = bin_down(torch.from_numpy(ref)[None, None], factors)
        cubic = interp_upsample(coarse_t, factors, "cubic")[0, 0].numpy()
    coarse = coarse_t[0, 0].numpy()
    ours = np.asarray(predict_fn(coarse), np.float32)
    # one coarse pixel of border left out where the volume is large enough (reflected there)
    inner = tuple(slice(f, -f) if n > 2 * MIN_CHECK_SIDE and f > 1 else slice(None)
                  for n, f in zip(coarse_shape, factors, strict=True))
    err_ours = float(np.mean((ours[inner] - ref[inner]) ** 2, dtype=np.float64))
    err_cubic = float(np.mean((cubic[inner] - ref[inner]) ** 2, dtype=np.float64))
    gain = 10 * np.log10(max(err_cubic, 1e-20) / max(err_ours, 1e-20))
    return {"gain_db": round(float(gain), 2), "check_shape": coarse_shape, "factor": factor}


def format_check(check: dict | None, factor: int | None = None) -> str:
    """One line for the CLI, the Restore dock and the trust report."""
    if not check:
        return "self-check: not available"
    if "skipped" in check:
        return f"self-check: not available ({check['skipped']})"
    g = float(check["gain_db"])
    f = check.get("factor", factor)
    if g >= WORTH_DB:
        verdict = "the network adds detail that interpolation does not"
        if f is not None and int(f) >= 3:
            verdict += (f" (at {f}x this figure reads low: the input binned {f}x keeps less "
                        "detail to restore than the input has; on the benchmark's simulated "
                        "volume 3x checked +2.6 dB for +4.4 dB true, 4x +0.9 dB for +3.5 dB)")
    else:
        verdict = (("little over" if g > 0 else "no better than") + " cubic interpolation: "
                   f"{f}x is past what this method restores on this volume (try a smaller "
                   "factor)")
    return (f"self-check (no ground truth; the input binned {f}x and upsampled back): "
            f"{g:+.1f} dB over cubic interpolation: {verdict}")
