"""Shared fixtures. torch is imported before any QApplication exists (pytorch #11326)."""

import numpy as np
import pytest

try:  # import torch early: importing it after a QApplication exists has crashed on Linux
    import torch  # noqa: F401
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def tiny_movie():
    """A small simulated calcium movie with ground truth (fast to train on)."""
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    return simulate_calcium_movie(n_frames=80, shape=(40, 40), n_cells=6, seed=3)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a whole test module: tiny tensors run faster so, and are immune
    to OpenMP spin-waits on a busy CPU. Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` (module scope, so that the
    module-scoped fixtures that train models run under it too)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def viewer(make_napari_viewer):
    """A napari viewer (closed by napari's fixture at the end of the test)."""
    return make_napari_viewer()
