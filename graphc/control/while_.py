"""``graphc.while_loop``: a generated ``while`` loop, differentiable in reverse mode.

One ``while`` node holds two bodies, the condition (carry -> bool scalar) and the
step (carry -> carry).  Its arguments are the initial carry leaves and the values
each body captured; its results are the final carry leaves and the tape, a Python
list of the carries entering each step, appended only when a backward pass reads
it.  The backward pass is a scan over the reversed tape running the step's adjoint
(:func:`graphc.control.scan.loop_backward`), which JAX's ``while_loop`` cannot do.
"""
from __future__ import annotations

import numpy as np

from .. import errors
from ..errors import ShapeError
from ..primitive import Aval
from ..pytree import TreeDef, flatten, unflatten
from ..tracing import Tracer, current_trace
from .body import (LIST_AVAL, Handler, add_structured, numbers_to_arrays, strong_leaves,
                   trace_body)
from .scan import carry_fn, loop_backward, settle_weak

__all__ = ["while_loop", "while_slices"]


def while_loop(cond_fn, body_fn, init_val):
    """``while cond_fn(val): val = body_fn(val)``, kept as one loop, differentiable.

    As ``jax.lax.while_loop``, and also differentiable in reverse mode: the
    generated forward pass keeps a list of the carries when a gradient needs them,
    and the backward pass runs the body's adjoint over that list in reverse.  One
    compiled function serves every trip count.  Outside a traced function it is a
    plain Python loop.

    Parameters
    ----------
    cond_fn : callable
        ``cond_fn(val) -> bool scalar``.
    body_fn : callable
        ``body_fn(val) -> val``, keeping its structure, shapes and dtypes.
    init_val : pytree of arrays

    Returns
    -------
    pytree
        The final ``val``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def newton_sqrt(a):
    ...     def step(x):
    ...         return 0.5 * (x + a / x)
    ...     return graphc.while_loop(lambda x: np.abs(x * x - a) > 1e-12, step, a)
    >>> round(float(newton_sqrt(2.0)), 12)
    1.414213562373
    >>> round(float(graphc.grad(newton_sqrt)(4.0)), 10)      # 0.5 / sqrt(4)
    0.25
    """
    where = errors.user_where(1)
    weak_ids: set = set()
    leaves, ctdef, _ = flatten(numbers_to_arrays(init_val, weak_ids))
    if current_trace() is None and not any(isinstance(x, Tracer) for x in leaves):
        val = init_val
        while bool(np.asarray(cond_fn(val))):
            val = body_fn(val)
        out, tdef, _ = flatten(val)
        return unflatten(tdef, [np.asarray(x) for x in out])
    none = TreeDef("none")
    leaves = settle_weak(lambda c, _: (body_fn(c), None), ctdef, strong_leaves(leaves),
                         [id(x) in weak_ids for x in leaves], [(none, [])], where, "while_loop")
    avals = [Aval(tuple(x.shape), x.dtype, False) for x in leaves]
    cond = trace_body(_cond_fn(cond_fn, where), [(ctdef, avals)], "while_loop cond", where,
                      param_fn=cond_fn)
    body = trace_body(carry_fn(lambda c, _: (body_fn(c), None), ctdef, avals, where,
                               "while_loop"), [(ctdef, avals), (none, [])],
                      "while_loop body", where, param_fn=body_fn)
    params = {"n_carry": len(leaves), "n_cond_outer": len(cond.outer)}
    outs = add_structured("while", leaves + cond.outer + body.outer, [cond.graph, body.graph],
                          params, avals + [LIST_AVAL], where)
    return unflatten(ctdef, outs[:len(leaves)])


def _cond_fn(cond_fn, where):
    def cond(val):
        out = cond_fn(val)
        shape, dtype = (out.shape, out.dtype) if isinstance(out, Tracer) else \
            (np.shape(out), np.asarray(out).dtype)
        if shape != () or dtype.kind != "b":
            raise ShapeError(f"while_loop: cond_fn must return a boolean scalar, got "
                             f"{dtype}{list(shape)}", where=where,
                             hint="return a comparison such as err > tol (use .all()/.any() "
                                  "to reduce an array of booleans)")
        return out
    return cond


def while_slices(node):
    """Slices of a while node's arguments: carry, cond's captured, body's captured."""
    k, nc = node.params["n_carry"], node.params["n_cond_outer"]
    return slice(0, k), slice(k, k + nc), slice(k + nc, len(node.args))


def _result_avals(node):
    body = node.bodies[1]
    return [body.aval(i) for i in body.inputs[:node.params["n_carry"]]] + [LIST_AVAL]


def _while_vjp(trace, nid, ct):
    node = trace.graph[nid]
    sc, _, sb = while_slices(node)
    args = [trace.tracer(a) for a in node.args]
    return loop_backward(trace, nid, ct, node.bodies[1], args[sc], [], args[sb], 0, True,
                         None, False)


Handler("while", _while_vjp, _result_avals)
