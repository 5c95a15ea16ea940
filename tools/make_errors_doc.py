"""Generate docs/errors.md: every graphc error, the situation, its message, the fix.

Each case below is a small user program that makes one mistake.  This script
runs every one of them and writes the message graphc actually produced into
the catalogue, so the documentation cannot drift from the code:
``tests/test_errors.py`` runs the same cases, asserts on their messages and
fails when docs/errors.md differs from what this script would write.

    python tools/make_errors_doc.py            # rewrite docs/errors.md
    python tools/make_errors_doc.py --check    # exit 1 when it is stale
"""
from __future__ import annotations

import contextlib
import dataclasses
import linecache
import os
import pathlib
import re
import sys
import tempfile
import textwrap
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "errors.md"
SNIPPET_FILE = "example.py"    # the file name every snippet runs under

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclasses.dataclass
class Case:
    """One mistake: ``code`` raises ``error``, naming the line containing ``line``."""

    id: str
    error: str            # class name in graphc.errors
    title: str
    situation: str
    code: str
    line: str             # text of the snippet line the message must name (the last such)
    fix: str
    expect: tuple = ()    # further text the message must contain

    @property
    def source(self) -> str:
        return textwrap.dedent(self.code).strip("\n") + "\n"

    @property
    def lineno(self) -> int:
        found = [i for i, text in enumerate(self.source.splitlines(), 1) if self.line in text]
        if found:
            return found[-1]
        raise ValueError(f"case {self.id}: no line contains {self.line!r}")


PRELUDE = "import numpy as np\nimport graphc\n"

CASES = [
    # --- API.md section 6 ---------------------------------------------------------
    Case("control-flow", "ControlFlowError", "Python `if` on a value traced from a `graphc.Spec`",
         "Python control flow (`if`, `while`, `and`, `or`, `not`) on a traced value reads its "
         "concrete value and records the decision as a guard; a function traced with "
         "`graphc.Spec` placeholders has no concrete values.",
         """
         def f(x):
             if x.sum() > 0:
                 return x * 2.0
             return -x
         graphc.trace(f, graphc.Spec((3,)))
         """, "if x.sum() > 0",
         "Trace with example arrays (the `if` becomes a guard), or use `np.where(cond, a, b)` / "
         "`graphc.cond` for value-dependent choices and `graphc.while_loop` for loops.",
         expect=("np.where", "graphc.cond", "graphc.while_loop")),
    Case("float-of-traced", "ControlFlowError", "`float()` / `int()` / `.item()` of a differentiated value",
         "A Python number made from a value that depends on a differentiated input would cut "
         "the gradient (of other values, graphc bakes the number in with a guard).",
         """
         def f(x):
             scale = float(x.max())
             return (x / scale).sum()
         graphc.grad(f)(np.ones(3))
         """, "float(x.max())",
         "Keep the value as an array (`x / x.max()`), or pass it as a static argument; to "
         "branch on it, write the `if` on the value itself (a guard) or use `graphc.cond`.",
         expect=("float()", "gradient")),
    Case("setitem-view", "InPlaceError", "A view used after a write into its array",
         "Writes into traced arrays are functional updates (`y[i] = v`, `y[mask] = 0`, "
         "`y[:, 1:] += z`). A NumPy view shares memory with its array, a traced value does "
         "not: a view made before a write that overlaps it, used after the write, would differ "
         "from NumPy, so graphc refuses it, naming the line that made the view and the write.",
         """
         def f(x):
             y = x * 2
             v = y[:2]
             y[0] = 0.0
             return v.sum()
         graphc.trace(f, np.ones(3))
         """, "return v.sum()",
         "Take a copy when making the view (`v = y[:2].copy()`), or make the view after the "
         "write.", expect=("v = y[:2]", "y[0] = 0.0")),
    Case("setitem-through-view", "InPlaceError", "A write through a view",
         "Writing into a view (`v = y[:2]; v[0] = 1`, `row += 1` for a row of a matrix) would "
         "change the array it views in NumPy; graphc cannot.",
         """
         def f(x):
             v = x[:2]
             v[0] = 0.0
             return x.sum()
         graphc.trace(f, np.ones(3))
         """, "v[0] = 0.0",
         "Write into the array itself (`x[0] = 0.0`), or into a copy (`v = x[:2].copy()`).",
         expect=("v = x[:2]", "v[0] = 0.0")),
    Case("out-argument", "InPlaceError", "`out=` arguments",
         "NumPy's `out=` writes into an existing array in place.",
         """
         def f(x):
             y = np.empty(3)
             np.exp(x, out=y)
             return y.sum()
         graphc.trace(f, np.ones(3))
         """, "np.exp(x, out=y)",
         "Assign the result: `y = np.exp(x)`.", expect=("out=",)),
    Case("unsupported-function", "UnsupportedError", "A NumPy function graphc does not support",
         "Only the functions listed in docs/ops.md are traced; the message names the one used.",
         """
         def f(x):
             return np.linalg.eig(x)
         graphc.trace(f, np.eye(3))
         """, "np.linalg.eig",
         "Write it from supported functions, or compute it outside the traced function.",
         expect=("np.linalg.eig",)),
    Case("numpy-buffer", "InPlaceError", "A traced value written into a NumPy array",
         "A plain NumPy array (`np.zeros(3)`) holds numbers; it cannot hold a traced value "
         "(NumPy alone would say \"setting an array element with a sequence\").",
         """
         def f(x):
             buf = np.zeros(3)
             buf[0] = x[1]
             return buf.sum()
         graphc.trace(f, np.ones(3))
         """, "buf[0] = x[1]",
         "Make the buffer from a traced value (`buf = np.zeros_like(x)`), or collect the "
         "values in a list and `np.stack` them.", expect=("np.zeros_like",)),
    Case("shape-matmul", "ShapeError", "Shapes that do not fit (matmul)",
         "Shapes are checked while tracing; the message shows both operands.",
         """
         def f(x, w):
             return (x @ w).sum()
         graphc.trace(f, np.ones((2, 3)), np.ones((4, 5)))
         """, "x @ w",
         "Transpose or reshape one operand so the inner dimensions agree.",
         expect=("f64[2,3]", "f64[4,5]")),
    Case("shape-broadcast", "ShapeError", "Shapes that do not broadcast",
         "Elementwise operations follow NumPy broadcasting.",
         """
         def f(x, y):
             return (x + y).sum()
         graphc.trace(f, np.ones((2, 3)), np.ones(4))
         """, "x + y",
         "Make trailing dimensions equal or 1 (`y[:, None]`, `np.broadcast_to`).",
         expect=("f64[2,3]", "f64[4]")),
    Case("index-range", "GraphcIndexError", "An index out of range",
         "Shapes are static, so an out-of-range static index is caught while tracing.",
         """
         def f(x):
             return x[5]
         graphc.trace(f, np.ones(3))
         """, "x[5]",
         "Index within the static shape (`x.shape`)."),
    Case("grad-nonscalar", "GradError", "`grad` of a non-scalar function",
         "`grad` and `value_and_grad` need a function that returns a real scalar.",
         """
         def f(x):
             return x * 2.0
         graphc.grad(f)(np.ones(3))
         """, "x * 2.0",
         "Reduce the output (`.sum()`, `.mean()`), or use `graphc.compile` for a non-scalar "
         "function.", expect=("scalar", "f64[3]")),
    Case("grad-integer-output", "GradError", "`grad` of an integer output",
         "Gradients exist only for real floating outputs.",
         """
         def f(x):
             return (x > 0).sum()
         graphc.grad(f)(np.ones(3))
         """, "(x > 0).sum()",
         "Return a float (`.astype(np.float64)`).", expect=("floating",)),
    Case("argnums-range", "GradError", "`argnums` out of range",
         "`argnums` counts positional arguments from 0.",
         """
         def f(x, y):
             return (x * y).sum()
         graphc.grad(f, argnums=2)(np.ones(2), np.ones(2))
         """, "graphc.grad(f, argnums=2)",
         "Use an index below the number of positional arguments.", expect=("argnums=2",)),
    Case("integer-argument", "GradError", "A gradient for an integer argument",
         "Integer and boolean arguments are data, not differentiable.",
         """
         def f(x, n):
             return (x * n).sum()
         graphc.grad(f, argnums=1)(np.ones(2), np.arange(2))
         """, "graphc.grad(f, argnums=1)",
         "Pass floats, or leave the argument out of `argnums`.", expect=("integer",)),
    # --- issue 8 -------------------------------------------------------------------
    Case("grad-aux", "GradError", "`grad` of a function that returns a pair",
         "`grad` differentiates a scalar loss; returning `(loss, aux)` needs `has_aux=True`.",
         """
         def f(x):
             loss = np.sum(x ** 2)
             return loss, x
         graphc.grad(f)(np.ones(3))
         """, "def f(x):",
         "Pass `has_aux=True` (then `grad` returns `(grads, aux)`), or return the loss alone.",
         expect=("has_aux=True",)),
    Case("dtype-complex", "UnsupportedError", "A complex argument",
         "graphc traces real floating, integer and boolean arrays only.",
         """
         def f(z):
             return (z * z).sum()
         graphc.trace(f, np.ones(2, dtype=complex))
         """, "graphc.trace(f,",
         "Split into real and imaginary parts (two float arrays).",
         expect=("argument z", "complex128")),
    Case("dtype-object", "UnsupportedError", "An object argument",
         "Python objects (and object arrays) have no dtype graphc can trace.",
         """
         def f(x):
             return x * 2.0
         graphc.compile(f)(object())
         """, "graphc.compile(f)(object())",
         "Pass a NumPy array or a Python float.", expect=("argument x", "object")),
    Case("dtype-string", "UnsupportedError", "A string array argument",
         "String arrays cannot be traced (a plain Python `str` argument is static and fine).",
         """
         def f(labels):
             return labels.sum()
         graphc.trace(f, np.array(["cat", "dog"]))
         """, "graphc.trace(f,",
         "Encode strings as integers (`np.unique(labels, return_inverse=True)`).",
         expect=("argument labels", "<U3")),
    Case("dict-key", "UnsupportedError", "A dict key that is not a plain literal",
         "Generated code spells dict keys as Python literals (`params['W1']`), so only "
         "`str`, `int`, `bool`, `None`, finite `float` keys and tuples of them are allowed: "
         "an object key's `repr` would become code.",
         """
         class Key:
             def __repr__(self):
                 return "__import__('os')"
         graphc.compile(lambda p: sum(p.values()))({Key(): 1.0})
         """, "graphc.compile(lambda p",
         "Use `str` or `int` keys (`str(key)`).", expect=("dict key",)),
    Case("escaped-tracer", "EscapedTracerError", "A traced value used after its trace",
         "A traced value stored in a global (or a list, an attribute) outlives the trace that "
         "made it; using it later has no meaning.",
         """
         saved = []
         def f(x):
             saved.append(x * 2.0)
             return x.sum()
         graphc.trace(f, np.ones(3))
         np.exp(saved[0])
         """, "np.exp(saved[0])",
         "Return the value from the traced function instead of keeping it.",
         expect=("escaped its trace", "after")),
    Case("escaped-into-next-trace", "EscapedTracerError", "A traced value kept in a global and "
         "used by a later trace",
         "The same mistake, caught when the stale value meets a new trace.",
         """
         cache = {}
         def f(x):
             if "w" not in cache:
                 cache["w"] = x * 2.0
             return (x * cache["w"]).sum()
         graphc.trace(f, np.ones(3))
         graphc.trace(f, np.ones(3))
         """, 'return (x * cache["w"]).sum()',
         "Pass the value as an argument, or keep a concrete array (computed outside graphc).",
         expect=("escaped its trace",)),
    Case("closure-over-tracer", "EscapedTracerError", "`grad` of a function that closes over a "
         "traced value",
         "Inside a traced function, `graphc.grad(inner)` called on concrete arrays traces "
         "`inner` separately; if `inner` closes over a traced value of the enclosing function, "
         "the two traces would mix.",
         """
         def outer(x):
             def inner(y):
                 return (x * y).sum()
             return graphc.grad(inner)(np.ones(3)).sum() * x.sum()
         graphc.grad(outer)(np.ones(3))
         """, "return (x * y).sum()",
         "Pass the traced value in: `graphc.grad(inner, argnums=0)(y, x)`, or call the inner "
         "transform on traced values (`graphc.grad(inner)(x)` inlines into the enclosing "
         "trace).", expect=("enclosing trace",)),
    Case("signature-change", "SignatureError", "A call that does not fit the function's signature",
         "Changing shapes, dtypes or pytree structure between calls just re-traces; a call "
         "the Python signature rejects (a missing or unexpected argument) cannot be traced.",
         """
         @graphc.compile
         def f(x, y):
             return x * y
         f(np.ones(2), np.ones(2))
         f(np.ones(2), z=np.ones(2))
         """, "f(np.ones(2), z=np.ones(2))",
         "Call the function with the arguments its `def` line names.",
         expect=("f(x, y)", "argument")),
    Case("spec-call", "SignatureError", "Calling with a `graphc.Spec` placeholder",
         "`Spec` describes an input for `.source()`, `.graph()` and `graphc.trace`; it holds "
         "no data to compute with.",
         """
         f = graphc.compile(lambda x: x * 2.0)
         f(graphc.Spec((3,)))
         """, "f(graphc.Spec((3,)))",
         "Call with arrays; use `f.source(graphc.Spec(...))` to see the code.",
         expect=("Spec",)),
    Case("non-finite", "NonFiniteError", "A NaN or infinity, with `check_finite=True`",
         "NaN/Inf are allowed and propagate as in NumPy. With `check_finite=True` (on "
         "`compile`, `grad`, `value_and_grad`) a non-finite result raises, naming the first "
         "operation that turned finite inputs into NaN/Inf, by the user's variable name and "
         "line.",
         """
         @graphc.compile(check_finite=True)
         def f(x):
             y = np.exp(x)
             return y / y.sum()
         f(np.array([1.0, 800.0]))
         """, "y = np.exp(x)",
         "Use a numerically stable form (`graphc.nn.softmax`, `logsumexp`, `softplus`), clip "
         "the input, or add an epsilon; the hint is specific to the operation.",
         expect=("y = np.exp(x)", "inf", "800")),
    Case("non-finite-gradient", "NonFiniteError", "A non-finite gradient",
         "The backward pass is checked too; its nodes are named `d_<name>` and point at the "
         "forward line they differentiate.",
         """
         def loss(w):
             r = np.sqrt(w)
             return r.sum()
         graphc.grad(loss, check_finite=True)(np.array([0.0, 1.0]))
         """, "r = np.sqrt(w)",
         "The derivative of `sqrt` is infinite at 0: keep `w` away from 0 "
         "(`np.sqrt(w + eps)`).", expect=("d_w", "backward")),
    Case("non-finite-input", "NonFiniteError", "A NaN argument, with `check_finite=True`",
         "When the NaN came in with an argument, the error names the argument.",
         """
         f = graphc.compile(lambda x: x * 2.0, check_finite=True)
         f(np.array([np.nan, 1.0]))
         """, "f = graphc.compile(",
         "Clean the input (`np.nan_to_num`), or drop `check_finite` to let NaN propagate.",
         expect=("argument x", "nan")),
    Case("export-exists", "ExportError", "`export` to a file that exists",
         "`graphc.export` never replaces a file silently, not even one it wrote itself.",
         """
         f = lambda x: x * 2.0
         graphc.export(f, 1.0, path="f.py")
         graphc.export(f, 1.0, path="f.py")
         """, 'graphc.export(f, 1.0, path="f.py")',
         "Pass `overwrite=True`, or choose another path.", expect=("overwrite=True",)),
    Case("export-unwritable", "ExportError", "`export` to a path that cannot be written",
         "The directory cannot be created or written (here a file stands where the directory "
         "should be). Nothing is left behind: the module is written to a temporary file and "
         "renamed.",
         """
         open("build", "w").close()
         graphc.export(lambda x: x * 2.0, 1.0, path="build/f.py")
         """, "graphc.export(lambda",
         "Choose a path in a writable directory.", expect=("cannot write",)),
    Case("render-no-dot", "RenderError", "`render` without Graphviz's `dot`",
         "SVG, PNG and PDF need the `dot` program; `.dot`/`.gv` files do not.",
         """
         import os
         os.environ["PATH"] = ""
         graphc.render(lambda x: np.exp(x).sum(), np.ones(3), path="f.svg")
         """, "graphc.render(",
         "Install Graphviz, or write DOT text with a `.dot` file name.",
         expect=("apt-get install graphviz",)),
    Case("render-broken-dot", "RenderError", "`render` with a `dot` that fails",
         "A broken Graphviz installation: `dot` runs but fails. No half-written file is left "
         "at the path.",
         """
         import os
         with open("dot", "w") as fh:
             fh.write("#!/bin/sh\\necho 'Error: layout failed' >&2\\nexit 3\\n")
         os.chmod("dot", 0o755)
         os.environ["PATH"] = os.getcwd()
         graphc.render(lambda x: np.exp(x).sum(), np.ones(3), path="f.svg")
         """, "graphc.render(",
         "Check the installation with `dot -V`; a `.dot` file name needs no `dot`.",
         expect=("exit status 3", "layout failed")),
    Case("render-exists", "RenderPathError", "`render` onto a file graphc did not draw",
         "`graphc.render` (and `graphc.report`) replaces a drawing or page it wrote itself, which "
         "carries a mark saying so, but never a file it did not write. Also a `ValueError`.",
         """
         with open("f.svg", "w") as fh:
             fh.write("<svg>my own drawing</svg>")
         graphc.render(lambda x: np.exp(x).sum(), np.ones(3), path="f.svg")
         """, "graphc.render(",
         "Pass `overwrite=True` (`--overwrite`), or choose another path.",
         expect=("overwrite=True",)),
    Case("cache-size", "OptionError", "A bad option value",
         "Options are checked when the transform is made.",
         """
         def f(x):
             return x * 2.0
         graphc.compile(f, cache_size=0)
         """, "graphc.compile(f, cache_size=0)",
         "`cache_size` is a positive number of signatures (default 64).",
         expect=("cache_size",)),
    Case("render-format", "OptionError", "An unknown drawing format",
         "`graphc.render` picks the format from the file suffix.",
         """
         graphc.render(lambda x: x * 2.0, 1.0, path="f.jpg")
         """, "graphc.render(",
         "Use `.svg`, `.png`, `.pdf`, `.dot` or `.gv`.", expect=("format",)),
    Case("ndarray-method", "UnsupportedAttributeError", "An array method graphc does not trace",
         "Traced values have the common array methods (`.sum() .mean() .max() .reshape() .T "
         ".copy() .var() .std() .prod() .argmax() .cumsum()` ...); the message names a missing one. It is "
         "also an `AttributeError`, so `hasattr()` keeps working.",
         """
         def f(x):
             return x.nonzero()[0]
         graphc.trace(f, np.ones(3))
         """, "x.nonzero()",
         "Use the workaround in the hint, or compute it on the function's result.",
         expect=(".nonzero()", "np.where")),
    Case("int-overflow", "IntegerOverflowError", "A Python int beyond int64",
         "Next to an integer array, a Python int must fit in int64, as in NumPy (next to a "
         "floating array it becomes a float).",
         """
         def f(counts):
             return counts * 2 ** 70
         graphc.trace(f, np.arange(3))
         """, "counts * 2 ** 70",
         "Pass the number as a float, `float(n)`, or keep it within int64.",
         expect=("int64",)),
    Case("axis-range", "AxisError", "An axis out of range",
         "An `axis` must name an existing dimension, as NumPy requires: graphc never wraps it "
         "around. The error is also NumPy's `numpy.exceptions.AxisError`.",
         """
         def f(x):
             return graphc.nn.softmax(x, axis=1).sum()
         graphc.trace(f, np.ones(3))
         """, "graphc.nn.softmax(x, axis=1)",
         "Use an axis in `range(-x.ndim, x.ndim)` (here 0 or -1).",
         expect=("axis 1", "dimension 1")),
    Case("linalg-shape", "LinAlgError", "`np.linalg` on an array that is not a square matrix",
         "`np.linalg.inv`, `solve`, `det`, `slogdet` and `cholesky` take stacks of square "
         "matrices, shape `(..., M, M)`, as NumPy requires. The error is also NumPy's "
         "`numpy.linalg.LinAlgError`; a singular matrix is found only when the code runs, by "
         "NumPy itself.",
         """
         def f(a):
             return np.linalg.inv(a).sum()
         graphc.trace(f, np.ones((2, 3)))
         """, "np.linalg.inv(a)",
         "Pass square matrices (e.g. `a @ a.T`), or a stack of them.",
         expect=("square",)),
    Case("np-random", "UnsupportedError", "`np.random` inside a traced function",
         "Random numbers drawn while graphc traces would become constants of the compiled "
         "function: every call would reuse them (one dropout mask forever). graphc refuses "
         "draws from `np.random` and from generators that outlive the call.",
         """
         def loss(w, x):
             h = np.tanh(x @ w)
             mask = np.random.rand(*h.shape) > 0.5
             return np.sum(h * mask)
         graphc.grad(loss)(np.ones((3, 2)), np.ones((4, 3)))
         """, "def loss(w, x):",
         "Use `graphc.nn.dropout(h, rate, key)` with a key that changes per step "
         "(`np.int64(step)`); draw other random arrays outside and pass them in.",
         expect=("frozen", "graphc.nn.dropout")),
]

# Base classes: documented, but raised only through their subclasses.
BASES = {"GraphcError", "TracingError"}


@contextlib.contextmanager
def _sandbox(workdir):
    """Run in ``workdir`` with PATH restored afterwards."""
    old_cwd, old_path = os.getcwd(), os.environ.get("PATH")
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if old_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old_path


def run_case(case: Case):
    """Run ``case`` in a fresh directory; return ``(exception, message)``.

    The snippet runs under the file name ``example.py`` (registered with
    linecache so messages can quote its lines); the temporary directory is
    shown as ``.`` so messages are the same on every machine.
    """
    code = PRELUDE + case.source
    linecache.cache[SNIPPET_FILE] = (len(code), None, code.splitlines(True), SNIPPET_FILE)
    workdir = tempfile.mkdtemp(prefix="graphc-errors-")
    try:
        with _sandbox(workdir), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                exec(compile(code, SNIPPET_FILE, "exec"), {"__name__": "example"})
            except Exception as e:   # noqa: BLE001 (the point is to catch it)
                msg = str(e).replace(os.path.realpath(workdir), ".").replace(workdir, ".")
                return e, msg
        raise AssertionError(f"case {case.id} did not raise")
    finally:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


def _lineno(case: Case) -> int:
    return case.lineno + PRELUDE.count("\n")


def error_classes():
    """Every GraphcError subclass defined in graphc/errors.py, by public name."""
    import graphc.errors as E
    out = {}
    for obj in vars(E).values():
        if isinstance(obj, type) and issubclass(obj, E.GraphcError) and obj.__module__ == E.__name__:
            out[obj.__name__] = obj
    return out


def _builtins(cls) -> str:
    import graphc.errors as E
    names = [b.__name__ for b in cls.__mro__[1:]
             if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
    del E
    return ", ".join(names)


def render_doc() -> str:
    classes = error_classes()
    lines = [
        "# Errors",
        "",
        "<!-- Generated by tools/make_errors_doc.py, which runs every example below; "
        "tests/test_errors.py fails when this file is stale. Do not edit by hand. -->",
        "",
        "Every error graphc raises for a user mistake is a `graphc.GraphcError` and also the "
        "matching built-in exception, so `except ValueError` or `except TypeError` written for "
        "NumPy keeps working. Each message starts with the `file.py:LINE` in your code, quotes "
        "that line, and ends with a hint saying how to fix it. The messages below are the real "
        "ones: each example ran as `example.py` when this page was generated.",
        "",
        "| class | also a | raised when |",
        "|---|---|---|",
    ]
    order = ["GraphcError", "TracingError"] + [c.error for c in CASES]
    seen = []
    for name in order:
        if name not in seen and name in classes:
            seen.append(name)
    seen += sorted(set(classes) - set(seen))
    for name in seen:
        cls = classes[name]
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        doc = re.sub(r":\w+:`([^`]*)`", r"`\1`", doc).replace("``", "`")
        lines.append(f"| [`{name}`](#{name.lower()}) | {_builtins(cls) or '—'} | {doc} |")
    lines += ["", "Catch `graphc.GraphcError` to catch all of them; `graphc.TracingError` "
              "covers the mistakes made in traced code (`ControlFlowError`, "
              "`EscapedTracerError`).", ""]
    for name in seen:
        lines += [f"## {name}", ""]
        if name in BASES:
            subs = [n for n in seen if n != name and issubclass(classes[n], classes[name])]
            lines += ["A base class, raised through its subclasses: "
                      + ", ".join(f"[`{n}`](#{n.lower()})" for n in subs) + ".", ""]
            continue
        for case in [c for c in CASES if c.error == name]:
            _, msg = run_case(case)
            lines += [f"### {case.title}", "", f"**Situation.** {case.situation}", "",
                      "```python", (PRELUDE + case.source).rstrip("\n"), "```", "",
                      "**Message.**", "", "```text", msg, "```", "",
                      f"**Fix.** {case.fix}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render_doc()
    if "--check" in argv:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python tools/make_errors_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
