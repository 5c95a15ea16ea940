"""Transcendental ufuncs: inverse trigonometry, cbrt, reciprocal, log2/log10/exp2,
arctan2, hypot (primitives), and square, the angle conversions, float_power,
power and sinc (composites).

Primitives emit NumPy's own ufunc (``np.arcsin(x)``): the values are NumPy's to
the last bit, and the dtype comes from NumPy itself (``elementwise_rule``: an
int8 array gives float16, int64 float64, float32 stays float32, a Python float
is weak, NEP 50).  Each VJP is written in graphc ops, so it is differentiable
again.  Gradient conventions at special points follow JAX where JAX's is finite
or a limit (arcsin at |x| = 1 and cbrt at 0 are infinite); where the function
has no derivative and JAX gives nan, graphc gives a finite subgradient, and the
record's ``doc`` says so (hypot and arctan2 at the origin, logaddexp at two
equal infinities).  The hyperbolic family is in :mod:`graphc.ops.hyperbolic`,
logaddexp and logaddexp2 in :mod:`graphc.ops.logaddexp`.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..primitive import primitive
from . import _samples as S
from . import array_api as XP
from . import composite as C
from . import elementwise as E
from ._numpy_table import Call, implements
from ._rules import elementwise_rule, result_dtype, size_flops

LN2, LN10 = math.log(2.0), math.log(10.0)


# --- record helpers -----------------------------------------------------------------
def ufunc_primitive(np_fn, *, name, vjp, sympy, samples, doc, label=None, **fields):
    """A primitive that is the NumPy ufunc ``np_fn`` itself (emission, dtype rule,
    ``out=`` buffer reuse), named like it (``name`` is spelled out in the record
    for readers and tools/make_op_reference.py)."""
    if name != np_fn.__name__:
        raise ValueError(f"primitive {name!r} emits np.{np_fn.__name__}: name it the same")
    args = ", ".join(f"{{{i}}}" for i in range(np_fn.nin))
    return primitive(name=name, shape=elementwise_rule(np_fn), numpy=f"np.{name}({args})",
                     vjp=vjp, sympy=sympy, label=label or name, elementwise=True,
                     flops=size_flops, inplace_ufunc=f"np.{name}", fresh_result=True,
                     samples=samples, doc=doc, **fields)


def unary_samples(np_fn, gen, ints=(0, 1, 2)):
    """Primitive samples of a unary ufunc; ``gen(d, *shape, dtype=)`` draws inputs
    inside its domain, ``ints`` is an integer input NumPy promotes to float."""
    def samples(d):
        return [S.Sample((gen(d, 3, 4),), {}, np_fn, "f64(3,4)"),
                S.Sample((gen(d, 5, dtype=S.F32),), {}, np_fn, "f32(5)"),
                S.Sample((np.asarray(gen(d, 1)[0]),), {}, np_fn, "f64()"),
                S.Sample((np.array(ints, dtype=np.int64),), {}, np_fn, "int64->f64"),
                S.Sample((np.array(ints, dtype=np.int8),), {}, np_fn, "int8->f16")]
    return samples


def unary_calls(gen, ints=(0, 1, 2)):
    """Table samples (``Call``) of a unary ufunc reached through ``__array_ufunc__``."""
    def calls(d):
        return [Call((gen(d, 3, 4),), {}, "f64(3,4)"),
                Call((gen(d, 2, 3, dtype=S.F32),), {}, "f32(2,3)"),
                Call((np.asarray(gen(d, 1)[0]),), {}, "f64()"),
                Call((np.array(ints, dtype=np.int64),), {}, "int64"),
                Call((np.array(ints, dtype=np.int16),), {}, "int16->f32"),
                Call((gen(d, 4),), {"dtype": np.float32}, "dtype=f32", grad=False)]
    return calls


def binary_calls(gx, gy):
    """Table samples of a binary ufunc: broadcasting, float32, NEP 50 scalars, ints."""
    def calls(d):
        return [Call((gx(d, 3, 4), gy(d, 3, 4)), {}, "same-shape"),
                Call((gx(d, 3, 4), gy(d, 4)), {}, "bcast-(3,4)-(4,)"),
                Call((gx(d, 2, 1, 3), gy(d, 4, 1)), {}, "bcast-(2,1,3)-(4,1)"),
                Call((gx(d, 3, dtype=S.F32), gy(d, 3, dtype=S.F32)), {}, "f32"),
                Call((gx(d, 3, dtype=S.F32), float(gy(d, 1)[0])), {}, "f32-pyfloat(NEP50)"),
                Call((float(gx(d, 1)[0]), gy(d, 3)), {}, "pyfloat-f64"),
                Call((gx(d, 3, dtype=S.F32), gy(d, 3)), {}, "f32-f64-promote"),
                Call((np.arange(1, 4), np.array([2, 1, 3])), {}, "int64")]
    return calls


def rnd(d, *shape, dtype=S.F64):
    return d.rnd(*shape, dtype=dtype)


def pos(d, *shape, dtype=S.F64):
    return d.pos(*shape, dtype=dtype, lo=0.3, hi=4.0)


def inside1(d, *shape, dtype=S.F64):
    """Inside (-1, 1), away from the edges (finite differences there are poor)."""
    return d.uniform(*shape, dtype=dtype, lo=-0.9, hi=0.9)


def away(d, *shape, dtype=S.F64):
    return d.away(*shape, dtype=dtype)


def register_ufunc(prim, np_fn, calls):
    """Make ``np_fn`` (a ufunc) call the primitive ``prim`` on traced values."""
    implements(np_fn, samples=calls)(prim)


# --- inverse trigonometric functions --------------------------------------------------
# (1 - x) * (1 + x) rather than 1 - x*x: exact near |x| = 1, where the derivative is large.
def _one_minus_sq(x):
    return (1 - x) * (1 + x)


arcsin = ufunc_primitive(
    np.arcsin, name="arcsin", scalar="math.asin({0})", scalar_quiet="abs({0}) <= 1.0", array_api="xp.asin({0})", vjp=lambda ct, x, *, out: (ct / E.sqrt(_one_minus_sq(x)),), jvp=lambda t, x, *, out: t[0] / E.sqrt(_one_minus_sq(x)), sympy=sp.asin,
    samples=unary_samples(np.arcsin, inside1, (-1, 0, 1)),
    nonfinite_hint="arcsin is nan outside [-1, 1] and its gradient is infinite at ±1: "
                   "clip the input (np.clip(x, -1 + eps, 1 - eps))",
    doc="Inverse sine; d/dx = 1/sqrt(1 - x²), +inf at x = ±1 (as JAX), nan outside [-1, 1].")
arccos = ufunc_primitive(
    np.arccos, name="arccos", scalar="math.acos({0})", scalar_quiet="abs({0}) <= 1.0", array_api="xp.acos({0})", vjp=lambda ct, x, *, out: (-(ct / E.sqrt(_one_minus_sq(x))),), jvp=lambda t, x, *, out: -(t[0] / E.sqrt(_one_minus_sq(x))), sympy=sp.acos,
    samples=unary_samples(np.arccos, inside1, (-1, 0, 1)),
    nonfinite_hint="arccos is nan outside [-1, 1] and its gradient is infinite at ±1: "
                   "clip the input (np.clip(x, -1 + eps, 1 - eps))",
    doc="Inverse cosine; d/dx = -1/sqrt(1 - x²), -inf at x = ±1 (as JAX), nan outside [-1, 1].")
arctan = ufunc_primitive(
    np.arctan, name="arctan", scalar="math.atan({0})", scalar_quiet="abs({0}) < 1e308", scalar_masks=(0,), array_api="xp.atan({0})", vjp=lambda ct, x, *, out: (ct / (1 + x * x),), jvp=lambda t, x, *, out: t[0] / (1 + x * x), sympy=sp.atan,
    samples=unary_samples(np.arctan, rnd, (-3, 0, 5)),
    doc="Inverse tangent; d/dx = 1/(1 + x²) (0 in the limit |x| → inf).")
register_ufunc(arcsin, np.arcsin, unary_calls(inside1, (-1, 0, 1)))
register_ufunc(arccos, np.arccos, unary_calls(inside1, (-1, 0, 1)))
register_ufunc(arctan, np.arctan, unary_calls(rnd, (-3, 0, 5)))


# --- cbrt, reciprocal ------------------------------------------------------------------
def _sym_cbrt(x):
    return sp.Piecewise((sp.cbrt(x), x >= 0), (-sp.cbrt(-x), True))


cbrt = ufunc_primitive(
    np.cbrt, name="cbrt", scalar="math.cbrt({0})", scalar_quiet="abs({0}) < 1e308", array_api="_cbrt(xp, {0})", vjp=lambda ct, x, *, out: (ct / (3 * (out * out)),), jvp=lambda t, x, *, out: t[0] / (3 * (out * out)), sympy=_sym_cbrt, label="∛",
    samples=unary_samples(np.cbrt, away, (-8, 0, 27)),
    nonfinite_hint="the gradient of cbrt is infinite at 0: add an epsilon or clip",
    doc="Real cube root (negative for x < 0); d/dx = 1/(3 cbrt(x)²), +inf at 0 (as JAX).")
# A primitive, not 1 / x: np.reciprocal of an integer array is an integer (1 // x).
reciprocal = ufunc_primitive(
    np.reciprocal, name="reciprocal", scalar="1.0 / {0}", scalar_masks=(0,), array_api=XP.reciprocal, vjp=lambda ct, x, *, out: (-(ct * (out * out)),), jvp=lambda t, x, *, out: -(t[0] * (out * out)), sympy=lambda x: 1 / x,
    label="1/x", samples=unary_samples(np.reciprocal, away, (1, -1, 3)),
    nonfinite_hint="1/x is infinite at 0: add an epsilon to the input or guard it",
    doc="1 / x (integer division for integers, as NumPy); d/dx = -1/x², -inf at 0.")
register_ufunc(cbrt, np.cbrt, unary_calls(away, (-8, 0, 27)))
register_ufunc(reciprocal, np.reciprocal, unary_calls(away, (1, -1, 3)))


# --- log2, log10, exp2 ------------------------------------------------------------------
# Primitives rather than log(x) / log(2): NumPy's log2 is exact at powers of two
# (log2(8) == 3.0), the quotient is not (3.0000000000000004).
_LOG_HINT = ("the log of 0 is -inf and of a negative number nan: add a small epsilon or "
             "clip the input")
log2 = ufunc_primitive(
    np.log2, name="log2", scalar="math.log2({0})", scalar_quiet="{0} > 0.0", vjp=lambda ct, x, *, out: (ct / (x * LN2),), jvp=lambda t, x, *, out: t[0] / (x * LN2), sympy=lambda x: sp.log(x, 2),
    samples=unary_samples(np.log2, pos, (1, 2, 8)), nonfinite_hint=_LOG_HINT,
    doc="Base-2 logarithm (exact at powers of two); d/dx = 1/(x ln 2).")
log10 = ufunc_primitive(
    np.log10, name="log10", scalar="math.log10({0})", scalar_quiet="{0} > 0.0", vjp=lambda ct, x, *, out: (ct / (x * LN10),), jvp=lambda t, x, *, out: t[0] / (x * LN10), sympy=lambda x: sp.log(x, 10),
    samples=unary_samples(np.log10, pos, (1, 10, 100)), nonfinite_hint=_LOG_HINT,
    doc="Base-10 logarithm; d/dx = 1/(x ln 10).")
exp2 = ufunc_primitive(
    np.exp2, name="exp2", scalar="math.exp2({0})", scalar_quiet="{0} < 1023.0", scalar_masks=(0,), array_api="xp.pow(2.0, {0})", vjp=lambda ct, x, *, out: (ct * (out * LN2),), jvp=lambda t, x, *, out: t[0] * (out * LN2), sympy=lambda x: 2 ** x,
    samples=unary_samples(np.exp2, rnd, (-3, 0, 10)),
    nonfinite_hint="exp2 overflows above 1024 in float64 (128 in float32): clip its input",
    doc="2 ** x; d/dx = 2**x ln 2.")
register_ufunc(log2, np.log2, unary_calls(pos, (1, 2, 8)))
register_ufunc(log10, np.log10, unary_calls(pos, (1, 10, 100)))
register_ufunc(exp2, np.exp2, unary_calls(rnd, (-3, 0, 10)))


# --- hypot, arctan2 ---------------------------------------------------------------------
def _safe_norm(h):
    """``h``, with 1 where it is 0 (the origin's gradient is then 0, not 0/0)."""
    return E.where(h == 0, 1.0, h)


def _hypot_vjp(ct, x, y, *, out):
    h = _safe_norm(out)
    return ct * (x / h), ct * (y / h)


def _hypot_jvp(t, x, y, *, out):
    tx, ty = t
    h = _safe_norm(out)
    return E.tangent_sum(None if tx is None else tx * (x / h), None if ty is None else ty * (y / h))


def binary_samples(np_fn, gx, gy, edge):
    def samples(d):
        return [S.Sample((gx(d, 3, 4), gy(d, 3, 4)), {}, np_fn, "same-shape"),
                S.Sample((gx(d, 3, 4), gy(d, 4)), {}, np_fn, "bcast-(3,4)-(4,)"),
                S.Sample((gx(d, 3, dtype=S.F32), gy(d, 3, dtype=S.F32)), {}, np_fn, "f32"),
                S.Sample((gx(d, 3, dtype=S.F32), float(gy(d, 1)[0])), {}, np_fn,
                         "f32-pyfloat(NEP50)"),
                S.Sample((np.arange(1, 4), np.array([2, 1, 3])), {}, np_fn, "int64"),
                S.Sample(*edge, np_fn, "edge", grad=False)]
    return samples


hypot = ufunc_primitive(
    np.hypot, name="hypot", scalar="math.hypot({0}, {1})", scalar_quiet="abs({0}) < 1e300 and abs({1}) < 1e300", vjp=_hypot_vjp, jvp=_hypot_jvp, sympy=lambda x, y: sp.sqrt(x * x + y * y), label="hypot",
    samples=binary_samples(np.hypot, rnd, rnd,
                            ((np.array([1e200, 3e-200, 0.0, np.inf]),
                              np.array([1e200, 4e-200, 0.0, 1.0])), {})),
    doc="sqrt(x² + y²) without overflow or underflow; d/dx = x / hypot, and 0 at the "
        "origin (a subgradient, as graphc's |x| at 0; JAX's where-based hypot is finite "
        "there too, PyTorch's is nan).")


def _arctan2_vjp(ct, x1, x2, *, out):
    # d/dx1 = x2 / (x1² + x2²), d/dx2 = -x1 / (x1² + x2²), with the squared norm taken
    # as hypot * hypot, divided one factor at a time: no overflow for |x| > 1e154.
    h = _safe_norm(hypot(x1, x2))
    return ct * (x2 / h / h), -(ct * (x1 / h / h))


def _arctan2_jvp(t, x1, x2, *, out):
    t1, t2 = t
    h = _safe_norm(hypot(x1, x2))
    return E.tangent_sum(None if t1 is None else t1 * (x2 / h / h),
                         None if t2 is None else -(t2 * (x1 / h / h)))


arctan2 = ufunc_primitive(
    np.arctan2, name="arctan2", scalar="math.atan2({0}, {1})", scalar_quiet="abs({0}) < 1e308 and abs({1}) < 1e308", scalar_masks=(0, 1), array_api="xp.atan2({0}, {1})", vjp=_arctan2_vjp, jvp=_arctan2_jvp, sympy=sp.atan2, label="atan2",
    samples=binary_samples(np.arctan2, rnd, away,
                            ((np.array([1e200, 0.0, -0.0, 1.0, 0.0]),
                              np.array([1e200, 0.0, -1.0, np.inf, -0.0])), {})),
    doc="Angle of the point (x2, x1) in (-pi, pi]; d/dx1 = x2/(x1² + x2²), d/dx2 = "
        "-x1/(x1² + x2²); 0 at the origin, where the angle jumps (JAX gives nan there).")
register_ufunc(hypot, np.hypot, binary_calls(rnd, rnd))
register_ufunc(arctan2, np.arctan2, binary_calls(rnd, away))


# --- composites ---------------------------------------------------------------------------
def _as_computed(x, np_fn):
    """``x`` cast to the dtype NumPy's ``np_fn`` computes in (int64 -> float64,
    int8 -> float16, bool -> int8 for np.square)."""
    dtype = result_dtype(np_fn, [x.aval])
    return x if x.dtype == dtype else C.astype(x, dtype)


def _scaled(x, np_fn, num, den, name):
    """``x * (num / den)`` as NumPy's angle conversions compute it: the constant in
    float64 for float64, in float32 (float32(num) / float32(den)) for float32 and
    float16 (whose loop computes in float32 and rounds once)."""
    x = _as_computed(x, np_fn)
    if x.dtype == np.float64:
        return C.hint(x * (num / den), name)
    factor = np.float32(num) / np.float32(den)
    if x.dtype == np.float16:
        return C.astype(C.astype(x, np.float32) * factor, np.float16)
    return C.hint(x * factor, name)


def _float_calls(gen, ints=(0, 90, -120)):
    def calls(d):
        return [Call((gen(d, 3, 4),), {}, "f64(3,4)"),
                Call((gen(d, 5, dtype=S.F32),), {}, "f32(5)"),
                Call((gen(d, 3, dtype=np.float16),), {}, "f16(3)", grad=False),
                Call((np.asarray(gen(d, 1)[0]),), {}, "f64()"),
                Call((np.array(ints),), {}, "int64->f64"),
                Call((np.array(ints, dtype=np.int8),), {}, "int8->f16")]
    return calls


def _degrees(d, *shape, dtype=S.F64):
    return (d.rnd(*shape) * 100).astype(dtype)


@implements(np.deg2rad, np.radians, samples=_float_calls(_degrees))
def deg2rad(x):
    """Degrees to radians: ``x * (pi / 180)``, NumPy's own constant and rounding."""
    return _scaled(x, np.deg2rad, math.pi, 180.0, "radians")


@implements(np.rad2deg, np.degrees, samples=_float_calls(rnd, (0, 1, -3)))
def rad2deg(x):
    """Radians to degrees: ``x * (180 / pi)``, NumPy's own constant and rounding."""
    return _scaled(x, np.rad2deg, 180.0, math.pi, "degrees")


def _square_calls(d):
    return [Call((d.rnd(3, 4),), {}, "f64(3,4)"), Call((d.rnd(5, dtype=S.F32),), {}, "f32"),
            Call((np.asarray(d.rnd(1)[0]),), {}, "f64()"),
            Call((np.array([-3, 0, 7]),), {}, "int64"),
            Call((np.array([100, -12], dtype=np.int8),), {}, "int8-wraps"),
            Call((np.array([True, False]),), {}, "bool->int8")]


@implements(np.square, samples=_square_calls)
def square(x):
    """``x * x`` in NumPy's dtype (a bool array squares to int8; integers wrap)."""
    return C.square(_as_computed(x, np.square))


def _power_calls(d):
    return [Call((d.pos(3, 4), d.rnd(3, 4)), {}, "pos-base"),
            Call((d.pos(3, 4), d.rnd(4)), {}, "bcast-exp"),
            Call((d.rnd(3, 4), 3), {}, "int-exp-neg-base"),
            Call((d.pos(3, 4), 0.5), {}, "pyfloat-exp"),
            Call((2.0, d.rnd(3)), {}, "pyfloat-base"),
            Call((d.pos(4, dtype=S.F32), 1.5), {}, "f32-pyfloat-exp"),
            Call((d.pos(4, dtype=S.F32), d.rnd(4)), {}, "f32-f64-promote"),
            Call((np.arange(4), 2), {}, "int64"),
            Call((np.array([1, 2, 3], dtype=np.int8), np.array([1, 2, 7], dtype=np.int8)), {},
                 "int8-wraps")]


# np.power is the pow primitive itself (x ** y; its record documents the gradient
# conventions at x = 0 and y = 0); these are its NumPy-level samples.
register_ufunc(E.pow, np.power, _power_calls)


def _as_float64(x):
    if hasattr(x, "aval"):
        return x if x.dtype == np.float64 else C.astype(x, np.float64)
    if isinstance(x, (bool, int, float)):
        return x                        # a Python number is weak: it takes float64
    return np.asarray(x, dtype=np.float64)


def _float_power_calls(d):
    return _power_calls(d)[:7] + [
        Call((np.arange(4), 2), {}, "int64->f64"),
        Call((np.array([-2, 3]), np.array([3, -2])), {}, "int-negative-exp"),
        Call((d.pos(3, dtype=S.F32), d.rnd(3, dtype=S.F32)), {}, "f32->f64")]


@implements(np.float_power, samples=_float_power_calls)
def float_power(x1, x2):
    """``x1 ** x2`` computed in float64 (as NumPy: float32 and integer inputs too)."""
    return C.hint(E.pow(_as_float64(x1), _as_float64(x2)), "float_power")


def _sinc_calls(d):
    return [Call((d.rnd(3, 4),), {}, "f64(3,4)"), Call((d.rnd(5, dtype=S.F32),), {}, "f32"),
            Call((np.array([0.0, 1.0, -0.5, 2.5, 0.0]),), {}, "zeros"),
            Call((np.asarray(0.0),), {}, "0-d-zero"),
            Call((np.array([0, 1, 2]),), {}, "int64->f64")]


@implements(np.sinc, samples=_sinc_calls)
def sinc(x):
    """sin(pi x) / (pi x), 1 at 0: NumPy's own formula, with its epsilon standing in
    for 0.  The gradient at 0 is 0 (the true derivative there: sinc is even), finite."""
    y = math.pi * _as_computed(x, np.sinc)
    eps = float(np.finfo(y.dtype).eps)
    y = E.where(y == 0, eps, y)
    return C.hint(E.sin(y) / y, "sinc")
