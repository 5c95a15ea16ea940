"""Hessian-vector products (forward over reverse) and ``stop_gradient``.

``hvp`` is ``jvp`` of ``grad`` (the JAX cookbook's definition): one forward-mode
pass over the reverse-mode gradient's graph, so the Hessian is never formed.  The
generated code is that of ``graphc.jvp(graphc.grad(fn))``: the gradient's lines,
each followed by its tangent block (``dot_d_<name>``).
"""
from __future__ import annotations

import functools

from . import errors
from .compiled import make_compiled
from .errors import SignatureError
from .jvp_vjp import JVPCompiled
from .ops.shape import stop_gradient as _stop_gradient
from .pytree import flatten, unflatten
from .tracebacks import hidden_frames
from .tracing import Tracer
from .codegen_xp import numpy_target_only

__all__ = ["hvp", "stop_gradient", "HVPCompiled"]


class HVPCompiled(JVPCompiled):
    """``graphc.hvp(fn)``: ``(primals, tangents) -> H @ tangents``, compiled per signature.

    ``H`` is the Hessian of the scalar ``fn`` with respect to its first argument,
    differentiated along all of ``tangents`` (as ``jax.jvp(jax.grad(fn), primals,
    tangents)[1]``).  ``.source(primals, tangents)`` shows the generated code.
    """

    def __init__(self, fn):
        grad = make_compiled(fn, "grad", 0, cache_size=64, check_finite=False)
        super().__init__(grad)
        self._label = f"graphc.hvp({getattr(fn, '__name__', type(fn).__name__)})"

    def __call__(self, primals, tangents):
        with hidden_frames():
            return JVPCompiled.__call__(self, primals, tangents)[1]


@functools.lru_cache(maxsize=64)
def _cached(fn):
    return HVPCompiled(fn)


def hvp(fn, primals=None, tangents=None, *, target="numpy"):
    """The Hessian-vector product of a scalar function, in one pass.

    ``hvp(fn, primals, tangents)`` is ``jvp(grad(fn), primals, tangents)[1]``: the
    derivative of ``fn``'s gradient with respect to its first argument, along
    ``tangents``; with ``tangents = (v, 0, ...)`` it is ``H @ v`` for the Hessian
    ``H`` of ``fn`` in its first argument.  Forward over reverse: the cost is a small
    multiple of one gradient, and the Hessian is never formed.

    Parameters
    ----------
    fn : callable
        A function returning a real floating scalar.
    primals, tangents : tuple
        One entry per positional argument of ``fn`` (as :func:`graphc.jvp`). Both
        omitted, ``hvp(fn)`` returns the compiled transform, called as
        ``hvp(fn)(primals, tangents)``, with ``.source(primals, tangents)``.

    Returns
    -------
    pytree
        ``H @ tangents``, shaped like the first argument.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     return (x ** 3).sum()            # Hessian: diag(6 x)
    >>> graphc.hvp(f, (np.array([1.0, 2.0]),), (np.array([1.0, 1.0]),))
    array([ 6., 12.])
    """
    with hidden_frames():
        numpy_target_only(target, "graphc.hvp")   # (graphc/codegen_xp.py)
        if not callable(fn) or (primals is None) != (tangents is None):
            raise SignatureError("graphc.hvp needs a callable and both primals and tangents (or "
                                 "neither)", where=errors.user_where(),
                                 hint="graphc.hvp(f, (x,), (v,)), or graphc.hvp(f) for the "
                                      "compiled transform")
        if primals is None:
            return _cached_or_new(fn)
        traced = any(isinstance(x, Tracer) for x in flatten((primals, tangents))[0])
        compiled = HVPCompiled(fn) if traced else _cached_or_new(fn)
        return compiled(primals, tangents)


def _cached_or_new(fn):
    try:
        return _cached(fn)
    except TypeError:               # an unhashable callable
        return HVPCompiled(fn)


def stop_gradient(x):
    """``x`` itself, through which no derivative flows (as ``jax.lax.stop_gradient``).

    Works on a pytree of arrays, traced or not; outside a traced function it
    returns its argument's values.

    Examples
    --------
    >>> import graphc
    >>> float(graphc.grad(lambda x: x * graphc.stop_gradient(x))(3.0))   # d/dx (x * c), c = x
    3.0
    """
    leaves, tdef, _ = flatten(x)
    return unflatten(tdef, [_stop_gradient(v) if isinstance(v, Tracer) else v for v in leaves])
