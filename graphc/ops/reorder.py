"""Reordering and selecting: sort, argsort, partition, take, take_along_axis, select.

One new primitive, ``argsort`` (integer-valued, no gradient), emitted as NumPy's own
``np.argsort`` with the caller's ``kind``; everything else is a gather (``getitem``
with integer-array indices, whose VJP scatters back with ``np.add.at``), so gradients
come from the gather: ``np.sort`` sends each cotangent back to the element that
landed there (ties: in stable order, as JAX).
"""
from __future__ import annotations

import numpy as np

from ..avals import Traced
from ..errors import IndexError_, InPlaceError, ShapeError, UnsupportedError
from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S
from . import array_api as XP
from . import elementwise as ew
from ._numpy_table import Call, implements
from ._rules import dummy, one_axis, sym_at_point


# --- the argsort primitive ----------------------------------------------------------------
# ``kind`` is a static int param (generated code spells params from plain numbers):
# 0 NumPy's default, then the kinds by the first letter NumPy reads.
KINDS = (None, "quicksort", "mergesort", "heapsort", "stable")


def kind_code(kind):
    """The ``kind`` param of ``argsort`` for a NumPy ``kind=`` string (already validated)."""
    if kind is None:
        return 0
    return {"q": 1, "m": 2, "h": 3, "s": 4}[str(kind)[:1].lower()]


def sort_flops(x, axis):
    """n log2(n) comparisons per sorted line of length n."""
    return x.size * max(int(np.ceil(np.log2(max(x.shape[axis], 2)))), 1)


def _argsort_rule(x, *, axis, kind):
    if not 0 <= axis < len(x.shape):
        raise ShapeError(f"argsort: axis {axis} is invalid for {x.short()}")
    return Aval(tuple(x.shape), np.dtype(np.intp), False)


def _emit_argsort(e, *, axis, kind):
    extra = "" if not kind else f", kind={KINDS[kind]!r}"
    return f"np.argsort({e.args[0]}, axis={axis}{extra})"


def _argsort_samples(d):
    ties = np.array([[1.0, 3.0, 1.0, 2.0, 3.0], [0.5, 0.5, 0.5, -1.0, 2.0]])
    return [S.Sample((d.rnd(3, 4),), {"axis": 1, "kind": 0},
                     lambda x: np.argsort(x, axis=1), "axis1"),
            S.Sample((d.rnd(4, 3),), {"axis": 0, "kind": 0},
                     lambda x: np.argsort(x, axis=0), "axis0"),
            S.Sample((ties,), {"axis": 1, "kind": 4},
                     lambda x: np.argsort(x, axis=1, kind="stable"), "ties-stable"),
            S.Sample((d.ints(6),), {"axis": 0, "kind": 4},
                     lambda x: np.argsort(x, axis=0, kind="stable"), "int64"),
            S.Sample((d.rnd(5, dtype=np.float32),), {"axis": 0, "kind": 2},
                     lambda x: np.argsort(x, kind="mergesort"), "f32-mergesort")]


argsort_p = primitive(
    name="argsort", array_api=XP.argsort, samples=_argsort_samples, shape=_argsort_rule, numpy=_emit_argsort,
    vjp=NOT_DIFFERENTIABLE,
    sympy=sym_at_point(lambda x, *, axis, kind: np.argsort(x, axis=axis, kind=KINDS[kind])),
    sympy_at_point=True, label="argsort", family="index",
    flops=lambda out, x, **p: sort_flops(x, p["axis"]),
    doc="np.argsort(x, axis, kind) (kind: 0 NumPy's default, 1 quicksort, 2 mergesort, "
        "3 heapsort, 4 stable): the permutation that sorts x along axis (NumPy's own, "
        "so ties follow NumPy's kind); integer-valued, no gradient.")


def _perm_rule(x, *, kth, axis):
    if not 0 <= axis < len(x.shape):
        raise ShapeError(f"partition: axis {axis} is invalid for {x.short()}")
    return Aval(tuple(x.shape), np.dtype(np.intp), False)


def _emit_perm(e, *, kth, axis):
    x, k = e.args[0], kth[0] if len(kth) == 1 else list(kth)
    stable = f"axis={axis}, kind='stable'"
    return [f"{e.out} = np.argsort(np.argsort(np.partition({x}, {k}, axis={axis}), {stable}), "
            f"{stable})",
            f"{e.out} = np.take_along_axis(np.argsort({x}, {stable}), {e.out}, axis={axis})"]


def partition_order(x, kth, axis):
    """The permutation ``p`` with ``take_along_axis(x, p) == np.partition(x, kth)``
    (NumPy's own partition, matched to ``x`` by stable rank; equal values pair in order)."""
    kth = tuple(kth) if isinstance(kth, (list, tuple)) else (kth,)
    ranks = np.argsort(np.argsort(np.partition(x, kth, axis=axis), axis=axis, kind="stable"),
                       axis=axis, kind="stable")
    return np.take_along_axis(np.argsort(x, axis=axis, kind="stable"), ranks, axis=axis)


def _perm_samples(d):
    ties = np.array([[2.0, 1.0, 2.0, 0.5, 1.0], [1.0, 1.0, -3.0, 1.0, 0.0]])
    ref = lambda kth, axis: lambda x: partition_order(x, kth, axis)  # noqa: E731
    return [S.Sample((d.rnd(3, 7),), {"kth": (3,), "axis": 1}, ref(3, 1), "axis1"),
            S.Sample((d.rnd(6, 2),), {"kth": (1, 4), "axis": 0}, ref((1, 4), 0), "two-kth"),
            S.Sample((ties,), {"kth": (-2,), "axis": 1}, ref(-2, 1), "ties-negative-kth"),
            S.Sample((d.ints(9),), {"kth": (4,), "axis": 0}, ref(4, 0), "int64")]


partition_perm = primitive(
    name="partition_perm", array_api=XP.partition_perm, samples=_perm_samples, shape=_perm_rule, numpy=_emit_perm,
    never_inline_args=True, vjp=NOT_DIFFERENTIABLE,
    sympy=sym_at_point(lambda x, *, kth, axis: partition_order(x, kth, axis)),
    sympy_at_point=True, label="partition order", family="index",
    flops=lambda out, x, **p: 3 * sort_flops(x, p["axis"]),
    doc="The permutation p along axis with x gathered by p equal to np.partition(x, kth) "
        "(NumPy's own partition, matched to x by stable rank); integer-valued, no gradient.")


# --- helpers ------------------------------------------------------------------------------
def _trace_of(*xs):
    for x in xs:
        if isinstance(x, Traced):
            return x._trace
        if isinstance(x, (list, tuple)):
            t = _trace_of(*x)
            if t is not None:
                return t
    return None


def _as_traced(x, trace):
    """``x`` as a traced value of ``trace`` (constants are lifted)."""
    if isinstance(x, Traced):
        return x
    return trace.lift(np.asarray(x))


def _as_index(indices, what="indices"):
    """An index argument: a traced integer array, or a constant integer ndarray / int."""
    if isinstance(indices, Traced):
        if indices.dtype.kind not in "iu":
            raise UnsupportedError(f"{what} must be integers, got {indices.aval.short()}",
                                   hint="cast with .astype(np.int64) outside the traced math")
        return indices
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind == "f"):
        raise UnsupportedError(f"Cannot cast {what} of dtype {arr.dtype} to an integer index "
                               "according to the rule 'safe'", hint="pass integer indices")
    return arr.astype(np.intp) if arr.dtype.kind == "f" else arr


def gather_along(x, indices, axis):
    """``np.take_along_axis(x, indices, axis)`` for an int ``axis``: NumPy's own fancy index
    (an ``arange`` for every other axis, broadcasting against ``indices``)."""
    nd = x.ndim
    fancy = []
    for dim, n in enumerate(x.shape):
        if dim == axis:
            fancy.append(indices)
        else:
            fancy.append(np.arange(n).reshape((1,) * dim + (-1,) + (1,) * (nd - dim - 1)))
    return x[tuple(fancy)]


def _check_kind(kind, stable, fn):
    if stable is not None and kind is not None:
        raise ShapeError("`kind` and `stable` parameters can't be provided at the same time. "
                         "Use only one of them.")
    if stable:
        return "stable"
    if kind is not None:
        hint = "kind is one of 'quicksort', 'mergesort', 'heapsort', 'stable'"
        try:
            fn(np.zeros(1), kind=kind)
        except ValueError as e:
            raise ShapeError(str(e), hint=hint) from None
        except TypeError as e:
            raise UnsupportedError(str(e), hint=hint) from None
    return kind


def _no_order(order, what):
    if order is not None:
        raise ShapeError(f"{what}: Cannot specify order when the array has no fields.")


def _flat_or_axis(a, axis):
    """(array, axis) with ``axis=None`` meaning the flattened array."""
    if axis is None:
        return a.reshape(-1), 0
    return a, one_axis(axis, a.ndim)


# --- sort / argsort -------------------------------------------------------------------
def _sort_samples(d):
    ties = np.array([[2.0, 1.0, 2.0, 0.5], [1.0, 1.0, -3.0, 1.0]])
    return [Call((d.rnd(5),), {}, "f64(5)"),
            Call((d.rnd(3, 4),), {}, "f64(3,4)"),
            Call((d.rnd(3, 4),), {"axis": 0}, "axis0"),
            Call((d.rnd(2, 3, 4),), {"axis": 1}, "axis1-3d"),
            Call((d.rnd(3, 4),), {"axis": -2}, "axis-2"),
            Call((d.rnd(3, 4),), {"axis": None}, "axisNone"),
            Call((d.rnd(3, 4),), {"kind": "stable"}, "kind-stable"),
            Call((d.rnd(3, 4),), {"stable": True}, "stable=True"),
            Call((d.rnd(3, 1),), {"axis": 1}, "size1-axis"),
            Call((d.rnd(3, 4).astype(np.float32),), {}, "f32"),
            Call((d.ints(3, 5),), {}, "int64"),
            Call((ties,), {"kind": "stable"}, "ties-stable", grad=False),
            Call((np.array([3.0, np.nan, -1.0, np.inf]),), {}, "nan-last", grad=False)]


@implements(np.sort, samples=_sort_samples)
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.sort``: ``a`` gathered by its stable argsort, so the gradient sends each
    cotangent back to the element that landed there (tied elements in stable order,
    as JAX).  ``kind`` is checked and otherwise ignored: every kind gives the same
    values (up to the order of ``0.0`` and ``-0.0``, which compare equal)."""
    _no_order(order, "sort")
    _check_kind(kind, stable, np.sort)
    x, ax = _flat_or_axis(a, axis)
    return gather_along(x, argsort_p(x, axis=ax, kind=kind_code("stable")), ax)


def _argsort_calls(d):
    ties = np.array([[2.0, 1.0, 2.0, 0.5], [1.0, 1.0, -3.0, 1.0]])
    return [Call((d.rnd(3, 4),), {}, "f64(3,4)"),
            Call((d.rnd(3, 4),), {"axis": 0}, "axis0"),
            Call((d.rnd(3, 4),), {"axis": None}, "axisNone"),
            Call((ties,), {"kind": "stable"}, "ties-stable"),
            Call((ties,), {"stable": True}, "ties-stable=True"),
            Call((d.rnd(2, 3, 4).astype(np.float32),), {"axis": 1}, "f32-3d"),
            Call((d.ints(7),), {"kind": "mergesort"}, "int64")]


@implements(np.argsort, methods=("argsort",), samples=_argsort_calls)
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """``np.argsort``: NumPy's own argsort with the caller's ``kind`` (so ties come out as
    NumPy orders them on the machine running the code).  Integer-valued: no gradient."""
    _no_order(order, "argsort")
    kind = _check_kind(kind, stable, np.argsort)
    x, ax = _flat_or_axis(a, axis)
    return argsort_p(x, axis=ax, kind=kind_code(kind))


def _partition_calls(d):
    ties = np.array([[2.0, 1.0, 2.0, 0.5, 1.0], [1.0, 1.0, -3.0, 1.0, 0.0]])
    return [Call((d.rnd(9), 4), {}, "1d"),
            Call((d.rnd(3, 20), 7), {}, "3x20"),
            Call((d.rnd(40), [3, 30]), {}, "kth-list"),
            Call((d.rnd(6, 3), -2), {"axis": 0}, "axis0-negative-kth"),
            Call((d.rnd(3, 5), 5), {"axis": None}, "axisNone"),
            Call((d.rnd(2, 3, 30).astype(np.float32), 11), {"axis": -1}, "f32"),
            Call((d.ints(30), 12), {}, "int64"),
            Call((ties, 2), {}, "ties", grad=False)]


@implements(np.partition, samples=_partition_calls)
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``np.partition``: NumPy's own partition (exactly its arrangement; equal values
    compare equal, so ``0.0`` and ``-0.0`` may trade places) as a gather of ``a``, so the
    gradient goes to the element that landed at each place (equal values pair in order)."""
    _no_order(order, "partition")
    if kind != "introselect":
        raise ShapeError(f"partition kind must be 'introselect' (got {kind!r})")
    x, ax = _flat_or_axis(a, axis)
    if isinstance(kth, Traced) or (isinstance(kth, (list, tuple)) and _trace_of(*kth)):
        raise UnsupportedError("np.partition: kth must be static ints, not traced values",
                               hint="pass Python ints")
    ks = np.asarray(kth)
    if ks.dtype.kind not in "iu" or ks.ndim > 1:
        raise UnsupportedError(f"Partition index must be integer, got {kth!r}")
    try:
        np.partition(np.zeros(x.shape[ax]), ks)        # NumPy's own bounds check
    except ValueError as e:
        raise ShapeError(str(e)) from None
    kth = tuple(int(k) for k in ks.ravel())
    return gather_along(x, partition_perm(x, kth=kth, axis=ax), ax)


def sort_method(self, axis=-1, kind=None, order=None, *, stable=None):
    """``x.sort()`` sorts in place in NumPy (and returns None): an InPlaceError here."""
    raise InPlaceError("x.sort() sorts an array in place; graphc's traced arrays are immutable",
                       hint="assign the result instead: x = np.sort(x)")


def partition_method(self, kth, axis=-1, kind="introselect", order=None):
    """``x.partition()`` works in place in NumPy: an InPlaceError here."""
    raise InPlaceError("x.partition(kth) partitions an array in place; graphc's traced arrays "
                       "are immutable", hint="assign the result instead: x = np.partition(x, kth)")


# --- take / take_along_axis -------------------------------------------------------------
def _take_calls(d):
    return [Call((d.rnd(5), np.array([4, 0, 2, 2])), {}, "flat-repeated"),
            Call((d.rnd(3, 4), np.array([1, 0, 1])), {"axis": 0}, "axis0"),
            Call((d.rnd(3, 4), np.array([[3, 0], [-1, 2]])), {"axis": 1}, "axis1-2d-neg"),
            Call((d.rnd(3, 4), np.array([5, 0, 11])), {}, "axisNone"),
            Call((d.rnd(3, 4), 2), {"axis": -1}, "int-index"),
            Call((d.rnd(2, 3, 2).astype(np.float32), np.array([2, 0])), {"axis": 1}, "f32"),
            Call((d.ints(3, 4), np.array([0, 0])), {"axis": 1}, "int64"),
            Call((d.rnd(3, 4), np.array([5, -1, 2])), {"axis": 1, "mode": "clip"}, "clip"),
            Call((d.rnd(3, 4),), {"indices": [7, -5, 1], "axis": 1, "mode": "wrap"},
                 "wrap-const"),
            Call((d.rnd(4),), {"indices": np.array([[0, 3]])}, "const-index")]


@implements(np.take, methods=("take",), samples=_take_calls)
def take(a, indices, axis=None, out=None, mode="raise"):
    """``np.take``: ``a[..., indices, ...]`` along ``axis`` (the flattened array when None).
    ``mode='clip'`` clips the indices first; ``mode='wrap'`` needs constant indices."""
    if out is not None:
        raise InPlaceError("np.take(..., out=...) writes into an array in place; traced arrays "
                           "are immutable", hint="assign the result instead: y = np.take(...)")
    trace = _trace_of(a, indices)
    x = _as_traced(a, trace)
    x, ax = _flat_or_axis(x, axis)
    n = x.shape[ax]
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, (bool, np.bool_)):
        idx = int(indices)
    else:
        idx = _as_index(indices)
    if mode in ("clip", "wrap") and n == 0:
        raise IndexError_("cannot do a non-empty take from an empty axes.")
    if mode == "clip":
        idx = np.clip(idx, 0, n - 1) if not isinstance(idx, Traced) else \
            ew.minimum(ew.maximum(idx, 0), n - 1)
    elif mode == "wrap":
        if isinstance(idx, Traced):
            raise UnsupportedError("np.take(..., mode='wrap') with traced indices is not supported",
                                   hint="wrap the indices outside the traced function, or use "
                                        "mode='clip' / the default mode='raise'")
        idx = np.mod(idx, n)
    elif mode != "raise":
        raise ShapeError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    if not isinstance(idx, Traced) and np.ndim(idx) == 0:
        idx = int(idx)
    return x[(slice(None),) * ax + (idx,)]


def _along_calls(d):
    rows = np.array([[3, 0, 3], [1, 1, 2], [0, 2, 2]])
    return [Call((d.rnd(3, 4), rows), {"axis": 1}, "axis1-repeated"),
            Call((d.rnd(3, 4), rows[:, :1]), {"axis": 1}, "one-per-row"),
            Call((d.rnd(4, 3), rows.T), {"axis": 0}, "axis0"),
            Call((d.rnd(3, 4), rows), {}, "default-axis"),
            Call((d.rnd(2, 3, 4), np.array([[[0], [3], [-1]]])), {"axis": 2}, "broadcast-neg"),
            Call((d.rnd(6), np.array([5, 0, 0])), {"axis": None}, "axisNone"),
            Call((d.rnd(3, 4).astype(np.float32), rows), {"axis": -1}, "f32"),
            Call((d.ints(3, 4), rows), {"axis": 1}, "int64")]


@implements(np.take_along_axis, samples=_along_calls)
def take_along_axis(arr, indices, axis=-1):
    """``np.take_along_axis``: NumPy's own fancy index (``arange`` for the other axes);
    the gradient scatters back with ``np.add.at`` (repeated indices accumulate)."""
    trace = _trace_of(arr, indices)
    x = _as_traced(arr, trace)
    idx = _as_index(indices)
    if isinstance(idx, np.ndarray) and idx.dtype.kind not in "iu":
        raise IndexError_("`indices` must be an integer array")
    if axis is None:
        if np.ndim(idx) != 1:
            raise ShapeError("when axis=None, `indices` must have a single dimension.")
        x, axis = x.reshape(-1), 0
    else:
        axis = one_axis(axis, x.ndim)
    if np.ndim(idx) != x.ndim:
        raise ShapeError("`indices` and `arr` must have the same number of dimensions")
    return gather_along(x, idx, axis)


# --- select -----------------------------------------------------------------------------
def _select_calls(d):
    x, y, z = d.rnd(3, 4), d.rnd(3, 4), d.rnd(4)
    f32 = x.astype(np.float32)
    i, j = d.ints(5), d.ints(5)
    return [Call(([x < -0.5, x > 0.5], [-x, y]), {}, "two-choices"),
            Call(([x > 0, y > 0], [x, z], 2.5), {}, "broadcast-default"),
            Call(([x > 0], [f32]), {}, "f32"),
            Call(([f32 > 0], [1.0], f32), {}, "f32-weak-choice"),
            Call(([i > 2, j > 2], [i, j]), {"default": -1}, "int64"),
            Call(([x[0] > 0],), {"choicelist": [z], "default": y}, "keyword"),
            Call(([True, False], [x, y]), {}, "python-bools")]


@implements(np.select, samples=_select_calls)
def select(condlist, choicelist, default=0):
    """``np.select``: the first choice whose condition holds, else ``default``; built as
    ``np.where`` from the last condition to the first.  Gradients flow to the chosen
    element only."""
    if len(condlist) != len(choicelist):
        raise ShapeError("list of cases must be same length as list of conditions")
    if len(condlist) == 0:
        raise ShapeError("select with an empty condition list is not possible")
    choices = [c if type(c) in (int, float) or isinstance(c, Traced) else np.asarray(c)
               for c in list(choicelist) + [default]]
    try:
        dtype = np.result_type(*[dummy(c.aval) if isinstance(c, Traced) else c for c in choices])
    except TypeError as e:
        raise UnsupportedError(f"Choicelist and default value do not have a common dtype: {e}") \
            from None
    conds = list(condlist)
    for i, c in enumerate(conds):
        kind = c.dtype.kind if isinstance(c, Traced) else np.asarray(c).dtype.kind
        if kind != "b":
            raise UnsupportedError(f"invalid entry {i} in condlist: should be boolean ndarray")
    shapes = [np.shape(c) if not isinstance(c, Traced) else c.shape for c in conds]
    cshapes = [np.shape(c) if not isinstance(c, Traced) else c.shape for c in choices]
    try:
        shape = np.broadcast_shapes(np.broadcast_shapes(*shapes), np.broadcast_shapes(*cshapes))
    except ValueError as e:
        raise ShapeError(f"np.select: {e}") from None
    trace = _trace_of(condlist, choicelist, default)
    result = choices[-1]
    for cond, choice in zip(reversed(conds), reversed(choices[:-1])):
        if _trace_of(cond, choice, result) is None:
            result = np.where(cond, choice, result)
        else:
            result = ew.where(cond, choice, result)
    result = _as_traced(result, trace)
    if result.dtype != dtype:
        result = ew.astype(result, dtype=dtype)
    if tuple(result.shape) != tuple(shape):
        result = np.broadcast_to(result, shape)
    return result
