"""napari-neurorestore: self-supervised restoration of fluorescence neural imaging.

Importing the package is light: it never imports torch, Qt or napari. The Python API
functions below import the restoration core lazily when they are first called.

>>> from napari_neurorestore import denoise
>>> restored = denoise(movie, train_seconds=60)        # doctest: +SKIP
"""

from ._version import __version__

__all__ = ["__version__", "restore", "denoise", "upsample", "isotropize", "sparse"]


def __getattr__(name):  # PEP 562: lazy public API
    if name in {"restore", "denoise", "upsample", "isotropize", "sparse"}:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
