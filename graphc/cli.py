"""The ``graphc`` command line.

::

    graphc demo [--out DIR]                       # the tour: the lecture's examples end to end
    graphc trace  FILE.py:FUNC [--arg ...] [--grad [--argnums 0,1]] [--cost]
                                                  # print the evaluation trace (and its FLOPs)
    graphc source FILE.py:FUNC [--arg ...] [--grad [--argnums 0,1]] [-o OUT.py]
    graphc render FILE.py:FUNC [--arg ...] [--grad [--argnums 0,1]] [--collapse] [--flops]
                  -o OUT.svg|png|pdf|dot          # draw the graph (format from the suffix)
    graphc check  FILE.py:FUNC [--arg ...] [--argnums 0,1]   # SymPy verification report

``FILE.py:FUNC`` names a function in a Python file; the file is imported as a
module by path.  Example inputs come from ``@graphc.example(*args, **kwargs)``
on the function, and ``--arg NAME=VALUE`` adds or replaces them by parameter
name:

* ``--arg x=f32[64,1,28,28]``: a random array (normal values, fixed seed; for
  integer dtypes small non-negative integers 0..9).  Dtype codes: ``f16 f32
  f64 i32 i64 bool``.
* ``--arg lr=0.1`` or ``--arg eps=1e-3``: a Python float (traced).
* ``--arg n=3``: a Python int (static: baked into the graph).
* ``--arg training=False``: a Python bool (static).

``render --grad`` differentiates, by default, every positional argument whose
example value is floating (a Python float, a float array, or a dict / list /
tuple of them); ``check``, like ``graphc.check`` and ``graphc.grad``, checks
argument 0 (the parameters of ``loss(params, x, y)``); ``--argnums`` chooses
instead.

Exit status: 0 on success, 1 when graphc reports an error in the traced code
or FILE.py fails to import (printed without a Python traceback, naming the
file:line) or ``graphc check`` finds a mismatch, 2 for a usage error (bad
flags, a missing input, an unknown function, an --argnums out of range).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import itertools
import math
import os
import pathlib
import re
import shutil
import stat
import sys
import traceback
from dataclasses import dataclass, field

import numpy as np

import graphc
from graphc import errors

from ._files import write_atomic
from .argnums import default_argnums, normalize_argnums

__all__ = ["main"]

_PROG = "graphc"


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
    """Import ``FILE.py`` by path and return its attribute ``FUNC`` (dots allowed)."""
    path, sep, name = target.rpartition(":")
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


def _parse_argnums(text, n_args):
    """``--argnums`` as graphc's ``argnums``, checked against ``n_args`` positional arguments."""
    if text is None:
        return 0
    try:
        nums = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"--argnums expects integers like 0 or 0,1, got {text!r}") from None
    if not nums:
        raise UsageError("--argnums expects at least one integer")
    try:
        normalize_argnums(nums, n_args, option=f"--argnums {text}")
    except errors.GradError as e:
        raise UsageError(f"{e.message} ({e.hint})") from None
    return nums[0] if len(nums) == 1 and "," not in text else nums


# --- commands ------------------------------------------------------------------------
def _target(ns):
    fn = load_function(ns.target)
    args, kwargs = example_inputs(fn, parse_args_option(ns.arg))
    return fn, args, kwargs


def cmd_trace(ns) -> int:
    fn, args, kwargs = _target(ns)
    if ns.grad:
        fn = graphc.grad(fn, argnums=_parse_argnums(ns.argnums, len(args)))
    elif ns.argnums is not None:
        raise UsageError("--argnums only makes sense with --grad")
    g = graphc.trace(fn, *args, **kwargs)
    print(g)
    if ns.cost:
        print(cost_text(g))
    return 0


def cost_text(g) -> str:
    """``graph.cost()`` as comment lines: totals, then FLOPs by op, largest first."""
    c = g.cost()
    lines = ["", "# cost (the lecture's model: one unit per scalar operation, "
             "a matmul (m,k)x(k,n) is 2mkn)",
             f"#   forward  {c.forward_flops:>15,} FLOPs"]
    if c.backward_flops:
        lines.append(f"#   backward {c.backward_flops:>15,} FLOPs   "
                     f"(backward/forward {c.backward_flops / max(c.forward_flops, 1):.2f}; "
                     f"Baur-Strassen bound 5)")
    lines.append(f"#   values   {c.bytes:>15,} bytes")
    by_op: dict = {}
    for nid, flops in c.by_node.items():
        op = g[nid].op
        by_op[op] = by_op.get(op, 0) + flops
    total = max(c.total_flops, 1)
    ranked = sorted(((f, op) for op, f in by_op.items() if f), reverse=True)
    for flops, op in ranked:
        lines.append(f"#     {op:<14} {flops:>15,}  {100 * flops / total:5.1f}%")
    return "\n".join(lines)


def cmd_source(ns) -> int:
    fn, args, kwargs = _target(ns)
    if ns.grad:
        compiled = graphc.grad(fn, argnums=_parse_argnums(ns.argnums, len(args)))
    elif ns.argnums is not None:
        raise UsageError("--argnums only makes sense with --grad")
    else:
        compiled = fn if isinstance(fn, graphc.Compiled) else graphc.compile(fn)
    if ns.output:
        path = graphc.export(compiled, *args, path=ns.output, overwrite=ns.overwrite, **kwargs)
        print(f"wrote {path} (function {compiled.export_name()})")
    else:
        sys.stdout.write(compiled.source(*args, **kwargs))
    return 0


def _grad_argnums(ns, args):
    """``--argnums`` if given, else every floating positional argument (else 0)."""
    if ns.argnums is not None:
        return _parse_argnums(ns.argnums, len(args))
    return default_argnums(args)


_RENDER_FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv")


def cmd_render(ns) -> int:
    suffix = pathlib.Path(ns.output).suffix.lower()
    if suffix not in _RENDER_FORMATS:
        raise UsageError(f"cannot tell the format of {ns.output!r} from its suffix: "
                         "use .svg, .png, .pdf or .dot (.dot needs no Graphviz program)")
    if ns.argnums is not None and not ns.grad:
        raise UsageError("--argnums only makes sense with --grad")
    fn, args, kwargs = _target(ns)
    if ns.grad:
        # A @graphc.compile'd function: differentiate the function it wraps.
        base = inspect.unwrap(fn) if isinstance(fn, graphc.Compiled) else fn
        graph = graphc.value_and_grad(base, argnums=_grad_argnums(ns, args)).graph(*args, **kwargs)
    else:
        graph = graphc.trace(fn, *args, **kwargs)
    if ns.collapse and not any(graph[n].scope for n in graph):
        print(f"{_PROG} render: note: {graph.fn_name} uses no graphc.scope(...) blocks, so "
              "--collapse has nothing to collapse", file=sys.stderr)
    path = graphc.render(graph, path=ns.output, backward=ns.grad, collapse=ns.collapse,
                         flops=ns.flops)
    print(f"wrote {path}")
    return 0


def cmd_check(ns) -> int:
    fn, args, kwargs = _target(ns)
    # As graphc.check(fn, ...) and graphc.grad: argument 0 (the parameters, by JAX's
    # convention loss(params, x, y)) unless --argnums says otherwise; checking the
    # gradient of the data as well was slow and rarely what was meant.
    argnums = _parse_argnums(ns.argnums, len(args)) if ns.argnums is not None else 0
    report = graphc.check(fn, *args, argnums=argnums, **kwargs)
    print(report)
    return 0 if report.ok else 1


# --- the demo: a list of small steps -------------------------------------------------
@dataclass
class DemoContext:
    """What the demo steps share: where to write, and what they wrote."""

    out: pathlib.Path
    written: list = field(default_factory=list)
    values: dict = field(default_factory=dict)
    overwrite: bool = False          # --overwrite: may replace regular files it did not write
    owned: set = field(default_factory=set)   # names listed in the folder's manifest


# The demo lists the files it wrote in this manifest, and replaces only those (or,
# with --overwrite, other regular files): it never clobbers a file it did not write.
_DEMO_MANIFEST = ".graphc-demo-files"


def _read_demo_manifest(out: pathlib.Path) -> set:
    path = out / _DEMO_MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):   # never read a FIFO or follow a link
            return set()
        return set(path.read_text(errors="replace").split("\n")) - {""}
    except OSError:
        return set()


def _demo_claim(ctx: "DemoContext", name: str, header: str | None = None) -> pathlib.Path:
    """``ctx.out / name`` if the demo may write it, else a UsageError that says how."""
    path = ctx.out / name
    if not os.path.lexists(path) or name in ctx.owned:
        return path
    if header is not None and path.is_file() and not path.is_symlink():
        with open(path, errors="replace") as f:
            if f.read(len(header)) == header:   # written by an older demo, before the manifest
                return path
    if ctx.overwrite and path.is_file() and not path.is_symlink():
        return path
    raise UsageError(f"{path} exists and was not written by graphc demo; graphc demo only "
                     "replaces files it wrote itself (and never links, folders, FIFOs or devices)."
                     " Pass --overwrite to replace it, or --out NEW_DIR to write elsewhere")


def _demo_record(ctx: "DemoContext", path: pathlib.Path) -> None:
    """Note ``path`` as written by the demo, in ``ctx.written`` and the manifest."""
    ctx.written.append(path)
    if path.name not in ctx.owned:
        ctx.owned.add(path.name)
        write_atomic(ctx.out / _DEMO_MANIFEST, "".join(f"{n}\n" for n in sorted(ctx.owned)),
                     overwrite=True, what="graphc demo")


# Written into the demo folder and imported from there: graphc names values after the
# variables of code outside the graphc package, and points at its file:line.
_LECTURE_FILE = "autodiff_trace.py"
_LECTURE_HEADER = "# Written by `graphc demo`: the lecture's evaluation-trace example."
_LECTURE_SOURCE = _LECTURE_HEADER + """
import numpy as np

import graphc


@graphc.example(1.5, 0.5)
def f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    z6 = z4 * z5
    return z6
"""


def _write_demo_file(ctx: "DemoContext", name: str, text: str, header: str) -> pathlib.Path:
    """Write ``text`` to the demo folder; never replace a file the demo did not write."""
    path = _demo_claim(ctx, name, header)
    write_atomic(path, text, overwrite=True, what="graphc demo")
    _demo_record(ctx, path)
    return path


def _lecture_closed_form(w1, w2):
    """Hand-derived partial derivatives of the lecture's f = z4 * z5."""
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z4 = 3 * z1 - np.exp(2 * w2)
    z5 = z2 + z4
    dz1 = (1 / w2, -w1 / w2 ** 2)                      # dz1/dw1, dz1/dw2
    dz4 = (3 * dz1[0], 3 * dz1[1] - 2 * np.exp(2 * w2))
    dz2 = tuple(2 * np.pi * np.cos(2 * np.pi * z1) * d for d in dz1)
    return tuple(dz4[i] * z5 + z4 * (dz2[i] + dz4[i]) for i in range(2))


_W = (1.5, 0.5)


def _lecture(ctx: DemoContext):
    """``(f, df)``: the lecture's f, loaded from the demo folder, and its compiled gradient."""
    if "f" not in ctx.values:
        path = _write_demo_file(ctx, _LECTURE_FILE, _LECTURE_SOURCE, _LECTURE_HEADER)
        ctx.values["f"] = load_function(f"{path}:f")
        ctx.values["df"] = graphc.grad(ctx.values["f"], argnums=(0, 1))
    return ctx.values["f"], ctx.values["df"]


def step_example(ctx: DemoContext) -> None:
    """The lecture's example: f(w1, w2), every intermediate named"""
    _lecture(ctx)
    print(f"An ordinary NumPy function (written to {ctx.out / _LECTURE_FILE}):\n")
    print(_LECTURE_SOURCE.split("\n\n\n", 1)[1].rstrip())


def step_trace(ctx: DemoContext) -> None:
    """Its evaluation trace at (w1, w2) = (1.5, 0.5)"""
    f, _ = _lecture(ctx)
    print("graphc.trace(f, 1.5, 0.5): one line per operation, with your names:\n")
    print(graphc.trace(f, *_W))


def step_gradient(ctx: DemoContext) -> None:
    """Reverse-mode gradient vs. the closed form"""
    _, df = _lecture(ctx)
    got = df(*_W)
    want = _lecture_closed_form(*_W)
    print("graphc.grad(f, argnums=(0, 1))(1.5, 0.5), next to the hand-derived derivatives:\n")
    print(f"    {'':8}{'graphc':>22}{'closed form':>22}{'|difference|':>14}")
    for name, g, w in zip(("df/dw1", "df/dw2"), got, want):
        print(f"    {name:8}{float(g):22.12f}{float(w):22.12f}{abs(float(g) - float(w)):14.1e}")
    ok = all(np.isclose(g, w, rtol=1e-12, atol=0) for g, w in zip(got, want))
    print("\n    they agree to 12 significant digits" if ok else "\n    MISMATCH")
    print("\n    closed form, by the chain rule through z6 = z4 * z5:")
    print("      df/dw1 = 3/w2 * z5 + z4 * (2 pi cos(2 pi z1) / w2 + 3/w2)")
    print("      df/dw2 = dz4 * z5 + z4 * (2 pi cos(2 pi z1) * dz1 + dz4),")
    print("               with dz1 = -w1 / w2**2 and dz4 = 3 dz1 - 2 exp(2 w2)")


def step_source(ctx: DemoContext) -> None:
    """The generated NumPy source of the gradient"""
    _, df = _lecture(ctx)
    print("df.source(1.5, 0.5): forward lines keep your names, adjoints are d_<name>:\n")
    print(df.source(*_W).rstrip())


def step_export(ctx: DemoContext) -> None:
    """A standalone module that imports only NumPy"""
    _, df = _lecture(ctx)
    path = graphc.export(df, *_W, path=_demo_claim(ctx, "f_grad.py"), overwrite=True)
    _demo_record(ctx, path)
    spec = importlib.util.spec_from_file_location("_graphc_demo_f_grad", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    again = module.f_grad(*_W)
    same = all(float(a) == float(b) for a, b in zip(again, df(*_W)))
    print(f"graphc.export(df, 1.5, 0.5, path={str(path)!r})")
    print(f"    imported on its own: f_grad(1.5, 0.5) = "
          f"({float(again[0]):.6f}, {float(again[1]):.6f})"
          + ("  (identical to graphc's)" if same else "  (DIFFERS from graphc's)"))


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in str(text).splitlines())


def step_proof(ctx: DemoContext) -> None:
    """SymPy proves the gradient: graphc.check"""
    f, _ = _lecture(ctx)
    report = graphc.check(f, *_W, argnums=(0, 1))
    print("graphc.check(f, 1.5, 0.5, argnums=(0, 1)) checks three things against each other:\n"
          "SymPy's derivative of the traced expression, graphc's backward graph evaluated on\n"
          "SymPy symbols, and the numbers the generated NumPy code returns.\n")
    print(_indent(report))
    if report.ok and all(r.status == "proved" for r in report.rows):
        print("\n    proved: the backward graph equals SymPy's derivative for every (w1, w2),\n"
              "    not only at (1.5, 0.5); above, both partial derivatives in closed form.")
    elif not report.ok:
        print("\n    MISMATCH")


def _dot_available() -> bool:
    return shutil.which("dot") is not None


def _render_suffixes() -> tuple:
    return (".svg", ".png") if _dot_available() else (".dot",)


def _render_all(ctx: DemoContext, what, args, stem: str, **opts) -> list:
    """Render to ``stem``.svg and .png (or .dot without Graphviz); return the paths."""
    paths = []
    for suffix in _render_suffixes():
        path = graphc.render(what, *args, path=_demo_claim(ctx, stem + suffix), **opts)
        _demo_record(ctx, path)
        paths.append(path)
    return paths


def _dot_hint() -> None:
    if not _dot_available():
        from .draw import INSTALL_HINT
        print("    Graphviz's `dot` program is missing, so these are DOT text (.dot) files;\n"
              f"    for SVG and PNG, {INSTALL_HINT}")


def step_images(ctx: DemoContext) -> None:
    """The graph, drawn: forward, and forward + backward"""
    f, _ = _lecture(ctx)
    print("graphc.render(f, 1.5, 0.5, path=...) draws the traced graph with Graphviz; with\n"
          "backward=True the backward graph sits beside it (red edges; dashed grey edges are the\n"
          "forward values the backward pass reads):\n")
    for stem, backward in (("f_forward", False), ("f_backward", True)):
        for path in _render_all(ctx, f, _W, stem, backward=backward):
            print(f"    {path}")
    _dot_hint()


# The examples the demo runs.  graphc names values after the variables of code outside
# the graphc package, so the functions it traces live in files imported by path:
# examples/ beside the package in a checkout or editable install, or the copy that
# `pip install` puts in <prefix>/share/graphc/examples (pyproject's data-files).
DEMO_EXAMPLES = ("logic_gates.py", "lenet.py")


def _examples_dir():
    """The folder holding the demo's example files, if there is one."""
    for folder in (pathlib.Path(graphc.__file__).resolve().parent.parent / "examples",
                   pathlib.Path(sys.prefix) / "share" / "graphc" / "examples"):
        if all((folder / name).is_file() for name in DEMO_EXAMPLES):
            return folder
    return None


class _NoExamples(Exception):
    """The demo's example files are not installed."""


def _example_module(ctx: DemoContext, name: str):
    """Import examples/``name`` by path."""
    key = ("module", name)
    if key not in ctx.values:
        folder = _examples_dir()
        if folder is None:
            raise _NoExamples(f"examples/{name} was not found beside graphc nor in "
                              f"{pathlib.Path(sys.prefix) / 'share' / 'graphc' / 'examples'}; "
                              "run the demo from a source checkout (make demo)")
        ctx.values[key] = load_module(folder / name)
        ctx.values.setdefault("examples", {})[name] = folder / name
    return ctx.values[key]


DEMO_XOR_STEPS = 300       # full-batch Adam steps per logic-gate model
DEMO_DIGITS_STEPS = 300    # Adam steps of 64 digits for the CNN


def step_xor(ctx: DemoContext) -> None:
    """Logic gates: one linear unit learns OR and AND, XOR needs a hidden layer"""
    lg = _example_module(ctx, "logic_gates.py")
    path = ctx.values["examples"]["logic_gates.py"]
    print(f"{path}:\n"
          "labels +-1 on the four corners of the unit square, the logistic loss, and one\n"
          "compiled train step per model: graphc.compile of value_and_grad(loss) followed\n"
          "by graphc.optim.adam's update.\n")
    lg.run(steps=DEMO_XOR_STEPS, out=lambda line: print("    " + line))
    opt = graphc.optim.adam(0.1)
    params = lg.init_mlp(np.random.default_rng(0))
    step = lg.make_train_step(lg.mlp_loss, opt)
    src = step.source(params, opt.init(params), lg.X, lg.GATES["XOR"])
    print(f"\n    The XOR train step is one generated NumPy function of {len(src.splitlines())} "
          "lines:\n    forward, backward and Adam update, with no Python-level autodiff left.")
    print("    (Gradient descent leaves the linear XOR unit at w = 0, b = 0, every score 0;\n"
          "    the 75% is the best over all lines, found by search.)")


def _have_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def step_digits(ctx: DemoContext) -> None:
    """A LeNet-style CNN on 8x8 digits"""
    if not _have_sklearn():
        print("This step needs scikit-learn for its bundled 8x8 digits, and it is not installed;\n"
              "skipping it. Install it with `pip install scikit-learn` (or `pip install -e "
              "'.[test]'`\nin a checkout) and run `graphc demo` again.")
        return
    lenet = _example_module(ctx, "lenet.py")
    path = ctx.values["examples"]["lenet.py"]
    print(f"{path}:\n"
          f"conv-relu-pool twice, two dense layers, cross-entropy; {DEMO_DIGITS_STEPS} Adam steps "
          "of 64\nimages, each one call of a compiled train step.\n")
    params, acc, seconds = lenet.train(steps=DEMO_DIGITS_STEPS, progress=lenet.progress_bar)
    print(f"\n    test accuracy: {acc:.1%} on {lenet.N_TEST} held-out digits "
          f"({seconds:.1f} s of training)")
    x_train, y_train, _, _ = lenet.load_digits()
    graph = graphc.value_and_grad(lenet.loss).graph(params, x_train[:64], y_train[:64])
    print("\n    The graph of its train step's value_and_grad(loss) for a batch of 64, forward +\n"
          "    backward, one box per graphc.scope layer (graphc.render(graph, path=...,\n"
          "    backward=True, collapse=True)):")
    for p in _render_all(ctx, graph, (), "lenet_backward", backward=True, collapse=True):
        print(f"    {p}")
    _dot_hint()


DEMO_STEPS = [step_example, step_trace, step_gradient, step_source, step_export, step_proof,
              step_images, step_xor, step_digits]


# Every file the demo may write, checked before it writes any (see _demo_claim).
_DEMO_STEMS = ("f_forward", "f_backward", "lenet_backward")


def cmd_demo(ns) -> int:
    ctx = DemoContext(out=pathlib.Path(ns.out), overwrite=bool(getattr(ns, "overwrite", False)))
    ctx.owned = _read_demo_manifest(ctx.out)
    _demo_claim(ctx, _LECTURE_FILE, _LECTURE_HEADER)
    for name in ("f_grad.py", *(s + x for s in _DEMO_STEMS for x in _render_suffixes())):
        _demo_claim(ctx, name)
    ctx.out.mkdir(parents=True, exist_ok=True)
    n = len(DEMO_STEPS)
    print("graphc demo: the lecture's autodiff example traced, differentiated, compiled, proved\n"
          "with SymPy and drawn; then XOR and a small CNN trained by compiled train steps.")
    for i, step in enumerate(DEMO_STEPS, 1):
        title = (step.__doc__ or step.__name__).strip().splitlines()[0]
        print(f"\n=== {i}/{n}  {title} " + "=" * max(3, 70 - len(title)))
        sys.stdout.flush()
        try:
            step(ctx)
        except _NoExamples as e:
            print(f"    skipped: {e}")
    print("\n=== Summary " + "=" * 66)
    print(f"wrote {len(dict.fromkeys(ctx.written))} file"
          f"{'s' if len(dict.fromkeys(ctx.written)) != 1 else ''} "
          f"to {ctx.out.resolve()}{os.sep}:")
    for p in dict.fromkeys(ctx.written):
        print(f"    {p}")
    print("try:")
    print(f"    graphc trace  {ctx.out / _LECTURE_FILE}:f")
    print(f"    graphc check  {ctx.out / _LECTURE_FILE}:f --argnums 0,1")
    lenet = ctx.values.get("examples", {}).get("lenet.py")
    if lenet is not None:
        print(f"    graphc render {lenet}:loss --grad --collapse -o lenet.svg")
        others = sorted(p.name for p in lenet.parent.glob("*.py") if p.name not in DEMO_EXAMPLES)
        if others:
            import textwrap
            print(f"and the lecture's other examples, in {lenet.parent}{os.sep}:")
            print(textwrap.fill(", ".join(others), width=90, initial_indent="    ",
                                subsequent_indent="    "))
            print(f"    (run one with: python {lenet.parent / others[0]})")
    return 0


# --- argument parsing ----------------------------------------------------------------
_ARG_HELP = ("an example input, bound by parameter name: NAME=DTYPE[SHAPE] for a random array "
             "(e.g. x=f32[64,1,28,28]; dtypes f16 f32 f64 i32 i64 bool; fixed seed), "
             "NAME=NUMBER (0.1 is a traced float, 3 a static int) or NAME=True/False; "
             "repeatable; overrides @graphc.example")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Trace NumPy functions into a graph, differentiate them, generate "
                    "readable NumPy source, draw the graph and verify gradients with SymPy.",
        epilog="FILE.py:FUNC names a function in a Python file; its inputs come from "
               "@graphc.example(...) on the function, or from --arg.")
    parser.add_argument("--version", action="version", version=f"graphc {graphc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="the tour: the lecture's examples end to end",
                       description="A short tour: the lecture's autodiff example traced, "
                                   "differentiated, checked against the closed form, and "
                                   "exported as a standalone NumPy module.")
    p.add_argument("--out", default="graphc-demo", metavar="DIR",
                   help="folder for the files the demo writes (default: ./graphc-demo/)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace regular files in DIR that the demo did not write itself")
    p.set_defaults(run=cmd_demo)

    def target_parser(name, help_, description):
        q = sub.add_parser(name, help=help_, description=description)
        q.add_argument("target", metavar="FILE.py:FUNC", help="the function to trace")
        q.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                       help=_ARG_HELP)
        return q

    p = target_parser("trace", "print the evaluation trace",
                      "Print the evaluation trace of FUNC: one line per operation.")
    p.add_argument("--grad", action="store_true",
                   help="the trace of graphc.grad(FUNC): forward and backward pass")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate (default 0)")
    p.add_argument("--cost", action="store_true",
                   help="add graph.cost(): FLOPs forward/backward, bytes, FLOPs by op")
    p.set_defaults(run=cmd_trace)

    p = target_parser("source", "print the generated NumPy source",
                      "Print the generated NumPy module for FUNC (stdout: the module alone), "
                      "or write it with -o.")
    p.add_argument("--grad", action="store_true",
                   help="the source of graphc.grad(FUNC) instead of graphc.compile(FUNC)")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate "
                        "(default 0, as graphc.grad; e.g. 0,1)")
    p.add_argument("-o", "--output", metavar="OUT.py",
                   help="write the module to OUT.py with graphc.export instead of printing it")
    p.add_argument("--overwrite", action="store_true",
                   help="with -o: replace OUT.py if it exists (graphc.export(..., overwrite=True))")
    p.set_defaults(run=cmd_source)

    p = target_parser("render", "draw the graph with Graphviz",
                      "Draw FUNC's graph (with --grad: the forward graph and the backward graph "
                      "beside it) to OUT; the format comes from its suffix. .svg, .png and .pdf "
                      "need Graphviz's `dot` program; .dot writes the DOT text and needs nothing.")
    p.add_argument("-o", "--output", required=True, metavar="OUT.svg|png|pdf|dot",
                   help="the file to write")
    p.add_argument("--grad", action="store_true",
                   help="draw the graph of graphc.value_and_grad(FUNC): forward and backward")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="with --grad: which positional arguments to differentiate (default: "
                        "every one whose example value is floating)")
    p.add_argument("--collapse", action="store_true",
                   help="draw each graphc.scope(...) block as one box with its input and "
                        "output shapes")
    p.add_argument("--flops", action="store_true",
                   help="add each operation's FLOP count to its label")
    p.set_defaults(run=cmd_render)

    p = target_parser("check", "verify the gradient with SymPy",
                      "Verify FUNC's gradient three ways: SymPy's derivative of the traced "
                      "expression, graphc's backward graph evaluated on SymPy symbols, and the "
                      "numbers of the generated NumPy code (graphs too large for SymPy are "
                      "checked by finite differences; the report says so). Exit status 1 on a "
                      "mismatch.")
    p.add_argument("--argnums", metavar="I[,J...]",
                   help="which positional arguments to differentiate (default 0, as "
                        "graphc.check and graphc.grad; e.g. 0,1)")
    p.set_defaults(run=cmd_check)
    for q in sub.choices.values():          # a usage error prints its command's usage line
        q.set_defaults(subparser=q)
    return parser


def _depth(text: str, pos: int) -> int:
    return text.count("(", 0, pos) - text.count(")", 0, pos)


def _argnums_flag(m: re.Match) -> str:
    return "--argnums " + ",".join(re.findall(r"-?\d+", m.group(1)))


# graphc's hints speak Python (graphc.export(..., overwrite=True)); the command line's
# speak flags.  argnums inside a call written in the hint (grad(inner, argnums=0)) is
# advice about the user's code and stays.
_CLI_SPELLINGS = [
    (re.compile(r"\boverwrite=True\b"), lambda m: "--overwrite", False),
    (re.compile(r"(?<!-)\bargnums=(\(\s*-?\d+(?:\s*,\s*-?\d+)*\s*,?\s*\)|-?\d+)"),
     _argnums_flag, True),
    (re.compile(r"(?<!-)\bargnums\b(?!=)"), lambda m: "--argnums", True),
]


def cli_hint(hint: str) -> str:
    """An API hint in command-line terms: ``overwrite=True`` -> ``--overwrite``."""
    for pattern, spell, top_level_only in _CLI_SPELLINGS:
        hint = pattern.sub(lambda m: m.group(0) if top_level_only and _depth(m.string, m.start())
                           else spell(m), hint)
    return hint


def _error_text(e: graphc.GraphcError) -> str:
    text = str(e)
    if e.hint:
        text = text.replace(f"Hint: {e.hint}", f"Hint: {cli_hint(e.hint)}")
    return text


def main(argv=None) -> int:
    """Run the ``graphc`` command line; return the exit status."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    if not getattr(ns, "run", None):
        parser.print_help()
        return 2
    try:
        return ns.run(ns)
    except UsageError as e:
        ns.subparser.print_usage(sys.stderr)
        print(f"{_PROG} {ns.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportFailed as e:
        print(f"{_PROG} {ns.command}: error: {e}", file=sys.stderr)
        return 1
    except graphc.GraphcError as e:
        print(f"{_PROG} {ns.command}: error: {_error_text(e)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `graphc source ... | head`: stop quietly, and keep Python's exit-time flush quiet too.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


# Frames below main (bin/graphc, runpy, a test runner) are never "the user's line".
errors.ENTRY_POINTS.add(main.__code__)

if __name__ == "__main__":
    raise SystemExit(main())
