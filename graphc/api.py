"""The public API: trace, grad, value_and_grad, compile, export, Spec, example."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import inspect
import linecache
import pathlib
import sys
import threading
import types

import numpy as np

from . import codegen, errors, loader, naming
from .autodiff import backward
from .ops.shape import identity
from .errors import GradError, OptionError, UnsupportedError
from .ir import Graph
from .passes import optimize
from .primitive import Aval
from .pytree import flatten, is_static, unflatten
from .signature import Param, Signature, from_function, leaf_name
from .avals import aval_of, check_dtype
from .tracing import Trace, Tracer, current_trace

__all__ = ["trace", "grad", "value_and_grad", "compile", "export", "render", "scope", "Spec",
           "example", "Compiled", "DEFAULT_CACHE_SIZE"]

#: Signatures each compiled function keeps (least recently used evicted first).
DEFAULT_CACHE_SIZE = 64


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
    >>> g[g.outputs[0]].dtype
    dtype('float32')
    """

    def __init__(self, shape, dtype="float64"):
        self.shape = _spec_shape(shape)
        self.dtype = _spec_dtype(dtype)

    def __repr__(self):
        return f"Spec({self.shape}, {self.dtype.name!r})"


def _spec_shape(shape):
    """A Spec's shape as a tuple of non-negative ints (as np.zeros accepts it)."""
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise errors.SignatureError(
                f"graphc.Spec shape must be an int or a tuple of ints, got {shape!r:.60}",
                hint='e.g. graphc.Spec((64, 10), "float32"); a scalar is graphc.Spec(())')
        if d < 0:
            raise errors.ShapeError(f"graphc.Spec shape {tuple(int(v) for v in dims)} has a "
                                    "negative dimension", hint="dimensions are sizes, >= 0")
    return tuple(int(d) for d in dims)


def _spec_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise UnsupportedError(f"graphc.Spec dtype {dtype!r:.40} is not a NumPy dtype",
                               hint='use a dtype name such as "float32", "float64", "int64" '
                                    'or "bool", or np.float32') from None
    return check_dtype(dt, "Spec")


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
        return errors.where_text(code.co_filename, code.co_firstlineno)
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
    # fn.__name__ is user-controlled text; the graph's name appears in generated
    # comments and docstrings, so it is made one-line and quote-free.
    fn_name = naming.display(fn_name)
    g = Graph(fn_name)
    sig = Signature(fn_name=fn_name, params=params, arg_treedefs=tdef, leaf_paths=list(paths))
    g.signature = sig
    where = _def_where(fn)
    avals = [_input_aval(x, sig, p, where) for x, p in zip(leaves, paths)]
    t = Trace(g)
    t.top_code = getattr(inspect.unwrap(fn), "__code__", None)
    try:
        with t.activate():
            tracers = [t.tracer(g.add_input(a, name=leaf_name(sig, p), where=where))
                       for a, p in zip(avals, paths)]
            call_args, call_kwargs = _call_parts(params, unflatten(tdef, tracers))
            result = body(call_args, call_kwargs)
            out_leaves, out_tdef, _ = flatten(result)
            g.outputs = [t.lift(x).node for x in out_leaves]
    except BaseException as e:
        # Tracers kept by the user (a global, a list) must now report that
        # they escaped, not pretend to belong to a live trace.
        t.active = False
        swallowed = _swallowed_error(t, e)
        if swallowed is not None:
            raise swallowed from None
        raise
    t.finish()
    _check_static_outputs(out_tdef, where)
    sig.out_treedef = out_tdef
    return g


def _swallowed_error(t, e):
    """The graphc error NumPy swallowed on the line that raised ``e``, if any.

    ``buf[0] = x`` (a NumPy buffer) calls ``x.__float__``, whose error NumPy
    replaces by "setting an array element with a sequence".
    """
    err = t.swallowed
    if err is None or isinstance(e, errors.GraphcError) \
            or not isinstance(e, (ValueError, TypeError)):
        return None
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or errors.where_text(tb.tb_frame.f_code.co_filename, tb.tb_lineno) != err.where:
        return None
    return err
def _live(fn):
    """``fn``, with the NumPy arrays it closes over read as inputs of the active trace.

    A closed-over array lifted as a constant would be frozen into the generated
    code; as an input, the compiled callable passes the cell's current contents
    at each call (``w[:] = 5`` and ``w = new`` are both seen).  The cells are
    replaced in a copy of the function: the user's function is never touched.
    """
    trace = current_trace()
    if trace is None or type(fn) is not types.FunctionType or trace.graph.signature is None:
        return fn
    cells = fn.__closure__ or ()
    new, changed = [], False
    fn_globals = fn.__globals__
    live_globals = {}
    for name in sorted(_global_names(fn.__code__)):
        value = fn_globals.get(name)
        if type(value) is np.ndarray and value.dtype.kind in "biuf":
            live_globals[name] = _closure_tracer(trace, name, _GlobalRef(fn_globals, name), value)
    if live_globals:
        fn_globals = {**fn_globals, **live_globals}   # a copy: the module is never touched
        changed = True
    for name, cell in zip(fn.__code__.co_freevars, cells):
        try:
            value = cell.cell_contents
        except ValueError:          # not yet assigned
            new.append(cell)
            continue
        if type(value) is np.ndarray and value.dtype.kind in "biuf":
            new.append(types.CellType(_closure_tracer(trace, name, cell, value)))
            changed = True
        else:
            new.append(cell)
    if not changed:
        return fn
    copy = types.FunctionType(fn.__code__, fn_globals, fn.__name__, fn.__defaults__,
                              tuple(new) or None)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__qualname__ = fn.__qualname__
    return copy


class _GlobalRef:
    """A module global read like a closure cell (``cell_contents``) at each call."""

    __slots__ = ("namespace", "name")

    def __init__(self, namespace, name):
        self.namespace, self.name = namespace, name

    @property
    def cell_contents(self):
        try:
            return self.namespace[self.name]
        except KeyError:
            raise ValueError(f"global {self.name} is gone") from None

    def __eq__(self, other):
        return (isinstance(other, _GlobalRef) and other.namespace is self.namespace
                and other.name == self.name)

    __hash__ = None


def _global_names(code):
    """Global names ``code`` may read, its nested functions and comprehensions included."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _closure_tracer(trace, name, cell, value):
    sig = trace.graph.signature
    for nid, _, c in sig.closures:        # the same cell (or global) read twice: one input
        if (c is cell or isinstance(c, _GlobalRef) and c == cell) and nid in trace.graph:
            return trace.tracer(nid)
    nid = trace.graph.add_node("input", (), Aval(value.shape, value.dtype, False), name=name,
                               closure=name, value=value)
    sig.closures.append((nid, name, cell))
    return trace.tracer(nid)


def _input_aval(x, sig, path, where):
    """The aval of one argument leaf; unsupported dtypes are reported by argument name."""
    try:
        return _leaf_aval(x)
    except UnsupportedError as e:
        name = sig.params[path[0]].name + "".join(f"[{k!r}]" for k in path[1:])
        if name in ("self", "cls") and path == (0,) and not isinstance(x, np.ndarray):
            raise UnsupportedError(
                f"{sig.fn_name}'s first argument {name} is an instance of "
                f"{type(x).__name__}, which graphc cannot trace: a graphc transform was "
                "applied to a method in its class body (@graphc.grad above "
                "`def method(self, ...)`), so it sees self as an argument (and argnums=0 "
                "would mean self)", where=where,
                hint=f"decorate the bound method instead: obj = {type(x).__name__}(...); "
                     f"f = graphc.grad(obj.{sig.fn_name}) (or graphc.compile(obj."
                     f"{sig.fn_name})), or pass the arrays self holds as arguments") from None
        what = "an array" if isinstance(x, np.ndarray) else f"a value of type {type(x).__name__}"
        raise UnsupportedError(f"argument {name} is {what} with an unsupported dtype: {e.message}",
                               hint="pass real floating arrays (float32/float64) for values to "
                                    "differentiate, integer/boolean arrays for data; strings, "
                                    "complex numbers and Python objects cannot be traced "
                                    "(a Python str, int or bool argument is static)") from None


_STATIC_TYPES = (int, bool, str, type(None))


def _check_static_outputs(tdef, where):
    """Static result leaves are rebuilt in generated code with repr(): plain types only."""
    if tdef.kind == "static" and type(tdef.static) not in _STATIC_TYPES:
        raise UnsupportedError(
            f"the function returns a static value of type {type(tdef.static).__name__} "
            f"({tdef.static!r:.60}), which generated code cannot rebuild", where=where,
            hint="return plain int/bool/str values or arrays (e.g. int(value))")
    for c in tdef.children:
        _check_static_outputs(c, where)


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
    if not callable(fn):
        raise errors.SignatureError(f"graphc.trace needs a function to trace, got "
                                    f"{type(fn).__name__} {fn!r:.40}",
                                    hint="pass the function first, then its arguments: "
                                         "graphc.trace(f, x)")
    with _gc_paused():
        return _trace_into(fn, args, kwargs, lambda a, k: _live(fn)(*a, **k), _fn_name(fn))


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


def _static_leaves(tdef, path=()):
    """``(path, value)`` of every static leaf (Python int/bool/str) in a pytree."""
    if tdef.kind == "static":
        return [(path, tdef.static)]
    keys = tdef.keys if tdef.kind == "dict" else range(len(tdef.children))
    return [hit for k, c in zip(keys, tdef.children) for hit in _static_leaves(c, path + (k,))]


def _positional_name(fn, i):
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if i < len(params) and params[i].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                              inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return params[i].name
    return f"args[{i}]"


def _check_no_static_leaves(fn, name, i, tdef):
    """A differentiated argument must be traced floats: a static Python int/bool/str
    (or None in its place) would silently come back as its own "gradient"."""
    hits = [((), None)] if tdef.kind == "none" else _static_leaves(tdef)
    if not hits:
        return
    path, value = hits[0]
    label = _positional_name(fn, i) + "".join(f"[{k!r}]" for k in path)
    kind = "None" if value is None else f"the Python {type(value).__name__} {value!r:.40}"
    if isinstance(value, int):       # bool too
        try:
            fix = f"pass {float(value)!r} (a float) to differentiate it"
        except OverflowError:
            fix = "pass a float to differentiate it"
    else:
        fix = "pass a float or a floating NumPy array to differentiate it"
    raise GradError(
        f"{name} was asked for the gradient of argument {i} ({label}), which is {kind}: "
        "Python ints, bools, strings and None are static (baked into the graph) and have no "
        "gradient",
        hint=f"{fix}, or " + (f"leave argument {i} out of argnums" if not path else
                              f"pass {label} as a separate argument outside argnums"))


def _grad_body(fn, argnums, has_aux, with_value, name):
    def body(call_args, call_kwargs):
        nums = _check_argnums(argnums, len(call_args))
        trace = current_trace()
        wrt_trees = []
        for i in nums:
            leaves, tdef, _ = flatten(call_args[i])
            _check_no_static_leaves(fn, name, i, tdef)
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
        out = _live(fn)(*call_args, **call_kwargs)
        aux = None
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise GradError(f"{name}: with has_aux=True the function must return "
                                "(scalar, aux), a pair", where=_def_where(fn))
            out, aux = out
        _check_loss_value(out, name, has_aux, fn)
        out = trace.lift(out)
        out_where = trace.graph[out.node].where or _def_where(fn)
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


def _check_loss_value(out, name, has_aux, fn):
    """A loss that is None, a pair or another container: say what to change."""
    if out is None:
        got = "None"
    elif isinstance(out, (tuple, list, dict)):
        got = f"a {type(out).__name__} of {len(out)} value{'s' if len(out) != 1 else ''}"
    else:
        return
    if has_aux:
        raise GradError(f"{name}: with has_aux=True the function must return (loss, aux) with "
                        f"a scalar loss, but the loss is {got}", where=_def_where(fn),
                        hint="make the first item of the returned pair the scalar loss")
    if out is None:
        hint = ("return the loss, e.g. `return np.sum((y - t) ** 2)` (a function without a "
                "return statement returns None)")
    elif isinstance(out, (tuple, list)) and len(out) == 2:
        hint = "pass has_aux=True to return (loss, aux), as in JAX, or return the loss alone"
    else:
        hint = ("return the scalar loss alone (sum or mean the terms), or pass has_aux=True "
                "and return (loss, aux)")
    raise GradError(f"{name}: the function returned {got}, not a scalar loss",
                    where=_def_where(fn), hint=hint)


# --- compiled callables ---------------------------------------------------------------
class _Entry:
    __slots__ = ("graph", "source", "fn", "func_name", "has_spec", "closure")

    def __init__(self, graph, source, fn, func_name, has_spec=False, closure=()):
        self.graph, self.source, self.fn, self.func_name = graph, source, fn, func_name
        self.has_spec = has_spec
        # ((keyword, cell, (shape, dtype)), ...): closed-over arrays passed at each call
        self.closure = closure


class _Traced(Exception):
    """Raised while computing a cache key when an argument is a tracer."""


class _Unsupported:
    """Cache-key part of a leaf graphc cannot trace: never equal to another key,
    so the call goes on to tracing, which reports it by argument name."""

    __slots__ = ()


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while a graph is built.

    Building allocates many small long-lived objects (networkx's attribute dicts),
    and the collector rescans all of them at every generation-2 pass: about a
    fifth of the compile time of a 10,000-node graph.  Nothing built here forms
    garbage cycles that must be reclaimed before the build ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
    if isinstance(x, (bool, int, str)):  # subclasses (IntEnum ...): static, keyed by type too
        return (t, x)
    if is_static(x):                     # act=np.tanh, xp=np, range(3): the object itself
        return (t, x)
    try:
        a = aval_of(x)
    except UnsupportedError:
        return _Unsupported()
    return (a.shape, a.dtype, a.weak)


def _args_key(args):
    """``_key_of`` of the positional-argument tuple, with the common leaves
    (arrays, Python floats) handled in the loop instead of a recursive call."""
    out = []
    for x in args:
        t = type(x)
        if t is np.ndarray:
            out.append((x.shape, x.dtype))
        elif t is float:
            out.append(float)
        else:
            out.append(_key_of(x))
    return tuple(out)


_NO_ENTRY = object()
# codegen.exec_module numbers its linecache file names with a plain counter;
# builds of different compiled functions may run in parallel threads.
_EXEC_LOCK = threading.Lock()


def _plain_default(value):
    """A parameter default that generated code can spell as a literal.

    ``int``/``float``/``str`` subclasses (IntEnum, a class with a custom
    ``__repr__``) become the plain value: their repr is not code.  Defaults of
    static parameters only matter for the generated function's signature (the
    value itself is baked into the graph).
    """
    t = type(value)
    if t in (bool, int, float, str, type(None)) or isinstance(value, (np.ndarray, np.generic)):
        return value
    for base in (bool, int, float, str):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, dict):
        return {k: _plain_default(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_default(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain_default(v) for v in value)
    return value


class Compiled:
    """A function compiled per signature into generated NumPy code.

    Returned by :func:`compile`, :func:`grad` and :func:`value_and_grad`.
    The first call with a new signature (pytree structure, shapes, dtypes,
    static values) traces and generates code; later calls run it directly.
    Called with traced values (inside another graphc transform) it records
    its operations into the enclosing trace instead, so transforms compose.

    The per-signature cache is a least-recently-used cache of ``cache_size``
    entries (:data:`DEFAULT_CACHE_SIZE` = 64 by default): a loop over ever new
    shapes re-traces but does not grow memory without bound.  It is safe to
    call from several threads at once; concurrent first calls with one
    signature build it once.
    """

    def __init__(self, fn, kind="compile", argnums=0, has_aux=False, *,
                 cache_size=DEFAULT_CACHE_SIZE, check_finite=False):
        if not callable(fn):
            raise errors.SignatureError(f"graphc.{kind} needs a callable, got {type(fn).__name__}",
                                        hint=f"pass the function itself: graphc.{kind}(f), "
                                             "not its result")
        if not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 1:
            raise OptionError(f"cache_size must be a positive int, got {cache_size!r}",
                              hint=f"the default keeps {DEFAULT_CACHE_SIZE} signatures")
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._kind = kind
        self._argnums = argnums
        self._has_aux = has_aux
        self._cache: dict = {}          # insertion order = least recently used first
        self._cache_size = cache_size
        self._last = _NO_ENTRY          # the most recently used entry
        # Reentrant: tracing runs the user's function, which may call this
        # same compiled function on concrete arrays (another signature).
        self._lock = threading.RLock()
        self.check_finite = bool(check_finite)
        base = _fn_name(fn)
        self.__name__ = {"compile": base, "grad": f"{base}_grad",
                         "value_and_grad": f"{base}_value_and_grad"}[kind]
        self.__qualname__ = self.__name__
        if kind != "compile":
            _check_argnums_static(argnums)

    def __repr__(self):
        return f"<graphc.{self._kind} of {_fn_name(self._fn)}>"

    # --- pickling (multiprocessing, Dask): the function and options, not the cache ----
    def __reduce_ex__(self, protocol):
        # A decorated module-level function (@graphc.grad def f) is the module's
        # attribute itself; its wrapped function cannot be pickled by reference
        # (module.f is this object, not it), so pickle this object by reference.
        ref = _global_name(self)
        if ref is not None:
            return _load_global, ref
        return super().__reduce_ex__(protocol)

    def __getstate__(self):
        # The lock cannot be pickled, and the compiled code is rebuilt on demand.
        state = dict(self.__dict__)
        for name in ("_lock", "_cache", "_last"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = {}
        self._last = _NO_ENTRY
        self._lock = threading.RLock()

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    @property
    def cache_size(self) -> int:
        """How many signatures this function keeps compiled."""
        return self._cache_size

    # --- the body traced for this transform --------------------------------------
    def _body(self):
        if self._kind == "compile":
            return lambda a, k: _live(self._fn)(*a, **k)
        return _grad_body(self._fn, self._argnums, self._has_aux,
                          self._kind == "value_and_grad", f"graphc.{self._kind}({_fn_name(self._fn)})")

    def _entry(self, args, kwargs):
        try:
            key = (_args_key(args), _key_of(kwargs)) if kwargs else _args_key(args)
        except RecursionError:
            flatten((args, kwargs))   # a pytree nested too deep: its clear error
            raise
        entry = self._cache.get(key)
        # Hot path: the same signature as last time needs no LRU bookkeeping.
        if entry is not self._last:
            entry = self._lookup(key, entry, args, kwargs)
        return entry

    def _lookup(self, key, entry, args, kwargs):
        if entry is not None:
            # Mark as recently used; skipped (harmlessly) while another thread
            # builds, so a cached call never waits for someone else's trace.
            if self._lock.acquire(blocking=False):
                try:
                    if self._cache.pop(key, None) is not None:
                        self._cache[key] = entry
                    self._last = entry
                finally:
                    self._lock.release()
            return entry
        with self._lock:
            # A concurrent reorder pops the key for an instant; a miss then
            # waits here and finds it, so each signature is built once.
            entry = self._cache.pop(key, None)
            if entry is None:
                entry = self._build(args, kwargs)
                while len(self._cache) >= self._cache_size:
                    self._evict(next(iter(self._cache)))
            self._cache[key] = entry
            self._last = entry
        return entry

    def _evict(self, key):
        old = self._cache.pop(key)
        code = getattr(old.fn, "__code__", None)
        if code is not None and code.co_filename.startswith("<graphc:"):
            linecache.cache.pop(code.co_filename, None)   # its source text, kept for tracebacks

    def cache_clear(self) -> None:
        """Forget every compiled signature."""
        with self._lock:
            for key in list(self._cache):
                self._evict(key)
            self._last = _NO_ENTRY

    def _build(self, args, kwargs):
        with _gc_paused():
            return self._build_unpaused(args, kwargs)

    def _build_unpaused(self, args, kwargs):
        g = _trace_into(self._fn, args, kwargs, self._body(), _fn_name(self._fn))
        optimize(g)
        source_file = _def_where(self._fn)
        source_file = source_file.rpartition(":")[0] if source_file else None
        func_name = codegen.sanitize(self.__name__)
        sig = g.signature
        # Parameter names in the generated def: sanitized and pairwise distinct
        # (x and x_, np, σ), with defaults spelled as plain literals.
        names = naming.unique_names([p.name for p in sig.params])
        g.signature = dataclasses.replace(sig, params=[
            Param(n, p.kind, _plain_default(p.default)) for n, p in zip(names, sig.params)])
        try:
            doc = self._doc(g)
            module = codegen.generate_module(g, func_name, doc=doc, source_file=source_file)
        finally:
            g.signature = sig
        source = module.source
        with _EXEC_LOCK:
            # The fast variant: no entry check (the cache key checked the signature)
            # and the user's own default arrays, read at each call.
            fn = loader.exec_module(source, func_name, self.__name__, run=module.fast,
                                     bindings=module.bindings)
        renamed = {p.name: n for p, n in zip(sig.params, names) if p.name != n and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        if renamed:
            fn = _renaming_call(fn, renamed)
        has_spec = any(isinstance(x, Spec) for x in flatten((args, kwargs))[0])
        cells = {nid: cell for nid, _, cell in sig.closures}
        closure = tuple((kw, cells[nid], (g[nid].shape, g[nid].dtype))
                        for kw, nid in module.closure_params)
        return _Entry(g, source, fn, func_name, has_spec, closure)

    def _doc(self, g):
        name = naming.display(_fn_name(self._fn))
        if self._kind == "compile":
            return f"{name}, compiled by graphc."
        params = [p.name for p in g.signature.params]
        nums = (self._argnums,) if isinstance(self._argnums, int) else self._argnums
        wrt = ", ".join(params[i] if -len(params) <= i < len(params) else f"argument {i}"
                        for i in nums)
        if self._kind == "grad":
            return f"Gradient of {name} with respect to {wrt}."
        return f"Value of {name} and its gradient with respect to {wrt}."

    def __call__(self, *args, **kwargs):
        # The cached path, inlined from _entry: every call pays it (W1: ~0.5 µs).
        try:
            key = (_args_key(args), _key_of(kwargs)) if kwargs else _args_key(args)
        except _Traced:
            return self._inline(args, kwargs)
        except RecursionError:
            flatten((args, kwargs))   # a pytree nested too deep: its clear error
            raise
        entry = self._cache.get(key)
        if entry is not self._last:
            entry = self._lookup(key, entry, args, kwargs)
        if entry.has_spec:
            raise errors.SignatureError(f"{self.__name__} was called with a graphc.Spec placeholder",
                              hint="Specs describe inputs for .source(), .graph() and graphc.trace; "
                                   "call the function with arrays")
        if entry.closure:
            return self._call_closure(entry, key, args, kwargs)
        return entry.fn(*args, **kwargs)

    def _call_closure(self, entry, key, args, kwargs, retraced=False):
        """Call ``entry`` with the current contents of the arrays it closes over.

        A closed-over array that changed shape or dtype (or is no array any
        more) since the trace makes the signature stale: trace again."""
        current = {}
        for kw, cell, (shape, dtype) in entry.closure:
            try:
                value = cell.cell_contents
            except ValueError:
                value = None
            if type(value) is not np.ndarray or value.shape != shape or value.dtype != dtype:
                if retraced:
                    raise errors.SignatureError(
                        f"{self.__name__}: the closed-over array {kw} changed while it was "
                        "being compiled", hint="do not rebind it from another thread")
                with self._lock:
                    if self._cache.get(key) is entry:
                        self._evict(key)
                    self._last = _NO_ENTRY
                new = self._entry(args, kwargs)
                if not new.closure:
                    return new.fn(*args, **kwargs)
                return self._call_closure(new, key, args, kwargs, retraced=True)
            current[kw] = value
        return entry.fn(*args, **kwargs, **current)

    def _inline(self, args, kwargs):
        """Called with traced values: record into the enclosing trace."""
        trace = current_trace()
        if trace is None:
            from .tracing import foreign_tracer_error
            leaf = next(x for x in flatten((args, kwargs))[0] if isinstance(x, Tracer))
            raise foreign_tracer_error(leaf)
        return self._body()(list(args), dict(kwargs))

    def source(self, *args, **kwargs) -> str:
        """The generated module text for this signature."""
        return self._entry(args, kwargs).source

    def graph(self, *args, **kwargs) -> Graph:
        """The optimized graph the generated code was made from."""
        return self._entry(args, kwargs).graph

    def export_name(self):
        return codegen.sanitize(self.__name__)


def _global_name(obj):
    """``(module, qualname)`` when ``obj`` is importable under its wrapped function's name."""
    fn = obj._fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return (module, qualname) if found is obj else None


def _load_global(module, qualname):
    import importlib
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _renaming_call(fn, renamed):
    """Call generated ``fn`` with the user's keyword names (``np=`` -> ``np_=``)."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*args, **{renamed.get(k, k): v for k, v in kwargs.items()})
    return call


class _FiniteChecked(Compiled):
    """A :class:`Compiled` whose concrete results are checked for NaN/Inf.

    A subclass, so that the unchecked default pays nothing for the option.
    """

    def __call__(self, *args, **kwargs):
        out = Compiled.__call__(self, *args, **kwargs)
        leaves = flatten(out)[0]
        from .interpret import all_finite, explain_nonfinite
        if all_finite(leaves) or any(isinstance(x, Tracer) for x in leaves):
            return out
        entry = self._entry(args, kwargs)
        params, values = from_function(self._fn, args, kwargs)
        raise explain_nonfinite(entry.graph, flatten(tuple(values))[0], self.__name__)


def _make(fn, kind, argnums=0, has_aux=False, *, cache_size, check_finite):
    cls = _FiniteChecked if check_finite else Compiled
    return cls(fn, kind, argnums, has_aux, cache_size=cache_size, check_finite=check_finite)


def _check_argnums_static(argnums):
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not isinstance(nums, (tuple, list)) or not nums or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in nums):
        raise GradError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


_CHECK_FINITE_DOC = """check_finite : bool, default False
        After each call, check that every floating result is free of NaN and
        infinity.  If one is not, the graph is evaluated again node by node
        and :class:`graphc.errors.NonFiniteError` (a ``ValueError``) names the
        first operation, in program order, that turned finite arguments into
        a NaN or an infinity and that the bad result depends on: the user's
        variable name, the op, the input ranges and the ``file.py:LINE``.  When
        the NaN/Inf came in with an argument, the error names that argument.
        Only results are checked: a NaN in an intermediate that does not reach
        a result (``np.where(x > 0, np.log(x), 0.0)``) is not an error.  Costs
        one finiteness test per result; calls inside another graphc transform
        are not checked.
    cache_size : int, default 64
        How many signatures to keep compiled (least recently used evicted)."""


def compile(fn=None, *, check_finite=False, cache_size=DEFAULT_CACHE_SIZE):
    """Compile ``fn`` into generated NumPy code (also usable as ``@graphc.compile``).

    Parameters
    ----------
    fn : callable
    {check_finite}

    Examples
    --------
    >>> import numpy as np, graphc
    >>> @graphc.compile
    ... def f(x):
    ...     return np.tanh(x) * 2.0
    >>> float(f(np.float64(0.5)))
    0.9242343145200195
    >>> print(next(line for line in f.source(0.5).splitlines() if "return" in line))
        return mul
    >>> @graphc.compile(check_finite=True)
    ... def g(x):
    ...     y = np.log(x)
    ...     return y * 2.0
    >>> with np.errstate(divide="ignore"):   # NumPy's own warning, not needed here
    ...     g(np.array([1.0, 0.0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    graphc.errors.NonFiniteError: ...: g: y = np.log(x) became -inf (in 1 of 2 elements), ...
    """
    if fn is None:
        return functools.partial(compile, check_finite=check_finite, cache_size=cache_size)
    return _make(fn, "compile", cache_size=cache_size, check_finite=check_finite)


compile.__doc__ = compile.__doc__.replace("{check_finite}", _CHECK_FINITE_DOC)


def grad(fn, argnums=0, has_aux=False, *, check_finite=False, cache_size=DEFAULT_CACHE_SIZE):
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
    {check_finite}

    Examples
    --------
    >>> import numpy as np, graphc
    >>> df = graphc.grad(lambda x: np.sum(x ** 2))
    >>> df(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    return _make(fn, "grad", argnums, has_aux, cache_size=cache_size, check_finite=check_finite)


grad.__doc__ = grad.__doc__.replace("{check_finite}", _CHECK_FINITE_DOC)


def value_and_grad(fn, argnums=0, has_aux=False, *, check_finite=False,
                   cache_size=DEFAULT_CACHE_SIZE):
    """Like :func:`grad` but returns ``(value, grads)``.

    Parameters
    ----------
    fn, argnums, has_aux
        As for :func:`grad`.
    {check_finite}

    Examples
    --------
    >>> import numpy as np, graphc
    >>> value, g = graphc.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(value), g
    (5.0, array([2., 4.]))
    """
    return _make(fn, "value_and_grad", argnums, has_aux, cache_size=cache_size,
                 check_finite=check_finite)


value_and_grad.__doc__ = value_and_grad.__doc__.replace("{check_finite}", _CHECK_FINITE_DOC)


def export(fn, *args, path, overwrite=False, **kwargs) -> pathlib.Path:
    """Write the generated module for ``fn`` at this signature to ``path``.

    The file imports only NumPy and defines one function: ``f`` for
    ``compile(f)`` (or a plain ``f``), ``f_grad`` for ``grad(f)`` and
    ``f_value_and_grad`` for ``value_and_grad(f)``.  An existing file is never
    replaced unless ``overwrite=True`` (even one graphc wrote earlier), and a
    symbolic link, directory, FIFO or device is never replaced.  The file is
    written whole or not at all (a fresh ``O_EXCL`` temporary file, then a
    rename); see docs/threat-model.md.

    Raises
    ------
    graphc.errors.ExportError
        ``path`` exists and ``overwrite`` is not true, is a directory, link,
        FIFO or device, or cannot be written.
    graphc.errors.SignatureError, graphc.errors.OptionError
        ``path`` is not a str or path-like (``None``, bytes), or holds a NUL.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> def f(x):
    ...     return np.sum(x ** 2)
    >>> path = graphc.export(graphc.grad(f), np.ones(3), path=os.path.join(tempfile.mkdtemp(), "f_grad.py"))
    >>> "def f_grad(x):" in path.read_text()
    True
    >>> graphc.export(graphc.grad(f), np.ones(3), path=path, overwrite=True) == path
    True
    """
    from ._files import check_path, check_target, write_atomic
    where = errors.user_where()
    path = check_path(path, "graphc.export", where=where)
    # Refuse an existing target before tracing (cheap, and the usual mistake);
    # write_atomic checks again, atomically, when it writes.
    check_target(path, overwrite, "graphc.export", where=where)
    compiled = fn if isinstance(fn, Compiled) else Compiled(fn, "compile")
    source = compiled.source(*args, **kwargs)
    write_atomic(path, source, overwrite=overwrite, what="graphc.export", where=where)
    return path


def _check_call_kwargs(fn_or_graph, kwargs, draw_options) -> None:
    """OptionError for a keyword of render that is neither a drawing option nor the function's."""
    if not kwargs:
        return
    name = next(iter(kwargs))
    hint = ("drawing options are " + ", ".join(f"{k}=" for k in draw_options)
            + "; any other keyword is passed to your function")
    if isinstance(fn_or_graph, Graph):
        raise OptionError(f"graphc.render: {name}= is not a drawing option (and a Graph takes "
                          "no function arguments)", hint=hint)
    try:
        params = inspect.signature(fn_or_graph).parameters.values()
    except (TypeError, ValueError):
        return   # no signature to check against: let the call decide
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in kwargs:
        if name not in accepted:
            fname = getattr(fn_or_graph, "__name__", "the function")
            raise OptionError(f"graphc.render: {name}= is not a drawing option, and {fname}() "
                              f"has no parameter {name!r}", hint=hint)


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
    >>> sorted({g[n].scope for n in g} - {None})
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
        Drawing options (``collapse=``, ``flops=``, ``legend=``, ``rankdir=``)
        and, for a function, keyword arguments of the call.

    Raises
    ------
    graphc.errors.OptionError
        A drawing option with a value it does not take (``rankdir="XX"``), or
        a keyword that is neither a drawing option nor a parameter of the
        function.

    Examples
    --------
    >>> import numpy as np, graphc, tempfile, os
    >>> out = graphc.render(lambda x: np.sum(np.exp(x) * x), np.ones(3),
    ...                     path=os.path.join(tempfile.mkdtemp(), "f.dot"), backward=True)
    >>> "cluster_backward" in out.read_text()
    True
    """
    from ._files import check_path
    from .draw import DRAW_OPTIONS, _check_options
    path = check_path(path, "graphc.render")
    draw_opts = {k: kwargs.pop(k) for k in ("collapse", "flops", "legend", "rankdir") if k in kwargs}
    _check_options(backward=backward, **draw_opts)
    _check_call_kwargs(fn_or_graph, kwargs, DRAW_OPTIONS)
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
