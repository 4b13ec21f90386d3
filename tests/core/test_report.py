"""The HTML trust report, its JSON, and provenance read back from our outputs."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from napari_neurorestore import __version__
from napari_neurorestore.core import trust
from napari_neurorestore.core.report import read_provenance, render_html, write_report
from napari_neurorestore.core.simulate import simulate_calcium_movie

META = {"neurorestore": {"method": "denoise", "params": {"window": 7, "epochs": 3},
                         "train_seconds": 12.5, "software_version": "0.1.0"}}


@pytest.fixture(scope="module")
def sim():
    return simulate_calcium_movie(n_frames=120, shape=(48, 48), n_cells=8, seed=3)


@pytest.fixture(scope="module")
def smooth_report(sim):
    out = gaussian_filter(sim.raw.astype(np.float32), (6, 2, 2))
    return trust.assess(sim.raw, out, META, transients=False)


def test_html_is_self_contained_with_flags_checks_noise_and_method(smooth_report, tmp_path):
    rep = smooth_report
    assert rep.flags  # over-smoothed: something is flagged
    jpath = tmp_path / "r.json"
    out = write_report(rep, tmp_path / "r.html", raw_name="movie", restored_name="movie [dn]",
                       json_path=jpath)
    text = out.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") >= 3  # noise, frames, spectra
    assert "http" not in text and "<link" not in text and "<script" not in text
    assert "no warnings" not in text
    for flag in rep.flags:
        assert flag in text
        msg = next(c.message for c in rep.checks if c.name == flag)
        assert html.escape(msg) in text  # in the verdict and in the checks table
    assert 'class="checks"' in text
    assert text.count("<b>WARN</b>") == len(rep.flags)
    assert text.count("<b>PASS</b>") == sum(c.status == "pass" for c in rep.checks)
    assert f"{rep.noise.gain:.4g}" in text and f"{rep.noise.offset:.4g}" in text
    assert "read variance" in text
    assert "denoise" in text and __version__ in text and "12.5" in text
    assert "window" in text  # the parameters
    assert "movie [dn]" in text
    assert "Transients" not in text  # no transient rows: no section
    d = json.loads(jpath.read_text())
    assert d["flags"] == rep.flags
    assert set(rep.figures) <= set(d["figures"])
    assert d["noise_model"]["gain"] == pytest.approx(rep.noise.gain)


def test_clean_output_says_no_warnings(sim, tmp_path):
    rep = trust.assess(sim.raw, sim.clean, transients=False)
    assert rep.flags == []
    text = write_report(rep, tmp_path / "ok.html").read_text()
    assert "no warnings" in text and "<b>WARN</b>" not in text
    assert "unknown" in text  # another tool's output: no method recorded


def test_transient_rows_are_rendered_with_flagged_events(sim):
    f0 = np.percentile(sim.clean, 10, axis=0)
    halved = f0 + 0.5 * (sim.clean - f0)
    rep = trust.assess(sim.raw, halved, transients=True)
    assert rep.transients and rep.traces is not None
    assert any(len(r["flagged_events"]) for r in rep.transients)
    text = render_html(rep)
    assert "Transients" in text and "flattened" in text
    assert text.count("data:image/png;base64,") == 4  # + the traces figure
    # one table row per ROI, flagged frames listed
    k = next(r for r in rep.transients if len(r["flagged_events"]))["flagged_events"][0]
    assert re.search(rf"\[{int(k)}[,\]]", text)


def test_existing_paths_are_refused(smooth_report, tmp_path):
    p = tmp_path / "r.html"
    p.write_text("keep me")
    with pytest.raises(FileExistsError):
        write_report(smooth_report, p)
    assert p.read_text() == "keep me"
    j = tmp_path / "r.json"
    j.write_text("keep")
    with pytest.raises(FileExistsError):
        write_report(smooth_report, tmp_path / "new.html", json_path=j)
    assert not (tmp_path / "new.html").exists()  # nothing written
    write_report(smooth_report, p, overwrite=True)
    assert re.search("Trust report", p.read_text())


def test_provenance_round_trip_tiff_and_zarr(tmp_path):
    import tifffile

    from napari_neurorestore.core.io import open_output, open_output_tiff

    mm = open_output_tiff(tmp_path / "o.tif", (4, 8, 8), metadata=META)
    mm[:] = 1.0
    mm.flush()
    del mm
    assert read_provenance(tmp_path / "o.tif") == META
    pytest.importorskip("zarr")
    z = open_output(tmp_path / "o.zarr", (4, 8, 8), metadata=META)
    z[:] = 1.0
    assert read_provenance(tmp_path / "o.zarr") == META
    # other tools' files
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 8, 8), np.float32))
    assert read_provenance(tmp_path / "plain.tif") == {}
    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((4, 8, 8), np.float32), imagej=True)
    assert read_provenance(tmp_path / "ij.tif") == {}
    with pytest.raises(FileNotFoundError):
        read_provenance(tmp_path / "missing.tif")


def test_provenance_shows_the_denoisers_self_check(sim):
    check = {"gain_db": 1.7, "gauss_sigma_t": 3.0, "gauss_sigma_xy": 0.5, "net_error": 0.1,
             "gauss_error": 0.15, "noise_var": 1.0}
    md = {"neurorestore": {**META["neurorestore"], "training": {"steps": 10, "self_check": check}}}
    rep = trust.assess(sim.raw, sim.clean, md, transients=False)
    text = html.unescape(render_html(rep))
    assert "self-check" in text and "+1.7 dB over the best Gaussian" in text
