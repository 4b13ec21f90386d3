"""Restoration methods, and the registry that maps a name to its
:class:`~napari_neurorestore.core.methods.base.Method`.

Each method has a light module ``<name>_spec.py`` (numpy only: its ``Method`` object, the
output grid, the forward model, the cost model) and a heavy one ``<name>.py`` (torch:
``train`` and ``predict``, generators that yield
:class:`~napari_neurorestore.core.progress.Progress`); a run is
:mod:`napari_neurorestore.core.engine`'s.

Importing this package (or calling :func:`get`) does not import torch; a method's heavy
module is imported when it trains or predicts.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> "module:attribute" of its Method. A new method adds one line here.
REGISTRY = {
    "denoise": "napari_neurorestore.core.methods.denoise.spec:METHOD",
    "sparse": "napari_neurorestore.core.methods.sparse.spec:METHOD",
    "upsample": "napari_neurorestore.core.methods.upsample.spec:METHOD",
    "isotropize": "napari_neurorestore.core.methods.isotropize.spec:METHOD",
}

#: name -> the heavy module (kept for callers of :func:`get_method`)
METHODS = {name: ref.split(":")[0].removesuffix("_spec") for name, ref in REGISTRY.items()}


def names() -> tuple[str, ...]:
    """The registered method names, in the registry's order."""
    return tuple(REGISTRY)


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}")


def get(name: str) -> Any:
    """The :class:`~.base.Method` registered as ``name`` (light: no torch)."""
    if name not in REGISTRY:
        raise _unknown(name)
    module, attr = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), attr)


def live_methods() -> tuple[str, ...]:
    """The methods whose models restore files while they are acquired (``Method.live``)."""
    return tuple(n for n in REGISTRY if get(n).live)


def params_for(name: str) -> type:
    """The parameter dataclass of method ``name`` (light: no torch)."""
    return get(name).params_class


def get_method(name: str):
    """Return the (heavy) module implementing method ``name`` (imports torch)."""
    if name not in REGISTRY:
        raise _unknown(name)
    return get(name).impl()
