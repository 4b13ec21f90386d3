"""The API's functions: any method by name (:func:`restore`), and one per method
(:func:`denoise`, :func:`sparse`, :func:`upsample`, :func:`isotropize`); see
:mod:`napari_neurorestore.api`."""

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



def upsample(
    data: Any,
    factor: int | None = None,
    *,
    lateral_only: bool | None = None,
    prior: str = "none",
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
    """Upsample a (z, y, x) volume or a (y, x) image by ``factor`` per axis with a network
    trained on the input itself (zero-shot, after Self-Vision).

    Area-sampling convention: each input pixel is the mean of the ``factor``-per-axis block
    of output pixels it covers (binning the output gives the input back when
    ``back_projection`` is on, the default). Output shape = input shape x factor; to overlay
    the input, give the output ``scale = input_scale / factor`` and
    ``translate = input_translate - (factor - 1) / (2 factor) * input_scale`` per upsampled
    axis (``return_result=True`` returns these as ``scale_factors``/``translate_shift``).

    Parameters
    ----------
    data : array-like
        (z, y, x) or (y, x); integer or float intensities; numpy, memmap or dask arrays
        work (read tile by tile).
    factor : {2, 3, 4}, optional
        Upsampling factor per axis (default 3; with ``model``, the model's: another is
        refused).
    lateral_only : bool, optional
        Upsample y and x only (3D input; default False; with ``model``, the model's:
        another is refused).
    prior : {"none", "simulated"}, default "none"
        ``"none"``: learn from the input alone; ``"simulated"``: also learn from a
        simulated neuron volume at the true scale.
    train_seconds, seed, device, model, out, dtype, progress, cancel, return_model, return_result
        The training budget in seconds (60), the random seed (0; None: a fresh one), the
        compute device ("auto"); the others as for :func:`restore`.
    **params
        Any other field of
        :class:`napari_neurorestore.core.methods.upsample.spec.UpsampleParams` (defaults
        there): ``ensemble``, ``back_projection``, ``tile_size``...

    Returns
    -------
    restored : numpy.ndarray
        float32 (a temporary memmap when very large) in the input's units, of shape
        input shape x ``factor`` on the upsampled axes.
    model : TrainedModel
        Only when ``return_model``.

    See Also
    --------
    restore : any method by name, and the full result (``return_result=True``).

    Examples
    --------
    >>> from napari_neurorestore import upsample
    >>> from napari_neurorestore.core.simulate import simulate_neuron_volume
    >>> from napari_neurorestore.core.methods.upsample.spec import bin_array
    >>> truth = simulate_neuron_volume((24, 144, 144), seed=1)
    >>> coarse = bin_array(truth, (3, 3, 3))        # (8, 48, 48): what a 3x coarser scan sees
    >>> fine = upsample(coarse, factor=3, train_seconds=15)
    >>> fine.shape
    (24, 144, 144)
    """
    from ..core.methods.upsample.spec import UpsampleParams

    given = {**_given(factor=factor, lateral_only=lateral_only), **params}
    p = _params(UpsampleParams, prior=prior, train_seconds=train_seconds, seed=seed,
                device=device, **given)
    return _run("upsample", data, p, model, given, cancel, out, progress, return_model,
                return_result, dtype=dtype)


def isotropize(
    data: Any,
    z_ratio: float | None = None,
    *,
    degradation: str = "gaussian",
    sigma_z: float | None = None,
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
    """Axial isotropization (after Self-Net) of a (z, y, x) volume whose z pixel is
    ``z_ratio`` times its lateral pixel.

    A restorer trained on the volume's own lateral slices (degraded the way z is)
    restores every xz and yz slice after cubic interpolation in z; the two are averaged.
    Output: round((z - 1) R) + 1 slices; output slice k lies at input slice k / R, so give
    the output layer ``scale = (z_scale / R, y_scale, x_scale)`` and the input's translate
    (``return_result=True`` returns ``scale_factors`` = (1/R, 1, 1)).

    Parameters
    ----------
    data : array-like
        (z, y, x), integer or float intensities; numpy, memmap or dask arrays (read block by
        block).
    z_ratio : float, optional
        z pixel size / lateral pixel size, >= 1 (required unless ``model`` is given; with
        ``model``, the model's: another is refused).
    degradation : {"gaussian", "learned"}, default "gaussian"
        How the lateral slices are degraded for training: a Gaussian axial blur, or one
        learned adversarially.
    sigma_z : float, optional
        Axial blur beyond the lateral one, Gaussian sigma in lateral pixels (None:
        estimated from the data's axial and lateral spectra).
    train_seconds, seed, device, model, out, dtype, progress, cancel, return_model, return_result
        The training budget in seconds (60), the random seed (0; None: a fresh one), the
        compute device ("auto"); the others as for :func:`restore`.
    **params
        Any other field of
        :class:`napari_neurorestore.core.methods.isotropize.spec.IsotropizeParams`
        (defaults there).

    Returns
    -------
    restored : numpy.ndarray
        float32 in the input's units, shape (round((z - 1) R) + 1, y, x).
    model : TrainedModel
        Only when ``return_model``.

    Raises
    ------
    ValueError
        When neither ``z_ratio`` nor ``model`` is given.

    See Also
    --------
    restore : any method by name, and the full result (``return_result=True``).

    Examples
    --------
    >>> from napari_neurorestore import isotropize
    >>> from napari_neurorestore.core.simulate import degrade_axial, simulate_neuron_volume
    >>> sim = degrade_axial(simulate_neuron_volume((48, 64, 64), seed=0), sigma_z=2.0,
    ...                     ratio=3.0, photons=200.0)
    >>> sim.raw.shape                               # every 3rd slice, blurred in z
    (16, 64, 64)
    >>> iso = isotropize(sim.raw, z_ratio=3.0, train_seconds=15)
    >>> iso.shape                                   # sim.truth's shape
    (46, 64, 64)
    """
    from ..core.methods.isotropize.spec import IsotropizeParams

    if model is None and z_ratio is None:
        raise ValueError("z_ratio is required (z pixel size / lateral pixel size)")
    p = _params(IsotropizeParams, z_ratio=2.0 if z_ratio is None else z_ratio, degradation=degradation,
                         sigma_z=sigma_z, train_seconds=train_seconds, seed=seed,
                         device=device, **params)
    return _run("isotropize", data, p, model, {**_given(z_ratio=z_ratio), **params}, cancel, out,
                progress, return_model, return_result, dtype=dtype)
