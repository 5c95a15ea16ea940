"""Predicates and logic: isnan, isinf, isfinite, logical_and/or/xor/not (boolean-valued, no
gradient), and the two NumPy functions built on them, nan_to_num and clip.

Gradient conventions (as JAX): the predicates are piecewise constant and boolean, so they are
``NOT_DIFFERENTIABLE``.  ``nan_to_num`` passes the cotangent where the input was finite and
gives 0 where it replaced a NaN or an infinity.  ``clip`` is ``np.maximum``/``np.minimum``:
the bound that is active gets the cotangent, and at a tie (``x == a_min``) each side gets half.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import InPlaceError, ShapeError, UnsupportedError
from ..primitive import NOT_DIFFERENTIABLE, primitive
from . import _samples as S
from . import elementwise as ew
from ._numpy_table import Call, implements
from ._rules import elementwise_rule, zero_flops


# --- SymPy semantics: a real symbol is finite (real=True implies finite in SymPy) -----------
def _truth(v):
    """A logic value: SymPy relations and booleans as they are, a number as ``v != 0``."""
    if isinstance(v, (bool, np.bool_)):
        return sp.true if v else sp.false
    if isinstance(v, sp.logic.boolalg.Boolean) and not isinstance(v, sp.Expr):
        return v
    return sp.Ne(v, 0)


def _sym_isnan(x):
    return sp.true if x is sp.nan else sp.false


def _sym_isinf(x):
    return sp.true if x in (sp.oo, -sp.oo, sp.zoo) else sp.false


def _sym_isfinite(x):
    return sp.false if x in (sp.nan, sp.oo, -sp.oo, sp.zoo) else sp.true


def _predicate_samples(fn):
    def samples(d):
        special = np.array([0.0, -1.5, np.inf, -np.inf, np.nan, 2.0])
        return [S.Sample((special,), {}, fn, "special-f64"),
                S.Sample((special.astype(np.float32)[::-1],), {}, fn, "special-f32"),
                S.Sample((d.rnd(3, 4),), {}, fn, "f64(3,4)"),
                S.Sample((d.ints(5),), {}, fn, "int"),
                S.Sample((np.asarray(np.nan),), {}, fn, "0-d")]
    return samples


def _predicate(fn, sym, doc):
    name = fn.__name__
    return primitive(name=name, shape=elementwise_rule(fn), numpy=f"np.{name}({{0}})",
                     vjp=NOT_DIFFERENTIABLE, sympy=sym, label=name, elementwise=True,
                     flops=zero_flops, samples=_predicate_samples(fn), doc=doc)


isnan = _predicate(np.isnan, _sym_isnan, "True where x is NaN (False for integers).")
isinf = _predicate(np.isinf, _sym_isinf, "True where x is +inf or -inf.")
isfinite = _predicate(np.isfinite, _sym_isfinite, "True where x is neither NaN nor infinite.")

logical_xor = primitive(
    name="logical_xor", shape=elementwise_rule(np.logical_xor), numpy="np.logical_xor({0}, {1})",
    vjp=NOT_DIFFERENTIABLE, sympy=lambda x, y: sp.Xor(_truth(x), _truth(y)), logic_operands=True,
    label="xor", elementwise=True, flops=zero_flops,
    samples=lambda d: [S.Sample((d.bools(3, 4), d.bools(4)), {}, np.logical_xor, "bcast"),
                       S.Sample((d.rnd(3), np.array([0.0, 2.0, -0.0])), {}, np.logical_xor,
                                "floats-truthiness")],
    doc="x != y on truth values (numbers count as x != 0).")


# --- the NumPy registrations ------------------------------------------------------------------
def _predicate_calls(d):
    special = np.array([0.0, -1.5, np.inf, -np.inf, np.nan, 2.0])
    return [Call((special,), {}, "special-f64"),
            Call((special.astype(np.float32),), {}, "special-f32"),
            Call((d.rnd(3, 4),), {}, "f64(3,4)"),
            Call((d.ints(2, 3),), {}, "int"),
            Call((d.bools(4),), {}, "bool"),
            Call((np.asarray(np.inf),), {}, "0-d")]


implements(np.isnan, samples=_predicate_calls)(isnan)
implements(np.isinf, samples=_predicate_calls)(isinf)
implements(np.isfinite, samples=_predicate_calls)(isfinite)


def _logic_calls(d):
    return [Call((d.bools(3, 4), d.bools(4)), {}, "bool-bcast"),
            Call((np.array([0.0, 1.5, -0.0, np.nan]), np.array([2.0, 0.0, 0.0, 1.0])), {},
                 "floats-truthiness"),
            Call((d.ints(3, 4), d.bools(3, 1)), {}, "int-bool"),
            Call((d.rnd(3).astype(np.float32), 0.0), {}, "f32-pyfloat"),
            Call((d.ints(4), 1), {}, "int-pyint"),
            Call((np.asarray(1.0), d.bools(2)), {}, "0-d")]


implements(np.logical_and, samples=_logic_calls)(ew.logical_and)
implements(np.logical_or, samples=_logic_calls)(ew.logical_or)
implements(np.logical_xor, samples=_logic_calls)(logical_xor)
implements(np.logical_not, samples=lambda d: [
    Call((d.bools(3, 4),), {}, "bool"), Call((np.array([0.0, -0.0, 2.0, np.nan]),), {}, "float"),
    Call((d.ints(5),), {}, "int"), Call((np.asarray(0.0),), {}, "0-d")])(ew.logical_not)


# --- nan_to_num ------------------------------------------------------------------------------
def _nan_to_num_calls(d):
    # (a default replacement near 1.8e308 leaves finite differences nothing to see: grad=False)
    x = np.array([[1.5, np.nan, -np.inf], [np.inf, -2.0, 0.25]])
    return [Call((x,), {}, "defaults", False),
            Call((x,), {"nan": -1.0, "posinf": 2.5, "neginf": -7}, "keywords"),
            Call((x, True, 3.0), {}, "positional-nan", False),
            Call((x.astype(np.float32),), {}, "f32"),
            Call((x.astype(np.float32),), {"posinf": 1e300}, "f32-overflowing-posinf"),
            Call((x,), {"posinf": np.inf, "neginf": 3}, "posinf-inf", False),
            Call((d.rnd(3, 4),), {}, "all-finite"),
            Call((d.ints(3),), {}, "int-unchanged"),
            Call((np.asarray(np.nan),), {"nan": 2.5}, "0-d")]


@implements(np.nan_to_num, samples=_nan_to_num_calls)
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """NaN -> ``nan``, +inf -> ``posinf`` (default: the dtype's largest finite value), -inf ->
    ``neginf`` (default: the most negative one); integer and boolean input is returned as is.

    Gradient: the cotangent where ``x`` was finite, 0 where a value was replaced.
    ``copy=False`` (NumPy then also overwrites ``x``) is an ``InPlaceError``.
    """
    if not copy:
        raise InPlaceError("np.nan_to_num(x, copy=False) overwrites x in place; traced arrays "
                           "are immutable", hint="assign the result instead: x = np.nan_to_num(x)")
    dtype = np.dtype(x.dtype)
    if dtype.kind not in "f":
        return x
    info = np.finfo(dtype)
    nan_v, pos_v, neg_v = (_fill(v, x, dtype) for v in (
        nan, info.max if posinf is None else posinf, info.min if neginf is None else neginf))
    special = ew.where(isnan(x), nan_v, ew.where(x > 0, pos_v, neg_v))
    return ew.where(isfinite(x), x, special)


def _fill(v, x, dtype):
    """A replacement value in ``x``'s dtype, as ``np.copyto`` casts it (same_kind)."""
    if hasattr(v, "aval"):
        if np.broadcast_shapes(v.shape, x.shape) != tuple(x.shape):
            raise ShapeError(f"np.nan_to_num: a replacement of shape {v.shape} does not "
                             f"broadcast to the input's shape {x.shape}")
        return ew.astype(v, dtype=dtype) if v.dtype != dtype else v
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        raise UnsupportedError(f"np.nan_to_num: cannot use {v!r:.40} as a {dtype} value")
    return arr.astype(dtype)


# --- clip ------------------------------------------------------------------------------------
def _clip_calls(d):
    x = np.array([[-1.2, -0.5, 0.1, 0.9], [0.5, -0.6, 2.0, -0.05], [0.3, 0.45, 0.5, -2.0]])
    nan = np.array([0.3, np.nan, -2.0])
    lo, hi = d.uniform(4, lo=-1.0, hi=-0.2), d.uniform(3, 1, lo=0.2, hi=1.0)
    ints = np.arange(-3, 9).reshape(3, 4)
    return [Call((x, -0.5, 0.5), {}, "positional-ties"), Call((nan, 0.0, 1.0), {}, "nan", False),
            Call((x, None, 0.3), {}, "a_min=None"), Call((x, -0.2, None), {}, "a_max=None"),
            Call((x,), {"min": -0.5}, "min="), Call((x,), {"max": 0.5}, "max="),
            Call((x,), {"min": 0.4, "max": -0.4}, "min>max"), Call((x,), {}, "no-bounds"),
            Call((x, lo, hi), {}, "traced-array-bounds"),
            Call((x.astype(np.float32), -0.5, 0.5), {}, "f32-pyfloat-NEP50"),
            Call((x.astype(np.float32), np.float64(-0.5), 1.0), {}, "f32-f64-bound-promotes"),
            Call((ints, 0, 5), {}, "int-int"), Call((ints, -1.5, 2.5), {}, "int-float-bounds"),
            Call((ints.astype(np.uint8) % 7, -1, 300), {}, "uint8-out-of-range-pyints"),
            Call((x, -0.5, 0.5), {"dtype": np.float32}, "dtype=", False),
            Call((np.asarray(0.7), 0.0, 0.5), {}, "0-d")]


def _clip_method_calls(d):
    x = np.array([[-1.2, -0.5, 0.1], [0.5, 0.7, 2.0]])
    return [Call((x, -0.5, 0.5), {}, "positional"), Call((x,), {"max": 0.0}, "max="),
            Call((x,), {"min": 0.0}, "min="), Call((x, None, 0.6), {}, "min=None"),
            Call((x.astype(np.float32), -0.5), {}, "f32-one-sided"),
            Call((np.arange(6), 1, 4), {}, "int")]


@implements(np.clip, samples=_clip_calls)
def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue,
         max=np._NoValue, **kwargs):
    """``np.clip`` in NumPy 2's forms: ``(a, a_min, a_max)``, either bound None, or the
    ``min=``/``max=`` keywords.  Gradient: ``np.maximum``/``np.minimum``'s (halves at a tie)."""
    if a_min is np._NoValue and a_max is np._NoValue:
        a_min = None if min is np._NoValue else min
        a_max = None if max is np._NoValue else max
    elif a_min is np._NoValue or a_max is np._NoValue:
        from ..errors import SignatureError
        missing = "a_min" if a_min is np._NoValue else "a_max"
        raise SignatureError(f"clip() missing 1 required positional argument: '{missing}'")
    elif min is not np._NoValue or max is not np._NoValue:
        from ..errors import OptionError
        raise OptionError("Passing `min` or `max` keyword argument when `a_min` and `a_max` "
                          "are provided is forbidden.")
    return clip_method(a, a_min, a_max, out, **kwargs)


@implements(methods=("clip",), samples=_clip_method_calls)
def clip_method(self, /, min=None, max=None, out=None, **kwargs):
    """``x.clip(min, max)``: NumPy's ``_clip``: a Python-int bound beyond an integer dtype's
    range is dropped, one bound is ``np.minimum``/``np.maximum``, both are
    ``minimum(max, maximum(min, x))`` (x itself at a tie, as ``np.clip``)."""
    if out is not None:
        raise InPlaceError("clip(..., out=...) writes into an array in place; traced arrays "
                           "are immutable", hint="assign the result instead: y = np.clip(x, lo, hi)")
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        raise UnsupportedError(f"clip: argument(s) {sorted(kwargs)} are not supported")
    a = self if hasattr(self, "aval") else np.asarray(self)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        min = None if type(min) is int and min <= info.min else min
        max = None if type(max) is int and max >= info.max else max
    if min is None and max is None:
        if a.dtype.kind == "b":
            raise UnsupportedError("clip of a boolean array without bounds: NumPy's "
                                   "np.positive has no boolean loop")
        from .shape import identity
        r = identity(a)
    elif min is None:
        r = ew.minimum(a, max)
    elif max is None:
        r = ew.maximum(a, min)
    else:
        r = ew.minimum(max, ew.maximum(min, a))
    return r if dtype is None else _cast_result(r, dtype, (a, min, max))


def _cast_result(r, dtype, inputs):
    """``dtype=`` of the clip ufunc: the inputs must cast to it (same_kind); clipping commutes
    with the (monotone) cast, so the result is cast once."""
    dtype = np.dtype(dtype)
    for v in inputs:
        if v is None or isinstance(v, (int, float)) or getattr(getattr(v, "aval", None), "weak", 0):
            continue         # Python scalars are weak: they take the ufunc's dtype
        vd = v.dtype if hasattr(v, "dtype") else np.asarray(v).dtype
        if not np.can_cast(vd, dtype, "same_kind"):
            raise UnsupportedError(f"clip: cannot cast the {vd} input to dtype={dtype} "
                                   "with casting rule 'same_kind'")
    return r if r.dtype == dtype else ew.astype(r, dtype=dtype)


# --- & | ^ ~ ---------------------------------------------------------------------------------
def bool_operator(prim, symbol, reflected=False):
    """The operator ``symbol`` on a traced value: ``prim`` (logical_and, ...) for booleans.
    On integers NumPy's ``& | ^ ~`` are bitwise, which graphc does not trace: an error,
    never a logical result."""
    def op(self, *other):
        args = (other[0], self) if reflected else (self, *other)
        for a in args:
            dtype = a.dtype if hasattr(a, "aval") else np.asarray(a).dtype
            if dtype.kind != "b":
                raise UnsupportedError(
                    f"the operator {symbol} on {dtype} values is bitwise in NumPy, which graphc "
                    "does not support", hint="combine boolean arrays (x > 0) & (y < 1), or use "
                    "np.logical_and / np.logical_or / np.logical_xor / np.logical_not")
        return prim(*args)
    return op
