"""Headless tests of core.traces against hand-computed references on synthetic data."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from napari_neurorestore.core import traces as tr
from napari_neurorestore.core.errors import InputError

T, NY, NX, NZ = 48, 30, 36, 3
FPS = 10.0


# ------------------------------------------------------------------ hand-computed references
# Written as plainly as possible (loops, explicit formulas), independent of the module.


def ref_mask(kind: str, frame=(NY, NX)) -> np.ndarray:
    m = np.zeros(frame, bool)
    for y in range(frame[0]):
        for x in range(frame[1]):
            if kind == "ellipse":  # centre (12.3, 15.6), radii 5.2 (y) and 7.1 (x)
                m[y, x] = ((y - 12.3) / 5.2) ** 2 + ((x - 15.6) / 7.1) ** 2 <= 1
            elif kind == "rectangle":  # rows 20..26, columns 4..11 (boundary included)
                m[y, x] = 20 <= y <= 26 and 4 <= x <= 11
            elif kind == "polygon":  # triangle (2.5, 25.5) (10.5, 33.7) (9.2, 22.1)
                m[y, x] = _in_triangle(y, x, (2.5, 25.5), (10.5, 33.7), (9.2, 22.1))
    return m


def _in_triangle(y, x, a, b, c):
    def side(p, q):
        return (q[0] - p[0]) * (x - p[1]) - (q[1] - p[1]) * (y - p[0])

    s = [side(a, b), side(b, c), side(c, a)]
    return all(v >= 0 for v in s) or all(v <= 0 for v in s)


SHAPES = {  # napari's representation: ellipse/rectangle as 4 corners in order
    "ellipse": np.array([[12.3 - 5.2, 15.6 - 7.1], [12.3 - 5.2, 15.6 + 7.1],
                         [12.3 + 5.2, 15.6 + 7.1], [12.3 + 5.2, 15.6 - 7.1]]),
    "rectangle": np.array([[20.0, 4.0], [20.0, 11.0], [26.0, 11.0], [26.0, 4.0]]),
    "polygon": np.array([[2.5, 25.5], [10.5, 33.7], [9.2, 22.1]]),
}


def ref_mean_trace(movie, mask, plane=None):
    out = np.zeros(movie.shape[0])
    for t in range(movie.shape[0]):
        frame = movie[t] if plane is None else movie[t, plane]
        out[t] = float(np.sum(frame[mask], dtype=np.float64)) / mask.sum()
    return out


def ref_percentile(values, q):  # numpy's default 'linear' method, by hand
    v = sorted(float(a) for a in values)
    pos = q / 100 * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def ref_f0(f, mode):
    n = len(f)
    if mode == "percentile":
        return np.full(n, ref_percentile(f, 20))
    if mode == "sliding":  # 1.1 s at 10 fps = 11 frames, window [t-5, t+6)
        w = 11
        return np.array([ref_percentile(f[max(0, t - w // 2): min(n, t - w // 2 + w)], 30)
                         for t in range(n)])
    if mode == "first":
        return np.full(n, sum(f[:7]) / 7)
    return np.full(n, 150.0)


F0_PARAMS = {
    "percentile": dict(f0_mode="percentile", f0_percentile=20),
    "sliding": dict(f0_mode="sliding", f0_percentile=30, f0_window=1.1, f0_window_unit="s"),
    "first": dict(f0_mode="first", f0_first_frames=7),
    "fixed": dict(f0_mode="fixed", f0_value=150.0),
}


@pytest.fixture(scope="module")
def movie3():
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (NY, NX))
    drift = np.linspace(0, 30, T)[:, None, None]
    return (base[None] + drift + rng.normal(0, 10, (T, NY, NX))).astype(np.float32)


@pytest.fixture(scope="module")
def movie4():
    rng = np.random.default_rng(1)
    return rng.uniform(50, 400, (T, NZ, NY, NX)).astype(np.uint16)


# ------------------------------------------------------------------ rasterisation


@pytest.mark.parametrize("kind", ["ellipse", "rectangle", "polygon"])
def test_shape_masks_match_hand_computed(kind):
    m = tr.shape_mask(SHAPES[kind], kind, (NY, NX))
    np.testing.assert_array_equal(m, ref_mask(kind))
    assert m.sum() > 10


def test_rotated_ellipse_and_concave_polygon():
    c, a, b, th = np.array([15.2, 17.7]), 8.3, 3.4, 0.6
    u = np.array([np.sin(th), np.cos(th)])  # major axis direction in (y, x)
    w = np.array([np.cos(th), -np.sin(th)])
    corners = np.array([c - a * u - b * w, c + a * u - b * w, c + a * u + b * w, c - a * u + b * w])
    yy, xx = np.mgrid[:NY, :NX]
    d = np.stack([yy - c[0], xx - c[1]], -1)
    ref = ((d @ u) / a) ** 2 + ((d @ w) / b) ** 2 <= 1
    np.testing.assert_array_equal(tr.shape_mask(corners, "ellipse", (NY, NX)), ref)
    # an L-shaped (concave) polygon
    poly = np.array([[2.5, 2.5], [2.5, 12.5], [6.5, 12.5], [6.5, 6.5], [14.5, 6.5], [14.5, 2.5]])
    m = tr.shape_mask(poly, "polygon", (NY, NX))
    ref = np.zeros((NY, NX), bool)
    ref[3:7, 3:13] = True
    ref[3:15, 3:7] = True
    np.testing.assert_array_equal(m, ref)


def test_shapes_partly_outside_are_clipped_and_outside_ones_reported():
    rois, msgs = tr.rois_from_shapes(
        [np.array([[-5.0, -5.0], [-5.0, 3.0], [3.0, 3.0], [3.0, -5.0]]),  # partly outside
         np.array([[100.0, 100.0], [100.0, 110.0], [110.0, 110.0], [110.0, 100.0]]),  # outside
         np.array([[5.1, 5.1], [5.1, 5.3], [5.3, 5.3], [5.3, 5.1]]),  # no pixel centre
         np.array([[1.0, 1.0], [8.0, 8.0]])],  # a line
        ["rectangle", "ellipse", "rectangle", "line"], (NY, NX), ids=[4, 5, 6, 7])
    assert [r.id for r in rois] == [4]
    assert rois[0].size == 16  # rows 0..3, columns 0..3
    assert any("5 lies outside the image" in m for m in msgs)
    assert any("6 covers no pixel" in m for m in msgs)
    assert any("7 is a line" in m for m in msgs)


# ------------------------------------------------------------------ traces and ΔF/F


@pytest.mark.parametrize("mode", list(F0_PARAMS))
@pytest.mark.parametrize("kind", ["ellipse", "rectangle", "polygon", "labels"])
def test_traces_and_dff_tyx(movie3, mode, kind):
    if kind == "labels":
        lab = np.zeros((NY, NX), np.int32)
        lab[ref_mask("ellipse")] = 3
        lab[ref_mask("rectangle")] = 9
        rois = tr.rois_from_labels(lab)
        masks = {3: ref_mask("ellipse"), 9: ref_mask("rectangle")}
    else:
        rois, msgs = tr.rois_from_shapes([np.c_[np.full(len(SHAPES[kind]), 5.0), SHAPES[kind]]],
                                         [kind], (NY, NX), ids=[2])  # a (t, y, x) shape
        assert not msgs
        masks = {2: ref_mask(kind)}
    params = tr.TraceParams(fps=FPS, **F0_PARAMS[mode])
    res = tr.compute_traces(movie3, rois, params=params)
    assert res.roi_ids == sorted(masks)
    for i, rid in enumerate(res.roi_ids):
        f = ref_mean_trace(movie3, masks[rid])
        f0 = ref_f0(f, mode)
        np.testing.assert_allclose(res.reference.f[i], f, rtol=1e-12)
        np.testing.assert_allclose(res.reference.f0[i], f0, rtol=1e-12)
        np.testing.assert_allclose(res.reference.dff[i], (f - f0) / f0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.time, np.arange(T) / FPS)


@pytest.mark.parametrize("mode", list(F0_PARAMS))
@pytest.mark.parametrize("kind", ["ellipse", "rectangle", "polygon", "labels"])
def test_traces_and_dff_tzyx_rois_on_a_plane(movie4, mode, kind):
    plane = 1
    if kind == "labels":
        lab = np.zeros((NZ, NY, NX), np.int32)
        lab[plane][ref_mask("polygon")] = 1
        lab[2][ref_mask("ellipse")] = 2  # another plane
        rois = tr.rois_from_labels(lab)
        expect = {1: (plane, ref_mask("polygon")), 2: (2, ref_mask("ellipse"))}
    else:
        verts = np.c_[np.full(len(SHAPES[kind]), 7.0), np.full(len(SHAPES[kind]), plane),
                      SHAPES[kind]]  # (t, z, y, x) vertices on plane 1
        rois, msgs = tr.rois_from_shapes([verts], [kind], (NZ, NY, NX))
        assert not msgs
        expect = {1: (plane, ref_mask(kind))}
    res = tr.compute_traces(movie4, rois, [movie4.astype(np.float64) * 2],
                            params=tr.TraceParams(fps=FPS, **F0_PARAMS[mode]))
    for i, rid in enumerate(res.roi_ids):
        z, m = expect[rid]
        f = ref_mean_trace(movie4, m, plane=z)
        f0 = ref_f0(f, mode)
        np.testing.assert_allclose(res.reference.f[i], f, rtol=1e-12)
        np.testing.assert_allclose(res.reference.dff[i], (f - f0) / f0, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.layers[1].f[i], 2 * f, rtol=1e-12)


def test_2d_labels_on_a_volume_movie_need_a_plane(movie4):
    lab = ref_mask("rectangle").astype(np.uint8)
    with pytest.raises(InputError, match="plane"):
        tr.rois_from_labels(lab, movie4.shape[1:])
    rois = tr.rois_from_labels(lab, movie4.shape[1:], plane=2)
    f = tr.extract_traces(movie4, rois)[0]
    np.testing.assert_allclose(f, ref_mean_trace(movie4, lab.astype(bool), plane=2), rtol=1e-12)
    rois2, _ = tr.rois_from_shapes([SHAPES["rectangle"]], "rectangle", movie4.shape[1:], plane=2)
    assert rois2[0].key == rois[0].key


def test_neuropil_annulus_and_subtraction_by_hand():
    lab = np.zeros((NY, NX), np.int32)
    lab[10, 10] = 1
    lab[10, 12] = 2  # at distance 2 from ROI 1: inside ROI 1's ring, so left out of it
    rois = tr.rois_from_labels(lab)
    ring = tr.neuropil_rois(rois, inner=1.0, outer=2.0)
    # distances in (1, 2] from (10, 10): the 4 diagonals (sqrt 2) and 4 at distance 2
    expect = {(9, 9), (9, 11), (11, 9), (11, 11), (8, 10), (12, 10), (10, 8)}
    got = {tuple(int(v) for v in c) for c in zip(*np.unravel_index(ring[0].index, (NY, NX)), strict=False)}
    assert got == expect
    rng = np.random.default_rng(5)
    movie = rng.uniform(100, 200, (T, NY, NX))
    p = tr.TraceParams(neuropil=True, neuropil_coef=0.7, neuropil_inner=1.0, neuropil_outer=2.0,
                       offset=20.0, f0_mode="first", f0_first_frames=5)
    res = tr.compute_traces(movie, rois, params=p)
    f = movie[:, 10, 10]
    bg = np.mean([movie[:, y, x] for y, x in sorted(expect)], axis=0)
    fc = (f - 20.0) - 0.7 * (bg - 20.0)
    f0 = fc[:5].mean()
    np.testing.assert_allclose(res.reference.background[0], bg, rtol=1e-12)
    np.testing.assert_allclose(res.reference.dff[0], (fc - f0) / f0, rtol=1e-9)
    snr = 10 * np.log10((f.mean() - 20.0) / (bg.mean() - 20.0))
    assert res.fidelity()[0]["contrast_db"] == pytest.approx(snr, rel=1e-12)  # ROI / annulus


def test_sliding_percentile_matches_loop():
    rng = np.random.default_rng(2)
    n = 150
    f = rng.normal(size=(3, n))
    f[2, 10] = f[2, 11]  # ties
    for w in (1, 2, 7, 8, 49, 60, 149, 400):  # short windows (numpy) and long (sorted window)
        out = tr.sliding_percentile(f, 25, w)
        ww = min(w, n)
        for i in range(3):
            ref = [ref_percentile(f[i, max(0, t - ww // 2): min(n, t - ww // 2 + ww)], 25)
                   for t in range(n)]
            np.testing.assert_allclose(out[i], ref, rtol=1e-12, atol=1e-15)


def test_dff_undefined_where_f0_not_positive():
    d = tr.delta_f_over_f(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0], [2.0]]))
    assert np.isnan(d[0]).all()
    np.testing.assert_allclose(d[1], [0.5, 1.0])


# ------------------------------------------------------------------ lazy inputs and caching


def test_memmap_dask_strided_and_small_chunks_agree(movie3, tmp_path):
    lab = np.zeros((NY, NX), np.int32)
    lab[ref_mask("ellipse")] = 1
    lab[ref_mask("polygon")] = 2
    rois = tr.rois_from_labels(lab)
    ref = tr.extract_traces(movie3, rois)
    mm = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=np.float32, shape=movie3.shape)
    mm[:] = movie3
    mm.flush()
    mm = np.load(tmp_path / "m.npy", mmap_mode="r")
    np.testing.assert_array_equal(tr.extract_traces(mm, rois, chunk_bytes=4096), ref)
    strided = np.asfortranarray(movie3)
    np.testing.assert_allclose(tr.extract_traces(strided, rois, chunk_bytes=4096), ref, rtol=1e-12)
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(movie3, chunks=(5, NY, NX))
    np.testing.assert_allclose(tr.extract_traces(lazy, rois, chunk_bytes=20000), ref, rtol=1e-12)


def test_cache_recomputes_only_the_moved_roi(movie3):
    shapes = [SHAPES["ellipse"], SHAPES["rectangle"], SHAPES["polygon"]]
    types = ["ellipse", "rectangle", "polygon"]
    cache = tr.TraceCache()
    rois, _ = tr.rois_from_shapes(shapes, types, (NY, NX), masks=cache.masks)
    r1 = tr.compute_traces(movie3, rois, params=tr.TraceParams(), cache=cache)
    n0 = cache.extracted
    assert n0 == 6  # 3 ROIs + 3 annuli
    assert cache.masks.computed == 6  # 3 shapes + 3 rings
    moved = [shapes[0], shapes[1] + [1.0, 2.0], shapes[2]]
    rois2, _ = tr.rois_from_shapes(moved, types, (NY, NX), masks=cache.masks)
    assert [r.key for r in rois2][::2] == [r.key for r in rois][::2]
    r2 = tr.compute_traces(movie3, rois2, params=tr.TraceParams(), cache=cache)
    assert cache.masks.computed == 8  # only the moved shape and its ring were rasterised
    # the moved ROI and the annuli whose pixels changed; never the unmoved ROIs themselves
    assert 1 <= cache.extracted - n0 <= 4
    np.testing.assert_array_equal(r1.reference.f[[0, 2]], r2.reference.f[[0, 2]])
    assert not np.allclose(r1.reference.f[1], r2.reference.f[1])


# ------------------------------------------------------------------ fidelity, tables, CSV


def test_fidelity_figures_by_hand(movie3):
    lab = np.zeros((NY, NX), np.int32)
    lab[ref_mask("ellipse")] = 1
    rng = np.random.default_rng(3)
    other = movie3 + rng.normal(0, 5, movie3.shape)
    res = tr.compute_traces(movie3, lab, {"other": other}, names=["raw", "other"])
    rows = res.fidelity()
    assert [(r["roi"], r["layer"], r["role"]) for r in rows] == [
        (1, "raw", "reference"), (1, "other", "compare")]
    a, b = res.layers[1].dff[0], res.reference.dff[0]
    r = np.sum((a - a.mean()) * (b - b.mean())) / np.sqrt(np.sum((a - a.mean()) ** 2) * np.sum((b - b.mean()) ** 2))
    e = np.sqrt(np.mean((a - b) ** 2)) / (a.max() - a.min())
    assert rows[1]["pearson_r"] == pytest.approx(r, rel=1e-12)
    assert rows[1]["nrmse"] == pytest.approx(e, rel=1e-12)
    assert math.isnan(rows[0]["pearson_r"]) and math.isnan(rows[0]["nrmse"])


def test_tidy_table_and_csv_writers(movie3, tmp_path):
    lab = np.zeros((NY, NX), np.int32)
    lab[ref_mask("ellipse")] = 1
    lab[ref_mask("rectangle")] = 2
    res = tr.compute_traces(movie3, lab, [movie3 * 1.5], params=tr.TraceParams(fps=FPS))
    tab = res.table()
    assert set(tab) == {"layer", "role", "roi", "frame", "time", "f", "background", "f0", "dff"}
    assert all(len(v) == 2 * 2 * T for v in tab.values())
    sel = (tab["layer"] == "compare1") & (tab["roi"] == 2)
    np.testing.assert_allclose(tab["f"][sel], res.layers[1].f[1])
    np.testing.assert_allclose(tab["time"][sel], np.arange(T) / FPS)

    p = tmp_path / "traces.csv"
    tr.write_traces_csv(p, res)
    with open(p, newline="") as fh:
        rows = list(csv.reader(fh))
    head = rows[0]
    assert head[:2] == ["frame", "time_s"]
    assert "reference:roi1:F" in head and "compare1:roi2:dFF" in head
    assert len(rows) == T + 1
    data = np.array(rows[1:], float)
    np.testing.assert_allclose(data[:, head.index("compare1:roi2:dFF")], res.layers[1].dff[1],
                               rtol=1e-15)
    pf = tmp_path / "fid.csv"
    tr.write_fidelity_csv(pf, res)
    with open(pf, newline="") as fh:
        fr = list(csv.DictReader(fh))
    assert len(fr) == 4 and float(fr[1]["pearson_r"]) == pytest.approx(1.0)
    tr.write_traces_csv(tmp_path / "tidy.csv", res, tidy=True)
    with open(tmp_path / "tidy.csv", newline="") as fh:
        assert sum(1 for _ in fh) == 4 * T + 1
    assert "pearson_r" in tr.format_fidelity(res.fidelity())


# ------------------------------------------------------------------ bad input


def test_bad_inputs_give_clear_messages(movie3):
    lab = np.zeros((NY, NX), np.int32)
    lab[ref_mask("ellipse")] = 1
    with pytest.raises(InputError, match="has 10 frames but the reference"):
        tr.compute_traces(movie3, lab, [movie3[:10]])
    with pytest.raises(InputError, match="single frame"):
        tr.compute_traces(movie3[0], lab)
    with pytest.raises(InputError, match="no ROIs"):
        tr.compute_traces(movie3, np.zeros((NY, NX), np.int32))
    with pytest.raises(InputError, match="label image has shape"):
        tr.rois_from_labels(lab[:5], movie3.shape[1:])
    with pytest.raises(InputError, match="first 100 frames"):
        tr.compute_traces(movie3, lab, f0_mode="first", f0_first_frames=100)
    with pytest.raises(ValueError, match="fps"):
        tr.TraceParams(f0_mode="sliding", f0_window_unit="s")
    with pytest.raises(ValueError, match="cannot read the F0 spec"):
        tr.parse_f0("first:abc")
    with pytest.raises(ValueError, match="unknown F0 mode"):
        tr.parse_f0("median:3")


def test_parse_f0():
    assert tr.parse_f0("percentile:20") == {"f0_mode": "percentile", "f0_percentile": 20.0}
    assert tr.parse_f0("sliding:10:30s")["f0_window_unit"] == "s"
    s = tr.parse_f0("sliding:10:900")
    assert s["f0_window"] == 900 and s["f0_window_unit"] == "frames"
    assert tr.parse_f0("first:50") == {"f0_mode": "first", "f0_first_frames": 50}
    assert tr.parse_f0("fixed:1200") == {"f0_mode": "fixed", "f0_value": 1200.0}
    tr.TraceParams(**tr.parse_f0("sliding:10:30s"), fps=30)


def test_a_flat_polygon_is_left_out_with_a_word():
    """A polygon whose vertices lie on a line encloses nothing: not the pixels on its line."""
    from napari_neurorestore.core.traces.rois import shape_area

    flat = np.array([[4.0, 2.0], [4.0, 6.0], [4.0, 10.0]])
    crossed = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 4.0], [4.0, 0.0]])  # a bow tie
    assert shape_area(flat, "polygon") == 0.0 and shape_area(crossed, "polygon") == 16.0
    rois, msgs = tr.rois_from_shapes([flat, crossed], "polygon", (NY, NX), ids=[1, 2])
    assert [r.id for r in rois] == [2]
    assert any("ROI 1 has no area" in m for m in msgs)
