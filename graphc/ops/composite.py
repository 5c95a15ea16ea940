"""Composites: NumPy functions built from primitives.

They need no gradient rule, emission or SymPy semantics of their own; they
give their result a *name hint* so generated code reads ``mean = ...`` rather
than ``div_3 = ...``.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedError
from . import elementwise as ew
from .index import getitem
from .reduce import max as reduce_max, min as reduce_min, sum as reduce_sum
from .shape import broadcast_to, concatenate, reshape, transpose
from ._rules import norm_axis


def hint(x, name):
    """Give ``x``'s node a name hint for generated code, if it is traced."""
    from ..tracing import Tracer
    if isinstance(x, Tracer):
        node = x._trace.graph.nx.nodes[x.node]
        if node.get("hint") is None and node["op"] != "input":
            node["hint"] = name
    return x


def _ndim(x):
    return np.ndim(x) if not hasattr(x, "aval") else x.ndim


def _shape(x):
    return np.shape(x) if not hasattr(x, "aval") else x.shape


def sum(x, axis=None, keepdims=False, dtype=None):
    if dtype is not None:
        x = astype(x, dtype)
    return reduce_sum(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))


def max(x, axis=None, keepdims=False):
    return reduce_max(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))


def min(x, axis=None, keepdims=False):
    return reduce_min(x, axis=norm_axis(axis, _ndim(x)), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims=False, dtype=None):
    axes = norm_axis(axis, _ndim(x))
    n = int(np.prod([_shape(x)[a] for a in axes], dtype=np.int64))
    s = sum(x, axes, keepdims, dtype)
    return hint(s / n, "mean")


def astype(x, dtype):
    dtype = np.dtype(dtype)
    if getattr(x, "dtype", None) == dtype and not getattr(getattr(x, "aval", None), "weak", False):
        return x
    return ew.astype(x, dtype=dtype)


def square(x):
    return hint(x * x, "square")


def clip(x, a_min=None, a_max=None):
    # The bound first: np.maximum / np.minimum return their second argument at a tie,
    # and np.clip returns x there, so np.clip(-0.0, 0.0, 1.0) stays -0.0.
    if a_min is not None:
        x = ew.maximum(a_min, x)
    if a_max is not None:
        x = ew.minimum(a_max, x)
    return hint(x, "clip")


def do_reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(_shape(x), dtype=np.int64))
    if shape.count(-1) > 1:
        raise ShapeError(f"can only specify one unknown dimension in reshape {shape}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(f"cannot reshape an array of {size} elements into shape {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if shape == tuple(_shape(x)):
        return x
    return reshape(x, shape=shape)


def do_transpose(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    nd = _ndim(x)
    if not axes or axes == (None,):
        axes = tuple(reversed(range(nd)))
    axes = tuple(int(a) % nd for a in axes)
    if axes == tuple(range(nd)):
        return x
    return transpose(x, axes=axes)


def swapaxes(x, a, b):
    nd = _ndim(x)
    axes = list(range(nd))
    axes[a % nd], axes[b % nd] = axes[b % nd], axes[a % nd]
    return do_transpose(x, tuple(axes))


def expand_dims(x, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = _ndim(x) + len(axes)
    axes = sorted(a % nd for a in axes)
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
    axis = axis % nd
    return hint(concatenate(*[expand_dims(x, axis) for x in xs], axis=axis), "stack")


def do_concatenate(xs, axis=0):
    xs = list(xs)
    if axis is None:
        xs, axis = [do_reshape(x, -1) for x in xs], 0
    if not xs:
        raise ShapeError("need at least one array to concatenate")
    axis = axis % _ndim(xs[0])
    if len(xs) == 1:
        return xs[0]
    return concatenate(*xs, axis=axis)


def do_broadcast_to(x, shape):
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if tuple(_shape(x)) == shape:
        return x
    return broadcast_to(x, shape=shape)


def dot(a, b):
    if _ndim(a) == 0 or _ndim(b) == 0:
        return a * b
    if _ndim(b) > 2:
        raise UnsupportedError("np.dot with a >2-d second argument is not supported",
                               hint="use np.matmul / @ or np.tensordot")
    return a @ b


def tensordot(a, b, axes=2):
    if isinstance(axes, int):
        ax_a = list(range(_ndim(a) - axes, _ndim(a)))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    ax_a = [x % _ndim(a) for x in ax_a]
    ax_b = [x % _ndim(b) for x in ax_b]
    free_a = [i for i in range(_ndim(a)) if i not in ax_a]
    free_b = [i for i in range(_ndim(b)) if i not in ax_b]
    sa, sb = _shape(a), _shape(b)
    k = int(np.prod([sa[i] for i in ax_a], dtype=np.int64))
    if k != int(np.prod([sb[i] for i in ax_b], dtype=np.int64)):
        raise ShapeError(f"tensordot: summed axes of {sa} and {sb} differ in size")
    a2 = do_reshape(do_transpose(a, tuple(free_a + ax_a)), (-1, k))
    b2 = do_reshape(do_transpose(b, tuple(ax_b + free_b)), (k, -1))
    out_shape = tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b)
    return hint(do_reshape(a2 @ b2, out_shape), "tensordot")


def ravel(x):
    return do_reshape(x, -1)


def zeros_like(x, dtype=None):
    return np.zeros(_shape(x), dtype or x.dtype)


def ones_like(x, dtype=None):
    return np.ones(_shape(x), dtype or x.dtype)


def full_like(x, fill_value, dtype=None):
    return np.full(_shape(x), fill_value, dtype or x.dtype)
