"""ndarray methods of traced values that NumPy computes from other operations.

``x.copy()`` is built from graphc's primitives; :mod:`graphc.numpy_api` installs
it on :class:`~graphc.tracing.Tracer` with the other methods (the reductions
``x.var()``, ``x.std()``, ``x.prod()``, ``x.argmax()`` ... are registered in
:mod:`graphc.ops.statistics`).
"""
from __future__ import annotations


from .ops.shape import identity

__all__ = ["METHODS"]


def copy(self, order="C"):
    """``x.copy()``: a new value, so later functional updates cannot alias."""
    return identity(self)


METHODS = {"copy": copy}   # .var/.std/.prod/.argmax ...: graphc/ops/statistics.py
