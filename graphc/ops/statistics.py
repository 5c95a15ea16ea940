"""Reductions with NumPy's own signatures: sum, mean, max, min, prod, var, std, average,
any, all, argmax, argmin, nansum, nanmean (and the matching ndarray methods).

Each function follows NumPy's implementation step by step (``numpy/_core/_methods.py``,
``numpy/lib/_nanfunctions_impl.py``), so result dtypes and accumulation types are
NumPy's: integer sums and products in the platform integer, means of integers in
float64, means of float16 accumulated in float32, ``dtype=`` honoured.  ``where=``
masks are applied with ``np.where`` (masked-out elements get no gradient),
``initial=`` is combined with the reduction as NumPy does.

Primitives here: ``safe_sqrt`` (``np.sqrt`` whose derivative at 0 is taken as 0, for
``std`` at zero variance and ``norm`` at 0), ``argmin``, ``any``, ``all``.
"""
from __future__ import annotations

import builtins

import numpy as np
import sympy as sp

from ..avals import Traced
from ..errors import InPlaceError, ShapeError, UnsupportedError
from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S
from . import array_api as XP
from . import composite as C
from . import elementwise as E
from ._numpy_table import implements
from ._rules import norm_axis, one_axis, size_flops, sym_at_point
from .reduce import argmax as _argmax_prim
from .stat_samples import (any_samples, arg_samples, average_samples, extreme_samples,
                           mean_samples, nan_samples, var_method_samples, prod_samples, sum_samples, var_samples)

_NV = np._NoValue


# --- primitives ---------------------------------------------------------------------------
def _safe_sqrt_vjp(ct, x, *, out):
    # d sqrt(x) = 1 / (2 sqrt(x)), taken as 0 where sqrt(x) == 0 (the minimum-norm
    # subgradient): std at zero variance and norm at 0 get a zero gradient, not inf * 0 = nan.
    zero = out == 0
    return (E.where(zero, 0.0, ct / (2 * E.where(zero, 1.0, out))),)


def _safe_sqrt_jvp(t, x, *, out):
    zero = out == 0
    return E.where(zero, 0.0, t[0] / (2 * E.where(zero, 1.0, out)))


def _float_only(x):
    if x.dtype.kind != "f":
        raise UnsupportedError(f"safe_sqrt needs floating input, got {x.short()}")
    return Aval(x.shape, x.dtype, x.weak)


safe_sqrt = primitive(
    name="safe_sqrt", shape=_float_only, numpy="np.sqrt({0})", vjp=_safe_sqrt_vjp, jvp=_safe_sqrt_jvp,
    sympy=sp.sqrt, label="√", elementwise=True, flops=size_flops, fresh_result=True,
    samples=lambda d: [S.Sample((d.pos(3, 4),), {}, np.sqrt, "f64"),
                       S.Sample((d.pos(5, dtype=np.float32),), {}, np.sqrt, "f32"),
                       S.Sample((np.array([0.0, 4.0]),), {}, np.sqrt, "at-zero", grad=False)],
    nonfinite_hint="sqrt of a negative number is nan",
    doc="np.sqrt(x) for std and norm; derivative taken as 0 at x = 0 (the minimum-norm "
        "subgradient of std at zero variance and of norm at 0), not inf.")


def _argmin_rule(x, *, axis):
    return Aval(tuple(d for i, d in enumerate(x.shape) if i != axis), np.dtype(np.intp), False)


argmin_prim = primitive(
    name="argmin", array_api=XP.arg_reduce("argmin"), shape=_argmin_rule, numpy="{0}.argmin(axis={axis})", vjp=NOT_DIFFERENTIABLE,
    samples=lambda d: [S.Sample((np.array([[1.0, 0.0, 0.0], [2.0, 3.0, 2.0]]),), {"axis": 1},
                                lambda x: x.argmin(axis=1), "ties-first"),
                       S.Sample((d.rnd(3, 4),), {"axis": 0}, lambda x: x.argmin(axis=0), "axis0"),
                       S.Sample((np.array([3, -2**63, 5, -2**63]),), {"axis": 0},
                                lambda x: x.argmin(axis=0), "int-min")],
    sympy=sym_at_point(lambda x, *, axis: np.argmin(x, axis=axis)), sympy_at_point=True,
    label="argmin", family="reduce", flops=lambda out, x, **p: x.size,
    doc="Index of the first minimum along axis (no gradient).")


def _bool_reduce_rule(x, *, axis, keepdims):
    shape = tuple(1 if i in axis else d for i, d in enumerate(x.shape)) if keepdims else \
        tuple(d for i, d in enumerate(x.shape) if i not in axis)
    return Aval(shape, np.dtype(bool), False)


def _emit_bool_reduce(method):
    def emit(e, *, axis, keepdims):
        ax = axis[0] if len(axis) == 1 else tuple(axis)
        kw = ", keepdims=True" if keepdims else ""
        return f"np.{method}({e.args[0]}, axis={ax!r}{kw})"
    return emit


def _bool_reduce(name):
    fn = getattr(np, name)
    return primitive(
        name=name, shape=_bool_reduce_rule, numpy=_emit_bool_reduce(name), vjp=NOT_DIFFERENTIABLE,
        array_api=XP.bool_reduce(name),
        samples=lambda d: [
            S.Sample((d.bools(3, 4),), {"axis": (1,), "keepdims": False},
                     lambda x: fn(x, axis=1), "bool-axis1"),
            S.Sample((d.ints(3, 4, hi=2),), {"axis": (0, 1), "keepdims": True},
                     lambda x: fn(x, axis=(0, 1), keepdims=True), "int-all-keep"),
            S.Sample((np.zeros((2, 0)),), {"axis": (1,), "keepdims": False},
                     lambda x: fn(x, axis=1), "empty-axis")],
        sympy=sym_at_point(lambda x, *, axis, keepdims: fn(x, axis=axis, keepdims=keepdims)),
        sympy_at_point=True, label=name, family="reduce", flops=lambda out, x, **p: x.size,
        doc=f"np.{name}(x, axis, keepdims): truthiness of the elements (no gradient).")


any_ = _bool_reduce("any")
all_ = _bool_reduce("all")


# --- shared argument handling ---------------------------------------------------------------
def _arr(a):
    return a if isinstance(a, (Traced, np.ndarray)) else np.asarray(a)


def _no_out(out, what):
    if out is not None:
        raise InPlaceError(f"np.{what}(..., out=...) writes into an array in place; traced "
                           "arrays are immutable", hint=f"assign the result instead: y = np.{what}(...)")


def _keep(keepdims):
    return False if keepdims is _NV else bool(keepdims)


def _mask(where, a, what):
    """``where=`` as a boolean mask of ``a``'s shape, or None when it selects everything."""
    if where is _NV or (isinstance(where, (bool, np.bool_)) and where):
        return None
    if not isinstance(where, Traced):
        where = np.asarray(where)
    if where.dtype != np.bool_:
        raise UnsupportedError(f"np.{what}(where=...): cannot cast the mask's dtype "
                               f"{where.dtype} to bool", hint="pass a boolean mask")
    try:
        shape = np.broadcast_shapes(tuple(where.shape), tuple(a.shape))
    except ValueError:
        shape = None
    if shape != tuple(a.shape):
        raise ShapeError(f"np.{what}: the where= mask of shape {tuple(where.shape)} does not "
                         f"broadcast to the array's shape {tuple(a.shape)}")
    return C.do_broadcast_to(where, tuple(a.shape))


def _fill(mask, a, value):
    """``a`` where ``mask`` holds, else ``value`` (in ``a``'s dtype)."""
    return E.where(mask, a, np.asarray(value).astype(a.dtype)[()])


def _count(mask, a, axes, keepdims):
    """How many elements each reduction sees: an int, or an intp array of counts."""
    if mask is None:
        return int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
    return C.sum(mask, axes, keepdims, np.intp)


def _const(a, value, shape, dtype):
    out = np.full(shape, value, dtype)
    return a._trace.lift(out) if isinstance(a, Traced) else out


def _out_shape(a, axes, keepdims):
    return tuple(1 if i in axes else d for i, d in enumerate(a.shape)) if keepdims else \
        tuple(d for i, d in enumerate(a.shape) if i not in axes)


def _cast(x, dtype):
    if isinstance(x, (int, float)):
        return x
    return C.astype(x, dtype) if x.dtype != dtype else x


# --- sum, mean, max, min, prod ----------------------------------------------------------
@implements(np.sum, methods=("sum",), samples=sum_samples)
def sum(a, axis=None, dtype=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    """``np.sum``: NumPy's accumulation type (the platform integer for small integers)."""
    a = _arr(a)
    _no_out(out, "sum")
    mask = _mask(where, a, "sum")
    if mask is not None:
        a = _fill(mask, a, 0)
    s = C.sum(a, axis, _keep(keepdims), dtype)
    if initial is not _NV:
        s = s + _cast(_arr(initial), s.dtype)
    return C.hint(s, "sum")


@implements(np.mean, methods=("mean",), samples=mean_samples)
def mean(a, axis=None, dtype=None, out=None, keepdims=_NV, *, where=_NV):
    """``np.mean``: float64 for integers, float16 accumulated in float32."""
    a = _arr(a)
    _no_out(out, "mean")
    mask = _mask(where, a, "mean")
    if mask is None:
        return C.mean(a, axis, _keep(keepdims), dtype)
    if a.ndim == 0 and axis is not None:
        C.mean(a, axis=axis)      # NumPy's AxisError: mean takes no axis of a 0-d array
    axes = norm_axis(axis, a.ndim)
    out_dtype = None if dtype is None else C.dtype_arg(dtype)
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.float64
    elif dtype is None and a.dtype == np.float16:
        dtype, out_dtype = np.float32, a.dtype
    s = C.sum(_fill(mask, a, 0), axes, _keep(keepdims), dtype)
    m = s / _cast(_count(mask, a, axes, _keep(keepdims)), s.dtype)
    if out_dtype is not None:
        m = _cast(m, out_dtype)
    return C.hint(m, "mean")


def _extreme(a, axis, out, keepdims, initial, where, which):
    a = _arr(a)
    _no_out(out, which)
    mask = _mask(where, a, which)
    name = "maximum" if which == "max" else "minimum"
    if mask is not None and initial is _NV:
        raise ShapeError(f"reduction operation '{name}' does not have an identity, so to use "
                         "a where mask one has to specify 'initial'")
    if a.ndim == 0 and axis is not None:
        norm_axis(axis, 0)
    axes = norm_axis(axis, a.ndim)
    keep = _keep(keepdims)
    if initial is not _NV and builtins.any(a.shape[i] == 0 for i in axes):
        return _const(a, initial, _out_shape(a, axes, keep), a.dtype)
    if mask is not None:
        if a.dtype.kind == "f":
            fill = -np.inf if which == "max" else np.inf
        else:
            fill = initial
        a = _fill(mask, a, fill)
    r = (C.max if which == "max" else C.min)(a, axes, keep)
    if initial is not _NV:
        init = _cast(_arr(initial), a.dtype)
        r = E.maximum(r, init) if which == "max" else E.minimum(r, init)
    return r


@implements(np.max, np.amax, methods=("max",), samples=extreme_samples(np.max))
def max(a, axis=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    """``np.max``; ties share the gradient equally (as JAX), and so does a tie with
    ``initial``."""
    return _extreme(a, axis, out, keepdims, initial, where, "max")


@implements(np.min, np.amin, methods=("min",), samples=extreme_samples(np.min))
def min(a, axis=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    """``np.min``; ties share the gradient equally (as JAX)."""
    return _extreme(a, axis, out, keepdims, initial, where, "min")


@implements(np.prod, methods=("prod",), samples=prod_samples)
def prod(a, axis=None, dtype=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    """``np.prod`` as a tree of multiplications: exact gradients with zeros in the input."""
    a = _arr(a)
    _no_out(out, "prod")
    mask = _mask(where, a, "prod")
    if mask is not None:
        a = _fill(mask, a, 1)
    if a.ndim == 0 and axis is not None:
        norm_axis(axis, 0)
    axes = norm_axis(axis, a.ndim)
    if dtype is None and a.dtype.kind in "biu" and a.dtype.itemsize < 8 or a.dtype.kind == "b":
        dtype = np.uint64 if a.dtype.kind == "u" else np.int64   # NumPy's platform integer
    if dtype is not None:
        a = C.astype(a, dtype)
    p = _tree_prod(a, axes, _keep(keepdims))
    if initial is not _NV:
        p = p * _cast(_arr(initial), p.dtype)
    return C.hint(p, "prod")


def _tree_prod(x, axes, keepdims):
    out_shape = _out_shape(x, axes, keepdims)
    if builtins.any(x.shape[i] == 0 for i in axes):
        return _const(x, 1, out_shape, x.dtype)
    for a in sorted(axes, reverse=True):
        while x.shape[a] > 1:
            m = x.shape[a]
            h = m // 2
            pre = (slice(None),) * a
            y = x[pre + (slice(0, h),)] * x[pre + (slice(h, 2 * h),)]
            x = C.do_concatenate([y, x[pre + (slice(2 * h, m),)]], a) if m % 2 else y
    return C.do_reshape(x, out_shape)


# --- var, std, average ---------------------------------------------------------------------
def _ddof(ddof, correction, what):
    if correction is not _NV:
        if ddof != 0:
            raise ShapeError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    if isinstance(ddof, Traced) or not isinstance(ddof, (int, float, np.integer, np.floating)) \
            or isinstance(ddof, (bool, np.bool_)):
        raise UnsupportedError(f"np.{what}(ddof={ddof!r}): ddof must be a static number",
                               hint="pass a Python int such as ddof=1")
    return ddof


def _var(a, axis, dtype, out, ddof, keepdims, where, mean, correction, what):
    """NumPy's ``_methods._var``, step by step."""
    a = _arr(a)
    _no_out(out, what)
    ddof = _ddof(ddof, correction, what)
    if a.ndim == 0 and axis is not None:
        C.mean(a, axis=axis)      # NumPy's AxisError: var/std take no axis of a 0-d array
    axes = norm_axis(axis, a.ndim)
    keep = _keep(keepdims)
    mask = _mask(where, a, what)
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.float64
    filled = a if mask is None else _fill(mask, a, 0)
    if mean is not _NV:
        arrmean = _arr(mean)
    else:
        s = C.sum(filled, axes, True, dtype)
        arrmean = s / _cast(_count(mask, a, axes, True), s.dtype)
    x = a - arrmean
    x = x * x
    if mask is not None:
        x = _fill(mask, x, 0)
    ret = C.sum(x, axes, keep, dtype)
    n = _count(mask, a, axes, keep)
    n = builtins.max(n - ddof, 0) if isinstance(n, int) else E.maximum(n - ddof, 0)
    return ret / (n if isinstance(n, (int, float)) else _cast(n, ret.dtype))


@implements(np.var, samples=var_samples)
def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=_NV, *, where=_NV, mean=_NV,
        correction=_NV):
    """``np.var``: mean squared deviation, divided by ``max(n - ddof, 0)``."""
    return C.hint(_var(a, axis, dtype, out, ddof, keepdims, where, mean, correction, "var"),
                  "var")


@implements(np.std, samples=var_samples)
def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=_NV, *, where=_NV, mean=_NV,
        correction=_NV):
    """``np.std``: the square root of :func:`var`; its gradient at zero variance is 0
    (``safe_sqrt``), where ``sqrt``'s would give ``inf * 0 = nan`` (JAX gives nan)."""
    v = _var(a, axis, dtype, out, ddof, keepdims, where, mean, correction, "std")
    return C.hint(safe_sqrt(v), "std")


# ndarray.var / .std take no correction= (NumPy 2.4 passes **kwargs to _methods._var).
@implements(methods=("var",), samples=var_method_samples)
def var_method(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
               mean=None):
    """``x.var()``: :func:`var` without ``correction=`` (a TypeError, as NumPy)."""
    return var(self, axis, dtype, out, ddof, keepdims, where=where,
               mean=_NV if mean is None else mean)


@implements(methods=("std",), samples=var_method_samples)
def std_method(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True,
               mean=None):
    """``x.std()``: :func:`std` without ``correction=`` (a TypeError, as NumPy)."""
    return std(self, axis, dtype, out, ddof, keepdims, where=where,
               mean=_NV if mean is None else mean)


def _weights(w, a, axes):
    """NumPy's ``_weights_are_valid``: ``w`` shaped to broadcast against ``a``."""
    w = _arr(w)
    if tuple(w.shape) == tuple(a.shape):
        return w
    if axes is None:
        raise UnsupportedError("Axis must be specified when shapes of a and weights differ.")
    if tuple(w.shape) != tuple(a.shape[ax] for ax in axes):
        raise ShapeError("Shape of weights must be consistent with shape of a along "
                         "specified axis.")
    w = C.do_transpose(w, tuple(int(i) for i in np.argsort(axes)))
    return C.do_reshape(w, tuple(s if ax in axes else 1 for ax, s in enumerate(a.shape)))


@implements(np.average, samples=average_samples)
def average(a, axis=None, weights=None, returned=False, *, keepdims=_NV):
    """``np.average``: ``sum(a * w) / sum(w)``.  Constant weights summing to zero raise
    NumPy's ZeroDivisionError; traced ones give inf/nan, as the division does."""
    a = _arr(a)
    axes = None if axis is None else tuple(
        one_axis(x, a.ndim) for x in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if axes is not None and len(set(axes)) != len(axes):
        raise ShapeError(f"repeated axis in {axis!r}")
    keep = _keep(keepdims)
    if weights is None:
        avg = mean(a, axes, keepdims=keepdims)
        scl = np.asarray(a.size / builtins.max(int(np.prod(avg.shape)), 1)).astype(avg.dtype)[()]
    else:
        w = _weights(weights, a, axes)
        kinds = (a.dtype, w.dtype) + (("f8",) if a.dtype.kind in "biu" else ())
        rdt = np.result_type(*kinds)
        scl = C.sum(w, axes, keep, rdt)
        if not isinstance(scl, Traced) and np.any(scl == 0.0):
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        avg = C.sum(_cast(a, rdt) * _cast(w, rdt), axes, keep) / scl
        avg = C.hint(avg, "average")
    if not returned:
        return avg
    if tuple(np.shape(scl)) != tuple(avg.shape):
        scl = C.do_broadcast_to(scl, tuple(avg.shape))
    return avg, scl


# --- any, all, argmax, argmin -----------------------------------------------------------
def _truth(a, axis, out, keepdims, where, which):
    a = _arr(a)
    _no_out(out, which)
    mask = _mask(where, a, which)
    if mask is not None:
        a = _fill(mask, a, which == "all")
    if a.ndim == 0 and axis is not None:
        norm_axis(axis, 0)
    prim = any_ if which == "any" else all_
    return prim(a, axis=norm_axis(axis, a.ndim), keepdims=_keep(keepdims))


@implements(np.any, methods=("any",), samples=any_samples(np.any))
def any(a, axis=None, out=None, keepdims=_NV, *, where=_NV):
    """``np.any`` (boolean, no gradient)."""
    return _truth(a, axis, out, keepdims, where, "any")


@implements(np.all, methods=("all",), samples=any_samples(np.all))
def all(a, axis=None, out=None, keepdims=_NV, *, where=_NV):
    """``np.all`` (boolean, no gradient)."""
    return _truth(a, axis, out, keepdims, where, "all")


def _arg(a, axis, out, keepdims, prim, what):
    a = _arr(a)
    _no_out(out, what)
    keep = _keep(keepdims)
    if axis is None:
        i = prim(C.do_reshape(a, -1), axis=0)
        return C.do_reshape(i, (1,) * a.ndim) if keep else i
    if a.ndim == 0:
        one_axis(axis, 0)
    a_ = one_axis(axis, a.ndim)
    if a.shape[a_] == 0:
        raise ShapeError(f"attempt to get {what} of an empty sequence")
    i = prim(a, axis=a_)
    return C.expand_dims(i, a_) if keep else i


@implements(np.argmax, methods=("argmax",), samples=arg_samples(np.argmax))
def argmax(a, axis=None, out=None, *, keepdims=_NV):
    """``np.argmax``: the first maximum (integer result, no gradient)."""
    return _arg(a, axis, out, keepdims, _argmax_prim, "argmax")


@implements(np.argmin, methods=("argmin",), samples=arg_samples(np.argmin))
def argmin(a, axis=None, out=None, *, keepdims=_NV):
    """``np.argmin``: the first minimum (integer result, no gradient)."""
    return _arg(a, axis, out, keepdims, argmin_prim, "argmin")


# --- nansum, nanmean -----------------------------------------------------------------------
def _replace_nan(a, value):
    if a.dtype.kind != "f":
        return a, None
    isnan = a != a
    return E.where(isnan, np.asarray(value, a.dtype)[()], a), isnan


@implements(np.nansum, samples=nan_samples(np.nansum))
def nansum(a, axis=None, dtype=None, out=None, keepdims=_NV, initial=_NV, where=_NV):
    """``np.nansum``: NaNs count as 0 and get a zero gradient."""
    a, _ = _replace_nan(_arr(a), 0)
    return sum(a, axis, dtype, out, keepdims, initial, where)


@implements(np.nanmean, samples=nan_samples(np.nanmean))
def nanmean(a, axis=None, dtype=None, out=None, keepdims=_NV, *, where=_NV):
    """``np.nanmean``: the mean of the non-NaN elements (NaN where there are none); NaNs
    get a zero gradient.  As NumPy, float16 is summed in float16."""
    arr, isnan = _replace_nan(_arr(a), 0)
    if isnan is None:
        return mean(arr, axis, dtype, out, keepdims, where=where)
    _no_out(out, "nanmean")
    cnt = sum(E.logical_not(isnan), axis, np.intp, None, keepdims, where=where)
    tot = sum(arr, axis, dtype, None, keepdims, where=where)
    return C.hint(tot / _cast(cnt, tot.dtype), "nanmean")
