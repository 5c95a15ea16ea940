"""logaddexp and logaddexp2: NumPy's stable ufuncs, and the weight primitive of their
gradient.

The gradient of ``out = logaddexp(x, y)`` is the pair of softmax weights
``exp(x - out)``, ``exp(y - out)``: two NumPy calls a side, reusing the forward
value (``y - out <= 0`` always, so nothing overflows, and the tails keep their tiny
weights).  Only where an input and ``out`` are the same infinity is ``y - out``
nan; ``logaddexp_weight`` writes the limits there (1, or 1/2 each at two equal
infinities) after one cheap nan test, so finite inputs pay nothing for it.
This is JAX's rule; like JAX's, the weights carry the rounding of ``out``: a
relative error of about eps * |out| (1e-13 at |out| = 1000 in float64), small
against the float32 logits of ML code, but large at |x| ~ 1e15.  The cheaper
rule is the point: W3 (a sigmoid net written with np.logaddexp) must stay within
1.1x of hand-written NumPy, and the sigmoid(x - y) form costs 7 NumPy calls.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..errors import UnsupportedError
from ..primitive import Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import broadcast_shapes, size_flops
from .transcendental import binary_calls, binary_samples, register_ufunc, rnd, ufunc_primitive

LN2 = math.log(2.0)


# --- the weight: exp(y - out), exact limits at infinities -----------------------------------
def _weight_rule(x, y, lae, *, base2):
    if lae.dtype.kind != "f":
        raise UnsupportedError(f"logaddexp_weight needs a floating out, got {lae.short()}")
    # lae = logaddexp(x, y) already has the floating type x and y promote to
    return Aval(broadcast_shapes(x, y, lae), lae.dtype, x.weak and y.weak and lae.weak)


def _emit_weight(e, *, base2):
    x, y, lae = e.atoms
    w = f"np.{'exp2' if base2 else 'exp'}({y} - {lae})"
    fix = f"({y} == {lae}) & np.isinf({y})"
    if not e.aval.size:
        return w
    if not e.aval.shape:      # a scalar: a select costs no more than the test
        dtype = f"np.{e.aval.dtype.name}"
        return f"np.where({fix}, np.where({x} == {y}, 0.5, 1.0), {w}).astype({dtype})[()]"
    return [f"{e.out} = {w}",
            f"if np.isnan({e.out}.max()):  # an input and logaddexp the same infinity: 1 or 1/2",
            f"    np.copyto({e.out}, np.where({x} == {y}, 0.5, 1.0), where={fix})"]


def _weight_vjp(ct, x, y, lae, *, out, base2):
    # w = exp(y - lae): dw/dy = w, dw/dlae = -w; x only picks the limit at infinities.
    d = ct * out if not base2 else ct * (out * LN2)
    return None, d, -d


def _weight_jvp(t, x, y, lae, *, out, base2):
    _, ty, tl = t
    d = ty if tl is None else (-tl if ty is None else ty - tl)
    return d * out if not base2 else d * (out * LN2)


def _sym_weight(x, y, lae, *, base2):
    return (2 if base2 else sp.E) ** (y - lae)


def _weight_ref(base2):
    def ref(x, y, out):
        with np.errstate(invalid="ignore"):
            w = (np.exp2 if base2 else np.exp)(y - out)
            fix = (y == out) & np.isinf(y)
            return np.where(fix, np.where(x == y, 0.5, 1.0), w).astype(w.dtype)
    return ref


def _weight_samples(d):
    out = []
    for base2, lae in ((False, np.logaddexp), (True, np.logaddexp2)):
        ref, kw = _weight_ref(base2), {"base2": base2}
        x, y, x32 = d.rnd(3, 4), d.rnd(4), d.rnd(3, dtype=S.F32)
        inf_x = np.array([np.inf, -np.inf, np.inf, 2.0, -np.inf, np.nan])
        inf_y = np.array([np.inf, -np.inf, 1.0, np.inf, 1.0, np.inf])
        out += [S.Sample((x, y, lae(x, y)), kw, ref, f"bcast-base2={base2}"),
                S.Sample((x32, x32[::-1], lae(x32, x32[::-1])), kw, ref, f"f32-base2={base2}"),
                S.Sample((inf_x, inf_y, lae(inf_x, inf_y)), kw, ref, f"inf-base2={base2}",
                         grad=False),
                S.Sample((np.float64(-np.inf),) * 3, kw, ref, f"0-d-base2={base2}",
                         grad=False)]
    return out


logaddexp_weight = primitive(
    name="logaddexp_weight", array_api=XP.logaddexp_weight, shape=_weight_rule, numpy=_emit_weight, never_inline_args=True,
    fresh_result=True, vjp=_weight_vjp, jvp=_weight_jvp,
    sympy=_sym_weight, label="softmax weight", elementwise=True, flops=size_flops,
    samples=_weight_samples,
    doc="exp(y - out) (exp2 with base2) for out = logaddexp(x, y): y's weight in the "
        "gradient of logaddexp; 1 where y and out are the same infinity, 1/2 where x is too.")


# --- logaddexp, logaddexp2 ---------------------------------------------------------------------
def _logaddexp_vjp(ct, x, y, *, out):
    return (ct * logaddexp_weight(y, x, out, base2=False),
            ct * logaddexp_weight(x, y, out, base2=False))


def _logaddexp2_vjp(ct, x, y, *, out):
    return (ct * logaddexp_weight(y, x, out, base2=True),
            ct * logaddexp_weight(x, y, out, base2=True))


def _lae_jvp(base2):
    def jvp(t, x, y, *, out):
        from .elementwise import tangent_sum
        tx, ty = t
        return tangent_sum(
            None if tx is None else tx * logaddexp_weight(y, x, out, base2=base2),
            None if ty is None else ty * logaddexp_weight(x, y, out, base2=base2))
    return jvp


_INF_EDGE = ((np.array([1000.0, -1000.0, -np.inf, np.inf, -np.inf, 3.0]),
              np.array([1000.0, -1000.0, -np.inf, np.inf, 2.0, 3.0])), {})

logaddexp = ufunc_primitive(
    np.logaddexp, name="logaddexp", vjp=_logaddexp_vjp, jvp=_lae_jvp(False), sympy=lambda x, y: sp.log(sp.exp(x) + sp.exp(y)),
    label="logaddexp", samples=binary_samples(np.logaddexp, rnd, rnd, _INF_EDGE),
    doc="log(exp(x) + exp(y)) without overflow (NumPy's); gradient: the softmax weights "
        "exp(x - out), exp(y - out) (logaddexp_weight, JAX's rule: relative error about "
        "eps * |out|); (1/2, 1/2) at two equal infinities (JAX gives nan at (-inf, -inf)).")
logaddexp2 = ufunc_primitive(
    np.logaddexp2, name="logaddexp2", array_api="_logaddexp2(xp, {0}, {1})", vjp=_logaddexp2_vjp, jvp=_lae_jvp(True),
    sympy=lambda x, y: sp.log(2 ** x + 2 ** y) / sp.log(2), label="logaddexp2",
    samples=binary_samples(np.logaddexp2, rnd, rnd, _INF_EDGE),
    doc="log2(2**x + 2**y) without overflow (NumPy's); gradient: 2**(x - out), 2**(y - out) "
        "(logaddexp_weight); (1/2, 1/2) at two equal infinities.")
register_ufunc(logaddexp, np.logaddexp, binary_calls(rnd, rnd))
register_ufunc(logaddexp2, np.logaddexp2, binary_calls(rnd, rnd))
