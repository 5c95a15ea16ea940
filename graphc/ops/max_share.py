"""``max_share``: the share of a cotangent that ``np.maximum``/``np.minimum`` pass to one side.

``max_share(ct, x, y)`` is ``masked_mul(ct, 0.5 + 0.5 * sign(x - y))``, the gradient
rule of ``maximum(x, y)`` with respect to ``x`` (JAX's and PyTorch's convention): the
whole cotangent where ``x > y``, half of it at a tie, exactly 0 where ``x < y`` (also for
an infinite or nan cotangent: no ``inf * 0 = nan``), and nan where ``x - y`` is nan (a
nan operand, or two equal infinities).  ``minimum``'s is ``max_share(ct, y, x)``.

As one op it has a fast emission.  The weights written out cost 4-5 passes over the data
(``np.sign`` alone is 25 µs on 128x256 float32 values, a comparison 3 µs); here the
generated code looks for the rare cases first (a tie or a nan: the minimum of
``|x - y|``, 7 µs), and otherwise multiplies by the comparison, as hand-written NumPy
does (``dh *= a > 0``)::

    if not (np.abs(add).min() > 0):  # a tie at 0 (half the gradient) or a nan
        d_add = d_h1 * (0.5 + 0.5 * np.sign(add))
    else:
        d_add = d_h1 * (add > 0)
    if np.isnan(d_add.max()):  # inf * 0: an unselected element's gradient is 0
        np.copyto(d_add, 0, where=add < 0)

Both branches give the same values as the weights would (``x < y`` is exactly where the
weight is 0: ``x - y`` of two different floats is never 0, and is nan where either is).

A ReLU written ``np.maximum(a, 0)`` (or ``np.minimum(a, 0)``) passes its own result as a
fourth operand, ``max_share(ct, a, 0, out)`` with ``out = np.maximum(a, 0)`` (and
``max_share(ct, 0, a, out)`` with ``out = np.minimum(a, 0)``): ``out`` is ``a`` where the
share is whole and 0 where it is nothing, so ``out / a`` is the weight itself (exactly 1
or 0) and nan exactly where the rule needs more care (a tie at 0 is ``0 / 0``, a nan
stays nan, ``inf / inf`` is nan; an infinite or nan cotangent where the share is nothing
makes the product nan).  The generated code is then one division, one
multiply in place and one check, where hand NumPy needs a comparison and a multiply::

    with np.errstate(invalid="ignore"):  # 0/0 at a tie: nan, for the exact rule below
        d_add = h1 / add  # the weights: 1 where add > 0, else 0
    d_add *= d_h1
    if np.isnan(d_add.max()):  # a tie at 0 (half the gradient), a nan or inf * 0
        d_add = d_h1 * (0.5 + 0.5 * np.sign(add))
        np.copyto(d_add, 0, where=add < 0)

The one difference: where ``a < 0`` the weight is ``0 / a = -0.0``, so an exactly zero
entry may carry the other sign of zero than the comparison's product (``-0.0 == 0.0``;
every value is the same).  ``_ref`` ignores ``out``: it is a promise about the operands
that only the VJPs of ``maximum``/``minimum`` make (graphc/ops/elementwise.py).
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..primitive import primitive
from . import _samples as S
from ._rules import elementwise_rule, size_flops

__all__ = ["drop_outs", "max_share", "share", "zero_const"]


def _ref(ct, x, y, out=None):
    """The definition, in plain NumPy (also the shape rule's dtype); ``out`` is not needed."""
    w = 0.5 + 0.5 * np.sign(np.subtract(x, y))
    return np.where(np.asarray(w) != 0, np.multiply(ct, w), 0).astype(np.result_type(ct, w))


def _literal(text: str):
    """The number a constant operand's text spells, or None (a name, an expression)."""
    try:
        return float(text)
    except ValueError:
        return None


def _emit_max_share(e):
    ct, x, y = e.atoms[:3]
    zero_x, zero_y = _literal(x) == 0, _literal(y) == 0
    diff = x if zero_y else f"-{y}" if zero_x else f"{x} - {y}"
    weights = f"(0.5 + 0.5 * np.sign({diff}))"
    ca = e.avals[0]
    if (not e.aval.shape or not e.aval.size or ca.weak or ca.dtype != e.aval.dtype
            or zero_x and zero_y):
        # a scalar (or nothing), or a product whose dtype the weights decide: one select
        return f"np.where({x} < {y}, 0, {ct} * {weights})[()]"
    if len(e.atoms) == 4 and zero_x != zero_y and _same_as_result(e, e.avals[3],
                                                                  e.avals[2 if zero_x else 1]):
        return _by_division(e, ct, x, y, y if zero_x else x, e.atoms[3], weights)
    gap = f"np.abs({y if zero_x else diff})"
    what = "a tie at 0 (half the gradient) or a nan" if zero_x or zero_y else \
        "a tie (half the gradient) or a nan"
    # |x - y| has a 0 at a tie and a nan where x - y is nan; its min() propagates nan
    return [f"if not ({gap}.min() > 0):  # {what}",
            f"    {e.out} = {ct} * {weights}",
            "else:",
            f"    {e.out} = {ct} * ({x} > {y})",
            f"if np.isnan({e.out}.max()):  # inf * 0: an unselected element's gradient is 0",
            f"    np.copyto({e.out}, 0, where={x} < {y})"]


def _same_as_result(e, *avals):
    """Operands of the result's own shape and dtype (``w = out / v`` then ``w *= ct``)."""
    return all(not a.weak and a.dtype == e.aval.dtype and tuple(a.shape) == tuple(e.aval.shape)
               for a in avals)


def _by_division(e, ct, x, y, v, out, weights):
    """The ReLU form: ``out / v`` is the weight (1 or 0), nan where the rule needs care."""
    whole = f"{v} > 0" if v == x else f"{v} < 0"
    return ['with np.errstate(invalid="ignore"):  # 0/0 at a tie: nan, for the exact rule below',
            f"    {e.out} = {out} / {v}  # the weights: 1 where {whole}, else 0",
            f"{e.out} *= {ct}",
            f"if np.isnan({e.out}.max()):  # a tie at 0 (half the gradient), a nan or inf * 0",
            f"    {e.out} = {ct} * {weights}",
            f"    np.copyto({e.out}, 0, where={x} < {y})"]


def _emit_xp(e):
    ct, x, y = e.args[:3]
    diff = x if _literal(e.atoms[2]) == 0 else f"{x} - {y}"
    return f"_masked_mul(xp, {ct}, 0.5 + 0.5 * xp.sign({diff}))"


def _vjp(ct, c, x, y, *h, out):
    # linear in the cotangent; the weights are piecewise constant in x and y (and out)
    return (max_share(ct, x, y, *h), None, None, *[None] * len(h))


def _jvp(t, c, x, y, *h, out):
    tc = t[0]
    return None if tc is None else max_share(tc, x, y, *h)


def _sym(c, x, y, h=None):
    return sp.Piecewise((c, sp.StrictGreaterThan(x, y)), (c / 2, sp.Eq(x, y)), (0, True))


def _samples(d):
    r = _ref
    ties = np.array([1.0, 2.0, 3.0, -4.0]), np.array([1.0, 0.5, 3.0, 4.0])
    inf_ct = np.array([np.inf, -np.inf, np.nan, 2.0, np.inf])
    return [S.Sample((d.rnd(3, 4), d.away(3, 4), 0.0), {}, r, "relu"),
            S.Sample((d.rnd(3, 4), d.away(3, 4) + d.rnd(4), d.rnd(4)), {}, r, "bcast"),
            S.Sample((d.rnd(5, dtype=S.F32), d.away(5, dtype=S.F32), 0.0), {}, r, "f32"),
            S.Sample((d.rnd(4), *ties), {}, r, "ties", grad=False),
            S.Sample((d.rnd(4), np.array([0.0, -1.0, 2.0, 0.0]), 0.0), {}, r, "ties-at-0",
                     grad=False),
            S.Sample((inf_ct, np.array([-1.0, -2.0, -0.5, 1.0, 0.0]), 0.0), {}, r,
                     "inf-ct", grad=False),
            S.Sample((d.rnd(4), np.array([np.nan, 1.0, -np.inf, np.inf]),
                      np.array([0.0, np.nan, -np.inf, np.inf])), {}, r, "nan-and-infinities",
                     grad=False),
            S.Sample((np.float64(2.5), np.float64(0.0), 0.0), {}, r, "0-d", grad=False),
            # with the ReLU's own result (the promise the maximum/minimum VJPs make)
            *[S.Sample((ct, *xy, h), {}, r, desc, grad=False) for ct, xy, h, desc in _relu_outs(d)]]


def _relu_outs(d):
    """(ct, (x, y), out, desc): ``max_share(ct, a, 0, maximum(a, 0))`` and
    ``max_share(ct, 0, a, minimum(a, 0))``, with and without ties, nans, infinities."""
    a = d.away(3, 4)
    special = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, -1.0, 2.0])
    ct = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.inf, -np.inf])
    a32 = d.away(5, dtype=S.F32)
    return [(d.rnd(3, 4), (a, 0.0), np.maximum(a, 0.0), "relu-out"),
            (d.rnd(3, 4), (0.0, a), np.minimum(a, 0.0), "min-out"),
            (d.rnd(5, dtype=S.F32), (a32, 0.0), np.maximum(a32, 0.0), "relu-out-f32"),
            (ct, (special, 0.0), np.maximum(special, 0.0), "relu-out-special"),
            (ct, (0.0, special), np.minimum(special, 0.0), "min-out-special")]


def zero_const(t) -> bool:
    """Is tracer ``t`` a scalar constant 0 (a ReLU's literal; its text is ``0`` or ``0.0``)?"""
    node = t._trace.graph[t.node]
    return (node.op == "const" and np.ndim(node.value) == 0 and node.value == 0
            and not np.isnan(node.value))


def share(ct, x, y, out, side):
    """``max_share(ct, x, y)``, given ``out`` (``maximum(x, y)`` for ``side="max"``,
    ``minimum(x, y)`` for ``"min"``) when the other operand is a literal 0: the ReLU form.
    The share goes to ``x`` where ``x > y``; ``out`` then equals the variable operand
    where the share is whole and 0 where it is nothing (see the module docstring)."""
    if side == "max" and zero_const(y) and not zero_const(x):       # max(x, 0) to x
        return max_share(ct, x, y, out)
    if side == "min" and zero_const(x) and not zero_const(y):       # min(y, 0) to y
        return max_share(ct, x, y, out)
    return max_share(ct, x, y)


def drop_outs(g) -> bool:
    """Remove the ReLU's result operand from every ``max_share`` of graph ``g``: for the
    targets whose emission does not use it (the numba kernels, the array-API target),
    so that it neither becomes a kernel parameter nor keeps an array alive.  True if
    any was removed (the caller then drops what only it kept alive)."""
    dropped = False
    for nid in list(g):
        if g[nid].op == "max_share" and len(g[nid].args) == 4:
            g.set_args(nid, g[nid].args[:3])
            dropped = True
    return dropped


max_share = primitive(
    name="max_share", shape=elementwise_rule(_ref), numpy=_emit_max_share, array_api=_emit_xp,
    vjp=_vjp, jvp=_jvp, sympy=_sym, label="× [x>y]", elementwise=True, flops=size_flops,
    fresh_result=True, never_inline_args=True, samples=_samples,
    doc="The share of ct that maximum(x, y) passes to x: ct where x > y, ct/2 at a tie, "
        "exactly 0 where x < y (also for an infinite ct), nan where x - y is nan.")
