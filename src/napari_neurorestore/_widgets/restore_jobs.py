"""Train / Run / Preview of the Restore dock (a mixin of :class:`.restore.RestoreWidget`):
the cost estimate and refusal before a run, the job that runs :func:`.worker.restore_task`,
and the result layer it adds (or the live layer of a streamed result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..core.methods import get, names, params_for
from ..core.progress import Progress
from .base import Job
from .formatting import format_progress, format_seconds
from .layers import result_layer_kwargs, unique_name
from .live_mode import LiveJob
from .live_output import LiveOutput, result_grid, streams
from .worker import restore_task


def preview_methods() -> tuple[str, ...]:
    """The registered methods whose core module offers ``preview`` (``Method.has_preview``)."""
    return tuple(n for n in names() if get(n).has_preview)


#: side of the preview crop, in input pixels
PREVIEW_SIZE = 64


def method_label(name: str) -> str:
    """A method's label in the method picker (``Method.label``; none: the name)."""
    return get(name).label or name


PROGRESS_MAX = 1000


@dataclass
class _Job(Job):
    """One Train/Run/Preview ("train", "run" or "preview")."""

    method: str = ""
    layer: Any = None
    layer_name: str = ""
    live: LiveOutput | None = None  # a store the result is streamed into (large results)
    stage: str = ""  # the stage of the latest progress message ("train", "predict", ...)


class RestoreJobs:
    """The runs of a Restore dock (a :class:`.base.DockBase` with the Restore widgets)."""

    # ------------------------------------------------------------------ cost
    def estimate(self, kind: str = "train") -> Any:
        """The cost estimate of Train (or Run, ``kind="run"``) on the selected layer with
        the current parameters, from the data's size only (no probe: never blocks the UI).
        None when there is no layer or the settings are invalid."""
        from ..core.cost import estimate_cost

        layer = self.layer_combo.value
        if layer is None:
            return None
        data = self._read_layer(layer)
        params = self.get_params()
        model = self.model if kind == "run" and self._model_fits() else None
        return estimate_cost(self.method, data, params, model=model, device=params.device,
                             streaming=self._streams(data), probe=False)

    def _model_fits(self) -> bool:
        return self.model is not None and self.model.method == self.method

    def _streams(self, data: Any) -> bool:
        """Whether the result of ``data`` is streamed to a store (see :mod:`.live_output`)."""
        try:
            return streams(self._result_grid(data, self.get_params()))
        except (ValueError, TypeError, AttributeError):
            return False

    def _result_grid(self, data: Any, params: Any, kind: str = "train") -> tuple | None:
        """:func:`.live_output.result_grid` of ``data``; ``run`` applies the loaded model,
        whose parameters set the grid."""
        if kind == "run" and self._model_fits():
            params = params_for(self.method).from_dict(self.model.params)
        return result_grid(self.method, data.shape, params)

    def _update_cost(self, *_: Any) -> None:
        if self._alive.closed:
            return
        try:
            est = self.estimate()
        except (ValueError, TypeError):
            est = None
            try:  # say why, when it is the input (e.g. 4-D data for a volume method)
                why = self._input_refusal(self.layer_combo.value, "train")
            except (ValueError, TypeError):
                why = None
            if why:
                self.cost_label.value = f"No estimate: {why}"
                return
        self.cost_label.value = "" if est is None else f"Estimate: {est.summary()}"

    def _input_refusal(self, layer: Any, kind: str) -> str | None:
        """Why the current method cannot run on ``layer`` (see :mod:`.input_checks`);
        raises ValueError for invalid settings or an unreadable (RGB) layer."""
        from .input_checks import volume_refusal

        if layer is None:
            return None
        data, params = self._read_layer(layer), self.get_params()
        training = kind == "train" or (kind == "preview" and not self._model_fits())
        return volume_refusal(self.method, layer, data, params, training, self.viewer)

    def _stream_hint(self) -> str:
        return ("install zarr (pip install 'napari-neurorestore[large]') so that large "
                "results stream to a zarr store, or use the command line: "
                f"neurorestore {self.method} IN.tif -o OUT.zarr")

    def _use_model(self, model: Any, source: str) -> None:
        self.model = model
        self.model_source = source
        self.update_model_label()

    # ------------------------------------------------------------------ actions
    def start_training(self, *_: Any) -> Any:
        """Train on the selected layer, then restore it into a new layer.

        Returns the worker, or None when refused (the status label says why).
        """
        return self._start("train")

    def start_run(self, *_: Any) -> Any:
        """Restore the selected layer with the trained or loaded model (no training).

        Returns the worker, or None when refused (the status label says why).
        """
        if not self.is_busy:
            if self.model is None:
                self.refuse("No model yet: train one (Train) or load one (Load model…).")
                return None
            if self.model.method != self.method:
                self.refuse(
                    f"The model is a {self.model.method!r} model; choose that method to run it."
                )
                return None
        return self._start("run")

    def start_preview(self, *_: Any) -> Any:
        """Train on the selected layer (unless a model of this method is loaded or trained)
        and restore a crop around the viewer's current position into a new layer.

        Returns the worker, or None when refused (the status label says why).
        """
        if self.method not in preview_methods():
            self.refuse(f"{method_label(self.method)} has no preview.")
            return None
        return self._start("preview")

    def _preview_center(self, layer: Any) -> tuple[int, ...]:
        """The viewer's current position in the layer's pixel coordinates."""
        ndim = layer.ndim
        try:
            point = self.viewer.dims.point[-ndim:]
            pos = layer.world_to_data(point)
        except Exception:
            pos = [s / 2 for s in layer.data.shape]
        return tuple(int(round(float(p))) for p in pos[-ndim:])

    def _clear_last_run(self) -> None:
        """Forget what the last run showed (its "100% done"), before a new one starts."""
        self.progress_bar.value = 0
        self.progress_label.value = ""

    def _start(self, kind: str) -> Any:
        if self._alive.closed or self.refuse_if_busy():
            return None
        self._clear_last_run()
        layer = self.layer_combo.value
        if layer is None or layer not in self.viewer.layers:
            self.refuse("No image layer selected: open or choose an image layer first.")
            return None
        try:
            data = self._read_layer(layer)
        except ValueError as e:
            self.refuse(f"Not started: {e}.")
            return None
        try:
            params = self.get_params()
        except ValueError as e:
            self.refuse(f"Invalid settings: {e}")
            return None
        try:  # the method's extra inputs: the picked layers' data (extra_inputs.py)
            options = {} if kind == "preview" else self.extra_inputs.values()
        except ValueError as e:  # e.g. an RGB layer
            self.refuse(f"Not started: {e}.")
            return None
        why = self._input_refusal(layer, kind) or self.extra_inputs.refusal(data, params,
                                                                            options)
        if why:
            self.refuse(f"Not started: {why}")
            return None
        if kind != "preview" and not self._fits(kind):
            return None
        try:
            live = None if kind == "preview" else LiveOutput.open_for(
                layer.name, self.method, self._result_grid(data, params, kind),
                getattr(params, "chunk_frames", None))
        except (ValueError, OSError) as e:
            self.refuse(f"Cannot write the result of '{layer.name}': {e}")
            return None
        self.warn_incomplete(layer)
        extra = tuple(self.extra_inputs.layers().values()) if options else ()
        job = _Job(kind, inputs=(layer, *extra), method=self.method, layer=layer,
                   layer_name=layer.name, live=live)
        model = self.model if kind == "run" else None
        preview = None
        if kind == "preview":
            preview = {"center": self._preview_center(layer), "size": PREVIEW_SIZE}
            if self._model_fits():
                model = self.model
        self.progress_bar.value = 0
        self.progress_label.value = "starting…"
        verb = {"train": "Training on", "preview": "Previewing"}.get(kind, "Restoring")
        out = None if live is None else live.store
        given = params.to_dict()  # the form's values: a loaded model's fixed ones must match
        return self.start_job(job, restore_task, job.method, data, params, job.cancel, model,
                              out, preview, given, options, status=f"{verb} '{layer.name}'…")

    def _fits(self, kind: str) -> bool:
        """False (and the refusal shown) when the run would not fit in memory."""
        from ..core.cost import refuse_if_too_big
        from ..core.errors import InputError

        try:
            est = self.estimate(kind)
        except ValueError:  # bad input: the core reports it, as for any run
            est = None
        try:
            if est is not None:
                refuse_if_too_big(est, self._stream_hint())
        except InputError as e:
            self.refuse(f"Not started: {e}")
            return False
        return True

    # ------------------------------------------------------------------ job hooks
    def job_title(self, job: Job) -> str:
        if isinstance(job, LiveJob):
            return "Live session"
        return "Training" if job.kind == "train" else "Restoring"

    def failure_text(self, job: Job, exc: BaseException, expected: bool) -> str:
        """As the base's, naming the user's layer: "Training on 'movie' failed: …"."""
        text = super().failure_text(job, exc, expected)
        name = getattr(job, "layer_name", "")
        if not name:
            return text
        on = " on" if job.kind == "train" else ""  # "Training on 'x'", "Restoring 'x'"
        return text.replace(" failed", f"{on} '{name}' failed", 1)

    def on_stopping(self, job: Job) -> None:
        self.cancel_button.enabled = False
        self.stop_training_button.enabled = False
        self.live.stop_button.enabled = False

    def _can_stop_training(self) -> bool:
        job = self.job
        return (job is not None and getattr(job, "stage", None) == "train"
                and not job.cancel.training_stopped and not job.cancel.cancelled)

    def stop_training(self, *_: Any) -> bool:
        """End the running job's training after its current step; the job goes on with the
        model learned so far (restores, keeps the model). False when not training."""
        if not self._can_stop_training():
            return False
        self.job.cancel.stop_training()
        self.stop_training_button.enabled = False
        self.set_status("Stopping training: going on with the model learned so far…")
        return True

    def on_progress(self, job: _Job, p: Progress) -> None:
        if isinstance(job, LiveJob):  # the Live section's session
            return self.live.on_progress(job, p)
        job.stage = p.stage
        self.stop_training_button.enabled = self._can_stop_training()
        self.progress_bar.value = int(round(PROGRESS_MAX * p.fraction))
        self.progress_label.value = format_progress(p)
        if job.live is not None and not job.live.failed and p.stage == "predict":
            try:
                from ..core.methods import get_method

                job.live.show(self.viewer, job.layer, get_method(job.method).SUFFIX)
            except Exception as e:  # the viewer refused the data: show it at the end
                job.live.failed = True
                self.show_error(f"Could not show the result while it is written: {e}")

    def on_result(self, job: _Job, result: Any) -> None:
        if isinstance(job, LiveJob):  # the Live section's session
            return self.live.on_result(job, result)
        if job.layer not in self.viewer.layers:
            self.set_status(
                f"Input layer '{job.layer_name}' was removed; the result was not added.")
            return
        try:
            kwargs = result_layer_kwargs(
                job.layer, result.metadata, result.suffix,
                scale_factors=getattr(result, "scale_factors", None),
                translate_shift=getattr(result, "translate_shift", None))
            new_layer = None if job.live is None else job.live.finish(self.viewer, kwargs)
            if new_layer is None:
                kwargs["name"] = unique_name(self.viewer, kwargs["name"])
                new_layer = self.viewer.add_image(result.data, **kwargs)
        except Exception as e:  # e.g. the viewer refused the data
            self.show_error(f"Could not add the result layer: {e}")
            return
        self.last_result_layer = new_layer
        self.set_status(self._done_text(job, result, new_layer))
        self.progress_bar.value = PROGRESS_MAX
        self.progress_label.value = "done"
        if self.residual_check.value and job.kind != "preview":
            self._add_residual(job, result, new_layer)

    def _done_text(self, job: _Job, result: Any, new_layer: Any) -> str:
        elapsed = time.perf_counter() - job.t0
        trained_preview = job.kind == "preview" and result.model is not self.model
        if trained_preview:
            self._use_model(result.model, f"trained on '{job.layer_name}' (preview)")
        if job.kind == "train":
            self._use_model(result.model, f"trained on '{job.layer_name}'")
            info = result.model.info
            loss = info.get("final_loss")
            loss_txt = f", loss {loss:.4g}" if loss is not None else ""
            text = (f"Trained in {format_seconds(info.get('train_seconds'))} "
                    f"({info.get('steps', '?')} steps{loss_txt}); added '{new_layer.name}' "
                    f"(total {format_seconds(elapsed)}).")
            summary = get(result.model.method).training_summary(info)
            if summary:
                text += f"\n{summary}"
        else:
            text = f"Restored in {format_seconds(elapsed)}; added '{new_layer.name}'."
            # a preview that trained says what training found (e.g. upsampling's self-check)
            summary = (get(result.model.method).training_summary(result.model.info)
                       if trained_preview else None)
            if summary:
                text += f"\n{summary}"
        if job.live is not None:
            text += f" Written to {job.live.path}."
        sim = (result.metadata.get("neurorestore") or {}).get("simulation")
        if sim:  # the CLI's text (sparse's simulate mode)
            from ..core.methods.sparse.figures import format_simulation

            text += f"\n{format_simulation(sim)}"
        return text

    def _add_residual(self, job: _Job, result: Any, new_layer: Any) -> None:
        from ..core.trust import lazy_residual
        from .residual import add_residual

        try:
            res = lazy_residual(self._read_layer(job.layer), result.data, result.metadata)
            method = (result.metadata.get("neurorestore") or {}).get("method", job.method)
            add_residual(self.viewer, job.layer, res,
                         {"restored_layer": new_layer.name, "method": method})
        except (ValueError, MemoryError) as e:
            self.show_error(f"Could not add the residual layer: {e}")

    def on_cancelled(self, job: _Job) -> None:
        if isinstance(job, LiveJob):  # the Live section's session
            return self.live.on_cancelled(job)
        head = job.reason or self.job_title(job) + " cancelled"
        if job.live is not None and job.live.shown_in(self.viewer):
            job.live.mark_partial(self.viewer)  # a partial result never looks finished
            self.set_status(job.live.cancelled_message(head))
        else:
            self.set_status(job.reason or f"{self.job_title(job)} cancelled; no layer was added.")
        self.progress_label.value = "cancelled"
        self.progress_bar.value = 0

    def on_finished(self, job: Job) -> None:
        if isinstance(job, LiveJob):  # the Live section's session
            return self.live.on_finished(job)
        outcome = job.outcome
        if not job.cancel.cancelled and outcome is not None and outcome.error is not None:
            self.progress_label.value = "failed"
            self.progress_bar.value = 0
            if job.live is not None:
                job.live.mark_partial(self.viewer)
        self.update_buttons()
