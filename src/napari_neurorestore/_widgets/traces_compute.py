"""Computing the ROI traces (a mixin of :class:`.traces.TracesWidget`): gather the layers,
ROIs and parameters on the UI thread (:class:`_Plan`), extract what the cache lacks (as a
job of the dock base when it is large: :func:`extract_task`), then compute ΔF/F and the
fidelity figures and draw them."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import traces as tr
from ..core.errors import InputError
from ..core.progress import Cancelled, CancelToken, Progress
from . import traces_rois as rois_mod
from .base import Job
from .layers import incomplete_layer
from .traces_rois import ROI_FEATURE, layer_data
from .worker import EXPECTED_ERRORS, TaskOutcome, sync_from_env


@dataclass
class _Plan:
    """Everything :meth:`TracesWidget.refresh` needs, gathered on the UI thread."""

    names: list[str]
    movies: list[Any]
    rois: list[list[tr.Roi]]
    bg: list[list[tr.Roi]]
    colors: dict[int, np.ndarray]
    params: tr.TraceParams
    messages: list[str] = field(default_factory=list)


def extract_task(jobs: list, cancel: CancelToken) -> Generator[Progress, None, TaskOutcome]:
    """Extract the traces of ``jobs`` ((movie, ROIs) pairs), one movie a step; the outcome's
    result is [(movie, ROIs, traces), ...]."""
    out = []
    try:
        for k, (mv, miss) in enumerate(jobs):
            yield Progress("prepare", k, len(jobs), message="extracting traces")
            out.append((mv, miss, tr.extract_traces(mv, miss, cancel=cancel)))
    except Cancelled:
        return TaskOutcome(cancelled=True)
    except EXPECTED_ERRORS as exc:
        return TaskOutcome(cancelled=True) if cancel.cancelled else TaskOutcome(error=exc)
    return TaskOutcome(result=out)


class TraceCompute:
    """Refresh and the extraction job of a traces dock."""

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """Recompute the traces and redraw. Small jobs run here; large extractions go to a
        worker thread and the redraw follows when it returns."""
        self._timer.stop()
        self._last_refresh = time.monotonic()
        if self.is_busy:
            self._pending = True
            return
        try:
            plan = self._plan()
        except (InputError, ValueError) as e:
            self._clear(str(e))
            return
        if plan is None:
            return
        jobs = []
        cost = 0
        for mv, rois, bg in zip(plan.movies, plan.rois, plan.bg, strict=True):
            miss = self.cache.missing(mv, list(rois) + [b for b in bg if b.size])
            if miss:
                jobs.append((mv, miss))
                cost += int(mv.shape[0]) * sum(r.size for r in miss) * (
                    1 if isinstance(mv, np.ndarray) else 8)
        sync = sync_from_env() if self.sync is None else self.sync
        if jobs and not sync and cost > self.async_threshold:
            n = sum(len(m) for _, m in jobs)
            self._show_status(plan.messages, None,
                              busy=f"computing {n} trace(s) in the background…")
            job = Job("traces")
            self.start_job(job, extract_task, jobs, job.cancel)
            return
        self._finish(plan)

    @property
    def busy(self) -> bool:
        """True while a worker computes traces."""
        return self.is_busy

    def job_title(self, job: Job) -> str:
        return "Computing the traces"

    def failure_text(self, job: Job, exc: BaseException, expected: bool) -> str:
        return f"computing the traces failed: {exc}"

    def on_result(self, job: Job, out: list) -> None:
        for mv, miss, F in out:
            self.cache.put(mv, miss, F)

    def on_job_error(self, job: Job, text: str) -> None:
        self._pending = False
        self._clear(text)

    def on_cancelled(self, job: Job) -> None:
        self._show_status([job.reason or "Computing the traces was cancelled: press Refresh "
                           "to compute them."], None)

    def on_finished(self, job: Job) -> None:
        self.update_buttons()
        outcome = job.outcome
        done = not job.cancel.cancelled and outcome is not None and outcome.error is None \
            and not outcome.cancelled
        self._pending = False
        if done:
            self._safe_refresh()  # everything needed is cached now (or a newer edit came in)

    def _write_status(self, text: str, error: bool) -> None:
        self._show_status(self.messages, text if error else None, busy=None if error else text)

    def _finish(self, plan: _Plan) -> None:
        res = tr.compute_traces(
            plan.movies[0], plan.rois[0], plan.movies[1:], params=plan.params, names=plan.names,
            compare_rois=plan.rois[1:], background_rois=plan.bg, cache=self.cache,
        )
        self.result = res
        self._colors = plan.colors
        self.draw()
        self._show_status(plan.messages + res.messages + self.transient_warnings(), None)

    def _plan(self) -> _Plan | None:
        """Gather layers, ROIs and parameters; None (with a hint shown) when there is nothing to do."""
        from napari.layers import Labels, Shapes

        messages: list[str] = []
        ref = self.reference_layer
        if ref is None:
            self._clear("Open a movie (an Image layer with a time axis) to choose as reference.")
            return None
        if getattr(ref, "rgb", False):
            raise InputError(f"'{ref.name}' is an RGB image; choose a grayscale movie")
        n_frames, spatial = tr.check_trace_movie(layer_data(ref), f"'{ref.name}'")
        params = self.params()
        layers = [ref]
        for lay in self.compare_layers:
            if getattr(lay, "rgb", False):
                messages.append(f"'{lay.name}' is an RGB image: left out")
                continue
            try:
                t, _ = tr.check_trace_movie(layer_data(lay), f"'{lay.name}'")
            except InputError as e:
                messages.append(f"{e}: left out")
                continue
            if t != n_frames:
                messages.append(f"'{lay.name}' has {t} frames but the reference '{ref.name}' has "
                                f"{n_frames}: left out (compare layers must share its time axis)")
                continue
            layers.append(lay)
        for lay in layers:  # said on every refresh, not a notification each time
            why = incomplete_layer(lay)
            if why:
                messages.append(f"{why}: its frames that were never restored read as NaN, "
                                "so its traces have gaps there")
        src = self.roi_layer
        if src is None:
            self._clear("Choose an ROI layer, or click 'New ROI layer' and draw ellipses on the movie.")
            return None
        all_rois = []
        colors: dict[int, np.ndarray] = {}
        keep = []
        if isinstance(src, Shapes) and ROI_FEATURE in src.features:
            rois_mod.number_new_shapes(src)  # shapes added since the last edit event
        for k, lay in enumerate(layers):
            if isinstance(src, Shapes):
                rois, msgs, colors_k = rois_mod.rois_from_shapes(
                    src, lay, self.cache.masks, self._current_index)
            elif isinstance(src, Labels):
                try:
                    rois, msgs, colors_k = rois_mod.rois_from_labels(
                        src, lay, self.current_frame(), self._current_index)
                except InputError as e:
                    if k == 0:
                        raise
                    messages.append(f"'{lay.name}': {e}: left out")  # as for Shapes ROIs
                    continue
            else:
                raise InputError(f"'{src.name}' is neither a Shapes nor a Labels layer")
            if k == 0:
                messages += msgs
                colors = colors_k
                if not rois:
                    raise InputError(rois_mod.no_roi_message(src, msgs))
                ids = [r.id for r in rois]
            else:
                if [r.id for r in rois] != ids:
                    messages.append(f"'{lay.name}': not every ROI lies inside it: left out")
                    continue
            all_rois.append(rois)
            keep.append(lay)
        layers = keep
        bg = [tr.neuropil_rois(r, params.neuropil_inner, params.neuropil_outer,
                               masks=self.cache.masks) for r in all_rois]
        names = [lay.name for lay in layers]
        return _Plan(names, [layer_data(lay) for lay in layers], all_rois, bg, colors, params,
                     messages)
