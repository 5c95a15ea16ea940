"""Shape and dtype rules shared by primitive records."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedError
from ..primitive import Aval


def dummy(aval: Aval):
    """A tiny concrete stand-in with the same dtype (a Python scalar if weak)."""
    if aval.weak:
        return aval.np_proxy()
    return np.zeros((), aval.dtype)


def broadcast_shapes(*avals: Aval) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in avals)))
    except ValueError:
        shapes = " and ".join(a.short() for a in avals)
        raise ShapeError(f"operands could not be broadcast together: {shapes}",
                         hint="check the shapes; use x.reshape(...) or x[:, None] to add an axis "
                              "that should broadcast") from None


def result_dtype(fn, avals):
    """dtype NumPy gives ``fn`` on these inputs (NEP 50 weak scalars included)."""
    import warnings
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            out = fn(*[dummy(a) for a in avals])
        except TypeError as e:
            kinds = ", ".join(a.short() for a in avals)
            raise UnsupportedError(f"NumPy does not support this operation on {kinds}: {e}") from None
    return np.asarray(out).dtype


def elementwise_rule(fn):
    """Shape rule of an elementwise op: broadcast shapes, NumPy's result dtype."""
    def rule(*avals, **params):
        shape = broadcast_shapes(*avals)
        dtype = result_dtype(lambda *xs: fn(*xs, **params), avals)
        return Aval(shape, dtype, all(a.weak for a in avals) and dtype.kind in "biuf")
    return rule


def norm_axis(axis, ndim, what="axis"):
    """Normalize ``axis`` (None, int or tuple) to a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise UnsupportedError(f"{what} must be a static int or tuple of ints, got {a!r}")
        # NumPy accepts axis 0 and -1 on a 0-d array.
        if not (-ndim <= a < ndim or (ndim == 0 and a in (0, -1))):
            raise ShapeError(f"{what} {a} is out of bounds for an array of dimension {ndim}")
        if ndim:  # on a 0-d array there is no axis to reduce: normalize to ()
            out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated {what} in {axis!r}")
    return tuple(sorted(out))


def size_flops(out, *ins, **params):
    return out.size


def zero_flops(out, *ins, **params):
    return 0


def input_flops(out, *ins, **params):
    return ins[0].size
