"""``neurorestore`` command line: the same core generators as the widgets, drained with a
text progress bar. Importing it does not import torch.

    neurorestore denoise IN.tif -o OUT.tif|OUT.zarr [--window C] [--steps N] ...
    neurorestore sparse|upsample|isotropize IN.tif -o OUT.tif [options]
    neurorestore traces | report | demo | gui
"""

from .common import ProgressBar
from .main import build_parser, main

__all__ = ["main", "build_parser", "ProgressBar"]
