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

from .control.body import replay, trace_body
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
            env[nid] = (trace.lift(value if node.weak else np.array(value, dtype=node.dtype)),
                        None)
            continue
        args = [env[a] for a in node.args]
        with trace.context(where=node.where):
            env[nid] = _batch_node(trace, g, nid, args, label)
    return [env[o] for o in g.outputs]


def _batch_node(trace, g, nid, args, label):
    node = g[nid]
    vals = [a for a, _ in args]
    dims = [d for _, d in args]
    batched = any(d is not None for d in dims)
    prim = REGISTRY.get(node.op)
    if prim is not None and prim.family == "random":
        raise UnsupportedError(
            f"{label}: random sampling ({node.op}) inside vmap would draw the same values "
            "for every example", where=node.where,
            hint="draw the random values outside and pass them in with a batch axis")
    if node.op == "guard" and batched:
        raise ControlFlowError(
            f"{label}: Python control flow (if/while/bool()) on a value that differs from "
            "example to example", where=node.where,
            hint="use np.where(cond, a, b) to pick per example instead of if/else")
    if not batched:
        first = trace.graph._next
        out = replay(_one_node_graph(g, nid), vals)[0] if node.op in SUBGRAPH_OPS \
            or node.op == "proj" else prim(*vals, **node.params)
        _name(trace, out, node, first)
        return out, None
    if prim is None or prim.batch is None:
        what = f"graphc.{node.op}" if node.op in SUBGRAPH_OPS or node.op == "proj" \
            else f"primitive {node.op!r}"
        raise UnsupportedError(
            f"{label}: {what} has no batching rule, and it is reached with a batched input",
            where=node.where,
            hint="write the batch= rule in its record (graphc/batch_rules.py), or move the "
                 "operation out of the vmapped function")
    first = trace.graph._next
    out, d = prim.batch(vals, dims, node.aval, **node.params)
    out = trace.lift(out)
    _name(trace, out, node, first)
    return out, d


def _one_node_graph(g, nid):
    raise UnsupportedError("a loop or branch inside graphc.vmap is not supported yet",
                           where=g[nid].where,
                           hint="write the loop as a Python loop inside the vmapped function, "
                                "or vmap the loop's body")


def _name(trace, out, node, first):
    """The batched value keeps the per-example value's name (readable generated code)."""
    if node.name and out.node >= first and trace.graph[out.node].name is None:
        trace.graph[out.node].name = node.name


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
    body = trace_body(lambda *xs: fn(*rebuild(list(xs))), specs, "vmap", where)
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
