"""Hyperbolic ufuncs: sinh, cosh and their inverses arcsinh, arccosh, arctanh.

Primitives emitting NumPy's own ufunc (records built by
:func:`graphc.ops.transcendental.ufunc_primitive`: NumPy's values and dtypes, an
int8 array gives float16, float32 stays float32).  The VJPs avoid the overflow of
the textbook forms: d arcsinh = 1 / hypot(1, x) (not 1 / sqrt(1 + x²), which is
0 for |x| > 1e154), d arccosh = 1 / (sqrt(x - 1) sqrt(x + 1)).
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from . import elementwise as E
from .transcendental import (hypot, inside1, register_ufunc, rnd, unary_calls, unary_samples,
                             ufunc_primitive)

_OVERFLOW = ("{} overflows above about 710 in float64 (89 in float32): clip its input, or "
             "work with its log (np.logaddexp(x, -x) - log 2 is log cosh x)")


def _small(d, *shape, dtype=np.float64):
    return (d.rnd(*shape) * 2).astype(dtype)


def _above1(d, *shape, dtype=np.float64):
    return d.pos(*shape, dtype=dtype, lo=1.1, hi=5.0)


sinh = ufunc_primitive(
    np.sinh, name="sinh", scalar="math.sinh({0})", scalar_quiet="abs({0}) < 709.0", vjp=lambda ct, x, *, out: (ct * cosh(x),), jvp=lambda t, x, *, out: t[0] * cosh(x), sympy=sp.sinh,
    samples=unary_samples(np.sinh, _small, (-2, 0, 3)), nonfinite_hint=_OVERFLOW.format("sinh"),
    doc="Hyperbolic sine; d/dx = cosh(x).")
cosh = ufunc_primitive(
    np.cosh, name="cosh", scalar="math.cosh({0})", scalar_quiet="abs({0}) < 709.0", vjp=lambda ct, x, *, out: (ct * sinh(x),), jvp=lambda t, x, *, out: t[0] * sinh(x), sympy=sp.cosh,
    samples=unary_samples(np.cosh, _small, (-2, 0, 3)), nonfinite_hint=_OVERFLOW.format("cosh"),
    doc="Hyperbolic cosine; d/dx = sinh(x).")
arcsinh = ufunc_primitive(
    np.arcsinh, name="arcsinh", scalar="math.asinh({0})", scalar_quiet="abs({0}) < 1e308", array_api="xp.asinh({0})", vjp=lambda ct, x, *, out: (ct / hypot(1.0, x),), jvp=lambda t, x, *, out: t[0] / hypot(1.0, x), sympy=sp.asinh,
    samples=unary_samples(np.arcsinh, rnd, (-2, 0, 3)),
    doc="Inverse hyperbolic sine; d/dx = 1 / hypot(1, x) (no overflow for large |x|).")
arccosh = ufunc_primitive(
    np.arccosh, name="arccosh", scalar="math.acosh({0})", scalar_quiet="1.0 <= {0} < 1e308", array_api="xp.acosh({0})", vjp=lambda ct, x, *, out: (ct / (E.sqrt(x - 1) * E.sqrt(x + 1)),),
    jvp=lambda t, x, *, out: t[0] / (E.sqrt(x - 1) * E.sqrt(x + 1)),
    sympy=sp.acosh, samples=unary_samples(np.arccosh, _above1, (1, 2, 10)),
    nonfinite_hint="arccosh is nan below 1 and its gradient is infinite at 1: clip the "
                   "input (np.maximum(x, 1 + eps))",
    doc="Inverse hyperbolic cosine; d/dx = 1/(sqrt(x - 1) sqrt(x + 1)), +inf at x = 1 (as "
        "JAX), nan below 1.")
arctanh = ufunc_primitive(
    np.arctanh, name="arctanh", scalar="math.atanh({0})", scalar_quiet="abs({0}) < 1.0", array_api="xp.atanh({0})", vjp=lambda ct, x, *, out: (ct / ((1 - x) * (1 + x)),), jvp=lambda t, x, *, out: t[0] / ((1 - x) * (1 + x)), sympy=sp.atanh,
    samples=unary_samples(np.arctanh, inside1, (0, 0, 0)),
    nonfinite_hint="arctanh is infinite at ±1 and nan outside: clip the input "
                   "(np.clip(x, -1 + eps, 1 - eps))",
    doc="Inverse hyperbolic tangent; d/dx = 1/(1 - x²), +inf at x = ±1 (as JAX).")
register_ufunc(sinh, np.sinh, unary_calls(_small, (-2, 0, 3)))
register_ufunc(cosh, np.cosh, unary_calls(_small, (-2, 0, 3)))
register_ufunc(arcsinh, np.arcsinh, unary_calls(rnd, (-2, 0, 3)))
register_ufunc(arccosh, np.arccosh, unary_calls(_above1, (1, 2, 10)))
register_ufunc(arctanh, np.arctanh, unary_calls(inside1, (0, 0, 0)))
