"""Compiled callables: the per-signature cache and the generated code it holds.

:class:`Compiled` is what ``graphc.compile``, ``graphc.grad`` and
``graphc.value_and_grad`` return.  A call computes a cache key from the
arguments' structure, shapes, dtypes and static values (:func:`key_of`); a
new key traces (:mod:`graphc.capture`), optimizes (:mod:`graphc.passes`) and
generates code (:mod:`graphc.codegen`) once.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import threading

import numpy as np

from . import codegen, errors, floats_call, loader, naming, symbolic_module
from .argnums import normalize_argnums
from .capture import Spec, def_where, function_name, gc_paused, live, trace_into
from .codegen_scalar import floats_only_variant
from .floats_call import NO_HOT, NOT_FLOATS
from .errors import OptionError, UnsupportedError
from .guard_paths import Paths, forget_source, guarded_entry
from .ir import Graph
from .passes import optimize
from .pickling import _cloudpickle_by_value, _global_name, _load_global
from .pytree import flatten, is_static
from .signature import Param, from_function
from .symbolic_dims import has_named_dims
from .avals import aval_of
from .tracebacks import filter_traceback, hidden_frames
from .tracing import Tracer, current_trace
from .transforms import grad_body

#: Signatures each compiled function keeps (least recently used evicted first).
DEFAULT_CACHE_SIZE = 64


class _Entry:
    """One compiled signature: its optimized graph, generated source and callable."""

    __slots__ = ("graph", "source", "fn", "func_name", "has_spec", "closure", "body_end",
                 "floats_only")

    def __init__(self, graph, source, fn, func_name, has_spec=False, closure=(), body_end=None,
                 floats_only=False):
        self.graph, self.source, self.fn, self.func_name = graph, source, fn, func_name
        self.floats_only = floats_only  # fn tests its n Python floats itself (floats_call.py)
        self.body_end = body_end        # first line after the function (graphc/guard_paths.py)
        self.has_spec = has_spec
        # ((keyword, cell, (shape, dtype)), ...): closed-over arrays passed at each call
        self.closure = closure


class _Traced(Exception):
    """Raised while computing a cache key when an argument is a tracer."""


class _Unsupported:
    """Cache-key part of a leaf graphc cannot trace: never equal to another key,
    so the call goes on to tracing, which reports it by argument name."""

    __slots__ = ()


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
# loader.exec_module numbers its linecache file names with a plain counter;
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

    target = "numpy"    # the code generated (graphc/compiled_xp.py: "array-api")

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
        self._hot = NO_HOT              # (n, code) of _last if it takes n floats (floats_call.py)
        # Reentrant: tracing runs the user's function, which may call this
        # same compiled function on concrete arrays (another signature).
        self._lock = threading.RLock()
        self.check_finite = bool(check_finite)
        base = function_name(fn)
        self.__name__ = {"compile": base}.get(kind, f"{base}_{kind}")
        self.__qualname__ = self.__name__
        if kind in ("grad", "value_and_grad"):
            normalize_argnums(argnums)

    def __repr__(self):
        return f"<graphc.{self._kind} of {function_name(self._fn)}>"

    # --- notebooks: a summary of the signatures compiled (graphc/display.py) ----
    def _repr_html_(self):
        from .display import compiled_html
        return compiled_html(self)

    def _repr_markdown_(self):
        from .display import compiled_markdown
        return compiled_markdown(self)

    # --- pickling (multiprocessing, Dask): the function and options, not the cache ----
    def __reduce_ex__(self, protocol):
        # A decorated module-level function (@graphc.grad def f) is the module's
        # attribute itself; its wrapped function cannot be pickled by reference
        # (module.f is this object, not it), so pickle this object by reference.
        # Under cloudpickle, a function of __main__ (or of a module registered to pickle
        # by value) goes by value, as cloudpickle sends plain functions: a Dask worker's
        # __main__ is not the user's script.
        ref = _global_name(self)
        if ref is not None and not _cloudpickle_by_value(ref[0]):
            return _load_global, ref
        return super().__reduce_ex__(protocol)

    def __getstate__(self):
        # The lock cannot be pickled, and the compiled code is rebuilt on demand.
        state = dict(self.__dict__)
        for name in ("_lock", "_cache", "_last", "_hot"):
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._cache = {}
        self._last, self._hot = _NO_ENTRY, NO_HOT
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
            return lambda a, k: live(self._fn)(*a, **k)
        return grad_body(self._fn, self._argnums, self._has_aux,
                          self._kind == "value_and_grad", f"graphc.{self._kind}({function_name(self._fn)})")

    def _signature_fn(self, args):
        """The function whose signature the traced arguments bind to (and the generated
        ``def`` takes): the user's own, except for transforms that add arguments."""
        return self._fn

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
                    self._last, self._hot = entry, floats_call.hot_of(entry, key)
                finally:
                    self._lock.release()
            return entry
        with self._lock:
            # A concurrent reorder pops the key for an instant; a miss then
            # waits here and finds it, so each signature is built once.
            entry = self._cache.pop(key, None)
            if entry is None:
                # code with guards: the paths traced so far (graphc/guard_paths.py)
                entry = guarded_entry(self, key, self._build(args, kwargs))
                while len(self._cache) >= self._cache_size:
                    self._evict(next(iter(self._cache)))
            self._cache[key] = entry
            self._last, self._hot = entry, floats_call.hot_of(entry, key)
        return entry

    def _evict(self, key):
        old = self._cache.pop(key)
        for entry in ([p.entry for p in old.paths] if isinstance(old, Paths) else [old]):
            forget_source(entry)

    def cache_clear(self) -> None:
        """Forget every compiled signature."""
        with self._lock:
            for key in list(self._cache):
                self._evict(key)
            self._last, self._hot = _NO_ENTRY, NO_HOT

    def _build(self, args, kwargs):
        if has_named_dims(args, kwargs):
            # Spec(("n", 784)): one module for every size (graphc/symbolic_module.py)
            return _Entry(*symbolic_module.build(self, args, kwargs), has_spec=True)
        with gc_paused():
            return self._build_unpaused(args, kwargs)

    def _build_unpaused(self, args, kwargs):
        g = trace_into(self._signature_fn(args), args, kwargs, self._body(), True)
        optimize(g)                     # (CSE: the trace may share constants)
        source_file = def_where(self._fn)
        source_file = source_file.rpartition(":")[0] if source_file else None
        func_name = naming.sanitize(self.__name__)
        sig = g.signature
        # Parameter names in the generated def: sanitized and pairwise distinct
        # (x and x_, np, σ), with defaults spelled as plain literals.
        names = naming.unique_names([p.name for p in sig.params])
        def_sig = dataclasses.replace(sig, params=[
            Param(n, p.kind, _plain_default(p.default)) for n, p in zip(names, sig.params)])
        module = self._generate()(g, func_name, doc=self._doc(names),
                                         source_file=source_file, signature=def_sig)
        source = module.source
        renamed = {p.name: n for p, n in zip(sig.params, names) if p.name != n and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        # n exact Python floats and a `math` body: the variant testing their types itself
        run = not (kwargs or renamed or module.closure_params) and all(
            type(x) is float for x in args) and floats_only_variant(module.fast)
        with _EXEC_LOCK:
            # The fast variant: no entry check (the cache key checked the signature)
            # and the user's own default arrays, read at each call.
            fn = loader.exec_module(source, func_name, self.__name__, run=run or module.fast,
                                     bindings=dict(module.bindings, _NOT_FLOATS=NOT_FLOATS)
                                     if run else module.bindings)
        if renamed:
            fn = _renaming_call(fn, renamed)
        has_spec = any(isinstance(x, Spec) for x in flatten((args, kwargs))[0])
        cells = {nid: cell for nid, _, cell in sig.closures}
        closure = tuple((kw, cells[nid], (g[nid].shape, g[nid].dtype))
                        for kw, nid in module.closure_params)
        return _Entry(g, source, fn, func_name, has_spec, closure, module.body_end, bool(run))

    def _generate(self):
        """The code generator of this compiled function's target (graphc/compiled_xp.py)."""
        return codegen.generate_module

    def _doc(self, params):
        """The generated function's docstring; ``params`` are its parameter names."""
        name = naming.display(function_name(self._fn))
        if self._kind == "compile":
            return f"{name}, compiled by graphc."
        nums = (self._argnums,) if isinstance(self._argnums, int) else self._argnums
        wrt = ", ".join(params[i] if -len(params) <= i < len(params) else f"argument {i}"
                        for i in nums)
        if self._kind == "grad":
            return f"Gradient of {name} with respect to {wrt}."
        return f"Value of {name} and its gradient with respect to {wrt}."

    def __call__(self, *args, **kwargs):
        # The cached path, inlined from _entry: every call pays it (W1: ~0.5 µs;
        # tests/test_overhead.py counts its calls).
        # An error leaves with graphc's frames hidden (graphc/tracebacks.py); the
        # try costs nothing until something raises.
        try:
            if not kwargs:  # the last entry's code if it takes n Python floats: it tests
                n, hot = self._hot      # their types itself (floats_call.py)
                if len(args) == n and (out := hot(*args)) is not NOT_FLOATS:
                    return out
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
            return entry.fn(*args, **kwargs) if kwargs else entry.fn(*args)
        except Exception as e:
            filter_traceback(e)
            raise

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
                    self._last, self._hot = _NO_ENTRY, NO_HOT
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
        """The generated module text for this signature (a ``str``; in a notebook it
        displays as highlighted code)."""
        with hidden_frames():
            from .display import SourceText
            return SourceText(self._entry(args, kwargs).source)

    def graph(self, *args, **kwargs) -> Graph:
        """The optimized graph the generated code was made from (with guards: of the
        path these arguments take)."""
        with hidden_frames():
            entry = self._entry(args, kwargs)
            if isinstance(entry, Paths):
                return entry.path_of(args, kwargs).entry.graph
            return entry.graph

    def trace(self, *args, values=False, **kwargs) -> Graph:
        """The evaluation trace for these arguments, as printed for reading.

        For ``grad`` and ``value_and_grad``: the forward pass, its value, then the
        backward pass with one adjoint line per named value (``d_z5 = d_z6 * z4``),
        the lecture's table (:mod:`graphc.trace_display`); the generated code may
        fold some of them away (``.graph()`` is that optimized graph).  Returns a
        :class:`graphc.TraceTable`; with ``values=True`` every line also shows its
        value for these arguments (``.rows()``, ``.value(name)``).
        """
        with hidden_frames():
            from .trace_display import display_trace
            return display_trace(self, args, kwargs, values=values)

    def export_name(self):
        return naming.sanitize(self.__name__)


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
        with hidden_frames():         # the traceback: the user's call alone
            raise explain_nonfinite(entry.graph, flatten(tuple(values))[0], self.__name__)


def make_compiled(fn, kind, argnums=0, has_aux=False, *, cache_size, check_finite,
                  target="numpy"):
    """A :class:`Compiled` of ``kind`` (``"compile"``, ``"grad"``, ``"value_and_grad"``)
    generating code for ``target`` (``"numpy"`` or ``"array-api"``)."""
    from .codegen_xp import check_target
    target = check_target(target, f"graphc.{kind}")
    if target == "numba":                   # fused loops (graphc/compiled_numba.py)
        from .compiled_numba import NumbaCompiled
        return NumbaCompiled(fn, kind, argnums, has_aux, cache_size=cache_size,
                             check_finite=check_finite)
    if target == "array-api":
        from .compiled_xp import XpCompiled
        return XpCompiled(fn, kind, argnums, has_aux, cache_size=cache_size,
                          check_finite=check_finite)
    cls = _FiniteChecked if check_finite else Compiled
    return cls(fn, kind, argnums, has_aux, cache_size=cache_size, check_finite=check_finite)
