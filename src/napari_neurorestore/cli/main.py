"""``neurorestore``: the parser, built from the method registry, and :func:`main`.

    neurorestore denoise|sparse|upsample|isotropize IN -o OUT [options]   (cli/restore.py)
    neurorestore traces MOVIE --rois ROIS.tif -o traces.csv              (cli/traces.py)
    neurorestore report RAW RESTORED -o report.html                      (cli/report.py)
    neurorestore demo | gui                                              (cli/demo.py, gui.py)
"""

from __future__ import annotations

import argparse

from .._version import __version__
from ..core.methods import get, names
from . import demo, gui, live, report, restore, traces
from .common import guarded


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorestore",
        description="Self-supervised restoration of fluorescence neural imaging.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in names():
        restore.add_parser(sub, get(name))
    traces.add_parser(sub)
    live.add_parser(sub)
    report.add_parser(sub)
    demo.add_parser(sub)
    gui.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(args.func, args)
