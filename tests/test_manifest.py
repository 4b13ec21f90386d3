import numpy as np


def test_manifest_validates_and_resolves():
    from npe2 import PluginManifest

    pm = PluginManifest.from_distribution("napari-neurorestore")
    pm.validate_imports()
    assert {w.display_name for w in pm.contributions.widgets} >= {"Restore", "ROI traces"}
    assert pm.contributions.sample_data[0].key == "calcium_movie"


def test_sample_data_is_a_noisy_movie():
    from napari_neurorestore._sample_data import calcium_movie

    (data, kwargs, kind), = calcium_movie()
    assert kind == "image" and data.ndim == 3 and data.shape[0] >= 100
    assert data.dtype == np.uint16 and "name" in kwargs


def test_reader_opens_tiff_with_axes_and_scale(tmp_path):
    import tifffile

    from napari_neurorestore._reader import napari_get_reader

    p = tmp_path / "movie.tif"
    tifffile.imwrite(p, np.ones((5, 8, 9), np.uint16), imagej=True,
                     resolution=(1 / 0.5, 1 / 0.5), metadata={"axes": "TYX"})
    assert napari_get_reader(str(tmp_path / "x.png")) is None
    reader = napari_get_reader(str(p))
    (data, kwargs, kind), = reader(str(p))
    assert data.shape == (5, 8, 9) and kind == "image"
    assert kwargs["metadata"]["axes"] == "TYX"
    assert kwargs["scale"] == [1.0, 0.5, 0.5]
