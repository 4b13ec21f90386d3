"""A suite2p plane folder out: ``neurorestore denoise suite2p/plane0 -o denoised/plane0``.

``-o`` names a folder (a path without an extension, or one ending in ``/``) or a
``.../data.bin``; the input must be a suite2p plane folder (``ops.npy`` or
``settings.npy`` with ``data.bin``). The output folder gets:

* ``data.bin``: the restored movie, int16 (nframes, Ly, Lx) in suite2p's raw layout, in
  the input's units and offset (rounded to nearest, clipped; see :mod:`.out_types`);
* a copy of the input's ``ops.npy``, ``db.npy``, ``settings.npy`` and ``reg_outputs.npy``
  (those present), their paths (``reg_file``, ``save_path``, ``db_path``, ...) pointing at
  the new folder, so that suite2p's detection and extraction run on it unchanged
  (``suite2p.run_plane(db, settings, db_path=...)``, or the GUI on its ``ops.npy``);
* ``neurorestore.json``: the provenance.

The registered ``data.bin`` is only read: ``-o`` equal to the input folder, inside it or
holding it is refused even with ``--overwrite``. The movie is written as
``data.incomplete.bin`` and renamed when complete, and the ops are written last: a
stopped run leaves a folder that suite2p (and our reader) does not take for a plane.
suite2p's detection outputs of the input (``stat.npy``, ``F.npy``, ...) are not copied:
they belong to the raw movie.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

#: the files of a plane folder that describe its movie (copied, their paths updated)
PLANE_FILES = ("ops.npy", "db.npy", "settings.npy", "reg_outputs.npy")
#: the keys of those files that name a path in the plane folder
PATH_KEYS = ("reg_file", "reg_file_chan2", "save_path", "db_path", "settings_path",
             "ops_path", "fast_disk")
TEMP_NAME = "data.incomplete.bin"
PROVENANCE = "neurorestore.json"


def is_plane_target(output: str | os.PathLike) -> bool:
    """Whether ``-o output`` asks for a suite2p plane folder: ``.../data.bin``, a path
    ending in ``/``, or a path without an extension."""
    s = os.fspath(output)
    p = Path(s.rstrip("/\\"))
    if p.name == "data.bin":
        return True
    if p.suffix.lower() in (".zarr", ".tif", ".tiff"):
        return False
    return s.endswith(("/", "\\")) or p.suffix == ""


def plane_folder(output: str | os.PathLike) -> Path:
    p = Path(os.fspath(output).rstrip("/\\"))
    return p.parent if p.name == "data.bin" else p


def check_plane_target(output: str | os.PathLike, nbytes: int, overwrite: bool) -> Path:
    """Refuse, before any work, a plane-folder output that exists (without ``overwrite``),
    is a file, or lies where nothing can be written."""
    from .paths import check_free_space

    folder = plane_folder(output)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"-o {output}: {folder} is a file, not a folder")
    ours = [n for n in (*PLANE_FILES, "data.bin") if (folder / n).exists()]
    if ours and not overwrite:
        raise FileExistsError(f"{folder} already holds a suite2p plane ({', '.join(ours)}); "
                              f"choose another folder or pass --overwrite")
    base = folder
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir() or not os.access(base, os.W_OK):
        raise PermissionError(f"output folder {base} is not writable")
    check_free_space(base, nbytes, str(folder / "data.bin"))
    return folder


def check_plane_input(src: str | os.PathLike, in_shape: tuple[int, ...],
                      out_shape: tuple[int, ...], dtype: Any, output: Any) -> None:
    """Refuse a plane-folder output of an input that is not a suite2p plane folder, of a
    method that changes the frame size, or of a type other than int16."""
    from .acquisition import is_suite2p_folder

    p = Path(os.fspath(src).rstrip("/\\"))
    if not (is_suite2p_folder(p) or (p.name == "data.bin" and is_suite2p_folder(p.parent))):
        raise InputError(f"-o {output} (a folder) writes a suite2p plane folder, from a "
                         f"suite2p plane folder input; {src} is not one: use -o OUT.tif or "
                         f"OUT.zarr")
    if tuple(out_shape) != tuple(in_shape) or len(in_shape) != 3:
        raise InputError(f"-o {output}: a suite2p plane folder keeps the movie's (frames, "
                         f"Ly, Lx) {tuple(in_shape)}, and this output is "
                         f"{tuple(out_shape)}: use -o OUT.tif or OUT.zarr")
    if np.dtype(dtype) != np.int16:
        raise InputError(f"-o {output}: suite2p's data.bin holds int16, not "
                         f"{np.dtype(dtype).name}: leave out --dtype (or --dtype int16)")


def source_folder(md: dict | None) -> Path | None:
    src = ((md or {}).get("neurorestore") or {}).get("source")
    if not src:
        return None
    p = Path(str(src).rstrip("/\\"))
    return p.parent if p.name == "data.bin" else p


def open_plane_output(output: str | os.PathLike, shape: tuple[int, ...],
                      overwrite: bool = False, metadata: dict | None = None,
                      dtype: Any = np.int16, memmap_class: type = np.memmap) -> np.memmap:
    """The plane folder's ``data.incomplete.bin`` memory-mapped for writing (int16, zeros);
    :func:`~.io.finish_output` renames it to ``data.bin`` and then writes the ops (from
    the input folder named in ``metadata["neurorestore"]["source"]``) and the provenance.
    ``memmap_class``: the memmap's class (:class:`~.io.ReleasingMemmap`)."""
    if np.dtype(dtype) != np.int16:
        raise InputError(f"-o {output}: suite2p's data.bin holds int16, not "
                         f"{np.dtype(dtype).name}")
    shape = tuple(int(s) for s in shape)
    folder = check_plane_target(output, int(np.prod(shape)) * 2, overwrite)
    src = source_folder(metadata)
    if src is not None and src.resolve() == folder.resolve():  # never over the input
        raise InputError(f"-o {output} is the input folder; choose another folder")
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*PLANE_FILES, "data.bin", PROVENANCE, TEMP_NAME):  # --overwrite: ours
        (folder / name).unlink(missing_ok=True)
    temp = folder / TEMP_NAME
    mm = np.memmap(temp, dtype=np.int16, mode="w+", shape=shape).view(memmap_class)
    md = json.loads(json.dumps(metadata or {}, default=str))
    mm.__dict__.update({"_final_path": folder / "data.bin", "_temp_path": temp,
                        "_metadata": md,
                        "_on_finish": lambda: write_plane_files(src, folder, shape, md)})
    return mm


def _moved(value: Any, old: Path | None, new: Path) -> Any:
    """A path of the input folder (or the folder itself) moved to the new folder; other
    values as they are."""
    if not isinstance(value, (str, os.PathLike)) or old is None:
        return value
    v = Path(value)
    try:
        rel = v.resolve().relative_to(old.resolve())
    except (ValueError, OSError):
        return value
    return str((new / rel).resolve())


def write_plane_files(src: Path | None, folder: Path, shape: tuple[int, ...],
                      metadata: dict) -> None:
    """The plane's ops (copied from ``src``, paths moved, ``nframes``/``Ly``/``Lx`` set)
    and the provenance; ``ops.npy`` last."""
    (folder / PROVENANCE).write_text(json.dumps(metadata, indent=1, default=str))
    nframes, ly, lx = (int(s) for s in shape)
    names = [n for n in PLANE_FILES if src is not None and (src / n).is_file()]
    if "ops.npy" not in names:
        names.append("ops.npy")
    for name in sorted(names, key=lambda n: n == "ops.npy"):
        d: dict[str, Any] = {}
        if src is not None and (src / name).is_file():
            loaded = np.load(src / name, allow_pickle=True)
            d = dict(loaded.item()) if loaded.dtype == object and loaded.ndim == 0 else {}
        d = {k: _moved(v, src, folder) for k, v in d.items()}
        if name in ("ops.npy", "db.npy") or "Ly" in d:
            d.update(nframes=nframes, Ly=ly, Lx=lx, reg_file=str((folder / "data.bin")
                                                                 .resolve()),
                     save_path=str(folder.resolve()))
        if name == "db.npy":
            d["db_path"] = str((folder / "db.npy").resolve())
        if name in ("ops.npy", "db.npy"):
            d["neurorestore"] = metadata.get("neurorestore", {})
        np.save(folder / name, d, allow_pickle=True)
