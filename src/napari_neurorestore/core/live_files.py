"""The acquisition folder's files for live denoising: which names are acquisition files, in
what order, and reading a TIFF only when it is whole (tifffile logs, rather than raises,
on a file cut short)."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

TIFF_SUFFIXES = (".tif", ".tiff")
#: name endings of files still being written under a temporary name
TEMP_ENDINGS = (".part", ".tmp", ".partial", ".crdownload", "~")


def natural_key(name: str) -> list:
    """Sort key: digits compare as numbers (file_2 before file_10)."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def is_acquisition_file(name: str) -> bool:
    low = name.lower()
    return (not name.startswith((".", "~")) and low.endswith(TIFF_SUFFIXES)
            and not low.endswith(TEMP_ENDINGS))


class _TiffComplaints(logging.Handler):
    """Collects what tifffile logs while this thread reads a file: it logs (rather than
    raises) an IFD chain cut short, and then returns the pages before the cut."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.records.append(record.getMessage())


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of a TIFF file as (t, y, x); raises if any page cannot be read, if the
    page chain is cut short or if a page's data lies beyond the end of the file."""
    import tifffile

    log = logging.getLogger("tifffile")
    complaints = _TiffComplaints()
    log.addHandler(complaints)
    try:
        size = os.path.getsize(path)
        with tifffile.TiffFile(str(path)) as tf:
            n = len(tf.pages)
            if n == 0:
                raise ValueError("no pages")
            for page in tf.pages:
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts,
                                              strict=False)]
                if ends and max(ends) > size:
                    raise ValueError("page data beyond the end of the file (truncated)")
            a = tf.asarray(key=range(n)) if n > 1 else tf.pages[0].asarray()
    finally:
        log.removeHandler(complaints)
    if complaints.records:
        raise ValueError(f"damaged or incomplete: {complaints.records[0]}")
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim > 3:
        a = a.reshape(-1, *a.shape[-2:])
    if a.shape[0] != n:
        raise ValueError(f"read {a.shape[0]} frames from {n} pages")
    if a.dtype.kind not in "uif":
        raise ValueError(f"unsupported data type {a.dtype}")
    return a



def _sig(p: Path) -> tuple | None:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _count_pages(p: Path) -> int:
    """Pages tifffile can see in a damaged file (0 when it cannot open it)."""
    try:
        import tifffile

        with tifffile.TiffFile(str(p)) as tf:
            return len(tf.pages)
    except Exception:  # noqa: BLE001
        return 0


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False
