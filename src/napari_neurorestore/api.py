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


def _params(cls: type, **kw: Any) -> Any:
    """``cls(**kw)`` (a parameter dataclass), with each value's type checked first: a clear
    TypeError naming the argument instead of one from deep inside (``train_seconds="2"``)."""
    import numbers
    from dataclasses import fields

    names = {f.name: str(f.type) for f in fields(cls)}
    for name, value in kw.items():
        if name not in names:
            raise TypeError(f"unknown parameter {name!r} for {cls.__name__}; known: "
                            f"{', '.join(sorted(names))}")
        ann = {t.strip() for t in names[name].split("|")}
        if value is None:
            if "None" not in ann:
                raise TypeError(f"{name}: None is not allowed")
            continue
        if "bool" in ann:
            ok = isinstance(value, bool) or type(value).__name__ == "bool_"
            want = "True or False"
        elif "int" in ann:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            want = "an integer"
        elif "float" in ann:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            want = "a number"
        elif "str" in ann:
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise TypeError(f"{name}: expected {want}, got {value!r} "
                            f"({type(value).__name__})")
    return cls(**kw)


def _given(**kw: Any) -> dict[str, Any]:
    """The named arguments a caller set (None: not set; the dataclass's default, or with a
    model the model's value). A saved model's fixed parameters are checked against
    them (:meth:`~.core.methods.base.Method.merge_params`)."""
    return {k: v for k, v in kw.items() if v is not None}


def _run(method: str, data: Any, params: Any, model: Any, given: dict | None, cancel: Any,
         out: Any, progress: Any, return_model: bool, return_result: bool = False,
         **options: Any):
    """Run ``method`` through the engine (a model path is loaded, its method checked and
    its parameters merged there) and shape what the API function returns."""
    from .core.engine import restore

    gen = restore(method, data, params, model=model, given=given, cancel=cancel, out=out,
                  **options)
    result = drain(gen, progress)
    if return_result:
        return result
    return (result.data, result.model) if return_model else result.data


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
    """Restore ``data`` with any registered method by name (``"denoise"``, ``"sparse"``,
    ``"upsample"``, ``"isotropize"``, or one added to the registry): ``params`` are the
    fields of that method's Params class (``core.methods.params_for(method)``); the other
    arguments are those of :func:`denoise`. Returns the result array (float32, the input's
    units), and the model when ``return_model``; the full :class:`RestoreResult` (data,
    model, metadata, grid) when ``return_result``."""
    from .core.methods import params_for

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

    Parameters
    ----------
    data : array-like
        Integer or float intensities; numpy, memmap or dask arrays work (read in chunks).
    window, stride, epochs, train_seconds, seed, device, **params
        See :class:`napari_neurorestore.core.methods.denoise_spec.DenoiseParams` (defaults there).
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
    from .core.methods.denoise_spec import DenoiseParams

    given = {**_given(window=window, stride=stride, epochs=epochs,
                      train_seconds=train_seconds), **params}
    p = _params(DenoiseParams, seed=seed, device=device, **given)
    return _run("denoise", data, p, model, given, cancel, out, progress, return_model,
                dtype=dtype)


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
        Integer or float intensities; numpy, memmap or dask arrays work (read tile by tile).
    factor : 2, 3 or 4 (default 3; with ``model``, the model's: another is refused)
    lateral_only : upsample y and x only (3D input; default False; with ``model``, the
        model's: another is refused).
    prior : "none" (the input alone) or "simulated" (also learn from a simulated neuron
        volume at the true scale).
    train_seconds, seed, device, **params
        See :class:`napari_neurorestore.core.methods.upsample_spec.UpsampleParams` (defaults there).
    model : TrainedModel or path, optional
        Skip training and apply this model.
    out : array-like, optional
        Where to write the result (e.g. a memmap or zarr array of the output shape).
    progress, cancel : as for :func:`denoise`.
    return_model : also return the trained model.
    return_result : return the full :class:`RestoreResult` (data, model, metadata, grid).

    Returns
    -------
    numpy.ndarray float32 (a temporary memmap when very large) in the input's units, and the
    model when ``return_model``.
    """
    from .core.methods.upsample_spec import UpsampleParams

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
    ``z_ratio`` times its lateral pixel: a restorer trained on the volume's own lateral
    slices (degraded the way z is) restores every xz and yz slice after cubic interpolation
    in z; the two are averaged.

    Output: round((z - 1) R) + 1 slices; output slice k lies at input slice k / R, so give
    the output layer ``scale = (z_scale / R, y_scale, x_scale)`` and the input's translate
    (``return_result=True`` returns ``scale_factors`` = (1/R, 1, 1)).

    Parameters
    ----------
    data : array-like
        (z, y, x), integer or float intensities; numpy, memmap or dask arrays (read block by
        block).
    z_ratio : float >= 1
        z pixel size / lateral pixel size (required unless ``model`` is given).
    degradation : "gaussian" (default) or "learned" (adversarially learned axial blur).
    sigma_z : axial blur beyond the lateral one, Gaussian sigma in lateral pixels
        (None = estimated from the data's axial and lateral spectra).
    train_seconds, seed, device, **params
        See :class:`napari_neurorestore.core.methods.isotropize_spec.IsotropizeParams` (defaults there).
    model : TrainedModel or path, optional
        Skip training and apply this model (its z ratio is used).
    out : array-like, optional
        Where to write the result (shape (round((z - 1) R) + 1, y, x)).
    progress, cancel : as for :func:`denoise`.
    return_model : also return the trained model.
    return_result : return the full :class:`RestoreResult` (data, model, metadata, grid).

    Returns
    -------
    numpy.ndarray float32 in the input's units, and the model when ``return_model``.
    """
    from .core.methods.isotropize_spec import IsotropizeParams

    if model is None and z_ratio is None:
        raise ValueError("z_ratio is required (z pixel size / lateral pixel size)")
    p = _params(IsotropizeParams, z_ratio=2.0 if z_ratio is None else z_ratio, degradation=degradation,
                         sigma_z=sigma_z, train_seconds=train_seconds, seed=seed,
                         device=device, **params)
    return _run("isotropize", data, p, model, {**_given(z_ratio=z_ratio), **params}, cancel, out,
                progress, return_model, return_result, dtype=dtype)


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
    ``labels`` (a (y, x) ROI label image) sets the ROIs of the trace figures.

    Parameters
    ----------
    factor : skip factor M (2-16; default 4; with ``model``, the model's: another is
        refused).
    axis : "y" (default) or "x" (with ``model``, the model's: another is refused).
    train_seconds, seed, device, **params
        See :class:`napari_neurorestore.core.methods.sparse_spec.SparseParams` (defaults there).
    model : TrainedModel or path, optional
        Skip training and apply this model.
    out : array-like, optional
        Where to write the result (shape: ``core.methods.sparse.output_shape``).
    progress, cancel : as for :func:`denoise`.
    return_model : also return the trained model.
    return_result : return the full :class:`RestoreResult` (data, model, metadata, grid).

    Returns
    -------
    numpy.ndarray float32 in the input's units, and the model when ``return_model``.
    """
    from .core.methods.sparse_spec import SparseParams

    given = {**_given(factor=factor, axis=axis), **params}
    p = _params(SparseParams, simulate=simulate, train_seconds=train_seconds, seed=seed,
                device=device, **given)
    return _run("sparse", data, p, model, given, cancel, out, progress, return_model,
                return_result, reference=reference, labels=labels, dtype=dtype)
