"""MkDocs hooks: pages generated from the code, so that they cannot drift from it.

* ``<!-- cli-reference -->`` becomes the reference of every ``neurorestore`` subcommand and
  option, read from the parser itself (:func:`napari_neurorestore.cli.main.build_parser`).
  An option without a help line fails the build.
* ``<!-- params: NAME -->`` becomes the table of method NAME's parameters: field, CLI flag,
  default and meaning, from its parameter dataclass (its field metadata and docstring).
* The docstrings' Sphinx roles (``:meth:`grid```, ``:class:`~a.b.Progress```), which
  mkdocstrings prints as they are, become plain code (``grid``, ``Progress``).

Run by ``mkdocs build`` (``hooks:`` in mkdocs.yml); nothing here is part of the package.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

_PARAMS = re.compile(r"<!--\s*params:\s*([a-z_]+)\s*-->")
_CLI = "<!-- cli-reference -->"


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{name.upper() if isinstance(name, str) else name}`"
    metavar = ""
    if action.nargs != 0:
        mv = action.metavar or (action.dest.upper() if not action.choices else None)
        if action.choices and mv is None:
            mv = "{" + ",".join(map(str, action.choices)) + "}"
        metavar = f" {mv}" if mv else ""
    return ", ".join(f"`{s}{metavar}`" for s in action.option_strings)


def _default(action: argparse.Action) -> str:
    d = action.default
    if d in (None, argparse.SUPPRESS, False) or action.nargs == 0:
        return ""
    return f"`{d}`"


def cli_reference() -> str:
    """Markdown for every subcommand of ``neurorestore``; raises when an option has no help."""
    from napari_neurorestore.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = []
    undocumented = []
    for name, sp in sub.choices.items():
        out.append(f"## `neurorestore {name}`\n")
        lead = helps.get(name) or ""
        if lead:
            out.append(f"{lead}\n")
        if sp.description and sp.description != lead:
            out.append(f"{sp.description}\n")
        usage = sp.format_usage().replace("usage: ", "").strip()
        out.append(f"```text\n{usage}\n```\n")
        out.append("| option | default | what it does |\n| --- | --- | --- |")
        for a in sp._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            if not a.help or a.help == argparse.SUPPRESS:
                undocumented.append(f"neurorestore {name} {'/'.join(a.option_strings) or a.dest}")
                continue
            try:  # argparse's own expansion (%(default)s, %%)
                text = a.help % {**vars(a), "prog": sp.prog}
            except (KeyError, TypeError, ValueError):
                text = a.help
            out.append(f"| {_flags(a)} | {_default(a)} | {_cell(text)} |")
        out.append("")
    if undocumented:
        raise RuntimeError("CLI options without a help line: " + ", ".join(undocumented))
    return "\n".join(out)


def params_table(method: str) -> str:
    """Markdown table of a method's parameters, from its dataclass."""
    from napari_neurorestore.cli.restore import flag_of
    from napari_neurorestore.core.methods import get
    from napari_neurorestore.core.params import field_docs

    cls = get(method).params_class
    docs = field_docs(cls)
    rows = ["| parameter | CLI flag | default | what it does |", "| --- | --- | --- | --- |"]
    for f in fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue
        flag = flag_of(f)
        default = f.default if f.default is not MISSING else ""
        text = meta["help"] or docs.get(f.name, "")  # the CLI's and the form's words
        rows.append(f"| `{f.name}` | `{flag}` | `{default}` | {_cell(text)} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **_: object) -> str:
    if _CLI in markdown:
        markdown = markdown.replace(_CLI, cli_reference())
    return _PARAMS.sub(lambda m: params_table(m.group(1)), markdown)


_ROLE = re.compile(r":(?:meth|attr|class|func|mod|data|exc):(<code>)(?:~(?:[\w.]*\.)?)?([^<]*</code>)")


def on_page_content(html: str, **_: object) -> str:
    return _ROLE.sub(r"\1\2", html)
