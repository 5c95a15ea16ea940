"""One operand's cotangent alone, for rules whose operands' cotangents are independent.

``x * c`` with a constant ``c`` (the chain's ``tanh(h @ W) * 0.5``): mul's gradient rule
builds ``ct * c`` and ``ct * x``, and the backward pass drops the second (``c`` needs no
gradient) for dead-code elimination to remove: one node built and removed per use.
:data:`SIDES` gives, per op, one function per operand that builds exactly the expression
the op's whole rule builds for it (``tests/test_compile_speed4.py`` compares them), so
graphc/autodiff.py builds only the cotangents that are needed.  The nodes that remain are
the same nodes, in the same order.
"""
from __future__ import annotations

__all__ = ["SIDES"]


def _mul_x(ct, x, y):
    return ct * y


def _mul_y(ct, x, y):
    return ct * x


# {op: (cotangent of operand 0, cotangent of operand 1)}, each fn(ct, x, y): mul's record
# (graphc/ops/elementwise.py) has vjp=lambda ct, x, y, *, out: (ct * y, ct * x)
SIDES = {"mul": (_mul_x, _mul_y)}
