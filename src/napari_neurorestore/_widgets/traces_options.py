"""The ΔF/F options of the ROI traces dock (F0 mode, frame rate, offset, neuropil), which
make a :class:`napari_neurorestore.core.traces.TraceParams`; they start at its defaults."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
)

from ..core import traces as tr

F0_LABELS = {
    "percentile": "percentile of the trace",
    "sliding": "sliding-window percentile",
    "first": "mean of the first N frames",
    "fixed": "fixed value",
}


def _dspin(lo: float, hi: float, value: float, decimals: int, step: float,
           suffix: str = "") -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    s.setKeyboardTracking(False)
    return s


def _row(form: QFormLayout, label: str, *widgets: Any, stretch: tuple[int, ...] = ()) -> None:
    row = QHBoxLayout()
    for k, w in enumerate(widgets):
        row.addWidget(w, stretch=stretch[k] if k < len(stretch) else 0)
    form.addRow(label, row)


class TraceOptions(QGroupBox):
    """The "ΔF/F" box. Its controls are attributes (listed in :attr:`CONTROLS`);
    :meth:`params` reads them, ``changed`` lists the signals that mean "recompute"."""

    CONTROLS = ("f0_mode_combo", "percentile_spin", "window_spin", "window_unit_combo",
                "first_frames_spin", "f0_value_spin", "fps_spin", "seconds_check",
                "offset_spin", "neuropil_check", "neuropil_coef_spin", "neuropil_inner_spin",
                "neuropil_outer_spin")

    def __init__(self) -> None:
        super().__init__("ΔF/F")
        d = tr.TraceParams()
        form = QFormLayout(self)
        self.f0_mode_combo = QComboBox()
        for mode in tr.F0_MODES:
            self.f0_mode_combo.addItem(F0_LABELS[mode], mode)
        self.f0_mode_combo.setCurrentIndex(tr.F0_MODES.index(d.f0_mode))
        form.addRow("F0", self.f0_mode_combo)
        self.percentile_spin = _dspin(0, 100, d.f0_percentile, 1, 1, " %ile")
        self.window_spin = _dspin(0.1, 1e6, d.f0_window, 1, 1)
        self.window_unit_combo = QComboBox()
        self.window_unit_combo.addItems(["s", "frames"])
        self.window_unit_combo.setCurrentText(d.f0_window_unit)
        self.first_frames_spin = QSpinBox()
        self.first_frames_spin.setRange(1, 10**7)
        self.first_frames_spin.setValue(d.f0_first_frames)
        self.first_frames_spin.setPrefix("N = ")
        self.f0_value_spin = _dspin(1e-6, 1e9, d.f0_value, 3, 10)
        _row(form, "", self.percentile_spin, self.window_spin, self.window_unit_combo,
             self.first_frames_spin, self.f0_value_spin)
        self.fps_spin = _dspin(0, 1e5, d.fps or 0.0, 2, 1)
        self.fps_spin.setSpecialValueText("unknown")
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("frame rate (needed for time in seconds and windows in seconds)")
        self.seconds_check = QCheckBox("time in s")
        self.seconds_check.setChecked(True)
        self.offset_spin = _dspin(-1e9, 1e9, d.offset, 2, 1)
        self.offset_spin.setPrefix("offset ")
        self.offset_spin.setToolTip("camera dark level, subtracted from all intensities "
                                    "before ΔF/F and SNR")
        _row(form, "Frame rate", self.fps_spin, self.seconds_check, self.offset_spin,
             stretch=(1, 0, 1))
        self.neuropil_check = QCheckBox("subtract")
        self.neuropil_check.setChecked(d.neuropil)
        self.neuropil_check.setToolTip("subtract coefficient x the annulus mean from F")
        self.neuropil_coef_spin = _dspin(0, 10, d.neuropil_coef, 2, 0.05)
        self.neuropil_coef_spin.setPrefix("× ")
        self.neuropil_inner_spin = _dspin(0, 1000, d.neuropil_inner, 1, 1)
        self.neuropil_inner_spin.setToolTip("annulus: from this distance to the ROI (pixels)")
        self.neuropil_outer_spin = _dspin(0.5, 1000, d.neuropil_outer, 1, 1)
        self.neuropil_outer_spin.setSuffix(" px")
        self.neuropil_outer_spin.setToolTip("annulus: up to this distance to the ROI (pixels); "
                                            "also the background of the SNR")
        _row(form, "Neuropil", self.neuropil_check, self.neuropil_coef_spin, stretch=(0, 1))
        _row(form, "Annulus", self.neuropil_inner_spin, QLabel("to"), self.neuropil_outer_spin,
             stretch=(1, 0, 1))
        self.f0_mode_combo.currentIndexChanged.connect(self.update_fields)
        self.neuropil_check.toggled.connect(self.update_fields)

    def changed(self) -> list[Any]:
        """The signals of every control (a change means the traces must be recomputed)."""
        spins = [self.percentile_spin, self.window_spin, self.first_frames_spin,
                 self.f0_value_spin, self.fps_spin, self.offset_spin, self.neuropil_coef_spin,
                 self.neuropil_inner_spin, self.neuropil_outer_spin]
        combos = [self.f0_mode_combo, self.window_unit_combo]
        return ([s.valueChanged for s in spins] + [c.currentIndexChanged for c in combos]
                + [c.toggled for c in (self.neuropil_check, self.seconds_check)])

    def update_fields(self, *_: Any) -> None:
        """Show the fields of the current F0 mode; the coefficient only with neuropil on."""
        mode = self.f0_mode_combo.currentData()
        self.percentile_spin.setVisible(mode in ("percentile", "sliding"))
        self.window_spin.setVisible(mode == "sliding")
        self.window_unit_combo.setVisible(mode == "sliding")
        self.first_frames_spin.setVisible(mode == "first")
        self.f0_value_spin.setVisible(mode == "fixed")
        self.neuropil_coef_spin.setEnabled(self.neuropil_check.isChecked())

    def use_seconds(self) -> bool:
        """Time in seconds: asked for, and the frame rate known."""
        return self.seconds_check.isChecked() and self.fps_spin.value() > 0

    def params(self) -> tr.TraceParams:
        """The :class:`~napari_neurorestore.core.traces.TraceParams` the controls describe."""
        fps = float(self.fps_spin.value())
        return tr.TraceParams(
            f0_mode=self.f0_mode_combo.currentData(),
            f0_percentile=float(self.percentile_spin.value()),
            f0_window=float(self.window_spin.value()),
            f0_window_unit=self.window_unit_combo.currentText(),
            f0_first_frames=int(self.first_frames_spin.value()),
            f0_value=float(self.f0_value_spin.value()),
            neuropil=self.neuropil_check.isChecked(),
            neuropil_coef=float(self.neuropil_coef_spin.value()),
            neuropil_inner=float(self.neuropil_inner_spin.value()),
            neuropil_outer=float(self.neuropil_outer_spin.value()),
            offset=float(self.offset_spin.value()),
            fps=fps if fps > 0 else None,
        )
