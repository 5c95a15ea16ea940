"""Splitting and reshaping: split/array_split/vsplit/hsplit/dsplit (lists of static slices:
the gradient of every piece flows back, an unused piece contributes zero), repeat and tile
(broadcast then reshape), moveaxis/rollaxis/swapaxes (transposes), ravel/flatten and squeeze
(reshapes).  Composites of existing primitives, so gradients are free.
"""
from __future__ import annotations

import operator

import numpy as np

from ..avals import Traced
from ..errors import OptionError, ShapeError, UnsupportedError
from ._numpy_table import Call, implements
from ._rules import _static_int, norm_axis, one_axis
from .assemble import as_array, fresh
from .composite import do_broadcast_to, do_reshape, do_transpose, hint

__all__ = ["split", "array_split", "repeat", "tile", "moveaxis", "ravel", "squeeze"]


def values_only(samples):
    """Samples whose result is a list or tuple of arrays: the table-driven gradient test
    takes one array, so their gradients are tested in tests/test_np_building.py."""
    def only(d):
        calls = samples(d)
        for c in calls:
            c.grad = False
        return calls
    return only


def _piece(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _bounds(n, indices_or_sections, what):
    """The (start, stop) of each piece, as NumPy's ``array_split`` cuts them."""
    if isinstance(indices_or_sections, Traced):
        indices_or_sections.__index__()        # the control-flow error: sizes are static
    try:
        sections = operator.index(indices_or_sections)
    except TypeError:
        cuts = [_static_int(i, f"{what} indices", "ints") for i in indices_or_sections]
        edges = [0] + cuts + [n]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:])]
    if sections <= 0:
        raise ShapeError("number sections must be larger than 0.")
    each, extra = divmod(n, sections)
    sizes = [each + 1] * extra + [each] * (sections - extra)
    starts = np.cumsum([0] + sizes).tolist()
    return list(zip(starts[:-1], starts[1:]))


def _split(ary, indices_or_sections, axis, what, equal):
    ary = as_array(ary)
    axis = one_axis(axis, np.ndim(ary))
    n = np.shape(ary)[axis]
    if equal and not isinstance(indices_or_sections, (list, tuple, np.ndarray)):
        sections = _static_int(indices_or_sections, f"{what} sections", "an int")
        if sections > 0 and n % sections:
            raise ShapeError("array split does not result in an equal division",
                             hint=f"axis {axis} has length {n}; np.array_split allows "
                                  "unequal pieces")
    return [_piece(ary, axis, a, b) for a, b in _bounds(n, indices_or_sections, what)]


def _split_samples(d):
    x = d.rnd(6, 4)
    return [Call((x, 3), {}, "3 sections"), Call((x, [1, 4]), {}, "indices"),
            Call((x, 2), {"axis": 1}, "axis1"), Call((x, [2, 2, 5, 9]), {}, "empty pieces"),
            Call((x, (3,)), {"axis": -2}, "tuple, axis-2"),
            Call((d.rnd(4).astype(np.float32), 2), {}, "f32")]


def _array_split_samples(d):
    return _split_samples(d) + [Call((d.rnd(7, 2), 3), {}, "unequal"),
                                Call((d.rnd(2, 5), 4), {"axis": 1}, "unequal axis1")]


@implements(np.split, samples=values_only(_split_samples))
def split(ary, indices_or_sections, axis=0):
    """Equal pieces (``sections`` must divide the axis) or pieces cut at ``indices``."""
    return _split(ary, indices_or_sections, axis, "split", True)


@implements(np.array_split, samples=values_only(_array_split_samples))
def array_split(ary, indices_or_sections, axis=0):
    """Like :func:`split`, but ``n`` sections of an axis of length ``l`` need not be
    equal: the first ``l % n`` pieces are one longer."""
    return _split(ary, indices_or_sections, axis, "array_split", False)


def _nd_split(ary, indices_or_sections, axis, least, what):
    nd = np.ndim(ary)
    if nd < least:
        raise ShapeError(f"{what} only works on arrays of {least} or more dimensions")
    return _split(ary, indices_or_sections, axis, what, True)


def _nd_split_samples(d):
    x = d.rnd(4, 6, 2)
    return [Call((x, 2), {}, "2"), Call((x, [1, 3]), {}, "indices"),
            Call((x.astype(np.float32), [1]), {}, "f32")]


@implements(np.vsplit, samples=values_only(_nd_split_samples))
def vsplit(ary, indices_or_sections):
    """:func:`split` along axis 0 (arrays of 2 or more dimensions)."""
    return _nd_split(ary, indices_or_sections, 0, 2, "vsplit")


@implements(np.hsplit, samples=values_only(
    lambda d: _nd_split_samples(d) + [Call((d.rnd(6), 3), {}, "1-d")]))
def hsplit(ary, indices_or_sections):
    """:func:`split` along axis 1 (axis 0 for 1-d arrays)."""
    axis = 1 if np.ndim(ary) > 1 else 0
    return _nd_split(ary, indices_or_sections, axis, 1, "hsplit")


@implements(np.dsplit, samples=values_only(lambda d: [
    Call((d.rnd(2, 2, 4), 2), {}, "2"), Call((d.rnd(1, 2, 4), [3]), {}, "indices")]))
def dsplit(ary, indices_or_sections):
    """:func:`split` along axis 2 (arrays of 3 or more dimensions)."""
    return _nd_split(ary, indices_or_sections, 2, 3, "dsplit")


# --- repeat and tile -----------------------------------------------------------------
def _repeat_samples(d):
    x = d.rnd(2, 3)
    return [Call((x, 2), {}, "flat"), Call((x, 3), {"axis": 1}, "axis1"),
            Call((x, [1, 0, 2]), {"axis": -1}, "per element"), Call((x, [2]), {"axis": 0}, "[2]"),
            Call((d.rnd(), 3), {}, "0-d"), Call((d.ints(4), 2), {}, "ints"),
            Call((x.astype(np.float32), 2), {"axis": 0}, "f32")]


@implements(np.repeat, methods=("repeat",), samples=_repeat_samples)
def repeat(a, repeats, axis=None):
    """Each element repeated ``repeats`` times (an int, or one count per element).
    A single count is a broadcast (gradient: a sum over the copies); counts per element
    are a gather with a constant index (gradient: a scatter-add)."""
    if isinstance(repeats, Traced):
        raise UnsupportedError("np.repeat with traced repeats gives a data-dependent shape",
                               hint="pass the counts as Python ints or a NumPy array")
    a = as_array(a)
    if axis is None:
        a, axis = do_reshape(a, -1), 0
    axis = one_axis(axis, np.ndim(a))
    shape = tuple(np.shape(a))
    counts = np.asarray(repeats)
    if counts.dtype.kind not in "iub":
        raise UnsupportedError(f"np.repeat: repeats must be ints, got {counts.dtype}")
    if np.any(counts < 0):
        raise ShapeError("repeats may not contain negative values.")
    if counts.size == 1:
        r = int(counts.reshape(()))
        wide = do_broadcast_to(do_reshape(a, shape[:axis + 1] + (1,) + shape[axis + 1:]),
                               shape[:axis + 1] + (r,) + shape[axis + 1:])
        out = do_reshape(wide, shape[:axis] + (shape[axis] * r,) + shape[axis + 1:])
        return hint(out, "repeat")
    if counts.shape != (shape[axis],):
        raise ShapeError(f"operands could not be broadcast together with shape "
                         f"({shape[axis]},) ({counts.size},)")
    index = np.repeat(np.arange(shape[axis]), counts)
    return hint(a[(slice(None),) * axis + (index,)], "repeat")


def _tile_samples(d):
    x = d.rnd(2, 3)
    return [Call((x, 2), {}, "int"), Call((x, (2, 1)), {}, "pair"), Call((x, (2, 1, 3)), {}, "more reps"),
            Call((d.rnd(2, 1, 2), (2, 2)), {}, "fewer reps"), Call((d.rnd(), (2, 3)), {}, "0-d"),
            Call((x, (1, 1)), {}, "all ones"), Call((d.ints(3), 2), {}, "ints"),
            Call((d.rnd(3).astype(np.float32), (2, 2)), {}, "f32")]


@implements(np.tile, samples=_tile_samples)
def tile(A, reps):
    """``A`` repeated ``reps`` times along each axis (broadcast then reshape; the
    gradient sums the copies)."""
    reps = tuple(_static_int(r, "tile reps", "ints") for r in
                 (reps if isinstance(reps, (tuple, list, np.ndarray)) else (reps,)))
    A = as_array(A)
    shape = tuple(np.shape(A))
    nd = max(len(shape), len(reps))
    shape = (1,) * (nd - len(shape)) + shape
    reps = (1,) * (nd - len(reps)) + reps
    if any(r < 0 for r in reps):
        raise ShapeError("negative dimensions are not allowed")
    inter = tuple(d for s in shape for d in (1, s))
    wide = tuple(d for s, r in zip(shape, reps) for d in (r, s))
    out = do_reshape(do_broadcast_to(do_reshape(A, inter), wide),
                     tuple(s * r for s, r in zip(shape, reps)))
    return hint(fresh(out) if out is A else out, "tile")


# --- axes ------------------------------------------------------------------------------
def _axis_list(axis, nd, what):
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    out = [one_axis(a, nd, what) for a in axes]
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in `{what}` argument")
    return out


def _moveaxis_samples(d):
    x = d.rnd(2, 3, 4)
    return [Call((x, 0, -1), {}, "0->-1"), Call((x, (0, 1), (2, 0)), {}, "tuples"),
            Call((x, -1, 0), {}, "-1->0"), Call((x.astype(np.float32), [2], [1]), {}, "f32 lists")]


@implements(np.moveaxis, samples=_moveaxis_samples)
def moveaxis(a, source, destination):
    """Move axes ``source`` to positions ``destination``; the others keep their order."""
    a = as_array(a)
    nd = np.ndim(a)
    src, dst = _axis_list(source, nd, "source"), _axis_list(destination, nd, "destination")
    if len(src) != len(dst):
        raise ShapeError("`source` and `destination` arguments must have the same number "
                         "of elements")
    order = [n for n in range(nd) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return do_transpose(a, tuple(order))


def _rollaxis_samples(d):
    x = d.rnd(2, 3, 4)
    return [Call((x, 2), {}, "2"), Call((x, 0, 2), {}, "0 to 2"), Call((x, 1, 3), {}, "start=ndim"),
            Call((x, -1, -2), {}, "negative"), Call((x.astype(np.float32), 0), {"start": 3}, "f32")]


@implements(np.rollaxis, samples=_rollaxis_samples)
def rollaxis(a, axis, start=0):
    """Roll ``axis`` backwards until it lies before position ``start`` (NumPy's rule)."""
    a = as_array(a)
    n = np.ndim(a)
    axis = one_axis(axis, n)
    start = _static_int(start, "start", "an int")
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        from ..errors import AxisError
        raise AxisError(f"'start' arg requires {-n} <= start < {n + 1}, but {start} was passed in",
                        axis=start, ndim=n + 1)
    if axis < start:
        start -= 1
    if axis == start:
        return a
    axes = list(range(n))
    axes.remove(axis)
    axes.insert(start, axis)
    return do_transpose(a, tuple(axes))


@implements(np.swapaxes, methods=("swapaxes",), samples=lambda d: [
    Call((d.rnd(2, 3, 4), 0, 2), {}, "0,2"), Call((d.rnd(2, 3), -1, 0), {}, "-1,0"),
    Call((d.rnd(3, 2).astype(np.float32), 1, 1), {}, "same axis")])
def swapaxes(a, axis1, axis2):
    """``a`` with ``axis1`` and ``axis2`` interchanged."""
    a = as_array(a)
    nd = np.ndim(a)
    i, j = one_axis(axis1, nd, "axis1"), one_axis(axis2, nd, "axis2")
    axes = list(range(nd))
    axes[i], axes[j] = axes[j], axes[i]
    return do_transpose(a, tuple(axes))


# --- flattening and squeezing -------------------------------------------------------------
def _ravel_samples(d):
    x = d.rnd(2, 3)
    return [Call((x,), {}, "C"), Call((x, "F"), {}, "F"), Call((d.rnd(2, 3, 2),), {"order": "F"}, "3-d F"),
            Call((d.rnd(4), "K"), {}, "1-d K"), Call((d.rnd(),), {}, "0-d"),
            Call((x.astype(np.float32),), {}, "f32")]


def _flat(a, order, what):
    a = as_array(a)
    if order not in ("C", "F", "A", "K", None):
        raise OptionError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    if order in ("C", None) or np.ndim(a) <= 1:
        return do_reshape(a, -1)
    if order == "F":
        return do_reshape(do_transpose(a), -1)
    raise UnsupportedError(f"{what}(order={order!r}) depends on the memory layout of the "
                           "array, which graphc does not track",
                           hint="write order='C' (row-major) or order='F' (column-major)")


@implements(np.ravel, methods=("ravel",), samples=_ravel_samples)
def ravel(a, order="C"):
    """The elements of ``a`` as a 1-d array, in ``order`` ('C' row-major, 'F' column-major)."""
    return _flat(a, order, "ravel")


def flatten(self, order="C"):
    """``x.flatten()``: like :func:`ravel` (a copy in NumPy; values are immutable here)."""
    return _flat(self, order, "flatten")


implements(methods=("flatten",), samples=_ravel_samples)(flatten)


def _squeeze_samples(d):
    x = d.rnd(1, 3, 1)
    return [Call((x,), {}, "all"), Call((x, 0), {}, "axis0"), Call((x, (0, 2)), {}, "tuple"),
            Call((x, -1), {}, "negative"), Call((d.rnd(2, 3),), {}, "none"),
            Call((d.rnd(1, 1).astype(np.float32),), {}, "to 0-d f32")]


@implements(np.squeeze, methods=("squeeze",), samples=_squeeze_samples)
def squeeze(a, axis=None):
    """``a`` without its axes of length one (those in ``axis``, which must have length one)."""
    a = as_array(a)
    shape = tuple(np.shape(a))
    axes = [i for i, d in enumerate(shape) if d == 1] if axis is None else norm_axis(axis, len(shape))
    for i in axes:
        if shape[i] != 1:
            raise ShapeError("cannot select an axis to squeeze out which has size not equal "
                             f"to one (axis {i} has size {shape[i]})")
    return do_reshape(a, tuple(d for i, d in enumerate(shape) if i not in axes))
