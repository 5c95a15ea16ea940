"""Dense linear algebra primitives: ``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``.

Batched over leading dimensions as NumPy is, in float32 and float64 (integer and
boolean inputs compute in float64, as NumPy does; float16 and complex are refused as
NumPy refuses float16).  ``inv``, ``solve``, ``det``, ``slogdet`` and ``cholesky`` are
primitives that emit NumPy's own call (a singular matrix raises NumPy's LinAlgError at
run time); their gradient rules are written in graphc ops, so they differentiate again.
``tril_scaled`` (a lower triangle, diagonal scaled) holds the masks of cholesky's gradient.
The NumPy functions that apply them are in :mod:`graphc.ops.np_linalg`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import ShapeError, UnsupportedError
from ..primitive import Aval, primitive
from . import _samples as S
from . import array_api as XP
from .shape import reshape, transpose, unbroadcast
from ..errors import LinAlgError


# --- shared rules -----------------------------------------------------------------------
def check_square(x, what):
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
        check_square(a, what)
        _check_float(a, what=what)
        return Aval(out_shape(a.shape), a.dtype, False)
    return rule


def _mT(a):
    """Transpose of the last two axes."""
    return transpose(a, axes=tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))


def _cubic_flops(factor, text):
    def flops(out, a, *rest, **params):
        n = a.shape[-1]
        rhs = out.size // n if rest and n else 0
        return int(int(np.prod(a.shape[:-2], dtype=np.int64)) * factor * n ** 3 + 2 * n * n * rhs)
    flops.__doc__ = text          # the op reference's FLOPs column
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
def _inv_samples(d):
    inv = np.linalg.inv
    return [S.Sample((well_conditioned(d, 3, 3),), {}, inv, "f64(3,3)"),
            S.Sample((well_conditioned(d, 2, 3, 3),), {}, inv, "f64(2,3,3)"),
            S.Sample((well_conditioned(d, 3, 3, dtype=S.F32),), {}, inv, "f32(3,3)"),
            S.Sample((well_conditioned(d, 2, 1, 2, 2, dtype=S.F32),), {}, inv, "f32(2,1,2,2)"),
            S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]),), {}, inv, "2x2", proof=True)]


def well_conditioned(d, *shape, dtype=S.F64):
    """A well-conditioned (not symmetric) matrix stack: n*I plus a random part."""
    return (d.rnd(*shape) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def spd_matrix(d, *shape, dtype=S.F64):
    """A symmetric positive definite stack B B^T + n*I."""
    n = shape[-1]
    b = d.rnd(*shape)
    return (b @ np.swapaxes(b, -1, -2) + n * np.eye(n)).astype(dtype)


inv = primitive(
    name="inv", array_api="xp.linalg.inv({0})", samples=_inv_samples, shape=_square_rule("inv", lambda s: s),
    numpy="np.linalg.inv({0})",
    vjp=lambda ct, a, *, out: (-(_mT(out) @ ct @ _mT(out)),),   # d(A^-1) = -A^-1 dA A^-1
    jvp=lambda t, a, *, out: -(out @ t[0] @ out),
    sympy=lambda a: _sym_each(lambda m: _as_obj(m.inv()), a, lambda c: c),
    label="inv", family="linalg", flops=_cubic_flops(2, "2·n³ per matrix"), fresh_result=True,
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
    check_square(a, "solve")
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


def _solve_jvp(t, a, b, *, out):
    # x = A^-1 b:  dx = A^-1 (db - dA x)  (a vector b as a one-column matrix)
    ta, tb = t
    if ta is None:
        return solve(a, tb)
    x = reshape(out, shape=tuple(out.shape) + (1,)) if b.ndim == 1 else out
    rhs = -(ta @ x)
    if tb is not None:
        rhs = (reshape(tb, shape=tuple(tb.shape) + (1,)) if b.ndim == 1 else tb) + rhs
    dx = solve(a, rhs)
    return reshape(dx, shape=tuple(out.shape)) if b.ndim == 1 else dx


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
    out = [S.Sample((well_conditioned(d, *a), d.rnd(*b)), {}, sv, f"{a}\\{b}") for a, b in pairs]
    return out + [S.Sample((well_conditioned(d, 2, 3, 3, dtype=S.F32), d.rnd(2, 3, 2, dtype=S.F32)), {}, sv,
                           "f32"),
                  S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]), np.array([0.5, 1.25])), {}, sv,
                           "2x2\\2", proof=True)]


solve = primitive(
    name="solve", array_api="xp.linalg.solve({0}, {1})", samples=_solve_samples, shape=_solve_rule, numpy="np.linalg.solve({0}, {1})",
    vjp=_solve_vjp, jvp=_solve_jvp, sympy=_sym_solve, label="solve", family="linalg",
    flops=_cubic_flops(2 / 3, "(2/3)·n³ per matrix of a + 2·n² per column of b"),
    fresh_result=True,
    doc="x with a @ x = b (b a vector when 1-d, else a stack of matrices, as NumPy 2); "
        "gradients db = solve(a^T, ct), da = -db x^T.  A singular a raises NumPy's LinAlgError.")


# --- det / slogdet ------------------------------------------------------------------------
def _grad_from_det(scale, a):
    """``scale[..., None, None] * A^-T``: d(det)/dA = det A^-T, d(log|det|)/dA = A^-T."""
    batch = tuple(a.shape[:-2])
    return reshape(scale, shape=batch + (1, 1)) * _mT(inv(a))


def _trace_inv_times(a, da):
    """``trace(A^-1 dA)`` of each matrix: d(log|det A|) along dA."""
    from .reduce import sum as reduce_sum
    return reduce_sum(_mT(inv(a)) * da, axis=(a.ndim - 2, a.ndim - 1), keepdims=False)


def _slogdet_jvp(t, a, *, out):
    # the sign is piecewise constant: row 0 of the tangent is 0, row 1 trace(A^-1 dA)
    from .shape import concatenate
    d_logabs = _trace_inv_times(a, t[0])
    row = reshape(d_logabs, shape=(1,) + tuple(d_logabs.shape))
    return concatenate(a._trace.lift(np.zeros(row.shape, row.dtype)), row, axis=0)


def _det_samples(d):
    det = np.linalg.det
    return [S.Sample((well_conditioned(d, 3, 3),), {}, det, "f64(3,3)"),
            S.Sample((d.rnd(2, 3, 3),), {}, det, "f64(2,3,3)"),
            S.Sample((well_conditioned(d, 4, 4, dtype=S.F32),), {}, det, "f32(4,4)"),
            S.Sample((well_conditioned(d, 2, 2, 2, 2, dtype=S.F32),), {}, det, "f32(2,2,2,2)"),
            S.Sample((np.array([[2.0, 0.5], [0.25, 1.5]]),), {}, det, "2x2", proof=True)]


det = primitive(
    name="det", array_api="xp.linalg.det({0})", samples=_det_samples, shape=_square_rule("det", lambda s: tuple(s[:-2])),
    numpy="np.linalg.det({0})", vjp=lambda ct, a, *, out: (_grad_from_det(ct * out, a),),
    jvp=lambda t, a, *, out: out * _trace_inv_times(a, t[0]),
    sympy=lambda a: _sym_each(lambda m: m.det(), a, lambda c: ()),
    label="det", family="linalg", flops=_cubic_flops(2 / 3, "(2/3)·n³ per matrix"),
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
    return [S.Sample((well_conditioned(d, 3, 3),), {}, _stacked_slogdet, "f64(3,3)"),
            S.Sample((d.rnd(2, 3, 3),), {}, _stacked_slogdet, "f64(2,3,3)"),
            S.Sample((neg,), {}, _stacked_slogdet, "negative-det", proof=True),
            S.Sample((well_conditioned(d, 4, 4, dtype=S.F32),), {}, _stacked_slogdet, "f32(4,4)"),
            S.Sample((well_conditioned(d, 2, 3, 3, dtype=S.F32),), {}, _stacked_slogdet, "f32(2,3,3)")]


slogdet = primitive(
    name="slogdet", array_api=XP.slogdet, samples=_slogdet_samples,
    shape=_square_rule("slogdet", lambda s: (2,) + tuple(s[:-2])),
    numpy="np.stack(np.linalg.slogdet({0}))", vjp=_slogdet_vjp, jvp=_slogdet_jvp,
    sympy=_sym_slogdet,
    label="slogdet", family="linalg", flops=_cubic_flops(2 / 3, "(2/3)·n³ per matrix"),
    nonfinite_hint="the matrix is singular: its logabsdet is -inf (and sign 0)",
    doc="np.stack(np.linalg.slogdet(a)): row 0 the sign, row 1 log|det|; gradient "
        "ct[1] * A^-T (the sign gets none).  np.linalg.slogdet returns the two rows.")


# --- cholesky -----------------------------------------------------------------------------
def _tril_scaled_rule(x, *, diag):
    if x.ndim < 2 or x.dtype.kind != "f":
        raise ShapeError(f"tril_scaled takes a float stack of matrices, got {x.short()}")
    return x


def _emit_tril_scaled(e, *, diag):
    if diag == 1.0:
        return f"np.tril({e.args[0]})"
    m, n = e.aval.shape[-2:]
    dims = f"{m}" if m == n else f"{m}, {n}"
    dtype = "" if e.aval.dtype == np.float64 else f", dtype=np.{e.aval.dtype.name}"
    return f"np.tril({e.atoms[0]} * (1 - {1.0 - diag!r} * np.eye({dims}{dtype})))"   # a call


def _sym_tril_scaled(x, *, diag):
    out = np.tril(_obj(x))
    for i in range(min(out.shape[-2:])):
        out[..., i, i] = out[..., i, i] * sp.Rational(repr(diag))
    return out


def _tril_scaled_samples(d):
    def ref(diag):
        return lambda x: np.tril(x) * (1 - (1 - diag) * np.eye(*x.shape[-2:], dtype=x.dtype))
    return [S.Sample((d.rnd(3, 3),), {"diag": 0.5}, ref(0.5), "Phi(3,3)"),
            S.Sample((d.rnd(2, 3, 4),), {"diag": 1.0}, ref(1.0), "tril(2,3,4)"),
            S.Sample((d.rnd(2, 4, 3, dtype=S.F32),), {"diag": 0.5}, ref(0.5), "f32")]


tril_scaled = primitive(
    name="tril_scaled", array_api=XP.tril_scaled, samples=_tril_scaled_samples, shape=_tril_scaled_rule,
    numpy=_emit_tril_scaled, vjp=lambda ct, x, *, out, diag: (tril_scaled(ct, diag=diag),),
    jvp=lambda t, x, *, out, diag: tril_scaled(t[0], diag=diag),
    sympy=_sym_tril_scaled, label="tril", family="linalg", flops=lambda out, x, **p: x.size,
    label_detail=lambda p: None if p["diag"] == 1.0 else f"diag×{p['diag']:g}",
    doc="Lower triangle of each matrix with the diagonal times diag (Murray's Phi at 0.5): "
        "the masks of cholesky's gradient; linear, so its gradient is itself.")


def _cholesky_lower_vjp(ct, low):
    # Murray (2016): with S = L^-T Phi(L^T tril(ct)) L^-1, the derivative along a symmetric
    # perturbation is <S, dA>.  NumPy reads only the lower triangle of a, so dA[i, j] for
    # i > j moves both A[i, j] and A[j, i]: the gradient is Phi(S + S^T), lower-triangular.
    lt = _mT(low)
    p = tril_scaled(lt @ tril_scaled(ct, diag=1.0), diag=0.5)
    s_t = solve(lt, _mT(solve(lt, p)))          # L^-T (L^-T P)^T = S^T
    return tril_scaled(s_t + _mT(s_t), diag=0.5)


def _cholesky_vjp(ct, a, *, out, upper):
    if upper:      # U = cholesky(A^T)^T (the upper triangle of A is read)
        return (_mT(_cholesky_lower_vjp(_mT(ct), _mT(out))),)
    return (_cholesky_lower_vjp(ct, out),)


def _cholesky_lower_jvp(da, low):
    # A = L L^T read from its lower triangle: dA_sym = tril(dA) + strict_tril(dA)^T, and
    # dL = L Phi(L^-1 dA_sym L^-T), Phi = lower triangle with the diagonal halved.
    da_sym = tril_scaled(da, diag=1.0) + _mT(tril_scaled(da, diag=0.0))
    m = solve(low, _mT(solve(low, da_sym)))
    return low @ tril_scaled(m, diag=0.5)


def _cholesky_jvp(t, a, *, out, upper):
    if upper:
        return _mT(_cholesky_lower_jvp(_mT(t[0]), _mT(out)))
    return _cholesky_lower_jvp(t[0], out)


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
    out = _sym_each(_sym_cholesky_lower, a, lambda c: c)
    return np.swapaxes(out, -1, -2) if upper else out


def _cholesky_samples(d):
    def ref(upper):
        return lambda a: np.linalg.cholesky(a, upper=upper)
    spd2 = np.array([[2.0, 0.5], [0.5, 1.5]])
    return [S.Sample((spd_matrix(d, 3, 3),), {"upper": False}, ref(False), "f64(3,3)"),
            S.Sample((spd_matrix(d, 2, 3, 3),), {"upper": False}, ref(False), "f64(2,3,3)"),
            S.Sample((spd_matrix(d, 2, 3, 3),), {"upper": True}, ref(True), "upper-f64(2,3,3)"),
            S.Sample((spd_matrix(d, 3, 3),), {"upper": True}, ref(True), "upper-f64(3,3)"),
            S.Sample((spd_matrix(d, 4, 4, dtype=S.F32),), {"upper": False}, ref(False), "f32(4,4)"),
            S.Sample((spd_matrix(d, 2, 3, 3, dtype=S.F32),), {"upper": True}, ref(True), "upper-f32"),
            S.Sample((spd2,), {"upper": False}, ref(False), "2x2", proof=True)]


def _emit_cholesky(e, *, upper):
    return f"np.linalg.cholesky({e.args[0]}, upper=True)" if upper else \
        f"np.linalg.cholesky({e.args[0]})"


cholesky = primitive(
    name="cholesky", array_api=XP.cholesky, samples=_cholesky_samples,
    shape=_square_rule("cholesky", lambda s: s),
    numpy=_emit_cholesky,
    vjp=_cholesky_vjp, jvp=_cholesky_jvp, sympy=_sym_cholesky, label="cholesky",
    label_detail=lambda p: "upper" if p.get("upper") else None,
    family="linalg", flops=_cubic_flops(1 / 3, "(1/3)·n³ per matrix"), fresh_result=True,
    doc="Cholesky factor (lower L, or upper U with upper=True), reading one triangle of a as "
        "NumPy does; gradient Phi(S + S^T) with S = L^-T Phi(L^T ct) L^-1 (Murray 2016), "
        "Phi = lower triangle with the diagonal halved: the gradient is triangular, and along "
        "symmetric perturbations equals JAX's symmetrized one.  A matrix that is not positive "
        "definite raises NumPy's LinAlgError at run time.")
