"""Trained-model container and its (de)serialisation. torch is imported only to save/load."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_FORMAT_VERSION = 1


@dataclass
class TrainedModel:
    """Everything needed to apply a trained network again.

    method : "denoise", ...
    params : the method's parameters as a plain dict.
    state_dict : the network's weights (torch tensors on the CPU).
    norm : intensity normalisation, e.g. {"mean": .., "std": ..}, so outputs return to the
        input's units.
    info : training facts (seconds, steps, final loss, software version).
    """

    method: str
    params: dict[str, Any]
    state_dict: dict[str, Any]
    norm: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    version: int = MODEL_FORMAT_VERSION


def save_model(model: TrainedModel, path: str | os.PathLike, overwrite: bool = False) -> Path:
    import torch

    from .paths import check_output_path

    p = check_output_path(path, overwrite)
    # written under a temporary name and renamed into place: a failed save (a full disk)
    # leaves neither a 0-byte file nor a half-written one, and an existing model stays
    tmp = p.with_name(f".{p.name}.incomplete")
    try:
        torch.save({"format": "napari-neurorestore", "version": model.version,
                    "method": model.method, "params": model.params,
                    "state_dict": model.state_dict, "norm": model.norm, "info": model.info},
                   tmp)
        os.replace(tmp, p)
    except (OSError, RuntimeError) as e:  # torch reports a failed write as RuntimeError
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not save the model to {p}: {e}; nothing was written there"
                      ) from e
    return p


#: the room a saved model needs at most (bytes; ours are a few MB)
MODEL_BYTES = 64 * 2**20


def check_model_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """The checks :func:`save_model` makes, plus free space, without writing: call it before
    training so that a bad ``--save-model`` path fails before any work."""
    from .paths import check_free_space, check_output_path

    p = check_output_path(path, overwrite)
    if p.is_dir():
        raise IsADirectoryError(f"--save-model {p} is a folder; give a file name (M.pt)")
    check_free_space(p.parent if str(p.parent) else ".", MODEL_BYTES, f"--save-model {p}")
    return p


def load_model(path: str | os.PathLike) -> TrainedModel:
    import torch

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file {p} does not exist")
    if p.is_dir():
        raise ValueError(f"model file {p} is a folder, not a saved model")
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or an unsafe pickle
        why = " ".join(str(e).split())
        why = why if len(why) <= 160 else why[:157] + "..."
        raise ValueError(f"{p} is not a napari-neurorestore model file "
                         f"({type(e).__name__}: {why})") from e
    if not isinstance(d, dict) or d.get("format") != "napari-neurorestore":
        raise ValueError(f"{p} is not a napari-neurorestore model file")
    if d.get("version", 0) > MODEL_FORMAT_VERSION:
        raise ValueError(f"{p} was saved by a newer napari-neurorestore (format {d['version']})")
    try:
        return TrainedModel(d["method"], d["params"], d["state_dict"], d["norm"],
                            d.get("info", {}), d["version"])
    except KeyError as e:
        raise ValueError(f"{p} is an incomplete napari-neurorestore model file (no {e})"
                         ) from e


@dataclass
class RestoreResult:
    """What a method's ``run`` returns: the restored array, the model and layer metadata.

    scale_factors : per-axis factors by which the output's pixel size differs from the
        input's (e.g. (1, 1/M, 1) for sparse-axis reconstruction along y); None = same grid.
    translate_shift : per-axis shift of the output's origin, in input pixels
        (e.g. -(f - 1) / (2 f) for area-sampled upsampling by f); None = no shift.
    """

    data: Any
    model: TrainedModel
    metadata: dict[str, Any]
    suffix: str
    scale_factors: tuple[float, ...] | None = None
    translate_shift: tuple[float, ...] | None = None
