"""The parameter form (_widgets/form.py) reads field(metadata=...) and falls back to the
docstring and its tables (run under xvfb-run)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from napari_neurorestore._widgets.form import FIELD_OPTIONS, ParamForm

pytestmark = pytest.mark.gui


@dataclass(frozen=True)
class Toy:
    """Made-up parameters.

    Parameters
    ----------
    window : frames in the window, from the docstring.
    rate : step size, from the docstring.
    epochs : passes over the data.
    factor : the scale factor.
    """

    window: int = field(default=5, metadata={"label": "frames", "min": 3, "max": 9,
                                             "step": 2, "help": "Frames per window."})
    rate: float = 0.5
    epochs: int = field(default=4, metadata={"max": 50})
    factor: int = 2
    seed: int | None = None
    mode: str = field(default="a", metadata={"choices": ("a", "b"), "label": "the mode"})
    patch_size: int = 16


@pytest.fixture
def form(qtbot):
    from magicgui.widgets import Container

    f = ParamForm(Container(), Container(labels=True), params={"upsample": Toy})
    f.build("upsample")
    return f


def test_metadata_keys_set_label_range_step_and_tooltip(form):
    w = form.widgets["window"]
    assert (w.label, w.min, w.max, w.step) == ("frames", 3, 9, 2)
    assert w.tooltip == "Frames per window."  # "help" replaces the docstring entry
    m = form.widgets["mode"]
    assert m.label == "the mode" and list(m.choices) == ["a", "b"]


def test_without_metadata_the_docstring_and_tables_apply(form):
    r = form.widgets["rate"]
    assert r.label == "rate" and r.tooltip == "step size, from the docstring."
    assert (r.min, r.max) == (0.0, 1e9)
    e = form.widgets["epochs"]  # metadata "max" overrides the table, the table's "min" stays
    assert (e.min, e.max) == (FIELD_OPTIONS["epochs"]["min"], 50)
    assert e.tooltip == "passes over the data."
    f = form.widgets["factor"]  # the (method, name) entry of the table
    assert (f.min, f.max) == (2, 4)
    s = form.widgets["seed"]  # optional: the sentinel shows as "random"
    assert s.value == -1 and "random" in s.tooltip
    assert "patch_size" in [w.name for w in form.advanced]
    assert "window" in [w.name for w in form.main]


def test_values_round_trip(form):
    assert form.get() == Toy()
    form.set_values({"window": 7, "seed": 3, "mode": "b"})
    assert form.get() == Toy(window=7, seed=3, mode="b")
    form.set_values(Toy(seed=None))
    assert form.values()["seed"] is None


def test_widget_modules_do_not_import_torch():
    """napari's start-up imports the widget modules: none of them may pull in torch."""
    mods = ["base", "form", "live_output", "model_files", "restore", "restore_jobs",
            "traces", "traces_compute", "traces_layers", "traces_options", "traces_plot",
            "traces_rois", "traces_table", "trust", "worker"]
    code = "; ".join(f"import napari_neurorestore._widgets.{m}" for m in mods)
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_an_optional_field_shows_its_none_text(form):
    seed = form.widgets["seed"]  # int | None: None is the sentinel -1, shown as "random"
    edit = seed.native.lineEdit()
    assert edit.text() == "random" and form.values()["seed"] is None
    seed.value = 3
    assert edit.text() == "3"
    seed.value = -1
    assert edit.text() == "random" and form.get() == Toy()
    seed.native.setFocus()
    seed.native.clearFocus()  # leaving the field reads its text back: still None
    assert form.values()["seed"] is None and edit.text() == "random"


def test_a_setting_without_effect_is_greyed_out_and_says_why(qtbot):
    """The denoiser's blend with the Gaussian goes with the full long context only: with
    the causal step (or no long context) the form shows it does not apply."""
    from magicgui.widgets import Container

    f = ParamForm(Container(), Container(labels=True))
    f.build("denoise")
    guard, causal, ctx = (f.widgets[n] for n in ("gaussian_guard", "causal_context", "long_context"))
    assert guard.enabled and causal.enabled and "Not applied" not in guard.tooltip
    free = guard.tooltip
    causal.value = True
    assert not guard.enabled and guard.tooltip.startswith("Not applied: needs 'causal long context' off")
    assert guard.tooltip.endswith(free)
    causal.value = False
    assert guard.enabled and guard.tooltip == free
    f.widgets["centre_correction"].value = False  # the long context is fitted with it
    assert not ctx.enabled and not guard.enabled and not causal.enabled
    assert "'centre-frame correction' on" in ctx.tooltip
    f.widgets["centre_correction"].value = True
    assert ctx.enabled and guard.enabled
    # a field a loaded model fixes stays fixed
    f.fix({"long_context": True}, "fixed:")
    f.apply_needs()
    assert not ctx.enabled and ctx.tooltip.startswith("fixed:")
