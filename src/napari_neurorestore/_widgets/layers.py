"""Layer <-> array helpers: the new layer keeps the input's scale/translate and units."""

from __future__ import annotations

from typing import Any


def result_layer_kwargs(source_layer: Any, result_metadata: dict, suffix: str) -> dict:
    """Keyword arguments for ``viewer.add_image`` for a result made from ``source_layer``.

    Same scale, translate, rotate and contrast semantics as the input (the result is in the
    input's intensity units), the method's record in ``metadata``, name ``<input> [suffix]``.
    """
    meta = dict(getattr(source_layer, "metadata", {}) or {})
    meta.update(result_metadata)
    meta.setdefault("neurorestore", {})["source_layer"] = source_layer.name
    kwargs = {
        "name": f"{source_layer.name} [{suffix}]",
        "scale": tuple(source_layer.scale),
        "translate": tuple(source_layer.translate),
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
