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
add = _binary("add", "{0} + {1}", np.add, 11, lambda ct, x, y, *, out: (ct, ct),
              lambda x, y: x + y, "+", units=(0, 0))
sub = _binary("sub", "{0} - {1}", np.subtract, 11, lambda ct, x, y, *, out: (ct, -ct),
              lambda x, y: x - y, "−", units=(None, 0))
mul = _binary("mul", "{0} * {1}", np.multiply, 12, lambda ct, x, y, *, out: (ct * y, ct * x),
              lambda x, y: x * y, "×", units=(1, 1))
div = _binary("div", "{0} / {1}", np.true_divide, 12,
              lambda ct, x, y, *, out: (ct / y, -(ct * out / y)),
              lambda x, y: x / y, "÷", units=(None, 1))
neg = _unary("neg", np.negative, lambda ct, x, *, out: (-ct,), lambda x: -x, "−",
             tmpl="-{0}", prec=13)


def _pow_vjp(ct, x, y, *, out):
    g = x._trace.graph
    const_y = g.nx.nodes[y.node]["op"] == "const"
    # np.all: a constant exponent may be an array (x ** np.array([2., 3.])).
    if const_y and np.all(np.asarray(g.nx.nodes[y.node]["value"]) == 2):
        dx = ct * (2 * x)
    else:
        dx = ct * (y * x ** (y - 1))
    if const_y:
        return dx, None
    # d/dy x**y = log(x) * x**y, taken as 0 where x == 0 (0**y is flat there), as JAX does:
    # log(0) * 0 would otherwise give nan.
    x_node = g.nx.nodes[x.node]
    if x_node["op"] == "const" and np.all(np.asarray(x_node["value"]) != 0):
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
def _max_vjp(ct, x, y, *, out):
    # sign(a - b): +1 where a is larger, -1 where b is, 0 at a tie.  Each side gets
    # its own sign so that a constant side (relu's 0) folds away: x - 0 is x.
    return ct * (0.5 + 0.5 * sign(x - y)), ct * (0.5 + 0.5 * sign(y - x))


def _min_vjp(ct, x, y, *, out):
    return ct * (0.5 + 0.5 * sign(y - x)), ct * (0.5 + 0.5 * sign(x - y))


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
    # A multiply by the mask, not np.where(c, ct, 0): on a random mask NumPy's where
    # is branchy, about 9 ns an element against 0.2 (262k float32 values: 2.2 ms vs
    # 46 µs).  The two agree wherever the cotangent is finite.
    return None, ct * c, ct * logical_not(c)


where = primitive(
    name="where", shape=elementwise_rule(np.where), numpy="np.where({0}, {1}, {2})",
    vjp=_where_vjp, sympy=lambda c, x, y: sp.Piecewise((x, c), (y, True)),
    label="where", elementwise=True, flops=size_flops,
    doc="np.where(cond, x, y); cond gets no gradient.")


# --- astype -------------------------------------------------------------------------
def _astype_shape(x, *, dtype):
    from ..tracing import check_dtype
    return Aval(x.shape, check_dtype(dtype), False)


def _sym_astype(x, dtype):
    """Booleans become 0/1 numbers (a Piecewise for a symbolic condition)."""
    # (a Symbol is a Boolean too, but also an Expr: only true logic values convert)
    if np.dtype(dtype).kind != "b" and isinstance(x, sp.logic.boolalg.Boolean) \
            and not isinstance(x, sp.Expr):
        return sp.Piecewise((1, x), (0, True))
    return x


astype = primitive(
    name="astype", shape=_astype_shape, numpy="{0}.astype({dtype})",
    vjp=lambda ct, x, *, out, dtype: (astype(ct, dtype=x.dtype) if ct.dtype != x.dtype else ct,),
    sympy=lambda x, dtype: _sym_astype(x, dtype), label="astype", elementwise=True, flops=zero_flops, family="shape")
