"""Padding and shifting: np.pad, np.roll, np.diff, as slices, gathers and concatenations.

All are composites: their gradients come from ``getitem`` (scatter back, repeated
indices accumulate) and ``concatenate`` (split back), so an edge-padded element
receives the cotangents of all its copies.
"""
from __future__ import annotations

import numpy as np

from ..avals import Traced
from ..errors import ShapeError, UnsupportedError
from . import elementwise as ew
from ._numpy_table import Call, implements
from ._rules import _static_int, norm_axis, one_axis
from .shape import broadcast_to, concatenate

_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


def _lifted(x, *others):
    """``x`` as a traced value (a constant array padded with a traced value is lifted)."""
    if isinstance(x, Traced):
        return x
    for o in others:
        if isinstance(o, Traced):
            return o._trace.lift(np.asarray(x))
    raise UnsupportedError("expected a traced array")


def _static_pairs(value, ndim, what):
    """NumPy's ``_as_pairs(value, ndim, as_index=True)`` for ``pad_width``."""
    if isinstance(value, Traced) or any(isinstance(v, Traced) for v in np.ravel(
            np.asarray(value, dtype=object))):
        raise UnsupportedError(f"np.pad: {what} must be static ints, not traced values",
                               hint="pass Python ints, e.g. np.pad(x, ((1, 1), (0, 2)))")
    if isinstance(value, dict):          # NumPy 2.3+: {axis: width or (before, after)}
        seq = [(0, 0)] * ndim
        for axis, width in value.items():
            if isinstance(width, int):
                seq[axis] = width, width
            elif isinstance(width, tuple) and len(width) == 2 and all(
                    isinstance(w, int) for w in width):
                seq[axis] = width
            else:
                raise UnsupportedError(f"`{what}` for axis {axis} must be an int or a pair of "
                                       f"ints, got {width!r}")
        value = seq
    x = np.array(value)
    if x.dtype.kind != "i":
        raise UnsupportedError(f"`{what}` must be of integral type.",
                               hint="pass Python ints, e.g. np.pad(x, 2)")
    x = x.astype(np.intp)
    if x.ndim < 3 and x.size == 1:
        x = np.broadcast_to(x.ravel(), (2,))
    elif x.ndim < 3 and x.size == 2 and x.shape != (2, 1):
        x = x.ravel()
    if x.size and x.min() < 0:
        raise ShapeError("index can't contain negative values")
    try:
        pairs = np.broadcast_to(x, (ndim, 2))
    except ValueError as e:
        raise ShapeError(f"np.pad: {what} {value!r} does not fit an array of dimension "
                         f"{ndim}: {e}") from None
    return [(int(b), int(a)) for b, a in pairs]


def _value_pairs(value, ndim):
    """``constant_values`` per axis and side (static numbers or traced scalars)."""
    if isinstance(value, Traced):
        if value.ndim != 0:
            raise UnsupportedError("np.pad: a traced constant_values must be a scalar",
                                   hint="pass one traced scalar, or static numbers per axis")
        return [(value, value)] * ndim
    x = np.asarray(value, dtype=object)
    if any(isinstance(v, Traced) for v in x.ravel()):
        raise UnsupportedError("np.pad: constant_values mixing traced values per axis is not "
                               "supported", hint="pass one traced scalar or static numbers")
    x = np.array(value)
    if x.size == 1:
        v = x.ravel()[0]
        return [(v, v)] * ndim
    if x.ndim < 3 and x.size == 2 and x.shape != (2, 1):
        x = x.ravel()
    try:
        return [tuple(p) for p in np.broadcast_to(x, (ndim, 2))]
    except ValueError as e:
        raise ShapeError(f"np.pad: constant_values does not fit: {e}") from None


def _block(x, shape, value):
    """A block of ``shape`` filled with ``value`` in ``x``'s dtype (as NumPy casts it)."""
    if isinstance(value, Traced):
        v = value if value.dtype == x.dtype else ew.astype(value, dtype=x.dtype)
        return broadcast_to(v, shape=tuple(shape))
    with np.errstate(all="ignore"):
        return x._trace.lift(np.full(shape, value, dtype=x.dtype))


def _pad_constant(x, widths, values):
    for axis, ((before, after), (vb, va)) in enumerate(zip(widths, values)):
        if before == 0 and after == 0:
            continue
        parts = []
        shape = list(x.shape)
        if before:
            shape[axis] = before
            parts.append(_block(x, shape, vb))
        parts.append(x)
        if after:
            shape[axis] = after
            parts.append(_block(x, shape, va))
        x = concatenate(*parts, axis=axis)
    return x


def _pad_by_index(x, widths, mode, reflect_type):
    """Edge, reflect, symmetric, wrap: one gather per padded axis, with the source
    positions NumPy's own ``np.pad`` gives for ``arange(n)`` (exact by construction)."""
    for axis, (before, after) in enumerate(widths):
        if before == 0 and after == 0:
            continue
        n = x.shape[axis]
        if n == 0:
            raise ShapeError(f"can't extend empty axis {axis} using modes other than "
                             "'constant' or 'empty'")
        src = np.pad(np.arange(n), (before, after), mode=mode)
        if np.array_equal(src, np.arange(n)):
            continue
        x = x[(slice(None),) * axis + (src,)]
    return x


def _pad_calls(d):
    x, f32 = d.rnd(3, 4), d.rnd(2, 3).astype(np.float32)
    return [Call((x, 1), {}, "int-width"),
            Call((x, (1, 2)), {}, "pair"),
            Call((x, ((1, 0), (2, 3))), {}, "per-axis"),
            Call((x, ((2,), (1,))), {}, "per-axis-single"),
            Call((x, {-1: (1, 2)}), {}, "dict"),
            Call((x, {0: 1}), {"mode": "wrap"}, "dict-int"),
            Call((x, ((0, 1), (2, 0))), {"constant_values": 7.5}, "constant-value"),
            Call((x, 1), {"constant_values": ((1.0, 2.0), (3.0, 4.0))}, "constant-per-side"),
            Call((x, ((1, 2), (2, 1))), {"mode": "edge"}, "edge"),
            Call((x, ((2, 1), (3, 2))), {"mode": "reflect"}, "reflect"),
            Call((x, ((5, 4), (1, 7))), {"mode": "reflect"}, "reflect-wide"),
            Call((x, 2), {"mode": "symmetric"}, "symmetric"),
            Call((x, ((3, 4), (5, 6))), {"mode": "wrap"}, "wrap-wide"),
            Call((d.rnd(5), 3), {"mode": "reflect"}, "1d-reflect"),
            Call((f32, 1), {"mode": "edge"}, "f32-edge"),
            Call((f32, (2, 1)), {"constant_values": 0.1}, "f32-constant"),
            Call((d.ints(3, 3), 1), {"constant_values": 2.7}, "int64-cast"),
            Call((d.rnd(2, 1, 3), ((0, 0), (2, 2), (1, 0))), {"mode": "reflect"}, "size1-axis"),
            Call((np.asarray(d.rnd(1)[0]), 3), {}, "0-d")]


@implements(np.pad, samples=_pad_calls)
def pad(array, pad_width, mode="constant", **kwargs):
    """``np.pad`` in modes constant (``constant_values``), edge, reflect, symmetric and wrap;
    ``pad_width`` in every NumPy form (int, (before, after), one pair per axis)."""
    x = _lifted(array, kwargs.get("constant_values"))
    widths = _static_pairs(pad_width, x.ndim, "pad_width")
    allowed = {"constant": {"constant_values"}, "edge": set(), "wrap": set(),
               "reflect": {"reflect_type"}, "symmetric": {"reflect_type"}}
    if callable(mode) or mode not in allowed:
        if mode in ("empty", "linear_ramp", "maximum", "mean", "median", "minimum") or callable(mode):
            raise UnsupportedError(f"np.pad(mode={mode!r}) is not supported by graphc",
                                   hint="modes 'constant', 'edge', 'reflect', 'symmetric' and "
                                        "'wrap' are supported")
        raise ShapeError(f"mode '{mode}' is not supported")
    unsupported = set(kwargs) - allowed[mode]
    if unsupported:
        raise ShapeError(f"unsupported keyword arguments for mode '{mode}': {unsupported}")
    if x.ndim == 0 or all(w == (0, 0) for w in widths):
        return x
    if mode == "constant":
        return _pad_constant(x, widths, _value_pairs(kwargs.get("constant_values", 0), x.ndim))
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type == "odd":
        raise UnsupportedError(f"np.pad(mode={mode!r}, reflect_type='odd') is not supported",
                               hint="use the default reflect_type='even'")
    return _pad_by_index(x, widths, mode, reflect_type)


# --- roll -------------------------------------------------------------------------------
def _roll_calls(d):
    x = d.rnd(3, 4)
    return [Call((d.rnd(5), 2), {}, "1d"),
            Call((x, 5), {}, "axisNone"),
            Call((x, -1), {"axis": 1}, "negative"),
            Call((x, 7), {"axis": 0}, "shift>n"),
            Call((x, (1, 2)), {"axis": (0, 1)}, "tuple"),
            Call((x, 1), {"axis": (0, 1)}, "int-shift-tuple-axes"),
            Call((x, (1, 2)), {"axis": 1}, "repeated-axis"),
            Call((x, 0), {"axis": -1}, "zero"),
            Call((d.rnd(2, 3, 2).astype(np.float32), 1), {"axis": -2}, "f32"),
            Call((d.ints(4), 3), {}, "int64")]


def _roll_axis(x, shift, axis):
    n = x.shape[axis]
    if n == 0:
        return x
    s = shift % n
    if s == 0:
        return x
    pre = (slice(None),) * axis
    return concatenate(x[pre + (slice(n - s, None),)], x[pre + (slice(0, n - s),)], axis=axis)


@implements(np.roll, samples=_roll_calls)
def roll(a, shift, axis=None):
    """``np.roll``: two slices concatenated per rolled axis (the flattened array when
    ``axis`` is None); ``shift`` must be static."""
    if isinstance(shift, Traced):
        shift.__index__()      # the control-flow error: a traced shift changes the slicing
    if axis is None:
        flat = a.reshape(-1)
        return _roll_axis(flat, _static_int(shift, "shift"), 0).reshape(a.shape)
    try:
        pairs = np.broadcast(np.asarray(shift), np.asarray(axis))
    except ValueError:
        raise ShapeError("'shift' and 'axis' should be scalars or 1D sequences") from None
    if pairs.nd > 1:
        raise ShapeError("'shift' and 'axis' should be scalars or 1D sequences")
    total = {}
    for sh, ax in pairs:
        ax = one_axis(ax, a.ndim)
        total[ax] = total.get(ax, 0) + _static_int(sh, "shift")
    x = a
    for ax in sorted(total):
        x = _roll_axis(x, total[ax], ax)
    return x


# --- diff -------------------------------------------------------------------------------
def _diff_calls(d):
    x = d.rnd(3, 5)
    return [Call((d.rnd(6),), {}, "1d"),
            Call((x,), {"n": 2}, "n2"),
            Call((x,), {"axis": 0}, "axis0"),
            Call((x, 1, -2), {}, "positional"),
            Call((x,), {"n": 0}, "n0"),
            Call((x,), {"n": 7}, "n>size"),
            Call((x,), {"prepend": 0.0}, "prepend-scalar"),
            Call((x, 1, 0, d.rnd(2, 5)), {}, "prepend-array"),
            Call((x,), {"append": d.rnd(3, 1), "prepend": 1.0, "n": 2}, "append"),
            Call((x, 1, -1, d.rnd(3, 1), d.rnd(3, 2)), {}, "traced-prepend-append"),
            Call((d.rnd(4).astype(np.float32),), {}, "f32"),
            Call((d.ints(6),), {}, "int64"),
            Call((d.bools(6),), {}, "bool")]


def _edge_part(x, value, axis):
    if isinstance(value, Traced):
        if value.ndim == 0:
            shape = list(x.shape)
            shape[axis] = 1
            value = np.broadcast_to(value, tuple(shape))
        return value
    value = np.asanyarray(value)
    if value.ndim == 0:
        shape = list(x.shape)
        shape[axis] = 1
        value = np.broadcast_to(value, tuple(shape))
    return x._trace.lift(np.ascontiguousarray(value))


@implements(np.diff, samples=_diff_calls)
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    """``np.diff``: ``x[1:] - x[:-1]`` ``n`` times along ``axis`` (``!=`` for booleans), after
    concatenating ``prepend`` and ``append``."""
    a = _lifted(a, prepend, append)
    n = _static_int(n, "n")
    if n == 0:
        return a
    if n < 0:
        raise ShapeError(f"order must be non-negative but got {n!r}")
    if a.ndim == 0:
        raise ShapeError("diff requires input that is at least one dimensional")
    axis = one_axis(axis, a.ndim)
    parts = []
    if prepend is not np._NoValue:
        parts.append(_edge_part(a, prepend, axis))
    parts.append(a)
    if append is not np._NoValue:
        parts.append(_edge_part(a, append, axis))
    x = concatenate(*parts, axis=axis) if len(parts) > 1 else a
    pre = (slice(None),) * axis
    for _ in range(n):
        hi, lo = x[pre + (slice(1, None),)], x[pre + (slice(None, -1),)]
        x = ew.ne(hi, lo) if x.dtype == np.bool_ else hi - lo
    return x


__all__ = ["pad", "roll", "diff", "norm_axis"]
