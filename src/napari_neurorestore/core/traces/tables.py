"""Tables out: CSV writers and the plain-text tables the CLI prints."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .fidelity import TraceResult

__all__ = ["FIDELITY_COLUMNS", "write_table_csv", "write_traces_csv", "write_fidelity_csv", "format_fidelity",
           "format_transients"]


#: The columns of the fidelity CSV (see :func:`~.fidelity.fidelity_rows`), in order.
FIDELITY_COLUMNS = ("roi", "layer", "role", "snr_db", "contrast_db", "pearson_r", "nrmse",
                    "n_events", "peak_ratio", "onset_delay", "flags")


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_table_csv(path: str | os.PathLike, columns: Mapping[str, Sequence[Any]]) -> None:
    """Write a dict of equal-length columns as CSV (header row first)."""
    keys = list(columns)
    cols = [columns[k] for k in keys]
    n = len(cols[0]) if cols else 0
    if any(len(c) != n for c in cols):
        raise ValueError("all columns must have the same length")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for i in range(n):
            w.writerow([_fmt(c[i]) for c in cols])


def write_traces_csv(path: str | os.PathLike, result: TraceResult, tidy: bool = False) -> None:
    """Traces as CSV: by default wide (frame, time, then ``<layer>:roi<id>:F`` and
    ``<layer>:roi<id>:dFF`` columns per layer and ROI); ``tidy`` writes :meth:`TraceResult.table`."""
    write_table_csv(path, result.table() if tidy else result.wide_columns())


def write_fidelity_csv(path: str | os.PathLike, rows: TraceResult | Sequence[Mapping[str, Any]]
                       ) -> None:
    """The fidelity rows (see :func:`~.fidelity.fidelity_rows`) as CSV: the columns of
    :data:`FIDELITY_COLUMNS`; ``flags`` joined by ";" (empty when none)."""
    if hasattr(rows, "fidelity"):  # a TraceResult (not imported: fidelity imports this)
        rows = rows.fidelity()

    def cell(r: Mapping[str, Any], k: str) -> Any:
        v = r.get(k)
        if k == "flags":
            return ";".join(v or [])
        return float("nan") if v is None and k in ("peak_ratio", "onset_delay") else v

    write_table_csv(path, {k: [cell(r, k) for r in rows] for k in FIDELITY_COLUMNS})


def _text_table(head: Sequence[str], body: Sequence[Sequence[str]], left: set[int],
                strip: bool = False) -> str:
    """Columns padded to their widest cell: left-justified where in ``left``, else right."""
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        s = "  ".join(c.ljust(w) if i in left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return s.rstrip() if strip else s

    return "\n".join([line(head)] + [line(b) for b in body])


def format_fidelity(rows: Sequence[Mapping[str, Any]]) -> str:
    """The fidelity rows as a plain-text table (for the CLI)."""
    head = ["roi", "layer", "snr_db", "contrast_db", "pearson_r", "nrmse"]

    def f(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4f}"
        return str(v)

    return _text_table(head, [[f(r.get(k)) for k in head] for r in rows], left={1})


def format_transients(rows: Sequence[Mapping[str, Any]]) -> str:
    """Transient-fidelity rows as a plain-text table (for the CLI).

    Takes the dicts of :func:`~.transients.transient_fidelity` (ROIs numbered from 1 in
    order) or fidelity rows (with ``roi`` and ``layer``); a ``⚠`` marks flagged rows.
    """
    head = ["roi", "layer", "events", "peak_ratio", "delay_frames", "warning"]
    body = []
    for k, r in enumerate(rows):
        def num(v: Any, d: int) -> str:
            try:
                v = float(v)
            except (TypeError, ValueError):
                return "-"
            return "-" if math.isnan(v) else f"{v:.{d}f}"
        flags = r.get("flags") or []
        if isinstance(flags, str):
            flags = [f for f in flags.split(";") if f]
        body.append([
            str(r.get("roi", k + 1)), str(r.get("layer", "")),
            str(r.get("n_events", "")), num(r.get("peak_ratio"), 3),
            num(r.get("onset_delay"), 2),
            ("⚠ " + ", ".join(flags)) if flags else "",
        ])
    return _text_table(head, body, left={1, 5}, strip=True)
