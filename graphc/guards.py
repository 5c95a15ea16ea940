"""Tracing with guards: Python control flow on traced values.

While a function is traced with concrete inputs, ``bool()`` of a traced scalar
(``if``, ``while``, ``assert``, ``and``/``or``/``not``), ``int()``/``range(n)``/an
index, ``float()`` and ``.item()`` read the value the traced code would have: the
node's ancestors are evaluated one node at a time with
:func:`graphc.interpret.evaluate_node` (memoized per node on the trace, so a loop of
guards costs time linear in the graph).  The decision becomes a ``guard`` node
(:mod:`graphc.ops.guard`) at the user's line, and tracing goes on down the path
taken; the generated code checks it there (:mod:`graphc.codegen_guards`), and a
compiled callable that meets a failing guard traces the other path
(:mod:`graphc.guard_paths`).

Refused, with a :class:`~graphc.ControlFlowError` naming the user's line: a value
traced from ``graphc.Spec`` placeholders (there is no concrete value: the hint
names ``graphc.cond``/``graphc.while_loop``/``np.where``), and ``float()``,
``int()`` or ``.item()`` of a floating value that depends on a differentiated input
(a Python number would cut the gradient).  This module installs the methods on
:class:`graphc.tracing.Tracer` at import.
"""
from __future__ import annotations

import numpy as np

from .errors import ControlFlowError
from .interpret import evaluate_node
from .numpy_misuse import store_into_numpy_error
from .ops.guard import guard
from .tracing import Tracer, _raise_misuse, _swallowable, foreign_tracer_error

__all__ = ["concrete_value", "differentiated"]


class _NoValue:
    """The value of a node computed from a ``graphc.Spec`` placeholder."""

    def __repr__(self):
        return "<no concrete value>"


NO_VALUE = _NoValue()

_SPEC_HINT = ("for a value-dependent choice use np.where(cond, a, b) or graphc.cond(pred, "
              "true_fn, false_fn, *operands); for a loop whose trip count depends on values, "
              "graphc.while_loop(cond_fn, body_fn, init_val); or trace with example arrays "
              "instead of graphc.Spec placeholders (graphc then records the decision as a guard)")


def _input_value(trace, nid, node):
    if node.closure:                 # a closed-over array: its value at trace time
        return node.value
    leaves = trace.leaves
    if leaves is None or nid not in leaves:
        return NO_VALUE
    value = leaves[nid]
    if type(value) is float and not _low_precision(trace.graph):
        value = np.float64(value)     # as generated code reads a Python float (codegen)
    return value


def _low_precision(g) -> bool:
    return any(g[n].dtype.kind == "f" and g[n].dtype.itemsize < 8 for n in g.inputs)


def concrete_value(trace, nid):
    """The concrete value of node ``nid`` of ``trace`` (or :data:`NO_VALUE`).

    Evaluates the ancestors not evaluated yet, each once (iteratively: a long
    chain does not recurse), with the same per-node evaluation as the interpreter.
    """
    memo = trace.concrete
    if nid in memo:
        return memo[nid]
    g = trace.graph
    stack = [nid]
    with np.errstate(all="ignore"):
        while stack:
            n = stack[-1]
            if n in memo:
                stack.pop()
                continue
            node = g[n]
            if node.op == "input":
                memo[n] = _input_value(trace, n, node)
                stack.pop()
                continue
            if node.op == "const":
                memo[n] = node.value
                stack.pop()
                continue
            missing = [a for a in node.args if a not in memo]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            args = [memo[a] for a in node.args]
            memo[n] = NO_VALUE if any(a is NO_VALUE for a in args) \
                else evaluate_node(g, n, args)
    return memo[nid]


def differentiated(trace, nid) -> bool:
    """Whether node ``nid`` depends on a differentiated input (memoized per node)."""
    wrt = trace.wrt
    if not wrt:
        return False
    memo = trace.depends
    g = trace.graph
    stack = [nid]
    while stack:
        n = stack[-1]
        if n in memo:
            stack.pop()
            continue
        args = g[n].args
        missing = [a for a in args if a not in memo]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        memo[n] = n in wrt or any(memo[a] for a in args)
    return memo[nid]


# --- reading a traced value -------------------------------------------------------------
def _decide(x, kind, what):
    """The Python value of ``x`` read as ``kind`` (bool/int/float), recorded as a guard."""
    trace = x._trace
    key = (x.node, kind)
    if key in trace.guarded:          # read before (operator.index twice): one guard
        return trace.guarded[key]
    value = concrete_value(trace, x.node)
    if value is NO_VALUE:
        raise _swallowable(x, ControlFlowError(
            f"{what} needs the concrete value of a traced array ({x._desc()}), and a value "
            "traced from graphc.Spec placeholders (or in the body of a structured loop or "
            "branch, traced once for all its iterations) has none", hint=_SPEC_HINT))
    if kind == "bool":
        out = bool(value)
    elif kind == "int":
        out = int(value)
    else:
        out = float(value)
        if out != out:
            raise _swallowable(x, ControlFlowError(
                f"{what} of a traced value ({x._desc()}) that is NaN here: a NaN cannot be "
                "checked by equality, so it cannot be baked into the generated code",
                hint="keep the value an array (np.where, np.isnan) instead of a Python float"))
    if trace.graph[x.node].op == "const":        # a constant decides nothing: no guard
        return out
    guard(x, expected=out, index=len(trace.guarded))
    trace.guarded[key] = out
    return out


def _live(x):
    if not x._trace.active:
        raise foreign_tracer_error(x)


def _refuse_differentiated(x, what):
    if x.dtype.kind in "fc" and differentiated(x._trace, x.node):
        raise _swallowable(x, ControlFlowError(
            f"{what} of a traced value ({x._desc()}) that depends on a differentiated input: "
            "a Python number would cut the gradient",
            hint="keep it an array: x[i] or x[()] is a traced element, x / x.max() needs no "
                 "float(x.max()); to branch on "
                 "it write if/while on the value itself (a guard), np.where(cond, a, b) or "
                 "graphc.cond / graphc.while_loop"))


def _bool(self):
    _live(self)
    _raise_misuse(self, store_into_numpy_error(self))
    if self.size != 1:
        raise ControlFlowError(
            f"the truth value of a traced array with {self.size} elements ({self._desc()}) is "
            "ambiguous, as in NumPy", hint="use a.any() or a.all(), or np.where(cond, a, b) "
                                           "for an elementwise choice")
    return _decide(self, "bool", "Python control flow (if/while/and/or/not) or bool()")


def _scalar_only(self, what):
    if self.ndim:
        raise ControlFlowError(f"{what} of a traced array of shape {self.shape} "
                               f"({self._desc()}): only a 0-d value is one number",
                               hint="index one element first (x[0]), or keep it an array")


def _int(self):
    _live(self)
    _raise_misuse(self, store_into_numpy_error(self))
    _scalar_only(self, "int()")
    _refuse_differentiated(self, "int()")
    return _decide(self, "int", "int()")


def _float(self):
    _live(self)
    _raise_misuse(self, store_into_numpy_error(self))
    _scalar_only(self, "float()")
    _refuse_differentiated(self, "float()")
    return _decide(self, "float", "float()")


_OLD_INDEX = Tracer.__index__
_OLD_ITEM = Tracer.item


def _index(self):
    if self.dtype.kind not in "iu":
        return _OLD_INDEX(self)      # NumPy refuses a float or bool index too
    _live(self)
    _scalar_only(self, "using a traced value as a Python index (int)")
    return _decide(self, "int", "using a traced value as a Python index (int)")


def _item(self, *args):
    if args or self.ndim or self.dtype.kind not in "biuf":
        return _OLD_ITEM(self, *args)
    _live(self)
    _refuse_differentiated(self, ".item()")
    kind = {"b": "bool", "i": "int", "u": "int", "f": "float"}[self.dtype.kind]
    return _decide(self, kind, ".item()")


for _name, _fn in {"__bool__": _bool, "__int__": _int, "__float__": _float,
                   "__index__": _index, "item": _item}.items():
    setattr(Tracer, _name, _fn)
