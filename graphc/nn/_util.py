"""Small helpers shared by the nn modules."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def pair(v, what):
    """An int or a pair of ints -> a tuple of two non-negative ints."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in v):
        return (int(v[0]), int(v[1]))
    raise ShapeError(f"{what} must be an int or a pair of ints, got {v!r}")


def single(v, what):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (tuple, list)) and len(v) == 1:
        return single(v[0], what)
    raise ShapeError(f"{what} must be an int, got {v!r}")


def floating(x):
    """``x`` as an array-like with a float dtype (plain NumPy input is converted)."""
    if hasattr(x, "aval") or isinstance(x, float):
        return x
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)
