"""Forward-mode AD: tangents that flow with the trace.

Reverse mode (:mod:`graphc.autodiff`) walks the recorded graph backwards once the
function has returned.  Forward mode needs no walk: while a *level*
(:func:`forward_level`) is open on a trace, every value the trace records gets
its tangent at once, from its primitive's JVP rule (the record's ``jvp=``, written
in graphc's own ops, so tangents are graph too and compose with ``grad``).  The
tangent nodes are therefore recorded right after the value they belong to, and the
generated code interleaves each forward line with its tangent block (section
``"tangent"``, named ``dot_<name>``).

Levels nest (``jvp`` of a function that calls ``jvp``): the nodes a level's rule
records are values the outer levels differentiate, but never the level itself or
the levels inside it (no perturbation confusion).  A level only perturbs the
values marked with :meth:`Level.seed` (fresh aliases of the primals); values the
function closes over stay constant.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .errors import GradError
from .primitive import NOT_DIFFERENTIABLE, REGISTRY
from .tracing import AFTER_BIND, Tracer

__all__ = ["Level", "forward_level", "fit_tangent"]


class Level:
    """One open forward-mode transform: the tangent (a node id) of each perturbed value."""

    def __init__(self, trace):
        self.trace = trace
        self.tangents: dict[int, int] = {}
        self.shield = 0          # > 0 while this level's (or an outer level's) rule runs
        # a Python list of a loop's saved carries (graphc/control/tangents.py): the
        # tangent of carry i in each entry is entry j, {i: j}
        self.list_tangents: dict[int, dict] = {}

    def seed(self, primal: Tracer, tangent: Tracer) -> None:
        """Perturb ``primal`` along ``tangent``."""
        self.tangents[primal.node] = self.trace.lift(tangent).node

    def tangent(self, x):
        """The tangent tracer of ``x``, or None where it is (symbolically) zero."""
        if not isinstance(x, Tracer) or x._trace is not self.trace:
            return None
        t = self.tangents.get(x.node)
        return None if t is None else self.trace.tracer(t)


@contextmanager
def forward_level(trace):
    """Open a :class:`Level` on ``trace`` for the duration of the block."""
    level = Level(trace)
    trace.jvp_levels.append(level)
    try:
        yield level
    finally:
        trace.jvp_levels.remove(level)


def _after_bind(out: Tracer) -> None:
    """The tracer's hook: ``out`` was just recorded; give it a tangent in each open level.

    Innermost level first: the tangent nodes an inner level records are values
    the outer levels differentiate in turn.
    """
    levels = list(out._trace.jvp_levels)
    for i in range(len(levels) - 1, -1, -1):
        if not levels[i].shield:
            _propagate(levels[i], out.node, levels[i:])


def _propagate(level: Level, nid: int, shielded) -> None:
    if nid in level.tangents:
        return                  # a rewrite handed back a value that has its tangent
    trace = level.trace
    g = trace.graph
    node = g[nid]
    prim = REGISTRY.get(node.op)
    if prim is None or prim.vjp is NOT_DIFFERENTIABLE or node.dtype.kind != "f":
        return
    tangents = tuple(None if a not in level.tangents else trace.tracer(level.tangents[a])
                     for a in node.args)
    if all(t is None for t in tangents):
        return
    if prim.jvp is None:
        raise GradError(f"primitive {node.op!r} has no forward-mode rule (its record sets "
                        "no jvp)", where=node.where,
                        hint="write its jvp in the record, or use graphc.grad (reverse mode)")
    for lv in shielded:
        lv.shield += 1
    first = g._next
    try:
        with trace.context(section="tangent", grad_of=nid, where=node.where,
                           scope=node.scope):
            t = prim.jvp(tangents, *[trace.tracer(a) for a in node.args],
                         out=trace.tracer(nid), **node.params)
            if t is None:
                return
            t = fit_tangent(trace.lift(t), node.aval)
    finally:
        for lv in shielded:
            lv.shield -= 1
    tnode = g[t.node]
    if t.node >= first and tnode.tangent_of is None and tnode.adjoint_of is None:
        tnode.tangent_of = nid
    level.tangents[nid] = t.node


def fit_tangent(t: Tracer, aval) -> Tracer:
    """Broadcast and cast a rule's tangent to its primal's shape and dtype.

    A rule may return a tangent of an input's (broadcastable) shape, as
    ``add`` does when one side has no tangent.
    """
    from .ops.elementwise import astype
    from .ops.shape import broadcast_to
    shape = tuple(aval.shape)
    if tuple(t.shape) != shape:
        if tuple(np.broadcast_shapes(tuple(t.shape), shape)) != shape:
            raise GradError(f"a forward-mode rule returned a tangent of shape {t.shape} for a "
                            f"value of shape {shape}", hint="this is a bug in the rule")
        t = broadcast_to(t, shape=shape)
    if t.dtype != aval.dtype:
        t = astype(t, dtype=aval.dtype)
    return t


AFTER_BIND["jvp"] = _after_bind
