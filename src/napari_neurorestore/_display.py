"""Is there a screen for napari? Without one, Qt aborts (exit 134) with a message about the
"xcb" platform plugin that does not say what is missing; `neurorestore gui` asks here first.
No Qt, no napari: only the environment, libX11 (when present) and sockets."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys

#: Qt platforms that need no screen (the user chose them)
_HEADLESS_QPA = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def _command() -> str:
    """How the user started us, for the hint (``.venv/bin/neurorestore gui``)."""
    argv0 = sys.argv[0] if sys.argv else ""
    name = argv0 if os.path.basename(argv0) == "neurorestore" else "neurorestore"
    return f"{name} gui"


def _x11_reachable(display: str, timeout: float = 2.0) -> bool:
    """Whether an X server answers at ``display`` (libX11's XOpenDisplay, which also checks
    the xauth cookie, when libX11 is installed; else a connection to its socket)."""
    lib = ctypes.util.find_library("X11")
    if lib:
        try:
            x11 = ctypes.CDLL(lib)
            x11.XOpenDisplay.restype = ctypes.c_void_p
            x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
            x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
            handle = x11.XOpenDisplay(display.encode())
            if handle:
                x11.XCloseDisplay(handle)
                return True
            return False
        except (OSError, AttributeError):
            pass
    host, _, rest = display.rpartition(":")
    try:
        number = int(rest.split(".")[0])
    except ValueError:
        return False
    if host in ("", "unix") or host.startswith("/"):
        path = host if host.startswith("/") else f"/tmp/.X11-unix/X{number}"
        for address in (path, "\0" + path):  # the socket file, or Linux's abstract socket
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(address)
                return True
            except OSError:
                continue
            finally:
                s.close()
        return False
    try:
        socket.create_connection((host, 6000 + number), timeout=timeout).close()
        return True
    except OSError:
        return False


def display_problem(env: dict | None = None, platform: str | None = None) -> str | None:
    """None when napari can open a window; otherwise one line that says why not and what
    to do (a desktop session, or a virtual display with ``xvfb-run -a``). Only Linux and
    other X11/Wayland systems are checked: macOS and Windows always have a screen."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "darwin", "cygwin")):
        return None
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] in _HEADLESS_QPA:
        return None
    hint = (f"run it in a desktop session, or give it a virtual display: "
            f"xvfb-run -a {_command()}")
    wayland = env.get("WAYLAND_DISPLAY")
    if wayland:
        path = wayland if os.path.isabs(wayland) else os.path.join(
            env.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}"), wayland)
        if os.path.exists(path):
            return None
    display = env.get("DISPLAY")
    if not display:
        if wayland:
            return (f"neurorestore gui: no display found (the Wayland display {wayland!r} "
                    f"does not exist and DISPLAY is not set); {hint}")
        return (f"neurorestore gui: no display found (neither DISPLAY nor WAYLAND_DISPLAY "
                f"is set); {hint}")
    if not _x11_reachable(display):
        return (f"neurorestore gui: the X display {display!r} (DISPLAY) cannot be opened "
                f"(no X server there, or no permission); {hint}")
    return None
