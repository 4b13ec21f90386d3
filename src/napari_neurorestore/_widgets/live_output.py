"""Large results: the streaming policy and the layer that shows a result while it is written.

A result larger than :data:`LARGE_RESULT_BYTES` (float32) is not held in memory: it streams
into a zarr store in :func:`results_folder` (chunk by chunk, tile by tile), and a layer
reading that store is added when inference starts, refreshed every
:data:`LIVE_REFRESH_SECONDS`, and becomes the result layer at the end (or keeps the frames
done so far when the run is cancelled).

:func:`result_grid` is the one place that knows each method's output grid (shape, scale
factors, translate shift) before a run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layers import result_layer_kwargs, unique_name

#: results larger than this (float32 bytes) are streamed into a zarr store in
#: :func:`results_folder` and shown as a layer while they are being written
LARGE_RESULT_BYTES = 2**30
#: seconds between refreshes of a result layer that is being written
LIVE_REFRESH_SECONDS = 1.0


def results_folder() -> Path:
    """Where large results are written: ``$NEURORESTORE_RESULTS_DIR``, else
    ``$XDG_CACHE_HOME/napari-neurorestore/results`` (``~/.cache/...``)."""
    env = os.environ.get("NEURORESTORE_RESULTS_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "napari-neurorestore" / "results"


def result_grid(method: str, shape: tuple[int, ...], params: Any) -> tuple | None:
    """(output shape, scale factors, translate shift) of ``method``'s result of an input of
    ``shape`` with ``params``: None for the input's own grid's factors/shift; the whole
    answer None when unknown before the run (a sparse simulation) or for an unknown method.

    Each method knows its grid (``Method.grid`` in the registry)."""
    from ..core.methods import get, names

    if method not in names() or not get(method).streams(params):
        return None  # e.g. a sparse simulation: its grid is known only after the run
    g = get(method).grid(tuple(int(s) for s in shape), params)
    return tuple(g.shape), g.scale_factors, g.translate_shift


def is_large(grid: tuple | None) -> bool:
    """Whether a result on ``grid`` (from :func:`result_grid`) is streamed to a store."""
    import numpy as np

    return grid is not None and 4 * int(np.prod(grid[0])) >= LARGE_RESULT_BYTES


def streams(grid: tuple | None) -> bool:
    """Whether a result on ``grid`` would be streamed here (large, and zarr installed)."""
    return importlib.util.find_spec("zarr") is not None and is_large(grid)


@dataclass
class LiveOutput:
    """A zarr store a result streams into, and the layer showing it while it is written."""

    store: Any
    path: Path
    scale_factors: Any = None
    translate_shift: Any = None
    layer: Any = None
    last_refresh: float = 0.0
    #: set when the viewer refused the live layer (the result is still written)
    failed: bool = False
    #: (source layer name, suffix) of the layer's name
    title: tuple[str, str] = ("", "")

    @classmethod
    def open_for(cls, layer_name: str, method: str, grid: tuple | None,
                 chunk_frames: int | None = None) -> LiveOutput | None:
        """A new store in :func:`results_folder` for a large result on ``grid``; None for a
        small result or without zarr installed (the result is then held in memory)."""
        if not is_large(grid):
            return None
        from ..core import io

        try:
            io._require("zarr")
        except ImportError:
            return None
        shape, factors, shift = grid
        folder = results_folder()
        folder.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", layer_name).strip("_") or "layer"
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{method}"
        path, i = folder / f"{base}.zarr", 2
        while path.exists():
            path, i = folder / f"{base}-{i}.zarr", i + 1
        store = io.open_output(path, tuple(shape), chunks=chunk_frames or 64,
                               metadata={"neurorestore": {"source_layer": layer_name}})
        return cls(store, path, factors, shift)

    def show(self, viewer: Any, source_layer: Any, suffix: str) -> None:
        """Add (once) and refresh the layer of the result being written."""
        if self.layer is None:
            if source_layer not in viewer.layers:
                return
            kwargs = result_layer_kwargs(
                source_layer, {"neurorestore": {"store": str(self.path), "partial": True}},
                suffix, scale_factors=self.scale_factors, translate_shift=self.translate_shift)
            kwargs["name"] = unique_name(viewer, kwargs["name"])
            self.title = (source_layer.name, suffix)
            self.layer = viewer.add_image(self.store, **kwargs)
            self.last_refresh = time.perf_counter()
        elif time.perf_counter() - self.last_refresh > LIVE_REFRESH_SECONDS:
            self.layer.refresh()
            self.last_refresh = time.perf_counter()

    def shown_in(self, viewer: Any) -> bool:
        return self.layer is not None and self.layer in viewer.layers

    def finish(self, viewer: Any, kwargs: dict) -> Any:
        """The finished result's layer: the live layer, given the result's metadata (and its
        store); None when it is not shown (the caller then adds the result)."""
        if not self.shown_in(viewer):
            return None
        kwargs["metadata"]["neurorestore"]["store"] = str(self.path)
        self.layer.metadata = kwargs["metadata"]
        self.layer.refresh()
        return self.layer

    def progress(self) -> tuple[int, Any, str]:
        """(done, total, unit) of the store's progress record ("frames", "tiles", ...)."""
        from ..core.zarr_io import output_progress

        prog = output_progress(self.store) or {}
        unit = next((k[:-5] for k in prog if k.endswith("_done")), "frames")
        return int(prog.get(f"{unit}_done", 0)), prog.get(f"{unit}_total", "?"), unit

    def mark_partial(self, viewer: Any) -> None:
        """Name the shown layer of an unfinished result as partial, with how much of it was
        written (``movie [denoised, partial 448/1100]``), and record that in its metadata."""
        if not self.shown_in(viewer):
            return
        done, total, unit = self.progress()
        source, suffix = self.title
        what = f"{done}/{total}" + ("" if unit == "frames" else f" {unit}")
        md = self.layer.metadata.setdefault("neurorestore", {})
        md.update({"partial": True, f"{unit}_done": done, f"{unit}_total": total})
        name = f"{source} [{suffix}, partial {what}]"
        if self.layer.name != name:
            self.layer.name = unique_name(viewer, name)

    def cancelled_message(self, head: str) -> str:
        """What a cancelled run left: ``head`` and how many frames the layer keeps."""
        done, total, unit = self.progress()
        self.layer.refresh()
        return (f"{head}: {done} of {total} {unit} were restored; layer '{self.layer.name}' "
                f"keeps them (the others show as NaN); store: {self.path}")
