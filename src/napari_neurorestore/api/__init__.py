"""Python API: plain functions over the restoration core (numpy in, numpy out).

The functions live in ``api/movies.py`` (``restore``, ``denoise``, ``sparse``) and
``api/volumes.py`` (``upsample``, ``isotropize``); import them from here.

>>> from napari_neurorestore import denoise
>>> restored = denoise(movie, train_seconds=60, seed=0)     # doctest: +SKIP
>>> restored, model = denoise(movie, return_model=True)      # doctest: +SKIP
>>> again = denoise(other_movie, model=model)                 # doctest: +SKIP
"""


from .movies import denoise, restore, sparse
from .volumes import isotropize, upsample

__all__ = ["restore", "denoise", "sparse", "upsample", "isotropize"]
