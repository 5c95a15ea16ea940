"""The batching transform behind ``graphc.vmap``.

:func:`batch_call` traces the user's function once on *per-example* values into a
sub-graph (:func:`graphc.control.body.trace_body`, so values of an enclosing trace it
closes over are captured as unbatched inputs), then walks that graph in order and
records each node again in the current trace on the *batched* values: every value
is a pair (tracer of the batched array, batch axis or None).  A node whose inputs are
all unbatched is recorded as it is; otherwise its record's batching rule
(``batch=``, :mod:`graphc.batch_rules`) records the batched op.  The result is an
ordinary graph, so ``grad``/``jvp`` of it, and ``vmap`` of a ``grad``, compose.
"""
from __future__ import annotations

import numpy as np

from .control.body import trace_body
from .errors import ControlFlowError, UnsupportedError
from .ir import SUBGRAPH_OPS
from .primitive import REGISTRY
from .pytree import flatten
from .tracing import current_trace
from . import batch_rules  # noqa: F401  (installs the rules on the records)
from .batch_rules import moveaxis

__all__ = ["batch_call", "batch_graph"]


def _live(g):
    """The nodes the outputs depend on (a dead node needs no rule)."""
    seen, stack = set(), list(g.outputs)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(g[n].args)
    return seen


def batch_graph(g, inputs, label):
    """Record ``g`` in the current trace on ``inputs`` [(tracer, axis or None)].

    Returns one ``(tracer, axis or None)`` per output of ``g``.
    """
    trace = current_trace()
    env = dict(zip(g.inputs, inputs))
    live = _live(g)
    for nid in g.order():
        if nid in env or nid not in live:
            continue
        node = g[nid]
        if node.op == "const":
            value = node.value
            if node.weak:            # a Python number stays one (weak: NEP 50)
                value = value.item() if hasattr(value, "item") else value
            else:
                value = np.array(value, dtype=node.dtype)
            env[nid] = (trace.lift(value), None)
            continue
        args = [env[a] for a in node.args]
        if node.op == "proj":            # one result of a loop: [(tracer, axis)] of the loop
            env[nid] = args[0][node.params["index"]]
            continue
        first = trace.graph._next
        with trace.context(where=node.where, **_attrs(node, env)):
            if node.op in SUBGRAPH_OPS:      # a loop or branch: a list of results
                env[nid] = _batch_structured(g, nid, args, label)
                continue
            env[nid] = _batch_node(trace, g, nid, args, label)
        _carry(trace.graph, env[nid][0].node, node, env, first)
    return [env[o] for o in g.outputs]


def _outer(env, nid):
    if nid is None or nid not in env or isinstance(env[nid], list):   # (a loop: its results)
        return None
    return env[nid][0].node


def _attrs(node, env):
    """The node's section (a gradient's nodes stay backward) and what it was built for."""
    out = {"section": node.section or "forward"}
    if node.grad_of is not None:
        out["grad_of"] = _outer(env, node.grad_of)
    if node.scope is not None:
        out["scope"] = node.scope
    if node.recompute:                  # a checkpoint's recomputation (graph.cost, drawings)
        out["recompute"] = True
    return out


def _carry(graph, out, node, env, first):
    """The batched value keeps the per-example value's name and what it is the
    adjoint/tangent of (readable generated code: d_h, dot_h)."""
    if out < first:
        return
    new = graph[out]
    for key in ("name", "hint"):
        if getattr(new, key) is None and getattr(node, key) is not None:
            setattr(new, key, getattr(node, key))
    for key in ("adjoint_of", "tangent_of"):
        if getattr(new, key) is None and getattr(node, key) is not None:
            setattr(new, key, _outer(env, getattr(node, key)))


def _batch_node(trace, g, nid, args, label):
    node = g[nid]
    vals = [a for a, _ in args]
    dims = [d for _, d in args]
    batched = any(d is not None for d in dims)
    prim = REGISTRY.get(node.op)
    if node.op == "guard" and batched:
        raise ControlFlowError(
            f"{label}: Python control flow (if/while/bool()) on a value that differs from "
            "example to example", where=node.where,
            hint="use np.where(cond, a, b) to pick per example instead of if/else")
    if prim is None:
        _refuse_loop(g, nid, label)
    if not batched:
        return trace.lift(prim(*vals, **node.params)), None
    if prim.batch is None:
        raise UnsupportedError(
            f"{label}: primitive {node.op!r} has no batching rule, and it is reached with a "
            "batched input",
            where=node.where,
            hint="write the batch= rule in its record (graphc/batch_rules.py), or move the "
                 "operation out of the vmapped function")
    out, d = prim.batch(vals, dims, node.aval, **node.params)
    return trace.lift(out), d


def _batch_structured(g, nid, args, label):
    """A loop or branch node: recorded as it is when nothing it reads is batched, else
    batched by :mod:`graphc.batch_loops`."""
    from . import batch_loops
    node = g[nid]
    if all(d is None for _, d in args):
        from .control.body import add_structured
        avals = SUBGRAPH_OPS[node.op].result_avals(node)
        outs = add_structured(node.op, [v for v, _ in args], [b.copy() for b in node.bodies],
                              dict(node.params), avals, node.where)
        return [(o, None) for o in outs]
    batch = {"scan": batch_loops.batch_scan, "cond": batch_loops.batch_cond,
             "while": batch_loops.batch_while}.get(node.op)
    if batch is None:
        _refuse_loop(g, nid, label)
    return batch(g, nid, args, label, batch_graph, place)


def _refuse_loop(g, nid, label):
    op = {"while": "while_loop", "fori": "fori_loop"}.get(g[nid].op, g[nid].op)
    raise UnsupportedError(f"{label}: graphc.{op} (a loop or branch) inside graphc.vmap is "
                           "not supported yet", where=g[nid].where,
                           hint="write the loop as a Python loop inside the vmapped function, "
                                "or call graphc.vmap inside the loop's body")


def batch_call(fn, leaves, axes, rebuild, label, where):
    """Batch ``fn`` over ``leaves`` (tracers of the current trace) with batch ``axes``.

    ``rebuild(per_example_leaves) -> args`` rebuilds ``fn``'s positional arguments.
    Returns the output leaves, each ``(tracer, axis or None)``, and the output treedef.
    """
    specs = []
    for x, ax in zip(leaves, axes):
        a = x.aval
        shape = tuple(a.shape) if ax is None else tuple(a.shape[:ax] + a.shape[ax + 1:])
        specs.append((flatten(0.0)[1], [type(a)(shape, a.dtype, a.weak)]))
    try:
        body = trace_body(lambda *xs: fn(*rebuild(list(xs))), specs, "vmap", where)
    except ControlFlowError as e:
        if "concrete value" not in e.message:
            raise
        raise ControlFlowError(
            f"{label}: {e.message.split(' needs ')[0]} on a traced value: inside vmap a "
            "value may differ from example to example, so it has no single value to branch "
            "on", where=e.where,
            hint="pick per example with np.where(cond, a, b) instead of if/else") from None
    inputs = [(x, ax) for x, ax in zip(leaves, axes)] + [(x, None) for x in body.outer]
    return batch_graph(body.graph, inputs, label), body.out_tdef


def place(out, d, axis, size):
    """A batched output with its batch axis at ``axis`` (broadcast when unbatched)."""
    if d is None:
        from .ops.shape import broadcast_to, reshape
        x = reshape(out, shape=(1,) + tuple(out.shape)) if out.ndim else out
        out = broadcast_to(x, shape=(size,) + tuple(out.shape))
        d = 0
    return moveaxis(out, d, axis)
