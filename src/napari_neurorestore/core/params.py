"""The machinery of the parameter dataclasses: field metadata (:func:`opt`), the shared
fields and checks, and the :class:`_Params` base.

Each method's own dataclass lives in its light module (``methods/<name>/spec.py``); the
widget, the CLI and the Python API build their defaults from it
(:func:`napari_neurorestore.core.methods.params_for`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, field, fields
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
    ``choices`` (the allowed values), ``metavar`` (the CLI's placeholder), ``const`` (the
    value of the CLI's flag given without one), ``needs`` (a
    dict ``{other field: value}``: the field has no effect unless every other field has
    that value; the widget's form greys it out otherwise).
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

    def _check_training(self, length: str, patch: tuple[int, int], width_max: int,
                        patch_multiple: int = 4) -> None:
        """Validate the training fields: the length (``length``: "epochs" or "steps"), the
        common ones, ``patch_size`` (in ``patch``, a multiple of ``patch_multiple``),
        ``batch_size`` and ``width`` (4 to ``width_max``). A ``patch_size`` of None is the
        method's automatic choice."""
        _check_length(length, getattr(self, length), self.train_seconds)
        self._check_common()
        if self.patch_size is not None:
            _check_int("patch_size", self.patch_size, *patch)
            if self.patch_size % patch_multiple:
                raise ValueError(f"patch_size must be a multiple of {patch_multiple}, got "
                                 f"{self.patch_size}")
        _check_int("batch_size", self.batch_size, 1, 1024)
        _check_int("width", self.width, 4, width_max)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Build from a dict, ignoring keys that are not fields (e.g. from a newer version)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _check_choice(obj: Any, name: str) -> None:
    f = next(f for f in fields(obj) if f.name == name)
    choices = f.metadata["choices"]
    if getattr(obj, name) not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {getattr(obj, name)!r}")


def pass_cap_steps(passes: float, data_pixels: int, step_pixels: int) -> int:
    """The optimisation steps that make ``passes`` passes over ``data_pixels`` training
    pixels, ``step_pixels`` a step: the cap of a run its time budget ends (a small
    recording: longer training fits what only its few frames or slices hold).

    >>> pass_cap_steps(150, 26 * 16 * 16, 4 * 16 * 16)
    975
    """
    return max(1, int(-(-passes * max(1, data_pixels) // max(1, step_pixels))))


def pass_cap_note(info: dict[str, Any], what: str) -> str:
    """The training summary's words for a run the pass cap ended (``info["pass_cap"]``;
    empty when it did not): ``what`` names the training data ("the movie's frames")."""
    cap = info.get("pass_cap")
    if not cap:
        return ""
    return (f"; training ended after {cap['passes']:g} passes over {what} ({cap['steps']} "
            f"steps, {info.get('train_seconds', 0):g} s): on data this small, longer "
            f"training fits it and loses")
