"""``graphc.cond`` and ``graphc.switch``: both branches traced, one ``if`` in the code.

A ``cond`` node holds one body per branch (``false, true`` for ``cond``; the
branches in order for ``switch``), each a sub-graph from the operands (and the
values it captured) to results of one common type.  Its arguments are the
predicate or index, the operand leaves and every branch's captured values; its
results are ``proj`` nodes.  Its backward pass is another ``cond`` node over the
same predicate whose branches recompute their forward branch and run its adjoint.
"""
from __future__ import annotations

import numpy as np

from .. import errors
from ..autodiff import backward
from ..errors import ShapeError
from ..primitive import Aval
from ..pytree import flatten, unflatten
from ..tracing import Tracer, current_trace
from .body import Handler, add_structured, check_types, replay, strong_leaves, trace_body

__all__ = ["cond", "switch", "branch_slices"]


def cond(pred, true_fn, false_fn, *operands):
    """``true_fn(*operands) if pred else false_fn(*operands)``, with a traced ``pred``.

    Both branches are traced (they must return the same structure, shapes and
    dtypes) and the generated code is one ``if``/``else``.  Differentiable in
    reverse mode: the backward pass is an ``if`` over the branches' adjoints.  A
    ``pred`` that is a Python or NumPy value (not traced) just calls one branch.

    Parameters
    ----------
    pred : bool scalar
    true_fn, false_fn : callable
        Called with ``*operands``.
    *operands : arrays or pytrees of arrays

    Returns
    -------
    pytree
        The result of the branch taken.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(x):
    ...     return graphc.cond(x.sum() > 0, lambda v: v * 2.0, lambda v: -v, x)
    >>> graphc.compile(f)(np.array([1.0, -3.0]))
    array([-1.,  3.])
    >>> graphc.grad(lambda x: f(x).sum())(np.array([1.0, 2.0]))
    array([2., 2.])
    """
    where = errors.user_where(1)
    if not isinstance(pred, Tracer):
        return (true_fn if bool(np.asarray(pred)) else false_fn)(*operands)
    if pred.shape != () or pred.dtype.kind not in "biuf":
        raise ShapeError(f"cond: pred must be a scalar, got {pred.aval.short()}", where=where,
                         hint="reduce it first, e.g. (x > 0).all()")
    if pred.dtype.kind != "b":
        pred = pred != 0
    return _user_branches(pred, [false_fn, true_fn], operands, where, "cond")


def switch(index, branches, *operands):
    """``branches[index](*operands)``, with a traced integer ``index`` (clamped, as in JAX).

    Every branch is traced (same result structure, shapes and dtypes); the
    generated code is an ``if``/``elif`` chain on the clamped index.  Differentiable
    in reverse mode.  A static ``index`` just calls one branch.

    Parameters
    ----------
    index : int scalar
        Clamped to ``[0, len(branches) - 1]``.
    branches : sequence of callables
    *operands : arrays or pytrees of arrays

    Returns
    -------
    pytree

    Examples
    --------
    >>> import numpy as np, graphc
    >>> def f(k, x):
    ...     return graphc.switch(k, [np.sin, np.cos, lambda v: v ** 2], x)
    >>> float(graphc.compile(f)(np.array(2), np.array(3.0)))
    9.0
    >>> float(graphc.grad(f, argnums=1)(np.array(1), 0.5))     # -sin(0.5)
    -0.479425538604203
    """
    where = errors.user_where(1)
    branches = list(branches)
    if not branches:
        raise ShapeError("switch: no branches given", where=where)
    if not isinstance(index, Tracer):
        i = int(np.clip(int(np.asarray(index)), 0, len(branches) - 1))
        return branches[i](*operands)
    if index.shape != () or index.dtype.kind not in "iub":
        raise ShapeError(f"switch: index must be an integer scalar, got {index.aval.short()}",
                         where=where, hint="pass an int (or a traced integer scalar)")
    if len(branches) == 1:
        return branches[0](*operands)
    return _user_branches(index, branches, operands, where, "switch")


def _user_branches(index, fns, operands, where, kind):
    leaves, otdef, _ = flatten(tuple(operands))
    leaves = strong_leaves(leaves)
    outs, tdef = branch_node(index, [lambda ops, fn=fn: _strong(fn(*ops)) for fn in fns],
                             leaves, otdef, where, kind)
    return unflatten(tdef, outs)


def _strong(out):
    """A branch's Python-number results as arrays of their default dtype."""
    leaves, tdef, _ = flatten(out)
    return unflatten(tdef, [x.astype(x.dtype) if isinstance(x, Tracer) and x.aval.weak else
                            x for x in strong_leaves(leaves)])


def branch_node(index, fns, leaves, otdef, where, kind, section="forward"):
    """Trace each ``fn(operands)`` and record one ``cond`` node; (results, treedef)."""
    avals = [Aval(tuple(x.shape), x.dtype, False) for x in leaves]
    bodies = [trace_body(fn, [(otdef, avals)], f"{kind} branch {i}", where, section)
              for i, fn in enumerate(fns)]
    first = bodies[0]
    for i, b in enumerate(bodies[1:], 1):
        check_types(b.out_avals, first.out_avals, b.out_tdef, first.out_tdef,
                    f"{kind}: branch {i} returns another type than branch 0: its result",
                    where, "every branch must return the same structure, shapes and dtypes "
                           "(cast with .astype, or use np.zeros_like for a missing value)")
    params = {"kind": kind, "n_ops": len(leaves), "n_outer": tuple(len(b.outer) for b in bodies)}
    args = [index] + list(leaves) + [c for b in bodies for c in b.outer]
    outs = add_structured("cond", args, [b.graph for b in bodies], params,
                          [Aval(a.shape, a.dtype, False) for a in first.out_avals], where)
    return outs, first.out_tdef


def branch_slices(node):
    """Slices of a cond node's arguments: the operands, then each branch's captured values."""
    m = node.params["n_ops"]
    out, start = [], 1 + m
    for n in node.params["n_outer"]:
        out.append(slice(start, start + n))
        start += n
    return slice(1, 1 + m), out


def _result_avals(node):
    body = node.bodies[0]
    return [body.aval(o) for o in body.outputs]


def _cond_vjp(trace, nid, ct):
    """A cond over the same index whose branches run their forward branch's adjoint."""
    g = trace.graph
    node = g[nid]
    sops, souts = branch_slices(node)
    args = [trace.tracer(a) for a in node.args]
    ops, outers = args[sops], [args[s] for s in souts]
    n_res = len(node.bodies[0].outputs)
    res_avals = _result_avals(node)
    fr = [i for i in range(n_res) if res_avals[i].dtype.kind == "f"]
    cts = [ct.get(i) if ct.get(i) is not None else
           trace.lift(np.zeros(res_avals[i].shape, res_avals[i].dtype)) for i in fr]
    fops = [j for j, x in enumerate(ops) if x.dtype.kind == "f"]
    fouts = [[j for j, c in enumerate(o) if c.dtype.kind == "f"] for o in outers]
    fns = [_adjoint_branch(b, node.bodies[b], outers, fr, fops, fouts, len(ops))
           for b in range(len(node.bodies))]
    leaves, otdef, _ = flatten((ops, cts))
    outs, _ = branch_node(args[0], fns, leaves, otdef, node.where, node.params["kind"],
                          "backward")
    pairs = [(ops[j].node, c) for j, c in zip(fops, outs)]
    k = len(fops)
    for o, fo in zip(outers, fouts):
        pairs += [(o[j].node, c) for j, c in zip(fo, outs[k:k + len(fo)])]
        k += len(fo)
    return pairs


def _adjoint_branch(b, graph, outers, fr, fops, fouts, m):
    def branch(args):
        ops, cts = args
        trace = current_trace()
        consts = [trace.lift(c) for c in outers[b]]
        outs = replay(graph, list(ops) + consts)
        wrt = [ops[j] for j in fops] + [consts[j] for j in fouts[b]]
        grads = backward([outs[i] for i in fr], wrt, list(cts)) if fr else \
            [trace.lift(np.zeros(w.shape, w.dtype)) for w in wrt]
        out = grads[:len(fops)]
        for bb, fo in enumerate(fouts):
            if bb == b:
                out += grads[len(fops):]
            else:
                out += [trace.lift(np.zeros(outers[bb][j].shape, outers[bb][j].dtype))
                        for j in fo]
        return out
    return branch


Handler("cond", _cond_vjp, _result_avals)
