"""NumPy's ``np.linalg.inv solve det slogdet cholesky matrix_power`` on traced arrays.

Each takes NumPy's signature and checks (not square, under 2-d: NumPy's LinAlgError;
float16: NumPy's TypeError), casts to NumPy's linalg dtype (float64 for integer
input) and applies a primitive of :mod:`graphc.ops.decompositions`; ``matrix_power`` is
NumPy's own sequence of matmuls.
"""
from __future__ import annotations

import operator

import numpy as np

from ..errors import UnsupportedError
from . import _samples as S
from ._numpy_table import Call, implements
from .decompositions import (check_square, spd_matrix, well_conditioned, cholesky, det, inv, slogdet,
                             solve)
from .linalg import matmul


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
    check_square(a, what)
    return _cast(a, _linalg_dtype(a))


def _well_calls(shapes, grad=True):
    def samples(d):
        calls = [Call((well_conditioned(d, *s),), {}, f"f64{s}", grad) for s in shapes]
        return calls + [Call((well_conditioned(d, 2, 3, 3, dtype=S.F32),), {}, "f32(2,3,3)", grad),
                        Call((np.array([[2, 1], [1, 3]]),), {}, "int64(2,2)", grad)]
    return samples


@implements(np.linalg.inv, samples=_well_calls([(3, 3), (2, 3, 3), (2, 1, 2, 2)]))
def linalg_inv(a):
    """Inverse of each matrix of a (..., M, M) stack (``inv`` primitive)."""
    return inv(_square_operand(a, "inv"))


def _solve_calls(d):
    pairs = [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3, 1)),
             ((3, 3), (2, 3, 4)), ((1, 3, 3), (2, 3, 2))]
    calls = [Call((well_conditioned(d, *a), d.rnd(*b)), {}, f"{a}\\{b}") for a, b in pairs]
    return calls + [
        Call((well_conditioned(d, 2, 3, 3, dtype=S.F32), d.rnd(2, 3, 2).astype(S.F32)), {}, "f32"),
        Call((well_conditioned(d, 3, 3, dtype=S.F32), d.rnd(3)), {}, "f32\\f64"),
        Call((np.array([[3, 1], [1, 2]]), d.rnd(2)), {}, "int\\f64"),
        Call((well_conditioned(d, 3, 3), np.array([1, 2, 3])), {}, "f64\\int")]


@implements(np.linalg.solve, samples=_solve_calls)
def linalg_solve(a, b):
    """x with ``a @ x == b``; b is one vector when 1-d, else a stack of (M, K) matrices."""
    a, b = _array(a), _array(b)
    check_square(a, "solve")
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
    calls = [Call((spd_matrix(d, *s),), kw, f"f64{s}{kw or ''}")
             for s, kw in [((3, 3), {}), ((2, 3, 3), {}), ((2, 3, 3), {"upper": True}),
                           ((3, 3), {"upper": True}), ((1, 2, 2), {"upper": False})]]
    return calls + [Call((spd_matrix(d, 2, 3, 3, dtype=S.F32),), {}, "f32(2,3,3)"),
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
    calls = [Call((well_conditioned(d, 3, 3) / 3, n), {}, f"f64(3,3)^{n}") for n in (0, 1, 2, 3, 5, 6, -1, -3)]
    return calls + [Call((well_conditioned(d, 2, 3, 3) / 3, 4), {}, "f64(2,3,3)^4"),
                    Call((well_conditioned(d, 2, 3, 3, dtype=S.F32) / 3, 3), {}, "f32^3"),
                    Call((well_conditioned(d, 2, 2, 2, dtype=S.F32) / 2, -2), {}, "f32^-2"),
                    Call((np.array([[1, 2], [-1, 1]]), 5), {}, "int^5"),
                    Call((np.array([[1, 2], [-1, 1]]), 0), {}, "int^0"),
                    Call((np.array([[2, 1], [1, 1]]), -2), {}, "int^-2")]


@implements(np.linalg.matrix_power, samples=_power_calls)
def linalg_matrix_power(a, n):
    """``a`` to the integer power ``n`` (static), with NumPy's own sequence of matmuls
    (repeated squaring); ``n == 0`` is the identity (a constant: zero gradient), a
    negative ``n`` inverts first (float64 for integer ``a``, as NumPy)."""
    a = _array(a)
    check_square(a, "matrix_power")
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
