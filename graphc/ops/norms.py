"""``np.linalg.norm``: vector norms (any ``ord``) and matrix norms (``'fro'``, 1, -1, inf,
-inf), with ``axis`` (int or pair) and ``keepdims``, following NumPy's implementation.

Gradient at 0: the 2-norm and the Frobenius norm use ``safe_sqrt``, so their gradient at
``x = 0`` is 0 (the subgradient of minimum norm; plain JAX gives nan there); a general
``p``-norm takes the same convention.  Ties of the inf/-inf norms and of the max/min in
matrix norms share the gradient equally, as ``np.max`` does.  The spectral (2, -2) and
nuclear norms need singular values, which graphc has no primitive for: they raise
``UnsupportedError``.
"""
from __future__ import annotations

import numpy as np

from ..avals import Traced
from ..errors import ShapeError, UnsupportedError
from . import composite as C
from . import elementwise as E
from ._numpy_table import implements
from ._rules import _static_int, one_axis
from .stat_samples import norm_samples
from .statistics import safe_sqrt


def _sum(x, axis, keepdims):
    return C.sum(x, axis, keepdims)


def _vector_norm(x, ord, axis, keepdims):
    if isinstance(ord, str):
        raise ShapeError(f"Invalid norm order '{ord}' for vectors")
    if ord is None or ord == 2:
        return safe_sqrt(_sum(x * x, axis, keepdims))
    if ord == np.inf:
        return C.max(E.abs(x), axis, keepdims)
    if ord == -np.inf:
        return C.min(E.abs(x), axis, keepdims)
    if ord == 0:
        return _sum(C.astype(x != 0, x.dtype), axis, keepdims)
    if ord == 1:
        return _sum(E.abs(x), axis, keepdims)
    s = _sum(E.abs(x) ** ord, axis, keepdims)
    # s ** (1 / ord), with derivative 0 where s == 0 (as safe_sqrt): the double
    # where keeps inf * 0 out of the gradient at x = 0.
    zero = s == 0
    inv = np.reciprocal(np.asarray(float(ord), dtype=s.dtype))[()]
    return E.where(zero, 0.0, E.where(zero, 1.0, s) ** inv)


def _matrix_norm(x, ord, row, col, keepdims):
    if ord in (2, -2, "nuc"):
        raise UnsupportedError(f"np.linalg.norm(ord={ord!r}) of a matrix needs singular "
                               "values, which graphc cannot trace yet",
                               hint="use ord='fro', 1, -1, np.inf or -np.inf")
    if ord in (None, "fro", "f"):
        r = safe_sqrt(_sum(x * x, (row, col), False))
    elif ord in (1, -1):
        col_ = col - 1 if col > row else col
        r = _sum(E.abs(x), row, False)
        r = C.max(r, col_) if ord == 1 else C.min(r, col_)
    elif ord in (np.inf, -np.inf):
        row_ = row - 1 if row > col else row
        r = _sum(E.abs(x), col, False)
        r = C.max(r, row_) if ord == np.inf else C.min(r, row_)
    else:
        raise ShapeError("Invalid norm order for matrices.")
    if keepdims:
        shape = list(x.shape)
        shape[row] = shape[col] = 1
        r = C.do_reshape(r, tuple(shape))
    return r


def _axis_tuple(axis):
    if isinstance(axis, tuple):
        return axis
    try:
        return (_static_int(axis, "axis"),)
    except UnsupportedError:
        raise UnsupportedError("'axis' must be None, an integer or a tuple of integers") \
            from None


@implements(np.linalg.norm, samples=norm_samples)
def norm(x, ord=None, axis=None, keepdims=False):
    """``np.linalg.norm``; integer input is converted to float64 first, as NumPy."""
    if not isinstance(x, (Traced, np.ndarray)):
        x = np.asarray(x)
    if x.dtype.kind != "f":
        x = C.astype(x, np.float64)
    nd = x.ndim
    if axis is None and (ord is None or (ord in ("f", "fro") and nd == 2)
                         or (ord == 2 and nd == 1)):
        r = safe_sqrt(C.sum(x * x))
        return C.hint(C.do_reshape(r, (1,) * nd) if keepdims else r, "norm")
    axes = tuple(range(nd)) if axis is None else _axis_tuple(axis)
    if len(axes) == 1:
        r = _vector_norm(x, ord, one_axis(axes[0], nd), bool(keepdims))
    elif len(axes) == 2:
        row, col = (one_axis(a, nd) for a in axes)
        if row == col:
            raise ShapeError("Duplicate axes given.")
        r = _matrix_norm(x, ord, row, col, bool(keepdims))
    else:
        raise ShapeError("Improper number of dimensions to norm.")
    return C.hint(r, "norm")
