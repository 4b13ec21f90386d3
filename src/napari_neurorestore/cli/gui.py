"""``neurorestore gui``: napari with the Restore widget and the sample movie."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("gui", help="open napari with the Restore widget and the sample movie")
    p.add_argument("files", nargs="*", help="TIFF stacks to open instead of the sample")
    p.set_defaults(func=run_gui)


def run_gui(args) -> int:
    from .._display import display_problem

    if problem := display_problem():  # Qt would abort (134) with a misleading xcb message
        return print(problem, file=sys.stderr) or 2
    try:
        import napari
    except ImportError:
        print("napari is not installed: pip install 'napari-neurorestore[napari]'",
              file=sys.stderr)
        return 1
    viewer = napari.Viewer()
    if args.files:
        for f in args.files:
            viewer.open(f, plugin="napari-neurorestore")
    else:
        viewer.open_sample("napari-neurorestore", "calcium_movie")
    viewer.window.add_plugin_dock_widget("napari-neurorestore", "Restore")
    napari.run()
    return 0
