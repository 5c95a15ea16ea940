"""Rounding and division: floor, ceil, rint, trunc, round(decimals), floor_divide (``//``),
remainder (``%``, ``np.mod``), fmod, divmod, fmax, fmin, heaviside and fabs.

Each is NumPy's own ufunc in generated code, so values, dtypes (integer inputs included:
``np.floor`` keeps an integer dtype, ``//`` and ``%`` of integers by zero give 0 with NumPy's
RuntimeWarning) and signs (``%`` takes the divisor's sign) are NumPy's by construction.

Gradient conventions (as JAX):

- floor, ceil, rint, trunc, round and ``//`` are step functions: gradient 0 everywhere,
  at the jumps too.
- ``remainder(x, y) = x - y * floor_divide(x, y)``: d/dx = 1, d/dy = -floor_divide(x, y).
- ``fmod(x, y) = x - y * trunc(x / y)``: d/dx = 1, d/dy = -trunc(x / y).
- fmax/fmin: the side that is picked gets the cotangent; a NaN side is never picked while the
  other is a number; at a tie each side gets half (as ``np.maximum``).  Both NaN: x gets it.
- heaviside(x1, x2): 0 for x1; for x2, 1 where x1 == 0 (where the value is x2), else 0.
- fabs: as abs (``sign(x)``, 0 at 0).
"""
from __future__ import annotations

import builtins
import fractions
import math

import numpy as np
import sympy as sp

from ..errors import InPlaceError
from ..primitive import primitive
from . import _samples as S
from . import array_api as XP
from . import elementwise as ew
from ._numpy_table import Call, implements
from ._rules import _static_int, elementwise_rule, result_dtype, size_flops
from .predicates import isnan


# --- SymPy: step functions with derivative 0 ---------------------------------------------
def _exact(v) -> fractions.Fraction:
    r = sp.Rational(v)          # exact, also for a binary Float
    return fractions.Fraction(int(r.p), int(r.q))


def _step_function(name, value):
    """A SymPy function that is ``value`` at finite numbers and has derivative 0 (a step
    function's derivative where it exists; graphc's convention at the jumps)."""
    def eval_(cls, *args):
        if all(a.is_Number and a.is_finite for a in args):
            return sp.Rational(value(*(_exact(a) for a in args)))
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero
    return type(name, (sp.Function,), {"eval": classmethod(eval_), "fdiff": fdiff})


def _round_value(x, decimals):
    """NumPy's algorithm in exact arithmetic: rint(x * 10**d) / 10**d (rint: half to even)."""
    scale = fractions.Fraction(10) ** int(decimals)
    return fractions.Fraction(builtins.round(x * scale)) / scale


Floor = _step_function("floor", math.floor)
Ceil = _step_function("ceil", math.ceil)
Trunc = _step_function("trunc", int)
Rint = _step_function("rint", builtins.round)           # round(Fraction) is half to even
Round = _step_function("round", _round_value)


def _no_gradient(ct, *args, out, **params):
    """Zero for every input: a step function is flat wherever it is differentiable."""
    return (None,) * len(args)


def _no_tangent(t, *args, out, **params):
    """A step function's tangent is zero wherever it is differentiable."""
    return None


def _calls(samples):
    """The table-driven tests' calls of a ufunc from a record's samples (same inputs)."""
    return lambda d: [Call(s.args, {}, s.desc, s.grad) for s in samples(d)]


# --- floor, ceil, rint, trunc, round -------------------------------------------------------
def _step_samples(fn, **params):
    ref = (lambda x: fn(x, **params)) if params else fn

    def samples(d):
        special = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.0, 0.0, np.inf, -np.inf, np.nan])
        out = [S.Sample((3 * d.rnd(3, 4),), params, ref, "f64(3,4)"),
               S.Sample((3 * d.rnd(5, dtype=S.F32),), params, ref, "f32(5)"),
               S.Sample((np.asarray(2.7),), params, ref, "f64()"),
               S.Sample((special,), params, ref, "halves-zeros-inf-nan", grad=False),
               S.Sample((d.ints(3, 4) * 7 - 14,), params, ref, "int")]
        if params.get("decimals", 0) == 0:
            out.append(S.Sample((d.bools(4),), params, ref, "bool"))
        return out
    return samples


def _step(fn, sym, label, doc, array_api=None):
    name = fn.__name__
    return primitive(name=name, shape=elementwise_rule(fn), numpy=f"np.{name}({{0}})",
                     array_api=array_api,
                     vjp=_no_gradient, jvp=_no_tangent, sympy=sym, label=label, elementwise=True,
                     flops=size_flops, inplace_ufunc=f"np.{name}", fresh_result=True,
                     samples=_step_samples(fn), doc=doc)


floor = _step(np.floor, Floor, "⌊x⌋", "Largest integer <= x (integers keep their dtype); gradient 0.",
              array_api=XP.step("floor"))
ceil = _step(np.ceil, Ceil, "⌈x⌉", "Smallest integer >= x (integers keep their dtype); gradient 0.",
             array_api=XP.step("ceil"))
rint = _step(np.rint, Rint, "rint", "Nearest integer, halves to even (a float); gradient 0.",
             array_api=XP.rint)
trunc = _step(np.trunc, Trunc, "trunc", "x rounded towards 0 (integers keep their dtype); gradient 0.",
              array_api=XP.step("trunc"))
for _f, _p in ((np.floor, floor), (np.ceil, ceil), (np.rint, rint), (np.trunc, trunc)):
    implements(_f, samples=_calls(_step_samples(_f)))(_p)


def _emit_round(e, *, decimals):
    return f"np.round({e.args[0]}, {int(decimals)})" if decimals else f"np.round({e.args[0]})"


def _round_samples(d):
    return [*_step_samples(np.round, decimals=2)(d),
            *_step_samples(np.round, decimals=-1)(d),
            *_step_samples(np.round, decimals=0)(d)[::5]]     # f64(3,4) and bool


round_ = primitive(
    name="round", array_api=XP.round_, shape=lambda x, *, decimals: elementwise_rule(
        lambda v: np.round(v, decimals))(x),
    numpy=_emit_round, vjp=_no_gradient, jvp=_no_tangent, sympy=lambda x, *, decimals: Round(x, decimals),
    label="round", label_detail=lambda p: f"{p['decimals']}" if p["decimals"] else None,
    elementwise=True, flops=size_flops, fresh_result=True, samples=_round_samples,
    doc="np.round(x, decimals): rint(x * 10**decimals) / 10**decimals, halves to even "
        "(NumPy's algorithm, integers too); gradient 0.")


def _round_calls(d):
    x = 3 * d.rnd(3, 4)
    return [Call((x,), {}, "default"), Call((x, 2), {}, "decimals-positional"),
            Call((x,), {"decimals": -1}, "decimals=-1"),
            Call((np.array([0.125, 0.375, -2.5, 2.5, 1.005]), 2), {}, "halves", False),
            Call((x.astype(np.float32),), {"decimals": 1}, "f32"),
            Call((np.array([15, 25, -35, 44]), -1), {}, "int-negative-decimals"),
            Call((np.array([15, 25]),), {}, "int-unchanged"),
            Call((np.asarray(2.567),), {"decimals": 1}, "0-d")]


@implements(np.round, np.around, samples=_round_calls)
def around(a, decimals=0, out=None):
    """Evenly round to ``decimals`` (NumPy's algorithm: halves to even); gradient 0."""
    if out is not None:
        raise InPlaceError("round(..., out=...) writes into an array in place; traced arrays "
                           "are immutable", hint="assign the result instead: y = np.round(x)")
    decimals = _static_int(decimals, "decimals", "a static int",
                           hint="pass a Python int such as decimals=2")
    if not hasattr(a, "aval"):
        a = np.asarray(a)
    if a.dtype.kind in "iu" and decimals >= 0:
        from .shape import identity
        return identity(a)                                  # NumPy: a copy, as is
    return round_(a, decimals=decimals)


@implements(methods=("round",), samples=_round_calls)
def round_method(self, /, decimals=0, out=None):
    """``x.round(decimals)``: :func:`around`."""
    return around(self, decimals, out)


def python_round(self, ndigits=None):
    """``round(x)``: an error, as for a NumPy array (a NumPy scalar would give a Python int,
    a value that is not known while tracing)."""
    from ..errors import UnsupportedError
    raise UnsupportedError(f"round() of a traced value ({self.aval.short()}) is not supported",
                           hint="use np.round(x) or np.round(x, decimals)")


# --- //, %, fmod, divmod -------------------------------------------------------------------
def _division_samples(fn):
    def samples(d):
        x, y = 3 * d.rnd(3, 4), d.away(3, 4)
        signs = (np.array([5.0, -5.0, 5.0, -5.0, 7.5, -0.5]), np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0]))
        special = (np.array([0.0, -0.0, np.inf, 1.0, np.nan, 1.0, 3.0, -3.0]),
                   np.array([2.0, 2.0, 2.0, np.inf, 2.0, 0.0, -np.inf, np.inf]))
        return [S.Sample((x[:2, :2].copy(), y[:2, :2].copy()), {}, fn, "f64(2,2)", proof=True),
                S.Sample((x, d.away(4)), {}, fn, "bcast-(3,4)-(4,)"),
                S.Sample(signs, {}, fn, "signs"),
                S.Sample((x.astype(S.F32), y.astype(S.F32)), {}, fn, "f32"),
                S.Sample((x[0].astype(S.F32), 0.75), {}, fn, "f32-pyfloat(NEP50)"),
                S.Sample((2.5, y[0]), {}, fn, "pyfloat-array"),
                S.Sample(special, {}, fn, "zeros-inf-nan", grad=False),
                S.Sample((d.ints(3, 4) * 3 - 6, np.array([3, -2, 1, -4])), {}, fn, "int"),
                S.Sample((d.ints(5) - 2, 3), {}, fn, "int-pyint"),
                S.Sample((d.ints(5) - 2, 1.5), {}, fn, "int-pyfloat"),
                S.Sample((d.bools(4), np.ones(4, bool)), {}, fn, "bool")]
    return samples


_DIV_HINT = ("a division by zero (x // 0 and x % 0 are inf or nan for floats): guard the "
             "divisor with np.where")


def _division(*, name, fn, numpy, sym, vjp, jvp, label, prec=100, doc, array_api=None):
    return primitive(name=name, shape=elementwise_rule(fn), numpy=numpy, prec=prec, vjp=vjp,
                     array_api=array_api,
                     jvp=jvp,
                     sympy=sym, label=label, elementwise=True, flops=size_flops,
                     inplace_ufunc=f"np.{fn.__name__}", fresh_result=True,
                     nonfinite_hint=_DIV_HINT, samples=_division_samples(fn), doc=doc)


def _quotient_jvp(t, quotient):
    """d(x - y * q) with q = quotient() piecewise constant: dx - dy * q."""
    tx, ty = t
    if ty is None:
        return tx
    d_y = -(ty * quotient())
    return d_y if tx is None else tx + d_y


floor_divide = _division(
    name="floor_divide", fn=np.floor_divide, numpy="{0} // {1}", prec=12, label="//",
    sym=lambda x, y: Floor(x / y), vjp=_no_gradient, jvp=_no_tangent,
    doc="x // y: floor of the quotient (integers: NumPy's integer result, 0 for x // 0); "
        "gradient 0.")
remainder = _division(
    name="remainder", fn=np.remainder, numpy="{0} % {1}", prec=12, label="%",
    sym=lambda x, y: x - y * Floor(x / y),
    vjp=lambda ct, x, y, *, out: (ct, -(ct * floor_divide(x, y))),
    jvp=lambda t, x, y, *, out: _quotient_jvp(t, lambda: floor_divide(x, y)),
    doc="x % y (np.mod): the sign of y, as Python; d/dx = 1, d/dy = -(x // y).")
fmod = _division(
    name="fmod", array_api=XP.fmod, fn=np.fmod, numpy="np.fmod({0}, {1})", label="fmod",
    sym=lambda x, y: x - y * Trunc(x / y),
    vjp=lambda ct, x, y, *, out: (ct, -(ct * trunc(x / y))),
    jvp=lambda t, x, y, *, out: _quotient_jvp(t, lambda: trunc(x / y)),
    doc="C's fmod: the sign of x; d/dx = 1, d/dy = -trunc(x / y).")
implements(np.floor_divide, samples=_calls(_division_samples(np.floor_divide)))(floor_divide)
implements(np.remainder, samples=_calls(_division_samples(np.remainder)))(remainder)  # np.mod
implements(np.fmod, samples=_calls(_division_samples(np.fmod)))(fmod)


def _divmod_calls(d):
    return [Call(s.args, {}, s.desc, False) for s in _division_samples(np.divmod)(d)]


@implements(np.divmod, samples=_divmod_calls)
def divmod_(x1, x2):
    """``divmod(x, y)`` and ``np.divmod``: the tuple ``(x // y, x % y)``."""
    return floor_divide(x1, x2), remainder(x1, x2)


# --- fmax, fmin ----------------------------------------------------------------------------
def _fmax_vjp(ct, x, y, *, out):
    nx, ny = isnan(x), isnan(y)
    wx = ew.where(ny, 1.0, ew.where(nx, 0.0, 0.5 + 0.5 * ew.sign(x - y)))
    wy = ew.where(ny, 0.0, ew.where(nx, 1.0, 0.5 + 0.5 * ew.sign(y - x)))
    return ew.masked_mul(ct, wx), ew.masked_mul(ct, wy)


def _fmin_vjp(ct, x, y, *, out):
    nx, ny = isnan(x), isnan(y)
    wx = ew.where(ny, 1.0, ew.where(nx, 0.0, 0.5 + 0.5 * ew.sign(y - x)))
    wy = ew.where(ny, 0.0, ew.where(nx, 1.0, 0.5 + 0.5 * ew.sign(x - y)))
    return ew.masked_mul(ct, wx), ew.masked_mul(ct, wy)


def _fmax_jvp(t, x, y, *, out):
    return _pick_jvp(t, x, y, 1.0)


def _fmin_jvp(t, x, y, *, out):
    return _pick_jvp(t, x, y, -1.0)


def _pick_jvp(t, x, y, s):
    """The tangent of the side fmax (s = 1) / fmin (s = -1) picks; halves at a tie."""
    tx, ty = t
    nx, ny = isnan(x), isnan(y)
    terms = []
    if tx is not None:
        wx = ew.where(ny, 1.0, ew.where(nx, 0.0, 0.5 + 0.5 * ew.sign(s * (x - y))))
        terms.append(ew.masked_mul(tx, wx))
    if ty is not None:
        wy = ew.where(ny, 0.0, ew.where(nx, 1.0, 0.5 + 0.5 * ew.sign(s * (y - x))))
        terms.append(ew.masked_mul(ty, wy))
    return ew.tangent_sum(*terms)


def _sym_pick(x, y, first):
    return sp.Piecewise((x, first), ((x + y) / 2, sp.Eq(x, y)), (y, True))


def _fmaxmin_samples(fn):
    def samples(d):
        y = d.rnd(4)
        nan = (np.array([1.0, np.nan, np.nan, -2.0, 0.5]), np.array([np.nan, 3.0, np.nan, -2.0, 0.7]))
        return [S.Sample((d.away(3, 4) + y, y), {}, fn, "bcast-(3,4)-(4,)"),
                S.Sample((np.array([[-1.0], [0.25], [1.5]]), np.array([[-0.5, 0.7, 1.1, 2.0]])),
                         {}, fn, "bcast-(3,1)-(1,4)"),
                S.Sample((d.away(3, 4), 0.0), {}, fn, "pyfloat-zero"),
                S.Sample((d.away(5, dtype=S.F32) + 1, np.ones(5, S.F32)), {}, fn, "f32"),
                S.Sample(nan, {}, fn, "nan-ties", grad=False),
                S.Sample((d.ints(3, 4), np.array([1, 2, 3, 4])), {}, fn, "int")]
    return samples


fmax = primitive(
    name="fmax", array_api=XP.fmax, shape=elementwise_rule(np.fmax), numpy="np.fmax({0}, {1})", vjp=_fmax_vjp, jvp=_fmax_jvp,
    sympy=lambda x, y: _sym_pick(x, y, sp.StrictGreaterThan(x, y)), label="fmax",
    elementwise=True, flops=size_flops, inplace_ufunc="np.fmax", fresh_result=True,
    samples=_fmaxmin_samples(np.fmax),
    doc="Maximum ignoring a NaN side; gradient to the picked side, halves at a tie.")
fmin = primitive(
    name="fmin", array_api=XP.fmin, shape=elementwise_rule(np.fmin), numpy="np.fmin({0}, {1})", vjp=_fmin_vjp, jvp=_fmin_jvp,
    sympy=lambda x, y: _sym_pick(x, y, sp.StrictLessThan(x, y)), label="fmin",
    elementwise=True, flops=size_flops, inplace_ufunc="np.fmin", fresh_result=True,
    samples=_fmaxmin_samples(np.fmin),
    doc="Minimum ignoring a NaN side; gradient to the picked side, halves at a tie.")
implements(np.fmax, samples=_calls(_fmaxmin_samples(np.fmax)))(fmax)
implements(np.fmin, samples=_calls(_fmaxmin_samples(np.fmin)))(fmin)


# --- heaviside -----------------------------------------------------------------------------
def _heaviside_samples(d):
    h = np.heaviside
    return [S.Sample((d.away(3, 4), d.rnd(4)), {}, h, "bcast"),
            S.Sample((np.array([-1, 0, 2, 0]), d.rnd(4)), {}, h, "int-x1-zeros"),
            S.Sample((np.array([-1.5, 0.0, -0.0, 2.0, np.nan]), 0.5), {}, h, "zeros-nan",
                     grad=False),
            S.Sample((d.away(5, dtype=S.F32), np.float32(0.5)), {}, h, "f32"),
            S.Sample((np.array([-2, 0, 3]), 1), {}, h, "ints")]


heaviside = primitive(
    name="heaviside", array_api=XP.heaviside, shape=elementwise_rule(np.heaviside), numpy="np.heaviside({0}, {1})",
    vjp=lambda ct, x1, x2, *, out: (None, ew.masked_mul(ct, x1 == 0)),
    jvp=lambda t, x1, x2, *, out: None if t[1] is None else ew.masked_mul(t[1], x1 == 0),
    sympy=lambda x1, x2: sp.Piecewise((0, sp.StrictLessThan(x1, 0)), (x2, sp.Eq(x1, 0)),
                                      (1, True)),
    label="H", elementwise=True, flops=size_flops, inplace_ufunc="np.heaviside",
    fresh_result=True, samples=_heaviside_samples,
    doc="0 where x1 < 0, x2 where x1 == 0, 1 where x1 > 0; gradient 0 for x1, "
        "1 for x2 where x1 == 0.")
implements(np.heaviside, samples=_calls(_heaviside_samples))(heaviside)


# --- fabs ----------------------------------------------------------------------------------
def _fabs_calls(d):
    return [Call((d.away(3, 4),), {}, "f64"), Call((d.away(5, dtype=S.F32),), {}, "f32"),
            Call((d.ints(4) - 2,), {}, "int->f64"),
            Call((np.array([-2, 3], np.int8),), {}, "int8->f16"),
            Call((np.array([-0.0, np.inf, -np.inf, np.nan]),), {}, "special", False),
            Call((np.asarray(-1.5),), {}, "0-d")]


@implements(np.fabs, samples=_fabs_calls)
def fabs(x):
    """Absolute value as a float (integers become NumPy's float type); gradient as abs."""
    dtype = result_dtype(np.fabs, [x.aval])
    if x.dtype != dtype:
        x = ew.astype(x, dtype=dtype)
    return ew.abs(x)
