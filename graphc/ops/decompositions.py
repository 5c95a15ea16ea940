"""Dense linear algebra: ``np.linalg.inv solve det slogdet cholesky matrix_power``.

Batched over leading dimensions as NumPy is, in float32 and float64 (integer and
boolean inputs compute in float64, as NumPy does; float16 and complex are refused as
NumPy refuses float16).  ``inv``, ``solve``, ``det``, ``slogdet`` and ``cholesky`` are
primitives that emit NumPy's own call (a singular matrix raises NumPy's LinAlgError at
run time); their gradient rules are written in graphc ops, so they differentiate again.
``matrix_power`` is a composite of matmuls (and ``inv`` for a negative power).
"""
from __future__ import annotations

import operator

import numpy as np
import sympy as sp

from ..errors import ShapeError, UnsupportedError
from ..primitive import Aval, primitive
from . import _samples as S
from ._numpy_table import Call, implements
from .linalg import matmul
from .shape import reshape, transpose, unbroadcast


class LinAlgError(ShapeError, np.linalg.LinAlgError):
    """An array ``np.linalg`` refuses for its shape (not 2-d, not square), found while
    tracing: a graphc ``ShapeError`` that is also NumPy's ``numpy.linalg.LinAlgError``."""

    default_hint = "np.linalg takes (..., M, M) stacks of square matrices"


# --- shared rules -----------------------------------------------------------------------
def _check_square(x, what):
    """NumPy's checks on a stack of square matrices (aval or array), in NumPy's order."""
    if x.ndim < 2:
        raise LinAlgError(f"np.linalg.{what}: {x.ndim}-dimensional array given. "
                          "Array must be at least two-dimensional")
    if x.shape[-1] != x.shape[-2]:
        raise LinAlgError(f"np.linalg.{what}: Last 2 dimensions of the array must be square "
                          f"(got shape {tuple(x.shape)})")


def _check_float(*avals, what):
    for a in avals:
        if a.dtype not in (np.float32, np.float64) or a.dtype != avals[0].dtype:
            raise UnsupportedError(f"the {what} primitive takes float32 or float64 operands "
                                   "of one dtype, got " + ", ".join(v.short() for v in avals))


def _square_rule(what, out_shape):
    def rule(a, **params):
        _check_square(a, what)
        _check_float(a, what=what)
        return Aval(out_shape(a.shape), a.dtype, False)
    return rule


def _mT(a):
    """Transpose of the last two axes."""
    return transpose(a, axes=tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))


def _batch(shape):
    return int(np.prod(shape[:-2], dtype=np.int64))


def _cubic_flops(factor):
    def flops(out, a, *rest, **params):
        n = a.shape[-1]
        extra = sum(2 * n * n * (b.shape[-1] if b.ndim > 1 else 1) for b in rest)
        batch = max(_batch(out.shape if out.ndim >= 2 else a.shape), 1)
        return int(batch * (factor * n ** 3 + extra))
    return flops


def _obj(x):
    return np.asarray(x, dtype=object)


def _sym_each(fn, a, core):
    """``fn`` (sympy Matrix -> object array of ``core`` dims) over the leading axes of ``a``."""
    a = _obj(a)
    batch = a.shape[:-2]
    out = np.empty(batch + core(a.shape[-2:]), dtype=object)
    for idx in np.ndindex(*batch):
        out[idx] = fn(sp.Matrix(a[idx]))
    return out


def _as_obj(m):
    return np.array(m.tolist(), dtype=object)


# --- inv --------------------------------------------------------------------------------
def _inv_vjp(ct, a, *, out):
    # d(A^-1) = -A^-1 dA A^-1, so dA = -A^-T ct A^-T (the inverse is the output).
    out_t = _mT(out)
    return (-(out_t @ ct @ out_t),)


def _inv_samples(d):
    inv = np.linalg.inv
    return [S.Sample((_well(d, 3),), {}, inv, "f64(3,3)"),
            S.Sample((_well(d, 2, 3, 3),), {}, inv, "f64(2,3,3)"),
            S.Sample((_well(d, 3, dtype=S.F32),), {}, inv, "f32(3,3)"),
            S.Sample((_well(d, 2, 1, 2, 2, dtype=S.F32),), {}, inv, "f32(2,1,2,2)"),
            S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]),), {}, inv, "2x2", proof=True)]


def _well(d, *shape, dtype=S.F64):
    """A well-conditioned (not symmetric) matrix stack: n*I plus a random part."""
    n = shape[-1]
    return (d.rnd(*shape) + n * np.eye(n)).astype(dtype)


def _spd(d, *shape, dtype=S.F64):
    """A symmetric positive definite stack B B^T + n*I."""
    n = shape[-1]
    b = d.rnd(*shape)
    return (b @ np.swapaxes(b, -1, -2) + n * np.eye(n)).astype(dtype)


inv = primitive(
    name="inv", samples=_inv_samples, shape=_square_rule("inv", lambda s: s),
    numpy="np.linalg.inv({0})", vjp=_inv_vjp,
    sympy=lambda a: _sym_each(lambda m: _as_obj(m.inv()), a, lambda c: c),
    label="inv", family="linalg", flops=_cubic_flops(2), fresh_result=True,
    nonfinite_hint="the matrix is (nearly) singular: use np.linalg.solve(a, b) instead of "
                   "inv(a) @ b, or regularize (a + eps * np.eye(n))",
    doc="Inverse of each matrix; gradient -A^-T ct A^-T.  A singular matrix raises NumPy's "
        "LinAlgError at run time (forward and backward).")


# --- solve ------------------------------------------------------------------------------
def _solve_shape(a_shape, b_shape):
    """NumPy 2's rule: b is a vector when 1-d, else a stack of (M, K) matrices."""
    m = a_shape[-1]
    if len(b_shape) == 1:
        if b_shape[0] != m:
            raise ShapeError(f"np.linalg.solve: b has {b_shape[0]} rows, a is {m}x{m} "
                             f"(shapes {tuple(a_shape)} and {tuple(b_shape)})")
        return tuple(a_shape[:-1])
    if len(b_shape) == 0 or b_shape[-2] != m:
        raise ShapeError(f"np.linalg.solve: b of shape {tuple(b_shape)} does not fit a of shape "
                         f"{tuple(a_shape)} (b must be (M,) or (..., M, K) with M = {m})",
                         hint="a 1-d b is one vector; a batch of vectors is b[..., None]")
    try:
        batch = np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2]))
    except ValueError:
        raise ShapeError(f"np.linalg.solve: batch dimensions of {tuple(a_shape)} and "
                         f"{tuple(b_shape)} do not broadcast") from None
    return tuple(batch) + (m, b_shape[-1])


def _solve_rule(a, b):
    _check_square(a, "solve")
    _check_float(a, b, what="solve")
    return Aval(_solve_shape(a.shape, b.shape), a.dtype, False)


def _solve_vjp(ct, a, b, *, out):
    # x = A^-1 b:  db = A^-T ct,  dA = -db x^T (a vector b is a one-column matrix here).
    if b.ndim == 1:
        ct = reshape(ct, shape=tuple(ct.shape) + (1,))
        out = reshape(out, shape=tuple(out.shape) + (1,))
    db = solve(_mT(a), ct)
    da = unbroadcast(-(db @ _mT(out)), tuple(a.shape))
    if b.ndim == 1:
        db = reshape(db, shape=tuple(db.shape[:-1]))
    return da, unbroadcast(db, tuple(b.shape))


def _sym_solve(a, b):
    a, b = _obj(a), _obj(b)
    vector = b.ndim == 1
    b2 = b[:, None] if vector else b
    batch = tuple(np.broadcast_shapes(a.shape[:-2], b2.shape[:-2]))
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b2 = np.broadcast_to(b2, batch + b2.shape[-2:])
    out = np.empty(batch + b2.shape[-2:], dtype=object)
    for idx in np.ndindex(*batch):
        out[idx] = _as_obj(sp.Matrix(a[idx]).LUsolve(sp.Matrix(b2[idx])))
    return out[..., 0] if vector else out


def _solve_samples(d):
    sv = np.linalg.solve
    pairs = [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3, 1)),
             ((2, 3, 3), (3, 4)), ((3, 3), (2, 3, 2)), ((1, 2, 2), (3, 1, 2, 2))]
    out = [S.Sample((_well(d, *a), d.rnd(*b)), {}, sv, f"{a}\\{b}") for a, b in pairs]
    return out + [S.Sample((_well(d, 2, 3, 3, dtype=S.F32), d.rnd(2, 3, 2, dtype=S.F32)), {}, sv,
                           "f32"),
                  S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]), np.array([0.5, 1.25])), {}, sv,
                           "2x2\\2", proof=True)]


solve = primitive(
    name="solve", samples=_solve_samples, shape=_solve_rule, numpy="np.linalg.solve({0}, {1})",
    vjp=_solve_vjp, sympy=_sym_solve, label="solve", family="linalg",
    flops=_cubic_flops(2 / 3), fresh_result=True,
    doc="x with a @ x = b (b a vector when 1-d, else a stack of matrices, as NumPy 2); "
        "gradients db = solve(a^T, ct), da = -db x^T.  A singular a raises NumPy's LinAlgError.")


# --- det / slogdet ------------------------------------------------------------------------
def _grad_from_det(scale, a):
    """``scale[..., None, None] * A^-T``: d(det)/dA = det A^-T, d(log|det|)/dA = A^-T."""
    batch = tuple(a.shape[:-2])
    return reshape(scale, shape=batch + (1, 1)) * _mT(inv(a))


def _det_samples(d):
    det = np.linalg.det
    return [S.Sample((_well(d, 3),), {}, det, "f64(3,3)"),
            S.Sample((d.rnd(2, 3, 3),), {}, det, "f64(2,3,3)"),
            S.Sample((_well(d, 4, dtype=S.F32),), {}, det, "f32(4,4)"),
            S.Sample((_well(d, 2, 2, 2, 2, dtype=S.F32),), {}, det, "f32(2,2,2,2)"),
            S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]),), {}, det, "2x2", proof=True)]


det = primitive(
    name="det", samples=_det_samples, shape=_square_rule("det", lambda s: tuple(s[:-2])),
    numpy="np.linalg.det({0})", vjp=lambda ct, a, *, out: (_grad_from_det(ct * out, a),),
    sympy=lambda a: _sym_each(lambda m: m.det(), a, lambda c: ()),
    label="det", family="linalg", flops=_cubic_flops(2 / 3),
    nonfinite_hint="det over- or underflows for large matrices: use np.linalg.slogdet",
    doc="Determinant of each matrix; gradient ct * det(A) * A^-T.  At a singular A the "
        "backward pass raises NumPy's LinAlgError (JAX returns the adjugate there).")


def _slogdet_vjp(ct, a, *, out):
    from .index import static_slice
    # sign is piecewise constant: only the cotangent of logabsdet (row 1) flows back.
    d_logabs = reshape(static_slice(ct, 0, 1, 2), shape=tuple(ct.shape[1:]))
    return (_grad_from_det(d_logabs, a),)


def _sym_slogdet(a):
    dets = _sym_each(lambda m: m.det(), a, lambda c: ())
    sign = np.vectorize(sp.sign, otypes=[object])(dets)
    logabs = np.vectorize(lambda v: sp.log(sp.Abs(v)), otypes=[object])(dets)
    return np.stack([sign, logabs])


def _stacked_slogdet(a):
    return np.stack(np.linalg.slogdet(a))


def _slogdet_samples(d):
    neg = np.array([[0.5, 2.0], [1.5, 0.25]])          # det < 0: sign -1
    return [S.Sample((_well(d, 3),), {}, _stacked_slogdet, "f64(3,3)"),
            S.Sample((d.rnd(2, 3, 3),), {}, _stacked_slogdet, "f64(2,3,3)"),
            S.Sample((neg,), {}, _stacked_slogdet, "negative-det", proof=True),
            S.Sample((_well(d, 4, dtype=S.F32),), {}, _stacked_slogdet, "f32(4,4)"),
            S.Sample((_well(d, 2, 3, 3, dtype=S.F32),), {}, _stacked_slogdet, "f32(2,3,3)")]


slogdet = primitive(
    name="slogdet", samples=_slogdet_samples,
    shape=_square_rule("slogdet", lambda s: (2,) + tuple(s[:-2])),
    numpy="np.stack(np.linalg.slogdet({0}))", vjp=_slogdet_vjp, sympy=_sym_slogdet,
    label="slogdet", family="linalg", flops=_cubic_flops(2 / 3),
    nonfinite_hint="the matrix is singular: its logabsdet is -inf (and sign 0)",
    doc="np.stack(np.linalg.slogdet(a)): row 0 the sign, row 1 log|det|; gradient "
        "ct[1] * A^-T (the sign gets none).  np.linalg.slogdet returns the two rows.")


# --- cholesky -----------------------------------------------------------------------------
def _phi(n, dtype):
    """Weights of the lower triangle with the diagonal halved: Phi(X) = X * _phi(n)."""
    return (np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)).astype(dtype)


def _cholesky_lower_vjp(ct, l):
    # Murray (2016): with S = L^-T Phi(L^T tril(ct)) L^-1, the derivative along a symmetric
    # perturbation is <S, dA>.  NumPy reads only the lower triangle of a, so dA[i, j] for
    # i > j moves both A[i, j] and A[j, i]: the gradient is Phi(S + S^T), lower-triangular.
    n = l.shape[-1]
    lower = np.tril(np.ones((n, n))).astype(l.dtype)
    p = (_mT(l) @ (ct * lower)) * _phi(n, l.dtype)
    lt = _mT(l)
    s_t = solve(lt, _mT(solve(lt, p)))          # L^-T (L^-T P)^T = S^T
    return (s_t + _mT(s_t)) * _phi(n, l.dtype)


def _cholesky_vjp(ct, a, *, out, upper):
    if upper:      # U = cholesky(A^T)^T (the upper triangle of A is read)
        return (_mT(_cholesky_lower_vjp(_mT(ct), _mT(out))),)
    return (_cholesky_lower_vjp(ct, out),)


def _sym_cholesky_lower(m):
    """Cholesky-Banachiewicz on the lower triangle of ``m`` (what LAPACK's potrf 'L' reads)."""
    n = m.rows
    out = np.zeros((n, n), dtype=object)
    out[...] = sp.Integer(0)
    for i in range(n):
        for j in range(i + 1):
            s = m[i, j] - sum(out[i, k] * out[j, k] for k in range(j))
            out[i, j] = sp.sqrt(s) if i == j else s / out[j, j]
    return out


def _sym_cholesky(a, *, upper):
    a = _obj(a)
    if upper:
        a = np.swapaxes(a, -1, -2)
    out = _sym_each(lambda m: _sym_cholesky_lower(m), a, lambda c: c)
    return np.swapaxes(out, -1, -2) if upper else out


def _cholesky_samples(d):
    def ref(upper):
        return lambda a: np.linalg.cholesky(a, upper=upper)
    spd2 = np.array([[2.0, 0.5], [0.5, 1.5]])
    return [S.Sample((_spd(d, 3, 3),), {"upper": False}, ref(False), "f64(3,3)"),
            S.Sample((_spd(d, 2, 3, 3),), {"upper": False}, ref(False), "f64(2,3,3)"),
            S.Sample((_spd(d, 2, 3, 3),), {"upper": True}, ref(True), "upper-f64(2,3,3)"),
            S.Sample((_spd(d, 4, 4, dtype=S.F32),), {"upper": False}, ref(False), "f32(4,4)"),
            S.Sample((_spd(d, 2, 3, 3, dtype=S.F32),), {"upper": True}, ref(True), "upper-f32"),
            S.Sample((spd2,), {"upper": False}, ref(False), "2x2", proof=True)]


cholesky = primitive(
    name="cholesky", samples=_cholesky_samples,
    shape=_square_rule("cholesky", lambda s: s),
    numpy=lambda e, *, upper: (f"np.linalg.cholesky({e.args[0]}, upper=True)" if upper
                               else f"np.linalg.cholesky({e.args[0]})"),
    vjp=_cholesky_vjp, sympy=_sym_cholesky, label="cholesky",
    label_detail=lambda p: "upper" if p.get("upper") else None,
    family="linalg", flops=_cubic_flops(1 / 3), fresh_result=True,
    doc="Cholesky factor (lower L, or upper U with upper=True), reading one triangle of a as "
        "NumPy does; gradient Phi(S + S^T) with S = L^-T Phi(L^T ct) L^-1 (Murray 2016), "
        "Phi = lower triangle with the diagonal halved: the gradient is triangular, and along "
        "symmetric perturbations equals JAX's symmetrized one.  A matrix that is not positive "
        "definite raises NumPy's LinAlgError at run time.")


# --- the NumPy functions ------------------------------------------------------------------
def _linalg_dtype(*xs):
    """NumPy's linalg result dtype (``_commonType``): float64 if any operand is float64 or
    not floating, else float32; float16 and longdouble are NumPy's TypeError."""
    out = np.dtype(np.float32)
    for x in xs:
        dt = np.dtype(x.dtype)
        if dt.kind == "c":
            raise UnsupportedError("complex arrays are not supported by graphc",
                                   hint="split real and imaginary parts into float arrays")
        if dt.kind != "f" or dt == np.float64:
            out = np.dtype(np.float64)
        elif dt != np.float32:
            raise UnsupportedError(f"array type {dt.name} is unsupported in linalg",
                                   hint="cast to float32 or float64: a.astype(np.float32)")
    return out


def _array(x):
    return x if hasattr(x, "aval") else np.asarray(x)


def _cast(x, dtype):
    from .composite import astype
    return astype(x, dtype) if hasattr(x, "aval") else np.asarray(x, dtype=dtype)


def _square_operand(a, what):
    a = _array(a)
    _check_square(a, what)
    return _cast(a, _linalg_dtype(a))


def _well_calls(shapes, grad=True):
    def samples(d):
        calls = [Call((_well(d, *s),), {}, f"f64{s}", grad) for s in shapes]
        return calls + [Call((_well(d, 2, 3, 3, dtype=S.F32),), {}, "f32(2,3,3)", grad),
                        Call((np.array([[2, 1], [1, 3]]),), {}, "int64(2,2)", grad)]
    return samples


@implements(np.linalg.inv, samples=_well_calls([(3, 3), (2, 3, 3), (2, 1, 2, 2)]))
def linalg_inv(a):
    """Inverse of each matrix of a (..., M, M) stack (``inv`` primitive)."""
    return inv(_square_operand(a, "inv"))


def _solve_calls(d):
    pairs = [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3, 1)),
             ((3, 3), (2, 3, 4)), ((1, 3, 3), (2, 3, 2))]
    calls = [Call((_well(d, *a), d.rnd(*b)), {}, f"{a}\\{b}") for a, b in pairs]
    return calls + [
        Call((_well(d, 2, 3, 3, dtype=S.F32), d.rnd(2, 3, 2).astype(S.F32)), {}, "f32"),
        Call((_well(d, 3, 3, dtype=S.F32), d.rnd(3)), {}, "f32\\f64"),
        Call((np.array([[3, 1], [1, 2]]), d.rnd(2)), {}, "int\\f64"),
        Call((_well(d, 3, 3), np.array([1, 2, 3])), {}, "f64\\int")]


@implements(np.linalg.solve, samples=_solve_calls)
def linalg_solve(a, b):
    """x with ``a @ x == b``; b is one vector when 1-d, else a stack of (M, K) matrices."""
    a, b = _array(a), _array(b)
    _check_square(a, "solve")
    dtype = _linalg_dtype(a, b)
    return solve(_cast(a, dtype), _cast(b, dtype))


def _det_calls(d):
    return _well_calls([(3, 3), (2, 3, 3), (4, 4)])(d) + [
        Call((d.rnd(2, 2, 3, 3),), {}, "random(2,2,3,3)")]


@implements(np.linalg.det, samples=_det_calls)
def linalg_det(a):
    """Determinant of each matrix of a (..., M, M) stack (``det`` primitive)."""
    return det(_square_operand(a, "det"))


class SlogdetResult(tuple):
    """``(sign, logabsdet)`` with NumPy's attribute names; a plain tuple to graphc's pytrees
    (a compiled function returning it returns a tuple)."""

    __slots__ = ()

    @property
    def sign(self):
        return self[0]

    @property
    def logabsdet(self):
        return self[1]


def _slogdet_calls(d):
    # a tuple result: the gradient of logabsdet is tested in tests/test_np_linalg.py
    return _well_calls([(3, 3), (2, 3, 3)], grad=False)(d) + [
        Call((d.rnd(2, 4, 4),), {}, "random-signs", grad=False)]


@implements(np.linalg.slogdet, samples=_slogdet_calls)
def linalg_slogdet(a):
    """``(sign, logabsdet)`` of each matrix: one ``slogdet`` node (the two stacked), then
    its two rows.  Only logabsdet has a gradient (A^-T); the sign is piecewise constant."""
    both = slogdet(_square_operand(a, "slogdet"))
    return SlogdetResult((both[0], both[1]))


def _cholesky_calls(d):
    calls = [Call((_spd(d, *s),), kw, f"f64{s}{kw or ''}")
             for s, kw in [((3, 3), {}), ((2, 3, 3), {}), ((2, 3, 3), {"upper": True}),
                           ((1, 2, 2), {"upper": False})]]
    return calls + [Call((_spd(d, 2, 3, 3, dtype=S.F32),), {}, "f32(2,3,3)"),
                    Call((np.array([[4, 2], [2, 3]]),), {}, "int64(2,2)")]


@implements(np.linalg.cholesky, samples=_cholesky_calls)
def linalg_cholesky(a, /, *, upper=False):
    """Cholesky factor of each symmetric positive definite matrix (``cholesky`` primitive).

    As NumPy, only the lower triangle of ``a`` is read (the upper with ``upper=True``), so
    the gradient is triangular; for an ``a`` built symmetric (``B @ B.T``) the chain rule
    gives the same gradient as JAX's symmetrized rule.
    """
    return cholesky(_square_operand(a, "cholesky"), upper=bool(upper))


def _power_calls(d):
    calls = [Call((_well(d, 3, 3) / 3, n), {}, f"f64(3,3)^{n}") for n in (0, 1, 2, 3, 5, 6, -1, -3)]
    return calls + [Call((_well(d, 2, 3, 3) / 3, 4), {}, "f64(2,3,3)^4"),
                    Call((_well(d, 2, 3, 3, dtype=S.F32) / 3, 3), {}, "f32^3"),
                    Call((_well(d, 2, 2, 2, dtype=S.F32) / 2, -2), {}, "f32^-2"),
                    Call((np.array([[1, 2], [-1, 1]]), 5), {}, "int^5"),
                    Call((np.array([[1, 2], [-1, 1]]), 0), {}, "int^0"),
                    Call((np.array([[2, 1], [1, 1]]), -2), {}, "int^-2")]


@implements(np.linalg.matrix_power, samples=_power_calls)
def linalg_matrix_power(a, n):
    """``a`` to the integer power ``n`` (static), with NumPy's own sequence of matmuls
    (repeated squaring); ``n == 0`` is the identity (a constant: zero gradient), a
    negative ``n`` inverts first (float64 for integer ``a``, as NumPy)."""
    a = _array(a)
    _check_square(a, "matrix_power")
    if hasattr(n, "aval"):
        n.__index__()                  # a traced exponent: the control-flow error
    try:
        n = operator.index(n)
    except TypeError:
        raise UnsupportedError(f"np.linalg.matrix_power: exponent must be an integer, got {n!r:.40}",
                               hint="pass a Python int: matrix_power(a, 3)") from None
    if n == 0:
        return np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
    if n < 0:
        a, n = inv(_cast(a, _linalg_dtype(a))), -n
    if n == 3:                         # NumPy's shortcut: (a @ a) @ a
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:                       # NumPy's order of products (bit-identical results)
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result
