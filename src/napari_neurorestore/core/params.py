"""One frozen, validated dataclass of parameters per method, with defaults.

The widget, the CLI and the Python API all build their defaults from these classes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be {rng}, got {value}")


def opt(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with the metadata the CLI and the widget's form read.

    Keys (all optional): ``help`` (one line: CLI help, widget tooltip), ``label`` (the
    widget's label), ``min``/``max``/``step`` (ranges for the form and the help text; the
    dataclass's own validation stays the rule), ``flag`` (the CLI flag when it differs
    from ``--field-name``; booleans that default to True get ``--no-field-name``),
    ``choices`` (the allowed values), ``metavar`` (the CLI's placeholder).
    """
    return field(default=default, metadata={"help": help, **meta})


def field_docs(cls: type) -> dict[str, str]:
    """``name : text`` entries of a parameter class's docstring (continuation lines joined;
    ``a, b : text`` gives both names the text)."""
    out: dict[str, str] = {}
    names: list[str] = []
    for line in (cls.__doc__ or "").splitlines():
        m = re.match(r"^\s{4}([a-z_][a-z0-9_, ]*) : (.*)$", line)
        if m:
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2).strip()
        elif names and line.startswith(" " * 8) and line.strip():
            for n in names:
                out[n] += " " + line.strip()
        else:
            names = []
    return out


#: every method's training budget: the same default wall time for all four (s)
TRAIN_SECONDS = 60.0


def _seconds(budget: str) -> Any:
    return opt(TRAIN_SECONDS, f"training time budget in seconds (default {TRAIN_SECONDS:g} s, "
               f"as for every method; reading the training data included); whichever of "
               f"this and the training length in {budget} (--steps) comes first ends training",
               min=0.1, step=10, label="training time (s)")


def _length(unit: str, what: str) -> Any:
    """The field that ends training after a number of ``unit`` (None: the time budget alone
    ends it). The CLI's flag is ``--steps`` for every method (``--epochs`` is an alias);
    ``what`` says what one unit is."""
    return opt(None, f"training length in {unit} ({what}; default: no limit, the time "
               "budget ends training)", min=1, max=10_000_000, flag="--steps",
               aliases=("--epochs",), metavar=unit.upper())


def _check_length(name: str, value: Any, train_seconds: Any) -> None:
    if value is not None:
        _check_int(name, value, 1)
    elif train_seconds is None:
        raise ValueError(f"set {name} or train_seconds (or both): training needs an end")


def _common() -> dict[str, Any]:
    """The metadata of the fields every trainable method has (learning_rate, seed, device)."""
    return {"learning_rate": opt(1e-3, "Adam's initial learning rate", min=1e-6, max=0.5,
                                 step=1e-4),
            "seed": opt(0, "random seed", min=0, max=2**31 - 1),
            "device": opt("auto", "compute device: auto (a CUDA or Apple GPU when there is one, "
                          "else the CPU), cpu, cuda or mps", choices=("auto", "cpu", "cuda", "mps"))}


class _Params:
    """Shared behaviour of the parameter dataclasses (not a dataclass itself: it adds no
    fields, so each method keeps its own field order for the widget)."""

    def _check_common(self) -> None:
        """Validate the fields every trainable method has."""
        if self.train_seconds is not None and not self.train_seconds > 0:
            raise ValueError(f"train_seconds must be positive or None, got {self.train_seconds}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        from .device import DEVICES

        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Build from a dict, ignoring keys that are not fields (e.g. from a newer version)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class DenoiseParams(_Params):
    """Parameters of the self-supervised temporal denoiser (after FAST).

    window : frames in the temporal window C (odd). The centre frame is predicted from
        the other ``window - 1`` frames, never from itself, so its noise cannot be learned.
    stride : temporal step S between training windows; an epoch visits every S-th window.
    epochs : passes over the windows of the movie (None = no limit: ``train_seconds``
        alone ends training; the CLI's ``--steps``).
    train_seconds : wall-time budget of training, reading the training frames included
        (default 60 s, as for every method; None = no cap, then ``epochs`` must be set);
        whichever of ``epochs`` and ``train_seconds`` comes first ends training.
    patch_size : side of the random square crops used for training (multiple of 4).
    batch_size : training windows per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level (speed/quality trade-off).
    seed : seed for the sampler, the augmentations and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    chunk_frames : frames per inference chunk (bounds memory; does not change the result).
    """

    window: int = opt(11, "temporal window C, odd", min=3, max=31, step=2, label="window (frames)")
    stride: int = opt(1, "training window stride S", min=1, max=31)
    epochs: int | None = _length("epochs", "an epoch: a pass over the movie's windows")
    train_seconds: float | None = _seconds("epochs")
    patch_size: int = opt(32, "side of the training crops (multiple of 4)", min=16, max=1024, step=4)
    batch_size: int = opt(16, "training windows per optimisation step", min=1, max=1024)
    learning_rate: float = opt(2e-3, "Adam's initial learning rate", min=1e-6, max=0.5, step=1e-4)
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    chunk_frames: int = opt(64, "frames per inference chunk and per zarr chunk (memory bound)", min=1, max=100000)
    centre_correction: bool = opt(True, "add back what the temporal network missed in the frame "
                                  "itself (Wiener filter of the residual, from the measured "
                                  "noise spectrum); also gives the self-check",
                                  label="centre-frame correction")

    method = "denoise"

    def __post_init__(self) -> None:
        _check_int("window", self.window, 3, 31)
        if self.window % 2 == 0:
            raise ValueError(f"window must be odd (the centre frame is predicted), got {self.window}")
        _check_int("stride", self.stride, 1, self.window)
        _check_length("epochs", self.epochs, self.train_seconds)
        self._check_common()
        _check_int("patch_size", self.patch_size, 16, 1024)
        if self.patch_size % 4:
            raise ValueError(f"patch_size must be a multiple of 4, got {self.patch_size}")
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("width", self.width, 4, 128)
        _check_int("chunk_frames", self.chunk_frames, 1)

    @property
    def half_window(self) -> int:
        return self.window // 2



@dataclass(frozen=True)
class UpsampleParams(_Params):
    """Parameters of zero-shot upsampling (after Self-Vision).

    factor : output pixels per input pixel along each upsampled axis (2, 3 or 4).
    lateral_only : upsample y and x only (a 3D volume keeps its z sampling).
    prior : "none" trains on the input alone (strict zero-shot); "simulated" also trains on
        a procedurally generated neuron volume at the true scale (no user data), mixed with
        the input's own crops. See the benchmark for when each wins.
    steps : optimisation steps (None = no limit: ``train_seconds`` alone ends training;
        whichever of ``steps`` and ``train_seconds`` comes first ends training).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the training crops, in input pixels (rounded down to a multiple of
        the factor; clipped to the volume's depth along z).
    batch_size, learning_rate, width, depth : training batch, Adam's initial learning rate,
        channels and hidden layers of the network.
    base : the interpolation the network adds its residual to ("cubic" or "linear").
    scale_augment : half of the batches are crops interpolated up by a random factor in
        [1, factor] before binning, so structures also appear at the size they have at the
        scale the network is applied at.
    back_projection : make the output bin back exactly to the input (data consistency).
    ensemble : average the predictions over flips (8x slower inference).
    two_stage : factor 4 as two 2x stages with one 2x network.
    seed, device : as for the other methods.
    tile_size : side of the inference tiles (input pixels); bounds memory, does not change
        the result.
    tile_overlap : minimum context read around each tile (input pixels). The context is
        never less than the network's receptive field (plus back-projection's), so tile
        centres are exact and are stitched without blending; 0 = just that.
    """

    factor: int = opt(3, "upsampling factor per axis", min=2, max=4, choices=(2, 3, 4))
    lateral_only: bool = opt(False, "upsample y and x only")
    prior: str = opt("none", "'simulated': also train on a simulated neuron volume at the true scale ('none': the input alone)", choices=("none", "simulated"))
    steps: int | None = _length("steps", "optimisation steps of one batch")
    train_seconds: float | None = _seconds("steps")
    patch_size: int = opt(36, "training crop side in input pixels", min=8, max=512)
    batch_size: int = opt(8, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=256)
    depth: int = opt(4, "hidden layers of the network", min=0, max=16)
    base: str = opt("cubic", "the interpolation the network adds its residual to", choices=("cubic", "linear"))
    scale_augment: bool = opt(True, "scale augmentation: half of the batches are crops interpolated up by a random factor")
    back_projection: bool = opt(True, "force the output to bin back to the input (data consistency)")
    ensemble: bool = opt(False, "average over flips (8x slower)")
    two_stage: bool = opt(False, "factor 4 as two 2x stages")
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    tile_size: int = opt(64, "inference tile side in input pixels (memory bound; the CLI's default: the largest up to 64 whose working memory fits --memory-budget)", min=8, max=4096, step=8)
    tile_overlap: int = opt(0, "minimum context read around each tile (input pixels; 0 = the receptive field)", min=0, max=256)

    method = "upsample"

    def __post_init__(self) -> None:
        _check_int("factor", self.factor, 2, 4)
        for name in ("lateral_only", "scale_augment", "back_projection", "ensemble",
                     "two_stage"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_choice(self, "prior")
        _check_choice(self, "base")
        if self.two_stage and self.factor != 4:
            raise ValueError("two_stage applies to factor 4 only")
        _check_length("steps", self.steps, self.train_seconds)
        self._check_common()
        _check_int("patch_size", self.patch_size, 8, 512)
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("width", self.width, 4, 256)
        _check_int("depth", self.depth, 0, 16)
        _check_int("tile_size", self.tile_size, 8)
        _check_int("tile_overlap", self.tile_overlap, 0)


def _check_choice(obj: Any, name: str) -> None:
    f = next(f for f in fields(obj) if f.name == name)
    choices = f.metadata["choices"]
    if getattr(obj, name) not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {getattr(obj, name)!r}")


@dataclass(frozen=True)
class SparseParams(_Params):
    """Parameters of sparse-axis reconstruction (after IRIS): restore the lines a scan
    skipped along one axis, learning from the fully sampled other axis.

    factor : skip factor M: one line in M was acquired (acquired line i lies at full-frame
        line i*M; the output has M times more lines).
    axis : the under-sampled axis: "y" (rows, the slow scan axis) or "x" (columns).
    simulate : simulate from a fully sampled stack: keep every M-th line of the input,
        reconstruct it, and report PSNR, SSIM and trace NRMSE against the full stack.
    context : neighbouring frames (or planes) on each side given to the network as
        extra input (0 = frame by frame).
    denoise : also denoise the acquired lines (their values are then a restored estimate);
        off keeps the acquired lines exactly as measured.
    epochs : training length: an epoch draws about as many random crops as the frames
        hold (at least 10 steps); None = no limit; whichever of ``epochs`` and
        ``train_seconds`` comes first ends training (the CLI's ``--steps``).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the training crops in samples (multiple of 4).
    batch_size : training crops per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level (speed/quality trade-off).
    seed : seed for the sampler and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    chunk_frames : frames per inference chunk (bounds memory; does not change the result).
    """

    factor: int = opt(4, "skip factor M, 2-16: one line in M was acquired", min=2, max=16)
    axis: str = opt("y", "the under-sampled axis (y: the slow scan axis)", choices=("y", "x"))
    simulate: bool = opt(False, "the input is fully sampled: keep every M-th line, reconstruct, and print PSNR/SSIM/trace NRMSE against the full stack")
    context: int = opt(6, "neighbouring frames on each side given to the network", min=0, max=8)
    denoise: bool = opt(True, "also denoise the acquired lines (off: keep them exactly as measured)")
    epochs: int | None = _length("epochs", "an epoch: about as many crops as the frames "
                                 "hold, at least 10 steps")
    train_seconds: float | None = _seconds("epochs")
    patch_size: int = opt(32, "side of the training crops in samples (multiple of 4)", min=8, max=1024, step=4)
    batch_size: int = opt(16, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    chunk_frames: int = opt(64, "frames per inference chunk (memory bound)", min=1, max=100000)

    method = "sparse"

    def __post_init__(self) -> None:
        _check_int("factor", self.factor, 2, 16)
        if self.axis not in ("y", "x"):
            raise ValueError(f"axis must be 'y' or 'x', got {self.axis!r}")
        for name in ("simulate", "denoise"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_int("context", self.context, 0, 8)
        _check_length("epochs", self.epochs, self.train_seconds)
        self._check_common()
        _check_int("patch_size", self.patch_size, 8, 1024)
        if self.patch_size % 4:
            raise ValueError(f"patch_size must be a multiple of 4, got {self.patch_size}")
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("width", self.width, 4, 128)
        _check_int("chunk_frames", self.chunk_frames, 1)


@dataclass(frozen=True)
class IsotropizeParams(_Params):
    """Parameters of axial isotropization (after Self-Net).

    z_ratio : R, the z pixel size over the lateral (y, x) pixel size (>= 1; the widget
        reads it from the layer's scale). The output has round((z - 1) R) + 1 slices.
    degradation : how lateral slices are degraded to look axial for training: "gaussian"
        (a Gaussian axial blur of width ``sigma_z``) or "learned" (a blur kernel learned
        adversarially so degraded lateral slices look like the real axial slices).
    sigma_z : the axial blur beyond the lateral one, as a Gaussian sigma in lateral
        pixels (None = estimate it from the volume's axial and lateral spectra).
    steps : optimisation steps (None = no limit; whichever of ``steps`` and
        ``train_seconds`` ends first).
    train_seconds : wall-time budget of training (default 60 s; None = no cap).
    patch_size : side of the square training crops (multiple of 4).
    batch_size : training crops per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level.
    seed : seed for the sampler, the degradations and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    tile_size : lateral side of the inference blocks (bounds memory; does not change
        the result).
    match_noise : top the noise of the degraded training inputs up to the data's level
        (blurring averages noise down; real axial slices are as noisy as lateral ones).
    """

    z_ratio: float = opt(2.0, "z pixel size / lateral pixel size (required unless --model is given)", min=1.0, max=16.0, step=0.1, metavar="R", label="z ratio")
    degradation: str = opt("gaussian", "training degradation model", choices=("gaussian", "learned"))
    sigma_z: float | None = opt(None, "axial blur beyond the lateral one, Gaussian sigma in lateral pixels (None: estimated from the data)", min=0.0, max=32.0, step=0.1, metavar="S")
    steps: int | None = _length("steps", "optimisation steps of one batch")
    train_seconds: float | None = _seconds("steps")
    patch_size: int = opt(64, "side of the square training crops (multiple of 4)", min=16, max=1024, step=4)
    batch_size: int = opt(8, "training crops per optimisation step", min=1, max=1024)
    learning_rate: float = _common()["learning_rate"]
    width: int = opt(16, "network width", min=4, max=128)
    seed: int | None = _common()["seed"]
    device: str = _common()["device"]
    tile_size: int = opt(256, "lateral inference block size (memory bound)", min=16, max=4096, step=16)
    match_noise: bool = opt(True, "top the noise of the degraded training inputs up to the data's level")

    method = "isotropize"

    def __post_init__(self) -> None:
        r = self.z_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 1.0 <= r <= 16.0:
            raise ValueError(f"z_ratio must be a number between 1 and 16 (z pixel size over "
                             f"lateral pixel size), got {r!r}")
        object.__setattr__(self, "z_ratio", float(r))
        _check_choice(self, "degradation")
        if self.sigma_z is not None:
            s = self.sigma_z
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 32:
                raise ValueError(f"sigma_z must be between 0 and 32 lateral pixels or None "
                                 f"(estimate), got {s!r}")
            object.__setattr__(self, "sigma_z", float(s))
        _check_length("steps", self.steps, self.train_seconds)
        self._check_common()
        _check_int("patch_size", self.patch_size, 16, 1024)
        if self.patch_size % 4:
            raise ValueError(f"patch_size must be a multiple of 4, got {self.patch_size}")
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("width", self.width, 4, 128)
        _check_int("tile_size", self.tile_size, 16)
        if not isinstance(self.match_noise, bool):
            raise ValueError(f"match_noise must be True or False, got {self.match_noise!r}")


PARAMS = {"denoise": DenoiseParams, "upsample": UpsampleParams}
PARAMS["sparse"] = SparseParams
PARAMS["isotropize"] = IsotropizeParams
