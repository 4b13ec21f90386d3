"""OME-Zarr (NGFF 0.4) outputs, pixel sizes in TIFF outputs, and reading them back."""

import json

import numpy as np
import pytest
import tifffile

from napari_neurorestore.core import arrays, io, ome, zarr_io

zarr = pytest.importorskip("zarr")

SCALE = [0.1, 2.0, 0.5, 0.5]        # t in s, z/y/x in µm
TRANSLATE = [0.0, 0.0, -0.25, -0.25]
PROV = {"neurorestore": {"method": "denoise", "params": {"window": 7}}}


def _write_ome(path, shape=(6, 2, 8, 8), **kw):
    args = dict(chunks=2, axes="TZYX", metadata=PROV, scale=SCALE, translate=TRANSLATE,
                space_unit="um", time_unit="s")
    args.update(kw)
    return io.open_output(path, shape, **args)


def test_ome_zarr_validates_against_ngff_04(tmp_path):
    models = pytest.importorskip("ome_zarr_models.v04.image")
    p = tmp_path / "out.ome.zarr"
    z = _write_ome(p)
    z[:] = 1.0
    group = zarr.open_group(str(p), mode="r")
    img = models.Image.from_zarr(group)           # raises if the store is not NGFF 0.4
    ms = img.ome_attributes.multiscales[0]
    assert [(a.name, a.type, a.unit) for a in ms.axes] == [
        ("t", "time", "second"), ("z", "space", "micrometer"), ("y", "space", "micrometer"),
        ("x", "space", "micrometer")]
    tr = ms.datasets[0].coordinateTransformations
    assert list(tr[0].scale) == SCALE and list(tr[1].translation) == TRANSLATE
    # provenance on the image, progress record on the array
    assert group.attrs["neurorestore"] == PROV["neurorestore"]
    assert arrays.PROGRESS_ATTR in group["0"].attrs
    # the validator is real: a wrong axis order is refused
    bad = dict(group.attrs)
    bad["multiscales"][0]["axes"] = bad["multiscales"][0]["axes"][::-1]
    zarr.open_group(str(p), mode="r+").attrs.update(bad)
    with pytest.raises(ValueError):  # pydantic's ValidationError
        models.Image.from_zarr(zarr.open_group(str(p), mode="r"))


@pytest.mark.parametrize("shape, axes, scale, translate", [
    ((5, 8, 8), "TYX", [1.0, 0.4, 0.4], None),
    ((4, 6, 9), "ZYX", [3.0, 1 / 3, 1 / 3], [0.0, -1 / 3, -1 / 3]),   # upsampling's shift
    ((8, 9), "YX", [0.25, 0.25], [-0.375, -0.375]),
])
def test_ome_zarr_geometry_round_trip(tmp_path, shape, axes, scale, translate):
    p = tmp_path / "o.ome.zarr"
    z = io.open_output(p, shape, axes=axes, scale=scale, translate=translate,
                       space_unit="micrometer")
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    z[:] = data
    zarr_io.ChunkRecorder(z)(0, shape[0])  # recorded complete, as the core does (else: partial)
    arr, got_axes = zarr_io.open_zarr(p)
    assert got_axes == axes
    np.testing.assert_array_equal(np.asarray(arr), data)
    geo = zarr_io.zarr_geometry(p)
    assert geo["scale"] == pytest.approx(scale)
    assert geo["translate"] == pytest.approx(translate or [0.0] * len(shape))

    from napari_neurorestore._reader import napari_get_reader

    (layer_data, kw, kind), = napari_get_reader(str(p))(str(p))
    assert kind == "image" and kw["name"] == "o"
    assert kw["scale"] == pytest.approx(scale)
    assert kw["translate"] == pytest.approx(translate or [0.0] * len(shape))
    assert kw["metadata"]["units"]["X"] == kw["metadata"]["unit"] == "micrometer"
    np.testing.assert_array_equal(np.asarray(layer_data), data)


def test_ome_zarr_progress_and_chunked_writes(tmp_path):
    p = tmp_path / "o.ome.zarr"
    z = _write_ome(p, chunks=2)
    assert z.chunks == (2, 1, 8, 8)
    rec = zarr_io.ChunkRecorder(z)
    z[0:2] = 1.0
    rec(0, 2)
    z[4:6] = 3.0
    rec(4, 6)
    prog = zarr_io.output_progress(p)
    assert prog["done_ranges"] == [[0, 2], [4, 6]] and not prog["complete"]
    assert zarr_io.output_progress(z) == prog
    arr, _ = io.read_array(p, lazy=False)
    assert np.isnan(arr[2:4]).all() and (arr[4:] == 3).all()
    # our reader shows the record; a dask worker reopens the data array by path
    from napari_neurorestore._reader import read_zarr_layer

    meta = read_zarr_layer(p)[0][1]["metadata"]
    assert meta[arrays.PROGRESS_ATTR]["frames_done"] == 4
    assert meta["neurorestore"] == PROV["neurorestore"]
    w = zarr_io.output_array(p)
    w[2:4] = 2.0
    rec(2, 4)
    assert zarr_io.output_progress(p)["complete"]
    # the report finds our provenance
    from napari_neurorestore.core.report import read_provenance

    assert read_provenance(p) == PROV


def test_ome_zarr_bad_metadata_fails_before_replacing(tmp_path):
    p = tmp_path / "o.ome.zarr"
    _write_ome(p)[:] = 7.0
    with pytest.raises(ValueError, match="scale"):
        io.open_output(p, (6, 2, 8, 8), overwrite=True, axes="TZYX", scale=[1.0, 1.0])
    with pytest.raises(ValueError, match="unit"):
        io.open_output(p, (6, 2, 8, 8), overwrite=True, axes="TZYX", space_unit="furlong")
    assert (np.asarray(zarr_io.open_zarr(p)[0]) == 7.0).all()   # the old store is intact
    with pytest.raises(FileExistsError):
        io.open_output(p, (6, 2, 8, 8))
    z = io.open_output(p, (3, 8, 8), overwrite=True)     # defaults: t, y, x with scale 1
    assert zarr_io.zarr_geometry(p)["scale"] == [1.0, 1.0, 1.0] and z.shape == (3, 8, 8)


def test_plain_zarr_unchanged(tmp_path):
    z = io.open_output(tmp_path / "o.zarr", (4, 8, 8), chunks=2, axes="TYX", scale=[1, 2, 2])
    assert "multiscales" not in z.attrs and z.attrs["axes"] == "TYX"
    assert zarr_io.zarr_geometry(tmp_path / "o.zarr") is None


def test_ngff_axes_and_units():
    assert ome.ngff_axes_order("QYX", 3) == "TYX"
    assert ome.ngff_axes_order("YXT", 3) == "TYX"            # NGFF wants time first
    assert ome.ngff_axes_order("CZYX", 4) == "CZYX"
    assert ome.ngff_unit("µm") == ome.ngff_unit("micron") == "micrometer"
    assert ome.ngff_unit("ms", "time") == "millisecond"
    assert ome.ngff_unit("pixel") is None
    with pytest.raises(ValueError):
        ome.ngff_axes_order(None, 6)


# ------------------------------------------------------------------------------------ TIFF
def test_tiff_output_carries_pixel_size(tmp_path):
    from napari_neurorestore._reader import read_tiff_layer
    from napari_neurorestore.core.report import read_provenance

    p = tmp_path / "o.tif"
    mm = io.open_output(p, (6, 2, 8, 8), axes="TZYX", metadata=PROV, scale=SCALE,
                        space_unit="micrometer", time_unit="s")
    mm[:] = 2.0
    mm.flush()
    del mm
    with tifffile.TiffFile(p) as tf:
        assert tf.is_imagej and tf.series[0].axes == "TZYX"
        ij = tf.imagej_metadata
        assert ij["spacing"] == 2.0 and ij["unit"] == "um" and ij["finterval"] == 0.1
        xres = tf.pages[0].tags["XResolution"].value
        assert xres[0] / xres[1] == pytest.approx(2.0)            # 2 pixels per µm
        assert json.loads(ij["Info"]) == PROV
    (data, kw, _), = read_tiff_layer(p)
    assert kw["scale"] == pytest.approx([1.0, 2.0, 0.5, 0.5])       # t stays 1 in napari
    assert kw["metadata"]["unit"] == "micrometer"
    assert (np.asarray(data) == 2.0).all()
    assert read_provenance(p) == PROV


def test_tiff_output_without_scale_unchanged(tmp_path):
    p = tmp_path / "o.tif"
    mm = io.open_output(p, (3, 8, 8), metadata=PROV)
    mm[:] = 1.0
    del mm
    with tifffile.TiffFile(p) as tf:
        assert not tf.is_imagej and tf.shaped_metadata[0]["neurorestore"] == PROV["neurorestore"]


def test_ome_tiff_physical_sizes_read(tmp_path):
    from napari_neurorestore._reader import read_tiff_layer

    p = tmp_path / "in.ome.tif"
    tifffile.imwrite(p, np.zeros((3, 8, 8), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2,
                               "PhysicalSizeZ": 1.5, "PhysicalSizeXUnit": "µm",
                               "PhysicalSizeYUnit": "µm", "PhysicalSizeZUnit": "µm"})
    (_, kw, _), = read_tiff_layer(p)
    assert kw["name"] == "in"
    assert kw["scale"] == pytest.approx([1.5, 0.2, 0.2])
    assert kw["metadata"]["unit"] == "micrometer"
    # mixed units are brought onto micrometers
    q = tmp_path / "mixed.ome.tif"
    tifffile.imwrite(q, np.zeros((3, 8, 8), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 200, "PhysicalSizeXUnit": "nm",
                               "PhysicalSizeY": 200, "PhysicalSizeYUnit": "nm",
                               "PhysicalSizeZ": 1.5, "PhysicalSizeZUnit": "µm"})
    (_, kw, _), = read_tiff_layer(q)
    assert kw["scale"] == pytest.approx([1.5, 0.2, 0.2])


def test_napari_writer_keeps_the_scale(tmp_path):
    from napari_neurorestore._reader import read_tiff_layer
    from napari_neurorestore._writer import write_image

    data = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    p = tmp_path / "w.tif"
    write_image(str(p), data, {"name": "w", "scale": [2.0, 0.3, 0.3],
                               "metadata": {"axes": "ZYX", "unit": "micrometer"}})
    (back, kw, _), = read_tiff_layer(p)
    assert kw["scale"] == pytest.approx([2.0, 0.3, 0.3])
    assert kw["metadata"]["unit"] == "micrometer"
    np.testing.assert_array_equal(np.asarray(back), data)
    q = tmp_path / "plain.tif"                       # scale 1: a plain float32 TIFF, as before
    write_image(str(q), data, {"name": "plain", "scale": [1.0, 1.0, 1.0]})
    with tifffile.TiffFile(q) as tf:
        assert not tf.is_imagej
