"""`neurorestore traces`: ROI traces from a label image, headless."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_neurorestore.cli import main
from napari_neurorestore.cli import traces as _cli_traces
from napari_neurorestore.core import traces as tr


def _main(argv):
    return main(argv)


@pytest.fixture
def files(tmp_path, tiny_movie):
    raw, restored, rois = tmp_path / "raw.tif", tmp_path / "restored.tif", tmp_path / "rois.tif"
    tifffile.imwrite(raw, tiny_movie.raw, metadata={"axes": "TYX"})
    tifffile.imwrite(restored, tiny_movie.clean, metadata={"axes": "TYX"})
    tifffile.imwrite(rois, tiny_movie.labels)
    return raw, restored, rois


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_traces_cli_writes_csvs_and_prints_the_fidelity_table(files, tmp_path, tiny_movie, capsys):
    raw, restored, rois = files
    out, fid = tmp_path / "traces.csv", tmp_path / "fid.csv"
    rc = _main(["traces", str(raw), "--rois", str(rois), "--compare", str(restored),
                "--f0", "percentile:20", "--fps", "30", "-o", str(out), "--fidelity", str(fid)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "pearson_r" in printed and "nrmse" in printed and "restored" in printed
    rows = _read(out)
    head = rows[0]
    assert head[:2] == ["frame", "time_s"]
    data = np.array(rows[1:], float)
    assert data.shape[0] == tiny_movie.raw.shape[0]
    expect = tr.compute_traces(tiny_movie.raw, tiny_movie.labels, [tiny_movie.clean],
                               names=["raw", "restored"], fps=30.0)
    n = int(tiny_movie.labels.max())
    for k in range(1, n + 1):
        np.testing.assert_allclose(data[:, head.index(f"raw:roi{k}:F")], expect.reference.f[k - 1])
        np.testing.assert_allclose(data[:, head.index(f"restored:roi{k}:dFF")],
                                   expect.layers[1].dff[k - 1])
    np.testing.assert_allclose(data[:, 1], np.arange(data.shape[0]) / 30.0)
    with open(fid, newline="") as fh:
        frows = list(csv.DictReader(fh))
    assert len(frows) == 2 * n
    r = expect.fidelity()[1]
    assert float(frows[1]["pearson_r"]) == pytest.approx(r["pearson_r"])
    assert float(frows[1]["nrmse"]) == pytest.approx(r["nrmse"])

    # an existing output is refused unless --overwrite
    rc = _main(["traces", str(raw), "--rois", str(rois), "-o", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    rc = _main(["traces", str(raw), "--rois", str(rois), "-o", str(out), "--overwrite",
                "--f0", "sliding:20:0.5s", "--fps", "30", "--neuropil", "0.7", "--tidy"])
    assert rc == 0
    tidy = _read(out)
    assert tidy[0] == ["layer", "role", "roi", "frame", "time", "f", "background", "f0", "dff"]
    assert len(tidy) == n * tiny_movie.raw.shape[0] + 1


def test_traces_cli_volume_movie_with_a_plane(tmp_path, tiny_movie, capsys):
    vol = np.stack([tiny_movie.raw, tiny_movie.raw[:, ::-1]], axis=1)  # (t, z, y, x)
    mp, lp, out = tmp_path / "vol.tif", tmp_path / "lab.tif", tmp_path / "o.csv"
    tifffile.imwrite(mp, vol, metadata={"axes": "TZYX"})
    tifffile.imwrite(lp, tiny_movie.labels)
    assert _main(["traces", str(mp), "--rois", str(lp), "-o", str(out)]) == 2
    assert "plane" in capsys.readouterr().err
    assert _main(["traces", str(mp), "--rois", str(lp), "--plane", "1", "-o", str(out),
                  "--f0", "first:10"]) == 0
    rows = _read(out)
    data = np.array(rows[1:], float)
    expect = tr.compute_traces(np.ascontiguousarray(tiny_movie.raw[:, ::-1]), tiny_movie.labels,
                               f0_mode="first", f0_first_frames=10)
    np.testing.assert_allclose(data[:, rows[0].index("vol:roi1:dFF")], expect.reference.dff[0])


def test_traces_cli_bad_input(files, tmp_path, tiny_movie, capsys):
    raw, _restored, rois = files
    short, single = tmp_path / "short.tif", tmp_path / "single.tif"
    tifffile.imwrite(short, tiny_movie.raw[:10])
    tifffile.imwrite(single, tiny_movie.raw[0])
    out = str(tmp_path / "o.csv")
    cases = [
        (["--compare", str(short)], "has 10 frames but the reference"),
        (["--f0", "median:3"], "unknown F0 mode"),
        (["--f0", "sliding:20:30s"], "frame rate"),
    ]
    for extra, msg in cases:
        assert _main(["traces", str(raw), "--rois", str(rois), "-o", out, *extra]) == 2
        assert msg in capsys.readouterr().err
    assert _main(["traces", str(single), "--rois", str(rois), "-o", out]) == 2
    assert "single frame" in capsys.readouterr().err
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, np.zeros_like(tiny_movie.labels))
    assert _main(["traces", str(raw), "--rois", str(empty), "-o", out]) == 2
    assert "no ROIs" in capsys.readouterr().err
    assert _main(["traces", str(raw), "--rois", str(tmp_path / "nope.tif"), "-o", out]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_own_parser_sets_func():
    import argparse

    parser = argparse.ArgumentParser(prog="neurorestore")
    sub = parser.add_subparsers(dest="command", required=True)
    _cli_traces.add_parser(sub)
    args = parser.parse_args(["traces", "m.tif", "--rois", "r.tif", "--compare", "a.tif", "b.tif",
                              "-o", "t.csv"])
    assert args.func is _cli_traces.run_traces and args.compare == ["a.tif", "b.tif"]
    assert args.f0 == "percentile:20"


def test_traces_cli_prints_and_writes_transient_fidelity(tmp_path, capsys):
    from napari_neurorestore.core.simulate import simulate_calcium_movie

    kw = dict(n_frames=150, shape=(40, 40), n_cells=5, seed=3)
    sim = simulate_calcium_movie(**kw)
    half = simulate_calcium_movie(**kw, dff_per_spike=0.5).clean
    paths = {k: tmp_path / f"{k}.tif" for k in ("truth", "good", "half", "rois")}
    for k, a in (("truth", sim.clean), ("good", sim.clean.copy()), ("half", half)):
        tifffile.imwrite(paths[k], a, metadata={"axes": "TYX"})
    tifffile.imwrite(paths["rois"], sim.labels)
    out, fid = tmp_path / "traces.csv", tmp_path / "fid.csv"
    rc = _main(["traces", str(paths["truth"]), "--rois", str(paths["rois"]), "--compare",
                str(paths["good"]), str(paths["half"]), "-o", str(out), "--fidelity", str(fid)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "transient fidelity" in printed and "peak_ratio" in printed
    table = printed[printed.index("transient fidelity"):].splitlines()
    half_lines = [ln for ln in table if " half " in ln]
    good_lines = [ln for ln in table if " good " in ln]
    assert len(half_lines) == len(good_lines) == int(sim.labels.max())
    assert all("⚠ flattened" in ln for ln in half_lines)
    assert not any("⚠" in ln for ln in good_lines)
    assert "pairs flagged" in printed
    with open(fid, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(tr.FIDELITY_COLUMNS)
    halves = [r for r in rows if r["layer"] == "half"]
    assert all(r["flags"] == "flattened" for r in halves)
    assert all(float(r["peak_ratio"]) == pytest.approx(0.5, abs=0.1) for r in halves)
    assert all(abs(float(r["onset_delay"])) < 0.5 for r in halves)
    assert all(r["flags"] == "" and float(r["peak_ratio"]) == pytest.approx(1.0)
               for r in rows if r["layer"] == "good")
    # the thresholds are options: a lenient ratio raises no flag
    rc = _main(["traces", str(paths["truth"]), "--rois", str(paths["rois"]), "--compare",
                str(paths["half"]), "-o", str(out), "--fidelity", str(fid), "--overwrite",
                "--min-peak-ratio", "0.3"])
    assert rc == 0 and "⚠" not in capsys.readouterr().out
    rc = _main(["traces", str(paths["truth"]), "--rois", str(paths["rois"]), "-o", str(out),
                "--overwrite", "--max-delay", "-1"])
    assert rc == 2 and "--max-delay must be >= 0" in capsys.readouterr().err
