"""Products and matrix helpers with NumPy's semantics, as composites of primitives.

``dot inner vdot outer kron cross tensordot`` and ``trace diagonal diag triu tril``
(and the methods ``x.dot``, ``x.trace``, ``x.diagonal``).  Contractions become ``@``
(BLAS) where the operands allow, else transpose/reshape around one ``@``; a diagonal is
an einsum (``np.einsum("ii->i", x)``), whose gradient scatters back onto the diagonal;
``triu``/``tril`` select with a constant ``np.tri`` mask, so the gradient is masked too.
NumPy's errors for mismatched shapes are graphc ``ShapeError`` s (a ``ValueError``).
"""
from __future__ import annotations

import numpy as np

from ..errors import InPlaceError, ShapeError
from . import elementwise as ew
from ._numpy_table import Call, implements
from ._rules import _static_int, one_axis
from .composite import do_broadcast_to, do_reshape, do_transpose, hint, stack, sum as np_sum
from .einsum import einsum_op
from .linalg import matmul
from .shape import concatenate


def _arr(x):
    """A non-traced operand as NumPy's ``asarray`` makes it (a Python float is float64)."""
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)


def _no_out(out, what):
    if out is not None:
        raise InPlaceError(f"np.{what}(..., out=...) writes into an array in place; traced "
                           "arrays are immutable", hint=f"assign the result instead: "
                                                        f"y = np.{what}(...)")


def _not_aligned(a, b, ia, ib):
    return ShapeError(f"shapes {_txt(a.shape)} and {_txt(b.shape)} not aligned: "
                      f"{a.shape[ia]} (dim {ia}) != {b.shape[ib]} (dim {ib})",
                      hint="the last axis of the first operand must match the contracted "
                           "axis of the second")


def _txt(shape):
    return "(" + ",".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def _r(d, *shape, dtype=np.float64):
    return d.rnd(*shape, dtype=dtype)


# --- dot, inner, vdot, outer, tensordot ----------------------------------------------------
def _dot_samples(d):
    shapes = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
              ((3,), (2, 3, 4)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (1, 3, 2)), ((), (2, 3)),
              ((2, 3), ())]
    return [Call((_r(d, *a), _r(d, *b)), {}, f"{a}.{b}") for a, b in shapes] + [
        Call((_r(d, 2, 3, dtype=np.float32), _r(d, 3, dtype=np.float32)), {}, "f32"),
        Call((_r(d, 2, 3, dtype=np.float32), _r(d, 3)), {}, "f32.f64"),
        Call((d.ints(2, 3), d.ints(3, 2)), {}, "int")]


@implements(np.dot, samples=_dot_samples)
def dot(a, b, out=None):
    """NumPy's dot: a product for 0-d operands, ``@`` up to 2-d (and for a 1-d ``b`` or
    ``a``), else the sum over the last axis of ``a`` and the second-to-last of ``b``."""
    _no_out(out, "dot")
    a, b = _arr(a), _arr(b)
    if a.ndim == 0 or b.ndim == 0:
        return ew.mul(a, b)
    ib = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[ib]:
        raise _not_aligned(a, b, a.ndim - 1, ib)
    if b.ndim <= 2 or a.ndim == 1:
        return matmul(a, b)
    return hint(tensordot(a, b, ([a.ndim - 1], [ib])), "dot")


@implements(methods=("dot",), samples=_dot_samples)
def dot_method(self, other, /, out=None):
    """``x.dot(other)``: :func:`dot`."""
    return dot(self, other, out)


def _inner_samples(d):
    shapes = [((3,), (3,)), ((2, 3), (3,)), ((3,), (4, 3)), ((2, 3), (4, 3)), ((2, 1, 3), (2, 3)),
              ((), (2, 3))]
    return [Call((_r(d, *a), _r(d, *b)), {}, f"{a}.{b}") for a, b in shapes] + [
        Call((_r(d, 2, 3, dtype=np.float32), _r(d, 3, dtype=np.float32)), {}, "f32")]


@implements(np.inner, samples=_inner_samples)
def inner(a, b, /):
    """NumPy's inner: the sum over the last axes of ``a`` and ``b``."""
    a, b = _arr(a), _arr(b)
    if a.ndim == 0 or b.ndim == 0:
        return ew.mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise _not_aligned(a, b, a.ndim - 1, b.ndim - 1)
    if b.ndim == 1:
        return matmul(a, b)
    return hint(tensordot(a, b, ([a.ndim - 1], [b.ndim - 1])), "inner")


def _vdot_samples(d):
    return [Call((_r(d, 3), _r(d, 3)), {}, "1d"), Call((_r(d, 2, 3), _r(d, 3, 2)), {}, "2d-flat"),
            Call((_r(d, 4, dtype=np.float32), _r(d, 4, dtype=np.float32)), {}, "f32")]


@implements(np.vdot, samples=_vdot_samples)
def vdot(a, b, /):
    """NumPy's vdot (real inputs): the dot product of the flattened arrays."""
    a, b = _arr(a), _arr(b)
    if a.size != b.size:
        raise ShapeError(f"cannot reshape array of size {b.size} into shape ({a.size},)",
                         hint="np.vdot needs arrays with the same number of elements")
    return hint(matmul(do_reshape(a, -1), do_reshape(b, -1)), "vdot")


def _outer_samples(d):
    return [Call((_r(d, 3), _r(d, 4)), {}, "1d"), Call((_r(d, 2, 2), _r(d, 3)), {}, "flattens"),
            Call((_r(d, 3), 2.0), {}, "pyfloat", grad=False),
            Call((_r(d, 3, dtype=np.float32), _r(d, 2, dtype=np.float32)), {}, "f32")]


@implements(np.outer, samples=_outer_samples)
def outer(a, b, out=None):
    """NumPy's outer: ``a.ravel()[:, None] * b.ravel()[None, :]``."""
    _no_out(out, "outer")
    a, b = _arr(a), _arr(b)
    return hint(ew.mul(do_reshape(a, (-1, 1)), do_reshape(b, (1, -1))), "outer")


def _tensordot_samples(d):
    return [Call((_r(d, 2, 3, 4), _r(d, 3, 4, 2)), {}, "default-2"),
            Call((_r(d, 2, 3), _r(d, 3, 4)), {"axes": 1}, "int-1"),
            Call((_r(d, 2, 3), _r(d, 4)), {"axes": 0}, "int-0"),
            Call((_r(d, 2, 3, 4), _r(d, 4, 3, 2)), {"axes": ((1, 2), (1, 0))}, "seq-pairs"),
            Call((_r(d, 2, 3), _r(d, 4, 3)), {"axes": (1, 1)}, "int-pair"),
            Call((_r(d, 2, 3), _r(d, 3, 2)), {"axes": ([-1], [0])}, "negative"),
            Call((_r(d, 2, 3, dtype=np.float32), _r(d, 3, 2, dtype=np.float32)), {"axes": 1}, "f32")]


def _tensordot_axes(axes, nda, ndb):
    if isinstance(axes, (tuple, list)):
        if len(axes) != 2:
            raise ShapeError(f"tensordot: axes must be an int or a pair of axis lists, "
                             f"got {axes!r}")
        ax_a, ax_b = (list(x) if isinstance(x, (tuple, list)) else [x] for x in axes)
    else:
        n = _static_int(axes, "tensordot axes")
        ax_a, ax_b = list(range(-n, 0)), list(range(0, n))     # NumPy's rule (n < 0: none)
    if len(ax_a) != len(ax_b):
        raise ShapeError("shape-mismatch for sum")
    ax_a = [one_axis(x, nda) for x in ax_a]
    ax_b = [one_axis(x, ndb) for x in ax_b]
    if len(set(ax_a)) != len(ax_a) or len(set(ax_b)) != len(ax_b):
        raise ShapeError(f"tensordot: repeated axis in axes {axes!r}")
    return ax_a, ax_b


@implements(np.tensordot, samples=_tensordot_samples)
def tensordot(a, b, axes=2):
    """NumPy's tensordot (``axes`` an int, a pair of ints or a pair of sequences): the
    summed axes are moved together and contracted with one ``@``."""
    a, b = _arr(a), _arr(b)
    ax_a, ax_b = _tensordot_axes(axes, a.ndim, b.ndim)
    sa, sb = a.shape, b.shape
    if any(sa[i] != sb[j] for i, j in zip(ax_a, ax_b)):
        raise ShapeError("shape-mismatch for sum",
                         hint=f"tensordot sums axes {ax_a} of {_txt(sa)} against axes {ax_b} "
                              f"of {_txt(sb)}: their sizes must be equal")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    k = int(np.prod([sa[i] for i in ax_a], dtype=np.int64))
    a2 = do_reshape(do_transpose(a, tuple(free_a + ax_a)), (-1, k))
    b2 = do_reshape(do_transpose(b, tuple(ax_b + free_b)), (k, -1))
    out_shape = tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b)
    return hint(do_reshape(matmul(a2, b2), out_shape), "tensordot")


# --- kron, cross ------------------------------------------------------------------------
def _kron_samples(d):
    shapes = [((2,), (3,)), ((2, 2), (3, 2)), ((2,), (2, 3)), ((2, 1, 2), (2, 2)), ((), (3,))]
    return [Call((_r(d, *a), _r(d, *b)), {}, f"{a}x{b}") for a, b in shapes] + [
        Call((_r(d, 2, 2, dtype=np.float32), _r(d, 2, dtype=np.float32)), {}, "f32")]


@implements(np.kron, samples=_kron_samples)
def kron(a, b):
    """NumPy's kron: block ``(i, j)`` of the result is ``a[i, j] * b`` (any ndim)."""
    a, b = _arr(a), _arr(b)
    if a.ndim == 0 or b.ndim == 0:
        return ew.mul(a, b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    a2 = do_reshape(a, tuple(x for d in sa for x in (d, 1)))
    b2 = do_reshape(b, tuple(x for d in sb for x in (1, d)))
    return hint(do_reshape(ew.mul(a2, b2), tuple(x * y for x, y in zip(sa, sb))), "kron")


def _cross_samples(d):
    return [Call((_r(d, 3), _r(d, 3)), {}, "3x3"), Call((_r(d, 4, 3), _r(d, 3)), {}, "bcast"),
            Call((_r(d, 2), _r(d, 3)), {}, "2x3"), Call((_r(d, 3, 2), _r(d, 3, 2)),
                                                         {"axisa": 0, "axisb": 0}, "axisa/b"),
            Call((_r(d, 3, 2), _r(d, 3, 2)), {"axis": 0}, "axis"),
            Call((_r(d, 2, 3), _r(d, 2, 3)), {"axisc": 0}, "axisc"),
            Call((_r(d, 3, dtype=np.float32), _r(d, 3, dtype=np.float32)), {}, "f32")]


@implements(np.cross, samples=_cross_samples)
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """NumPy's cross product of 2- or 3-vectors along ``axisa``/``axisb`` (``axis`` sets all
    three); two 2-vectors give the z component, as NumPy does."""
    a, b = _arr(a), _arr(b)
    if axis is not None:
        axisa, axisb, axisc = (axis,) * 3
    a = _moveaxis_last(a, one_axis(axisa, a.ndim, "axisa"))
    b = _moveaxis_last(b, one_axis(axisb, b.ndim, "axisb"))
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ShapeError("incompatible dimensions for cross product\n"
                         "(dimension must be 2 or 3)")
    if a.shape[-1] == 2 or b.shape[-1] == 2:
        import warnings
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=3)
    np.broadcast_shapes(a.shape[:-1], b.shape[:-1])       # NumPy's error when they do not
    a0, a1, b0, b1 = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    z = ew.sub(ew.mul(a0, b1), ew.mul(a1, b0))
    if a.shape[-1] == 2 and b.shape[-1] == 2:
        return hint(z, "cross")
    a2 = a[..., 2] if a.shape[-1] == 3 else None
    b2 = b[..., 2] if b.shape[-1] == 3 else None
    x = ew.mul(a1, b2) if a2 is None else ew.mul(ew.neg(a2), b1) if b2 is None else \
        ew.sub(ew.mul(a1, b2), ew.mul(a2, b1))
    y = ew.mul(a2, b0) if b2 is None else ew.mul(ew.neg(a0), b2) if a2 is None else \
        ew.sub(ew.mul(a2, b0), ew.mul(a0, b2))
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    c = stack([do_broadcast_to(p, shape) for p in (x, y, z)], axis=-1)
    return hint(_moveaxis_from_last(c, one_axis(axisc, c.ndim, "axisc")), "cross")


def _moveaxis_last(x, ax):
    order = tuple(i for i in range(x.ndim) if i != ax) + (ax,)
    return do_transpose(x, order)


def _moveaxis_from_last(x, ax):
    order = list(range(x.ndim - 1))
    order.insert(ax, x.ndim - 1)
    return do_transpose(x, tuple(order))


# --- diagonal, trace, diag, triu, tril ----------------------------------------------------
def _diagonal_samples(d):
    return [Call((_r(d, 3, 3),), {}, "square"), Call((_r(d, 3, 4),), {"offset": 1}, "offset1"),
            Call((_r(d, 4, 3),), {"offset": -2}, "offset-2"),
            Call((_r(d, 3, 3),), {"offset": 5}, "offset-past"),
            Call((_r(d, 2, 3, 4),), {"axis1": 1, "axis2": 2}, "3d-12"),
            Call((_r(d, 2, 3, 4),), {"offset": 1, "axis1": -1, "axis2": 0}, "3d-swapped"),
            Call((_r(d, 3, 3, dtype=np.float32),), {}, "f32"),
            Call((d.ints(3, 3),), {}, "int")]


@implements(np.diagonal, methods=("diagonal",), samples=_diagonal_samples)
def diagonal(a, offset=0, axis1=0, axis2=1):
    """NumPy's diagonal: the (offset) diagonal of the ``axis1``/``axis2`` planes, as the
    last axis.  An einsum (``"ii->i"``); its gradient scatters back onto the diagonal."""
    a = _arr(a)
    if a.ndim < 2:
        raise ShapeError("diag requires an array of at least two dimensions")
    ax1, ax2 = one_axis(axis1, a.ndim, "axis1"), one_axis(axis2, a.ndim, "axis2")
    if ax1 == ax2:
        raise ShapeError("axis1 and axis2 cannot be the same")
    k = _static_int(offset, "offset")
    n1, n2 = a.shape[ax1], a.shape[ax2]
    n = max(0, min(n1, n2 - k) if k >= 0 else min(n1 + k, n2))
    start1, start2 = (0, k) if k >= 0 else (-k, 0)
    if (n, n) != (n1, n2):
        idx = [slice(None)] * a.ndim
        idx[ax1], idx[ax2] = slice(start1, start1 + n), slice(start2, start2 + n)
        a = a[tuple(idx)]
    labels = list(range(26, 26 + a.ndim))       # a, b, c, ...
    labels[ax2] = labels[ax1]
    out = tuple(lab for i, lab in enumerate(labels) if i not in (ax1, ax2)) + (labels[ax1],)
    return hint(einsum_op(a, spec=(tuple(labels), out)), "diagonal")


def _trace_samples(d):
    return [Call((_r(d, 3, 3),), {}, "square"), Call((_r(d, 3, 4),), {"offset": 1}, "offset"),
            Call((_r(d, 2, 3, 3),), {"axis1": 1, "axis2": 2}, "3d"),
            Call((_r(d, 3, 4, 2),), {"offset": -1, "axis1": 1, "axis2": 0}, "3d-neg"),
            Call((_r(d, 3, 3, dtype=np.float32),), {}, "f32"),
            Call((_r(d, 3, 3, dtype=np.float32),), {"dtype": np.float64}, "dtype"),
            Call((d.ints(3, 3).astype(np.int8),), {}, "int8")]


@implements(np.trace, methods=("trace",), samples=_trace_samples)
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """NumPy's trace: the sum of :func:`diagonal` (NumPy's accumulation dtype)."""
    _no_out(out, "trace")
    return hint(np_sum(diagonal(a, offset, axis1, axis2), -1, False, dtype), "trace")


def _diag_samples(d):
    return [Call((_r(d, 3),), {}, "1d"), Call((_r(d, 3),), {"k": 2}, "1d-k2"),
            Call((_r(d, 3),), {"k": -1}, "1d-k-1"), Call((_r(d, 3, 4),), {}, "2d"),
            Call((_r(d, 3, 4),), {"k": -1}, "2d-k-1"),
            Call((_r(d, 3, dtype=np.float32),), {"k": 1}, "f32"),
            Call((d.ints(3),), {}, "int")]


@implements(np.diag, samples=_diag_samples)
def diag(v, k=0):
    """NumPy's diag: the ``k``-th diagonal of a 2-d ``v``, or a 2-d array with a 1-d ``v``
    on its ``k``-th diagonal (chosen by a constant mask, so ``inf`` stays off the rest)."""
    v = _arr(v)
    k = _static_int(k, "k")
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ShapeError("Input must be 1- or 2-d.")
    n = v.shape[0] + abs(k)
    if k:
        v = concatenate(v, np.zeros(abs(k), v.dtype), axis=0)
    v = do_reshape(v, (n, 1) if k >= 0 else (1, n))
    mask = np.eye(n, k=k, dtype=bool)
    return hint(ew.where(mask, v, np.zeros((), v.dtype)), "diag")


def _tri_samples(d):
    return [Call((_r(d, 3, 3),), {}, "square"), Call((_r(d, 3, 4),), {"k": 1}, "k1"),
            Call((_r(d, 4, 3),), {"k": -1}, "k-1"), Call((_r(d, 2, 3, 3),), {}, "batched"),
            Call((_r(d, 3),), {}, "1d"), Call((_r(d, 3, 3, dtype=np.float32),), {}, "f32"),
            Call((d.ints(3, 3),), {"k": 1}, "int")]


def _tri_mask(m, k):
    if m.ndim == 0:
        raise ShapeError("np.triu/np.tril need an array of at least 1 dimension, got 0-d")
    return np.tri(*m.shape[-2:], k=k, dtype=bool)


@implements(np.tril, samples=_tri_samples)
def tril(m, k=0):
    """NumPy's tril: zeros above the ``k``-th diagonal (a constant ``np.tri`` mask)."""
    m = _arr(m)
    return hint(ew.where(_tri_mask(m, _static_int(k, "k")), m, np.zeros((), m.dtype)), "tril")


@implements(np.triu, samples=_tri_samples)
def triu(m, k=0):
    """NumPy's triu: zeros below the ``k``-th diagonal (a constant ``np.tri`` mask)."""
    m = _arr(m)
    mask = _tri_mask(m, _static_int(k, "k") - 1)
    return hint(ew.where(mask, np.zeros((), m.dtype), m), "triu")


# --- the array-API spellings in np.linalg (and the np.vecdot ufunc) -----------------------
def _pair_samples(*shape_pairs, **kw):
    def samples(d):
        return [Call((_r(d, *a), _r(d, *b)), kw, f"{a},{b}") for a, b in shape_pairs] + [
            Call((_r(d, *shape_pairs[0][0], dtype=np.float32),
                  _r(d, *shape_pairs[0][1], dtype=np.float32)), kw, "f32")]
    return samples


@implements(np.linalg.outer, samples=_pair_samples(((3,), (4,))))
def linalg_outer(x1, x2, /):
    """``np.linalg.outer``: :func:`outer` of two 1-d arrays."""
    x1, x2 = _arr(x1), _arr(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise ShapeError(f"Input arrays must be one-dimensional, but they are "
                         f"x1.ndim={x1.ndim} and x2.ndim={x2.ndim}.")
    return outer(x1, x2)


@implements(np.linalg.matmul, samples=_pair_samples(((2, 3, 4), (4, 2)), ((4,), (4,))))
def linalg_matmul(x1, x2, /):
    """``np.linalg.matmul``: ``x1 @ x2``."""
    return matmul(_arr(x1), _arr(x2))


@implements(np.linalg.tensordot, samples=_pair_samples(((2, 3), (3, 4)), axes=1))
def linalg_tensordot(x1, x2, /, *, axes=2):
    """``np.linalg.tensordot``: :func:`tensordot`."""
    return tensordot(x1, x2, axes)


@implements(np.linalg.trace, samples=lambda d: [
    Call((_r(d, 3, 3),), {}, "2d"), Call((_r(d, 2, 3, 4),), {"offset": 1}, "batched"),
    Call((d.ints(2, 2).astype(np.int8),), {}, "int8"),
    Call((_r(d, 3, 3, dtype=np.float32),), {"dtype": np.float64}, "dtype")])
def linalg_trace(x, /, *, offset=0, dtype=None):
    """``np.linalg.trace``: the trace over the last two axes."""
    return trace(x, offset, -2, -1, dtype)


@implements(np.linalg.diagonal, samples=lambda d: [
    Call((_r(d, 3, 3),), {}, "2d"), Call((_r(d, 2, 3, 4),), {"offset": -1}, "batched")])
def linalg_diagonal(x, /, *, offset=0):
    """``np.linalg.diagonal``: the diagonal of the last two axes."""
    return diagonal(x, offset, -2, -1)


@implements(np.linalg.cross, samples=lambda d: [
    Call((_r(d, 4, 3), _r(d, 3)), {}, "bcast"), Call((_r(d, 3, 2), _r(d, 3, 2)), {"axis": 0}, "axis0"),
    Call((_r(d, 3, dtype=np.float32), _r(d, 3, dtype=np.float32)), {}, "f32")])
def linalg_cross(x1, x2, /, *, axis=-1):
    """``np.linalg.cross``: :func:`cross` of 3-vectors only."""
    x1, x2 = _arr(x1), _arr(x2)
    for x in (x1, x2):
        one_axis(axis, x.ndim)
    if x1.shape[axis] != 3 or x2.shape[axis] != 3:
        raise ShapeError("Both input arrays must be (arrays of) 3-dimensional vectors, but they "
                         f"are {x1.shape[axis]} and {x2.shape[axis]} dimensional instead.")
    return cross(x1, x2, axis=axis)


@implements(np.linalg.vecdot, samples=_pair_samples(((2, 3), (3,)), ((4, 1, 3), (2, 3))))
def linalg_vecdot(x1, x2, /, *, axis=-1):
    """``np.linalg.vecdot`` (real inputs): the dot product along ``axis``, broadcasting the
    other axes, as one einsum (``"...i,...i->..."``)."""
    x1, x2 = _arr(x1), _arr(x2)
    x1 = _moveaxis_last(x1, one_axis(axis, x1.ndim))
    x2 = _moveaxis_last(x2, one_axis(axis, x2.ndim))
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"vecdot: the summed axes differ in size ({x1.shape[-1]} != "
                         f"{x2.shape[-1]})")
    from .einsum import contract, parse_spec
    return hint(contract([x1, x2], parse_spec("...i,...i->...", [x1.shape, x2.shape])), "vecdot")


@implements(np.vecdot, samples=_pair_samples(((2, 3), (3,))))
def vecdot(x1, x2):
    """The ``np.vecdot`` ufunc over the last axis (``axis=``/``axes=`` are not supported)."""
    return linalg_vecdot(x1, x2)
