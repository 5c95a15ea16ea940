"""Reductions over axes: sum, max, min (with ``keepdims``), and argmax."""
from __future__ import annotations

import numpy as np

from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import input_flops, result_dtype, sym_at_point


def _reduce_rule(fn):
    def rule(x, *, axis, keepdims):
        shape = tuple(1 if i in axis else d for i, d in enumerate(x.shape)) if keepdims else \
            tuple(d for i, d in enumerate(x.shape) if i not in axis)
        if fn is not np.sum and any(x.shape[i] == 0 for i in axis):
            from ..errors import ShapeError
            raise ShapeError(f"{fn.__name__} of an empty axis of {x.short()} has no identity")
        return Aval(shape, result_dtype(fn, [x]), False)
    return rule


def _emit_reduce(method):
    def emit(e, *, axis, keepdims):
        x = e.atoms[0]
        nd = len(e.avals[0].shape)
        kw = []
        if tuple(axis) != tuple(range(nd)) or keepdims:
            kw.append(f"axis={axis[0] if len(axis) == 1 else tuple(axis)!r}")
        if keepdims:
            kw.append("keepdims=True")
        return f"{x}.{method}({', '.join(kw)})"
    return emit


def keep_shape(x_shape, axis):
    return tuple(1 if i in axis else d for i, d in enumerate(x_shape))


def _sum_vjp(ct, x, *, out, axis, keepdims):
    from .shape import broadcast_to, reshape
    if not keepdims:
        ct = reshape(ct, shape=keep_shape(x.shape, axis))
    return (broadcast_to(ct, shape=x.shape),)


def _extreme_vjp(ct, x, *, out, axis, keepdims):
    # Ties share the cotangent equally (as JAX): the gradient of max(x) is the
    # average of the one-hot vectors of every maximal element.
    # masked_mul rather than np.where (about 5x slower on a random mask) or a plain
    # multiply by the 0/1 mask (an infinite cotangent would give the others inf * 0 = nan).
    from .elementwise import astype, masked_mul
    from .shape import reshape
    if not keepdims:
        ct = reshape(ct, shape=keep_shape(x.shape, axis))
        out = reshape(out, shape=keep_shape(x.shape, axis))
    is_max = x == out
    count = sum(astype(is_max, dtype=ct.dtype), axis=axis, keepdims=True)
    return (masked_mul(ct / count, is_max),)


def _extreme_jvp(t, x, *, out, axis, keepdims):
    # the mean of the tangents at the maximal elements (ties share, as in _extreme_vjp)
    from .elementwise import astype, masked_mul
    from .shape import reshape
    (t,) = t
    o = out if keepdims else reshape(out, shape=keep_shape(x.shape, axis))
    is_max = x == o
    count = sum(astype(is_max, dtype=t.dtype), axis=axis, keepdims=keepdims)
    return sum(masked_mul(t, is_max), axis=axis, keepdims=keepdims) / count


def _sym_reduce(fn):
    def sym(x, *, axis, keepdims):
        return fn(x, axis=tuple(axis), keepdims=keepdims)
    return sym


def _sym_extreme(which):
    """Max / Min over axes on object arrays of SymPy expressions."""
    def sym(x, *, axis, keepdims):
        import sympy as sp
        fn = sp.Max if which == "max" else sp.Min
        x = np.asarray(x, dtype=object)
        keep = tuple(1 if i in axis else d for i, d in enumerate(x.shape))
        moved = np.moveaxis(x, axis, tuple(range(x.ndim - len(axis), x.ndim)))
        flat = moved.reshape(moved.shape[:x.ndim - len(axis)] + (-1,))
        out = np.empty(flat.shape[:-1], dtype=object)
        for idx in np.ndindex(*out.shape) if out.shape else [()]:
            vals = list(flat[idx])
            out[idx] = fn(*vals, evaluate=len(vals) <= 2)
        return out.reshape(keep) if keepdims else out
    return sym


def _axis_detail(params):
    axis = params.get("axis")
    return None if axis is None else f"axis={','.join(map(str, axis))}"


def _reduce_sample(np_fn, x, axis, keepdims, desc=""):
    return S.Sample((x,), {"axis": axis, "keepdims": keepdims},
                    lambda x: np_fn(x, axis=axis, keepdims=keepdims),
                    desc or f"{x.dtype}{x.shape}-axis{axis}-{'keep' if keepdims else 'drop'}")


def _sum_samples(d):
    def c(x, axis, keepdims, desc=""):
        return _reduce_sample(np.sum, x, axis, keepdims, desc)
    return [c(d.rnd(3, 4), (1,), False), c(d.rnd(3, 4), (1,), True),
            c(d.rnd(3, 4), (0, 1), False), c(d.rnd(3, 4), (0, 1), True),
            c(d.rnd(2, 3, 4), (0, 2), False), c(d.rnd(2, 3, 4), (0, 2), True),
            c(d.rnd(2, 3, 4), (1,), False), c(d.rnd(3, dtype=np.float32), (0,), False),
            c(np.asarray(d.rnd(1)[0]), (), False, "0-d"),
            c(d.rnd(3), (), False, "empty-axis-tuple"),
            c(d.ints(3, 4), (1,), False), c(d.bools(3, 4), (0,), True)]


def _extreme_samples(np_fn):
    def samples(d):
        def c(x, axis, keepdims):
            return _reduce_sample(np_fn, x, axis, keepdims)
        return [c(d.rnd(3, 4), (1,), False), c(d.rnd(3, 4), (1,), True),
                c(d.rnd(3, 4), (0, 1), False), c(d.rnd(2, 3, 4), (0, 2), True),
                c(d.rnd(5, dtype=np.float32), (0,), False), c(d.ints(3, 4), (0,), False)]
    return samples


sum = primitive(name="sum", array_api=XP.reduce("sum"), samples=_sum_samples, shape=_reduce_rule(np.sum), numpy=_emit_reduce("sum"), vjp=_sum_vjp,
                jvp=lambda t, x, *, out, axis, keepdims: sum(t[0], axis=axis, keepdims=keepdims),
                sympy=_sym_reduce(np.sum), label="Σ", label_detail=_axis_detail, family="reduce",
                flops=input_flops, fresh_result=True,
                doc="x.sum(axis, keepdims); axis is a normalized tuple.")
max = primitive(name="max", array_api=XP.reduce("max"), samples=_extreme_samples(np.max), shape=_reduce_rule(np.max), numpy=_emit_reduce("max"),
                vjp=_extreme_vjp, jvp=_extreme_jvp, sympy=_sym_extreme("max"), label="max",
                label_detail=_axis_detail, family="reduce", flops=input_flops, fresh_result=True)
min = primitive(name="min", array_api=XP.reduce("min"), samples=_extreme_samples(np.min), shape=_reduce_rule(np.min), numpy=_emit_reduce("min"),
                vjp=_extreme_vjp, jvp=_extreme_jvp, sympy=_sym_extreme("min"), label="min",
                label_detail=_axis_detail, family="reduce", flops=input_flops, fresh_result=True)


def _argmax_rule(x, *, axis):
    shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return Aval(shape, np.dtype(np.intp), False)


argmax = primitive(
    name="argmax", array_api=XP.arg_reduce("argmax"),
    samples=lambda d: [S.Sample((np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]),), {"axis": 1},
                                lambda x: x.argmax(axis=1), "ties-first"),
                       S.Sample((d.rnd(3, 4),), {"axis": 0}, lambda x: x.argmax(axis=0), "axis0")], shape=_argmax_rule, numpy="{0}.argmax(axis={axis})", vjp=NOT_DIFFERENTIABLE,
    sympy=sym_at_point(lambda x, *, axis: np.argmax(x, axis=axis)), sympy_at_point=True,
    label="argmax", family="reduce", flops=lambda out, x, **p: x.size,
    doc="Index of the first maximum along axis (no gradient).")
