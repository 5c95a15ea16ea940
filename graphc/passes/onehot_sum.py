"""The sum of a one-hot seed is a constant: a simplify rule.

The gradient of ``-logp[np.arange(n), y].mean()`` is a one-hot seed, ``c`` at
``(i, y[i])`` of every row and zeros elsewhere (a ``scatter_add`` into zeros).  The
log-softmax's gradient then sums it along the rows::

    d_logp = np.zeros((128, 10), dtype=np.float32)
    d_logp[np.arange(128), y] = np.full((128,), -0.0078125, dtype=np.float32)
    d_sum = (-d_logp).sum(axis=1, keepdims=True) / sum_

Each row holds exactly one ``c`` whatever the labels are, so the sum is ``-c`` in
every row: a constant known when the code is generated, and ``d_sum`` becomes
``0.0078125 / sum_`` (simplify's full-constant rule then makes it a scalar).

:func:`sum_of_onehot` rewrites ``sum(s)`` and ``sum(-s)`` of a ``scatter_add`` ``s``
whose values are a constant, whose index is one integer array per axis, and whose
index arrays along the *kept* axes are constants that never name the same kept
position twice.  The labels (the index along summed axes) then only decide where
inside a summed slice the one value sits, which a sum of one value and zeros does not
see: the constant is computed by NumPy itself, the same scatter, negation and sum
with the labels replaced by 0, so it is the runtime value bit for bit (``c`` plus
exact zeros, signs of zero included).  The labels still have to be in range: the
rule applies only when the scatter itself stays in the code (another use of it reaches
an output), where an out-of-range label raises NumPy's IndexError as before.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sum_of_onehot"]


def sum_of_onehot(graph, nid, node) -> bool:
    """Rewrite ``sum(s)`` / ``sum(-s)`` of a one-hot ``scatter_add`` ``s`` into the
    constant it always is (module docstring); True when it did."""
    if node.op != "sum" or node.dtype.kind != "f" or set(node.params) - {"axis", "keepdims"}:
        return False
    x = node.args[0]
    neg = graph[x].op == "neg"
    s = graph[x].args[0] if neg else x
    sn = graph[s]
    if sn.op != "scatter_add" or sn.dtype != node.dtype or graph[x].dtype != node.dtype:
        return False
    value = _constant(graph, node, sn, neg)
    if value is None or not _stays(graph, s, {x, nid}):
        return False
    graph.set_args(nid, ())
    node.op, node.params, node.value = "const", {}, value
    return True


def _constant(graph, node, sn, neg):
    """The sum's value for every label, or None when it depends on them."""
    spec, shape = sn.params["spec"], tuple(sn.params["shape"])
    if len(spec) != len(shape) or any(item[0] != "array" for item in spec):
        return None
    v, *idx = [graph[a] for a in sn.args]
    if v.op != "const" or any(i.dtype.kind not in "iu" for i in idx):
        return None
    axes = node.params.get("axis")
    axes = tuple(range(len(shape))) if axes is None else tuple(a % len(shape) for a in axes)
    kept = [ax for ax in range(len(shape)) if ax not in axes]
    items = [idx[item[1]] for item in spec]
    if any(items[ax].op != "const" for ax in kept):
        return None                   # a runtime index along a kept axis
    try:
        m = np.broadcast_shapes(np.shape(v.value), *(tuple(i.shape) for i in items))
    except ValueError:
        return None
    where = [np.broadcast_to(np.asarray(items[ax].value) % shape[ax], m).ravel()
             if ax in kept else np.zeros(int(np.prod(m)), np.intp)
             for ax in range(len(shape))]
    if kept:
        flat = np.ravel_multi_index(tuple(where[ax] for ax in kept), tuple(shape[ax] for ax in kept))
        if np.unique(flat).size != flat.size:
            return None               # two values in one kept position: a real sum
    elif int(np.prod(m, dtype=np.int64)) > 1:
        return None
    dense = np.zeros(shape, sn.dtype)
    dense[tuple(where)] = np.broadcast_to(np.asarray(v.value, sn.dtype), m).ravel()
    if neg:
        dense = -dense
    out = np.asarray(np.sum(dense, axis=axes, keepdims=bool(node.params.get("keepdims"))))
    return out if out.shape == tuple(node.shape) and out.dtype == node.dtype else None


def _stays(graph, s, dropped) -> bool:
    """Does scatter ``s`` still reach an output through a use outside ``dropped``?"""
    outputs = set(graph.outputs)
    if s in outputs:
        return True
    seen, todo = set(dropped), [u for u in graph.users(s) if u not in dropped]
    while todo:
        u = todo.pop()
        if u in seen:
            continue
        if u in outputs:
            return True
        seen.add(u)
        todo.extend(graph.users(u))
    return False
