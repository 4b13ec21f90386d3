"""The fidelity table: SNR and contrast columns with their definitions in the header
tooltips; long layer names elided in the middle (whole in the tooltip)."""

import numpy as np
from qtpy.QtCore import Qt

from napari_neurorestore._widgets.traces_table import (
    TABLE_COLUMNS,
    fill_fidelity_table,
    make_fidelity_table,
)
from napari_neurorestore.core import traces as tr


def test_snr_and_contrast_columns_say_their_definitions(qtbot):
    table = make_fidelity_table()
    qtbot.addWidget(table)
    col = {name: j for j, name in enumerate(TABLE_COLUMNS)}
    snr_tip = table.horizontalHeaderItem(col["SNR (dB)"]).toolTip()
    assert "ΔF/F peak" in snr_tip and "noise std" in snr_tip
    assert "annulus" in table.horizontalHeaderItem(col["Contrast (dB)"]).toolTip()
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    rng = np.random.default_rng(0)
    movie = rng.poisson(50, (40, 16, 16)).astype(np.float64)
    labels = np.zeros((16, 16), np.int32)
    labels[4:9, 4:9] = 1
    name = "a_very_long_layer_name_of_a_restored_movie_v2"
    res = tr.compute_traces(movie, labels, {name: movie * 0.5 + 10})
    fill_fidelity_table(table, res, {})
    cells = [table.item(i, col["Layer"]) for i in range(table.rowCount())]
    assert any(c.text() == name and c.toolTip() == name for c in cells)
    assert all(table.item(i, col["Contrast (dB)"]).text() for i in range(table.rowCount()))


def test_plot_titles_are_elided_in_the_middle_keeping_the_suffix():
    from napari_neurorestore._widgets.traces_plot import elide_middle

    name = "calcium movie (noisy) [denoised]"
    assert elide_middle("raw", 8) == "raw"
    short = elide_middle(name, 20)
    assert len(short) == 20 and short.endswith("[denoised]") and "…" in short
