"""`neurorestore gui` without a display: one clear line and exit 2, not Qt's abort (134)."""

import os
import subprocess
import sys

import pytest

from napari_neurorestore._display import display_problem


def _no_display_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return env


def test_gui_without_display_exits_2_with_a_hint():
    r = subprocess.run([sys.executable, "-m", "napari_neurorestore", "gui"], env=_no_display_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "no display found" in lines[0] and "xvfb-run -a" in lines[0]
    assert "Traceback" not in r.stderr and "xcb" not in r.stderr


def test_display_problem_cases(tmp_path):
    env = _no_display_env()
    assert "neither DISPLAY nor WAYLAND_DISPLAY" in display_problem(env, "linux")
    assert display_problem(env, "darwin") is None and display_problem(env, "win32") is None
    assert display_problem({**env, "QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    # an X display nobody serves
    msg = display_problem({**env, "DISPLAY": ":4711"}, "linux")
    assert "':4711'" in msg and "cannot be opened" in msg and "xvfb-run -a" in msg
    # a Wayland socket that does not exist / does
    missing = {**env, "WAYLAND_DISPLAY": "wayland-x", "XDG_RUNTIME_DIR": str(tmp_path)}
    assert "does not exist" in display_problem(missing, "linux")
    (tmp_path / "wayland-x").touch()
    assert display_problem(missing, "linux") is None


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (xvfb-run)")
def test_display_problem_accepts_a_real_display():
    assert display_problem(platform="linux") is None
