"""What the API's functions share: the parameters' type checks, the values a caller set,
and the one run through the engine."""

from __future__ import annotations

from typing import Any

from ..core.progress import drain


def _params(cls: type, **kw: Any) -> Any:
    """``cls(**kw)`` (a parameter dataclass), with each value's type checked first: a clear
    TypeError naming the argument instead of one from deep inside (``train_seconds="2"``)."""
    import numbers
    from dataclasses import fields

    names = {f.name: str(f.type) for f in fields(cls)}
    for name, value in kw.items():
        if name not in names:
            raise TypeError(f"unknown parameter {name!r} for {cls.__name__}; known: "
                            f"{', '.join(sorted(names))}")
        ann = {t.strip() for t in names[name].split("|")}
        if value is None:
            if "None" not in ann:
                raise TypeError(f"{name}: None is not allowed")
            continue
        if "bool" in ann:
            ok = isinstance(value, bool) or type(value).__name__ == "bool_"
            want = "True or False"
        elif "int" in ann:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            want = "an integer"
        elif "float" in ann:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            want = "a number"
        elif "str" in ann:
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise TypeError(f"{name}: expected {want}, got {value!r} "
                            f"({type(value).__name__})")
    return cls(**kw)


def _given(**kw: Any) -> dict[str, Any]:
    """The named arguments a caller set (None: not set; the dataclass's default, or with a
    model the model's value). A saved model's fixed parameters are checked against
    them (:meth:`~.core.methods.base.Method.merge_params`)."""
    return {k: v for k, v in kw.items() if v is not None}


def _run(method: str, data: Any, params: Any, model: Any, given: dict | None, cancel: Any,
         out: Any, progress: Any, return_model: bool, return_result: bool = False,
         **options: Any):
    """Run ``method`` through the engine (a model path is loaded, its method checked and
    its parameters merged there) and shape what the API function returns."""
    from ..core.engine import restore

    gen = restore(method, data, params, model=model, given=given, cancel=cancel, out=out,
                  **options)
    result = drain(gen, progress)
    if return_result:
        return result
    return (result.data, result.model) if return_model else result.data
