"""Restoration methods. Each module offers ``run(data, params, cancel, model=None, out=None)``,
a generator that yields :class:`~napari_neurorestore.core.progress.Progress` and returns a
:class:`~napari_neurorestore.core.models.RestoreResult`.

Importing this package does not import torch; import a method's module to use it.
"""

METHODS = {"denoise": "napari_neurorestore.core.methods.denoise",
           "upsample": "napari_neurorestore.core.methods.upsample"}
METHODS["sparse"] = "napari_neurorestore.core.methods.sparse"
METHODS["isotropize"] = "napari_neurorestore.core.methods.isotropize"


def get_method(name: str):
    """Return the module implementing method ``name``."""
    import importlib

    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return importlib.import_module(METHODS[name])
