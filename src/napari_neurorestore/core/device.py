"""Choose the torch device explicitly: 'auto' picks cuda, then mps, then cpu."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto"):
    """Return a ``torch.device`` for ``name`` (one of :data:`DEVICES`).

    Raises ValueError for an unknown name and RuntimeError when the requested
    accelerator is not available.
    """
    import torch

    name = (name or "auto").lower()
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("device 'mps' requested but it is not available")
    return torch.device(name)
