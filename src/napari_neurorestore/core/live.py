"""Live denoising during acquisition: watch a folder of TIFF files (ScanImage's "frames per
file") and restore each new file's frames into one zarr store that grows along time.

No Qt. :func:`watch` is a generator of :class:`~napari_neurorestore.core.progress.Progress`
like the rest of the core; it returns a :class:`LiveResult`.

How a file is known to be complete. Files are taken in (natural) name order, one at a time.
The head file is read when either the next file (in name order) has appeared (acquisition
programs close a file before they open the next), or its size and modification time have
not changed for ``settle`` seconds; and then only if tifffile reads every page. A file that
appears by rename is complete at once; one written in place grows, which resets the settle
clock. A file that still cannot be read once the next one exists, or after ``corrupt_grace``
seconds of stability, is skipped with a message (and counted); the files after it go on. A
file that changes after it was read is reported (its extra frames are not restored).

How the temporal window crosses files. Frame t is restored from frames t-k..t+k
(k = window // 2). When a file arrives, the frames up to ``arrived - k`` are restored (the
first frames of the session mirror about the centre frame, as offline inference does); the
file's last k frames wait for the next file's first frames. Only the raw frames from
``done - max(k + 1, W)`` on are kept (W: the widest past window of the causal step below).
When the session ends (idle timeout, cancel, Ctrl-C, a file of another frame size) the
waiting frames are restored with the mirror rule at the movie's end, so the store equals
:func:`core.methods.denoise.heavy.predict` of the concatenated movie with
``context="causal", ensemble="off"`` (`neurorestore denoise --model M --causal-context
--ensemble off`). The model's full long-context step (``methods/denoise/context.py``) needs
the 64 frames after each one, so live mode applies its causal variant (means over past
frames and the k future frames the window waits for anyway), fitted beside the full step at
training time; a model saved without it runs without the step. The flip ensemble costs 8x
the network's time per frame, so live mode leaves it out. The provenance records the step
applied (``long_context_applied``: "causal" or "none").

Threads. ``threads=None`` (the CLI's default) measures the thread count over the session as
offline inference does (:class:`~napari_neurorestore.core.train.ThreadChooser`, one for the
session that each file's inference continues: 1 thread first, the machine's count tried
every 20 s and kept when faster): both cores when the machine is free, one when the
acquisition keeps it busy. After the first file the session reports the rate it keeps up
with at the frame size (frames restored per second of compute on that file).

Latency of a file: from its arrival (the later of its final mtime and ctime: the last write,
or the rename into the folder) to the moment all but its last k frames are in the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .io import check_finite, open_output
from .live_files import (
    _count_pages,
    _inside,
    _sig,
    is_acquisition_file,
    natural_key,
    read_frames,
)
from .paths import check_output_path
from .progress import CancelToken, Progress

PROGRESS_ATTR = "neurorestore_progress"
#: the most torch threads ``threads=None`` allows (the session measures if they beat one)
AUTO_THREADS = 8

@dataclass
class FileRecord:
    """One acquisition file: what happened to it."""

    name: str
    frames: int = 0
    first: int = 0  #: index of its first frame in the store
    arrival: float = 0.0  #: time.time() of its last write or rename
    latency: float | None = None  #: seconds from arrival to all but its last k frames restored
    status: str = "pending"  #: "restored", "skipped", "rejected"
    message: str = ""


@dataclass
class LiveResult:
    """The outcome of a live session (the store is complete and consistent in every case)."""

    output: Path | None
    frames_restored: int = 0
    frames_arrived: int = 0
    files: list[FileRecord] = field(default_factory=list)
    frames_skipped: int = 0  #: frames of skipped files, where tifffile could count them
    files_changed: list[str] = field(default_factory=list)  #: changed after they were read
    compute_seconds: float = 0.0  #: time spent restoring and writing
    elapsed: float = 0.0
    stopped: str = ""  #: "idle", "cancelled", "error"
    error: str | None = None
    end_after_last_file: float | None = None  #: seconds from the last file's arrival to the end
    shape: tuple[int, int] | None = None
    messages: list[str] = field(default_factory=list)
    first_rate: float | None = None  #: frames/s of compute on the first file restored
    threads: int = 1  #: torch threads in use at the end of the first file

    def margin(self) -> str:
        """The real-time margin measured on the first file (frames/s it keeps up with)."""
        h, w = self.shape or (0, 0)
        return (f"keeps up with {self.first_rate:.0f} frames/s at this frame size ({h}x{w}; "
                f"measured on the first file, {self.threads} torch thread(s))")

    @property
    def files_restored(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == "restored"]

    @property
    def files_skipped(self) -> list[FileRecord]:
        return [f for f in self.files if f.status in ("skipped", "rejected")]

    @property
    def fps(self) -> float:
        """Frames restored per second of compute (restoring + writing)."""
        return self.frames_restored / self.compute_seconds if self.compute_seconds else 0.0

    @property
    def latencies(self) -> list[float]:
        return [f.latency for f in self.files if f.latency is not None]

    def latency_percentile(self, q: float) -> float | None:
        lat = self.latencies
        return float(np.percentile(lat, q)) if lat else None

    def summary(self) -> str:
        p50, p95 = self.latency_percentile(50), self.latency_percentile(95)
        lat = ("latency p50 n/a" if p50 is None
               else f"latency per file p50 {p50:.2f} s, p95 {p95:.2f} s")
        lines = [f"live: {len(self.files_restored)} file(s), {self.frames_restored} of "
                 f"{self.frames_arrived} frames restored at {self.fps:.1f} frames/s; {lat}; "
                 f"stopped: {self.stopped}"]
        sk = self.files_skipped
        if sk or self.frames_arrived != self.frames_restored:
            lines.append(f"live: {len(sk)} file(s) skipped ({self.frames_skipped} frames "
                         f"known), {self.frames_arrived - self.frames_restored} accepted "
                         f"frame(s) not restored")
        for f in sk:
            lines.append(f"live: skipped {f.name}: {f.message}")
        for n in self.files_changed:
            lines.append(f"live: {n} changed after it was read; its new frames were not "
                         f"restored")
        if self.end_after_last_file is not None:
            lines.append(f"live: ended {self.end_after_last_file:.1f} s after the last file")
        return "\n".join(lines)


class _Head:
    """The stability state of the file being waited for."""

    def __init__(self, name: str, now: float):
        self.name = name
        self.sig: tuple | None = None
        self.stable_since = now
        self.stat: os.stat_result | None = None


def check_live_output(folder: Path, out_path: Path, overwrite: bool = False) -> None:
    """Raise (InputError, FileExistsError, ...) unless ``out_path`` can be the store of a
    session watching ``folder``: a ``.zarr`` outside the folder, new unless ``overwrite``."""
    if out_path.suffix.lower() != ".zarr":
        raise InputError(f"the live output must be a .zarr store, got {out_path.name}")
    if _inside(out_path, folder):
        raise InputError(f"the output {out_path} must not be inside the watched folder")
    check_output_path(out_path, overwrite)


def watch(folder: str | os.PathLike, output: str | os.PathLike, model: Any,
          idle_timeout: float = 30.0, cancel: CancelToken | None = None,
          overwrite: bool = False, settle: float = 0.25, poll: float = 0.02,
          corrupt_grace: float = 2.0, device: str = "cpu", chunk_frames: int = 16,
          batch_size: int | None = None, threads: int | None = None,
          on_frames: Callable[[int, int], None] | None = None,
          on_file: Callable[[FileRecord, np.ndarray], None] | None = None,
          clock: Callable[[], float] = time.time) -> Generator[Progress, None, LiveResult]:
    """Watch ``folder`` and restore its TIFF files into the zarr store ``output``.

    ``model`` is a denoising :class:`~napari_neurorestore.core.models.TrainedModel` (or a
    path to one). Ends after ``idle_timeout`` seconds without a new file (or growth of the
    file being written), or when ``cancel`` is set; then the waiting frames are restored and
    the progress record says ``complete``. A file of another frame size ends the session
    the same way, with ``LiveResult.error`` set. ``on_frames(a, b)`` is called when frames
    ``a:b`` are in the store (``a:b`` of the concatenated movie). The store is created when
    the first file is read (so a session without files leaves none). ``threads``: torch's
    intra-op threads while the session runs (restored after): 1 pins one thread (OpenMP
    threads that spin-wait on a busy CPU are slower than one: measured at 256x256 on 2 busy
    cores, load 6: 2 threads 3.5 frames/s, 1 thread 39 frames/s); None (default) up to the
    machine's cores (at most AUTO_THREADS), the session measuring whether more than one is
    faster (see the module's docstring).
    """
    from .device import resolve_device
    from .methods import get, live_methods
    from .methods.base import metadata_for
    from .models import TrainedModel, load_model

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    out_path = Path(output)
    check_live_output(folder, out_path, overwrite)
    if not isinstance(model, TrainedModel):
        model = load_model(model)
    if model.method not in live_methods():  # the methods that declare Method.live
        nouns = " or ".join(get(n).noun for n in live_methods())
        raise InputError(f"this is a {model.method!r} model, not {nouns}")
    cancel = cancel or CancelToken()
    method = get(model.method)
    dn = method.impl()  # the heavy module (torch): load_net and predict
    params = method.params_class.from_dict(model.params)
    k, window = params.half_window, params.window
    dev = resolve_device(device)
    net = dn.load_net(model, dev)
    # the causal long-context step (none for a model saved without it) and the raw frames
    # kept before the first frame to restore: its widest past window, or the net's k + 1
    live_context, reach, applied = method.live_context(model)
    past = max(k + 1, reach)
    context_run: dict = {}  # its running sums and pyramid, continued by each file

    res = LiveResult(output=None)
    t_start = clock()
    last_activity = t_start
    raw: np.ndarray | None = None  # frames buf_start:arrived of the concatenated movie
    buf_start = 0
    done = 0
    z = None
    waiting: list[FileRecord] = []  # files whose latency is not measured yet
    processed: dict[str, tuple] = {}  # name -> stat signature when read
    last_name: str | None = None
    head: _Head | None = None
    state = "running"

    def record(complete: bool) -> None:
        if z is None:
            return
        z.attrs[PROGRESS_ATTR] = {
            "frames_done": done, "frames_total": res.frames_arrived,
            "done_ranges": [[0, done]] if done else [], "complete": complete,
            "live": {"state": state, "files_restored": len(res.files_restored),
                     "files_skipped": [f.name for f in res.files_skipped],
                     "frames_skipped": res.frames_skipped,
                     "frames_waiting": res.frames_arrived - done}}

    def restore(stop: int, final: bool) -> None:
        """Restore frames done:stop (with the end mirror when ``final``) and write them."""
        nonlocal done, raw, buf_start
        if raw is None or stop <= done or len(raw) < window:
            return
        t0 = time.perf_counter()
        view = raw  # frames buf_start .. arrived; mirror at the ends of this view
        a, b = done - buf_start, stop - buf_start
        assert final or b + k <= len(view)
        assert buf_start == 0 or a >= k
        gen = dn.predict(view, model, cancel=CancelToken(), chunk_frames=max(b - a, 1),
                         batch_size=batch_size, device=str(dev), start=a, stop=b,
                         on_chunk=None, net=net, context=live_context, ensemble="off",
                         threads=chooser, context_state=context_run, origin=buf_start)
        out = _drain(gen)
        z.resize((stop, *z.shape[1:]))
        z[done:stop] = out[a:b]
        prev, done = done, stop
        res.frames_restored = done
        record(False)
        seconds = time.perf_counter() - t0
        res.compute_seconds += seconds
        if res.first_rate is None and seconds > 0:
            res.first_rate = (stop - prev) / seconds
            res.threads = chooser.current
        now = clock()
        for f in list(waiting):
            if f.first + max(f.frames - k, 0) <= done or final:
                f.latency = max(0.0, now - f.arrival)
                waiting.remove(f)
        keep = max(0, done - past)  # k neighbours and one more (predict needs a window),
        # or the causal step's past frames: frame `done` keeps all it reads before it
        raw = raw[keep - buf_start:].copy() if keep > buf_start else raw
        buf_start = max(buf_start, keep)
        if on_frames is not None:
            on_frames(prev, done)

    def finish(how: str) -> LiveResult:
        nonlocal state
        if raw is not None and res.frames_arrived > done:
            if res.frames_arrived < window:
                msg = (f"only {res.frames_arrived} frame(s) arrived but the temporal window "
                       f"needs {window}; nothing was restored")
                res.messages.append(msg)
            else:
                restore(res.frames_arrived, final=True)
        state = how
        res.stopped = how
        record(res.frames_restored == res.frames_arrived)
        end = clock()
        res.elapsed = end - t_start
        arrivals = [f.arrival for f in res.files if f.arrival]
        res.end_after_last_file = end - max(arrivals) if arrivals else None
        return res

    def skip(rec: FileRecord, msg: str, status: str = "skipped") -> Progress:
        rec.status, rec.message = status, msg
        res.files.append(rec)
        return Progress("live", done, res.frames_arrived, message=f"skipped {rec.name}: {msg}")

    import torch

    from .train import SessionThreads

    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads) if threads else min(AUTO_THREADS, os.cpu_count() or 1))
    chooser = SessionThreads(enabled=not threads and dev.type == "cpu")
    yield Progress("live", 0, 0, message=f"watching {folder} (idle timeout {idle_timeout:g} s)")
    try:
        while True:
            if cancel.cancelled:
                return finish("cancelled")
            now = clock()
            try:
                names = sorted((e.name for e in os.scandir(folder)
                                if is_acquisition_file(e.name) and e.is_file()), key=natural_key)
            except FileNotFoundError:
                names = []
            for n, sig in processed.items():
                if n in res.files_changed:
                    continue
                try:
                    st = os.stat(folder / n)
                except FileNotFoundError:
                    continue
                if (st.st_size, st.st_mtime_ns) != sig:
                    res.files_changed.append(n)
                    res.messages.append(f"{n} changed after it was read")
                    yield Progress("live", done, res.frames_arrived,
                                   message=f"warning: {n} changed after it was read; its new "
                                           f"frames are not restored")
            new = [n for n in names if n not in processed]
            if not new:
                if now - last_activity >= idle_timeout:
                    return finish("idle")
                time.sleep(poll)
                continue
            name = new[0]
            rec = FileRecord(name)
            if last_name is not None and natural_key(name) < natural_key(last_name):
                processed[name] = _sig(folder / name)
                last_activity = now
                yield skip(rec, f"it sorts before {last_name}, which was already restored")
                continue
            if head is None or head.name != name:
                head = _Head(name, now)
                last_activity = now
            try:
                st = os.stat(folder / name)
            except FileNotFoundError:
                head = None
                continue
            sig = (st.st_size, st.st_mtime_ns)
            if sig != head.sig:
                head.sig, head.stable_since, head.stat = sig, now, st
                last_activity = now
            next_exists = len(new) > 1
            stable = now - head.stable_since
            if not (next_exists or stable >= settle):
                time.sleep(poll)
                continue
            try:
                frames = read_frames(folder / name)
            except Exception as e:  # noqa: BLE001 -- any unreadable file is skipped, not fatal
                if next_exists or stable >= corrupt_grace:
                    processed[name] = sig
                    head = None
                    res.frames_skipped += _count_pages(folder / name)
                    yield skip(rec, f"cannot be read ({type(e).__name__}: {e})")
                    continue
                time.sleep(poll)
                continue
            if _sig(folder / name) != sig:  # grew while it was read
                continue
            processed[name] = sig
            last_name = name
            head = None
            rec.arrival = max(st.st_mtime, st.st_ctime)
            rec.frames = len(frames)
            shape = tuple(frames.shape[-2:])
            if res.shape is None:
                res.shape = shape
                z = open_output(out_path, (chunk_frames, *shape), overwrite=overwrite,
                                chunks=chunk_frames, axes="tyx",
                                metadata=metadata_for(model, {
                                    "mode": "live", "source_folder": str(folder),
                                    "long_context_applied": applied}))
                z.resize((0, *shape))
                res.output = out_path
            elif shape != res.shape:
                msg = (f"{name} has frames of {shape[0]}x{shape[1]} pixels, but the session's "
                       f"are {res.shape[0]}x{res.shape[1]}; stopped (the {res.frames_arrived} "
                       f"frames before it are kept in {out_path})")
                res.frames_skipped += len(frames)
                skip(rec, f"frames of {shape[0]}x{shape[1]} pixels", status="rejected")
                res.error = msg
                yield Progress("live", done, res.frames_arrived, message=f"error: {msg}")
                return finish("error")
            try:
                check_finite(frames.astype(np.float32, copy=False), name)
            except InputError as e:
                res.frames_skipped += len(frames)
                yield skip(rec, str(e))
                continue
            rec.status, rec.first = "restored", res.frames_arrived
            res.files.append(rec)
            waiting.append(rec)
            # integer frames are kept as they are (half the memory of float32; already
            # finite): predict converts what it reads
            block = frames if frames.dtype.kind in "iu" else frames.astype(np.float32)
            raw = block if raw is None else np.concatenate([raw, block])
            res.frames_arrived += len(frames)
            last_activity = clock()
            if on_file is not None:
                on_file(rec, frames)
            first_file = res.first_rate is None
            restore(res.frames_arrived - k, final=False)
            last_activity = clock()  # restoring is not idle time
            if first_file and res.first_rate is not None:
                yield Progress("live", done, res.frames_arrived, message=res.margin())
            if z is not None and done < res.frames_arrived and done == 0:
                record(False)
            lat = f", latency {rec.latency:.2f} s" if rec.latency is not None else ""
            yield Progress("live", done, res.frames_arrived,
                           message=f"{name}: {rec.frames} frames{lat}; {done} restored")
    except KeyboardInterrupt:
        finish("cancelled")
        raise
    finally:
        torch.set_num_threads(old_threads)


def _drain(gen: Generator) -> Any:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
