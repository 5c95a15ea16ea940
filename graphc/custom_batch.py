"""Reverse mode through a vmapped ``custom_vjp`` node (``grad(vmap(f))``).

The user's ``bwd`` is written for one example.  The batched node's rule runs it
under vmap (:func:`graphc.batching.batch_call`) over the batched residuals and the
batched cotangent, so the backward pass is the user's rule, batched like any other
traced code; an argument that is not batched (a weight shared by the examples)
gets the sum of the per-example cotangents.  ``checkpoint``'s ``bwd`` (recompute,
then differentiate) is batched the same way.
"""
from __future__ import annotations

import numpy as np

from .primitive import Aval
from .errors import GradError
from .pytree import flatten, unflatten
from .tracing import Tracer

__all__ = ["batched_bwd"]


def batched_bwd(r, tdef, dims, n_args, res, ct, outs_and_args):
    """The cotangents of the batched node's arguments (each at its argument's batch axis).

    ``r``: the per-example rule (``custom._Rule``), ``tdef`` its residuals' treedef;
    ``dims``: the batch axes of the node's arguments ``(out, *args, *residuals)``;
    ``outs_and_args``: the node's ``(out, *args)`` (batched tracers).
    """
    from .batching import batch_call, place
    from .custom import _unpack
    res_leaves = flatten(res)[0]
    arg_dims = dims[1:1 + n_args]
    arg_avals, size = example_avals(outs_and_args[1:], arg_dims)
    if size is None:
        size = example_avals(list(outs_and_args) + res_leaves, dims)[1]

    def one(*leaves):
        ct1 = leaves[-1]
        with ct1._trace.context(section="backward", where=r.where):   # a backward pass
            cts = r.bwd(unflatten(tdef, list(leaves[:-1])),
                        _unpack(ct1, r.layout) if r.layout is not None else ct1)
            return tuple(_fit(r, cts, n_args, arg_avals, ct1))

    outs, _ = batch_call(one, res_leaves + [ct], list(dims[1 + n_args:]) + [dims[0]],
                         lambda xs: xs, f"grad of vmap of {r.fn.__name__!r}", r.where)
    cts = []
    for (c, axis), d in zip(outs, arg_dims):
        if d is None:                   # shared by the examples: the sum of their cotangents
            cts.append(c if axis is None else np.sum(c, axis=axis))
        else:
            cts.append(place(c, axis, d, size))
    return tuple(cts)


def _fit(r, cts, n_args, arg_avals, like):
    """One example's cotangents: ``n_args`` arrays of the arguments' shapes (zeros for None)."""
    from .custom import _def_where, _fits
    where = _def_where(r.bwd) or r.where
    if not isinstance(cts, (tuple, list)) or len(cts) != n_args:
        got = f"{len(cts)} values" if isinstance(cts, (tuple, list)) else type(cts).__name__
        raise GradError(f"custom_vjp {r.fn.__name__!r}: bwd must return a tuple of {n_args} "
                        f"cotangent(s), one per argument; got {got}", where=where,
                        hint="return (ct_x,) for one argument, None for a zero cotangent")
    out = []
    for i, (c, a) in enumerate(zip(cts, arg_avals)):
        if c is None:
            c = np.zeros(a.shape, a.dtype)
        if not isinstance(c, Tracer):
            c = like._trace.lift(np.asarray(c, dtype=a.dtype))
        if not _fits(c.shape, a.shape):
            raise GradError(f"custom_vjp {r.fn.__name__!r}: bwd's cotangent {i} has shape "
                            f"{tuple(c.shape)}, argument {i} has shape {tuple(a.shape)}",
                            where=where, hint="a cotangent has its argument's shape")
        out.append(np.broadcast_to(c, a.shape) if tuple(c.shape) != tuple(a.shape) else c)
    return out


def example_avals(args, dims):
    """The per-example avals of batched ``args`` (batch axes ``dims``) and the batch size."""
    avals, size = [], None
    for a, d in zip(args, dims):
        shape = tuple(a.shape)
        if d is not None:
            size = shape[d]
            shape = shape[:d] + shape[d + 1:]
        avals.append(Aval(shape, a.dtype, False))
    return avals, size
