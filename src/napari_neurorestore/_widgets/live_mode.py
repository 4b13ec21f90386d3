"""Live mode of the Restore dock: denoise a folder's TIFF files while they are acquired.

:func:`live_task` drives :func:`core.live.watch` (the loop of ``neurorestore live``) in the
dock's worker thread and yields a :class:`LiveUpdate` per core progress message: the newest
denoised frame (read back from the store), the raw frame of that index (the core's
``on_file`` hook) and a lazy dask view of the store's frames 0:done; the UI thread only
assigns them to three layers (the traces dock follows their data events):

* ``<folder> live session``: every restored frame, lazy over the store (browsable);
* ``<folder> live denoised`` and ``<folder> live raw``: the newest frame, placed beside it.

Stop (or the dock's Cancel) sets the cancel token; the core then restores the frames that
waited for the next file and marks the store complete, in the worker thread, also when the
worker closes the task at a yield. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import Container, FileEdit, FloatSpinBox, PushButton

from ..core.methods import live_methods
from ..core.progress import CancelToken, Progress
from .base import Job
from .dock_layout import Section
from .layers import unique_name
from .worker import EXPECTED_ERRORS, TaskOutcome, sync_from_env

#: what the three live layers are called after the folder's name
LIVE_LAYERS = {"session": "live session", "denoised": "live denoised", "raw": "live raw"}
GAP_PIXELS = 4  #: between the session layer and the newest frames beside it


@dataclass
class LiveUpdate:
    """One progress message of a live session (arrays None when no new frame was restored)."""

    progress: Progress
    done: int = 0
    total: int = 0
    raw: np.ndarray | None = None
    denoised: np.ndarray | None = None
    session: Any = None  #: dask array over the store, frames 0:done
    scale: tuple[float, ...] = (1.0, 1.0, 1.0)


@dataclass
class _Session:
    """State shared by the task (worker thread) and the UI: what to show at the end too."""

    blocks: list = field(default_factory=list)  #: (first index, raw frames) of recent files
    done: int = 0
    scale: tuple[float, ...] = (1.0, 1.0, 1.0)
    result: Any = None  #: the core's LiveResult, once the session ended

    def raw_frame(self, i: int) -> np.ndarray | None:
        return next((f[i - a] for a, f in self.blocks if a <= i < a + len(f)), None)


def _pixel_scale(path: Path) -> tuple[float, ...]:
    """(t, y, x) pixel sizes of an acquisition file (1 where it records none)."""
    try:
        import tifffile

        from ..core.ome import tiff_pixel_sizes

        with tifffile.TiffFile(str(path)) as tf:
            s = tiff_pixel_sizes(tf)
        return tuple(float(s.get(a, 1.0)) for a in "TYX")
    except Exception:  # noqa: BLE001 -- a calibration is a courtesy
        return (1.0, 1.0, 1.0)


def read_back(output: Path, s: _Session) -> LiveUpdate | None:
    """The newest restored frame and a lazy view of frames 0:``s.done`` of the store."""
    if s.done <= 0 or not Path(output).exists():
        return None
    import dask.array as da

    from ..core.zarr_io import output_array

    z = output_array(output, mode="r")  # opened again: the writer resized it
    session = da.from_zarr(z, chunks=(z.chunks[0], *z.shape[1:]))[: s.done]
    return LiveUpdate(Progress("live", s.done, s.done), s.done, s.done, s.raw_frame(s.done - 1),
                      np.asarray(z[s.done - 1]), session, s.scale)


def live_task(folder: str, output: str, model: Any, cancel: CancelToken, idle_timeout: float,
              session: _Session) -> Generator[LiveUpdate, None, TaskOutcome]:
    """Run :func:`core.live.watch` and yield a :class:`LiveUpdate` per progress message."""
    import dask.threaded  # noqa: F401 -- imported here, not in the UI's first slice

    from ..core.live import watch

    s = session

    def on_file(rec: Any, frames: np.ndarray) -> None:
        if not s.blocks:
            s.scale = _pixel_scale(Path(folder) / rec.name)
        s.blocks.append((rec.first, frames))
        s.blocks = [b for b in s.blocks if b[0] + len(b[1]) >= s.done]

    def on_frames(a: int, b: int) -> None:
        s.done = b

    gen = watch(folder, output, model, idle_timeout=idle_timeout, cancel=cancel,
                on_file=on_file, on_frames=on_frames)
    shown = 0
    try:
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                s.result = stop.value
                break
            upd = (read_back(output, s) if s.done > shown else None) or LiveUpdate(p, s.done)
            shown = s.done
            upd.progress, upd.total = p, p.total
            yield upd
        if s.done > shown:
            yield read_back(output, s)
    except GeneratorExit:  # the worker stopped at a yield: finish the store here
        cancel.cancel()
        while s.result is None:
            try:
                next(gen)
            except StopIteration as stop:
                s.result = stop.value
                break
        raise
    except EXPECTED_ERRORS as exc:
        return TaskOutcome(error=exc)
    return TaskOutcome(result=s.result)


@dataclass
class LiveJob(Job):
    """A live session of the Restore dock."""

    folder: Path = Path()
    output: Path = Path()
    session: _Session = field(default_factory=_Session)
    layers: dict = field(default_factory=dict)  #: "session"/"denoised"/"raw" -> layer


def default_output(folder: Path) -> Path:
    """``<folder>_denoised.zarr`` next to the folder (``_2``, ... when it exists)."""
    base = folder.parent / f"{folder.name}_denoised"
    path, i = base.with_suffix(".zarr"), 2
    while path.exists():
        path, i = Path(f"{base}_{i}.zarr"), i + 1
    return path


class LiveMode:
    """The "Live…" section of a Restore dock: folder, output store, Start / Stop."""

    def __init__(self, dock: Any) -> None:
        self.dock = dock
        self.folder_edit = FileEdit(label="folder", mode="d")
        self.folder_edit.tooltip = "The folder the acquisition program writes TIFF files into."
        self.output_edit = FileEdit(label="output", mode="w", filter="*.zarr")
        self.output_edit.tooltip = "The zarr store (default: <folder>_denoised.zarr beside it)."
        self.idle_spin = FloatSpinBox(label="idle timeout (s)", value=60.0, min=0.0, max=86400.0,
                                      step=5.0, tooltip="End after this long without a new file (0: "
                                      "only on Stop).")
        self.start_button = PushButton(text="Start live", tooltip="Denoise the folder's files "
                                       "as they arrive, with the trained or loaded model.")
        self.stop_button = PushButton(text="Stop", tooltip="End the session (the store is "
                                      "finished and complete).")
        self.container = Container(widgets=[self.folder_edit, self.output_edit, self.idle_spin,
                                            self.start_button, self.stop_button])
        self.box = Section("Live…")
        self.box.addWidget(self.container.native)
        self._auto_output = ""
        self.folder_edit.changed.connect(self._on_folder)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)

    @staticmethod
    def _text(edit: FileEdit) -> str:  # "" when empty (FileEdit.value would say ".")
        return str(edit.line_edit.value).strip()

    def _on_folder(self, *_: Any) -> None:
        folder, out = self._text(self.folder_edit), self._text(self.output_edit)
        if folder and (not out or out == self._auto_output):
            self._auto_output = str(default_output(Path(folder)))
            self.output_edit.value = self._auto_output

    def update_buttons(self, busy: bool, method: str) -> None:
        self.box.setVisible(method in live_methods())
        self.start_button.enabled = not busy
        self.stop_button.enabled = busy and isinstance(self.dock.job, LiveJob)
        for w in (self.folder_edit, self.output_edit, self.idle_spin):
            w.enabled = not busy

    # ------------------------------------------------------------------ actions
    def start(self, *_: Any) -> Any:
        """Start a live session; returns the worker, or None when refused (status says why)."""
        from ..core.errors import InputError
        from ..core.live import check_live_output

        d = self.dock
        if d._alive.closed or d.refuse_if_busy():
            return None
        model = d.model
        if model is None or model.method not in live_methods():
            what = "there is none" if model is None else f"this is a {model.method!r} model"
            d.refuse(f"Live needs a {' or '.join(live_methods())} model ({what}): train one "
                     f"(Train) or load one (Load model…).")
            return None
        folder = Path(self._text(self.folder_edit) or ".")
        if not self._text(self.folder_edit) or not folder.is_dir():
            d.refuse(f"Live: choose an existing folder to watch (got '{folder}').")
            return None
        out = Path(self._text(self.output_edit) or default_output(folder))
        try:
            check_live_output(folder, out)
        except (InputError, OSError) as e:
            d.refuse(f"Live not started: {e}")
            return None
        idle = float(self.idle_spin.value) or float("inf")
        if idle == float("inf") and (sync_from_env() if d.sync is None else d.sync):
            d.refuse("Live with inline workers (NEURORESTORE_SYNC_WORKER) needs an idle timeout.")
            return None
        job = LiveJob("live", folder=folder, output=out)
        d.progress_bar.value = 0
        d.progress_label.value = "live: starting…"
        return d.start_job(job, live_task, str(folder), str(out), model, job.cancel, idle,
                           job.session, status=f"Live: watching {folder} -> {out.name}…")

    def stop(self, *_: Any) -> bool:
        """End the running live session (the core finishes the store in the worker)."""
        if not isinstance(self.dock.job, LiveJob):
            self.dock.set_status("No live session to stop.")
            return False
        return self.dock.cancel()

    # ------------------------------------------------------------------ job hooks
    def on_progress(self, job: LiveJob, upd: LiveUpdate) -> None:
        d = self.dock
        d.progress_label.value = upd.progress.message or f"live: {upd.done} frames restored"
        d.progress_bar.value = int(d.progress_bar.max * upd.done / max(upd.total, 1))
        if upd.denoised is not None:
            self.show(job, upd)

    def show(self, job: LiveJob, upd: LiveUpdate) -> None:
        """Add the live layers (again, when the user deleted one mid-session), then give
        them the newest frames and the grown store."""
        viewer = self.dock.viewer
        arrays = {"session": upd.session, "denoised": upd.denoised, "raw": upd.raw}
        for k, (role, suffix) in enumerate(LIVE_LAYERS.items()):
            data, layer = arrays[role], job.layers.get(role)
            if data is None:
                continue
            if layer is not None and layer in viewer.layers:
                layer.data = data
                continue
            w = upd.denoised.shape[-1]
            sy, sx = upd.scale[-2:]
            limits = np.nanpercentile(upd.denoised if role != "raw" else data, [0.5, 99.5])
            limits = (float(limits[0]), float(limits[1]) + (limits[1] <= limits[0]))
            grid = ({"scale": upd.scale} if role == "session" else
                    {"scale": (sy, sx), "translate": (0.0, k * (w + GAP_PIXELS) * sx)})
            md = {"neurorestore": {"store": str(job.output), "source_folder": str(job.folder),
                                   "live": True}}
            job.layers[role] = viewer.add_image(
                data, name=unique_name(viewer, f"{job.folder.name} {suffix}"), **grid,
                contrast_limits=limits, metadata=md, colormap="gray")

    def on_result(self, job: LiveJob, res: Any) -> None:
        """The session's summary (the core's LiveResult; None when it never started); the
        store is named only when a file arrived to create it."""
        if res is None:
            self.dock.set_status(f"Live session stopped before it started watching "
                                 f"{job.folder.name}: no file arrived, no store was created.")
            return
        store = (f"Store: {job.output}" if job.output.exists()
                 else "No file arrived, so no store was created.")
        text = f"{res.summary()}\n{store}"
        if res.error:
            self.dock.show_error(f"Live stopped: {res.error}\n{text}")
        else:
            self.dock.set_status(text)

    def on_cancelled(self, job: LiveJob) -> None:
        self.on_result(job, job.session.result)
        self.dock.progress_label.value = "live: stopped"

    def on_finished(self, job: LiveJob) -> None:
        """The session ended (idle, Stop, error): show the store as it is, complete."""
        try:
            upd = read_back(job.output, job.session)
            if upd is not None:
                self.show(job, upd)
        except Exception as e:  # noqa: BLE001 -- the store is on disk either way
            self.dock.show_error(f"Live: could not show the store {job.output}: {e}")
        self.dock.update_buttons()
