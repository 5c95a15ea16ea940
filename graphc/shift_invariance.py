"""The max-shift of a softmax: its gradient cancels, proven from the graph.

A hand-written log-softmax subtracts the row maximum for stability::

    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))

``logp`` does not change when every ``z`` of a row moves by the same amount, so the
gradient that flows back through the maximum is mathematically zero (in floating
point: rounding noise, about eps times the gradient, sent to each row's maximum).
Hand-written NumPy skips it; so does reverse mode here, when it can prove it.

:func:`cancelled_shifts` treats each ``max``/``min`` reduction ``m`` as a free variable
``c`` and follows its uses forward to the differentiated output, with one of three facts
per value ``v`` (``c`` broadcast as ``m``'s shape, its unit dimensions tracked):

* ``shift(a)``: ``v = v0 + a*c``  (``m`` itself is ``shift(1)``; ``s - m`` is ``shift(-1)``)
* ``scale(a)``: ``v = v0 * exp(a*c)``  (``exp`` of a shift; sums, products and quotients)
* invariant: ``v`` does not depend on ``c`` (``shift(0)``, ``scale(0)``, and anything
  computed from invariant values only).

The rules are exact algebra: ``log`` of a ``scale(a)`` is a ``shift(a)``, a sum or a
max over axes along which ``c`` is constant keeps the fact, ``shift(a) - shift(b)`` is a
``shift(a - b)``, and so on.  Any other use of a shifted or scaled value (an index, a
comparison, a transpose, a sum across rows, a loop) ends the proof.  When the output is
proven invariant, ``m`` leaves the set of nodes the gradient flows through: the
backward pass then has no ``d_max`` and no tie mask, and every gradient is the same
up to that rounding noise.  When anything is not proven, nothing changes.
"""
from __future__ import annotations

import heapq
import math

__all__ = ["cancelled_shifts"]

_SHIFTS = frozenset({"max", "min"})       # the stabilizing shifts that are candidates
_SAME = frozenset({"identity", "contiguous"})
INV = "inv"


def cancelled_shifts(g, outs, active) -> set:
    """The ``max``/``min`` nodes in ``active`` whose gradient provably cancels in every
    node of ``outs`` (see the module docstring)."""
    outs = set(outs)
    return {m for m in active if g[m].op in _SHIFTS and g[m].dtype.kind == "f"
            and m not in outs and _cancels(g, m, outs, active)}


def _cancels(g, m, outs, active) -> bool:
    """Is every output invariant under ``m -> m + c``?"""
    state = {m: ("S", 1, tuple(g[m].shape))}
    heap = [u for u in set(g.users(m)) if u in active]
    heapq.heapify(heap)
    seen = set()
    while heap:
        n = heapq.heappop(heap)        # in program order: every argument is decided
        if n in seen:
            continue
        seen.add(n)
        st = _transfer(g, n, state)
        if st is None or st != INV and n in outs:
            return False
        if st == INV:
            continue                  # its users see a value that does not depend on c
        state[n] = st
        for u in set(g.users(n)):
            if u in active and u not in seen:
                heapq.heappush(heap, u)
    return True


def _norm(kind, a, cs):
    return INV if a == 0 else (kind, a, cs)


def _pad(st, ndim):
    """The fact with ``c``'s shape aligned to ``ndim`` dimensions (NumPy broadcasting)."""
    kind, a, cs = st
    return kind, a, (1,) * (ndim - len(cs)) + cs


def _transfer(g, n, state):
    """The fact for node ``n`` from its arguments' (None: not proven)."""
    node = g[n]
    op = node.op
    ndim = len(node.shape)
    sts = [state.get(a) for a in node.args]
    if all(s is None for s in sts):
        return INV
    if op == "stop_gradient":         # no gradient flows through it: a constant here
        return INV
    if op in ("add", "sub", "logaddexp", "mul", "div") and len(sts) == 2:
        x, y = [None if s is None else _pad(s, ndim) for s in sts]
        return (_sum_rule if op in ("add", "sub", "logaddexp") else _product_rule)(op, x, y)
    if len(sts) != 1:
        return None
    kind, a, cs = sts[0]
    if op in _SAME or op == "astype" and node.dtype.kind == "f":
        return sts[0]
    if op == "neg":
        return ("S", -a, cs) if kind == "S" else sts[0]
    if op == "exp":
        return ("E", a, cs) if kind == "S" else None
    if op == "log":
        return ("S", a, cs) if kind == "E" else None
    if op in ("sum", "max", "min"):
        return _reduce_rule(g, node, kind, a, cs)
    if op == "broadcast_to":            # c is constant along the new and expanded axes
        return _pad(sts[0], ndim)
    if op == "reshape":
        return _reshape_rule(g[node.args[0]].shape, node.shape, kind, a, cs)
    if op == "getitem":
        return _new_axes_rule(node.params["spec"], kind, a, cs)
    return None


def _sum_rule(op, x, y):
    if x is not None and y is not None:
        if x[0] != y[0] or x[2] != y[2]:
            return None
        if op == "logaddexp":                # log(e^(x0+ac) + e^(y0+ac)) = ... + ac
            return x if x[0] == "S" and x[1] == y[1] else None
        if x[0] == "S":
            return _norm("S", x[1] + (y[1] if op == "add" else -y[1]), x[2])
        return x if x[1] == y[1] else None   # e^(ac) x0 + e^(ac) y0
    st = x or y
    if st[0] != "S" or op == "logaddexp":
        return None
    return ("S", -st[1], st[2]) if op == "sub" and x is None else st


def _product_rule(op, x, y):
    if any(s is not None and s[0] != "E" for s in (x, y)):
        return None
    if x is not None and y is not None:
        if x[2] != y[2]:
            return None
        return _norm("E", x[1] + (y[1] if op == "mul" else -y[1]), x[2])
    if x is not None:
        return x
    return y if op == "mul" else ("E", -y[1], y[2])


def _reduce_rule(g, node, kind, a, cs):
    if set(node.params) - {"axis", "keepdims"}:
        return None
    axes = node.params.get("axis")
    if axes is None:
        axes = tuple(range(len(cs)))
    if any(cs[ax] != 1 for ax in axes):   # c varies along a reduced axis
        return None
    if node.op == "sum" and kind == "S":  # sum(v0 + a c) = sum(v0) + (n a) c
        a *= math.prod(g[node.args[0]].shape[ax] for ax in axes)
    if not node.params.get("keepdims"):
        cs = tuple(d for i, d in enumerate(cs) if i not in axes)
    return kind, a, cs


_ALL = ("slice", None, None, None)


def _new_axes_rule(spec, kind, a, cs):
    """``v[:, None]``: an index of whole slices and new axes only keeps ``c``'s layout."""
    if any(item != _ALL and item != ("none",) for item in spec):
        return None
    dims = iter(cs)
    head = tuple(1 if item == ("none",) else next(dims) for item in spec)
    return kind, a, head + tuple(dims)


def _reshape_rule(old, new, kind, a, cs):
    """A reshape that only adds or drops unit dimensions keeps ``c``'s layout; any other
    ends the proof."""
    if [d for d in old if d != 1] != [d for d in new if d != 1]:
        return None
    varying = iter([c for c, d in zip(cs, old) if d != 1])
    return kind, a, tuple(next(varying) if d != 1 else 1 for d in new)
