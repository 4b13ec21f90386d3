"""The cost estimate of a --model run probes the network, as training runs do."""

import numpy as np
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.core import cost


def test_model_run_estimate_probes_the_network(tmp_path, capsys, monkeypatch):
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, np.random.default_rng(0).poisson(20, (20, 32, 32)).astype(np.uint16))
    model = tmp_path / "m.pt"
    assert main(["denoise", str(movie), "-o", str(tmp_path / "a.tif"), "--steps", "1",
                 "--window", "5", "--patch-size", "16", "--device", "cpu", "-q",
                 "--save-model", str(model)]) == 0
    calls = []
    real = cost._probe

    def probe(method, shape, params, device, train):
        calls.append(train)
        return real(method, shape, params, device, train)

    monkeypatch.setattr(cost, "_probe", probe)
    assert main(["denoise", str(movie), "-o", str(tmp_path / "b.tif"), "--model", str(model),
                 "--device", "cpu"]) == 0
    assert calls == [False]  # inference probed; no training to probe
    assert "estimate: " in capsys.readouterr().err
