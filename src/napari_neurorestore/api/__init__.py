"""Python API: plain functions over the restoration core (numpy in, numpy out).

The functions live in ``api/functions.py`` and the checks and the one engine run they
share in ``api/_common.py``; import them from here.

>>> from napari_neurorestore import denoise
>>> restored = denoise(movie, train_seconds=60, seed=0)     # doctest: +SKIP
>>> restored, model = denoise(movie, return_model=True)      # doctest: +SKIP
>>> again = denoise(other_movie, model=model)                 # doctest: +SKIP
"""


from .functions import denoise, isotropize, restore, sparse, upsample

__all__ = ["restore", "denoise", "sparse", "upsample", "isotropize"]
