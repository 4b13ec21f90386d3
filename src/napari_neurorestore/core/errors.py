"""The exceptions shared by the readers, writers and path rules (no imports of the package:
any module may import this one)."""

from __future__ import annotations

import importlib
from typing import Any


class InputError(ValueError):
    """The user's data cannot be processed as given (the message says why)."""


def require(module: str) -> Any:
    """Import an optional dependency of the ``large`` extra, with a clear message."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed for large recordings (lazy compressed TIFF, zarr input/output, "
            f"dask clusters): run scripts/setup.sh, or pip install -e '.[large]' in the "
            f"napari-neurorestore clone (or pip install zarr 'dask[array]' distributed)"
        ) from e
