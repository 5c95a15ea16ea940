"""The public API: trace, grad, value_and_grad, compile, export, Spec, example."""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import pathlib
import threading

import numpy as np

from . import codegen, errors
from .autodiff import backward
from .ops.shape import identity
from .errors import GradError, GraphcError
from .ir import Graph
from .passes import optimize
from .primitive import Aval
from .pytree import flatten, unflatten
from .signature import Signature, from_function, leaf_name
from .tracing import Trace, Tracer, aval_of, check_dtype, current_trace

__all__ = ["trace", "grad", "value_and_grad", "compile", "export", "render", "scope", "Spec",
           "example", "Compiled"]


class Spec:
    """A placeholder argument: trace a function without data.

    Parameters
    ----------
    shape : tuple of int
    dtype : str or numpy dtype, default ``"float64"``

    Examples
    --------
    >>> import numpy as np, graphc
    >>> g = graphc.trace(lambda x: np.tanh(x).sum(), graphc.Spec((64, 10), "float32"))
    >>> g.nx.nodes[g.outputs[0]]["dtype"]
    dtype('float32')
    """

    def __init__(self, shape, dtype="float64"):
        self.shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        self.dtype = check_dtype(dtype, "Spec")

    def __repr__(self):
        return f"Spec({self.shape}, {self.dtype.name!r})"


def example(*args, **kwargs):
    """Decorator: attach example inputs to a function, for the CLI and docs.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.example(1.5, 0.5)
    ... def f(w1, w2):
    ...     return w1 / w2
    >>> f.__graphc_example__
    ((1.5, 0.5), {})
    """
    def deco(fn):
        fn.__graphc_example__ = (args, kwargs)
        return fn
    return deco


def _leaf_aval(x):
    if isinstance(x, Spec):
        return Aval(x.shape, x.dtype, False)
    return aval_of(x)


def _def_where(fn):
    try:
        code = inspect.unwrap(fn).__code__
        return f"{code.co_filename}:{code.co_firstlineno}"
    except AttributeError:
        return None


def _fn_name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _call_parts(params, values):
    """Rebuild ``(args, kwargs)`` for calling the user's function."""
    args, kwargs = [], {}
    for p, v in zip(params, values):
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            args.append(v)
        elif p.kind == inspect.Parameter.VAR_POSITIONAL:
            args.extend(v)
        elif p.kind == inspect.Parameter.KEYWORD_ONLY:
            kwargs[p.name] = v
        else:
            kwargs.update(v)
    return args, kwargs


def _trace_into(fn, args, kwargs, body, fn_name):
    """Trace ``body`` on fresh inputs for ``fn``'s arguments; return the Graph.

    ``body(call_args, call_kwargs)`` runs inside the active trace and returns
    the result pytree.  On any error the trace is closed and nothing is kept.
    """
    params, values = from_function(fn, args, kwargs)
    leaves, tdef, paths = flatten(tuple(values))
    g = Graph(fn_name)
    sig = Signature(fn_name=fn_name, params=params, arg_treedefs=tdef, leaf_paths=list(paths))
    g.signature = sig
    t = Trace(g)
    t.top_code = getattr(inspect.unwrap(fn), "__code__", None)
    where = _def_where(fn)
    with t.activate():
        tracers = [t.tracer(g.add_input(_leaf_aval(x), name=leaf_name(sig, p), where=where))
                   for x, p in zip(leaves, paths)]
        call_args, call_kwargs = _call_parts(params, unflatten(tdef, tracers))
        result = body(call_args, call_kwargs)
        out_leaves, out_tdef, _ = flatten(result)
        g.outputs = [t.lift(x).node for x in out_leaves]
    t.finish()
    sig.out_treedef = out_tdef
    return g


def trace(fn, *args, **kwargs) -> Graph:
    """Trace ``fn`` on example arguments into a :class:`graphc.Graph`.

    Parameters
    ----------
    fn : callable
        A Python function over NumPy values.
    *args, **kwargs
        Example arguments (arrays, Python floats, pytrees of them, or
        :class:`Spec` placeholders).  Python ints, bools and strings are static.

    Returns
    -------
    Graph
        The evaluation trace; ``print(graph)`` shows one line per operation.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(w1, w2):
    ...     z1 = w1 / w2
    ...     return np.exp(z1)
    >>> print(graphc.trace(f, 1.5, 0.5))  # doctest: +ELLIPSIS
    f(w1: f64[], w2: f64[]):
        z1 = w1 / w2 ...
        exp = np.exp(z1) ...
        return exp
    """
    if isinstance(fn, Compiled):
        return fn.graph(*args, **kwargs)
    return _trace_into(fn, args, kwargs, lambda a, k: fn(*a, **k), _fn_name(fn))


# --- grad ---------------------------------------------------------------------------
def _check_argnums(argnums, n_args):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or isinstance(a, bool):
            raise GradError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
        if not -n_args <= a < n_args:
            raise GradError(f"argnums={argnums!r} is out of range: the function was called with "
                            f"{n_args} positional argument{'s' if n_args != 1 else ''}",
                            hint="argnums counts positional arguments from 0")
    return tuple(a % n_args for a in nums)


def _grad_body(fn, argnums, has_aux, with_value, name):
    def body(call_args, call_kwargs):
        nums = _check_argnums(argnums, len(call_args))
        trace = current_trace()
        wrt_trees = []
        for i in nums:
            leaves, tdef, _ = flatten(call_args[i])
            lifted = []
            for x in leaves:
                x = trace.lift(x) if not isinstance(x, Tracer) else x
                if x.dtype.kind != "f":
                    raise GradError(
                        f"{name} was asked for the gradient of argument {i}, which has "
                        f"integer or boolean dtype ({x.aval.short()})",
                        hint="gradients exist only for floating arguments: pass floats "
                             "(e.g. 1.0 or x.astype(np.float64)), or leave this argument out "
                             "of argnums")
                lifted.append(identity(x))
            wrt_trees.append((tdef, lifted))
            call_args[i] = unflatten(tdef, lifted)
        start = trace.graph._next
        out = fn(*call_args, **call_kwargs)
        aux = None
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise GradError(f"{name}: with has_aux=True the function must return "
                                "(scalar, aux), a pair", where=_def_where(fn))
            out, aux = out
        out = trace.lift(out)
        out_where = trace.graph.nx.nodes[out.node].get("where") or _def_where(fn)
        if out.shape != ():
            raise GradError(f"{name} needs a function that returns a scalar (shape ()), but it "
                            f"returned {out.aval.short()}",
                            where=out_where,
                            hint="reduce the output first, e.g. loss.sum() or loss.mean(), or "
                                 "use graphc.compile for a non-scalar function")
        if out.dtype.kind != "f":
            raise GradError(f"{name} needs a real floating output, but the function returned "
                            f"{out.aval.short()}", where=out_where,
                            hint="make the output a float, e.g. .astype(np.float64)")
        flat_wrt = [x for _, ls in wrt_trees for x in ls]
        cts = backward(out, flat_wrt, start=start)
        grads, k = [], 0
        for tdef, ls in wrt_trees:
            grads.append(unflatten(tdef, cts[k:k + len(ls)]))
            k += len(ls)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        if with_value:
            return ((out, aux), g) if has_aux else (out, g)
        return (g, aux) if has_aux else g
    return body


# --- compiled callables ---------------------------------------------------------------
class _Entry:
    __slots__ = ("graph", "source", "fn", "func_name", "has_spec")

    def __init__(self, graph, source, fn, func_name, has_spec=False):
        self.graph, self.source, self.fn, self.func_name = graph, source, fn, func_name
        self.has_spec = has_spec


class _Traced(Exception):
    """Raised while computing a cache key when an argument is a tracer."""


def _key_of(x):
    """Cache key of an argument pytree: structure, shapes, dtypes, static values.

    Written for the cached call path: a few hundred nanoseconds for a handful
    of arrays (no TreeDef objects, no dtype strings).
    """
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype)
    if t is float:
        return float
    if t is dict:
        return (dict, tuple(x), tuple([_key_of(v) for v in x.values()]))
    if t is tuple or t is list:
        return (t, tuple([_key_of(v) for v in x]))
    if t is int or t is bool or t is str or x is None:
        return (t, x)
    if isinstance(x, Tracer):
        raise _Traced
    if isinstance(x, np.generic):      # same graph as a 0-d array of that dtype
        return ((), x.dtype)
    if isinstance(x, Spec):
        return ("spec", x.shape, x.dtype)
    if isinstance(x, (dict, list, tuple)) and not hasattr(x, "_fields"):
        return _key_of(dict(x) if isinstance(x, dict) else (list(x) if isinstance(x, list) else tuple(x)))
    a = aval_of(x)
    return (a.shape, a.dtype, a.weak)


class Compiled:
    """A function compiled per signature into generated NumPy code.

    Returned by :func:`compile`, :func:`grad` and :func:`value_and_grad`.
    The first call with a new signature (pytree structure, shapes, dtypes,
    static values) traces and generates code; later calls run it directly.
    Called with traced values (inside another graphc transform) it records
    its operations into the enclosing trace instead, so transforms compose.
    """

    def __init__(self, fn, kind="compile", argnums=0, has_aux=False):
        if not callable(fn):
            raise TypeError(f"graphc.{kind} needs a callable, got {type(fn).__name__}")
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._kind = kind
        self._argnums = argnums
        self._has_aux = has_aux
        self._cache: dict = {}
        self._lock = threading.Lock()
        base = _fn_name(fn)
        self.__name__ = {"compile": base, "grad": f"{base}_grad",
                         "value_and_grad": f"{base}_value_and_grad"}[kind]
        self.__qualname__ = self.__name__
        if kind != "compile":
            _check_argnums_static(argnums)

    def __repr__(self):
        return f"<graphc.{self._kind} of {_fn_name(self._fn)}>"

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    # --- the body traced for this transform --------------------------------------
    def _body(self):
        if self._kind == "compile":
            return lambda a, k: self._fn(*a, **k)
        return _grad_body(self._fn, self._argnums, self._has_aux,
                          self._kind == "value_and_grad", f"graphc.{self._kind}({_fn_name(self._fn)})")

    def _entry(self, args, kwargs):
        key = (_key_of(args), _key_of(kwargs)) if kwargs else _key_of(args)
        entry = self._cache.get(key)
        if entry is None:
            with self._lock:
                entry = self._cache.get(key)
                if entry is None:
                    entry = self._build(args, kwargs)
                    self._cache[key] = entry
        return entry

    def _build(self, args, kwargs):
        g = _trace_into(self._fn, args, kwargs, self._body(), _fn_name(self._fn))
        optimize(g)
        source_file = _def_where(self._fn)
        source_file = source_file.rpartition(":")[0] if source_file else None
        doc = self._doc(g)
        func_name = codegen.sanitize(self.__name__)
        source = codegen.generate(g, func_name, doc=doc, source_file=source_file)
        fn = codegen.exec_module(source, func_name, self.__name__)
        has_spec = any(isinstance(x, Spec) for x in flatten((args, kwargs))[0])
        return _Entry(g, source, fn, func_name, has_spec)

    def _doc(self, g):
        name = _fn_name(self._fn)
        if self._kind == "compile":
            return f"{name}, compiled by graphc."
        params = [p.name for p in g.signature.params]
        nums = (self._argnums,) if isinstance(self._argnums, int) else self._argnums
        wrt = ", ".join(params[i] if i < len(params) else f"argument {i}" for i in nums)
        if self._kind == "grad":
            return f"Gradient of {name} with respect to {wrt}."
        return f"Value of {name} and its gradient with respect to {wrt}."

    def __call__(self, *args, **kwargs):
        try:
            entry = self._entry(args, kwargs)
        except _Traced:
            return self._inline(args, kwargs)
        if entry.has_spec:
            raise GraphcError(f"{self.__name__} was called with a graphc.Spec placeholder",
                              hint="Specs describe inputs for .source(), .graph() and graphc.trace; "
                                   "call the function with arrays")
        return entry.fn(*args, **kwargs)

    def _inline(self, args, kwargs):
        """Called with traced values: record into the enclosing trace."""
        trace = current_trace()
        if trace is None:
            raise errors.EscapedTracerError("a traced value was used after its trace ended")
        return self._body()(list(args), dict(kwargs))

    def source(self, *args, **kwargs) -> str:
        """The generated module text for this signature."""
        return self._entry(args, kwargs).source

    def graph(self, *args, **kwargs) -> Graph:
        """The optimized graph the generated code was made from."""
        return self._entry(args, kwargs).graph

    def export_name(self):
        return codegen.sanitize(self.__name__)


def _check_argnums_static(argnums):
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not isinstance(nums, (tuple, list)) or not nums or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in nums):
        raise GradError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


def compile(fn=None):
    """Compile ``fn`` into generated NumPy code (also usable as ``@graphc.compile``).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.compile
    ... def f(x):
    ...     return np.tanh(x) * 2.0
    >>> float(f(np.float64(0.5)))
    0.9242343145200195
    >>> print(f.source(0.5).splitlines()[-1])
        return mul
    """
    if fn is None:
        return compile
    return Compiled(fn, "compile")


def grad(fn, argnums=0, has_aux=False):
    """The gradient of a scalar function, compiled per signature.

    Parameters
    ----------
    fn : callable
        Returns a real floating scalar (shape ``()``), or ``(scalar, aux)``
        when ``has_aux=True``.
    argnums : int or tuple of int
        Which positional arguments to differentiate.
    has_aux : bool
        As in JAX: ``grad(f, has_aux=True)(x)`` returns ``(grads, aux)``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> df = graphc.grad(lambda x: np.sum(x ** 2))
    >>> df(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    return Compiled(fn, "grad", argnums, has_aux)


def value_and_grad(fn, argnums=0, has_aux=False):
    """Like :func:`grad` but returns ``(value, grads)``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> value, g = graphc.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    return Compiled(fn, "value_and_grad", argnums, has_aux)


def export(fn, *args, path, overwrite=None, **kwargs) -> pathlib.Path:
    """Write the generated module for ``fn`` at this signature to ``path``.

    The file imports only NumPy and defines one function: ``f`` for
    ``compile(f)`` (or a plain ``f``), ``f_grad`` for ``grad(f)`` and
    ``f_value_and_grad`` for ``value_and_grad(f)``.  An existing file is only
    replaced when graphc wrote it, or with ``overwrite=True``.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> def f(x):
    ...     return np.sum(x ** 2)
    >>> path = graphc.export(graphc.grad(f), np.ones(3), path=os.path.join(tempfile.mkdtemp(), "f_grad.py"))
    >>> "def f_grad(x):" in path.read_text()
    True
    """
    compiled = fn if isinstance(fn, Compiled) else Compiled(fn, "compile")
    source = compiled.source(*args, **kwargs)
    path = pathlib.Path(path)
    if path.exists() and overwrite is not True:
        first = path.read_text(errors="replace").split("\n", 1)[0] if path.is_file() else ""
        if overwrite is False or not first.startswith("# Generated by graphc"):
            raise errors.GraphcError(
                f"graphc.export will not overwrite {path}: the file exists and was not written "
                "by graphc", hint="pass overwrite=True, or choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".graphc-tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    except OSError as e:
        raise errors.ExportError(f"graphc.export cannot write {path}: {e.strerror or e}",
                                 hint="choose a writable path") from None
    return path


@contextlib.contextmanager
def scope(name: str):
    """Group the operations traced inside the block under ``name``.

    Drawings cluster a scope's nodes (or collapse them into one box with
    ``collapse=``); scopes nest as ``"outer/inner"``.  Outside a trace it does
    nothing, so layer functions can always use it.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     with graphc.scope("layer1"):
    ...         h = np.tanh(x)
    ...     return h.sum()
    >>> g = graphc.trace(f, np.ones(3))
    >>> sorted({g.nx.nodes[n].get("scope") for n in g.nx.nodes} - {None})
    ['layer1']
    """
    t = current_trace()
    if t is None:
        yield
        return
    parent = t.attrs.get("scope")
    with t.context(scope=f"{parent}/{name}" if parent else str(name)):
        yield


def render(fn_or_graph, *args, path, backward=False, **kwargs) -> pathlib.Path:
    """Draw a function's graph (or a :class:`Graph`) to ``path`` (.svg, .png, .pdf, .dot, .gv).

    Parameters
    ----------
    fn_or_graph : callable, Compiled or Graph
    *args
        Example arguments (arrays or :class:`Spec`) when a function is given.
    path : str or path-like
    backward : bool
        Draw the backward graph beside the forward one (for a plain function:
        the graph of ``value_and_grad(fn)``).
    **kwargs
        Drawing options (``collapse=``, ``flops=``, ``legend=``) and, for a
        function, keyword arguments of the call.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> out = graphc.render(lambda x: np.sum(np.exp(x) * x), np.ones(3),
    ...                     path=os.path.join(tempfile.mkdtemp(), "f.dot"), backward=True)
    >>> "cluster_backward" in out.read_text()
    True
    """
    draw_opts = {k: kwargs.pop(k) for k in ("collapse", "flops", "legend", "rankdir") if k in kwargs}
    if isinstance(fn_or_graph, Graph):
        graph = fn_or_graph
    elif isinstance(fn_or_graph, Compiled):
        graph = fn_or_graph.graph(*args, **kwargs)
    elif backward:
        # Differentiate every positional argument that holds only floats.
        nums = tuple(i for i, a in enumerate(args)
                     if flatten(a)[0] and all(_leaf_aval(x).dtype.kind == "f" for x in flatten(a)[0]))
        graph = value_and_grad(fn_or_graph, argnums=nums or 0).graph(*args, **kwargs)
    else:
        graph = trace(fn_or_graph, *args, **kwargs)
    from .draw import render_graph
    return render_graph(graph, path, backward=backward, **draw_opts)
