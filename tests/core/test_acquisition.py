"""Acquisition formats in: ScanImage channels and planes (never one interleaved stack, one
plane read without touching the others' pages), suite2p's registered binary, Scanbox."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from acquisition_fixtures import scanimage_2ch_3planes, suite2p_plane, write_scanimage

from napari_neurorestore.core import acquisition as acq
from napari_neurorestore.core.errors import InputError
from napari_neurorestore.core.io import open_array, read_array


def _page(t, z, c):
    return (t * 3 + z) * 2 + c


def test_scanimage_metadata_is_parsed_by_tifffile(tmp_path):
    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    with tifffile.TiffFile(path) as tf:
        assert tf.is_scanimage and tf.scanimage_metadata["version"] == 3
        layout = acq.scanimage_layout(tf)
    assert layout["channels"] == [1, 2] and layout["planes"] == 3 and layout["fastz"]


def test_an_interleaved_file_without_a_choice_is_refused_in_one_line(tmp_path):
    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    for opener in (open_array, read_array):
        with pytest.raises(InputError) as e:
            opener(path)
        msg = str(e.value)
        assert "\n" not in msg and "2 channels" in msg and f"{path}:c1:z0" in msg


def test_one_plane_of_one_channel_reads_only_its_pages(tmp_path):
    path = scanimage_2ch_3planes(tmp_path / "si.tif", volumes=5)
    data, axes = open_array(f"{path}:c2:z1")
    assert axes == "TYX" and data.shape == (5, 5, 6) and data.dtype == np.int16
    ours = {_page(t, 1, 1) for t in range(5)}
    block = data[1:4]
    assert [int(b[0, 0]) for b in block] == [_page(t, 1, 1) for t in (1, 2, 3)]
    assert set(data.pages_read) == {_page(t, 1, 1) for t in (1, 2, 3)}
    whole = np.asarray(data[:, 2:4, ::2])
    assert whole.shape == (5, 2, 3)
    assert set(data.pages_read) == ours  # never another plane's or channel's page
    np.testing.assert_array_equal(whole[:, 0, 0], sorted(ours))


def test_a_channel_with_all_planes_is_t_z_y_x(tmp_path):
    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    data, axes = read_array(f"{path}:c1", lazy=True)
    assert axes == "TZYX" and data.shape == (4, 3, 5, 6)
    full = np.asarray(data[...])
    expect = np.array([[_page(t, z, 0) for z in range(3)] for t in range(4)])
    np.testing.assert_array_equal(full[:, :, 0, 0], expect)
    np.testing.assert_array_equal(data[2, 1], np.full((5, 6), _page(2, 1, 0)))


def test_bad_choices_are_refused(tmp_path):
    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    with pytest.raises(InputError, match="no channel 3 .*channels 1, 2"):
        open_array(f"{path}:c3")
    with pytest.raises(InputError, match="no plane 5"):
        open_array(f"{path}:c1:z5")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, 8, 8), np.uint16))
    with pytest.raises(InputError, match="only in ScanImage TIFFs"):
        open_array(f"{plain}:c1")
    assert open_array(plain)[0].shape == (4, 8, 8)  # a plain TIFF as before


def test_flyback_frames_are_skipped(tmp_path):
    # 1 channel, 2 planes + 1 flyback frame per volume: page = t * 3 + z
    pages = np.arange(9, dtype=np.int16)[:, None, None] * np.ones((9, 4, 4), np.int16)
    fd = {"SI.hChannels.channelSave": 1, "SI.hStackManager.numSlices": 2,
          "SI.hFastZ.enable": "true", "SI.hFastZ.discardFlybackFrames": "true",
          "SI.hFastZ.numDiscardFlybackFrames": 1}
    path = write_scanimage(tmp_path / "fb.tif", pages, fd)
    data, axes = open_array(path)
    assert axes == "TZYX" and data.shape == (3, 2, 4, 4)
    np.testing.assert_array_equal(np.asarray(data[...])[:, :, 0, 0], [[0, 1], [3, 4], [6, 7]])


def test_napari_reader_gives_one_layer_per_channel(tmp_path):
    from napari_neurorestore._reader import napari_get_reader

    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    layers = napari_get_reader(str(path))(str(path))
    assert [kw["name"] for _, kw, _ in layers] == ["si ch1", "si ch2"]
    for c, (data, kw, kind) in enumerate(layers):
        assert kind == "image" and data.shape == (4, 3, 5, 6) and kw["metadata"]["axes"] == "TZYX"
        assert int(data[3, 2][0, 0]) == _page(3, 2, c)


def test_suite2p_plane_folder_is_a_memmap(tmp_path):
    from napari_neurorestore._reader import napari_get_reader

    movie = np.random.default_rng(0).integers(-100, 3000, (7, 9, 11)).astype(np.int16)
    folder = suite2p_plane(tmp_path / "suite2p" / "plane0", movie)
    for path in (folder, folder / "data.bin"):
        data, axes = open_array(path)
        assert isinstance(data, np.memmap) and axes == "TYX"
        np.testing.assert_array_equal(data, movie)
    (data, kw, kind), = napari_get_reader(str(folder))(str(folder))
    assert kind == "image" and kw["name"] == "plane0 data.bin"
    np.testing.assert_array_equal(data, movie)
    np.save(folder / "ops.npy", {"Ly": 9, "Lx": 11, "nframes": 8}, allow_pickle=True)
    with pytest.raises(InputError, match="7 frames .*nframes = 8"):
        open_array(folder)
    (folder / "ops.npy").unlink()
    np.save(folder / "settings.npy", {"Ly": 10, "Lx": 11}, allow_pickle=True)
    with pytest.raises(InputError, match="not a whole number of 10x11"):
        open_array(folder)


def test_denoising_one_plane_reads_only_that_planes_frames(tmp_path, monkeypatch):
    """neurorestore denoise MOVIE.tif:c2:z1: the run reads pages of channel 2, plane 1 only,
    and the result has that plane's frames."""
    from napari_neurorestore.cli import main

    rng = np.random.default_rng(0)
    n_t, shape = 30, (32, 32)
    pages = np.empty((n_t * 6, *shape), np.int16)
    for t in range(n_t):
        for z in range(3):
            for c in range(2):
                pages[_page(t, z, c)] = 1000 * c + 300 * z + rng.integers(0, 50, shape)
    fd = {"SI.hChannels.channelSave": "[1;2]", "SI.hStackManager.numSlices": 3,
          "SI.hFastZ.enable": "true", "SI.hStackManager.framesPerSlice": 1}
    path = write_scanimage(tmp_path / "si.tif", pages, fd)
    read: list[int] = []
    real = acq.PageStack._read

    def recording(self, pg):
        read.extend(int(p) for p in pg)
        return real(self, pg)

    monkeypatch.setattr(acq.PageStack, "_read", recording)
    out = tmp_path / "out.tif"
    assert main(["denoise", f"{path}:c2:z1", "-o", str(out), "--epochs", "1", "--window", "5",
                 "--device", "cpu", "-q"]) == 0
    assert read and set(read) <= {_page(t, 1, 1) for t in range(n_t)}
    res = tifffile.imread(out)
    assert res.shape == (n_t, *shape)
    assert abs(res.mean() - 1300) < 100  # channel 2, plane 1's level (others: 0-1600)
    assert main(["denoise", str(path), "-o", str(tmp_path / "o2.tif"), "-q"]) == 2


def test_scanbox_channels_and_planes(tmp_path):
    pytest.importorskip("sbxreader")
    from acquisition_fixtures import write_sbx

    from napari_neurorestore._reader import napari_get_reader

    rng = np.random.default_rng(2)
    movie = rng.integers(0, 4000, (6, 2, 2, 7, 9)).astype(np.uint16)  # t, z, c, y, x
    path = write_sbx(tmp_path / "rec.sbx", movie)
    with pytest.raises(InputError, match=r"2 channels \(Scanbox\).*rec.sbx:c1:z0"):
        open_array(path)
    data, axes = open_array(f"{path}:c2:z1")
    assert axes == "TYX" and data.shape == (6, 7, 9)
    np.testing.assert_array_equal(data[2:5], movie[2:5, 1, 1])
    data, axes = open_array(f"{path}:c1")
    assert axes == "TZYX" and data.shape == (6, 2, 7, 9)
    np.testing.assert_array_equal(data[...], movie[:, :, 0])
    layers = napari_get_reader(str(path))(str(path))
    assert [kw["name"] for _, kw, _ in layers] == ["rec ch1", "rec ch2"]
    np.testing.assert_array_equal(np.asarray(layers[1][0][:, 0]), movie[:, 0, 1])


def test_a_one_channel_one_plane_scanimage_file_is_a_plain_movie(tmp_path):
    pages = np.arange(5, dtype=np.int16)[:, None, None] * np.ones((5, 6, 7), np.int16)
    fd = {"SI.hChannels.channelSave": 1, "SI.hStackManager.numSlices": 1,
          "SI.hFastZ.enable": "false", "SI.hStackManager.framesPerSlice": 5}
    path = write_scanimage(tmp_path / "one.tif", pages, fd)
    data, axes = open_array(path)
    assert axes == "TYX" and data.shape == (5, 6, 7)
    np.testing.assert_array_equal(np.asarray(data[...]), pages)


def test_an_output_over_the_chosen_input_file_is_refused(tmp_path, capsys):
    from napari_neurorestore.cli import main

    path = scanimage_2ch_3planes(tmp_path / "si.tif")
    before = path.read_bytes()
    assert main(["denoise", f"{path}:c1:z0", "-o", str(path), "--overwrite", "-q"]) == 2
    assert "would write over" in capsys.readouterr().err
    assert path.read_bytes() == before
