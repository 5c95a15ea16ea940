"""Elementwise primitives: arithmetic, transcendental functions, comparisons, where.

Each VJP returns the cotangent at the *output's* broadcast shape; the reverse
sweep (autodiff.unbroadcast) sums it back to each input's shape, once.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..primitive import Aval, primitive
from ._rules import elementwise_rule, size_flops, zero_flops


def _binary(name, tmpl, fn, prec, vjp, sym, label, flops=size_flops, **kw):
    return primitive(name=name, shape=elementwise_rule(fn), numpy=tmpl, prec=prec, vjp=vjp,
                     sympy=sym, label=label, elementwise=True, flops=flops, **kw)


def _unary(name, fn, vjp, sym, label=None, tmpl=None, flops=size_flops, **kw):
    return primitive(name=name, shape=elementwise_rule(fn), numpy=tmpl or f"np.{fn.__name__}({{0}})",
                     vjp=vjp, sympy=sym, label=label or name, elementwise=True, flops=flops, **kw)


# --- arithmetic ----------------------------------------------------------------
# Signed units: x + (-0.0) and x - 0.0 are x for every x, but x + 0.0 turns -0.0 into
# +0.0 (tracing._is_unit compares the sign of a zero for floating results).
add = _binary("add", "{0} + {1}", np.add, 11, lambda ct, x, y, *, out: (ct, ct),
              lambda x, y: x + y, "+", units=(-0.0, -0.0))
sub = _binary("sub", "{0} - {1}", np.subtract, 11, lambda ct, x, y, *, out: (ct, -ct),
              lambda x, y: x - y, "−", units=(None, 0.0))
mul = _binary("mul", "{0} * {1}", np.multiply, 12, lambda ct, x, y, *, out: (ct * y, ct * x),
              lambda x, y: x * y, "×", units=(1, 1))
div = _binary("div", "{0} / {1}", np.true_divide, 12,
              lambda ct, x, y, *, out: (ct / y, -(ct * out / y)),
              lambda x, y: x / y, "÷", units=(None, 1))
neg = _unary("neg", np.negative, lambda ct, x, *, out: (-ct,), lambda x: -x, "−",
             tmpl="-{0}", prec=13)


def _pow_vjp(ct, x, y, *, out):
    g = x._trace.graph
    const_y = g[y.node].op == "const"
    # d/dx x**y = y * x**(y - 1), taken as 0 where y == 0 (x**0 is flat), as JAX and
    # PyTorch do: 0 * x**-1 would give 0 * inf = nan at x = 0.  The exponent y - 1 is
    # replaced by 0 there, so the zero factor meets x**0 = 1 and never an infinity.
    if const_y:
        yv = np.asarray(g[y.node].value)
        # np.all: a constant exponent may be an array (x ** np.array([2., 3.])).
        if np.all(yv == 0):
            return None, None
        if np.all(yv == 2):
            return ct * (2 * x), None
        if np.any(yv == 0):
            y_minus_1 = np.where(yv == 0, 0, yv - 1).astype(yv.dtype)
            return ct * (y * x ** y_minus_1), None
        return ct * (y * x ** (y - 1)), None
    # y - 1 + (y == 0): the exponent is 0 where y is 0.  Arithmetic with the bool rather
    # than np.where, which would turn a Python-float exponent into a float64 array.
    dx = ct * (y * x ** (y - 1 + (y == 0)))
    # d/dy x**y = log(x) * x**y, taken as 0 where x == 0 (0**y is flat there), as JAX does:
    # log(0) * 0 would otherwise give nan.
    x_node = g[x.node]
    if x_node.op == "const" and np.all(np.asarray(x_node.value) != 0):
        safe_x = x
    else:
        safe_x = where(x == 0, 1.0, x)
    return dx, ct * (log(safe_x) * out)


pow = _binary("pow", "{0} ** {1}", np.power, 14, _pow_vjp, lambda x, y: x ** y, "^",
              slots=(15, 13))

# --- transcendental --------------------------------------------------------------
exp = _unary("exp", np.exp, lambda ct, x, *, out: (ct * out,), sp.exp)
log = _unary("log", np.log, lambda ct, x, *, out: (ct / x,), sp.log)
sin = _unary("sin", np.sin, lambda ct, x, *, out: (ct * cos(x),), sp.sin)
cos = _unary("cos", np.cos, lambda ct, x, *, out: (-(ct * sin(x)),), sp.cos)
tan = _unary("tan", np.tan, lambda ct, x, *, out: (ct * (1 + out * out),), sp.tan)
tanh = _unary("tanh", np.tanh, lambda ct, x, *, out: (ct * (1 - out * out),), sp.tanh)
sqrt = _unary("sqrt", np.sqrt, lambda ct, x, *, out: (ct / (2 * out),), sp.sqrt, "√")
log1p = _unary("log1p", np.log1p, lambda ct, x, *, out: (ct / (1 + x),), lambda x: sp.log(1 + x))
# d expm1 = exp(x), not out + 1: for x < -37 (float64; -17 in float32) out + 1 rounds
# to 0, losing the whole (tiny but nonzero) derivative.
expm1 = _unary("expm1", np.expm1, lambda ct, x, *, out: (ct * exp(x),), lambda x: sp.exp(x) - 1)
abs = _unary("abs", np.abs, lambda ct, x, *, out: (ct * sign(x),), sp.Abs, "|x|",
             tmpl="np.abs({0})")
# sign is flat: its derivative is zero everywhere it exists.
sign = _unary("sign", np.sign, lambda ct, x, *, out: (None,), sp.sign)


# --- maximum / minimum ----------------------------------------------------------------
# Convention (as JAX and PyTorch): the larger input gets the cotangent; at a tie
# each input gets half.  nn.relu is a primitive whose derivative at 0 is 0.
# The masks are written with sign() rather than two nested np.where: one sign pass
# and two cheap arithmetic passes cost about a third of the where chain in NumPy
# (17 vs 56 µs on a 128x256 float32 array).  At a tie of two equal infinities
# x - y is nan, and so is the gradient.
# The weights go through masked_mul, so the unselected side gets exactly 0 even where
# the cotangent is infinite (sqrt(maximum(x, 0)) at 0).
def _max_vjp(ct, x, y, *, out):
    # sign(a - b): +1 where a is larger, -1 where b is, 0 at a tie.  Each side gets
    # its own sign so that a constant side (relu's 0) folds away: x - 0 is x.
    return (masked_mul(ct, 0.5 + 0.5 * sign(x - y)),
            masked_mul(ct, 0.5 + 0.5 * sign(y - x)))


def _min_vjp(ct, x, y, *, out):
    return (masked_mul(ct, 0.5 + 0.5 * sign(y - x)),
            masked_mul(ct, 0.5 + 0.5 * sign(x - y)))


def _sym_max(x, y):
    return sp.Piecewise((x, sp.StrictGreaterThan(x, y)), ((x + y) / 2, sp.Eq(x, y)), (y, True))


def _sym_min(x, y):
    return sp.Piecewise((x, sp.StrictLessThan(x, y)), ((x + y) / 2, sp.Eq(x, y)), (y, True))


maximum = _binary("maximum", "np.maximum({0}, {1})", np.maximum, 100, _max_vjp, _sym_max, "max")
minimum = _binary("minimum", "np.minimum({0}, {1})", np.minimum, 100, _min_vjp, _sym_min, "min")

# --- comparisons and logic (no gradient) ------------------------------------------------
_no_vjp = None
gt = _binary("gt", "{0} > {1}", np.greater, 6, _no_vjp, sp.StrictGreaterThan, ">", slots=(7, 7), flops=zero_flops)
ge = _binary("ge", "{0} >= {1}", np.greater_equal, 6, _no_vjp, sp.GreaterThan, "≥", slots=(7, 7), flops=zero_flops)
lt = _binary("lt", "{0} < {1}", np.less, 6, _no_vjp, sp.StrictLessThan, "<", slots=(7, 7), flops=zero_flops)
le = _binary("le", "{0} <= {1}", np.less_equal, 6, _no_vjp, sp.LessThan, "≤", slots=(7, 7), flops=zero_flops)
eq = _binary("eq", "{0} == {1}", np.equal, 6, _no_vjp, sp.Eq, "=", slots=(7, 7), flops=zero_flops)
ne = _binary("ne", "{0} != {1}", np.not_equal, 6, _no_vjp, sp.Ne, "≠", slots=(7, 7), flops=zero_flops)
logical_and = _binary("logical_and", "np.logical_and({0}, {1})", np.logical_and, 100, _no_vjp,
                      sp.And, "and", flops=zero_flops)
logical_or = _binary("logical_or", "np.logical_or({0}, {1})", np.logical_or, 100, _no_vjp,
                     sp.Or, "or", flops=zero_flops)
logical_not = _unary("logical_not", np.logical_not, _no_vjp, sp.Not, "not", flops=zero_flops)


# --- where ---------------------------------------------------------------------------
def _where_vjp(ct, c, x, y, *, out):
    # np.where takes the condition's truthiness: counts [0, 3, 1] select like
    # [False, True, True], so the gradient mask is the condition as a bool, never the
    # counts themselves.
    if c.dtype != np.bool_:
        c = astype(c, dtype=np.dtype(bool))
    return None, masked_mul(ct, c), masked_mul(ct, logical_not(c))


def _sym_where(c, x, y):
    # A numeric condition selects by truthiness (c != 0), as np.where does.
    if not isinstance(c, sp.logic.boolalg.Boolean) or isinstance(c, sp.Expr):
        c = sp.Ne(c, 0)
    return sp.Piecewise((x, c), (y, True))


where = primitive(
    name="where", shape=elementwise_rule(np.where), numpy="np.where({0}, {1}, {2})",
    vjp=_where_vjp, sympy=_sym_where,
    label="where", elementwise=True, flops=size_flops,
    doc="np.where(cond, x, y); cond gets no gradient.")


# --- masked_mul: a gradient mask that never turns inf * 0 into nan ------------------------
# The VJPs of where, maximum/minimum, relu, max reductions and dropout select part of a
# cotangent.  A multiply by the 0/1 mask is fast (NumPy's where branches per element on a
# random mask: 262k float32 values, 1.2 ms against 75 µs), but an infinite or nan
# cotangent in an unselected element gives inf * 0 = nan, where the true gradient is 0.
# masked_mul(x, w) is x * w with exactly 0 wherever w == 0 (w: a bool mask or a weight).
# The generated code multiplies, and only when the product holds a nan (its max is nan)
# writes those zeros with np.copyto: finite cotangents pay one max() more than the bare
# multiply, and the result is exact for all of them.
def _emit_masked_mul(e):
    x, w = e.atoms
    wa = e.avals[1]
    if wa.dtype.kind != "b":
        zero = f"{w} == 0"
    else:   # (~ of a Python bool is an int: ~True == -2)
        zero = f"np.logical_not({w})" if wa.weak else f"~{w}"
    if not e.aval.shape:    # a scalar: np.where is as cheap as anything
        return f"np.where({zero}, 0, {x} * {w})[()]"
    if not e.aval.size:
        return f"{x} * {w}"
    # .max() propagates nan, and is several times faster than .sum() (SIMD)
    return [f"{e.out} = {x} * {w}",
            f"if np.isnan({e.out}.max()):  # inf * 0: an unselected element's gradient is 0",
            f"    np.copyto({e.out}, 0, where={zero})"]


def _masked_mul_vjp(ct, x, w, *, out):
    # d/dw x * w = x (masked_mul is x * w as a function); a bool mask has no gradient.
    return masked_mul(ct, w), (ct * x if w.dtype.kind == "f" else None)


def _sym_masked_mul(x, w):
    if isinstance(w, sp.logic.boolalg.Boolean) and not isinstance(w, sp.Expr):
        return sp.Piecewise((x, w), (0, True))
    return sp.Piecewise((x * w, sp.Ne(w, 0)), (0, True))


masked_mul = primitive(
    name="masked_mul", shape=elementwise_rule(np.multiply), numpy=_emit_masked_mul,
    vjp=_masked_mul_vjp, sympy=_sym_masked_mul, label="× mask", elementwise=True,
    flops=size_flops,
    doc="x * w, exactly 0 where w == 0 even for an infinite or nan x (gradient masks).")


# --- astype -------------------------------------------------------------------------
def _astype_shape(x, *, dtype):
    from ..avals import check_dtype
    return Aval(x.shape, check_dtype(dtype), False)


def _sym_astype(x, dtype):
    """Booleans become 0/1 numbers (a Piecewise for a symbolic condition)."""
    # (a Symbol is a Boolean too, but also an Expr: only true logic values convert)
    logic = isinstance(x, sp.logic.boolalg.Boolean) and not isinstance(x, sp.Expr)
    if np.dtype(dtype).kind != "b" and logic:
        return sp.Piecewise((1, x), (0, True))
    if np.dtype(dtype).kind == "b" and not logic:    # a number's truthiness
        return sp.Ne(x, 0)
    return x


astype = primitive(
    name="astype", shape=_astype_shape, numpy="{0}.astype({dtype})",
    vjp=lambda ct, x, *, out, dtype: (astype(ct, dtype=x.dtype) if ct.dtype != x.dtype else ct,),
    sympy=lambda x, dtype: _sym_astype(x, dtype), label="astype", elementwise=True, flops=zero_flops, family="shape")
