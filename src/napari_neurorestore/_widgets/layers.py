"""Layer <-> array helpers: the new layer keeps the input's scale/translate and units."""

from __future__ import annotations

from typing import Any


def output_grid(scale, translate, scale_factors=None, translate_shift=None):
    """World scale/translate of a result whose grid differs from the input's.

    ``scale_factors`` multiply the input's pixel size per axis; ``translate_shift`` moves the
    origin per axis in input pixels (see :class:`~napari_neurorestore.core.models.RestoreResult`).
    """
    in_scale = [float(s) for s in scale]
    n = len(in_scale)
    factors = [1.0] * n if scale_factors is None else [float(f) for f in scale_factors][-n:]
    shift = [0.0] * n if translate_shift is None else [float(d) for d in translate_shift][-n:]
    out_scale = tuple(s * f for s, f in zip(in_scale, factors, strict=True))
    out_translate = tuple(float(t) + d * s
                          for t, d, s in zip(translate, shift, in_scale, strict=True))
    return out_scale, out_translate


def result_layer_kwargs(source_layer: Any, result_metadata: dict, suffix: str,
                        scale_factors=None, translate_shift=None) -> dict:
    """Keyword arguments for ``viewer.add_image`` for a result made from ``source_layer``.

    Same scale, translate and contrast semantics as the input (the result is in the
    input's intensity units), the method's record in ``metadata``, name ``<input> [suffix]``.
    For methods that change the grid, ``scale_factors``/``translate_shift`` (from the
    result) give the output's pixel size and origin so both layers overlay in napari.
    """
    scale, translate = output_grid(source_layer.scale, source_layer.translate, scale_factors,
                                   translate_shift)
    meta = dict(getattr(source_layer, "metadata", {}) or {})
    meta.update(result_metadata)
    # a new dict: the source layer's own record (a result restored again) is never touched
    meta["neurorestore"] = {**(meta.get("neurorestore") or {}), "source_layer": source_layer.name}
    kwargs = {
        "name": f"{source_layer.name} [{suffix}]",
        "scale": scale,
        "translate": translate,
        "metadata": meta,
        "colormap": getattr(getattr(source_layer, "colormap", None), "name", "gray"),
        "blending": "additive" if source_layer.blending == "additive" else "translucent",
    }
    try:
        kwargs["contrast_limits"] = tuple(source_layer.contrast_limits)
    except Exception:
        pass
    return kwargs


def unique_name(viewer: Any, name: str) -> str:
    """``name`` or ``name (2)``, ... so a result never replaces an existing layer."""
    names = {layer.name for layer in viewer.layers}
    if name not in names:
        return name
    i = 2
    while f"{name} ({i})" in names:
        i += 1
    return f"{name} ({i})"


def incomplete_layer(layer: Any) -> str | None:
    """Why ``layer`` holds an incomplete result (None when it does not, or cannot tell):
    its file or store (``metadata["source_path"]``), checked again now, or else the
    progress record it was read with."""
    from ..core.arrays import PROGRESS_ATTR
    from ..core.io import is_incomplete

    md = getattr(layer, "metadata", None) or {}
    path = md.get("source_path")
    if path:
        try:
            import os

            if os.path.exists(path):
                why = is_incomplete(path)
                return f"layer '{layer.name}': {why}" if why else None
        except Exception:
            pass
    rec = md.get(PROGRESS_ATTR)
    if isinstance(rec, dict) and rec.get("complete") is False:
        return f"layer '{layer.name}' is an incomplete result (complete: false)"
    return None
