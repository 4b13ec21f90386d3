"""The trust report as one self-contained HTML file (and its figures as JSON).

:func:`write_report` renders a :class:`~napari_neurorestore.core.trust.TrustReport`: the
verdict (its flags with their messages), the method, its parameters, the software version
and training time, the noise model with its variance-vs-mean plot, example frames (raw,
restored on the input's grid, what was removed, the structure map), the residual's spectra
against the noise level, the checks, the ROI traces and transient table when present, and
every figure. PNG figures are embedded as base64; the CSS is inline; nothing links outside
the file. :func:`read_provenance` recovers the ``{"neurorestore": {...}}`` record from the
outputs this plugin writes (zarr attributes, TIFF JSON descriptions).

No Qt, no napari, no pyplot: figures are drawn on :class:`matplotlib.figure.Figure` with the
Agg canvas, so nothing touches matplotlib's global state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .trust import TrustReport

__all__ = ["write_report", "render_html", "read_provenance", "report_figures"]

#: colours of the check statuses (background of the status cell)
STATUS_COLORS = {"pass": "#c8ecc9", "warn": "#ffd59e", "n/a": "#e4e4e4"}
#: at most this many ROI traces are drawn (the table lists every ROI)
MAX_TRACES = 8

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:2px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.num{text-align:right;font-family:monospace}
.verdict{padding:10px 14px;border-radius:6px;margin:12px 0}
.verdict.ok{background:#e3f5e4;border:1px solid #7cc47f}
.verdict.warn{background:#fff1dc;border:1px solid #f0a340}
.pass{background:#c8ecc9} .warn{background:#ffd59e} .na{background:#e4e4e4}
img{max-width:100%} .muted{color:#666;font-size:.9em} code{font-size:.9em}
"""


# ----------------------------------------------------------------------------- helpers
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "–"
        return f"{f:.4g}"
    if isinstance(v, (list, tuple)):
        if len(v) > 12:
            return "[" + ", ".join(_fmt(x) for x in v[:12]) + f", … ({len(v)} values)]"
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _seq(x: Any) -> list:
    """A row's list field (a list, tuple or numpy array; None) as a flat list."""
    return [] if x is None else np.asarray(x).ravel().tolist()


def _png(fig: Any) -> str:
    """A matplotlib Figure as a base64 PNG data URI (Agg canvas; no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=90, layout="constrained")


def _middle_plane(a: np.ndarray, keep: int = 2) -> np.ndarray:
    """The middle (y, x) plane of an array with leading axes (frames, planes)."""
    a = np.asarray(a)
    while a.ndim > keep:
        a = a[a.shape[0] // 2]
    return a


def _provenance(report: TrustReport) -> dict[str, Any]:
    md = dict(report.metadata or {})
    training = md.get("training") if isinstance(md.get("training"), dict) else {}
    secs = md.get("train_seconds", training.get("train_seconds"))
    return {"method": report.method or "unknown (an output on the input's grid)",
            "params": md.get("params"),
            "restored with version": md.get("software_version"),
            "training time (s)": secs,
            "training steps": training.get("steps"),
            "after training": _training_summary(report.method, training),
            "source": md.get("source") or md.get("source_layer")}


def _training_summary(method: str | None, training: dict) -> str | None:
    """The method's summary of its training (``Method.training_summary``)."""
    from .methods import get, names

    return get(method).training_summary(training) if method in names() else None


# ----------------------------------------------------------------------------- figures
def _noise_figure(report: TrustReport) -> str | None:
    nm = report.noise
    if len(nm.bin_means) < 1:
        return None
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    m = np.asarray(nm.bin_means, float)
    v = np.asarray(nm.bin_vars, float)
    ax.plot(m, v, "o", ms=4, color="#1f77b4", label="binned variance")
    xs = np.linspace(min(m.min(), nm.offset), m.max(), 50)
    ax.plot(xs, nm.gain * (xs - nm.offset) + nm.read_var, "-", color="#d62728",
            label=f"fit: {nm.gain:.3g}·(mean − {nm.offset:.4g}) + {nm.read_var:.3g}")
    ax.set_xlabel("mean intensity")
    ax.set_ylabel("noise variance")
    ax.set_title(f"noise model ({nm.source} differences)", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def _frames_figure(report: TrustReport, raw_name: str, restored_name: str) -> str:
    raw = _middle_plane(report.raw)
    back = _middle_plane(report.restored)
    res = _middle_plane(report.residual)
    smap = _middle_plane(report.structure_map)
    lo, hi = np.percentile(raw, [0.5, 99.5])
    lim = float(np.percentile(np.abs(res), 99.5)) or 1.0
    thr = report.figures.get("structure_map_threshold") or 1.5
    fig = _figure(12.0, 3.4)
    axes = fig.subplots(1, 4)
    panels = [(raw, f"{raw_name}", "gray", lo, hi),
              (back, f"{restored_name} (input grid)", "gray", lo, hi),
              (res, "removed (raw − restored)", "RdBu_r", -lim, lim),
              (smap, "structure map", "magma", 0.0, max(2.0 * thr, float(smap.max())))]
    for ax, (img, title, cmap, vmin, vmax) in zip(axes, panels, strict=True):
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    if smap.size and float(smap.max()) > thr:
        axes[3].contour(smap > thr, levels=[0.5], colors="cyan", linewidths=0.6)
    return _png(fig)


def _spectra_figure(report: TrustReport) -> str | None:
    if not report.spectra:
        return None
    fig = _figure(4.0 * len(report.spectra), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(report.spectra)))
    for ax, (name, (f, p)) in zip(axes, report.spectra.items(), strict=True):
        f, p = np.asarray(f), np.asarray(p)
        keep = f > 0
        ax.semilogy(f[keep], np.maximum(p[keep], 1e-6), color="#1f77b4", lw=1)
        ax.axhline(1.0, color="#d62728", ls="--", lw=1, label="noise level")
        ax.set_xlabel(f"frequency along {name} (cycles/sample)")
        ax.set_ylabel("residual power / noise variance")
        ax.set_title(f"residual spectrum along {name}", fontsize=10)
        ax.legend(fontsize=8)
    return _png(fig)


def _traces_figure(report: TrustReport) -> str | None:
    tr = report.traces
    rows = report.transients or []
    if tr is None or not rows:
        return None
    ref = np.atleast_2d(np.asarray(tr["reference"]))
    out = np.atleast_2d(np.asarray(tr["restored"]))
    n = min(len(rows), ref.shape[0], MAX_TRACES)
    if n == 0:
        return None
    t0 = report.frames[0] if report.frames else 0
    t = np.arange(ref.shape[1]) + t0
    fig = _figure(10.0, 1.5 * n + 0.6)
    axes = np.atleast_1d(fig.subplots(n, 1, sharex=True))
    for i, ax in enumerate(axes):
        row = rows[i]
        ax.plot(t, ref[i], color="#555555", lw=0.8, label="reference (raw)")
        ax.plot(t, out[i], color="#1f77b4", lw=0.9, label="restored")
        for ev in _seq(row.get("events")):
            ax.axvline(t0 + float(ev), color="#2ca02c", lw=0.5, alpha=0.5)
        flagged = [float(e) for e in _seq(row.get("flagged_events"))]
        if flagged:
            idx = np.clip(np.round(flagged).astype(int), 0, ref.shape[1] - 1)
            ax.plot(t0 + idx, ref[i, idx], "v", color="#d62728", ms=7,
                    label="flagged event")
        label = f"ROI {row.get('roi', i + 1)}"
        if _seq(row.get("flags")):
            label += " (" + ", ".join(map(str, _seq(row["flags"]))) + ")"
        ax.set_ylabel("ΔF/F", fontsize=8)
        ax.set_title(label, fontsize=9, loc="left")
        if i == 0:
            ax.legend(fontsize=7, loc="upper right", ncol=3)
    axes[-1].set_xlabel("frame")
    return _png(fig)


def report_figures(report: TrustReport, raw_name: str = "raw",
                   restored_name: str = "restored") -> dict[str, str | None]:
    """The report's PNG figures as data URIs (None where a figure does not apply)."""
    return {"noise": _noise_figure(report),
            "frames": _frames_figure(report, raw_name, restored_name),
            "spectra": _spectra_figure(report),
            "traces": _traces_figure(report)}


# ----------------------------------------------------------------------------- HTML
def _img(uri: str | None, alt: str) -> str:
    return f'<p><img src="{uri}" alt="{_esc(alt)}"></p>' if uri else ""


def _kv_table(d: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _checks_table(report: TrustReport) -> str:
    head = ("<tr><th>check</th><th>value</th><th>threshold</th><th>status</th>"
            "<th>message</th></tr>")
    rows = []
    for c in report.checks:
        cls = {"pass": "pass", "warn": "warn"}.get(c.status, "na")
        rows.append(f'<tr><td>{_esc(c.name)}</td><td class="num">{_esc(_fmt(c.value))}</td>'
                    f"<td>{_esc(c.threshold)}</td>"
                    f'<td class="{cls}"><b>{_esc(c.status.upper())}</b></td>'
                    f"<td>{_esc(c.message)}</td></tr>")
    return f'<table class="checks">{head}{"".join(rows)}</table>'


def _transients_table(rows: list[dict]) -> str:
    head = ("<tr><th>ROI</th><th>events</th><th>peak ratio</th><th>onset delay (frames)</th>"
            "<th>flags</th><th>flagged events (frames)</th></tr>")
    body = []
    for i, r in enumerate(rows):
        flags = ", ".join(map(str, _seq(r.get("flags")))) or "–"
        cls = ' class="warn"' if flags != "–" else ""
        body.append(f"<tr><td>{_esc(r.get('roi', i + 1))}</td>"
                    f'<td class="num">{_esc(_fmt(r.get("n_events")))}</td>'
                    f'<td class="num">{_esc(_fmt(r.get("peak_ratio")))}</td>'
                    f'<td class="num">{_esc(_fmt(r.get("onset_delay")))}</td>'
                    f"<td{cls}>{_esc(flags)}</td>"
                    f"<td>{_esc(_fmt(_seq(r.get('flagged_events'))))}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def render_html(report: TrustReport, raw_name: str = "raw",
                restored_name: str = "restored") -> str:
    """The report as one self-contained HTML document (a string)."""
    from .._version import __version__

    figs = report_figures(report, raw_name, restored_name)
    by_name = {c.name: c for c in report.checks}
    if report.flags:
        items = "".join(f"<li><b>{_esc(f)}</b>: {_esc(by_name[f].message if f in by_name else '')}"
                        "</li>" for f in report.flags)
        verdict = (f'<div class="verdict warn"><b>{len(report.flags)} warning(s)</b>'
                   f"<ul>{items}</ul></div>")
    else:
        verdict = ('<div class="verdict ok"><b>no warnings</b>: the residual looks like the '
                   "noise the data's own noise model predicts.</div>")
    nm = report.noise
    prov = _provenance(report)
    params = prov.pop("params")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Trust report: {_esc(restored_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Trust report: {_esc(restored_name)} vs {_esc(raw_name)}</h1>",
        f'<p class="muted">napari-neurorestore {_esc(__version__)}; '
        + (f"frames {report.frames[0]}–{report.frames[1] - 1} assessed"
           if report.frames else "whole volume assessed") + "</p>",
        verdict,
        "<h2>Restoration</h2>",
        _kv_table({**prov, "report written by napari-neurorestore": __version__}),
    ]
    if params:
        parts += ["<h3>Parameters</h3>", _kv_table(dict(params))]
    parts += [
        "<h2>Noise model</h2>",
        f"<p>{_esc(nm.summary())}</p>",
        _kv_table({"gain (units/photon)": nm.gain, "offset": nm.offset,
                   "read variance": nm.read_var, "source": nm.source,
                   "noise lag-1 y": nm.lag1_y, "noise lag-1 x": nm.lag1_x,
                   "samples": nm.n_samples}),
        _img(figs["noise"], "variance against mean"),
        "<h2>Example frames</h2>",
        '<p class="muted">What was removed is raw − restored on the input\'s grid (red: the '
        "restoration lowered the intensity, blue: it raised it). The structure map shows "
        "where the residual has more structure than noise (cyan: above the threshold "
        f"{_esc(_fmt(report.figures.get('structure_map_threshold')))}).</p>",
        _img(figs["frames"], "raw, restored, removed, structure map"),
    ]
    if figs["spectra"]:
        parts += ["<h2>Residual spectra</h2>",
                  '<p class="muted">Power of the residual in units of the predicted noise '
                  "variance: white noise sits on the dashed 1.0 line; a bump at low "
                  "frequencies means smooth structure (signal) was removed.</p>",
                  _img(figs["spectra"], "residual spectra")]
    parts += ["<h2>Checks</h2>", _checks_table(report)]
    if report.transients:
        parts += ["<h2>Transients</h2>",
                  '<p class="muted">ΔF/F of ROIs, the raw data as the reference; red '
                  "triangles mark events whose restored peak was flattened.</p>",
                  _img(figs["traces"], "ROI traces"), _transients_table(report.transients)]
    parts += ["<h2>All figures</h2>", _kv_table(dict(report.figures)), "</body></html>"]
    return "\n".join(parts)


def write_report(report: TrustReport, path: str | os.PathLike, *, raw_name: str = "raw",
                 restored_name: str = "restored", overwrite: bool = False,
                 json_path: str | os.PathLike | None = None) -> Path:
    """Write the report as one self-contained HTML file (and, with ``json_path``,
    ``report.to_dict()`` as JSON). An existing file is replaced only with ``overwrite``;
    both paths are checked before anything is written. Returns the HTML path."""
    from .paths import check_output_path

    out = check_output_path(path, overwrite)
    jout = check_output_path(json_path, overwrite) if json_path is not None else None
    if jout is not None and jout.resolve() == out.resolve():
        raise ValueError("the HTML and JSON outputs must be different files")
    text = render_html(report, raw_name, restored_name)
    payload = json.dumps(report.to_dict(), indent=1, allow_nan=False) if jout else None
    out.write_text(text, encoding="utf-8")
    if jout is not None:
        jout.write_text(payload, encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- provenance
def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """``{"neurorestore": {...}}`` from an output this plugin wrote (a zarr store's
    attributes, or a TIFF's JSON description as :func:`core.io.open_output_tiff` writes
    it); ``{}`` for files written by other tools."""
    from .paths import is_zarr_path

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if is_zarr_path(p):
        try:
            import zarr

            attrs = dict(zarr.open(str(p), mode="r").attrs)
        except Exception:
            return {}
        rec = attrs.get("neurorestore")
        return {"neurorestore": dict(rec)} if isinstance(rec, dict) else {}
    try:
        import tifffile

        with tifffile.TiffFile(p) as tf:
            candidates = list(tf.shaped_metadata or ())
            desc = tf.pages[0].description if len(tf.pages) else ""
            info = (tf.imagej_metadata or {}).get("Info")  # ImageJ TIFFs with a pixel size
            desc = info if isinstance(info, str) and info.startswith("{") else desc
    except Exception:
        return {}
    if desc:
        try:
            candidates.append(json.loads(desc))
        except ValueError:
            pass
    for c in candidates:
        if isinstance(c, dict) and isinstance(c.get("neurorestore"), dict):
            return {"neurorestore": dict(c["neurorestore"])}
    return {}
