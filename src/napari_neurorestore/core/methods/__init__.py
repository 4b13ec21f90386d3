"""Restoration methods, and the registry that maps a name to its
:class:`~napari_neurorestore.core.methods.base.Method`.

Each method is one package, ``core/methods/<name>/``: a light module ``spec.py`` (numpy
only: its parameters, its ``Method`` object, the output grid, the forward model, the cost
model) and a heavy one ``heavy.py`` (torch: ``train`` and ``predict``, generators that
yield :class:`~napari_neurorestore.core.progress.Progress`), with the rest of the method
(its network, its stages) beside them. A run is :mod:`napari_neurorestore.core.engine`'s.

A new method is its package and one line in :data:`REGISTRY` (or one :func:`register`
call: ``tests/core/test_fifth_method.py`` registers a test-only method so); the CLI's
subcommand, the API, the cost estimate and the Restore dock's method picker follow.

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


def register(name: str, ref: str) -> None:
    """Register method ``name`` as ``ref`` = ``"module:attribute"`` of its :class:`Method`
    (imported on first use, like the built-in ones)."""
    module, sep, attr = ref.partition(":")
    if not (name.isidentifier() and module and sep and attr.isidentifier()):
        raise ValueError(f"register({name!r}, {ref!r}): give a name and 'module:attribute'")
    REGISTRY[name] = ref


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
