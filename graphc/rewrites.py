"""Stable rewrites: peepholes applied while a function is traced.

A user who writes ``np.log(1 + np.exp(x))`` gets ``inf`` at ``x = 1000`` from
plain NumPy, and a ``nan`` gradient (``exp(x) / (1 + exp(x)) = inf / inf``).
graphc records the same value as the ``softplus`` primitive instead, which
is exact for every finite input, and does the same for a log of a softmax.

Why at bind time, not as a pass over the finished graph: reverse mode runs
*inside* the traced body (:mod:`graphc.autodiff` builds backward nodes while
the trace is open), so by the time a whole-graph pass could look at the
forward chain, the gradient of the naive chain has already been recorded.
Rewriting when ``log`` is bound means the forward value *and* every gradient
(including gradients of gradients) are built from the stable primitive.

The rewritten node is an ordinary node of the user's line: it keeps the
user's variable name and ``file.py:LINE`` (so generated code shows
``y = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))  # f64[3]  model.py:12``), and it carries a
``rewrite`` attribute naming the rule.  The operands of the naive chain
(``exp(x)``, ``1 + exp(x)``) stay in the graph until dead-code elimination
drops them before code generation; a value the user also uses elsewhere is
kept.

Each rule is one small function ``rule(trace, args, params) -> Tracer | None``
taking the tracers of the op being bound; ``None`` means "does not apply".
:data:`RULES` maps an op name to its rules, tried in order.
"""
from __future__ import annotations

import numpy as np

# The stable primitives are found in the registry (by the time anything is traced every
# record is registered): rewrites sit below the ops, which never depend on them.
from .primitive import REGISTRY

__all__ = ["rewrite", "RULES"]


def rewrite(prim, tracers, params):
    """The stable replacement for ``prim(*tracers, **params)``, or None.

    Called by :func:`graphc.tracing.bind` before a node is recorded.
    """
    rules = RULES.get(prim.name)
    if not rules:
        return None
    trace = tracers[0]._trace
    for rule in rules:
        out = rule(trace, tracers, params)
        if out is not None:
            return out
    return None


# --- helpers ------------------------------------------------------------------------
def _node(trace, nid):
    return trace.graph[nid]


def _same_aval(a, b):
    return (tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
            and a.weak == b.weak)


def _is_one(node) -> bool:
    """A constant 1 (a scalar, or a uniform array of ones: a folded broadcast)."""
    if node.op != "const":
        return False
    value = np.asarray(node.value)
    return value.size > 0 and value.size <= (1 << 20) and bool(np.all(value == 1))


def _exp_arg(trace, nid):
    """``x`` when node ``nid`` is ``exp(x)`` with a floating ``x``, else None."""
    node = _node(trace, nid)
    if node.op != "exp":
        return None
    (x,) = node.args
    return x if _node(trace, x).dtype.kind == "f" else None


def _mark(result, rule):
    """Record which rule produced ``result`` (for drawings, checks and readers)."""
    node = _node(result._trace, result.node)
    node.rewrite = node.rewrite or rule
    return result


# --- rules ------------------------------------------------------------------------
def log_one_plus_exp(trace, args, params):
    """``log(1 + exp(x))`` (either operand order) becomes ``softplus(x)``.

    Only when the constant neither broadcasts nor promotes the sum (its shape
    and dtype are those of ``exp(x)``), so the replacement has the same type.
    """
    s = _node(trace, args[0].node)
    if s.op != "add":
        return None
    a, b = s.args
    for one, e in ((a, b), (b, a)):
        x = _exp_arg(trace, e)
        if x is not None and _is_one(_node(trace, one)) and _same_aval(s, _node(trace, e)):
            return _mark(REGISTRY["softplus"](trace.tracer(x)),
                         "log(1 + exp(x)) -> softplus(x)")
    return None


def log1p_exp(trace, args, params):
    """``log1p(exp(x))`` becomes ``softplus(x)``."""
    x = _exp_arg(trace, args[0].node)
    if x is None:
        return None
    return _mark(REGISTRY["softplus"](trace.tracer(x)), "log1p(exp(x)) -> softplus(x)")


def log_exp(trace, args, params):
    """``log(exp(y))`` is ``y``: exact, and no overflow for ``y > 709``.

    This is what turns ``np.log(graphc.nn.softmax(x))`` (``softmax`` is
    ``exp(log_softmax(x))``) into ``log_softmax(x)``.
    """
    e = _node(trace, args[0].node)
    y = _exp_arg(trace, args[0].node)
    if y is None or not _same_aval(e, _node(trace, y)):
        return None
    return trace.tracer(y)


def log_of_softmax(trace, args, params):
    """``log(e / e.sum(axis, keepdims=True))`` with ``e = exp(z)`` becomes
    ``log_softmax(z, axis)``: the hand-written softmax, with or without the
    max shifted out of ``z`` (``log_softmax`` is shift-invariant and shifts
    by the max itself).

    The sum may be of the same ``exp`` node or of another ``exp(z)`` of the
    same ``z``.  It must keep its axis (or ``z`` be 1-d): ``e / e.sum(1)``
    without keepdims broadcasts against the wrong axis and is not a softmax.
    """
    d = _node(trace, args[0].node)
    if d.op != "div":
        return None
    num, den = d.args
    z = _exp_arg(trace, num)
    s = _node(trace, den)
    if z is None or s.op != "sum" or len(s.params["axis"]) != 1:
        return None
    if _exp_arg(trace, s.args[0]) != z:
        return None
    zn = _node(trace, z)
    (axis,) = s.params["axis"]
    if not (s.params["keepdims"] or len(zn.shape) == 1) or zn.weak \
            or not _same_aval(d, _node(trace, num)):
        return None
    return _mark(REGISTRY["log_softmax"](trace.tracer(z), axis=axis % len(zn.shape)),
                 "log(exp(z) / sum(exp(z))) -> log_softmax(z)")


RULES = {
    "log": (log_one_plus_exp, log_exp, log_of_softmax),
    "log1p": (log1p_exp,),
}
