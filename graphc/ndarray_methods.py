"""ndarray methods of traced values that NumPy computes from other operations.

``x.var()``, ``x.std()``, ``x.prod()``, and ``x.argmax()`` are
built from graphc's primitives and composites; :mod:`graphc.numpy_api` installs
them on :class:`~graphc.tracing.Tracer` with the other methods.
"""
from __future__ import annotations

import numpy as np

from . import errors
from .avals import Traced
from .errors import InPlaceError, UnsupportedError
from .ops import composite as C
from .ops import elementwise as E
from .ops._rules import norm_axis
from .ops.reduce import argmax
from .ops.reorder import partition_method, sort_method

__all__ = ["METHODS"]


def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    """``x.var()``, in NumPy's argument order."""
    return _var(self, axis, dtype, out, ddof, keepdims, kwargs, "var")


def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kwargs):
    """``x.std()``: the square root of :func:`var`."""
    return C.hint(E.sqrt(_var(self, axis, dtype, out, ddof, keepdims, kwargs, "std")), "std")


def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    """``x.prod()``, in NumPy's argument order."""
    return _prod(self, axis, dtype, out, keepdims, kwargs)


def argmax_method(self, axis=None, out=None, *, keepdims=False):
    """``x.argmax()`` (``axis=None``: over the flattened array)."""
    return _argmax(self, axis, out, keepdims)


def _no_extras(what, out, kwargs):
    if out is not None:
        raise InPlaceError(f"{what}(out=...) writes into an array in place; traced arrays "
                           "are immutable", hint="assign the result instead")
    extra = {k: v for k, v in kwargs.items() if not (k == "where" and v is True)}
    if extra:
        raise UnsupportedError(f"{what}: argument(s) {sorted(extra)} are not supported "
                               "on traced values")


def _reduced_count(x, axes):
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


def _var(x, axis, dtype, out, ddof, keepdims, kwargs, what):
    """NumPy's ``_var``: mean of squared deviations, divided by ``max(n - ddof, 0)``."""
    if kwargs.get("mean") is not None:
        raise UnsupportedError(f".{what}(mean=...) is not supported on traced values",
                               hint="leave mean= out: graphc computes it")
    kwargs.pop("mean", None)
    _no_extras(f".{what}()", out, kwargs)   # (the methods have no correction=, as in NumPy)
    if isinstance(ddof, Traced) or not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise UnsupportedError(f".{what}(ddof={ddof!r}): ddof must be a static number",
                               hint="pass a Python int such as ddof=1")
    if x.ndim == 0 and axis is not None:
        C.mean(x, axis=axis)        # NumPy's AxisError: var/std, like mean, take no axis of a 0-d array
    axes = norm_axis(axis, x.ndim)
    if dtype is None and x.dtype.kind in "biu":
        dtype = np.float64          # as NumPy: integer data has a float64 variance
    if dtype is not None:
        x = C.astype(x, dtype)
    n = _reduced_count(x, axes)
    mean = C.sum(x, axes, keepdims=True) / n
    dev = x - mean
    sq = C.sum(dev * dev, axes, keepdims=bool(keepdims))
    return C.hint(sq / max(n - ddof, 0), "var")


def _prod(x, axis, dtype, out, keepdims, kwargs):
    """Product over ``axis`` as a tree of multiplications: exact products, exact
    gradients (zeros included), log2(n) nodes per axis."""
    _no_extras(".prod()", out, kwargs)
    if "initial" in kwargs:
        raise UnsupportedError(".prod(initial=...) is not supported on traced values",
                               hint="multiply by the initial value instead")
    axes = norm_axis(axis, x.ndim)
    if dtype is None and x.dtype.kind in "biu" and x.dtype.itemsize < 8 or x.dtype.kind == "b":
        dtype = np.uint64 if x.dtype.kind == "u" else np.int64   # NumPy's platform integer
    if dtype is not None:
        x = C.astype(x, dtype)
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if _reduced_count(x, axes) == 0:
        ones = np.ones(out_shape if keepdims else tuple(d for i, d in enumerate(x.shape)
                                                       if i not in axes), x.dtype)
        return x._trace.lift(ones)
    for a in sorted(axes, reverse=True):
        while x.shape[a] > 1:
            m = x.shape[a]
            h = m // 2
            pre = (slice(None),) * a
            y = x[pre + (slice(0, h),)] * x[pre + (slice(h, 2 * h),)]
            x = C.do_concatenate([y, x[pre + (slice(2 * h, m),)]], a) if m % 2 else y
    keep = tuple(d for i, d in enumerate(x.shape) if i not in axes)
    x = C.do_reshape(x, out_shape if keepdims else keep)
    return C.hint(x, "prod")


def _argmax(x, axis, out, keepdims):
    _no_extras(".argmax()", out, {})
    if axis is None:
        flat = C.do_reshape(x, -1)
        i = argmax(flat, axis=0)
        return C.do_reshape(i, (1,) * x.ndim) if keepdims else i
    if x.ndim == 0:
        raise errors.ShapeError(f"axis {axis} is out of bounds for array of dimension 0")
    (a,) = norm_axis(axis, x.ndim)
    i = argmax(x, axis=a)
    return C.expand_dims(i, a) if keepdims else i


METHODS = {"var": var, "std": std, "prod": prod, "argmax": argmax_method}
METHODS.update(sort=sort_method, partition=partition_method)   # in place in NumPy: InPlaceError
