"""Building arrays: stack/concatenate (of lists that mix traced values, NumPy arrays and
Python scalars), vstack/hstack/dstack/column_stack, atleast_1d/2d/3d, append,
zeros_like/ones_like/full_like/empty_like, copy, broadcast_arrays and meshgrid.

All are composites of reshape, broadcast_to and concatenate, so gradients are free.
Elements that are not traced are converted as NumPy converts them (``np.asarray``):
a Python float in ``np.stack([x, 0.5])`` is a float64 array there, so the result is
float64 even for a float32 ``x``, exactly as in NumPy.
"""
from __future__ import annotations

import numpy as np

from ..avals import Traced
from ..errors import InPlaceError, OptionError, ShapeError, UnsupportedError
from ._numpy_table import Call, implements
from ._rules import one_axis, shape_ints
from .composite import astype, do_broadcast_to, do_reshape, dtype_arg, expand_dims, hint
from .shape import broadcast_to, concatenate as concat_prim, identity

__all__ = ["as_array", "array_of", "concat", "stack", "concatenate"]

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def no_out(out, what):
    """``out=`` in user code: graphc's arrays are immutable."""
    if out is not None:
        raise InPlaceError(f"np.{what}(..., out=...) writes into an array in place; graphc's "
                           "traced arrays are immutable",
                           hint=f"assign the result instead: y = np.{what}(...)")


def _has_traced(seq) -> bool:
    return any(isinstance(v, Traced) or isinstance(v, (list, tuple)) and _has_traced(v)
               for v in seq)


def as_array(v):
    """``v`` as NumPy's ``np.asarray(v)`` sees it: a traced value stays traced (a traced
    Python float becomes a strong float64, as NumPy's conversion makes it), a nested list
    holding traced values is stacked (:func:`array_of`), anything else is ``np.asarray``."""
    if isinstance(v, Traced):   # (broadcast_to makes it strong, and works on a Python float)
        return broadcast_to(v, shape=v.shape) if v.aval.weak else v
    if isinstance(v, (list, tuple)) and _has_traced(v):
        return array_of(v)
    return np.asarray(v)


def array_of(seq):
    """``np.array(seq)`` for a (nested) list or tuple holding traced values: the
    elements converted by :func:`as_array`, of one shape, stacked along a new first axis,
    in NumPy's result dtype."""
    items = [as_array(v) for v in seq]
    if not items:
        return np.asarray(seq)
    if len({tuple(np.shape(a)) for a in items}) > 1:
        raise ShapeError("setting an array element with a sequence: the elements have "
                         "shapes " + ", ".join(str(tuple(np.shape(a))) for a in items)
                         + " (an inhomogeneous shape)",
                         hint="all elements of np.array([...]) must have the same shape")
    return hint(concat([expand_dims(a, 0) for a in items], 0), "array")


def _sequence(arrays, what):
    if isinstance(arrays, Traced) or isinstance(arrays, np.ndarray):
        return list(arrays)        # NumPy iterates over the first axis
    if not isinstance(arrays, (list, tuple)):
        raise UnsupportedError(f'arrays to {what} must be passed as a "sequence" type such '
                               "as list or tuple", hint=f"np.{what}([a, b])")
    return list(arrays)


def _cast(arrays, dtype, casting):
    if casting not in _CASTINGS:
        raise OptionError("casting must be one of 'no', 'equiv', 'safe', 'same_kind', or "
                          f"'unsafe', got {casting!r}")
    if dtype is None:
        return arrays
    dtype = dtype_arg(dtype)
    for a in arrays:
        if not np.can_cast(a.dtype, dtype, casting):
            raise UnsupportedError(f"Cannot cast array data from {a.dtype!r} to {dtype!r} "
                                   f"according to the rule {casting!r}",
                                   hint="pass casting='unsafe' to allow it")
    return [astype(a, dtype) for a in arrays]


def concat(arrays, axis):
    """Concatenate converted arrays along a normalized ``axis`` (NumPy's checks)."""
    if not arrays:
        raise ShapeError("need at least one array to concatenate")
    if any(np.ndim(a) == 0 for a in arrays):
        raise ShapeError("zero-dimensional arrays cannot be concatenated",
                         hint="np.stack([...]) makes a new axis; x[None] makes a 1-d array")
    nd = np.ndim(arrays[0])
    if any(np.ndim(a) != nd for a in arrays):
        raise ShapeError("all the input arrays must have same number of dimensions: "
                         + ", ".join(str(np.shape(a)) for a in arrays))
    axis = one_axis(axis, nd)
    if len(arrays) == 1:            # NumPy's result is a new array, never the input
        return fresh(arrays[0])
    return concat_prim(*arrays, axis=axis)


def fresh(x):
    """A new traced value equal to ``x`` (so a later write into one never shows in the
    other); non-traced values are copied."""
    return identity(x) if isinstance(x, Traced) else np.array(x)


def _stack_samples(d):
    x, y = d.rnd(2, 3), d.rnd(2, 3)
    return [Call(([x, y],), {}, "f64 axis0"), Call(([x, y, x],), {"axis": -1}, "axis-1"),
            Call(([d.rnd(), 0.5, 2.0],), {}, "0-d and floats"),
            Call(([x.astype(np.float32), y.astype(np.float32)],), {"axis": 1}, "f32 axis1"),
            Call(([x.astype(np.float32), y],), {}, "f32+f64"),
            Call(([d.ints(3), d.ints(3)],), {}, "ints"),
            Call(([x, y],), {"dtype": np.float32}, "dtype=f32"),
            Call(([d.ints(3), d.ints(3)],), {"dtype": np.float64, "casting": "safe"}, "int->f64")]


@implements(np.stack, samples=_stack_samples)
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join arrays of one shape along a new ``axis``."""
    no_out(out, "stack")
    arrays = _cast([as_array(a) for a in _sequence(arrays, "stack")], dtype, casting)
    if not arrays:
        raise ShapeError("need at least one array to stack")
    if len({tuple(np.shape(a)) for a in arrays}) > 1:
        raise ShapeError("all input arrays must have the same shape, got "
                         + ", ".join(str(np.shape(a)) for a in arrays))
    axis = one_axis(axis, np.ndim(arrays[0]) + 1)
    return hint(concat([expand_dims(a, axis) for a in arrays], axis), "stack")


def _concat_samples(d):
    x, y = d.rnd(2, 3), d.rnd(1, 3)
    return [Call(([x, y],), {}, "axis0"), Call(([x, d.rnd(2, 2)],), {"axis": 1}, "axis1"),
            Call(([x, d.rnd(2, 1)],), {"axis": -1}, "axis-1"),
            Call(([x, y],), {"axis": None}, "axis None"),
            Call(([x, np.ones((1, 3))],), {}, "constant part"),
            Call(([x.astype(np.float32), y],), {}, "f32+f64"),
            Call(([d.ints(2), d.ints(3)],), {"dtype": np.float32, "casting": "unsafe"}, "dtype")]


@implements(np.concatenate, samples=_concat_samples)
def concatenate(arrays, /, axis=0, out=None, *, dtype=None, casting="same_kind"):
    """Join arrays along an existing ``axis`` (``axis=None``: flattened first)."""
    no_out(out, "concatenate")
    arrays = _cast([as_array(a) for a in _sequence(arrays, "concatenate")], dtype, casting)
    if axis is None:
        arrays, axis = [do_reshape(a, -1) for a in arrays], 0
    return concat(arrays, axis)


def _atleast(nd, a):
    a = as_array(a)
    shape = tuple(np.shape(a))
    if len(shape) >= nd:
        return a
    if nd == 3 and len(shape) == 1:
        return do_reshape(a, (1,) + shape + (1,))
    if nd == 3 and len(shape) == 2:
        return do_reshape(a, shape + (1,))
    return do_reshape(a, (1,) * (nd - len(shape)) + shape)


def _atleast_samples(d):
    return [Call((d.rnd(),), {}, "0-d"), Call((d.rnd(3),), {}, "1-d"),
            Call((d.rnd(2, 3),), {}, "2-d"), Call((d.rnd(2, 1, 2),), {}, "3-d"),
            Call((d.rnd(3).astype(np.float32), d.rnd(2, 2)), {}, "two arrays", grad=False),
            Call((d.ints(3),), {}, "ints")]


@implements(np.atleast_1d, samples=_atleast_samples)
def atleast_1d(*arys):
    """Each array viewed with at least one dimension (a tuple for several)."""
    out = tuple(_atleast(1, a) for a in arys)
    return out[0] if len(out) == 1 else out


@implements(np.atleast_2d, samples=_atleast_samples)
def atleast_2d(*arys):
    """Each array with at least two dimensions: (N,) becomes (1, N)."""
    out = tuple(_atleast(2, a) for a in arys)
    return out[0] if len(out) == 1 else out


@implements(np.atleast_3d, samples=_atleast_samples)
def atleast_3d(*arys):
    """At least three dimensions: (N,) becomes (1, N, 1), (M, N) becomes (M, N, 1)."""
    out = tuple(_atleast(3, a) for a in arys)
    return out[0] if len(out) == 1 else out


def _joins_samples(shapes_2d, shapes_3d):
    def samples(d):
        return [Call(([d.rnd(3), d.rnd(3)],), {}, "1-d"),
                Call(([d.rnd(*s) for s in shapes_2d],), {}, "2-d"),
                Call(([d.rnd(*s) for s in shapes_3d],), {}, "3-d"),
                Call(([d.rnd(2).astype(np.float32), d.rnd(2).astype(np.float32)],), {}, "f32"),
                Call(([d.rnd(), d.rnd()],), {}, "0-d"),
                Call(([d.rnd(1), 1.5],), {}, "scalar", grad=False)]
    return samples


def _hv_samples(shapes_2d, shapes_3d):
    def samples(d):
        return _joins_samples(shapes_2d, shapes_3d)(d) + [
            Call(([d.rnd(3), d.rnd(3)],), {"dtype": np.float32}, "dtype"),
            Call(([d.ints(3), d.ints(3)],), {"casting": "no"}, "ints")]
    return samples


@implements(np.vstack, samples=_hv_samples([(2, 3), (1, 3)], [(2, 2, 3), (1, 2, 3)]))
def vstack(tup, *, dtype=None, casting="same_kind"):
    """Stack arrays row-wise: concatenate along axis 0 after :func:`atleast_2d`."""
    arrays = [_atleast(2, a) for a in _sequence(tup, "vstack")]
    return hint(concat(_cast(arrays, dtype, casting), 0), "vstack")


@implements(np.hstack, samples=_hv_samples([(2, 3), (2, 1)], [(2, 2, 3), (2, 1, 3)]))
def hstack(tup, *, dtype=None, casting="same_kind"):
    """Stack column-wise: along axis 1 (axis 0 for 1-d arrays)."""
    arrays = _cast([_atleast(1, a) for a in _sequence(tup, "hstack")], dtype, casting)
    if arrays and np.ndim(arrays[0]) == 1:
        return hint(concat(arrays, 0), "hstack")
    return hint(concat(arrays, 1), "hstack")


@implements(np.dstack, samples=_joins_samples([(2, 3), (2, 3)], [(2, 2, 3), (2, 2, 1)]))
def dstack(tup):
    """Stack depth-wise: along axis 2 after :func:`atleast_3d`."""
    return hint(concat([_atleast(3, a) for a in _sequence(tup, "dstack")], 2), "dstack")


@implements(np.column_stack, samples=_joins_samples([(3, 2), (3, 1)], [(2, 2, 3), (2, 1, 3)]))
def column_stack(tup):
    """1-d arrays become columns of a 2-d array; 2-d arrays are stacked as they are."""
    arrays = []
    for a in _sequence(tup, "column_stack"):
        a = as_array(a)
        arrays.append(do_reshape(a, (-1, 1)) if np.ndim(a) < 2 else a)
    return hint(concat(arrays, 1), "column_stack")


def _append_samples(d):
    return [Call((d.rnd(2, 3), d.rnd(4)), {}, "flattened"),
            Call((d.rnd(2, 3), d.rnd(1, 3)), {"axis": 0}, "axis0"),
            Call((d.rnd(3), 1.5), {}, "scalar"),
            Call((d.rnd(2, 2).astype(np.float32), d.rnd(2, 1).astype(np.float32)), {"axis": -1},
                 "f32 axis-1")]


@implements(np.append, samples=_append_samples)
def append(arr, values, axis=None):
    """``arr`` with ``values`` appended (both flattened when ``axis`` is None)."""
    arr, values = as_array(arr), as_array(values)
    if axis is None:
        return hint(concat([do_reshape(arr, -1), do_reshape(values, -1)], 0), "append")
    return hint(concat([arr, values], axis), "append")


# --- new arrays shaped like others -----------------------------------------------
def _like(a, fill, dtype, order, subok, shape, device, what):
    if device not in (None, "cpu"):
        raise OptionError(f"np.{what}: device={device!r} is not supported (only 'cpu')")
    if order not in ("K", "A", "C", "F", None):
        raise OptionError(f"np.{what}: order must be one of 'C', 'F', 'A', or 'K' "
                          f"(got {order!r})")
    dtype = dtype_arg(dtype) if dtype is not None else np.dtype(a.dtype) \
        if hasattr(a, "dtype") else np.asarray(a).dtype
    shape = tuple(np.shape(a)) if shape is None else shape_ints(shape, f"{what} shape")
    if isinstance(fill, Traced):    # full_like(x, traced): broadcast, cast as NumPy casts
        return hint(astype(broadcast_to(fill, shape=shape), dtype), what)
    value = np.full(shape, fill, dtype=dtype)
    # a traced (constant) result, so that later writes into it are traced
    return a._trace.lift(value) if isinstance(a, Traced) else value


def _like_samples(*fill):
    def samples(d):
        return [Call((d.rnd(2, 3), *fill), {}, "f64", grad=False),
                Call((d.rnd(3).astype(np.float32), *fill), {}, "f32", grad=False),
                Call((d.ints(2, 2), *fill), {"dtype": np.float32}, "dtype", grad=False),
                Call((d.rnd(2, 3), *fill), {"shape": (4,)}, "shape=", grad=False),
                Call((d.rnd(), *fill), {"dtype": "int32", "order": "C"}, "0-d", grad=False)]
    return samples


@implements(np.zeros_like, samples=_like_samples())
def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Zeros with ``a``'s shape and dtype (a traced constant, so writes into it trace)."""
    return _like(a, 0, dtype, order, subok, shape, device, "zeros_like")


@implements(np.ones_like, samples=_like_samples())
def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Ones with ``a``'s shape and dtype."""
    return _like(a, 1, dtype, order, subok, shape, device, "ones_like")


@implements(np.empty_like, samples=lambda d: [])   # values unspecified: tests/test_np_building.py
def empty_like(prototype, /, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """An array of ``prototype``'s shape and dtype.  NumPy leaves its values unspecified;
    graphc fills it with zeros, so generated code is deterministic."""
    return _like(prototype, 0, dtype, order, subok, shape, device, "empty_like")


def _full_like_samples(d):
    x = d.rnd(2, 3)
    return _like_samples(2.5)(d) + [Call((x, -1), {}, "int fill", grad=False),
                                    Call((d.ints(3), 2.7), {}, "int array, float fill", grad=False),
                                    Call((x, d.rnd()), {}, "traced fill"),
                                    Call((d.ints(3), d.rnd()), {}, "traced fill cast to int")]


@implements(np.full_like, samples=_full_like_samples)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``fill_value`` (cast to the dtype, as NumPy casts it) in ``a``'s shape; the
    gradient of a traced ``fill_value`` is the sum of the result's cotangent."""
    return _like(a, fill_value, dtype, order, subok, shape, device, "full_like")


def _copy_samples(d):
    return [Call((d.rnd(2, 3),), {}, "f64"), Call((d.rnd(3).astype(np.float32),), {}, "f32"),
            Call((d.ints(3),), {}, "ints"), Call((d.rnd(),), {}, "0-d")]


@implements(np.copy, samples=_copy_samples)
def copy(a, order="K", subok=False):
    """A new array with ``a``'s values (``np.copy(a)`` and ``a.copy()``): a fresh value,
    so later functional updates of one never show in the other."""
    if order not in ("K", "A", "C", "F", None):
        raise OptionError(f"copy: order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    return identity(a) if isinstance(a, Traced) else np.array(a, order=order, subok=subok)


@implements(methods=("copy",), samples=_copy_samples)
def copy_method(self, order="C"):
    """``x.copy()``: a fresh value, as :func:`copy` (NumPy's method defaults to order 'C')."""
    return copy(self, order)


# --- broadcasting ------------------------------------------------------------------
def _bcast_samples(d):     # (a tuple of results: gradients in tests/test_np_building.py)
    return [Call((d.rnd(3), d.rnd(2, 1)), {}, "two", grad=False),
            Call((d.rnd(2, 3), d.rnd(), d.rnd(1, 3).astype(np.float32)), {}, "three", grad=False),
            Call((d.rnd(2, 2),), {}, "one", grad=False)]


@implements(np.broadcast_arrays, samples=_bcast_samples)
def broadcast_arrays(*args, subok=False):
    """Each argument broadcast to the arguments' common shape (a tuple)."""
    arrays = [as_array(a) for a in args]
    try:
        shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])
    except ValueError:
        raise ShapeError("shape mismatch: objects cannot be broadcast to a single shape: "
                         + ", ".join(str(np.shape(a)) for a in arrays)) from None
    return tuple(do_broadcast_to(a, shape) for a in arrays)


def _meshgrid_samples(d):
    x, y, z = d.rnd(3), d.rnd(2), d.rnd(4)
    return [Call((x, y), {}, "xy"), Call((x, y), {"indexing": "ij"}, "ij"),
            Call((x, y, z), {}, "3 xy"), Call((x, y), {"sparse": True}, "sparse"),
            Call((x,), {}, "one"), Call((x, d.rnd(2, 2)), {"copy": False}, "2-d input raveled"),
            Call((x.astype(np.float32), y), {"indexing": "ij", "sparse": True}, "f32")]


@implements(np.meshgrid, samples=lambda d: [Call(c.args, c.kwargs, c.desc, False)
                                             for c in _meshgrid_samples(d)])
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate matrices from coordinate vectors (NumPy's tuple of arrays)."""
    if indexing not in ("xy", "ij"):
        raise OptionError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    out = []
    for i, x in enumerate(xi):
        shape = [1] * nd
        shape[i] = -1
        if indexing == "xy" and nd > 1 and i < 2:
            shape[i], shape[1 - i] = 1, -1
        out.append(do_reshape(as_array(x), tuple(shape)))
    if not sparse:
        out = list(broadcast_arrays(*out))
    return tuple(out)
