"""Output-path rules, each written once: never write over an input or another output of
the same call, known output types only, the temporary name of an unfinished TIFF, and the
checks made before any work (folder, free space, an existing store). ``core.io`` re-exports
every name here."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, require


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to overwrite an existing file unless asked; check the folder is writable."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; choose another name or pass --overwrite")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or not _can_create(parent):
        raise PermissionError(f"output folder {parent} is not writable")
    return p


def _can_create(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (a read-only mount, or a folder of
    /proc, refuses even root, whom ``os.access`` always lets through)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def is_zarr_path(path: str | os.PathLike) -> bool:
    """True for ``*.zarr`` paths and for folders that hold a zarr store."""
    p = Path(path)
    if p.suffix.lower() == ".zarr":
        return True
    return p.is_dir() and any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json"))


#: the file types a restoration writes (``-o``)
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr")
#: the infix of a TIFF output while it is written (renamed into place when complete)
INCOMPLETE = ".incomplete"


def resolved(path: str | os.PathLike) -> Path:
    """``path`` made absolute with its symlinks followed (also for paths that do not exist
    yet), so ``./x``, ``x`` and a link to ``x`` compare equal."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def _overlap(a: Path, b: Path) -> bool:
    """Whether writing ``a`` can touch ``b``: the same path, one inside the other (a file
    of a zarr store, a store that holds the other), or the same file by another name."""
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct(outputs: Sequence[tuple[str, Any]], inputs: Sequence[tuple[str, Any]]
                   ) -> None:
    """Refuse, with or without ``--overwrite``, an output that is an input (or a model being
    loaded, or inside an input's zarr store, or holds one) or the same path as another
    output of the call. ``outputs``/``inputs``: (flag or role, path) pairs; None paths are
    skipped."""
    from .acquisition import split_selection

    seen: list[tuple[str, Any, Path]] = []
    # an input's channel/plane choice (movie.tif:c1:z0) names the file movie.tif
    ins = [(what, p, resolved(split_selection(p)[0])) for what, p in inputs
           if p is not None and str(p)]
    for flag, o in outputs:
        if o is None or not str(o):
            continue
        ro = resolved(o)
        for what, p, rp in ins:
            if _overlap(ro, rp):
                raise InputError(f"{flag} {o} would write over the {what} {p}; an input is "
                                 f"never replaced (not even with --overwrite): choose "
                                 f"another output name")
        for flag2, o2, ro2 in seen:
            if _overlap(ro, ro2):
                raise InputError(f"{flag} {o} and {flag2} {o2} are the same file: give each "
                                 f"output its own name")
        seen.append((flag, o, ro))


def check_output_suffix(path: str | os.PathLike, flag: str = "-o",
                        allowed: Sequence[str] = OUTPUT_SUFFIXES) -> None:
    """Refuse an output name whose type we do not write (e.g. ``.png``, ``.h5``, none)."""
    suffix = Path(os.fspath(path).rstrip("/\\")).suffix.lower()
    if suffix not in allowed:
        raise InputError(f"{flag} {path}: unknown output type "
                         f"{suffix or '(no extension)'}; use {', '.join(allowed)}")


def incomplete_path(path: str | os.PathLike) -> Path:
    """Where a TIFF output is written until it is complete: ``OUT.incomplete.tif`` next to
    ``OUT.tif`` (the same folder, so the final rename is atomic)."""
    p = Path(path)
    name = p.name
    for ext in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(ext):
            return p.with_name(name[: -len(ext)] + INCOMPLETE + name[-len(ext):])
    return p.with_name(name + INCOMPLETE)


def check_free_space(folder: str | os.PathLike, nbytes: int, what: str = "the output",
                     fraction: float = 1.0) -> None:
    """Refuse to start when ``folder``'s disk has less than ``fraction * nbytes`` free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < fraction * nbytes:
        raise OSError(f"not enough free disk space for {what}: needs about "
                      f"{nbytes / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free in {folder}")


def check_output_target(path: str | os.PathLike, shape: tuple[int, ...],
                        overwrite: bool = False, compress: bool = True) -> Path:
    """All the checks :func:`open_output` makes, without creating anything: call it before
    training so a bad output path, a missing zarr or a full disk fail before any work."""
    p = check_output_path(path, overwrite)
    nbytes = int(np.prod(shape)) * 4
    folder = p.parent if str(p.parent) else Path(".")
    if is_zarr_path(p) and p.suffix.lower() not in (".tif", ".tiff"):
        require("zarr")
        if p.is_dir() and not any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json")):
            raise FileExistsError(f"{p} is a folder that is not a zarr store; refusing to "
                                  f"replace it (choose another output name)")
        check_free_space(folder, nbytes, str(p), fraction=0.5 if compress else 1.0)
    else:
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a folder; give the output a file name (OUT.tif)")
        check_free_space(folder, nbytes, str(p))
    return p


def _remove_existing(p: Path) -> None:
    """Delete an existing output (``--overwrite``): a file, or a folder that is a zarr store."""
    if p.is_dir():
        if not any((p / m).exists() for m in (".zarray", ".zgroup", "zarr.json")):
            raise FileExistsError(f"{p} is a folder that is not a zarr store; refusing to "
                                  f"delete it (choose another output name)")
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


