"""``neurorestore <method>``: one subcommand per registered method, all served here.

The method's options are generated from its parameter dataclass: one per field, named
``--field-name`` (or the field's ``metadata["flag"]``; booleans that default to True get
``--no-field-name``), with the help text, choices and placeholder of the field's metadata
(its docstring entry when the metadata has no help) and the dataclass's default. An option
not given keeps the dataclass's default, so the CLI and the widget share one source of
defaults. The method's extra inputs (``Method.cli_options``) and the shared run options
(``common.add_run_options``) complete the subcommand; the run is :mod:`..core.engine`'s.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import MISSING, Field, fields
from typing import Any

from ..core.params import field_docs
from .common import CtrlCStopsTraining, ProgressBar, add_run_options

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def field_type(f: Field) -> type:
    """The Python type of a field's annotation (``int | None`` -> int)."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for part in (p.strip() for p in str(ann).split("|")):
        if part in _TYPES:
            return _TYPES[part]
    return str


def flag_of(f: Field) -> str:
    if "flag" in f.metadata:
        return f.metadata["flag"]
    name = f.name.replace("_", "-")
    if field_type(f) is bool and f.default is True:
        return f"--no-{name}"
    return f"--{name}"


def _help(f: Field, doc: dict[str, str]) -> str:
    text = f.metadata.get("help") or doc.get(f.name, "")
    default = f.default if f.default is not MISSING else None
    if field_type(f) is bool:
        text = f"turn off: {text}" if default else text
    elif "default" not in text:
        text += " (default: none)" if default is None else f" (default {default})"
    return text.replace("%", "%%")


def add_field(group: Any, f: Field, doc: dict[str, str]) -> None:
    """The option of one parameter field (default None: 'not given')."""
    kind = field_type(f)
    kw: dict[str, Any] = {"dest": f.name, "default": None, "help": _help(f, doc)}
    if kind is bool:
        kw["action"] = "store_false" if f.default is True else "store_true"
    else:
        kw["type"] = kind
        if "choices" in f.metadata:
            kw["choices"] = list(f.metadata["choices"])
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        if "const" in f.metadata:  # the flag alone means this value
            kw.update(nargs="?", const=f.metadata["const"])
    group.add_argument(flag_of(f), *f.metadata.get("aliases", ()), **kw)
    if kind is bool and f.default is True and "on_flag" in f.metadata:
        # a flag that used to turn on what is now the default keeps working
        group.add_argument(f.metadata["on_flag"], dest=f.name, default=None,
                           action="store_true", help="the default (kept for old scripts)")


def add_parser(sub: Any, method: Any) -> argparse.ArgumentParser:
    """The subcommand of ``method`` (a :class:`~..core.methods.base.Method`)."""
    many = getattr(method, "many_inputs", False)
    p = sub.add_parser(method.name, help=method.help, description=method.description)
    p.add_argument("input", nargs="+" if many else None, help=method.input_help)
    p.add_argument("-o", "--output", required=True,
                   help="output: OUT.tif (float32, input's units, memory-mapped) or OUT.zarr "
                        "(chunked, compressed); written chunk by chunk; for a suite2p plane "
                        "folder input, a folder (OUT/ or OUT/data.bin): a new plane folder "
                        "(int16 data.bin, ops pointing at it) for suite2p's detection"
                        + ("; a folder when there are several inputs" if many else ""))
    g = p.add_argument_group(f"{method.name} parameters")
    doc = field_docs(method.params_class)
    for f in fields(method.params_class):
        add_field(g, f, doc)
    for o in method.cli_options:  # its extra inputs (Method.cli_options: Option data)
        kw: dict[str, Any] = {"dest": o.name, "default": o.default,
                              "help": o.help.replace("%", "%%")}
        if o.kind in _TYPES:
            kw["type"] = _TYPES[o.kind]
        if o.metavar:
            kw["metavar"] = o.metavar
        g.add_argument(o.cli_flag, *o.aliases, **kw)
    add_run_options(p, method.distributed)
    p.set_defaults(func=run, method=method.name)
    return p


def request_from(args: Any) -> Any:
    """The engine's :class:`~..core.engine.Request` from parsed arguments."""
    from ..core.engine import Request
    from ..core.methods import get

    m = get(args.method)
    given = {f.name: getattr(args, f.name) for f in fields(m.params_class)
             if getattr(args, f.name, None) is not None}
    params = _flagged(m.params_class, lambda: m.params_class(**given))
    options = {o.name: getattr(args, o.name) for o in m.cli_options}
    inputs = list(args.input) if isinstance(args.input, list) else [args.input]
    return Request(m.name, inputs, args.output, params, given, model=args.model,
                   save_model=args.save_model, overwrite=args.overwrite, force=args.force,
                   quiet=args.quiet, workers=getattr(args, "workers", None),
                   scheduler=getattr(args, "dask_scheduler", None), options=options,
                   dtype=getattr(args, "dtype", None))


def with_flags(message: str, params_class: type) -> str:
    """``message`` with the parameter names it mentions written as the CLI's flags
    ("patch_size must be ..." -> "--patch-size must be ..."): every name with an
    underscore, and a plain name at the start of a sentence or in "set A or B"."""
    flags = {f.name: flag_of(f) for f in fields(params_class)}
    if not flags:
        return message
    words = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))

    def sub(m: re.Match) -> str:
        name = m.group(0)
        return flags[name] if "_" in name else name

    out = re.sub(rf"(?<![\w-])({words})(?![\w-])", sub, message)
    lead = rf"(^|[.;:] |\bset |\bor |\band )({words})(?= (must|applies|or|and|is)\b|\s*\()"
    return re.sub(lead, lambda m: m.group(1) + flags[m.group(2)], out)


def _flagged(params_class: type, call: Any) -> Any:
    """``call()``, its ValueError's message naming flags instead of field names."""
    try:
        return call()
    except ValueError as e:
        if e.args and isinstance(e.args[0], str):
            e.args = (with_flags(e.args[0], params_class), *e.args[1:])
        raise


def run(args: Any) -> int:
    from ..core.engine import restore_files
    from ..core.methods import get

    req = request_from(args)
    m = get(req.method)
    bar = ProgressBar(quiet=args.quiet)
    try:
        with CtrlCStopsTraining(bar) as hook:
            req.cancel = hook.token
            outcomes = _flagged(m.params_class, lambda: restore_files(req, progress=hook))
    finally:
        bar.close()
    stopped = " (stopped by Ctrl-C)" if hook.token.training_stopped else ""
    for o in outcomes:
        what = m.describe(o.model, o.params, o.grid)
        dtype = (o.result.data.dtype.name if o.result is not None else req.dtype) or "float32"
        what = what.replace("float32", dtype)
        if o.where is not None:
            print(f"wrote {o.output} {what} on {o.where}")
            continue
        info = o.model.info
        print(f"wrote {o.output} {what}; training {info.get('train_seconds', 0)} s, "
              f"{info.get('steps', 0)} steps{stopped if o.trained else ''}"
              + (f"; model saved to {req.save_model}" if req.save_model and o.trained else ""))
        after = m.after(o.result, o.params)
        if after:
            print(after)
        summary = m.training_summary(info) if o.trained else None
        if summary:
            print(summary)
    sys.stdout.flush()
    return 0
