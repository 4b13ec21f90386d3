"""Acquisition formats in, lazily: suite2p's registered binary, ScanImage TIFFs with several
channels or planes, Scanbox ``.sbx`` (numpy and tifffile; sbxreader for Scanbox, imported
when needed: the ``scanbox`` extra).

* suite2p: a plane folder (``.../suite2p/plane0``) holding ``ops.npy`` (or
  ``settings.npy``) and ``data.bin``, int16 frames (nframes, Ly, Lx) -> a read-only memmap.
* ScanImage: the frames of a TIFF interleave channels (``SI.hChannels.channelSave``) and,
  with FastZ, planes (``SI.hStackManager.actualNumSlices``/``numSlices``, flyback frames
  included: ``numFramesPerVolumeWithFlyback``, else ``numSlices`` +
  ``SI.hFastZ.numDiscardFlybackFrames``). They are never read as one stack: a
  :class:`PageStack` reads the pages of one channel (t, y, x) for one plane, or
  (t, z, y, x) for all planes, and only those pages.
* Scanbox: ``sbxreader``'s memory map (frames, planes, channels, y, x), read one channel
  (and plane) at a time.

A channel or plane is chosen with a suffix of the path: ``movie.tif:c2`` (channel 2, as
ScanImage and Scanbox number them, from 1), ``movie.tif:z0`` (plane 0, from 0, as suite2p's
``plane0``), ``movie.tif:c2:z0``. A file with several channels opened without a choice is
refused (:class:`~.errors.InputError`, one line saying what to add); several planes without
a choice give (t, z, y, x).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["split_selection", "open_acquisition", "acquisition_layers", "PageStack",
           "is_suite2p_folder", "scanimage_layout"]

_SELECT = re.compile(r"^(?P<path>.+?)(?P<sel>(?::[cCzZ]\d+)+)$")
SCANBOX_HINT = 'pip install "napari-neurorestore[scanbox]"'


def split_selection(path: str | os.PathLike) -> tuple[Path, int | None, int | None]:
    """``movie.tif:c2:z0`` -> (movie.tif, 2, 0); a path without a suffix (or an existing
    file whose name ends like one) -> (path, None, None)."""
    s = str(path)
    m = _SELECT.match(s)
    if m is None or Path(s).exists():
        return Path(s), None, None
    channel = plane = None
    for part in m.group("sel").split(":")[1:]:
        kind, n = part[0].lower(), int(part[1:])
        if kind == "c":
            if channel is not None:
                raise InputError(f"{s}: two channels chosen")
            channel = n
        else:
            if plane is not None:
                raise InputError(f"{s}: two planes chosen")
            plane = n
    return Path(m.group("path")), channel, plane


# --------------------------------------------------------------------------- suite2p
def suite2p_ops(folder: Path) -> dict | None:
    """The ops (``ops.npy``, else ``settings.npy``) of a suite2p plane folder as a dict;
    None when it has neither (or they hold no dict)."""
    for name in ("ops.npy", "settings.npy"):
        if (folder / name).is_file():
            ops = np.load(folder / name, allow_pickle=True)
            return ops.item() if ops.dtype == object and ops.ndim == 0 else None
    return None


def is_suite2p_folder(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "data.bin").is_file() and (
        (p / "ops.npy").is_file() or (p / "settings.npy").is_file())


def open_suite2p(folder: Path) -> np.memmap:
    """suite2p's registered ``data.bin`` of a plane folder as a read-only (t, y, x) int16
    memmap, its size from the ops' Ly, Lx (and nframes, checked against the file's size)."""
    ops = suite2p_ops(folder)
    if not ops or "Ly" not in ops or "Lx" not in ops:
        raise InputError(f"{folder}: its ops.npy/settings.npy holds no Ly and Lx")
    ly, lx = int(ops["Ly"]), int(ops["Lx"])
    binary = folder / "data.bin"
    size = binary.stat().st_size
    frame = ly * lx * 2
    if size == 0 or size % frame:
        raise InputError(f"{binary} has {size} bytes, not a whole number of {ly}x{lx} int16 "
                         f"frames (Ly, Lx from the ops)")
    n = size // frame
    if "nframes" in ops and int(ops["nframes"]) != n:
        raise InputError(f"{binary} holds {n} frames of {ly}x{lx} but the ops say nframes = "
                         f"{int(ops['nframes'])}")
    return np.memmap(binary, dtype=np.int16, mode="r", shape=(n, ly, lx))


# --------------------------------------------------------------------------- ScanImage
def _as_list(v: Any) -> list:
    if v is None:
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        return [x for x in np.ravel(np.asarray(v, dtype=object))]
    return [v]


def scanimage_layout(tf: Any) -> dict | None:
    """How a ScanImage TIFF's pages interleave: channels (their numbers), planes, frames per
    volume (with flyback), whether planes are FastZ volumes; None if not ScanImage."""
    if not tf.is_scanimage:
        return None
    fd = (tf.scanimage_metadata or {}).get("FrameData") or {}
    if not fd:  # ScanImage also writes the frame data into every page's Software tag
        import tifffile

        try:
            fd = tifffile.matlabstr2py(tf.pages.first.software)
        except Exception:
            fd = {}
    if not isinstance(fd, dict) or "SI.hChannels.channelSave" not in fd:
        return None
    channels = [int(c) for c in _as_list(fd["SI.hChannels.channelSave"])]
    slices = int(fd.get("SI.hStackManager.actualNumSlices",
                        fd.get("SI.hStackManager.numSlices", 1)) or 1)
    mode = str(fd.get("SI.hStackManager.stackMode", "")).lower()
    fastz = bool(fd.get("SI.hFastZ.enable", False)) or (
        bool(fd.get("SI.hStackManager.enable", False)) and mode == "fast")
    per_volume = slices
    if fastz and slices > 1:
        with_flyback = fd.get("SI.hStackManager.numFramesPerVolumeWithFlyback")
        if with_flyback is not None:
            per_volume = int(with_flyback)
        elif fd.get("SI.hFastZ.discardFlybackFrames", False):
            per_volume = slices + int(fd.get("SI.hFastZ.numDiscardFlybackFrames", 0) or 0)
    frames_per_slice = int(fd.get("SI.hStackManager.framesPerSlice", 1) or 1)
    return {"channels": channels, "planes": max(1, slices), "per_volume": per_volume,
            "fastz": fastz, "frames_per_slice": frames_per_slice}


def scanimage_pages(layout: dict, n_pages: int, channel_index: int) -> np.ndarray:
    """The page of (t, z) for one channel: an int array of shape (t, z)."""
    nch, nz = len(layout["channels"]), layout["planes"]
    if nz > 1 and not layout["fastz"]:  # a slow stack: all frames of a plane, then the next
        nt = layout["frames_per_slice"]
        t, z = np.meshgrid(np.arange(nt), np.arange(nz), indexing="ij")
        pages = (z * nt + t) * nch + channel_index
    else:
        nt = n_pages // (layout["per_volume"] * nch)
        t, z = np.meshgrid(np.arange(nt), np.arange(nz), indexing="ij")
        pages = (t * layout["per_volume"] + z) * nch + channel_index
    if pages.size == 0 or pages.max() >= n_pages:
        raise InputError(f"its {n_pages} pages do not hold whole volumes of {nz} plane(s) x "
                         f"{nch} channel(s) (ScanImage metadata)")
    return pages


class PageStack:
    """A lazy array over chosen pages of a TIFF: ``pages`` (an int array, e.g. (t,) or
    (t, z)) gives the page of each leading index; indexing reads those pages only (with
    plain file reads for uncompressed pages, else through tifffile). ``pages_read`` counts
    the pages read (for tests and diagnostics)."""

    def __init__(self, path: Path, pages: np.ndarray, frame: tuple[int, int], dtype: Any,
                 offsets: np.ndarray | None) -> None:
        self.path = Path(path)
        self.pages = np.asarray(pages, np.int64)
        self.shape = tuple(self.pages.shape) + tuple(int(s) for s in frame)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._offsets = offsets
        self.pages_read: list[int] = []

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"PageStack({self.path.name}, shape={self.shape}, dtype={self.dtype})"

    def _read(self, pages: np.ndarray) -> np.ndarray:
        frame = self.shape[-2:]
        out = np.empty((pages.size,) + frame, self.dtype)
        if self._offsets is not None:
            count = int(np.prod(frame))
            with open(self.path, "rb") as fh:
                for i, pg in enumerate(pages):
                    fh.seek(int(self._offsets[pg]))
                    out[i] = np.fromfile(fh, self.dtype, count).reshape(frame)
        else:
            import tifffile

            with tifffile.TiffFile(self.path) as tf:
                for i, pg in enumerate(pages):
                    out[i] = tf.pages[int(pg)].asarray()
        self.pages_read.extend(int(p) for p in pages)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(key) + 1)
            key = key[:i] + fill + key[i + 1:]
        lead, rest = key[: self.pages.ndim], key[self.pages.ndim:]
        sel = self.pages[lead]
        uniq, inv = np.unique(sel.ravel(), return_inverse=True)
        frames = self._read(uniq)[inv].reshape(np.shape(sel) + self.shape[-2:])
        return frames[(Ellipsis,) + tuple(rest)] if rest else frames

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self[...]
        return a if dtype is None else a.astype(dtype)


def _contiguous_offsets(tf: Any) -> np.ndarray | None:
    """Each page's data offset, when every page is one uncompressed contiguous block."""
    offsets = []
    for page in tf.pages:
        offs, counts = page.dataoffsets, page.databytecounts
        if page.compression != 1 or not offs:
            return None
        if any(offs[i] + counts[i] != offs[i + 1] for i in range(len(offs) - 1)):
            return None
        offsets.append(offs[0])
    return np.asarray(offsets, np.int64)


def _pick(what: str, n: int, chosen: int | None, names: list[int], path: Any) -> int:
    """The index of the chosen channel (by its number) or plane (by its index)."""
    if chosen is None:
        return -1
    if chosen not in names:
        raise InputError(f"{path}: no {what} {chosen} (it has {what}s "
                         f"{', '.join(map(str, names))})")
    return names.index(chosen)


def open_scanimage(path: Path, channel: int | None, plane: int | None
                   ) -> tuple[PageStack, str] | None:
    """One channel of a ScanImage TIFF as a PageStack ((t, y, x) for one plane, (t, z, y, x)
    for all; tifffile's own series would be (z, t, c, y, x)); None for a file that is not
    ScanImage."""
    import tifffile

    with tifffile.TiffFile(path) as tf:
        layout = scanimage_layout(tf)
        if layout is None:
            return None
        chans, nz = layout["channels"], layout["planes"]
        if len(chans) > 1 and channel is None:
            raise InputError(
                f"{path} interleaves {len(chans)} channels ({', '.join(map(str, chans))}) "
                f"and {nz} plane(s) (ScanImage): choose one, e.g. {path}:c{chans[0]}"
                + (f":z0 (planes 0-{nz - 1})" if nz > 1 else ""))
        ci = max(0, _pick("channel", len(chans), channel, chans, path))
        zi = _pick("plane", nz, plane, list(range(nz)), path)
        n_pages = len(tf.pages)
        try:
            pages = scanimage_pages(layout, n_pages, ci)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        page = tf.pages.first
        frame, dtype = tuple(page.shape[-2:]), page.dtype
        if len(page.shape) != 2:
            raise InputError(f"{path}: ScanImage pages of shape {page.shape}; (y, x) expected")
        offsets = _contiguous_offsets(tf)
    if zi >= 0:
        return PageStack(path, pages[:, zi], frame, dtype, offsets), "TYX"
    if nz == 1:
        return PageStack(path, pages[:, 0], frame, dtype, offsets), "TYX"
    return PageStack(path, pages, frame, dtype, offsets), "TZYX"


# --------------------------------------------------------------------------- Scanbox
class SbxView:
    """One channel (and plane) of sbxreader's Scanbox memory map, read on indexing."""

    def __init__(self, mm: Any, channel_index: int, plane: int | None) -> None:
        self._mm, self._c, self._z = mm, channel_index, plane
        t, z, _c, y, x = mm.shape
        self.shape = (t, y, x) if plane is not None or z == 1 else (t, z, y, x)
        self._z = 0 if plane is None and z == 1 else plane
        self.dtype = np.dtype(np.uint16)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if self._z is not None:
            full = (key[0], self._z, self._c) + key[1:]
        else:
            full = (key[0], key[1], self._c) + key[2:]
        return np.asarray(self._mm[full])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self[...]
        return a if dtype is None else a.astype(dtype)


def open_sbx(path: Path, channel: int | None, plane: int | None) -> tuple[SbxView, str]:
    try:
        from sbxreader import sbx_get_metadata, sbx_memmap
    except ImportError as e:
        raise ImportError(f"reading Scanbox .sbx files needs sbxreader: {SCANBOX_HINT}") from e
    try:
        meta = sbx_get_metadata(str(path))
        # MATLAB keeps the frame size as doubles, which numpy's memmap refuses as a shape
        meta["frame_size"] = tuple(int(s) for s in np.ravel(meta["frame_size"]))
        mm = sbx_memmap(str(path), meta)
    except OSError as e:
        raise InputError(f"{path}: {e} (Scanbox keeps its metadata in a .mat beside it)") from e
    nt, nz, nch = mm.shape[:3]
    if nch > 1 and channel is None:
        raise InputError(f"{path} interleaves {nch} channels (Scanbox): choose one, e.g. "
                         f"{path}:c1" + (f":z0 (planes 0-{nz - 1})" if nz > 1 else ""))
    ci = max(0, _pick("channel", nch, channel, list(range(1, nch + 1)), path))
    zi = _pick("plane", nz, plane, list(range(nz)), path)
    view = SbxView(mm, ci, zi if zi >= 0 else None)
    return view, "TYX" if view.ndim == 3 else "TZYX"


# --------------------------------------------------------------------------- dispatch
def open_acquisition(path: str | os.PathLike) -> tuple[Any, str] | None:
    """(array, axes) of a suite2p plane folder, a ScanImage TIFF with several channels or
    planes, or a Scanbox file (with a ``:cN``/``:zN`` choice, see the module's docstring);
    None for anything else (a plain TIFF or zarr store). A choice on a file that has no
    channels or planes to choose from is refused."""
    p, channel, plane = split_selection(path)
    chosen = channel is not None or plane is not None
    if p.name == "data.bin" and is_suite2p_folder(p.parent):
        p = p.parent
    if is_suite2p_folder(p):
        if chosen:
            raise InputError(f"{path}: a suite2p plane folder holds one channel and plane")
        return open_suite2p(p), "TYX"
    if p.suffix.lower() == ".sbx":
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        return open_sbx(p, channel, plane)
    if p.suffix.lower() in (".tif", ".tiff") and p.is_file():
        try:
            opened = open_scanimage(p, channel, plane)
        except InputError:
            raise
        except Exception:  # not a TIFF tifffile can parse: the plain TIFF path says why
            opened = None
        if opened is not None:
            return opened
    if chosen:
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        raise InputError(f"{path}: a channel or plane is chosen (:cN, :zN) only in ScanImage "
                         f"TIFFs and Scanbox files, which {p.name} is not")
    return None


def acquisition_layers(path: str | os.PathLike) -> list[tuple[Any, str, str]] | None:
    """For the napari reader: (array, name, axes) per channel of a ScanImage TIFF or Scanbox
    file (each (t, y, x), or (t, z, y, x) with several planes), the one movie of a suite2p
    plane folder; None for other files."""
    p, channel, plane = split_selection(path)
    if channel is not None or plane is not None:
        opened = open_acquisition(path)
        return None if opened is None else [(opened[0], _name(path), opened[1])]
    if is_suite2p_folder(p) or (p.name == "data.bin" and is_suite2p_folder(p.parent)):
        folder = p if p.is_dir() else p.parent
        return [(open_suite2p(folder), f"{folder.name} data.bin", "TYX")]
    numbers: list[int] = []
    if p.suffix.lower() == ".sbx":
        opened_sbx = open_sbx(p, 1, None)
        numbers = list(range(1, opened_sbx[0]._mm.shape[2] + 1))
    elif p.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(p) as tf:
                layout = scanimage_layout(tf)
        except Exception:
            return None
        if layout is None:
            return None
        numbers = layout["channels"]
    else:
        return None
    out = []
    for c in numbers:
        data, axes = open_acquisition(f"{p}:c{c}")  # type: ignore[misc]
        out.append((data, f"{_name(p)} ch{c}", axes))
    return out


def _name(path: Any) -> str:
    name = Path(str(path)).name
    for suffix in (".tiff", ".tif", ".sbx"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
