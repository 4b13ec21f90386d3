"""The denoiser's checks after training, on the frames it trained on: the time they keep
of the training budget, and the registration, centre-frame correction, long-context step,
transient threshold and self-check they fit (each described in its own module:
:mod:`.motion`, :mod:`.centre`, :mod:`.context`, :mod:`.post`).
``src`` is the trainer's frame source (its ``segments``, ``k`` and ``offsets``)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn.functional import pixel_unshuffle

from . import centre as denoise_centre
from . import context as denoise_context
from . import held as denoise_held
from . import motion as denoise_motion
from . import post as denoise_post
from .frames import auto_batch_size, neighbour_index, predict_windows
from .post import blind_gaussian
from .spec import DenoiseParams


def reserve(params: DenoiseParams, src, members: int):
    """The time to keep of the budget for the checks after training, from the typical
    step time: ``CHECK_SHARE`` of the budget, or the checks' own estimate
    (:func:`denoise_centre.check_seconds`) when it is longer, up to half the budget; None
    without checks. A step of fewer than 16k pixels counts as 16k: so small a step is
    mostly fixed costs, and its time per pixel says little about the checks'."""
    if params.train_seconds is None or not params.centre_correction:
        return None
    h, w = src.segments[0].shape[-2:]
    batch_px = max(2**14, params.batch_size * min(params.patch_size, h) * min(params.patch_size, w))
    longest = max(len(seg) for seg in src.segments)
    check_px = len(denoise_centre.check_times(longest, src.k, (h, w))) * h * w
    # the held-out frames (.held): the last weights' evaluation and the blend's fit
    held_px = len(getattr(src, "held", ())) * h * w

    def reserve(step_seconds: float) -> float:
        est = denoise_centre.check_seconds(step_seconds / batch_px, check_px, members,
                                           params.long_context)
        est += step_seconds / batch_px * held_px * denoise_centre.CHECK_COST_NET * (1 + members)
        return max(denoise_centre.CHECK_SHARE * params.train_seconds,
                   min(0.5 * params.train_seconds, est))
    return reserve


def estimate(net, src, params: DenoiseParams, device,
                     deadline: float | None = None, ensemble: int = 1) -> dict | None:
    """Decide on registration (see :mod:`.motion`), choose the output (the network,
    the Gaussian or their blend, on the held-out frames ``src.held``: see :mod:`.held`)
    and fit the centre-frame
    correction (see :mod:`.centre`) on up to CHECK_FRAMES frames of the longest
    training segment; None when the segment is too short. Returns the kernel (None when
    held-out frames say it does not help), ``register``, the long-context step and its
    causal variant (see :mod:`.context`; each None when held-out frames say it does not
    help), the self-check, and ``blend`` (None: the network alone). ``ensemble``: the
    members of the net's predictions (as in :func:`predict`, so that what is fitted on them
    is what inference applies to)."""
    seg = max(src.segments, key=len)
    k = src.k
    if len(seg) < 2 * k + 1 or len(seg) < 3:
        return None
    ts = denoise_centre.check_times(len(seg), k, seg.shape[-2:])
    net.eval()
    pred = np.empty((len(ts), *seg.shape[-2:]), np.float32)
    # batches and memory layout as at inference (on a CPU, channels-last activations and
    # about 64k pixels a batch: 4x faster here at 512 x 512 than batches of 8 frames)
    bs = auto_batch_size(seg.shape[-2:], device)
    layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    net.to(memory_format=layout)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(ts), bs):
            x = torch.from_numpy(seg[neighbour_index(ts[i:i + bs], src.offsets, len(seg))])
            xu = pixel_unshuffle(x.to(device), 2).contiguous(memory_format=layout)
            pred[i:i + bs] = predict_windows(net, xu, ensemble)[:, 0].float().cpu().numpy()
        t_pred = time.perf_counter() - t0
        net.to(memory_format=torch.contiguous_format)
        centre, p = torch.from_numpy(seg[ts]), torch.from_numpy(pred)
        motion = denoise_motion.motion_cv(centre, p)
        register = motion < -denoise_motion.CV_THRESHOLD
        if register:
            pred = denoise_motion.register(centre, p)[0].numpy()
    context, context_cv, causal, causal_cv = None, 0.0, None, 0.0
    if params.long_context:
        # the causal step first (live mode's: forward only the k frames its window waits
        # for), on the network's predictions: live mode applies neither the blend (it reads
        # frames live mode has not got) nor the full step. The kernel below is fitted after
        # the full one.
        causal, _, causal_cv = denoise_context.fit(seg, ts, pred, future=k,
                                                   windows=denoise_context.CAUSAL_WINDOWS)
    tuned = denoise_centre.tune_gaussian(seg, ts, _search_deadline(
        deadline, t_pred, params, ensemble, len(getattr(src, "held", ())) / len(ts)))
    blend, chosen = _blend(net, src, params, device, ensemble, tuned, register)
    if blend is not None:  # what follows is fitted on the blend, as inference applies it
        g = blind_gaussian(torch.from_numpy(seg), ts, 0, len(seg), blend["sigma_t"],
                           blend["sigma_xy"])[:, 0].numpy()
        pred = pred + blend["weight"] * (g - pred)
    if params.long_context:
        context, pred, context_cv = denoise_context.fit(seg, ts, pred)
    est = denoise_centre.estimate(seg, ts, pred, tuned=tuned)
    est["check"].update(motion_cv=motion, registered=bool(register),
                        context_cv=float(context_cv), context=context is not None,
                        causal_context_cv=float(causal_cv), causal_context=causal is not None,
                        **chosen)
    est["blend"] = blend
    est["register"] = bool(register)
    est["context"], est["context_causal"] = context, causal
    est["transient"] = {"sigma": denoise_centre.TRANSIENT_SIGMA,
                        "threshold": denoise_post.transient_threshold(seg, ts, est["kernel"])}
    return est


def _blend(net, src, params, device, ensemble, tuned, register) -> tuple[dict | None, dict]:
    """The blend of the net with the tuned Gaussian fitted on the held-out frames (None
    for the network alone), and what the self-check records of the choice."""
    if not (params.gaussian_guard and params.long_context):  # inference leaves it out
        return None, {"output": "network", "output_forced": True, "gauss_weight": 0.0}
    held = getattr(src, "held", None)
    if held is None or not len(held):
        return None, {}
    seg = src.segments[src.held_segment]
    fit = denoise_held.choose(net, seg, held, src.offsets, device, ensemble,
                              tuned["gauss_sigma_t"], tuned["gauss_sigma_xy"],
                              denoise_motion.register if register else None)
    chosen = {k: v for k, v in fit.items() if k.startswith("held")}
    chosen.update(output=denoise_held.output_kind(fit["weight"]), gauss_weight=fit["weight"])
    spec = {k: fit[k] for k in ("sigma_t", "sigma_xy", "weight")}
    return (spec if fit["weight"] > 0 else None), chosen


def _search_deadline(deadline, t_pred: float, params, members: int, held_share: float):
    """When the Gaussian search must end so that what follows it (the blend's fit on the
    held-out frames, the long-context fit, the spectra) ends by ``deadline``: their time
    from the check frames' prediction time ``t_pred`` and the checks' cost model."""
    if deadline is None:
        return None
    rest = (denoise_centre.CHECK_COST_REST
            + (denoise_centre.CHECK_COST_CONTEXT if params.long_context else 0.0))
    per_member = t_pred / (denoise_centre.CHECK_COST_NET * max(1, members))
    return deadline - per_member * rest - t_pred * held_share * 2
