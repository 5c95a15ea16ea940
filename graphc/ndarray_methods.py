"""ndarray methods of traced values that are not registered next to their functions.

The reductions (``x.var()``, ``x.std()``, ``x.prod()``, ``x.argmax()`` ...) are registered
in :mod:`graphc.ops.statistics`, ``x.copy()`` in :mod:`graphc.ops.assemble`; here are the
methods NumPy runs in place (``x.sort()``, ``x.partition()``), which graphc refuses with a
clear error.  :mod:`graphc.numpy_api` installs them on :class:`~graphc.tracing.Tracer`.
"""
from __future__ import annotations

from .ops.reorder import partition_method, sort_method

__all__ = ["METHODS"]

METHODS = {"sort": sort_method, "partition": partition_method}   # in place in NumPy: InPlaceError
