"""Batching a ``scan`` node (``graphc.scan``, ``graphc.fori_loop``; :mod:`graphc.batching`).

The batched loop is another scan whose body is the per-example body batched
(:func:`graphc.batching.batch_graph` inside a new body trace).  A carry is batched
when its initial value is, or when the body makes it so (found by propagating
"depends on a batched value" through the body until the carries settle); batched
carries and each step's slice of batched ``xs`` have their batch axis first, so the
stacked ``ys`` and the tape have it second (after the time axis).
"""
from __future__ import annotations

import numpy as np

from .control.body import trace_body
from .control.scan import arg_slices, scan_node
from .errors import UnsupportedError
from .pytree import flatten

__all__ = ["batch_scan", "batch_cond", "batch_while", "LIST_TAPE"]

#: The "batch axis" of a while_loop's tape of batched carries (a Python list): batched,
#: but no rule can use it.
LIST_TAPE = "list tape"


def _batched_outputs(body, batched_inputs):
    """Which outputs of ``body`` depend on a batched input."""
    hot = {i for i, b in zip(body.inputs, batched_inputs) if b}
    for nid in body.order():
        if nid not in hot and any(a in hot for a in body[nid].args):
            hot.add(nid)
    return [o in hot for o in body.outputs]


def _carry_batching(body, k, init_b, x_b, outer_b):
    carry = list(init_b)
    while True:
        out = _batched_outputs(body, carry + x_b + outer_b)
        new = [c or o for c, o in zip(carry, out[:k])]
        if new == carry:
            return carry, out[k:]
        carry = new


def batch_scan(g, nid, args, label, batch_graph, place):
    """The batched results of scan node ``nid``: one ``(tracer, axis or None)`` each."""
    node = g[nid]
    p, body = node.params, node.bodies[0]
    si, sx, so, lpos = arg_slices(node)
    if p["xs_list"] or p["tape"] != "array" or lpos is not None:
        raise UnsupportedError(f"{label}: a loop whose trip count is not static inside "
                               "graphc.vmap is not supported yet", where=node.where,
                               hint="use static bounds (Python ints)")
    k = p["n_carry"]
    init, xs, outer = args[si], args[sx], args[so]
    size = next(v.shape[d] for v, d in args if d is not None)
    carry_b, y_b = _carry_batching(body, k, [d is not None for _, d in init],
                                   [d is not None for _, d in xs],
                                   [d is not None for _, d in outer])
    init_v = [place(v, d, 0, size) if b else v for (v, d), b in zip(init, carry_b)]
    xs_v = [place(v, d, 1, size) if d is not None else v for v, d in xs]

    def step(*ins):
        cs, xsl = ins[:k], ins[k:]
        inputs = [(c, 0 if b else None) for c, b in zip(cs, carry_b)]
        inputs += [(x, 0 if d is not None else None) for x, (_, d) in zip(xsl, xs)]
        inputs += list(outer)
        outs = batch_graph(body, inputs, label)
        res = [place(o, d, 0, size) if b else o for (o, d), b in zip(outs[:k], carry_b)]
        res += [place(o, d, 0, size) if b else o for (o, d), b in zip(outs[k:], y_b)]
        return res

    specs = [(flatten(0.0)[1], [v.aval]) for v in init_v]
    specs += [(flatten(0.0)[1], [type(v.aval)(tuple(v.shape[1:]), v.dtype, False)])
              for v in xs_v]
    names = {i: body[n].name for i, n in enumerate(body.inputs[:len(specs)]) if body[n].name}
    new = trace_body(step, specs, "scan body", node.where, names=names)
    outs = scan_node(new, init_v, xs_v, p["length"], p["reverse"], node.where)
    dims = [0 if b else None for b in carry_b] + [1 if b else None for b in y_b] \
        + [1 if b else None for b in carry_b]
    return list(zip(outs, dims))


def batch_cond(g, nid, args, label, batch_graph, place):
    """The batched results of a ``cond`` node whose predicate/index is the same for the
    whole batch: a ``cond`` over the same index whose branches are batched.  With a
    predicate per example (:func:`_select_per_example`) every branch runs on the whole
    batch and each example takes its own branch's results, as JAX's ``vmap`` of
    ``lax.cond`` does."""
    from .control.body import add_structured
    from .control.branches import branch_slices
    node = g[nid]
    size = next(v.shape[d] for v, d in args if d is not None)
    if args[0][1] is not None:
        return _select_per_example(node, args, label, batch_graph, place, size)
    ops_sl, outer_sl = branch_slices(node)
    ops = args[ops_sl]
    outs_b = [False] * len(node.bodies[0].outputs)
    for body, sl in zip(node.bodies, outer_sl):
        got = _batched_outputs(body, [d is not None for _, d in ops + args[sl]])
        outs_b = [a or b for a, b in zip(outs_b, got)]
    ops_v = [place(v, d, 0, size) if d is not None else v for v, d in ops]
    bodies = []
    for i, (body, sl) in enumerate(zip(node.bodies, outer_sl)):
        def branch(*ins, body=body, outer=args[sl]):
            inputs = [(x, 0 if d is not None else None) for x, (_, d) in zip(ins, ops)]
            outs = batch_graph(body, inputs + list(outer), label)
            return [place(o, d, 0, size) if b else o for (o, d), b in zip(outs, outs_b)]
        specs = [(flatten(0.0)[1], [v.aval]) for v in ops_v]
        bodies.append(trace_body(branch, specs, f"{node.params['kind']} branch {i}",
                                 node.where, node.section or "forward"))
    params = dict(node.params, n_ops=len(ops_v), n_outer=tuple(len(b.outer) for b in bodies))
    new_args = [args[0][0]] + ops_v + [c for b in bodies for c in b.outer]
    avals = [bodies[0].graph.aval(o) for o in bodies[0].graph.outputs]
    outs = add_structured("cond", new_args, [b.graph for b in bodies], params, avals,
                          node.where)
    return [(o, 0 if b else None) for o, b in zip(outs, outs_b)]


def _select_per_example(node, args, label, batch_graph, place, size):
    """Every branch batched on the whole batch, then per example the results of the
    branch its index (clamped, as ``switch`` does; a predicate's False is 0) names:
    ``np.where(index == k, branch_k, ...)``.  Every branch runs, so one that fails on
    another example's values (a NaN, a warning) fails as ``np.where`` would."""
    from .control.branches import branch_slices
    ops_sl, outer_sl = branch_slices(node)
    results = [[place(o, d, 0, size) for o, d in batch_graph(body, list(args[ops_sl])
                                                              + list(args[sl]), label)]
               for body, sl in zip(node.bodies, outer_sl)]
    index = place(*args[0], 0, size)
    if index.dtype.kind != "b":
        index = np.clip(index, 0, len(results) - 1)
    outs = []
    for j, last in enumerate(results[-1]):
        pick = np.reshape(index, (size,) + (1,) * (last.ndim - 1))
        if index.dtype.kind == "b":         # cond: branches (false, true)
            outs.append((np.where(pick, last, results[0][j]), 0))
            continue
        out = last
        for k in range(len(results) - 2, -1, -1):
            out = np.where(pick == k, results[k][j], out)
        outs.append((out, 0))
    return outs


def batch_while(g, nid, args, label, batch_graph, place):
    """A ``while_loop`` whose condition is the same for the whole batch (it reads no
    batched value): a ``while`` over batched carries.  With a condition per example (a
    different trip count for each) the loop runs while any example runs, and each step
    keeps the carries of the examples already done (``np.where``)."""
    from .control.body import LIST_AVAL, add_structured
    from .control.while_ import while_slices
    node = g[nid]
    cond, body = node.bodies
    sc, scond, sbody = while_slices(node)
    carry, c_outer, b_outer = args[sc], args[scond], args[sbody]
    k = len(carry)
    size = next(v.shape[d] for v, d in args if d is not None)
    carry_b, _ = _carry_batching(body, k, [d is not None for _, d in carry], [],
                                 [d is not None for _, d in b_outer])
    # a condition per example: every carry per example, the loop runs while any example
    # runs, and an example that is done keeps its carry (as jax.vmap of lax.while_loop)
    per_example = _batched_outputs(cond, carry_b + [d is not None for _, d in c_outer])[0]
    if per_example:
        carry_b = [True] * k
    carry_v = [place(v, d, 0, size) if b else v for (v, d), b in zip(carry, carry_b)]
    specs = [(flatten(0.0)[1], [v.aval]) for v in carry_v]

    def ins(cs):
        return [(c, 0 if b else None) for c, b in zip(cs, carry_b)]

    def running(cs):
        (c, d), = batch_graph(cond, ins(cs) + list(c_outer), label)
        return place(c, d, 0, size)

    def cond_fn(*cs):
        if per_example:
            return [np.any(running(cs))]
        return [o for o, _ in batch_graph(cond, ins(cs) + list(c_outer), label)]

    def body_fn(*cs):
        outs = batch_graph(body, ins(cs) + list(b_outer), label)
        new = [place(o, d, 0, size) if b else o for (o, d), b in zip(outs, carry_b)]
        if not per_example:
            return new
        go = running(cs)
        return [np.where(np.reshape(go, (size,) + (1,) * (n.ndim - 1)), n, c)
                for n, c in zip(new, cs)]

    names = {i: body[n].name for i, n in enumerate(body.inputs[:k]) if body[n].name}
    new_c = trace_body(cond_fn, specs, "while_loop cond", node.where, names=names)
    new_b = trace_body(body_fn, specs, "while_loop body", node.where, names=names)
    params = dict(node.params, n_cond_outer=len(new_c.outer))
    outs = add_structured("while", carry_v + new_c.outer + new_b.outer,
                          [new_c.graph, new_b.graph], params,
                          [v.aval for v in carry_v] + [LIST_AVAL], node.where)
    # the tape (a Python list of batched carries) is marked batched but has no axis: only
    # the backward loop of a gradient reads it, and batch_scan refuses list tapes
    tape = LIST_TAPE if any(carry_b) else None
    return [(o, 0 if b else None) for o, b in zip(outs[:k], carry_b)] + [(outs[k], tape)]
