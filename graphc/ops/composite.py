"""Composites: NumPy functions built from primitives.

They need no gradient rule, emission or SymPy semantics of their own; they
give their result a *name hint* so generated code reads ``mean = ...`` rather
than ``div_3 = ...``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedError
from . import elementwise as ew
from .reduce import max as reduce_max, min as reduce_min, sum as reduce_sum
from .shape import broadcast_to, concatenate, reshape, transpose
from ._rules import _static_int, norm_axis, one_axis, shape_ints


def hint(x, name):
    """Give ``x``'s node a name hint for generated code, if it is traced."""
    from ..avals import Traced as Tracer
    if isinstance(x, Tracer):
        node = x._trace.graph[x.node]
        if node.hint is None and node.op != "input":
            node.hint = name
    return x


def _ndim(x):
    return np.ndim(x) if not hasattr(x, "aval") else x.ndim


def _shape(x):
    return np.shape(x) if not hasattr(x, "aval") else x.shape


def sum(x, axis=None, keepdims=False, dtype=None):
    if dtype is None:
        return reduce_sum(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))
    dtype = dtype_arg(dtype)
    x = astype(x, dtype)
    s = reduce_sum(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))
    # NumPy sums small integers in a wider type (uint8 -> uint64) unless told a dtype;
    # with dtype=uint8 the sum wraps in uint8.  The wide sum cast back wraps the same
    # way (the low bits of an integer sum do not depend on the width it is taken in).
    return s if s.dtype == dtype else astype(s, dtype)


def max(x, axis=None, keepdims=False):
    return reduce_max(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))


def min(x, axis=None, keepdims=False):
    return reduce_min(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims=False, dtype=None):
    if _ndim(x) == 0 and axis is not None:
        # Unlike np.sum and np.max, np.mean (and var/std) refuses every axis of a 0-d array.
        for a in (axis if isinstance(axis, (tuple, list)) else (axis,)):
            one_axis(a, 0)
    axes = norm_axis(axis, _ndim(x))
    n = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    # NumPy's accumulation type: float64 for integers and booleans, float32 for float16
    # (10,000 float16 tens sum to inf in float16); the result is cast back to float16,
    # or to an explicit dtype.
    in_dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
    out_dtype = None if dtype is None else dtype_arg(dtype)
    if dtype is None and in_dtype.kind in "biu":
        dtype = np.float64
    elif dtype is None and in_dtype == np.float16:
        dtype, out_dtype = np.float32, in_dtype
    s = sum(x, axes, keepdims, dtype)
    m = s / n
    if out_dtype is not None and m.dtype != out_dtype:
        m = astype(m, out_dtype)
    return hint(m, "mean")


def dtype_arg(dtype):
    """A ``dtype=`` argument as a NumPy dtype; NumPy's TypeError as a graphc error."""
    try:
        return np.dtype(dtype)
    except TypeError as e:           # NumPy's error, with the user's line and a hint
        raise UnsupportedError(f"{e}", hint="pass a NumPy dtype: np.float32, 'float64', int") \
            from None


def astype(x, dtype):
    dtype = dtype_arg(dtype)
    if getattr(x, "dtype", None) == dtype and not getattr(getattr(x, "aval", None), "weak", False):
        return x
    return ew.astype(x, dtype=dtype)


def square(x):
    return hint(x * x, "square")


def do_reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = shape_ints(shape, "reshape")
    size = int(np.prod(_shape(x), dtype=np.int64))
    # NumPy takes any negative size (not only -1) as the one unknown dimension.
    unknown = [i for i, s in enumerate(shape) if s < 0]
    if len(unknown) > 1:
        raise ShapeError(f"can only specify one unknown dimension in reshape {shape}")
    if unknown:
        known = int(np.prod([s for s in shape if s >= 0], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(f"cannot reshape an array of {size} elements into shape {shape}")
        shape = tuple(size // known if s < 0 else s for s in shape)
    if shape == tuple(_shape(x)):
        return x
    return reshape(x, shape=shape)


def do_transpose(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    nd = _ndim(x)
    if not axes or axes == (None,):
        axes = tuple(reversed(range(nd)))
    # The checks NumPy makes, in its order: never wrap an axis around with %.
    if len(axes) != nd:
        raise ShapeError(f"transpose: axes {tuple(axes)} don't match an array of dimension {nd}",
                         hint="give one axis per dimension, e.g. x.transpose(1, 0) for 2-d x")
    axes = tuple(one_axis(a, nd) for a in axes)
    if len(set(axes)) != nd:
        raise ShapeError(f"repeated axis in transpose {axes}",
                         hint="each axis appears once: a permutation of range(x.ndim)")
    if axes == tuple(range(nd)):
        return x
    return transpose(x, axes=axes)


def expand_dims(x, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = _ndim(x) + len(axes)
    if axis is None:
        _static_int(axis, "axis")     # NumPy: TypeError
    axes = norm_axis(axes, nd)        # out of range or repeated: NumPy's errors
    shape = list(_shape(x))
    for a in axes:
        shape.insert(a, 1)
    return hint(do_reshape(x, tuple(shape)), "expand_dims") if axes else x


def squeeze(x, axis=None):
    shape = _shape(x)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = list(norm_axis(axis, len(shape)))
        for a in axes:
            if shape[a] != 1:
                raise ShapeError(f"cannot squeeze axis {a} of size {shape[a]}")
    return do_reshape(x, tuple(d for i, d in enumerate(shape) if i not in axes))


def stack(xs, axis=0):
    xs = list(xs)
    if not xs:
        raise ShapeError("need at least one array to stack")
    nd = _ndim(xs[0]) + 1
    axis = one_axis(axis, nd)
    return hint(concatenate(*[expand_dims(x, axis) for x in xs], axis=axis), "stack")


def do_concatenate(xs, axis=0):
    xs = list(xs)
    if axis is None:
        xs, axis = [do_reshape(x, -1) for x in xs], 0
    if not xs:
        raise ShapeError("need at least one array to concatenate")
    if _ndim(xs[0]) == 0:
        raise ShapeError("zero-dimensional arrays cannot be concatenated",
                         hint="np.stack([...]) makes a new axis; x[None] makes a 1-d array")
    axis = one_axis(axis, _ndim(xs[0]))
    if len(xs) == 1:
        return xs[0]
    return concatenate(*xs, axis=axis)


def do_broadcast_to(x, shape):
    shape = shape_ints(shape, "broadcast_to shape")
    if tuple(_shape(x)) == shape:
        return x
    return broadcast_to(x, shape=shape)


