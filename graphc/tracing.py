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

from . import errors, name_pause, rewrites
from .errors import (ControlFlowError, EscapedTracerError, UnsupportedError)
from .ir import Graph, Node
from .numpy_misuse import concrete_array_error, index_into_numpy_error, store_into_numpy_error
from .avals import Traced, aval_of, big_ints_as_floats as _big_ints_as_floats
from .primitive import Aval, Primitive, plain_params, set_binder
from .random_watch import RandomWatch
from .const_share import shared_const
from .folding import fold_constants, unit_operand as _unit_operand
from .trace_stamp import Stamp
from .tracer_escape import escaped_error
from .user_code import INTERNAL_CODE, USER_CODE, attribute_error, is_internal_code, is_user_code

__all__ = ["Tracer", "Trace", "bind", "current_trace"]

_state = threading.local()

def _stack():
    s = getattr(_state, "stack", None)
    if s is None:
        s = _state.stack = []
    return s


def current_trace():
    s = _stack()
    return s[-1] if s else None


class Trace:
    """An open recording: new operations on its tracers become graph nodes."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.attrs = {"section": "forward"}   # extra attributes stamped on new nodes
        self.shared_consts = None             # {key: const node}: graphc/const_share.py
        self.names = {}                       # node id -> (frame depth, user name)
        self.active = True
        self.top_code = None                  # the traced function's own code object
        self.swallowed = None                 # last graphc error raised where NumPy may swallow it
        # Guards (graphc/guards.py): argument leaves {input: value}, values computed so far,
        # differentiated inputs and what depends on them, decisions {(node, kind): value};
        # nodes per user line and whether the unrolled-loop hint was given.
        self.leaves = None
        self.concrete = {}
        self.wrt = set()
        self.depends = {}
        self.guarded = {}
        self.line_nodes = {}
        self.unroll_warned = False
        self.jvp_levels = []                  # open forward-mode levels (graphc/forward.py)
        self.parent = None                    # the enclosing trace of a loop/branch body

    def adopt(self, x) -> "Tracer":
        """A tracer of another trace used here: an error, except in a body trace
        (graphc/control), which captures values of its enclosing traces as inputs."""
        raise foreign_tracer_error(x)

    def encloses(self, other) -> bool:
        """``other`` is this trace or a body trace nested inside it."""
        while other is not None:
            if other is self:
                return True
            other = other.parent
        return False

    # --- values ------------------------------------------------------------
    def tracer(self, nid: int) -> "Tracer":
        g = self.graph[nid]
        return Tracer(self, nid, g.aval)

    def lift(self, x) -> "Tracer":
        """Make a constant node for a non-traced value used with tracers."""
        if isinstance(x, Tracer):
            if x._trace is not self:
                return self.adopt(x)
            if x._view is not None:       # a view: refuse it once a write made it stale
                x._view.check()
            return x
        aval = aval_of(x)
        if self.shared_consts is not None and not aval.shape \
                and self.attrs.get("section") in ("forward", "backward"):
            return self.tracer(shared_const(self, x, aval))     # (graphc/const_share.py)
        if aval.weak:
            nid = self.graph.add_const(x, weak=True, **self._const_attrs())
        else:
            nid = self.graph.add_const(np.asarray(x), **self._const_attrs())
        return self.tracer(nid)

    def _const_attrs(self):
        return {k: v for k, v in self.attrs.items() if k in ("section", "grad_of")}

    def context(self, **attrs):
        """Stamp ``attrs`` on the nodes created inside the block."""
        return Stamp(self, attrs)       # (a plain class: entered once per backward node)

    # --- activation and name capture ---------------------------------------
    @contextmanager
    def activate(self, capture_names=True):
        stack = _stack()
        stack.append(self)
        for enter, _ in _ACTIVATION_HOOKS:
            enter()
        # Name capture borrows the profile hook; when a profiler (cProfile,
        # a debugger) already holds it, leave it alone and fall back to op names.
        capture_names = capture_names and sys.getprofile() is None
        self.random_watch = RandomWatch()
        if capture_names:
            sys.setprofile(self._profile)
        finished = False
        try:
            yield self
            finished = True
        finally:
            if capture_names:
                sys.setprofile(None)
            stack.pop()
            for _, leave in _ACTIVATION_HOOKS:
                leave()
        if finished:
            self.random_watch.check(self.top_code)

    def _profile(self, frame, event, arg):
        if event == "call":
            # random generators the user's code can reach (see RandomWatch)
            user = USER_CODE.get(frame.f_code)      # (the caches inline: a hot path)
            if user is None:
                user = is_user_code(frame.f_code)
            if user:
                self.random_watch.scan(frame)
            return
        if event != "return":
            return
        code = frame.f_code
        internal = INTERNAL_CODE.get(code)
        if internal is None:
            internal = is_internal_code(code)
        if internal:
            return
        depth = 0
        f = frame.f_back
        while f is not None:
            depth += 1
            f = f.f_back
        for name, value in frame.f_locals.items():
            if isinstance(value, Tracer) and not name.startswith("_") and (
                    value._trace is self or value._trace.active and self.encloses(value._trace)):
                value._trace.note_name(value.node, name, depth)   # a body trace's too
        if isinstance(arg, Tracer) and arg._trace is self and code is not self.top_code:
            self.note_name(arg.node, code.co_name, depth + 0.5)

    def note_name(self, nid, name, depth):
        prev = self.names.get(nid)
        if prev is None or depth < prev[0]:
            self.names[nid] = (depth, name)

    def finish(self):
        """Write captured names onto nodes that have none, and close the trace."""
        for nid, (_, name) in self.names.items():
            if nid in self.graph and self.graph[nid].name is None:
                self.graph[nid].name = name
        self.active = False
        self.leaves, self.concrete, self.depends = None, {}, {}   # (a kept tracer keeps us)


name_pause.PROFILE_HOOKS.add(Trace._profile)

def foreign_tracer_error(x: "Tracer") -> EscapedTracerError:
    """The error for a traced value used outside the trace that owns it
    (graphc/tracer_escape.py tells the three situations apart)."""
    return escaped_error(x, x._trace in _stack())


def _raise_misuse(x: "Tracer", err):
    if err is not None:
        raise _swallowable(x, err)


def _swallowable(x: "Tracer", err):
    """Remember ``err`` on the trace: NumPy swallows errors raised by ``__float__``
    and ``__array__`` (``buf[0] = x``) and raises its own ValueError instead;
    ``capture.trace_into`` puts graphc's error back."""
    x._trace.swallowed = err
    return err


# {primitive name: track(out, args, params)}: graphc.updates marks the results of
# view-making primitives (basic indexing, reshape, transpose) as views of their input.
VIEW_TRACKERS: dict = {}


def bind(prim, args, params):
    """Apply primitive ``prim``: record a node while tracing, else evaluate."""
    # Under the name hook every Python call and return, and every C call, until the hook
    # is paused is a call of Trace._profile: only attribute reads and subscripts here.
    hook = sys.getprofile()
    if hook is not None:
        try:                     # (name_pause.quiet's test, inline)
            quiet = hook.__func__ in name_pause.PROFILE_HOOKS and name_pause.INTERNAL[prim]
        except (AttributeError, KeyError):
            quiet = name_pause.names_hook() is not None and name_pause.internal_rules(prim)
        if quiet:
            sys.setprofile(None)
            try:
                out = _recorded(prim, args, params)
            finally:
                sys.setprofile(hook)
        else:
            out = _recorded(prim, args, params)
    else:
        out = _recorded(prim, args, params)
    if out.__class__ is Tracer and out._trace.jvp_levels:
        AFTER_BIND["jvp"](out)            # forward mode: the tangent of the new value
    return out


def _recorded(prim, args, params):
    out = _record(prim, args, params)
    if isinstance(out, Tracer):
        track = VIEW_TRACKERS.get(prim.name)
        if track is not None:
            track(out, args, params)
    return out


# graphc/forward.py installs "jvp": fn(out) computing the tangents of a new value.
AFTER_BIND: dict = {}


def _record(prim, args, params):
    params = plain_params(prim, params) if params else {}  # no user object's repr becomes code
    trace = None
    for a in args:
        if isinstance(a, Tracer):
            trace = a._trace
            break
    if trace is None:
        vals = [a if isinstance(a, (int, float, bool)) else np.asarray(a) for a in args]
        return prim.impl(params)(*vals)
    stack = getattr(_state, "stack", None)          # (current_trace(), inline)
    cur = stack[-1] if stack else None
    if cur is not trace and trace.active and cur is not None and trace.encloses(cur):
        trace = cur                  # a loop body using an enclosing value: captured (lift)
    if not trace.active or cur is not trace:
        raise foreign_tracer_error(next(a for a in args if isinstance(a, Tracer)))
    # (a tracer of this trace that is no view is its own lift: the common case, inline)
    for a in args:
        if type(a) is not Tracer or a._trace is not trace or a._view is not None:
            tracers = [a if type(a) is Tracer and a._trace is trace and a._view is None
                       else trace.lift(a) for a in _big_ints_as_floats(args)]
            break
    else:
        tracers = args                # (all tracers: no int to widen, nothing to lift)
    if prim.name in rewrites.RULES and \
            (stable := rewrites.rewrite(prim, tracers, params)) is not None:  # graphc/rewrites.py
        # a new object even when it is an input's node: a later write into it
        # (graphc.updates) must not change the input
        return trace.tracer(stable.node) if any(stable is t for t in tracers) else stable
    g = trace.graph
    avals = [t.aval for t in tracers]
    aval = prim.shape(*avals, **params)
    nids = tuple([t.node for t in tracers])
    where = trace.attrs.get("where") or errors.user_where(2)
    nodes = g.node_map()
    for n in nids:                 # (all constants? a plain loop: the common answer is no)
        if nodes[n].op != "const":
            break
    else:
        if prim.differentiable and (folded := fold_constants(trace, prim, params, nids,
                                                             aval, where)) is not None:
            return folded
    same = _unit_operand(prim, g, nids, aval) if prim.identities else None
    if same is not None:           # x * 1: x's node, in a new object (writes must not alias)
        return trace.tracer(tracers[same].node)
    return _new_node(trace, prim.name, nids, aval, params, where)


def _new_node(trace, op, nids, aval, params, where):
    """``trace.graph.add_node(op, nids, aval, params=params, where=where, **trace.attrs)``
    and its tracer: the Node made positionally, the trace's attributes set on it."""
    if not (type(aval) is Aval and type(aval.shape) is tuple and isinstance(aval.dtype, np.dtype)):
        aval = Aval(tuple(aval.shape), np.dtype(aval.dtype), aval.weak)   # (as add_node)
    node = Node(op, nids, aval, dict(params) if params else params)   # (its own params dict)
    attrs = trace.attrs
    for k, v in attrs.items():
        setattr(node, k, v)
    node.where = where
    nid = trace.graph.insert(node)
    if attrs.get("section") == "forward":
        n = trace.line_nodes.get(where, 0) + 1
        trace.line_nodes[where] = n
        if n == UNROLL_NODES and where is not None and not trace.unroll_warned:
            trace.unroll_warned = True
            errors.warn_unrolled(where, n)
    return Tracer(trace, nid, aval)     # (trace.tracer(nid), inline)


# Set by graphc.symdims (probing named dimensions): the shape the user's code reads.
SHAPE_HOOK = [None]

# One user line making this many forward nodes in one trace is a Python loop unrolled:
# warn once (graphc.scan / graphc.fori_loop keep it rolled).
UNROLL_NODES = 2000


class Tracer(Traced):
    """A value being traced.  Behaves like a NumPy array of fixed shape and dtype."""

    # _view: a graphc.updates.View when this value is a view of another traced array;
    # _buf: the graphc.updates.Buffer that tracks views of this one (both None until used).
    # A write (x[i] = v, graphc.updates) points ``node`` at the updated value.
    __slots__ = ("_trace", "node", "aval", "_view", "_buf", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, trace, node, aval):
        self._trace = trace
        self.node = node
        self.aval = aval
        self._view = None
        self._buf = None

    # --- array-like attributes ------------------------------------------------
    @property
    def shape(self):
        # graphc.symdims: while a symbolic signature is probed, the user's code reads
        # named dimensions as ints that carry their SymPy expression
        hook = SHAPE_HOOK[0]
        return self.aval.shape if hook is None else hook(self.aval.shape)

    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: self.aval.ndim)

    @property
    def size(self):
        hook = SHAPE_HOOK[0]
        return self.aval.size if hook is None else hook(self.aval.shape, "size")

    @property
    def T(self):
        return self.transpose()

    def __len__(self):
        if not self.shape:
            raise UnsupportedError("len() of a 0-d traced value", hint="0-d values have no length")
        if SHAPE_HOOK[0] is not None:
            SHAPE_HOOK[0](self.aval.shape, "len")
        return self.aval.shape[0]

    def __iter__(self):
        if not self.shape:
            raise UnsupportedError("iteration over a 0-d traced value")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        g = self._trace.graph
        name = (g[self.node].name or g[self.node].op) if self.node in g else "?"
        return f"<traced {name}: {self.aval.short()}>"

    # --- things that need a concrete value --------------------------------------
    def _concrete(self, what, store=True):
        if not self._trace.active:
            raise foreign_tracer_error(self)
        if store:
            _raise_misuse(self, store_into_numpy_error(self))
        raise _swallowable(self, ControlFlowError(
            f"{what} needs the concrete value of a traced array ({self._desc()}), "
            "which is not known while graphc traces the function",
            hint="use np.where(cond, a, b) instead of if/else on array values, pass the value "
                 "as a static Python int/bool argument, or loop over a static shape "
                 "(range(x.shape[0])) instead of a value"))

    def _desc(self):
        g = self._trace.graph
        name = g[self.node].name if self.node in g else None
        return f"{name + ': ' if name else ''}{self.aval.short()}"

    def __bool__(self):
        self._concrete("Python control flow (if/while/and/or/not) or bool()")

    def __float__(self):
        self._concrete("float()")

    def __int__(self):
        self._concrete("int()")

    def __index__(self):
        self._concrete("using a traced value as a Python index (int)", store=False)

    def __complex__(self):
        self._concrete("complex()")

    def __array__(self, dtype=None, copy=None):
        if not self._trace.active:
            raise foreign_tracer_error(self)
        _raise_misuse(self, store_into_numpy_error(self))
        _raise_misuse(self, index_into_numpy_error(self))
        raise _swallowable(self, concrete_array_error(self))

    def __format__(self, spec):
        if not spec:
            return repr(self)
        if not self._trace.active:
            raise foreign_tracer_error(self)
        raise ControlFlowError(
            f"formatting a traced value with {{:{spec}}} needs its concrete value "
            f"({self._desc()}), which is not known while graphc traces the function",
            hint="print the result after calling the function (or return the value and "
                 "format it then); while tracing, print(x.shape) or f\"{x}\" show what "
                 "is traced")

    # x[i] = v, x += v: graphc.updates installs the writes (functional updates).

    def __hash__(self):
        return id(self)

    # --- methods that need numbers (numpy_api installs those built from ops) ---
    def item(self, *args):
        self._not_a_number(".item()")

    def tolist(self):
        self._not_a_number(".tolist()")

    def _not_a_number(self, what):
        if not self._trace.active:
            raise foreign_tracer_error(self)
        raise ControlFlowError(
            f"{what} turns a traced array ({self._desc()}) into Python numbers, which needs "
            "its concrete value (and would cut the gradient)",
            hint="keep it an array: x[i] or x[()] is a traced element; compute Python numbers "
                 "outside the traced function, on its result")

    itemsize = property(lambda self: self.aval.dtype.itemsize)
    nbytes = property(lambda self: self.aval.size * self.aval.dtype.itemsize)

    def __getattr__(self, name):
        # Only reached for names the class lacks.  Protocol probes (NumPy asks
        # for __array_interface__, pickle for __getstate__ ...) get a plain,
        # cheap AttributeError.
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise attribute_error(self, name)

    # --- NumPy protocols and operators: see numpy_api ---------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _NUMPY["ufunc"](ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _NUMPY["function"](func, args, kwargs)


# (enter, leave) pairs run as a trace activates and ends: graphc/array_coercion.py's
# np.array of traced values, installed from above like NumPy's protocols.
_ACTIVATION_HOOKS: list = []


def install_activation_hook(enter, leave):
    """Run ``enter()`` as each trace activates and ``leave()`` as it ends (any thread)."""
    _ACTIVATION_HOOKS.append((enter, leave))


# graphc/numpy_api.py, above this module, maps NumPy onto primitives and installs
# itself here at import (graphc/__init__ imports it), so tracing never imports it.
_NUMPY: dict = {}


def install_numpy(array_ufunc, array_function, methods):
    """Install NumPy's dispatch protocols and the operators/methods of :class:`Tracer`."""
    _NUMPY["ufunc"], _NUMPY["function"] = array_ufunc, array_function
    for name, fn in methods.items():
        if isinstance(fn, Primitive):  # records are not descriptors: bind `self` explicitly
            fn = (lambda p: lambda self, *a: bind(p, (self, *a), {}))(fn)   # (= p(self, *a))
        setattr(Tracer, name, fn)


set_binder(bind)
