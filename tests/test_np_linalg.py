"""np.linalg inv, solve, det, slogdet, cholesky, matrix_power (graphc/ops/decompositions.py).

The registry (tests/test_primitives.py, tests/test_symbolic.py) and the NumPy table
(tests/test_numpy_functions.py) check values, dtypes, shapes, first gradients and SymPy
proofs of the rules; here: slogdet's pair, second derivatives, the gradient conventions,
NumPy's errors, run-time LinAlgError and the generated code.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import graphc
from graphc.errors import ControlFlowError, ShapeError, UnsupportedError
from graphc.errors import LinAlgError

from _fd import fd_grad_args

rng = np.random.default_rng(14)
FUNCS = [np.linalg.inv, np.linalg.solve, np.linalg.det, np.linalg.slogdet, np.linalg.cholesky,
         np.linalg.matrix_power]


def well(*shape):
    n = shape[-1]
    return rng.standard_normal(shape) + n * np.eye(n)


def spd(*shape):
    b = rng.standard_normal(shape)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def fd(f, *args, argnums=(0,)):
    return fd_grad_args(f, args, argnums)


def assert_grads(f, *args, argnums=(0,), rtol=1e-6, atol=1e-8):
    got = graphc.grad(f, argnums=argnums)(*args)
    got = got if isinstance(got, tuple) else (got,)
    for g, w in zip(got, fd(f, *args, argnums=argnums)):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# --- signatures -------------------------------------------------------------------------
@pytest.mark.parametrize("f", FUNCS, ids=lambda f: f.__name__)
def test_signature_is_numpys(f):
    from graphc.numpy_api import FUNCTIONS
    assert inspect.signature(FUNCTIONS[f]) == inspect.signature(f)


# --- slogdet -----------------------------------------------------------------------------
def test_slogdet_pair_unpacks_and_has_numpys_attribute_names():
    a = rng.standard_normal((3, 4, 4))
    sign, logabs = np.linalg.slogdet(a)

    def f(a):
        r = np.linalg.slogdet(a)
        s, logabs = r
        return r.sign * 1.0, r.logabsdet + 0.0, s, logabs
    got = graphc.compile(f)(a)
    assert isinstance(got, tuple) and len(got) == 4
    for g, w in zip(got, (sign, logabs, sign, logabs)):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert set(np.unique(got[0])) <= {-1.0, 1.0}


def test_slogdet_gradient_is_inverse_transpose_and_sign_has_none():
    a = rng.standard_normal((2, 3, 3))
    w = rng.standard_normal(2)

    def logabs(a):
        return np.sum(np.linalg.slogdet(a)[1] * w)
    assert_grads(logabs, a)
    g = graphc.grad(logabs)(a)
    np.testing.assert_allclose(g, w[:, None, None] * np.swapaxes(np.linalg.inv(a), -1, -2),
                               rtol=1e-12)
    g_sign = graphc.grad(lambda a: np.sum(np.linalg.slogdet(a).sign * w) + 0.0 * np.sum(a))(a)
    assert not np.any(g_sign)


def test_slogdet_of_a_singular_matrix_is_minus_inf_as_numpy():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    sign, logabs = graphc.compile(lambda a: np.linalg.slogdet(a))(a)
    assert sign == 0.0 and logabs == -np.inf


# --- second derivatives (FD of the first gradient, itself checked against FD) ----------------
def _second(f, a, b=None):
    w = rng.standard_normal(a.shape)
    first = graphc.grad(f)

    def inner(a):
        return np.sum(first(a) * w)
    got = graphc.grad(inner)(a)
    want = fd_grad_args(lambda x: float(np.sum(first(x) * w)), (a,), (0,))[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, f, make", [
    ("inv", lambda a: np.sum(np.linalg.inv(a) * np.arange(9.0).reshape(3, 3)), lambda: well(3, 3)),
    ("det", lambda a: np.sum(np.linalg.det(a)), lambda: well(2, 3, 3)),
    ("logabsdet", lambda a: np.sum(np.linalg.slogdet(a)[1]), lambda: well(2, 3, 3)),
    ("solve", lambda a: np.sum(np.linalg.solve(a, np.array([1.0, -2.0, 0.5])) ** 2),
     lambda: well(2, 3, 3)),
    ("cholesky", lambda a: np.sum(np.linalg.cholesky(a) * np.arange(9.0).reshape(3, 3)),
     lambda: spd(3, 3)),
    ("cholesky-upper", lambda a: np.sum(np.linalg.cholesky(a, upper=True) ** 3), lambda: spd(2, 3, 3)),
    ("matrix_power-2", lambda a: np.sum(np.linalg.matrix_power(a, -2)), lambda: well(3, 3)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_second_derivative(name, f, make):
    _second(f, make())


def test_solve_gradient_with_respect_to_both_operands_broadcast():
    a, b = well(3, 3), rng.standard_normal((2, 3, 2))
    assert_grads(lambda a, b: np.sum(np.linalg.solve(a, b) ** 2), a, b, argnums=(0, 1))
    a, b = well(2, 3, 3), rng.standard_normal(3)
    assert_grads(lambda a, b: np.sum(np.sin(np.linalg.solve(a, b))), a, b, argnums=(0, 1))


# --- cholesky's gradient convention --------------------------------------------------------
def test_cholesky_gradient_reads_one_triangle_as_numpy_does():
    a = spd(3, 3)
    w = rng.standard_normal((3, 3))
    g = graphc.grad(lambda a: np.sum(np.linalg.cholesky(a) * w))(a)
    assert np.all(np.triu(g, 1) == 0)          # NumPy ignores the upper triangle
    gu = graphc.grad(lambda a: np.sum(np.linalg.cholesky(a, upper=True) * w.T))(a)
    np.testing.assert_allclose(gu, g.T, rtol=1e-12)


def test_cholesky_gradient_through_a_symmetric_input_matches_jax_symmetrized_rule():
    # A = B B^T + n I: the chain rule gives dB = (G + G^T) B, and G + G^T is the same for the
    # triangular gradient and JAX's symmetrized one; both equal finite differences in B.
    b = rng.standard_normal((3, 3))
    w = rng.standard_normal((3, 3))

    def f(b):
        return np.sum(np.linalg.cholesky(b @ b.T + 3 * np.eye(3)) * w)
    assert_grads(f, b)
    a = b @ b.T + 3 * np.eye(3)
    g = graphc.grad(lambda a: np.sum(np.linalg.cholesky(a) * w))(a)
    sym = graphc.grad(lambda a: np.sum(np.linalg.cholesky((a + a.T) / 2) * w))(a)   # JAX's
    np.testing.assert_allclose(g + g.T, sym + sym.T, rtol=1e-12)
    np.testing.assert_allclose(sym, sym.T, rtol=1e-12)


# --- matrix_power ---------------------------------------------------------------------------
def test_matrix_power_dtypes_and_zero_power():
    ints = np.array([[1, 2], [-1, 1]])
    for n, dtype in [(0, np.int64), (1, np.int64), (4, np.int64), (-1, np.float64)]:
        got = graphc.compile(lambda a, n=n: np.linalg.matrix_power(a, n))(ints)
        want = np.linalg.matrix_power(ints, n)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
    a = well(2, 3, 3)
    g = graphc.grad(lambda a: np.sum(np.linalg.matrix_power(a, 0) * a))(a)
    np.testing.assert_array_equal(g, np.broadcast_to(np.eye(3), a.shape))


def test_matrix_power_uses_numpys_products():
    a = well(3, 3) / 3
    for n in (2, 3, 7, 12):
        got = graphc.compile(lambda a, n=n: np.linalg.matrix_power(a, n))(a)
        np.testing.assert_array_equal(got, np.linalg.matrix_power(a, n))   # bit-identical


# --- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda x: np.linalg.inv(x), lambda x: np.linalg.det(x), lambda x: np.linalg.slogdet(x),
    lambda x: np.linalg.cholesky(x), lambda x: np.linalg.matrix_power(x, 2),
    lambda x: np.linalg.solve(x, np.ones(2))])
@pytest.mark.parametrize("shape", [(2, 3), (4,), (2, 2, 3)])
def test_non_square_is_numpys_linalg_error_while_tracing(call, shape):
    x = np.ones(shape)
    with pytest.raises(np.linalg.LinAlgError):
        call(x)
    with pytest.raises(LinAlgError) as info:
        graphc.compile(call)(x)
    assert isinstance(info.value, ShapeError) and isinstance(info.value, np.linalg.LinAlgError)
    assert "test_np_linalg.py" in str(info.value)


@pytest.mark.parametrize("b_shape", [(4,), (2, 3), (2, 4, 1), (3, 3, 3, 1), ()])
def test_solve_mismatched_b_is_a_value_error(b_shape):
    a, b = well(2, 3, 3), np.ones(b_shape)
    with pytest.raises(ValueError):
        np.linalg.solve(a, b)
    with pytest.raises(ShapeError):
        graphc.compile(lambda a, b: np.linalg.solve(a, b))(a, b)


def test_unsupported_dtypes_are_type_errors_as_in_numpy():
    h = np.eye(2, dtype=np.float16)
    with pytest.raises(TypeError):
        np.linalg.inv(h)
    with pytest.raises(UnsupportedError, match="float16 is unsupported in linalg"):
        graphc.compile(lambda a: np.linalg.inv(a))(h)
    got = graphc.compile(lambda a: np.linalg.matrix_power(a, 3))(h)     # matmuls: fine
    assert got.dtype == np.float16


def test_matrix_power_exponent_must_be_a_static_int():
    a = well(2, 2)
    with pytest.raises(TypeError):
        np.linalg.matrix_power(a, 1.5)
    with pytest.raises(UnsupportedError, match="exponent must be an integer"):
        graphc.compile(lambda a: np.linalg.matrix_power(a, 1.5))(a)
    # a traced integer exponent is baked in with a guard (issue 15); from a Spec it has no value
    n = np.int64(2) * np.ones((), int)
    got = graphc.compile(lambda a, n: np.linalg.matrix_power(a, n))(a, n)
    np.testing.assert_allclose(got, np.linalg.matrix_power(a, 2), rtol=1e-12)
    with pytest.raises(ControlFlowError, match="graphc.Spec"):
        graphc.trace(lambda a, n: np.linalg.matrix_power(a, n), a, graphc.Spec((), "int64"))


@pytest.mark.parametrize("call", [lambda a: np.linalg.inv(a), lambda a: np.linalg.solve(a, a[0]),
                                  lambda a: np.linalg.cholesky(a)])
def test_singular_matrix_raises_numpys_error_at_run_time(call):
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError):
        graphc.compile(call)(singular)
    # and at a regular matrix the same compiled function works
    fine = np.array([[2.0, 0.5], [0.5, 3.0]])
    np.testing.assert_allclose(graphc.compile(call)(fine), call(fine), rtol=1e-12)


def test_det_gradient_at_a_singular_matrix_raises_not_a_silent_nan():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError):
        graphc.grad(lambda a: np.linalg.det(a))(singular)


# --- the generated code -----------------------------------------------------------------------
def test_generated_code_calls_numpy_linalg():
    a, b = spd(2, 3, 3), rng.standard_normal(3)

    def f(a, b):
        x = np.linalg.solve(a, b)
        low = np.linalg.cholesky(a)
        return np.sum(x) + np.linalg.det(a).sum() + np.sum(low) + np.sum(np.linalg.inv(a))
    src = graphc.compile(f).source(a, b)
    for text in ("np.linalg.solve(a, b)", "np.linalg.cholesky(a)", "np.linalg.det(a)",
                 "np.linalg.inv(a)"):
        assert text in src, src
    src = graphc.compile(lambda a: np.linalg.cholesky(a, upper=True)).source(a)
    assert "np.linalg.cholesky(a, upper=True)" in src


def test_float32_stays_float32_and_mixed_promotes_as_numpy():
    a32 = well(2, 3, 3).astype(np.float32)
    for f in (np.linalg.inv, np.linalg.det, lambda a: np.linalg.slogdet(a)[1],
              lambda a: np.linalg.solve(a, a[..., :1]), lambda a: np.linalg.matrix_power(a, -2)):
        got, want = graphc.compile(f)(a32), f(a32)
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5)
    got = graphc.compile(lambda a, b: np.linalg.solve(a, b))(a32, np.ones(3))
    assert got.dtype == np.float64
    g = graphc.grad(lambda a: np.linalg.det(a).sum())(a32)
    assert g.dtype == np.float32
