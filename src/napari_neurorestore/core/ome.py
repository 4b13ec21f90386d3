"""Pixel sizes and axes in file metadata: OME-Zarr (NGFF 0.4) multiscales, OME-TIFF
``PhysicalSizeX/Y/Z``, ImageJ TIFF ``spacing``/``unit`` and resolution tags. Pure metadata
(dicts and numbers): no zarr, no torch; :mod:`core.io` and :mod:`core.zarr_io` do the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: NGFF 0.4 version string written into ``multiscales``
NGFF_VERSION = "0.4"

#: common spellings -> the UDUNITS-2 names NGFF requires
_UNIT_ALIASES = {
    "um": "micrometer", "µm": "micrometer", "μm": "micrometer", "micron": "micrometer",
    "microns": "micrometer", "micrometre": "micrometer", "\\u00b5m": "micrometer",
    "nm": "nanometer", "nanometre": "nanometer", "mm": "millimeter", "millimetre": "millimeter",
    "cm": "centimeter", "m": "meter", "metre": "meter", "å": "angstrom", "a": "angstrom",
    "s": "second", "sec": "second", "seconds": "second", "ms": "millisecond",
    "msec": "millisecond", "us": "microsecond", "µs": "microsecond", "min": "minute",
    "h": "hour", "hr": "hour",
}
#: NGFF 0.4's space and time units (UDUNITS-2 names)
SPACE_UNITS = frozenset(
    f"{p}meter" for p in ("", "yotta", "zetta", "exa", "peta", "tera", "giga", "mega", "kilo",
                          "hecto", "deca", "deci", "centi", "milli", "micro", "nano", "pico",
                          "femto", "atto", "zepto", "yocto")
) | {"angstrom", "foot", "inch", "mile", "parsec", "yard"}
TIME_UNITS = frozenset(
    f"{p}second" for p in ("", "yotta", "zetta", "exa", "peta", "tera", "giga", "mega", "kilo",
                           "hecto", "deca", "deci", "centi", "milli", "micro", "nano", "pico",
                           "femto", "atto", "zepto", "yocto")
) | {"minute", "hour", "day"}
#: micrometers per unit, to bring OME-TIFF physical sizes onto one unit
_TO_MICROMETER = {"meter": 1e6, "centimeter": 1e4, "millimeter": 1e3, "micrometer": 1.0,
                  "nanometer": 1e-3, "picometer": 1e-6, "angstrom": 1e-4}
#: ImageJ's spelling of a unit (Fiji shows "um" as µm)
_IMAGEJ_UNITS = {"micrometer": "um", "nanometer": "nm", "millimeter": "mm",
                 "centimeter": "cm", "meter": "m", "angstrom": "A"}

_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}


def ngff_unit(unit: str | None, kind: str = "space") -> str | None:
    """The NGFF (UDUNITS-2) name of ``unit`` (``"um"``, ``"µm"``, ``"micron"`` ->
    ``"micrometer"``), None for no unit or pixels; ValueError for a unit NGFF does not know."""
    if unit is None:
        return None
    u = str(unit).strip()
    if u.lower() in ("", "pixel", "pixels", "px", "none", "frame", "frames"):
        return None
    u = _UNIT_ALIASES.get(u, _UNIT_ALIASES.get(u.lower(), u.lower()))
    valid = SPACE_UNITS if kind == "space" else TIME_UNITS
    if u not in valid:
        raise ValueError(f"{unit!r} is not a {kind} unit OME-Zarr (NGFF) knows "
                         f"(e.g. {'micrometer' if kind == 'space' else 'second'})")
    return u


def imagej_unit(unit: str | None) -> str | None:
    """ImageJ's spelling of a space unit (``"micrometer"`` -> ``"um"``)."""
    u = ngff_unit(unit, "space")
    return None if u is None else _IMAGEJ_UNITS.get(u, u)


def ngff_axes_order(axes: str | None, ndim: int) -> str:
    """``axes`` (e.g. "TYX") when NGFF 0.4 can hold it (time, then channel, then 2-3 space
    axes), else the default for ``ndim`` ("YX", "TYX", "TZYX", "TCZYX")."""
    default = {2: "YX", 3: "TYX", 4: "TZYX", 5: "TCZYX"}
    a = (axes or "").upper()
    if len(a) == ndim and len(set(a)) == ndim and set(a) <= set("TCZYX"):
        ranks = ["TCZYX".index(c) if c in "TC" else 2 for c in a]
        if ranks == sorted(ranks) and 2 <= sum(c in "ZYX" for c in a) <= 3:
            return a
    if ndim not in default:
        raise ValueError(f"OME-Zarr (NGFF 0.4) images have 2 to 5 axes, not {ndim}")
    return default[ndim]


def _per_axis(values: Sequence[float] | None, n: int, fill: float, what: str) -> list[float]:
    if values is None:
        return [fill] * n
    v = [float(x) for x in values]
    if len(v) != n:
        raise ValueError(f"{what} has {len(v)} values for {n} axes")
    return v


def ngff_multiscales(shape: Sequence[int], axes: str | None = None,
                     scale: Sequence[float] | None = None,
                     translate: Sequence[float] | None = None, space_unit: str | None = None,
                     time_unit: str | None = None, name: str | None = None,
                     path: str = "0") -> dict[str, Any]:
    """The ``multiscales`` attribute of an NGFF 0.4 image of one level at ``path``.

    ``scale``/``translate``: per axis of ``shape`` (pixel size and the position of pixel 0's
    centre, napari's convention; None: 1 and 0); ``space_unit`` for z/y/x, ``time_unit`` for t.
    """
    n = len(shape)
    order = ngff_axes_order(axes, n)
    su, tu = ngff_unit(space_unit, "space"), ngff_unit(time_unit, "time")
    ax: list[dict[str, Any]] = []
    for c in order:
        d: dict[str, Any] = {"name": c.lower(), "type": _AXIS_TYPES[c]}
        unit = su if d["type"] == "space" else tu if d["type"] == "time" else None
        if unit:
            d["unit"] = unit
        ax.append(d)
    s = _per_axis(scale, n, 1.0, "scale")
    if any(not x > 0 for x in s):
        raise ValueError(f"pixel sizes must be positive, got {s}")
    transforms: list[dict[str, Any]] = [{"type": "scale", "scale": s}]
    t = _per_axis(translate, n, 0.0, "translate")
    if any(t):
        transforms.append({"type": "translation", "translation": t})
    ms: dict[str, Any] = {"version": NGFF_VERSION, "axes": ax,
                          "datasets": [{"path": path, "coordinateTransformations": transforms}]}
    if name:
        ms["name"] = str(name)
    return {"multiscales": [ms]}


def _compose(transforms: list[dict] | None, n: int, s: list[float], t: list[float]) -> None:
    """Apply NGFF ``coordinateTransformations`` (in order) after ``s``/``t`` in place."""
    for tr in transforms or []:
        if tr.get("type") == "scale" and len(tr.get("scale") or []) == n:
            k = [float(x) for x in tr["scale"]]
            s[:] = [a * b for a, b in zip(s, k, strict=True)]
            t[:] = [a * b for a, b in zip(t, k, strict=True)]
        elif tr.get("type") == "translation" and len(tr.get("translation") or []) == n:
            t[:] = [a + float(b) for a, b in zip(t, tr["translation"], strict=True)]


def ngff_geometry(attrs: dict) -> dict[str, Any] | None:
    """Level 0 of an OME-Zarr (NGFF 0.4, or 0.5 under ``"ome"``) image: ``{"path", "axes"
    (names, upper case), "scale", "translate", "units" ({axis: unit})}``, or None."""
    ms = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    if not ms:
        return None
    m = ms[0]
    axes = [a if isinstance(a, dict) else {"name": a} for a in (m.get("axes") or [])]
    names = "".join(str(a.get("name", "q"))[:1].upper() for a in axes)
    n = len(axes)
    ds = m["datasets"][0]
    s, t = [1.0] * n, [0.0] * n
    _compose(ds.get("coordinateTransformations"), n, s, t)
    _compose(m.get("coordinateTransformations"), n, s, t)
    units = {nm: a["unit"] for nm, a in zip(names, axes, strict=True) if a.get("unit")}
    return {"path": ds["path"], "axes": names, "scale": s, "translate": t, "units": units}


# ------------------------------------------------------------------------------------ TIFF
def tiff_pixel_sizes(tf: Any) -> dict[str, Any]:
    """Pixel sizes of a ``tifffile.TiffFile``: ``{"X", "Y", "Z", "T": size, "unit": ...}``
    for what the file records. OME-TIFF ``PhysicalSizeX/Y/Z`` (in micrometers when their
    units differ) and ``TimeIncrement`` first, else ImageJ ``spacing``/``finterval``/``unit``
    and the resolution tags (1 pixel per unit is taken as no calibration)."""
    try:
        if getattr(tf, "is_ome", False) and tf.ome_metadata:
            sizes = _ome_tiff_sizes(tf.ome_metadata)
            if sizes:
                return sizes
    except Exception:
        pass
    sizes: dict[str, Any] = {}
    try:
        page = tf.pages[0]
        ij = tf.imagej_metadata or {}
        for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
            t = page.tags.get(tag)
            if t is not None:
                num, den = t.value
                if num:
                    sizes[axis] = den / num
        if sizes.get("X") == 1.0 and sizes.get("Y") == 1.0:
            sizes.pop("X"), sizes.pop("Y")
        if "spacing" in ij:
            sizes["Z"] = float(ij["spacing"])
        if "finterval" in ij:
            sizes["T"] = float(ij["finterval"])
        unit = ij.get("unit")
        if unit is not None and any(a in sizes for a in "XYZ"):
            u = str(unit)
            if "\\u" in u:  # ImageJ writes µ as the escape \u00B5
                u = u.encode("ascii", "backslashreplace").decode("unicode_escape")
            try:
                sizes["unit"] = ngff_unit(u)
            except (ValueError, UnicodeDecodeError):
                sizes["unit"] = u
    except Exception:
        return {}
    return sizes


def _ome_tiff_sizes(xml: str) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"),
                  None)
    if pixels is None:
        return {}
    out: dict[str, Any] = {}
    units = {}
    for axis in "XYZ":
        v = pixels.get(f"PhysicalSize{axis}")
        if v is not None and float(v) > 0:
            out[axis] = float(v)
            try:
                units[axis] = ngff_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm"))
            except ValueError:
                units[axis] = None
    if len(set(units.values())) > 1 and all(u in _TO_MICROMETER for u in units.values()):
        for axis, u in units.items():
            out[axis] *= _TO_MICROMETER[u]
        out["unit"] = "micrometer"
    elif units and None not in units.values():
        out["unit"] = next(iter(units.values()))
    ti = pixels.get("TimeIncrement")
    if ti is not None and float(ti) > 0:
        out["T"] = float(ti)
    return out


def tiff_scale_kwargs(axes: str, scale: Sequence[float] | None,
                      space_unit: str | None = None, time_unit: str | None = None
                      ) -> dict[str, Any]:
    """tifffile keywords that record ``scale`` (per axis of ``axes``) the way Fiji reads it:
    an ImageJ hyperstack with resolution tags for x and y, ``spacing`` for z, ``finterval``
    for t (in seconds) and ``unit``; ``{}`` when ``scale`` is None."""
    if scale is None:
        return {}
    a = axes.upper()
    s = _per_axis(scale, len(a), 1.0, "scale")
    if any(not x > 0 for x in s):
        raise ValueError(f"pixel sizes must be positive, got {s}")
    size = dict(zip(a, s, strict=True))
    md: dict[str, Any] = {}
    if "Z" in size:
        md["spacing"] = size["Z"]
    if "T" in size and time_unit is not None:
        tu = ngff_unit(time_unit, "time")
        md["finterval"] = size["T"] * _SECONDS.get(tu, 1.0)
    unit = imagej_unit(space_unit)
    if unit:
        md["unit"] = unit
    return {"imagej": True, "resolution": (1.0 / size.get("X", 1.0), 1.0 / size.get("Y", 1.0)),
            "metadata": md}


_SECONDS = {"second": 1.0, "millisecond": 1e-3, "microsecond": 1e-6, "minute": 60.0,
            "hour": 3600.0, "day": 86400.0}
