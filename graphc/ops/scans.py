"""Scans: ``cumsum`` and ``cumprod`` primitives, and ``np.cumsum`` / ``np.cumprod`` (with the
``x.cumsum()`` / ``x.cumprod()`` methods) in NumPy's signature.

The gradient of ``cumsum`` is a reversed ``cumsum``.  The gradient of ``cumprod`` is exact
with zeros in the input (no division by x): for ``out[i] = x[0] * ... * x[i]``,
``d out[i] / d x[k]`` is the product of ``x[0..i]`` without ``x[k]``, which is a
``cumprod`` along the axis of ``x`` with ``x[k]`` replaced by 1; the rule builds those
``n`` rows at once, an ``n x n`` intermediate per axis (memory and work quadratic in the
axis length).
"""
from __future__ import annotations

import numpy as np

from ..avals import Traced
from ..errors import InPlaceError
from ..primitive import Aval, primitive
from . import composite as C
from . import elementwise as E
from ._numpy_table import Call, implements
from ._rules import one_axis, result_dtype, size_flops
from . import _samples as S
from . import array_api as XP
from .index import getitem
from .reduce import sum as reduce_sum


def _scan_rule(fn):
    def rule(x, *, axis):
        if not 0 <= axis < x.ndim:
            from ..errors import AxisError
            raise AxisError(f"axis {axis} is out of bounds for array of dimension {x.ndim}",
                            axis=axis, ndim=x.ndim)
        return Aval(x.shape, result_dtype(lambda v: fn(np.atleast_1d(v), axis=0), [x]), False)
    return rule


def _reverse(x, axis):
    spec = (("slice", None, None, None),) * axis + (("slice", None, None, -1),)
    return getitem(x, spec=spec)


def _cumsum_vjp(ct, x, *, out, axis):
    return (_reverse(cumsum(_reverse(ct, axis), axis=axis), axis),)


def _sym_scan(fn):
    def sym(x, *, axis):
        return fn(np.asarray(x, dtype=object), axis=axis)
    return sym


def _scan_samples(np_fn, gen):
    def samples(d):
        g = getattr(d, gen)
        z = g(3, 4)
        z[1, 1] = z[2, 0] = 0.0
        return [S.Sample((g(3, 4),), {"axis": 1}, lambda x: np_fn(x, axis=1), "axis1"),
                S.Sample((g(3, 4),), {"axis": 0}, lambda x: np_fn(x, axis=0), "axis0", proof=True),
                S.Sample((z,), {"axis": 1}, lambda x: np_fn(x, axis=1), "zeros"),
                S.Sample((g(2, 3, 4),), {"axis": 1}, lambda x: np_fn(x, axis=1), "3d"),
                S.Sample((g(5, dtype=np.float32),), {"axis": 0}, lambda x: np_fn(x, axis=0), "f32"),
                S.Sample((d.ints(3, 4),), {"axis": 1}, lambda x: np_fn(x, axis=1), "int")]
    return samples


cumsum = primitive(
    name="cumsum", array_api=XP.cumulative("cumulative_sum"), shape=_scan_rule(np.cumsum), numpy="np.cumsum({0}, axis={axis})",
    vjp=_cumsum_vjp, jvp=lambda t, x, *, out, axis: cumsum(t[0], axis=axis), sympy=_sym_scan(np.cumsum), label="cumsum", family="reduce",
    flops=size_flops, fresh_result=True, samples=_scan_samples(np.cumsum, "rnd"),
    label_detail=lambda p: f"axis={p['axis']}",
    doc="np.cumsum(x, axis); gradient: the reversed cumsum of the cotangent.")


def _cumprod_vjp(ct, x, *, out, axis):
    n = x.shape[axis]
    perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    xt = C.do_transpose(x, perm)                   # (..., n): the scanned axis last
    ctt = C.do_transpose(ct, perm)
    rows = C.expand_dims(xt, -2)                   # (..., 1, n), row k: x with x[k] := 1
    eye = np.eye(n, dtype=bool)
    partial = cumprod(E.where(eye, np.ones((), x.dtype)[()], rows), axis=xt.ndim)
    # partial[..., k, i] = prod of x[0..i] without x[k]; only i >= k depends on x[k]
    upper = np.triu(np.ones((n, n), dtype=bool))
    g = reduce_sum(E.masked_mul(partial * C.expand_dims(ctt, -2), upper),
                   axis=(xt.ndim,), keepdims=False)
    return (C.do_transpose(g, tuple(int(i) for i in np.argsort(perm))),)


def _cumprod_jvp(t, x, *, out, axis):
    # d out[i] = sum over k <= i of t[k] * (prod of x[0..i] without x[k]): exact with zeros
    n = x.shape[axis]
    perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    xt = C.do_transpose(x, perm)
    tt = C.do_transpose(t[0], perm)
    rows = C.expand_dims(xt, -2)
    eye = np.eye(n, dtype=bool)
    partial = cumprod(E.where(eye, np.ones((), x.dtype)[()], rows), axis=xt.ndim)
    upper = np.triu(np.ones((n, n), dtype=bool))
    d = reduce_sum(E.masked_mul(partial * C.expand_dims(tt, -1), upper),
                   axis=(xt.ndim - 1,), keepdims=False)
    return C.do_transpose(d, tuple(int(i) for i in np.argsort(perm)))


cumprod = primitive(
    name="cumprod", array_api=XP.cumulative("cumulative_prod"), shape=_scan_rule(np.cumprod), numpy="np.cumprod({0}, axis={axis})",
    vjp=_cumprod_vjp, jvp=_cumprod_jvp, sympy=_sym_scan(np.cumprod), label="cumprod", family="reduce",
    flops=size_flops, fresh_result=True, samples=_scan_samples(np.cumprod, "uniform"),
    label_detail=lambda p: f"axis={p['axis']}",
    doc="np.cumprod(x, axis); exact gradient with zeros in x (no division): "
        "an n x n intermediate per scanned axis of length n.")


def _np_scan(prim, name, a, axis, dtype, out):
    if out is not None:
        raise InPlaceError(f"np.{name}(..., out=...) writes into an array in place; traced "
                           "arrays are immutable", hint=f"assign the result instead: y = np.{name}(...)")
    if not isinstance(a, (Traced, np.ndarray)):
        a = np.asarray(a)
    if axis is None:
        a, axis = C.do_reshape(a, -1), 0
    elif a.ndim == 0:
        one_axis(axis, 1)     # NumPy treats a 0-d array as 1-d here
        a = C.do_reshape(a, 1)
        axis = 0
    else:
        axis = one_axis(axis, a.ndim)
    if dtype is not None:
        a = C.astype(a, dtype)
    return C.hint(prim(a, axis=axis), name)


def _call_samples(d, name):
    x = d.uniform(3, 4) if name == "cumprod" else d.rnd(3, 4)
    return [Call((x,), {}, "flat"), Call((x, 1), {}, "axis-positional"),
            Call((x,), {"axis": -2}, "axis-negative"),
            Call((x, 0, np.float32), {}, "dtype-positional", grad=False),
            Call((d.rnd(2, 3, 2, dtype=np.float32),), {"axis": 2}, "f32"),
            Call((d.ints(3, 4).astype(np.int8),), {"axis": 1}, "int8-platform-int"),
            Call((d.bools(5),), {}, "bool"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "0-d"),
            Call((np.asarray(d.rnd(1)[0]),), {"axis": 0}, "0-d-axis0")]


@implements(np.cumsum, methods=("cumsum",), samples=lambda d: _call_samples(d, "cumsum"))
def np_cumsum(a, axis=None, dtype=None, out=None):
    """``np.cumsum``: ``axis=None`` scans the flattened array; small integers accumulate
    in the platform integer, as NumPy."""
    return _np_scan(cumsum, "cumsum", a, axis, dtype, out)


@implements(np.cumprod, methods=("cumprod",), samples=lambda d: _call_samples(d, "cumprod"))
def np_cumprod(a, axis=None, dtype=None, out=None):
    """``np.cumprod``: exact gradients with zeros in ``a``."""
    return _np_scan(cumprod, "cumprod", a, axis, dtype, out)


def _cumulative(prim, name, x, axis, dtype, out, include_initial):
    if axis is None and np.ndim(x) > 1:
        from ..errors import ShapeError
        raise ShapeError("For arrays which have more than one dimension ``axis`` argument is "
                         "required.")
    r = _np_scan(prim, name, x, 0 if axis is None else axis, dtype, out)
    if not include_initial:
        return r
    axis = one_axis(0 if axis is None else axis, r.ndim)
    shape = tuple(1 if i == axis else d for i, d in enumerate(r.shape))
    start = np.full(shape, 0 if prim is cumsum else 1, r.dtype)
    return C.hint(C.do_concatenate([start, r], axis), name)


def _cumulative_samples(d):
    x = d.uniform(3, 4)
    return [Call((x[0],), {}, "1-d"), Call((x,), {"axis": 1}, "axis"),
            Call((x,), {"axis": 0, "include_initial": True}, "include-initial"),
            Call((x[0],), {"include_initial": True, "dtype": np.float32}, "dtype", grad=False),
            Call((d.ints(3, 4).astype(np.int8),), {"axis": -1}, "int8"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "0-d")]


@implements(np.cumulative_sum, samples=_cumulative_samples)
def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """``np.cumulative_sum`` (NumPy 2): :func:`np_cumsum` with an optional leading 0."""
    return _cumulative(cumsum, "cumulative_sum", x, axis, dtype, out, include_initial)


@implements(np.cumulative_prod, samples=_cumulative_samples)
def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """``np.cumulative_prod`` (NumPy 2): :func:`np_cumprod` with an optional leading 1."""
    return _cumulative(cumprod, "cumulative_prod", x, axis, dtype, out, include_initial)
