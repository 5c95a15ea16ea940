"""Batching rules of indexing (:mod:`graphc.batch_rules`): ``x[index]`` and its transposes.

Basic indexing (slices, ints, None, ``...``) gains a leading ``:``.  With integer
arrays in the index, the batch becomes one more integer array, ``arange(B)`` shaped
to broadcast against the (batched) index arrays, so ``logp[label]`` with a label per
example is ``logp[np.arange(B), label]``.  NumPy puts the axes of non-adjacent array
indices first; where that moves the per-example layout, a transpose puts it back.
"""
from __future__ import annotations

import numpy as np

from .primitive import REGISTRY

__all__ = ["INDEX_RULES"]

P = REGISTRY


def _front(x, d):
    from .batch_rules import to_front
    return to_front(x, d)


def _expand_ellipsis(spec, x_ndim):
    used = sum(1 for item in spec if item[0] in ("slice", "int", "array"))
    out = []
    for item in spec:
        if item[0] == "ellipsis":
            out.extend([("slice", None, None, None)] * (x_ndim - used))
        else:
            out.append(item)
    return tuple(out)


def _plan(spec, x_ndim, idx, idims, size):
    """The batched spec and index arrays; ``perm`` puts the result in per-example order.

    Returns ``(spec, arrays, perm)``: ``perm`` is None when the batched result is
    already ``(B, *per_example)``.
    """
    spec = _expand_ellipsis(spec, x_ndim)
    if not any(item[0] == "array" for item in spec):
        return (("slice", None, None, None),) + spec, list(idx), None
    k = max(len(_per_shape(a, d)) for a, d in zip(idx, idims))
    arrays = []
    for a, d in zip(idx, idims):
        if d is None:
            arrays.append(a)
        else:
            a = _front(a, d)
            per = a.ndim - 1
            if per < k:
                a = P["reshape"](a, shape=(a.shape[0],) + (1,) * (k - per) + tuple(a.shape[1:]))
            arrays.append(a)
    rows = np.arange(size).reshape((size,) + (1,) * k)
    new = (("array", len(arrays)),) + spec
    arrays.append(rows)
    adv = [i for i, item in enumerate(spec) if item[0] in ("array", "int")]
    adjacent = adv == list(range(adv[0], adv[-1] + 1))
    perm = None
    if adjacent and adv[0] > 0:      # per example: [before, K, rest]; batched: [B, K, before, rest]
        before = sum(1 for item in spec[:adv[0]] if item[0] in ("slice", "none"))
        if before:
            perm = (0,) + tuple(range(1 + k, 1 + k + before)) + tuple(range(1, 1 + k))
    return new, arrays, perm


def _full_perm(perm, ndim):
    return None if perm is None else tuple(perm) + tuple(range(len(perm), ndim))


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _getitem_rule(args, dims, aval, *, spec):
    from .batch_rules import _batched, batch_size
    size = batch_size(args, dims)
    x = _batched(args[0], dims[0], size)
    new, arrays, perm = _plan(spec, x.ndim - 1, list(args[1:]), list(dims[1:]), size)
    out = P["getitem"](x, *arrays, spec=new)
    perm = _full_perm(perm, out.ndim)
    return (out if perm is None else P["transpose"](out, axes=perm)), 0


def _region(v, d, size, region, perm):
    """Values ``v`` for a per-example ``region`` laid out as the batched index selects."""
    from .batch_rules import _batched, _rank_to
    v = _rank_to(_batched(v, d, size), len(region))
    if tuple(v.shape[1:]) != tuple(region):
        v = P["broadcast_to"](v, shape=(size,) + tuple(region))
    perm = _full_perm(perm, v.ndim)
    return v if perm is None else P["transpose"](v, axes=_inverse(perm))


def _scatter_add_rule(args, dims, aval, *, spec, shape, unique=False):
    from .batch_rules import batch_size
    size = batch_size(args, dims)
    new, arrays, perm = _plan(spec, len(shape), list(args[1:]), list(dims[1:]), size)
    region = _region_shape(shape, spec, args[1:], dims[1:])
    ct = _region(args[0], dims[0], size, region, perm)
    kw = {"unique": unique} if unique else {}
    return P["scatter_add"](ct, *arrays, spec=new, shape=(size,) + tuple(shape), **kw), 0


def _region_shape(shape, spec, idx, idims):
    from .ops.index import _concrete_index
    stand = [np.zeros(_per_shape(a, d), np.intp) for a, d in zip(idx, idims)]
    return np.broadcast_to(np.zeros((), np.int8), tuple(shape))[_concrete_index(spec, stand)].shape


def _per_shape(a, d):
    return tuple(a.shape) if d is None else tuple(a.shape[:d] + a.shape[d + 1:])


def _setitem_rule(args, dims, aval, *, spec):
    from .batch_rules import _batched, batch_size
    size = batch_size(args, dims)
    x = _batched(args[0], dims[0], size)
    new, arrays, perm = _plan(spec, x.ndim - 1, list(args[2:]), list(dims[2:]), size)
    region = _region_shape(aval.shape, spec, args[2:], dims[2:])
    v = args[1]
    if dims[1] is not None or perm is not None:
        v = _region(v, dims[1], size, region, perm)
    return P["setitem"](x, v, *arrays, spec=new), 0


def _along_rule(name):
    def rule(args, dims, aval, **params):
        from .batch_rules import _rank_to
        xs = [_front(a, d) if d is not None else
              P["reshape"](a, shape=(1,) + tuple(a.shape)) for a, d in zip(args, dims)]
        xs = [_rank_to(x, len(aval.shape)) for x in xs]
        params = dict(params, axis=params["axis"] % len(aval.shape) + 1)
        if "shape" in params:
            size = next(x.shape[0] for x, d in zip(xs, dims) if d is not None)
            xs = [x if x.shape[0] == size else
                  P["broadcast_to"](x, shape=(size,) + tuple(x.shape[1:])) for x in xs]
            params["shape"] = (size,) + tuple(params["shape"])
        return P[name](*xs, **params), 0
    return rule


INDEX_RULES = {"getitem": _getitem_rule, "scatter_add": _scatter_add_rule,
               "setitem": _setitem_rule, "take_along_axis": _along_rule("take_along_axis"),
               "put_along_axis": _along_rule("put_along_axis")}
