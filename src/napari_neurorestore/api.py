"""Python API: plain functions over the restoration core (numpy in, numpy out).

>>> from napari_neurorestore import denoise
>>> restored = denoise(movie, train_seconds=60, seed=0)     # doctest: +SKIP
>>> restored, model = denoise(movie, return_model=True)      # doctest: +SKIP
>>> again = denoise(other_movie, model=model)                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core.progress import CancelToken, Progress, drain


def denoise(
    data: Any,
    *,
    window: int | None = None,
    stride: int | None = None,
    epochs: int | None = None,
    train_seconds: float | None = None,
    seed: int | None = 0,
    device: str = "auto",
    model: Any = None,
    out: Any = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    return_model: bool = False,
    **params: Any,
):
    """Denoise a (t, y, x) or (t, z, y, x) movie with a network trained on the movie itself.

    Parameters
    ----------
    data : array-like
        Integer or float intensities; numpy, memmap or dask arrays work (read in chunks).
    window, stride, epochs, train_seconds, seed, device, **params
        See :class:`napari_neurorestore.core.params.DenoiseParams` (defaults there).
    model : TrainedModel or path, optional
        Skip training and apply this model (a path is loaded with ``load_model``).
    out : array-like, optional
        Where to write the result (e.g. a memmap); allocated as float32 when None.
    progress : callable, optional
        Called with every :class:`Progress`.
    cancel : CancelToken, optional
        Set it from another thread to stop (raises ``Cancelled``).
    return_model : bool
        Also return the trained model.

    Returns
    -------
    numpy.ndarray (float32, same shape, the input's intensity units), and the model when
    ``return_model``.
    """
    from .core.methods import denoise as method
    from .core.models import load_model
    from .core.params import DenoiseParams

    given = {"window": window, "stride": stride, "epochs": epochs,
             "train_seconds": train_seconds}
    kwargs = {k: v for k, v in given.items() if v is not None}
    kwargs.update(params)
    p = DenoiseParams(seed=seed, device=device, **kwargs)
    if model is not None and not hasattr(model, "state_dict"):
        model = load_model(model)
    result = drain(method.run(data, p, cancel, model=model, out=out), progress)
    return (result.data, result.model) if return_model else result.data
