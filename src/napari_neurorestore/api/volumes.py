"""The API's functions over volumes: zero-shot upsampling and axial isotropization (see
:mod:`napari_neurorestore.api`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.progress import CancelToken, Progress
from ._common import _given, _params, _run


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
