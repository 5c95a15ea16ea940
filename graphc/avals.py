"""Abstract values of concrete inputs: the dtype check and :func:`aval_of`.

Below tracing: eager evaluation, the compile cache and the ops use these too.
A traced value is recognized by the :class:`Traced` base class, so this module
needs nothing above :mod:`graphc.primitive`.
"""
from __future__ import annotations

import numpy as np

from .errors import IntegerOverflowError, UnsupportedError
from .primitive import Aval

__all__ = ["SUPPORTED_KINDS", "Traced", "aval_of", "check_dtype"]

SUPPORTED_KINDS = "biuf"
INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


class Traced:
    """Base of values that carry their own ``aval`` (``graphc.tracing.Tracer``)."""

    __slots__ = ()


def check_dtype(dtype, what="value"):
    """``np.dtype(dtype)``, or ``UnsupportedError`` for a kind graphc cannot trace."""
    dtype = np.dtype(dtype)
    if dtype.kind not in SUPPORTED_KINDS:
        raise UnsupportedError(
            f"graphc cannot trace a {what} of dtype {dtype}",
            hint="use a real floating, integer or boolean NumPy dtype "
                 "(complex, object and string arrays are not supported)")
    return dtype


def aval_of(x) -> Aval:
    """The abstract value of a concrete input (NumPy array/scalar or Python number)."""
    if isinstance(x, Traced):
        return x.aval
    if isinstance(x, np.generic):  # NumPy scalars are strong (NEP 50), even np.float64
        return Aval((), check_dtype(x.dtype), False)
    if isinstance(x, bool):
        return Aval((), np.dtype(bool), True)
    if isinstance(x, int):
        if not INT64_MIN <= x <= INT64_MAX:
            raise IntegerOverflowError(
                f"the Python int {x} is out of bounds for int64, the integer type graphc "
                "(like NumPy) gives it next to integer arrays")
        return Aval((), np.dtype(np.int64), True)
    if isinstance(x, float):
        return Aval((), np.dtype(np.float64), True)
    if isinstance(x, complex):
        check_dtype(np.complex128)
    arr = np.asarray(x)
    return Aval(arr.shape, check_dtype(arr.dtype), False)


def big_ints_as_floats(args):
    """NEP 50: a Python int beyond int64 next to a floating array becomes a float
    (``x * 2**70`` works in NumPy); next to integers it overflows (aval_of)."""
    for a in args:      # (a plain loop: this runs for every traced op)
        if isinstance(a, int) and not isinstance(a, bool) and not INT64_MIN <= a <= INT64_MAX:
            break
    else:
        return args
    if not any(isinstance(a, Traced) and a.dtype.kind in "fc" for a in args):
        return args
    return [float(a) if isinstance(a, int) and not isinstance(a, bool)
            and not INT64_MIN <= a <= INT64_MAX else a for a in args]
