"""Traced values and the trace they record into.

A :class:`Tracer` stands for an array while a function is traced.  Python
operators and NumPy's dispatch protocols (``__array_ufunc__``,
``__array_function__``) turn every operation on it into a node of the active
:class:`Trace`'s graph.  The user's local variable names are captured from
their frames as they return (``sys.setprofile``), and every node records the
user's ``file.py:LINE``.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import numpy as np

from . import errors, rewrites
from .errors import (ControlFlowError, EscapedTracerError, InPlaceError, UnsupportedError)
from .ir import Graph
from .primitive import Aval, plain_params

__all__ = ["Tracer", "Trace", "bind", "current_trace", "aval_of"]

_state = threading.local()

SUPPORTED_KINDS = "biuf"


def _stack():
    s = getattr(_state, "stack", None)
    if s is None:
        s = _state.stack = []
    return s


def current_trace():
    s = _stack()
    return s[-1] if s else None


def check_dtype(dtype, what="value"):
    dtype = np.dtype(dtype)
    if dtype.kind not in SUPPORTED_KINDS:
        raise UnsupportedError(
            f"graphc cannot trace a {what} of dtype {dtype}",
            hint="use a real floating, integer or boolean NumPy dtype "
                 "(complex, object and string arrays are not supported)")
    return dtype


def aval_of(x) -> Aval:
    """The abstract value of a concrete input (NumPy array/scalar or Python number)."""
    if isinstance(x, Tracer):
        return x.aval
    if isinstance(x, np.generic):  # NumPy scalars are strong (NEP 50), even np.float64
        return Aval((), check_dtype(x.dtype), False)
    if isinstance(x, bool):
        return Aval((), np.dtype(bool), True)
    if isinstance(x, int):
        return Aval((), np.dtype(np.int64), True)
    if isinstance(x, float):
        return Aval((), np.dtype(np.float64), True)
    if isinstance(x, complex):
        check_dtype(np.complex128)
    arr = np.asarray(x)
    return Aval(arr.shape, check_dtype(arr.dtype), False)


class Trace:
    """An open recording: new operations on its tracers become graph nodes."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.attrs = {"section": "forward"}   # extra attributes stamped on new nodes
        self.names = {}                       # node id -> (frame depth, user name)
        self.active = True
        self.top_code = None                  # the traced function's own code object

    # --- values ------------------------------------------------------------
    def tracer(self, nid: int) -> "Tracer":
        g = self.graph.nx.nodes[nid]
        return Tracer(self, nid, Aval(g["shape"], g["dtype"], g["weak"]))

    def lift(self, x) -> "Tracer":
        """Make a constant node for a non-traced value used with tracers."""
        if isinstance(x, Tracer):
            if x._trace is not self:
                raise foreign_tracer_error(x)
            return x
        aval = aval_of(x)
        if aval.weak:
            nid = self.graph.add_const(x, weak=True, **self._const_attrs())
        else:
            nid = self.graph.add_const(np.asarray(x), **self._const_attrs())
        return self.tracer(nid)

    def _const_attrs(self):
        return {k: v for k, v in self.attrs.items() if k in ("section", "grad_of")}

    @contextmanager
    def context(self, **attrs):
        """Stamp ``attrs`` on the nodes created inside the block."""
        old = self.attrs
        self.attrs = {**old, **attrs}
        try:
            yield
        finally:
            self.attrs = old

    # --- activation and name capture ---------------------------------------
    @contextmanager
    def activate(self, capture_names=True):
        stack = _stack()
        stack.append(self)
        # Name capture borrows the profile hook; when a profiler (cProfile,
        # a debugger) already holds it, leave it alone and fall back to op names.
        capture_names = capture_names and sys.getprofile() is None
        if capture_names:
            sys.setprofile(self._profile)
        try:
            yield self
        finally:
            if capture_names:
                sys.setprofile(None)
            stack.pop()

    def _profile(self, frame, event, arg):
        if event != "return":
            return
        code = frame.f_code
        internal = _INTERNAL_CODE.get(code)
        if internal is None:
            if len(_INTERNAL_CODE) >= _INTERNAL_CODE_LIMIT:
                _INTERNAL_CODE.clear()    # a cache of code objects, which it keeps alive
            internal = _INTERNAL_CODE[code] = errors._is_internal(code.co_filename) \
                or code.co_name.startswith("<") and code.co_name != "<lambda>"
        if internal:
            return
        depth = 0
        f = frame.f_back
        while f is not None:
            depth += 1
            f = f.f_back
        for name, value in frame.f_locals.items():
            if isinstance(value, Tracer) and value._trace is self and not name.startswith("_"):
                self.note_name(value.node, name, depth)
        if isinstance(arg, Tracer) and arg._trace is self and code is not self.top_code:
            self.note_name(arg.node, code.co_name, depth + 0.5)

    def note_name(self, nid, name, depth):
        prev = self.names.get(nid)
        if prev is None or depth < prev[0]:
            self.names[nid] = (depth, name)

    def finish(self):
        """Write captured names onto nodes that have none, and close the trace."""
        for nid, (_, name) in self.names.items():
            if nid in self.graph.nx and self.graph.nx.nodes[nid]["name"] is None:
                self.graph.nx.nodes[nid]["name"] = name
        self.active = False


_INTERNAL_CODE: dict = {}
_INTERNAL_CODE_LIMIT = 1024   # code objects remembered by the profile hook (bounded: no leak)


def foreign_tracer_error(x: "Tracer") -> EscapedTracerError:
    """The error for a traced value used outside the trace that owns it.

    Three situations, told apart so the message names the real mistake: the
    value outlived its trace (kept in a global, a list, an attribute); a
    function compiled separately inside a traced function closes over a value
    of the enclosing trace; or the trace belongs to another thread.
    """
    t = x._trace
    desc = x._desc()
    origin = t.graph.nx.nodes.get(x.node, {}).get("where")
    made = f", created at {origin}," if origin else ""
    if not t.active:
        return EscapedTracerError(
            f"a traced value ({desc}){made} was used after the traced function that produced "
            "it returned: it escaped its trace (stored in a global, a list, an attribute or a "
            "closure)",
            hint="return the value from the traced function (or pass it in as an argument) "
                 "instead of keeping it; traced values only exist while graphc traces")
    if t in _stack():
        return EscapedTracerError(
            f"a function that graphc compiles separately uses a traced value ({desc}){made} of "
            "the enclosing trace: graphc.grad/value_and_grad/compile was called on concrete "
            "arrays inside a traced function, and the inner function closes over a traced value",
            hint="pass the traced value to the inner function as an argument, e.g. "
                 "graphc.grad(inner, argnums=0)(y, x) instead of closing over x, so it is "
                 "traced together with the enclosing function")
    return EscapedTracerError(
        f"a traced value ({desc}){made} belongs to a trace running in another thread",
        hint="tracing state is per thread: compute the value in this thread, or pass "
             "concrete arrays between threads")


def bind(prim, args, params):
    """Apply primitive ``prim``: record a node while tracing, else evaluate."""
    params = plain_params(prim, params)    # no user object's repr ever becomes code
    trace = None
    for a in args:
        if isinstance(a, Tracer):
            trace = a._trace
            break
    if trace is None:
        vals = [a if isinstance(a, (int, float, bool)) else np.asarray(a) for a in args]
        return prim.impl(params)(*vals)
    if not trace.active or current_trace() is not trace:
        raise foreign_tracer_error(next(a for a in args if isinstance(a, Tracer)))
    tracers = [trace.lift(a) for a in args]
    if (stable := rewrites.rewrite(prim, tracers, params)) is not None:  # graphc/rewrites.py
        return stable
    g = trace.graph
    avals = [t.aval for t in tracers]
    aval = prim.shape(*avals, **params)
    nids = [t.node for t in tracers]
    where = trace.attrs.get("where") or errors.user_where(2)
    if all(g.nx.nodes[n]["op"] == "const" for n in nids) and prim.vjp is not None \
            and aval.size <= _FOLD_LIMIT:
        # Constant folding at build time keeps rule-generated graphs small
        # (`y - 1` for a constant exponent becomes one literal).  Only results
        # that print small (scalars, uniform arrays as np.full): folding
        # anything else would bake a large array into the code.
        value = prim.impl(params)(*[g.nx.nodes[n]["value"] for n in nids])
        if aval.size <= 1 or _uniform(value):
            if aval.weak:
                value = value.item() if hasattr(value, "item") else value
            nid = g.add_const(value if aval.weak else np.array(value, dtype=aval.dtype),
                              weak=aval.weak, where=where, **trace._const_attrs())
            return trace.tracer(nid)
    same = _unit_operand(prim, g, nids, aval)
    if same is not None:
        return tracers[same]
    attrs = {k: v for k, v in trace.attrs.items() if k != "where"}
    nid = g.add_node(prim.name, nids, aval, params=params, where=where, **attrs)
    return trace.tracer(nid)


_FOLD_LIMIT = 1 << 20


def _uniform(value) -> bool:
    flat = np.asarray(value).ravel()
    return flat.size > 0 and bool(np.all(flat == flat[0]))


def _unit_operand(prim, g, nids, aval):
    """Index of the operand ``x`` when the op is ``x * 1``, ``x + 0``, ``x / 1`` ..."""
    for i, unit in enumerate(prim.units):
        if unit is None:
            continue
        node = g.nx.nodes[nids[i]]
        if node["op"] != "const":
            continue
        value = node["value"]
        # a scalar, or a uniform array (a folded broadcast of the seed: np.ones(...))
        if np.ndim(value) == 0:
            if value != unit:
                continue
        elif np.size(value) > _FOLD_LIMIT or not _uniform(value) or np.ravel(value)[0] != unit:
            continue
        other = g.nx.nodes[nids[1 - i]]
        if other["shape"] == aval.shape and other["dtype"] == aval.dtype and other["weak"] == aval.weak:
            return 1 - i
    return None


class Tracer:
    """A value being traced.  Behaves like a NumPy array of fixed shape and dtype."""

    __slots__ = ("_trace", "node", "aval")
    __array_priority__ = 1000

    def __init__(self, trace, node, aval):
        self._trace = trace
        self.node = node
        self.aval = aval

    # --- array-like attributes ------------------------------------------------
    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: self.aval.ndim)
    size = property(lambda self: self.aval.size)

    @property
    def T(self):
        return self.transpose()

    def __len__(self):
        if not self.shape:
            raise UnsupportedError("len() of a 0-d traced value", hint="0-d values have no length")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise UnsupportedError("iteration over a 0-d traced value")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        g = self._trace.graph.nx.nodes.get(self.node, {})
        name = g.get("name") or g.get("op", "?")
        return f"<traced {name}: {self.aval.short()}>"

    # --- things that need a concrete value --------------------------------------
    def _concrete(self, what):
        if not self._trace.active:
            raise foreign_tracer_error(self)
        raise ControlFlowError(
            f"{what} needs the concrete value of a traced array ({self._desc()}), "
            "which is not known while graphc traces the function",
            hint="use np.where(cond, a, b) instead of if/else on array values, pass the value "
                 "as a static Python int/bool argument, or loop over a static shape "
                 "(range(x.shape[0])) instead of a value")

    def _desc(self):
        g = self._trace.graph.nx.nodes.get(self.node, {})
        name = g.get("name")
        return f"{name + ': ' if name else ''}{self.aval.short()}"

    def __bool__(self):
        self._concrete("Python control flow (if/while/and/or/not) or bool()")

    def __float__(self):
        self._concrete("float()")

    def __int__(self):
        self._concrete("int()")

    def __index__(self):
        self._concrete("using a traced value as a Python index (int)")

    def __complex__(self):
        self._concrete("complex()")

    def __array__(self, dtype=None, copy=None):
        if not self._trace.active:
            raise foreign_tracer_error(self)
        raise UnsupportedError(
            f"a traced value ({self._desc()}) was converted to a concrete NumPy array; "
            "this happens in NumPy functions graphc does not support, np.asarray(), "
            "or when indexing a NumPy array with a traced index",
            hint="use the NumPy functions graphc supports (API.md section 1); to index a NumPy "
                 "array with a traced index, pass the array as an argument so table[idx] is traced")

    def __setitem__(self, key, value):
        raise InPlaceError(
            "assignment into a traced array (x[i] = ...) is not supported: traced arrays "
            "are immutable",
            hint="build the new array instead: np.where(mask, new, x) or np.concatenate([...])")

    def __hash__(self):
        return id(self)

    # --- NumPy protocols and operators: see numpy_api ---------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_api import array_ufunc
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_api import array_function
        return array_function(func, args, kwargs)


def _install_operators():
    from . import numpy_api as napi
    from .primitive import Primitive
    for name, fn in napi.TRACER_METHODS.items():
        if isinstance(fn, Primitive):  # records are not descriptors: bind `self` explicitly
            fn = (lambda p: lambda self, *a: p(self, *a))(fn)
        setattr(Tracer, name, fn)


_install_operators()
