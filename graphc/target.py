"""The function a ``graphc`` command names, and its example inputs.

``FILE.py:FUNC`` imports FILE.py by path (its folder importable, as when running
``python FILE.py``) and takes its attribute FUNC; the inputs are the function's
``@graphc.example(...)``, overridden by ``--arg NAME=VALUE`` by parameter name.
Shared by the command line (:mod:`graphc.cli`) and the tour (:mod:`graphc.demo`);
a mistake in what the user typed is a :class:`UsageError`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import itertools
import math
import os
import pathlib
import re
import sys
import traceback

import numpy as np

import graphc
from graphc import errors


class UsageError(Exception):
    """A mistake on the command line: reported as ``graphc CMD: error: ...``, exit 2."""


class ImportFailed(Exception):
    """The user's FILE.py failed while graphc imported it: reported without a traceback, exit 1."""


# --- loading FILE.py:FUNC ------------------------------------------------------------
_module_ids = itertools.count()


def load_module(path):
    """Import the Python file ``path`` as a fresh module (its folder importable)."""
    file = pathlib.Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}")
    mod_name = f"_graphc_cli_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs (dataclasses and pickling look modules up), and with
    # its own folder importable, as when running `python FILE.py`.
    sys.modules[mod_name] = module
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except graphc.GraphcError:
        sys.modules.pop(mod_name, None)
        raise                     # graphc's own message already names the user's line
    except (Exception, SystemExit) as e:   # KeyboardInterrupt: exit 130 as usual
        sys.modules.pop(mod_name, None)
        raise ImportFailed(_import_error_text(e, file)) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module


_IMPORT_HINT = ("graphc imports {name} to find the function, so its top-level code runs: "
                "{fix}, or put script code under `if __name__ == \"__main__\":`")


def _import_error_text(e: BaseException, file: pathlib.Path) -> str:
    """``file:line: what happened`` for an error raised while importing the user's file."""
    if isinstance(e, SyntaxError):
        where = errors.where_text(e.filename or str(file), e.lineno or 0)
        # Python's own rendering: the line and a caret under the mistake.
        shown = "".join(traceback.format_exception_only(type(e), e)).splitlines()[1:-1]
        return "\n".join([f"{where}: {type(e).__name__}: {e.msg}", *shown,
                          f"  Hint: fix the syntax; graphc imports {file.name} to find the "
                          "function, as Python's `import` would"])
    # The user's frames of the traceback, innermost last (not importlib's, graphc's, NumPy's).
    frames = [fr for fr in traceback.extract_tb(e.__traceback__)
              if not errors._is_internal(fr.filename)]
    # Raised in the standard library (argparse exits at import): point at the user's
    # call, in FILE or a module beside it.
    folder = os.path.join(str(file.resolve().parent), "")
    frames = [fr for fr in frames if os.path.abspath(fr.filename).startswith(folder)] or frames
    where = errors.where_text(frames[-1].filename, frames[-1].lineno) if frames else str(file)
    if isinstance(e, SystemExit):
        what = (f"{file} called sys.exit({e.code!r}) while graphc imported it")
        fix = "do not exit at import"
    else:
        detail = str(e)
        what = (f"{type(e).__name__}{': ' + detail if detail else ''} "
                f"(raised while graphc imported {file})")
        fix = "fix the error"
    lines = [f"{where}: {what}"]
    line = errors.source_line(where)
    if line:
        lines.append(f"    {line}")
    for fr in reversed(frames[:-1][-5:]):       # how the user's code got there
        lines.append(f"  called from {errors.where_text(fr.filename, fr.lineno)}"
                     + (f"\n    {fr.line}" if fr.line else ""))
    lines.append("  Hint: " + _IMPORT_HINT.format(name=file.name, fix=fix))
    return "\n".join(lines)


def load_function(target: str):
    """Import ``FILE.py`` by path and return its attribute ``FUNC`` (dots allowed).

    ``FILE.py`` alone names the file's one ``@graphc.example`` function."""
    path, sep, name = target.rpartition(":")
    if not sep and target.endswith(".py"):
        return _only_example(target)
    if not sep or not path or not name:
        raise UsageError(f"expected FILE.py:FUNC, got {target!r} "
                         "(for example examples/autodiff_trace.py:f)")
    module = load_module(path)
    mod_name = module.__name__
    obj = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            found = sorted(k for k, v in vars(module).items()
                           if (inspect.isfunction(v) or isinstance(v, graphc.Compiled))
                           and getattr(v, "__module__", None) == mod_name
                           and not k.startswith("_"))
            raise UsageError(f"{path} has no function {name!r}"
                             + (f"; functions defined there: {', '.join(found)}" if found else "")
                             ) from None
    if not callable(obj):
        raise UsageError(f"{path}:{name} is a {type(obj).__name__}, not a function")
    return obj


def _only_example(path: str):
    """The one function of ``path`` decorated with ``@graphc.example``."""
    module = load_module(path)
    found = {k: v for k, v in vars(module).items()
             if callable(v) and hasattr(v, "__graphc_example__") and not k.startswith("_")
             and getattr(v, "__module__", None) == module.__name__}
    if len(found) == 1:
        return next(iter(found.values()))
    names = ", ".join(f"{path}:{k}" for k in sorted(found))
    if found:
        raise UsageError(f"{path} has {len(found)} @graphc.example functions; name one: {names}")
    funcs = sorted(k for k, v in vars(module).items()
                   if inspect.isfunction(v) and v.__module__ == module.__name__
                   and not k.startswith("_"))
    raise UsageError(f"{path} has no @graphc.example function, so name the function: "
                     + (", ".join(f"{path}:{k}" for k in funcs) if funcs else f"{path}:FUNC"))


# --- --arg NAME=VALUE ----------------------------------------------------------------
_DTYPES = {
    "f16": np.float16, "f32": np.float32, "f64": np.float64,
    "i32": np.int32, "i64": np.int64, "bool": np.bool_,
    "float16": np.float16, "float32": np.float32, "float64": np.float64,
    "int32": np.int32, "int64": np.int64,
}
_ARRAY_RE = re.compile(r"^\s*([A-Za-z0-9]+)\s*\[\s*([0-9,\s]*)\]\s*$")


def parse_value(text: str, rng: np.random.Generator):
    """The value of one ``--arg``: an array spec ``f32[2,3]``, a number, or a bool."""
    m = _ARRAY_RE.match(text)
    if m:
        code, dims = m.groups()
        dtype = _DTYPES.get(code.lower())
        if dtype is None:
            raise UsageError(f"unknown dtype {code!r} in {text!r}; use one of "
                             "f16 f32 f64 i32 i64 bool")
        dims = [d.strip() for d in dims.split(",")]
        if dims and not dims[-1]:  # trailing comma: f32[3,]
            dims = dims[:-1]
        if any(not d for d in dims):
            raise UsageError(f"bad shape in {text!r}; write it like f32[64,1,28,28]")
        shape = tuple(int(d) for d in dims)
        _check_size(text, shape, dtype)
        # Made in the requested dtype: no float64 array of the same shape first.
        if dtype is np.float16:
            return rng.standard_normal(shape, dtype=np.float32).astype(np.float16)
        if np.issubdtype(dtype, np.floating):
            return rng.standard_normal(shape, dtype=dtype)
        if dtype is np.bool_:
            return rng.integers(0, 2, size=shape, dtype=np.bool_)
        return rng.integers(0, 10, size=shape, dtype=dtype)
    s = text.strip()
    if s in ("True", "False"):
        return s == "True"
    low = s.lower()
    is_float = any(c in low for c in ".e") or low.lstrip("+-") in ("inf", "nan", "infinity")
    try:
        return float(s) if is_float else int(s)
    except ValueError:
        raise UsageError(f"cannot read {text!r}: expected DTYPE[SHAPE] (e.g. f32[64,10]), "
                         "a number (0.1, 1e-3, 3) or True/False") from None


#: The most elements one ``--arg`` array may have (its memory is also checked).
MAX_ARG_ELEMENTS = 2 ** 31


def _available_memory():
    """Bytes of memory available now (Linux's MemAvailable, else all RAM), or None."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _check_size(text, shape, dtype):
    """Refuse an absurd ``--arg`` array before allocating it."""
    n = math.prod(shape)
    if n > MAX_ARG_ELEMENTS:
        raise UsageError(f"{text.strip()!r} has {n:,} elements, more than the {MAX_ARG_ELEMENTS:,} "
                         "(2**31) an --arg array may have; give a smaller shape")
    # float16 values are drawn in float32 first.
    nbytes = n * max(np.dtype(dtype).itemsize, 4 if dtype is np.float16 else 1)
    available = _available_memory()
    if available is not None and nbytes > available:
        raise UsageError(f"{text.strip()!r} needs {nbytes / 2**30:.1f} GiB of memory, more than "
                         f"the {available / 2**30:.1f} GiB available; give a smaller shape")


def parse_args_option(items) -> list[tuple[str, object]]:
    """``["x=f32[2,3]", "lr=0.1"]`` -> ``[("x", array), ("lr", 0.1)]`` (seeded values)."""
    rng = np.random.default_rng(0)
    out = []
    for item in items or ():
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--arg expects NAME=VALUE, got {item!r}")
        out.append((name, parse_value(value, rng)))
    return out


def example_inputs(fn, cli_args):
    """``(args, kwargs)`` for calling ``fn``: its ``@graphc.example`` overridden by ``--arg``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    ex_args, ex_kwargs = getattr(fn, "__graphc_example__", ((), {}))
    fname = getattr(fn, "__name__", "the function")
    if sig is None:
        if cli_args:
            raise UsageError(f"cannot bind --arg by name: {fname} has no inspectable signature")
        return tuple(ex_args), dict(ex_kwargs)
    try:
        bound = sig.bind_partial(*ex_args, **ex_kwargs)
    except TypeError as e:
        raise UsageError(f"@graphc.example on {fname} does not fit its parameters: {e}") from None
    values = dict(bound.arguments)
    params = sig.parameters
    var_kw = next((p.name for p in params.values() if p.kind == p.VAR_KEYWORD), None)
    for name, value in cli_args:
        p = params.get(name)
        if p is not None and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            values[name] = value
        elif p is None and var_kw is not None:
            values.setdefault(var_kw, {})[name] = value
        else:
            names = ", ".join(q.name for q in params.values()
                              if q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD))
            raise UsageError(f"--arg {name}=...: {fname} has no parameter {name!r}"
                             + (f" (its parameters: {names})" if names else ""))
    missing = [p.name for p in params.values()
               if p.name not in values and p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        flags = " ".join(f"--arg {n}=..." for n in missing)
        raise UsageError(
            f"{fname} needs example inputs for parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: pass {flags} (an array like f32[64,10], or a number like "
            f"0.1), or decorate {fname} with @graphc.example(...)")
    ordered = {name: values[name] for name in params if name in values}
    call = inspect.BoundArguments(sig, ordered)
    call.apply_defaults()
    return call.args, call.kwargs
