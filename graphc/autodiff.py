"""Reverse-mode AD as a graph transform.

:func:`backward` walks the nodes between the differentiated inputs and the
output in reverse program order, calls each primitive's VJP rule (which builds
more graph, in graphc's own ops) and accumulates cotangents where a value has
several children: the lecture's sum over children.  Un-broadcasting happens
here, once, so rules return cotangents at their output's shape.
"""
from __future__ import annotations

import numpy as np

from .errors import GradError
from .ops.shape import unbroadcast
from .ir import SUBGRAPH_OPS
from .primitive import NOT_DIFFERENTIABLE, REGISTRY
from . import name_pause
from .shift_invariance import cancelled_shifts
from .tracing import Tracer

__all__ = ["backward"]


def _active_nodes(graph, outs: list[int], wrt: list[int], start: int) -> set:
    """Nodes on some path from a ``wrt`` node to an ``outs`` node (only ids >= ``start``
    besides the ``wrt`` nodes themselves: a nested ``grad`` must treat values
    computed before it was called as constants)."""
    anc = set(outs)
    for out in outs:
        anc |= graph.ancestors(out)
    seen, stack = set(), [w for w in wrt if w in anc]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(v for v in graph.users(n) if v >= start and v in anc and v not in seen)
    return seen


def _differentiable(graph, nid) -> bool:
    return graph[nid].aval.dtype.kind == "f"


def backward(out: Tracer, wrt: list[Tracer], seed: Tracer | None = None,
             start: int = 0) -> list[Tracer]:
    """Cotangents of ``wrt`` for the scalar (or ``seed``-weighted) ``out``.

    Builds backward nodes into ``out``'s trace; returns one tracer per ``wrt``
    entry (a zeros constant where ``out`` does not depend on it).  ``out`` and
    ``seed`` may be lists (several outputs, one seed each: a loop body's adjoint).
    """
    # graphc's own rules run without the name hook (graphc/name_pause.py); a rule
    # that may reach the user's code gets it back (with_hook)
    return name_pause.paused(_backward, out, wrt, seed, start)


def _backward(hook, out, wrt, seed, start):
    outs, seeds = (out, seed) if isinstance(out, list) else ([out], [seed])
    trace = outs[0]._trace
    g = trace.graph
    keep = getattr(trace, "keep_adjoints", False)      # graphc/trace_display.py
    cts: dict[int, Tracer] = {}
    for out, seed in zip(outs, seeds):
        if seed is None:
            seed = _seed(g, trace, out, keep)
        if g[seed.node].adjoint_of is None:
            g[seed.node].adjoint_of = out.node
        cts[out.node] = _accumulate(g, trace, cts.get(out.node), seed)
    wrt_ids = [w.node for w in wrt]
    active = _active_nodes(g, [o.node for o in outs], wrt_ids, start)
    # a softmax's max-shift: its gradient provably cancels (graphc/shift_invariance.py)
    active -= cancelled_shifts(g, [o.node for o in outs], active)
    for nid in sorted(active, reverse=True):
        ct = cts.get(nid)
        if ct is None:
            continue
        node = g[nid]
        if node.op in SUBGRAPH_OPS:        # loops and branches (graphc/control)
            name_pause.with_hook(hook, _structured_vjp, g, trace, nid, ct, active, cts)
            continue
        if keep and (node.name or nid in trace.names) and not _claimable(g[ct.node], nid):
            ct = cts[nid] = _kept(g, trace, ct, nid)
        _mark_adjoint(g, ct.node, nid)
        prim = REGISTRY.get(node.op)
        if prim is None or prim.vjp is NOT_DIFFERENTIABLE:
            continue
        args = node.args
        need = [a in active and _differentiable(g, a) for a in args]
        if not any(need):
            continue
        if prim.vjp is None:
            raise GradError(f"primitive {node.op!r} has no gradient rule (its record sets no vjp)",
                            where=node.where,
                            hint="write its vjp, or declare vjp=NOT_DIFFERENTIABLE in its record")
        with trace.context(section="backward", grad_of=nid, where=node.where,
                           scope=node.scope):
            for a, c, n in zip(args, _rule(trace, prim, nid, node, ct, need, hook), need):
                if c is None or not n:
                    continue
                c = _fit(c, g.aval(a))
                cts[a] = _accumulate(g, trace, cts.get(a), c)
    results = []
    for w in wrt:
        c = cts.get(w.node)
        if c is None:
            c = trace.lift(np.zeros(w.shape, w.dtype))
        else:
            _mark_adjoint(g, c.node, w.node)
        results.append(c)
    return results


def _rule(trace, prim, nid, node, ct, need, hook):
    """The cotangents of ``node``'s arguments by its primitive's rule."""
    if not name_pause.internal_rules(prim):       # (it may reach the user's code)
        return name_pause.with_hook(hook, prim.vjp, ct, *[trace.tracer(a) for a in node.args],
                                    out=trace.tracer(nid), **node.params)
    return prim.vjp(ct, *[trace.tracer(a) for a in node.args], out=trace.tracer(nid),
                    **node.params)


def _structured_vjp(g, trace, nid, ct, active, cts):
    """A loop/branch node or one of its results: its handler's rule gives
    ``(argument, cotangent)`` pairs (a result's cotangent is gathered on the node)."""
    node = g[nid]
    with trace.context(section="backward", grad_of=nid, where=node.where, scope=node.scope):
        for a, c in SUBGRAPH_OPS[node.op].vjp(trace, nid, ct):
            if c is None or a not in active or not _differentiable(g, a):
                continue
            if isinstance(c, Tracer):
                c = _fit(c, g.aval(a))
                cts[a] = _accumulate(g, trace, cts.get(a), c)
            else:                       # the gathered cotangents of a multi-result node
                cts[a] = c if cts.get(a) is None else cts[a] + c


def _accumulate(g, trace, total, c):
    """``total + c`` (the sum over children); ``total - y`` when ``c`` is ``-y``."""
    if total is None:
        return c
    node = g[c.node]
    if node.op == "neg" and g.n_uses(c.node) == 0:
        return total - trace.tracer(node.args[0])
    return total + c


def _fit(ct: Tracer, aval) -> Tracer:
    """Un-broadcast and cast a cotangent to its primal's shape and dtype."""
    ct = unbroadcast(ct, aval.shape)
    if ct.dtype != aval.dtype:
        from .ops.elementwise import astype
        ct = astype(ct, dtype=aval.dtype)
    return ct


def _seed(g, trace, out: Tracer, keep: bool) -> Tracer:
    """The backward pass's seed: 1.0 (ones), the output's own adjoint."""
    with trace.context(section="backward"):
        seed = trace.lift(1.0 if out.aval.weak else np.ones(out.shape, out.dtype))
        return _kept(g, trace, seed, out.node, block=False) if keep else seed


def _kept(g, trace, ct: Tracer, primal: int, block: bool = True) -> Tracer:
    """``d_<name> = ct`` as a node of its own (an identity: never folded at trace time),
    so that the trace shows one adjoint per named value, as the lecture's table does.
    ``block``: it opens the ``grad of`` block of ``primal`` (not for the seed)."""
    node = g[primal]
    block_attrs = {"grad_of": primal, "where": node.where} if block else {}
    with trace.context(section="backward", scope=node.scope, **block_attrs):
        attrs = {k: v for k, v in trace.attrs.items() if k != "where"}
        nid = g.add_node("identity", (ct.node,), ct.aval, where=trace.attrs.get("where"),
                         **attrs)
    g[nid].adjoint_of = primal
    return trace.tracer(nid)


def _claimable(node, primal: int) -> bool:
    """A backward node that is (or can become) the adjoint of ``primal``."""
    return node.op not in ("input", "const") and node.section == "backward" \
        and node.adjoint_of in (None, primal)


def _mark_adjoint(g, ct_node: int, primal: int) -> None:
    node = g[ct_node]
    if node.op not in ("input",) and node.section == "backward" \
            and node.adjoint_of is None:
        node.adjoint_of = primal
