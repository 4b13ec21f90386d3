"""napari widgets (thin faces over :mod:`napari_neurorestore.core`). Importing this package
does not import torch."""
