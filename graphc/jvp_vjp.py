"""``graphc.jvp`` and ``graphc.vjp``: forward mode, and reverse mode with a cotangent.

:class:`JVPCompiled` traces ``fn`` with a forward-mode level open
(:mod:`graphc.forward`): the generated ``f_jvp(w1, w2, dot_w1, dot_w2)`` returns the
value and its tangent, each tangent block after the forward line it follows.
:class:`VJPCompiled` traces ``fn`` and its backward pass from a given cotangent
(:func:`graphc.autodiff.backward` with a seed): ``f_vjp(w1, w2, d_out)`` returns one
cotangent per primal.  Both are :class:`graphc.Compiled` (compiled per signature,
``.source()``/``.graph()``); called with traced values they record into the
enclosing trace, so they compose with ``grad`` and with each other.
"""
from __future__ import annotations

import functools

import numpy as np

from . import errors
from .autodiff import backward
from .avals import aval_of
from .capture import function_name, live
from .compiled import Compiled
from .errors import GradError, SignatureError
from .forward import forward_level
from .jvp_checks import check_like, check_primals, primal_names, signature_stand_in
from .ops.shape import identity
from .pytree import flatten, unflatten
from .tracebacks import hidden_frames
from .tracing import Tracer, current_trace
from .codegen_xp import numpy_target_only

__all__ = ["JVPCompiled", "VJPCompiled", "VJPFunction", "jvp", "vjp"]


def _zeros_like(trace, x):
    a = aval_of(x)
    return trace.lift(0.0 if a.weak and a.dtype.kind == "f" else np.zeros(a.shape, a.dtype))


# --- forward mode ----------------------------------------------------------------------
def _split_aux(fn, name, out, has_aux):
    """``(out, aux)`` of a function called with ``has_aux=True`` (``aux`` None otherwise)."""
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        from .capture import def_where
        raise GradError(f"{name}: with has_aux=True the function must return (out, aux), a "
                        "pair", where=def_where(fn),
                        hint="return the differentiated value and the auxiliary data as a pair")
    return out[0], out[1]


def jvp_body(fn, has_aux=False):
    """The traced body of ``jvp``: arguments are the primals then their tangents."""
    def body(call_args, call_kwargs):
        trace = current_trace()
        n = len(call_args) // 2
        with forward_level(trace) as level:
            primals = []
            for p, t in zip(call_args[:n], call_args[n:]):
                leaves, tdef, _ = flatten(p)
                seeded = []
                for x, dx in zip(leaves, flatten(t)[0]):
                    x = identity(trace.lift(x))    # a fresh alias: a closure stays constant
                    level.seed(x, dx)
                    trace.wrt.add(x.node)          # float() of what depends on it: refused
                    seeded.append(x)
                primals.append(unflatten(tdef, seeded))
            out, aux = _split_aux(fn, "graphc.jvp", live(fn)(*primals), has_aux)
            leaves, tdef, _ = flatten(out)
            dots = []
            for x in leaves:
                t = level.tangent(x)
                dots.append(t if t is not None else _zeros_like(trace, x))
        return (out, unflatten(tdef, dots)) + ((aux,) if has_aux else ())
    return body


class JVPCompiled(Compiled):
    """``graphc.jvp(fn)``: ``(primals, tangents) -> (out, out_tangent)``, compiled per signature.

    The generated function takes the primals and then their tangents, named
    ``dot_<name>`` (``f_jvp(w1, w2, dot_w1, dot_w2)``).
    """

    def __init__(self, fn, *, has_aux=False, cache_size=64):
        super().__init__(fn, "jvp", has_aux=has_aux, cache_size=cache_size)
        self._label = f"graphc.jvp({function_name(fn)})"

    def _signature_fn(self, args):
        names = primal_names(self._fn, len(args) // 2)
        return signature_stand_in(self._fn, names + ["dot_" + n for n in names])

    def _body(self):
        return jvp_body(self._fn, self._has_aux)

    def _doc(self, params):
        name = function_name(self._fn)
        n = len(params) // 2
        return f"{name} and its tangent along ({', '.join(params[n:])}) (forward mode)."

    def _args(self, primals, tangents):
        names = check_primals(self._label, self._fn, primals)
        check_like(self._label, names, primals, tangents, "tangents")
        return (*primals, *tangents)

    def __call__(self, primals, tangents):
        """``(out, out_tangent)``, or ``(out, out_tangent, aux)`` with ``has_aux=True``."""
        with hidden_frames():
            return Compiled.__call__(self, *self._args(primals, tangents))

    def source(self, primals, tangents) -> str:
        """The generated module text for these primals' and tangents' signature."""
        with hidden_frames():
            return Compiled.source(self, *self._args(primals, tangents))

    def graph(self, primals, tangents):
        """The optimized graph the generated code was made from."""
        with hidden_frames():
            return Compiled.graph(self, *self._args(primals, tangents))


# --- reverse mode from a cotangent -------------------------------------------------------
def vjp_body(fn, has_aux=False):
    """The traced body of a VJP: arguments are the primals then the output's cotangent."""
    def body(call_args, call_kwargs):
        trace = current_trace()
        *prims, ct = call_args
        trees, marked = [], []
        for p in prims:
            leaves, tdef, _ = flatten(p)
            ids = [identity(trace.lift(x)) for x in leaves]
            trace.wrt.update(x.node for x in ids)  # float() of what depends on them: refused
            trees.append((tdef, ids))
            marked.append(unflatten(tdef, ids))
        start = trace.graph._next
        out, _ = _split_aux(fn, "graphc.vjp", live(fn)(*marked), has_aux)
        pairs = [(trace.lift(o), trace.lift(c)) for o, c in zip(flatten(out)[0], flatten(ct)[0])
                 if aval_of(o).dtype.kind == "f"]
        wrt = [x for _, ids in trees for x in ids]
        if not pairs:
            cts = [_zeros_like(trace, x) for x in wrt]
        elif len(pairs) == 1:
            cts = backward(pairs[0][0], wrt, seed=pairs[0][1], start=start)
        else:      # several outputs: the cotangent-weighted sum of them all
            total = sum((o * c).sum() for o, c in pairs)
            cts = backward(total, wrt, start=start)
        result, k = [], 0
        for tdef, ids in trees:
            result.append(unflatten(tdef, cts[k:k + len(ids)]))
            k += len(ids)
        return tuple(result)
    return body


class VJPCompiled(Compiled):
    """The backward pass of ``fn`` from a cotangent: ``(*primals, d_out) -> cotangents``."""

    def __init__(self, fn, *, has_aux=False, cache_size=64):
        super().__init__(fn, "vjp", has_aux=has_aux, cache_size=cache_size)

    def _signature_fn(self, args):
        names = primal_names(self._fn, len(args) - 1)
        return signature_stand_in(self._fn, names + ["d_out"])

    def _body(self):
        return vjp_body(self._fn, self._has_aux)

    def _doc(self, params):
        return (f"Cotangents of {', '.join(params[:-1])} from {params[-1]}, the cotangent of "
                f"{function_name(self._fn)}'s result (reverse mode).")


class VJPFunction:
    """``vjp_fn`` of ``graphc.vjp``: a cotangent of the output -> one cotangent per primal.

    Holds copies of the primals; each call runs the compiled backward pass
    (traced once per signature).  ``.source()``/``.graph()`` show it.
    """

    def __init__(self, compiled, primals, out, names):
        self._compiled = compiled
        self._primals = tuple(_copy_arrays(p) for p in primals)
        self._out = out
        self._names = names

    def __repr__(self):
        return f"<graphc.vjp function of {function_name(self._compiled._fn)}>"

    def _check(self, ct):
        label = f"graphc.vjp({function_name(self._compiled._fn)})"
        check_like(label, ["the output"], (self._out,), (ct,), "cotangents")

    def __call__(self, ct):
        with hidden_frames():
            self._check(ct)
            return self._compiled(*self._primals, ct)

    def _example(self):
        return flatten(self._out)[1], [np.zeros(aval_of(x).shape, aval_of(x).dtype)
                                       if not aval_of(x).weak else 0.0
                                       for x in flatten(self._out)[0]]

    def source(self) -> str:
        """The generated backward pass (a cotangent of the output's shape as argument)."""
        with hidden_frames():
            tdef, leaves = self._example()
            return self._compiled.source(*self._primals, unflatten(tdef, leaves))

    def graph(self):
        """The optimized graph of the backward pass."""
        with hidden_frames():
            tdef, leaves = self._example()
            return self._compiled.graph(*self._primals, unflatten(tdef, leaves))


def _copy_arrays(tree):
    leaves, tdef, _ = flatten(tree)
    return unflatten(tdef, [np.array(x) if isinstance(x, np.ndarray) else x for x in leaves])


_KINDS = {"jvp": JVPCompiled, "vjp": VJPCompiled, "compile": lambda f: Compiled(f, "compile"),
          "jvp_aux": lambda f: JVPCompiled(f, has_aux=True),
          "vjp_aux": lambda f: VJPCompiled(f, has_aux=True)}


@functools.lru_cache(maxsize=64)
def _cached(kind, fn):
    return _KINDS[kind](fn)


def cached(kind, fn, traced=False):
    """The compiled ``kind`` of ``fn``, kept (64 functions) so repeated calls do not re-trace.

    ``traced``: the call records into an enclosing trace and compiles nothing, so
    nothing is kept (the function may close over that trace's values)."""
    if traced:
        return _KINDS[kind](fn)
    try:
        return _cached(kind, fn)
    except TypeError:            # an unhashable callable: compiled afresh
        return _KINDS[kind](fn)


def _has_tracer(*trees):
    return any(isinstance(x, Tracer) for t in trees for x in flatten(t)[0])


def vjp_parts(fn, primals, has_aux=False):
    """``(out, vjp_fn)`` of ``graphc.vjp`` (``(out, vjp_fn, aux)`` with ``has_aux``)."""
    label = f"graphc.vjp({function_name(fn)})"
    names = check_primals(label, fn, primals)
    traced = _has_tracer(primals)
    out, aux = _split_aux(fn, label, cached("compile", fn, traced)(*primals), has_aux)
    kind = "vjp_aux" if has_aux else "vjp"
    if traced:
        pull = functools.partial(_traced_vjp, cached(kind, fn, True), primals, out, names)
    else:
        pull = VJPFunction(cached(kind, fn), primals, out, names)
    return (out, pull) + ((aux,) if has_aux else ())


def _traced_vjp(compiled, primals, out, names, ct):
    check_like(f"graphc.vjp({function_name(compiled._fn)})", ["the output"], (out,), (ct,),
               "cotangents")
    return compiled(*primals, ct)


# --- the public entry points ----------------------------------------------------------
_MISSING = object()


def jvp(fn, primals=_MISSING, tangents=_MISSING, *, has_aux=False, target="numpy"):
    """Forward mode: the value of ``fn`` at ``primals`` and its tangent along ``tangents``.

    As ``jax.jvp``: the directional derivative ``J(primals) @ tangents`` in one forward
    pass, compiled per signature; the generated code follows each forward line with its
    tangent block, ``dot_<name>`` (``graphc.jvp(f).source(primals, tangents)``).

    Parameters
    ----------
    fn : callable
        A function of NumPy values (or a graphc transform such as ``graphc.grad(f)``).
    primals : tuple
        The point: one pytree of floating arrays (or Python floats) per positional
        argument of ``fn``.  Omitted, ``jvp(fn)`` returns the compiled transform,
        called as ``jvp(fn)(primals, tangents)``.
    tangents : tuple
        The direction: the same structure, shapes and dtypes as ``primals``.
    has_aux : bool, default False
        ``fn`` returns ``(out, aux)``: only ``out`` is differentiated, and ``aux`` is
        returned as a third item, as in JAX.

    Returns
    -------
    (out, out_tangent) or (out, out_tangent, aux)
        ``fn(*primals)`` and its tangent, a pytree of the same structure (an integer
        output's tangent is zeros of its dtype).

    Raises
    ------
    SignatureError
        ``primals``/``tangents`` are not tuples of the same structure, shapes and dtypes
        (``GradError``: a primal is an integer, boolean or static value).

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(w1, w2):
    ...     return np.sin(w1) * w2
    >>> out, dot = graphc.jvp(f, (0.0, 2.0), (1.0, 0.0))
    >>> float(out), float(dot)
    (0.0, 2.0)
    >>> print(graphc.jvp(f).source((0.0, 2.0), (1.0, 0.0)))  # doctest: +ELLIPSIS
    # Generated by graphc from f...
    def f_jvp(w1, w2, dot_w1, dot_w2):
    ...
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.jvp")   # (graphc/codegen_xp.py)
        missing = (primals is _MISSING) + (tangents is _MISSING)
        if not callable(fn) or missing == 1:
            raise SignatureError("graphc.jvp needs a callable and both primals and tangents (or "
                                 f"neither), got {type(fn).__name__} and {2 - missing} of them",
                                 where=errors.user_where(),
                                 hint="graphc.jvp(f, (x,), (dx,)), or graphc.jvp(f) for the "
                                      "compiled transform")
        kind = "jvp_aux" if has_aux else "jvp"
        if missing:
            return cached(kind, fn)
        return cached(kind, fn, _has_tracer(primals, tangents))(primals, tangents)


def vjp(fn, *primals, has_aux=False, target="numpy"):
    """Reverse mode from any cotangent: ``fn(*primals)`` and its pullback.

    As ``jax.vjp``: ``vjp_fn(ct)`` returns ``ct @ J(primals)`` as one cotangent per
    primal (a tuple), for a cotangent ``ct`` of the output's structure, shapes and
    dtypes; a non-scalar output needs no reduction first.  ``vjp_fn`` holds copies
    of the primals and runs generated code compiled once per signature
    (``vjp_fn.source()`` shows it); it may be called many times.

    Parameters
    ----------
    fn : callable
        A function of NumPy values.
    *primals
        The point: pytrees of floating arrays (or Python floats).
    has_aux : bool, default False
        ``fn`` returns ``(out, aux)``: ``vjp_fn`` pulls back cotangents of ``out`` only,
        and ``aux`` is returned as a third item, as in JAX.

    Returns
    -------
    (out, vjp_fn) or (out, vjp_fn, aux)

    Examples
    --------
    >>> import numpy as np, graphc
    >>> out, vjp_fn = graphc.vjp(lambda x: x * x, np.array([1.0, 2.0, 3.0]))
    >>> out
    array([1., 4., 9.])
    >>> vjp_fn(np.array([1.0, 0.0, 0.5]))
    (array([2., 0., 3.]),)
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.vjp")   # (graphc/codegen_xp.py)
        if not callable(fn):
            raise SignatureError(f"graphc.vjp needs a callable, got {type(fn).__name__}",
                                 where=errors.user_where(),
                                 hint="pass the function, then its arguments: graphc.vjp(f, x)")
        return vjp_parts(fn, primals, has_aux)
