"""Choose the torch device explicitly: 'auto' picks cuda, then mps, then cpu."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(ValueError, RuntimeError):
    """The requested device does not exist on this machine (a user error: a ValueError, and
    a RuntimeError as before)."""


def resolve_device(name: str = "auto"):
    """Return a ``torch.device`` for ``name`` (one of :data:`DEVICES`).

    Raises ValueError for an unknown name and :class:`DeviceError` (a ValueError and a
    RuntimeError) when the requested accelerator is not available.
    """
    import torch

    name = (name or "auto").lower()
    if name not in DEVICES:
        raise DeviceError(f"--device: unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: torch sees no CUDA GPU on this machine; use "
                          "--device cpu (or auto)")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("--device mps: Apple's MPS is not available on this machine; "
                              "use --device cpu (or auto)")
    return torch.device(name)
