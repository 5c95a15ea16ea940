"""Turning a user function into a Graph: inputs, closures, globals, results.

:func:`trace_into` binds the example arguments to the function's parameters,
makes one graph input per array leaf (and per closed-over or global NumPy
array the function reads, see :func:`live`), runs a body inside the open
trace and checks what comes back.  :class:`Spec` is the placeholder for an
input without data.
"""
from __future__ import annotations

import inspect
import keyword
import types

import numpy as np

from . import errors, gc_pause, naming
from .errors import UnsupportedError
from .ir import Graph
from .primitive import Aval
from .pytree import flatten, unflatten
from .signature import Signature, from_function, leaf_name
from .avals import aval_of, check_dtype
from .tracing import Trace, current_trace


class Spec:
    """A placeholder argument: trace a function without data.

    Parameters
    ----------
    shape : tuple of int or str
        Sizes; a string names a dimension (``("n", 784)``): the code a compiled
        function's ``.source()`` or :func:`graphc.export` then writes serves
        every size of it, read from the arguments at entry (docs/guide.md,
        "Symbolic dimensions").
    dtype : str or numpy dtype, default ``"float64"``

    Examples
    --------
    >>> import numpy as np, graphc
    >>> g = graphc.trace(lambda x: np.tanh(x).sum(), graphc.Spec((64, 10), "float32"))
    >>> g[g.outputs[0]].dtype
    dtype('float32')
    >>> src = graphc.grad(lambda x: (x ** 2).mean()).source(graphc.Spec(("n", 3)))
    >>> [line.split("#")[0].strip() for line in src.splitlines() if " = _dim(" in line or "(1 /" in line]
    ['n = _dim(x, 0)', 'd_x = (1 / (n * 3)) * (2 * x)']
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
        if isinstance(d, str) and dims is shape:   # a named dimension (symbolic_dims.py)
            if not d.isidentifier() or keyword.iskeyword(d) or d.startswith("_"):
                raise errors.SignatureError(
                    f"graphc.Spec dimension name {d!r:.40} is not a plain Python name",
                    hint='name dimensions like variables: graphc.Spec(("n", 784)), '
                         '("batch", "h", "w")')
            continue
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise errors.SignatureError(
                f"graphc.Spec shape must be an int or a tuple of ints (or dimension names), "
                f"got {shape!r:.60}",
                hint='e.g. graphc.Spec((64, 10), "float32") or graphc.Spec(("n", 10)); a '
                     'scalar is graphc.Spec(())')
        if d < 0:
            raise errors.ShapeError(f"graphc.Spec shape {tuple(dims)} has a "
                                    "negative dimension", hint="dimensions are sizes, >= 0")
    return tuple(d if isinstance(d, str) else int(d) for d in dims)


def _spec_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise UnsupportedError(f"graphc.Spec dtype {dtype!r:.40} is not a NumPy dtype",
                               hint='use a dtype name such as "float32", "float64", "int64" '
                                    'or "bool", or np.float32') from None
    return check_dtype(dt, "Spec")


def _leaf_aval(x):
    if isinstance(x, Spec):
        if any(isinstance(d, str) for d in x.shape):
            raise errors.SignatureError(
                f"{x!r} has named dimensions, which only compiled functions accept",
                hint="use graphc.compile(f).source(spec), graphc.grad(f).source(spec) or "
                     "graphc.export(...) with named dimensions; graphc.trace, render and "
                     "check need concrete sizes")
        return Aval(x.shape, x.dtype, False)
    return aval_of(x)


def def_where(fn):
    try:
        code = inspect.unwrap(fn).__code__
        return errors.where_text(code.co_filename, code.co_firstlineno)
    except AttributeError:
        return None


def function_name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def call_parts(params, values):
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


def trace_into(fn, args, kwargs, body, share_constants=False):
    """Trace ``body`` on fresh inputs for ``fn``'s arguments; return the Graph.

    ``body(call_args, call_kwargs)`` runs inside the active trace and returns
    the result pytree.  On any error the trace is closed and nothing is kept.
    ``share_constants``: CSE will run on the graph; the backward pass may reuse
    its scalar constants at once (graphc/const_share.py).
    """
    params, values = from_function(fn, args, kwargs)
    leaves, tdef, paths = flatten(tuple(values))
    # fn.__name__ is user-controlled text; the graph's name appears in generated
    # comments and docstrings, so it is made one-line and quote-free.
    fn_name = naming.display(function_name(fn))
    g = Graph(fn_name)
    sig = Signature(fn_name=fn_name, params=params, arg_treedefs=tdef, leaf_paths=list(paths))
    g.signature = sig
    where = def_where(fn)
    avals = [_input_aval(x, sig, p, where) for x, p in zip(leaves, paths)]
    t = Trace(g)
    t.top_code = getattr(inspect.unwrap(fn), "__code__", None)
    t.shared_consts = {} if share_constants else None
    t.top_body = body if share_constants else None     # (graphc/transforms.py: the last backward pass)
    try:
        with t.activate():
            tracers = [t.tracer(g.add_input(a, name=leaf_name(sig, p), where=where))
                       for a, p in zip(avals, paths)]
            # the concrete argument leaves, read by guards (graphc/guards.py); none for Specs
            t.leaves = {x.node: v for x, v in zip(tracers, leaves) if not isinstance(v, Spec)}
            call_args, call_kwargs = call_parts(params, unflatten(tdef, tracers))
            result = body(call_args, call_kwargs)
            out_leaves, out_tdef, _ = flatten(result)
            g.outputs = [t.lift(x).node for x in out_leaves]
    except BaseException as e:
        # Tracers kept by the user (a global, a list) must now report that
        # they escaped, not pretend to belong to a live trace.
        t.active = False
        t.leaves, t.concrete, t.depends = None, {}, {}     # the values guards read
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


def live(fn):
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


def gc_paused():
    """Pause Python's cyclic garbage collector while a graph is built
    (graphc/gc_pause.py: on success the survivors go to the oldest generation)."""
    return gc_pause.paused()
