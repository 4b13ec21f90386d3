"""Helpers shared by the benchmark scripts (numbers only; no plotting)."""

from __future__ import annotations

import platform
import resource
import sys
import time


def machine() -> str:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"Python {sys.version.split()[0]}")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
