"""The documentation site builds strictly, and its CLI reference names every option."""

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _options() -> dict[str, list[str]]:
    from napari_neurorestore.cli.main import build_parser

    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return {name: [s for a in sp._actions for s in a.option_strings if s not in ("-h", "--help")]
            for name, sp in sub.choices.items()}


def test_docs_build_strict_and_cli_reference_complete(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                        str(ROOT / "mkdocs.yml"), "-d", str(site)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    missing = [f"{name} {opt}" for name, opts in _options().items() for opt in opts
               if f"<code>{opt}" not in cli]
    assert not missing, f"options missing from the CLI reference: {missing}"
    for name in _options():
        assert f"neurorestore {name}</code>" in cli
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for fn in ("restore", "denoise", "sparse", "upsample", "isotropize"):
        assert f'id="napari_neurorestore.api.{fn}"' in api, fn


def test_undocumented_cli_option_fails_the_reference(monkeypatch):


    """An option without a help line makes the generated reference (hence the build) fail."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import _hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))


    cli_main = importlib.import_module("napari_neurorestore.cli.main")
    real = cli_main.build_parser

    def with_bare_option():
        p = real()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices["denoise"].add_argument("--secret-knob", type=int)
        return p

    monkeypatch.setattr(cli_main, "build_parser", with_bare_option)
    with pytest.raises(RuntimeError, match="--secret-knob"):
        _hooks.cli_reference()


def test_the_figures_script_imports_what_exists():
    """docs/make_figures.py imports inside its functions (napari and torch only when a
    part runs), so a module moved by a refactor would break it only when the figures are
    regenerated: every napari_neurorestore name it imports must exist."""
    import ast

    tree = ast.parse((ROOT / "docs" / "make_figures.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "napari_neurorestore"):
            mod = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(mod, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"), f"{node.module}.{alias.name}"
                found.append(alias.name)
    assert "roi_dff" in found and "interp_z" in found
