"""The API's functions over movies: any method by name, denoising and sparse-axis
reconstruction (see :mod:`napari_neurorestore.api`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.progress import CancelToken, Progress
from ._common import _given, _params, _run


def restore(
    method: str,
    data: Any,
    *,
    model: Any = None,
    out: Any = None, dtype: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    return_model: bool = False,
    return_result: bool = False,
    **params: Any,
):
    """Restore ``data`` with any registered method, by name.

    The one entry point behind :func:`denoise`, :func:`sparse`, :func:`upsample` and
    :func:`isotropize` (and a method added to the registry): ``params`` are the fields of
    that method's parameter class, ``core.methods.params_for(method)``, each checked for
    its type before the run.

    Parameters
    ----------
    method : str
        ``"denoise"``, ``"sparse"``, ``"upsample"``, ``"isotropize"``, or a name added to
        ``core.methods.REGISTRY``.
    data : array-like
        The input, as the method takes it (integer or float intensities; numpy, memmap or
        dask arrays).
    model : TrainedModel or path, optional
        Skip training and apply this model (a path is loaded with ``load_model``); its
        fixed parameters win, and a different value given in ``params`` is refused.
    out : array-like, optional
        Where to write the result (e.g. a memmap of the output shape); allocated as
        float32 when None.
    dtype : {"float32", "uint16", "int16"}, optional
        The output type (default float32). Integer outputs keep the input's units, rounded
        to nearest and clipped, with the counts in the provenance; ``out`` must then be of
        that type.
    progress : callable, optional
        Called with every :class:`~napari_neurorestore.core.progress.Progress` report.
    cancel : CancelToken, optional
        Set it from another thread to stop the run (raises ``Cancelled``).
    return_model : bool, default False
        Also return the trained (or given) model.
    return_result : bool, default False
        Return the full ``RestoreResult`` instead: ``data``, ``model``, ``metadata``
        (the provenance written with the output) and the output's grid
        (``scale_factors``, ``translate_shift``).
    **params
        Fields of the method's parameter class (e.g. ``train_seconds=30``, ``factor=3``);
        an unknown name or a value of the wrong type raises ``TypeError``.

    Returns
    -------
    restored : numpy.ndarray
        float32, in the input's units, on the method's output grid (``out`` when given).
    model : TrainedModel
        Only when ``return_model``.
    result : RestoreResult
        Instead of the above when ``return_result``.

    See Also
    --------
    denoise, sparse, upsample, isotropize : the same, with each method's arguments named.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_neurorestore import restore
    >>> volume = np.random.default_rng(0).poisson(5, (16, 48, 48)).astype(np.uint16)
    >>> fine = restore("upsample", volume, factor=2, train_seconds=5)
    >>> fine.shape, fine.dtype
    ((32, 96, 96), dtype('float32'))
    >>> res = restore("upsample", volume, factor=2, train_seconds=5, return_result=True)
    >>> res.scale_factors
    (0.5, 0.5, 0.5)
    """
    from ..core.methods import params_for

    cls = params_for(method)
    p = _params(cls, **params)
    return _run(method, data, p, model, params, cancel, out, progress, return_model,
                return_result, dtype=dtype)


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
    out: Any = None, dtype: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    return_model: bool = False,
    **params: Any,
):
    """Denoise a (t, y, x) or (t, z, y, x) movie with a network trained on the movie itself.

    Self-supervised: the network learns to predict each frame from its neighbours in time,
    so no clean data is needed; training stops after ``train_seconds`` (or ``epochs``)
    and the whole movie is then restored, chunk by chunk.

    Parameters
    ----------
    data : array-like
        (t, y, x) or (t, z, y, x); integer or float intensities; numpy, memmap or dask
        arrays work (read in chunks). At least ``window`` frames.
    window : int, optional
        Frames the network sees around each frame (odd).
    stride : int, optional
        Spacing of the training patches.
    epochs : int, optional
        Passes over the training patches (the run stops at the first of ``epochs`` and
        ``train_seconds``).
    train_seconds, seed, device, model, out, dtype, progress, cancel, return_model
        The training budget in seconds (60), the random seed (0; None: a fresh one), the
        compute device ("auto"); the others as for :func:`restore`.
    **params
        Any other field of
        :class:`napari_neurorestore.core.methods.denoise.spec.DenoiseParams` (defaults
        there; None above means that default, or the model's value).

    Returns
    -------
    restored : numpy.ndarray
        float32, the input's shape and intensity units.
    model : TrainedModel
        Only when ``return_model``: apply it to another movie with ``model=``, or save it
        with ``save_model``.

    See Also
    --------
    restore : any method by name, and the full result (``return_result=True``).

    Examples
    --------
    >>> from napari_neurorestore import denoise
    >>> from napari_neurorestore.core.simulate import simulate_calcium_movie
    >>> movie = simulate_calcium_movie(n_frames=200, shape=(64, 64), seed=0).raw
    >>> restored, model = denoise(movie, train_seconds=10, return_model=True)
    >>> restored.shape, restored.dtype
    ((200, 64, 64), dtype('float32'))
    >>> again = denoise(movie[:100], model=model)  # no training
    """
    from ..core.methods.denoise.spec import DenoiseParams

    given = {**_given(window=window, stride=stride, epochs=epochs,
                      train_seconds=train_seconds), **params}
    p = _params(DenoiseParams, seed=seed, device=device, **given)
    return _run("denoise", data, p, model, given, cancel, out, progress, return_model,
                dtype=dtype)


def sparse(
    data: Any,
    factor: int | None = None,
    *,
    axis: str | None = None,
    simulate: bool = False,
    reference: Any = None,
    labels: Any = None,
    train_seconds: float | None = 60.0,
    seed: int | None = 0,
    device: str = "auto",
    model: Any = None,
    out: Any = None, dtype: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    return_model: bool = False,
    return_result: bool = False,
    **params: Any,
):
    """Restore the lines a scan skipped along ``axis`` (sparse-axis reconstruction, after
    IRIS), with a network trained on the sparse data itself (the fully sampled axis is the
    teacher) or on a fully sampled ``reference`` stack from the same rig.

    ``data`` holds the acquired lines: acquired line i lies at output line i * factor, the
    output has ``factor`` times more lines along ``axis``, its pixel size along ``axis`` is
    the input's divided by ``factor`` and its origin is unchanged (``return_result=True``
    gives ``scale_factors``). (y, x) images, (t|z, y, x) stacks and (t, z, y, x) movies.

    With ``simulate=True``, ``data`` is a fully sampled stack: every ``factor``-th line is
    kept, reconstructed and compared with the full stack; the figures (PSNR, SSIM, ROI ΔF/F
    trace NRMSE, and cubic interpolation's) are in
    ``result.metadata["neurorestore"]["simulation"]`` (use ``return_result=True``).

    Parameters
    ----------
    data : array-like
        The acquired lines: (y, x), (t|z, y, x) or (t, z, y, x); integer or float
        intensities; numpy, memmap or dask arrays. Fully sampled when ``simulate``.
    factor : int, optional
        Skip factor M, 2-16 (default 4; with ``model``, the model's: another is refused).
    axis : {"y", "x"}, optional
        The sparse axis (default "y"; with ``model``, the model's: another is refused).
    simulate : bool, default False
        ``data`` is fully sampled: drop lines, restore them and measure against it.
    reference : array-like, optional
        A fully sampled stack from the same rig to train on (pairs made by dropping lines)
        instead of the input.
    labels : array-like, optional
        A (y, x) ROI label image for the trace figures of ``simulate`` (default: the most
        active tiles).
    train_seconds, seed, device, model, out, dtype, progress, cancel, return_model, return_result
        The training budget in seconds (60), the random seed (0; None: a fresh one), the
        compute device ("auto"); the others as for :func:`restore`.
    **params
        Any other field of
        :class:`napari_neurorestore.core.methods.sparse.spec.SparseParams` (defaults
        there).

    Returns
    -------
    restored : numpy.ndarray
        float32 in the input's units, ``factor`` times more lines along ``axis``.
    model : TrainedModel
        Only when ``return_model``.

    See Also
    --------
    restore : any method by name, and the full result (``return_result=True``).

    Examples
    --------
    >>> from napari_neurorestore import sparse
    >>> from napari_neurorestore.core.simulate import simulate_calcium_movie
    >>> from napari_neurorestore.core.methods.sparse.spec import make_sparse
    >>> movie = simulate_calcium_movie(n_frames=200, shape=(64, 64), seed=0).raw
    >>> every_4th_row = make_sparse(movie, 4)       # what a 4x faster scan acquires
    >>> every_4th_row.shape
    (200, 16, 64)
    >>> full = sparse(every_4th_row, factor=4, train_seconds=15)
    >>> full.shape
    (200, 64, 64)

    Measured against the full movie instead:

    >>> res = sparse(movie, factor=4, simulate=True, train_seconds=15, return_result=True)
    >>> sim = res.metadata["neurorestore"]["simulation"]  # PSNR, SSIM, trace NRMSE
    """
    from ..core.methods.sparse.spec import SparseParams

    given = {**_given(factor=factor, axis=axis), **params}
    p = _params(SparseParams, simulate=simulate, train_seconds=train_seconds, seed=seed,
                device=device, **given)
    return _run("sparse", data, p, model, given, cancel, out, progress, return_model,
                return_result, reference=reference, labels=labels, dtype=dtype)
