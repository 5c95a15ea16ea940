"""Shape primitives: reshape, transpose, broadcast_to, concatenate; and ``unbroadcast``, the
transpose of broadcasting, with which the reverse sweep sums each cotangent to its input's shape."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..primitive import Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import zero_flops


def _reshape_rule(x, *, shape):
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ShapeError(f"cannot reshape {x.short()} ({x.size} elements) into shape {shape}")
    return Aval(tuple(shape), x.dtype, False)


def _emit_reshape(e, *, shape):
    return f"{e.atoms[0]}.reshape({', '.join(map(str, shape)) if len(shape) != 1 else shape[0]})" \
        if shape else f"{e.atoms[0]}.reshape(())"


def _shape_detail(params):
    return f"{tuple(params['shape'])}"


def _reshape_samples(d):
    pairs = [(d.rnd(2, 3, 4), (6, 4)), (d.rnd(2, 3, 4), (24,)), (d.rnd(2, 3, 4), (4, 1, 6)),
             (np.asarray(d.rnd(1)[0]), (1, 1)), (d.rnd(1, 1), ()), (d.rnd(6, dtype=S.F32), (2, 3))]
    return [S.Sample((x,), {"shape": s}, (lambda s: lambda x: x.reshape(s))(s), f"{x.shape}->{s}")
            for x, s in pairs]


reshape = primitive(
    name="reshape", array_api=XP.reshape, samples=_reshape_samples, shape=_reshape_rule, numpy=_emit_reshape,
    vjp=lambda ct, x, *, out, shape: (reshape(ct, shape=x.shape),),
    jvp=lambda t, x, *, out, shape: reshape(t[0], shape=shape),
    sympy=lambda x, shape: x.reshape(shape), label="reshape", label_detail=_shape_detail,
    family="shape", flops=zero_flops)


def _transpose_rule(x, *, axes):
    key = (x.shape, x.dtype, axes) if type(axes) is tuple else None
    out = _TRANSPOSED.get(key)           # (an Aval is frozen: one result per key)
    if out is not None:
        return out
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"axes {axes} do not match an array of dimension {x.ndim}")
    out = Aval(tuple(x.shape[a] for a in axes), x.dtype, False)
    if key is not None:
        if len(_TRANSPOSED) >= 64:       # (shapes: bounded and small, so no leak)
            _TRANSPOSED.clear()
        _TRANSPOSED[key] = out
    return out


_TRANSPOSED: dict = {}


def _emit_transpose(e, *, axes):
    if tuple(axes) == tuple(reversed(range(len(axes)))):
        return f"{e.atoms[0]}.T"
    return f"{e.atoms[0]}.transpose({', '.join(map(str, axes))})"


def _transpose_samples(d):
    pairs = [(d.rnd(2, 3, 4), (2, 0, 1)), (d.rnd(2, 3, 4), (1, 0, 2)), (d.rnd(2, 3, 4), (0, 2, 1)),
             (d.rnd(2, 3, 4), (2, 1, 0)), (d.rnd(3, 4), (1, 0)), (d.rnd(3, 4, dtype=S.F32), (1, 0))]
    return [S.Sample((x,), {"axes": a}, (lambda a: lambda x: x.transpose(a))(a), f"{x.shape}-{a}")
            for x, a in pairs]


transpose = primitive(
    name="transpose", array_api=XP.transpose, samples=_transpose_samples, shape=_transpose_rule, numpy=_emit_transpose,
    vjp=lambda ct, x, *, out, axes: (transpose(ct, axes=tuple(int(i) for i in np.argsort(axes))),),
    jvp=lambda t, x, *, out, axes: transpose(t[0], axes=axes),
    sympy=lambda x, axes: x.transpose(axes), label="transpose",
    label_detail=lambda p: f"{tuple(p['axes'])}", family="shape", flops=zero_flops)


def _broadcast_rule(x, *, shape):
    try:
        got = np.broadcast_shapes(x.shape, shape)
    except ValueError:
        got = None
    if got != tuple(shape):
        raise ShapeError(f"cannot broadcast {x.short()} to shape {tuple(shape)}")
    return Aval(tuple(shape), x.dtype, False)


def _broadcast_vjp(ct, x, *, out, shape):
    return (unbroadcast(ct, x.shape),)


def _broadcast_samples(d):
    pairs = [(d.rnd(3), (2, 3)), (d.rnd(3, 1), (3, 4)), (np.asarray(d.rnd(1)[0]), (2, 2)),
             (d.rnd(1, 4), (2, 3, 4)), (d.rnd(2, 1, dtype=S.F32), (2, 5))]
    return [S.Sample((x,), {"shape": s}, (lambda s: lambda x: np.broadcast_to(x, s))(s),
                     f"{x.shape}->{s}") for x, s in pairs]


broadcast_to = primitive(
    name="broadcast_to", samples=_broadcast_samples, shape=_broadcast_rule, numpy="np.broadcast_to({0}, {shape})",
    vjp=_broadcast_vjp, jvp=lambda t, x, *, out, shape: broadcast_to(t[0], shape=shape), sympy=lambda x, shape: np.broadcast_to(x, shape), label="broadcast",
    label_detail=_shape_detail, family="shape", flops=zero_flops)


def unbroadcast(ct, shape: tuple):
    """Sum ``ct`` back to ``shape`` (the transpose of broadcasting)."""
    shape = tuple(shape)
    if tuple(ct.shape) == shape:
        return ct
    from .reduce import sum as reduce_sum
    full = tuple(np.broadcast_shapes(tuple(ct.shape), shape))
    if full != tuple(ct.shape):  # a rule returned something smaller: broadcast it up
        ct = broadcast_to(ct, shape=full)
        if full == shape:
            return ct
    lead = ct.ndim - len(shape)
    stretched = tuple(i + lead for i, d in enumerate(shape) if d == 1 and ct.shape[i + lead] != 1)
    if not stretched:
        return reduce_sum(ct, axis=tuple(range(lead)), keepdims=False)
    if not lead:
        return reduce_sum(ct, axis=stretched, keepdims=True)
    summed = reduce_sum(ct, axis=tuple(range(lead)) + stretched, keepdims=True)
    return reshape(summed, shape=shape)


def _concat_rule(*xs, axis):
    ref = xs[0]
    if ref.ndim == 0:
        raise ShapeError("zero-dimensional arrays cannot be concatenated")
    for x in xs[1:]:
        if x.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, ref.shape))
                                     if i != axis):
            raise ShapeError("concatenate: shapes " + ", ".join(v.short() for v in xs)
                             + f" do not match outside axis {axis}")
    shape = list(ref.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    dtype = np.result_type(*[x.np_proxy() for x in xs])
    return Aval(tuple(shape), dtype, False)


def _concat_vjp(ct, *xs, out, axis):
    from .index import static_slice
    cts, start = [], 0
    for x in xs:
        stop = start + x.shape[axis]
        cts.append(static_slice(ct, axis, start, stop))
        start = stop
    return tuple(cts)


def _concat_jvp(t, *xs, out, axis):
    # the tangents side by side; a zero block where an input has none
    if all(x is None for x in t):
        return None
    parts = [x._trace.lift(np.zeros(x.shape, out.dtype)) if dx is None else dx
             for x, dx in zip(xs, t)]
    return concatenate(*parts, axis=axis)


def _concat_samples(d):
    def ref(axis):
        return lambda *xs: np.concatenate(xs, axis=axis)
    return [S.Sample((d.rnd(2, 3), d.rnd(1, 3), d.rnd(3, 3)), {"axis": 0}, ref(0), "3-inputs-axis0"),
            S.Sample((d.rnd(2, 1), d.rnd(2, 3), d.rnd(2, 2)), {"axis": 1}, ref(1), "3-inputs-axis1"),
            S.Sample((d.rnd(2, 3, 1), d.rnd(2, 3, 2)), {"axis": 2}, ref(2), "3d-axis2"),
            S.Sample((d.rnd(2, dtype=S.F32), d.rnd(3), d.rnd(1, dtype=S.F32)), {"axis": 0}, ref(0),
                     "mixed-f32-f64")]


concatenate = primitive(
    name="concatenate", array_api=XP.concatenate, samples=_concat_samples, shape=_concat_rule,
    numpy=lambda e, *, axis: f"np.concatenate([{', '.join(e.args)}], axis={axis})",
    vjp=_concat_vjp, jvp=_concat_jvp, sympy=lambda *xs, axis: np.concatenate(xs, axis=axis), label="concat",
    family="shape", flops=zero_flops)


# A fresh alias of a value: a nested grad differentiates with respect to its own
# alias of an argument, so a closure over the same outer value stays constant
# (no perturbation confusion).  The optimizer removes aliases before codegen.
identity = primitive(
    name="identity", scalar="{0}", samples=S.identity_like(), shape=lambda x: x, numpy="{0}", vjp=lambda ct, x, *, out: (ct,),
    jvp=lambda t, x, *, out: t[0], sympy=lambda x: x, label="=", family="shape", flops=zero_flops, elementwise=True)


# A layout hint: copy a transposed view into C order once, so the elementwise
# ops that follow run on contiguous memory (2-3x faster than on the view).
contiguous = primitive(
    name="contiguous", array_api="_contiguous(xp, {0})", samples=S.identity_like(f32_shape=(2, 3)), shape=lambda x: x, numpy="np.ascontiguousarray({0})",
    vjp=lambda ct, x, *, out: (ct,), jvp=lambda t, x, *, out: contiguous(t[0]),
    sympy=lambda x: x, label="copy", family="shape",
    flops=zero_flops, elementwise=True, doc="Same values, C-contiguous memory.")


# Identity forward, zero gradient (softmax's max shift).
stop_gradient = primitive(
    name="stop_gradient", scalar="{0}",
    # its derivative is *defined* as zero: the finite-difference stand-in is a constant
    samples=S.identity_like(fd_ref=lambda x: np.zeros_like(x)), shape=lambda x: x, numpy="{0}", prec=100,
    vjp=lambda ct, x, *, out: (None,), jvp=lambda t, x, *, out: None, sympy=lambda x: x,
    label="stop∇", family="shape",
    flops=zero_flops, elementwise=True, doc="Identity forward; no gradient flows through it.")
