"""The guard: a decision Python control flow took while a function was traced.

When ``if``/``while``/``assert``/``and``/``or``/``not``, ``int()``, ``range(n)`` or
``.item()`` reads a traced scalar, graphc reads its concrete value, records one
``guard`` node and goes on down the path taken (:mod:`graphc.guards`).  The node's
argument is the value the decision was made on; ``expected`` the outcome the trace
took, whose Python type says how it was read: a ``bool`` for ``bool(value)``, an
``int`` for ``int(value)`` (``range(n)``, an index, ``.item()``), a ``float`` for
``float(value)``; ``index`` its position among the trace's guards.

A guard is a root: no output depends on it, yet dead-code elimination keeps it,
CSE never merges two (their ``index`` differs) and nothing reorders it.  Its value
is ``True`` (the decision held).  Generated code checks it where it was taken
(:mod:`graphc.codegen_guards`: ``if not (err > tol): raise GuardFailed(...)``); the
emission here is eager evaluation's, which raises a plain ``ValueError``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import ShapeError
from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S

__all__ = ["guard", "holds", "read_as"]


def read_as(expected):
    """How a guard reads its value: ``"bool"``, ``"int"`` or ``"float"`` (from ``expected``)."""
    return "bool" if isinstance(expected, bool) else "int" if isinstance(expected, int) \
        else "float"


def holds(value, expected) -> bool:
    """Whether a concrete ``value`` takes the decision ``expected`` (see :func:`read_as`)."""
    kind = read_as(expected)
    if kind == "bool":
        return bool(value) is expected
    if kind == "int":
        return int(value) == expected
    return float(value) == expected


def _shape(pred, *, expected, index):
    one = pred.size == 1 if read_as(expected) == "bool" else pred.ndim == 0
    if not one:
        raise ShapeError(f"a guard reads one value, got {pred.short()}")
    return Aval((), np.dtype(bool), False)


def _emit(e, *, expected, index):
    """Eager evaluation's lines (generated modules use graphc.codegen_guards)."""
    x = e.args[0]
    kind = read_as(expected)
    check = {"bool": f"bool({x}) is not {expected!r}", "int": f"int({x}) != {expected!r}",
             "float": f"float({x}) != float({str(float(expected))!r})"}[kind]   # inf too
    return [f"if {check}:",
            f"    raise ValueError('guard {int(index)} does not hold')",
            f"{e.out} = np.True_"]


def _samples(d):
    def true(p):
        return np.True_
    return [S.Sample((np.array(2.0) > 1.0,), {"expected": True, "index": 0}, true, "bool"),
            S.Sample((np.array(False),), {"expected": False, "index": 1}, true, "bool-false"),
            S.Sample((np.array(3),), {"expected": 3, "index": 0}, true, "int"),
            S.Sample((np.array(1.5),), {"expected": 1.5, "index": 2}, true, "float")]


guard = primitive(
    name="guard", shape=_shape, numpy=_emit, never_inline_args=False,
    vjp=NOT_DIFFERENTIABLE,
    sympy=lambda pred, **params: sp.true,      # the decision held (the path's derivative)
    label="guard", family="guard", flops=lambda out, *ins, **p: 0, samples=_samples,
    doc="A decision Python control flow took while tracing (if/while/int()/range): "
        "checked where it was taken; the value is True.")
