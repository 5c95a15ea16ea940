"""Indexing: ``getitem`` (static slices/ints/None/Ellipsis and integer arrays) and
its transpose ``scatter_add``.

An index is stored as a static ``spec``: a tuple whose items are
``("slice", start, stop, step)``, ``("int", i)``, ``("none",)``, ``("ellipsis",)``
or ``("array", k)`` for the k-th array argument after ``x`` (traced or
constant integer arrays).  The two primitives are each other's VJP, so the set
is closed under differentiation.

``take_along_axis`` / ``put_along_axis`` (one index per row, each the other's VJP)
select the first maximum of overlapping or padded pooling windows.
"""
from __future__ import annotations

import numpy as np

from ..errors import IndexError_, ShapeError, UnsupportedError
from ..primitive import Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import zero_flops


def _concrete_index(spec, arrays):
    """The index with zero-filled stand-ins for the array arguments."""
    out = []
    for item in spec:
        kind = item[0]
        if kind == "slice":
            out.append(slice(*item[1:]))
        elif kind == "int":
            out.append(item[1])
        elif kind == "none":
            out.append(None)
        elif kind == "ellipsis":
            out.append(Ellipsis)
        else:
            out.append(arrays[item[1]])
    return tuple(out)


def _index_shape(x_shape, spec, idx_avals):
    stand_ins = [np.zeros(a.shape, np.intp) for a in idx_avals]
    base = np.broadcast_to(np.zeros((), np.int8), x_shape)
    try:
        return base[_concrete_index(spec, stand_ins)].shape
    except IndexError as e:
        raise IndexError_(f"index {spec_text(spec, ['idx'] * len(idx_avals))} is invalid for "
                          f"shape {tuple(x_shape)}: {e}") from None


def _getitem_rule(x, *idx, spec):
    for a in idx:
        if a.dtype.kind not in "iu":
            raise UnsupportedError(f"index arrays must be integers, got {a.short()}",
                                   hint="boolean masks give data-dependent shapes; use np.where(mask, x, 0)")
    return Aval(_index_shape(x.shape, spec, idx), x.dtype, False)


def spec_text(spec, arrays):
    parts = []
    for item in spec:
        kind = item[0]
        if kind == "slice":
            start, stop, step = item[1:]
            s = f"{'' if start is None else start}:{'' if stop is None else stop}"
            if step is not None:
                s += f":{step}"
            parts.append(s)
        elif kind == "int":
            parts.append(str(item[1]))
        elif kind == "none":
            parts.append("None")
        elif kind == "ellipsis":
            parts.append("...")
        else:
            parts.append(arrays[item[1]])
    return ", ".join(parts) if parts else "()"


def _emit_getitem(e, *, spec):
    return f"{e.atoms[0]}[{spec_text(spec, e.args[1:])}]"


def _getitem_vjp(ct, x, *idx, out, spec):
    return (scatter_add(ct, *idx, spec=spec, shape=x.shape),) + (None,) * len(idx)


def _sym_getitem(x, *idx, spec):
    return np.asarray(x)[_concrete_index(spec, idx)]


def _getitem_sample(d, shape, key, desc):
    spec, arrays = S.index_spec(key)
    return S.Sample((d.rnd(*shape), *arrays), {"spec": spec},
                    lambda x, *idx: x[S.with_arrays(key, idx)], desc)


def _getitem_samples(d):
    return [
        _getitem_sample(d, (5,), slice(1, 4), "[1:4]"),
        _getitem_sample(d, (4, 5), (slice(None), slice(1, 3)), "[:,1:3]"),
        _getitem_sample(d, (4, 5), (slice(None, None, 2), slice(None, None, -1)), "[::2,::-1]"),
        _getitem_sample(d, (4, 5), 1, "[1]"),
        _getitem_sample(d, (4, 5), (1, -1), "[1,-1]"),
        _getitem_sample(d, (3, 4), (None, slice(None), 1), "[None,:,1]"),
        _getitem_sample(d, (2, 3, 4), (Ellipsis, 1), "[...,1]"),
        _getitem_sample(d, (2, 3), (Ellipsis, None), "[...,None]"),
        _getitem_sample(d, (2, 3, 4), (1, Ellipsis, None, slice(2, None)), "[1,...,None,2:]"),
        _getitem_sample(d, (4,), np.array([0, 2, 0]), "[[0,2,0]]-repeated"),
        _getitem_sample(d, (3, 4), (slice(None), np.array([0, 2, 0])), "[:,[0,2,0]]-mixed"),
        _getitem_sample(d, (3, 4), (np.array([0, 1, 0]), np.array([2, 0, 2])), "[[0,1,0],[2,0,2]]"),
        _getitem_sample(d, (4, 3), np.array([[0, 1], [1, 3]]), "[2d-index]"),
        _getitem_sample(d, (3, 4, 2), (np.array([0, 2]), slice(None), np.array([1, 0])),
                        "[[0,2],:,[1,0]]-separated"),
        _getitem_sample(d, (3, 4), (1, np.array([0, 3, 3])), "[1,[0,3,3]]"),
        _getitem_sample(d, (3, 4), (np.array([2, 0]), slice(1, 3), None), "[[2,0],1:3,None]"),
    ]


getitem = primitive(
    name="getitem", array_api=XP.getitem, samples=_getitem_samples, shape=_getitem_rule, numpy=_emit_getitem, vjp=_getitem_vjp,
    jvp=lambda t, x, *idx, out, spec: getitem(t[0], *idx, spec=spec),
    sympy=_sym_getitem, label="[]", family="index", flops=zero_flops,
    doc="x[index]; integer-array parts of the index are arguments, the rest is static.")


def _scatter_rule(ct, *idx, spec, shape, unique=False):
    want = _index_shape(shape, spec, idx)
    if tuple(ct.shape) != tuple(want):
        raise ShapeError(f"scatter_add: values {ct.short()} do not fit index of shape {want}")
    return Aval(tuple(shape), ct.dtype, False)


def _emit_scatter(e, *, spec, shape, unique=False):
    dt = f"np.{e.aval.dtype.name}"
    idx = spec_text(spec, e.args[1:])
    lines = [f"{e.out} = np.zeros({tuple(shape)!r}, dtype={dt})"]
    # unique: no element is indexed twice (set by passes.simplify), so plain
    # assignment does what np.add.at does, several times faster.
    if any(item[0] == "array" for item in spec) and not unique:
        if all(item[0] in ("array", "int") for item in spec):
            where = f"({idx},)" if len(spec) == 1 else f"({idx})"
        else:
            where = f"np.s_[{idx}]"
        lines.append(f"np.add.at({e.out}, {where}, {e.args[0]})")
    else:
        lines.append(f"{e.out}[{idx}] = {e.args[0]}")
    return lines


def _scatter_vjp(ct, v, *idx, out, spec, shape, unique=False):
    return (getitem(ct, *idx, spec=spec),) + (None,) * len(idx)


def _sym_scatter(v, *idx, spec, shape, unique=False):
    out = np.zeros(shape, dtype=object)
    np.add.at(out, _concrete_index(spec, idx), v)
    return out


def _scatter_sample(d, shape, key, desc):
    spec, arrays = S.index_spec(key)
    v = d.rnd(*np.zeros(shape)[S.with_arrays(key, arrays)].shape)

    def ref(v, *idx):
        z = np.zeros(shape, v.dtype)
        np.add.at(z, S.with_arrays(key, idx), v)
        return z
    return S.Sample((v, *arrays), {"spec": spec, "shape": shape}, ref, desc)


def _scatter_samples(d):
    return [
        _scatter_sample(d, (4,), np.array([1, 1, 0]), "[[1,1,0]]-repeated"),
        _scatter_sample(d, (2, 3), (slice(None), np.array([0, 2, 0])), "[:,[0,2,0]]-mixed"),
        _scatter_sample(d, (3, 3), (np.array([0, 0]), np.array([1, 1])), "[[0,0],[1,1]]"),
        _scatter_sample(d, (4, 2), slice(1, 3), "[1:3]-static"),
        _scatter_sample(d, (3, 4), (1, np.array([0, 3, 3])), "[1,[0,3,3]]"),
        _scatter_sample(d, (2, 3, 4), (Ellipsis, 1), "[...,1]-static"),
        _scatter_sample(d, (3, 4, 2), (np.array([0, 2]), slice(None), np.array([1, 0])),
                        "[[0,2],:,[1,0]]-separated"),
    ]


scatter_add = primitive(
    name="scatter_add", array_api=XP.scatter_add, samples=_scatter_samples, never_inline_args=True, fresh_result=True, shape=_scatter_rule,
    numpy=_emit_scatter, vjp=_scatter_vjp,
    jvp=lambda t, v, *idx, out, spec, shape, unique=False: scatter_add(
        t[0], *idx, spec=spec, shape=shape, unique=unique),
    sympy=_sym_scatter, label="scatter+", family="index",
    flops=lambda out, v, *idx, **p: v.size,
    doc="zeros(shape) with v added at index (np.add.at); the transpose of getitem. "
        "unique=True (set by the simplifier) promises no repeated element.")


def static_slice(x, axis, start, stop):
    """``x[..., start:stop, ...]`` along ``axis`` (a graph op)."""
    spec = tuple(("slice", None, None, None) for _ in range(axis)) + (("slice", start, stop, None),)
    return getitem(x, spec=spec)


# --- take_along_axis / put_along_axis: one element per row (overlapping pooling) ---------
def _take_rule(x, idx, *, axis):
    if idx.dtype.kind not in "iu" or idx.ndim != x.ndim or idx.shape[axis] != 1:
        raise ShapeError(f"take_along_axis expects one integer index per row along axis {axis}, "
                         f"got {idx.short()} for {x.short()}")
    shape = list(x.shape)
    shape[axis] = 1
    return Aval(tuple(shape), x.dtype, False)


_ROWS = np.array([[3], [0], [2]])


def _take_samples(d):
    def ref(axis):
        return lambda x, i: np.take_along_axis(x, i, axis=axis)
    return [S.Sample((d.rnd(3, 4), _ROWS), {"axis": 1}, ref(1), "axis1"),
            S.Sample((d.rnd(4, 3), _ROWS.T), {"axis": 0}, ref(0), "axis0")]


take_along_axis = primitive(
    name="take_along_axis", array_api="xp.take_along_axis({0}, {1}, axis={axis})", samples=_take_samples, shape=_take_rule, numpy="np.take_along_axis({0}, {1}, axis={axis})",
    vjp=lambda ct, x, idx, *, out, axis: (put_along_axis(ct, idx, shape=tuple(x.shape), axis=axis), None),
    jvp=lambda t, x, idx, *, out, axis: take_along_axis(t[0], idx, axis=axis),
    sympy=lambda x, idx, *, axis: np.take_along_axis(np.asarray(x, dtype=object), idx, axis=axis),
    label="select", family="index", flops=zero_flops,
    doc="np.take_along_axis with one index per row (size 1 along axis).")


def _put_rule(v, idx, *, shape, axis):
    want = list(shape)
    want[axis] = 1
    if tuple(v.shape) != tuple(want) or tuple(idx.shape) != tuple(want):
        raise ShapeError(f"put_along_axis: values {v.short()} / index {idx.short()} do not fit {shape}")
    return Aval(tuple(shape), v.dtype, False)


def _emit_put(e, *, shape, axis):
    return [f"{e.out} = np.zeros({tuple(shape)!r}, dtype=np.{e.aval.dtype.name})",
            f"np.put_along_axis({e.out}, {e.args[1]}, {e.args[0]}, axis={axis})"]


def _sym_put(v, idx, *, shape, axis):
    out = np.zeros(shape, dtype=object)
    np.put_along_axis(out, idx, np.asarray(v, dtype=object), axis=axis)
    return out


def _put_samples(d):
    def ref(shape, axis):
        def put(v, idx):
            z = np.zeros(shape, v.dtype)
            np.put_along_axis(z, idx, v, axis=axis)
            return z
        return put
    return [S.Sample((d.rnd(3, 1), _ROWS), {"shape": (3, 4), "axis": 1}, ref((3, 4), 1), "axis1"),
            S.Sample((d.rnd(1, 3), _ROWS.T), {"shape": (4, 3), "axis": 0}, ref((4, 3), 0),
                     "axis0")]


put_along_axis = primitive(
    name="put_along_axis", array_api=XP.put_along_axis, samples=_put_samples, never_inline_args=True, shape=_put_rule, numpy=_emit_put,
    vjp=lambda ct, v, idx, *, out, shape, axis: (take_along_axis(ct, idx, axis=axis), None),
    jvp=lambda t, v, idx, *, out, shape, axis: put_along_axis(t[0], idx, shape=shape, axis=axis),
    sympy=_sym_put, label="place", family="index", flops=zero_flops,
    doc="zeros(shape) with one value per row placed at idx along axis.")


# --- setitem: x[index] = v as a new array (the functional form of a write) --------------
def assign_check(shape, spec, idx_shapes, v_shape):
    """Raise what NumPy raises for ``x[index] = v`` (shapes only, no data touched)."""
    from numpy.lib.stride_tricks import as_strided
    dst = as_strided(np.zeros(1, np.int8), shape=tuple(shape), strides=(0,) * len(shape),
                     writeable=True)
    src = np.broadcast_to(np.zeros((), np.int8), tuple(v_shape))
    stand_ins = [np.zeros(s, np.intp) for s in idx_shapes]
    try:
        dst[_concrete_index(spec, stand_ins)] = src
    except IndexError as e:
        raise IndexError_(f"index {spec_text(spec, ['idx'] * len(idx_shapes))} is invalid "
                          f"for shape {tuple(shape)}: {e}") from None
    except ValueError as e:
        raise ShapeError(f"cannot assign a value of shape {tuple(v_shape)} to "
                         f"x[{spec_text(spec, ['idx'] * len(idx_shapes))}] of x's shape "
                         f"{tuple(shape)}: {e}",
                         hint="the value must broadcast to the shape of the indexed part") from None


def _setitem_rule(x, v, *idx, spec):
    for a in idx:
        if a.dtype.kind not in "iu":
            raise UnsupportedError(f"index arrays must be integers, got {a.short()}")
    if v.dtype != x.dtype and not v.weak:       # a Python scalar is cast by the assignment
        raise UnsupportedError(f"setitem: value {v.short()} must have the dtype of {x.short()} "
                               "(cast it first)")
    assign_check(x.shape, spec, [a.shape for a in idx], v.shape)
    return Aval(tuple(x.shape), x.dtype, False)


def _emit_setitem(e, *, spec):
    idx = spec_text(spec, e.args[2:])
    return [f"{e.out} = {e.atoms[0]}.copy()", f"{e.out}[{idx}] = {e.args[1]}"]


def _const_value(t):
    """The value of a graph constant (a traced index that is really a constant), else None."""
    trace = getattr(t, "_trace", None)
    if trace is None:
        return np.asarray(t)
    node = trace.graph[t.node]
    return np.asarray(node.value) if node.op == "const" else None


def _winners(x, idx, spec):
    """Which elements of ``v`` (at the index's shape) survive a write with repeated
    index entries: NumPy keeps the last one.  None when every entry is distinct."""
    if not any(item[0] == "array" for item in spec):
        return None
    want = _index_shape(x.shape, spec, [getattr(a, "aval", None) or Aval(np.shape(a), np.intp, False)
                                        for a in idx])
    ordinal = np.arange(int(np.prod(want, dtype=np.int64)), dtype=np.int64).reshape(want)
    values = [_const_value(a) for a in idx]
    if all(v is not None for v in values):      # constant index: decide now
        pos = np.full(tuple(x.shape), -1, np.int64)
        where = _concrete_index(spec, values)
        pos[where] = ordinal
        won = pos[where] == ordinal
        return None if won.all() else won
    pos = setitem(np.full(tuple(x.shape), -1, np.int64), ordinal, *idx, spec=spec)
    return getitem(pos, *idx, spec=spec) == ordinal


def _setitem_vjp(ct, x, v, *idx, out, spec):
    from .elementwise import where
    zero = 0.0 if ct.dtype.kind == "f" else np.zeros((), ct.dtype)
    d_x = setitem(ct, zero, *idx, spec=spec)
    d_v = getitem(ct, *idx, spec=spec)
    won = _winners(x, idx, spec)
    if won is not None:
        d_v = where(won, d_v, zero)
    return (d_x, d_v) + (None,) * len(idx)


def _setitem_jvp(t, x, v, *idx, out, spec):
    # the same write, of the tangents: the written part's tangent is v's (0 if it has none)
    tx, tv = t[:2]
    if tx is None:
        tx = x._trace.lift(np.zeros(x.shape, x.dtype))
    return setitem(tx, 0.0 if tv is None else tv, *idx, spec=spec)


def _sym_setitem(x, v, *idx, spec):
    out = np.array(x, dtype=object)
    out[_concrete_index(spec, idx)] = v
    return out


def _set_sample(d, shape, key, v_shape, desc, dtype=np.float64, proof=False):
    spec, arrays = S.index_spec(key)

    def ref(x, v, *idx):
        out = x.copy()
        out[S.with_arrays(key, idx)] = v
        return out
    return S.Sample((d.rnd(*shape, dtype=dtype), d.rnd(*v_shape, dtype=dtype), *arrays),
                    {"spec": spec}, ref, desc, proof=proof)


def _setitem_samples(d):
    return [
        _set_sample(d, (5,), slice(1, 4), (3,), "[1:4]", proof=True),
        _set_sample(d, (4, 5), (slice(None), slice(1, 3)), (4, 2), "[:,1:3]"),
        _set_sample(d, (4, 5), (slice(None, None, 2), slice(None, None, -1)), (5,),
                    "[::2,::-1]-broadcast"),
        _set_sample(d, (4, 5), 1, (), "[1]-scalar"),
        _set_sample(d, (4, 5), (1, -1), (), "[1,-1]"),
        _set_sample(d, (2, 3, 4), (Ellipsis, 1), (1, 3), "[...,1]-leading-one"),
        _set_sample(d, (4,), np.array([0, 2]), (2,), "[[0,2]]"),
        _set_sample(d, (4,), np.array([1, 3, 1]), (3,), "[[1,3,1]]-repeated"),
        _set_sample(d, (3, 4), (slice(None), np.array([0, 2, 0])), (3, 3), "[:,[0,2,0]]"),
        _set_sample(d, (3, 4), (np.array([0, 2]), np.array([1, 1])), (2,), "[[0,2],[1,1]]"),
        _set_sample(d, (3, 4), (slice(1, None), slice(None, 2)), (2, 2), "f32", dtype=np.float32),
    ]


setitem = primitive(
    name="setitem", array_api=XP.setitem, samples=_setitem_samples, never_inline_args=True, fresh_result=True,
    shape=_setitem_rule, numpy=_emit_setitem, vjp=_setitem_vjp, jvp=_setitem_jvp, sympy=_sym_setitem,
    label="[]=", family="index", flops=zero_flops,
    doc="A copy of x with x[index] = v (NumPy's assignment: v broadcasts to the indexed part; "
        "with repeated index entries the last write wins). The functional form of "
        "`y[i] = v` while tracing. Gradient: the overwritten part of x gets zero, v gets the "
        "cotangent of the slots it was written to (of a repeated entry, only the winning write).")
