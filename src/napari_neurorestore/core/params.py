"""One frozen, validated dataclass of parameters per method, with defaults.

The widget, the CLI and the Python API all build their defaults from these classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be {rng}, got {value}")


@dataclass(frozen=True)
class DenoiseParams:
    """Parameters of the self-supervised temporal denoiser (after FAST).

    window : frames in the temporal window C (odd). The centre frame is predicted from
        the other ``window - 1`` frames, never from itself, so its noise cannot be learned.
    stride : temporal step S between training windows; an epoch visits every S-th window.
    epochs : passes over the windows of the movie.
    train_seconds : wall-time cap on training (None = no cap); whichever of
        ``epochs`` and ``train_seconds`` comes first ends training.
    patch_size : side of the random square crops used for training (multiple of 4).
    batch_size : training windows per optimisation step.
    learning_rate : Adam's initial learning rate (cosine-decayed to 10 %).
    width : channels of the network's first level (speed/quality trade-off).
    seed : seed for the sampler, the augmentations and the weights (None = random).
    device : "auto", "cpu", "cuda" or "mps".
    chunk_frames : frames per inference chunk (bounds memory; does not change the result).
    """

    window: int = 7
    stride: int = 1
    epochs: int = 40
    train_seconds: float | None = None
    patch_size: int = 64
    batch_size: int = 16
    learning_rate: float = 1e-3
    width: int = 16
    seed: int | None = 0
    device: str = "auto"
    chunk_frames: int = 64

    method = "denoise"

    def __post_init__(self) -> None:
        _check_int("window", self.window, 3, 31)
        if self.window % 2 == 0:
            raise ValueError(f"window must be odd (the centre frame is predicted), got {self.window}")
        _check_int("stride", self.stride, 1, self.window)
        _check_int("epochs", self.epochs, 1)
        if self.train_seconds is not None and not self.train_seconds > 0:
            raise ValueError(f"train_seconds must be positive or None, got {self.train_seconds}")
        _check_int("patch_size", self.patch_size, 16, 1024)
        if self.patch_size % 4:
            raise ValueError(f"patch_size must be a multiple of 4, got {self.patch_size}")
        _check_int("batch_size", self.batch_size, 1, 1024)
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        _check_int("width", self.width, 4, 128)
        if self.seed is not None:
            _check_int("seed", self.seed, 0)
        from .device import DEVICES

        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        _check_int("chunk_frames", self.chunk_frames, 1)

    @property
    def half_window(self) -> int:
        return self.window // 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DenoiseParams:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PARAMS = {"denoise": DenoiseParams}
