"""Edge values of the transcendental ufuncs (graphc/ops/transcendental.py, hyperbolic.py).

The registry and table-driven tests check values, dtypes and gradients on ordinary
inputs; this file checks what they do not: overflow-prone inputs, domain edges,
the gradient conventions at special points, NumPy's dtype rules (integers, float16,
float32, NEP 50 scalars), exactness, and second derivatives.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc

F32 = np.float32


def _grad(f, *args, argnums=0):
    with warnings.catch_warnings():      # inf - inf inside a guarded where, as NumPy warns
        warnings.simplefilter("ignore", RuntimeWarning)
        return graphc.grad(lambda *a: np.sum(f(*a)), argnums=argnums)(*args)


def _value(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return graphc.compile(f)(*args)


# --- logaddexp -------------------------------------------------------------------------------
def test_logaddexp_is_stable_for_large_inputs():
    x = np.array([1000.0, -1000.0, 1000.0, 800.0])
    y = np.array([1000.0, -1000.0, -1000.0, 1.0])
    np.testing.assert_array_equal(_value(np.logaddexp, x, y), np.logaddexp(x, y))
    dx, dy = _grad(np.logaddexp, x, y, argnums=(0, 1))
    # exp(x - out) carries out's rounding (1e-13 at 1000), as JAX's rule does
    np.testing.assert_allclose(dx, [0.5, 0.5, 1.0, 1.0], rtol=1e-13)
    np.testing.assert_allclose(dy, [0.5, 0.5, 0.0, 0.0], rtol=1e-13)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))


def test_logaddexp_gradient_is_softmax_weights():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(6) * 5, rng.standard_normal(6) * 5
    dx, dy = _grad(np.logaddexp, x, y, argnums=(0, 1))
    m = np.maximum(x, y)
    ex, ey = np.exp(x - m), np.exp(y - m)
    np.testing.assert_allclose(dx, ex / (ex + ey), rtol=1e-14)
    np.testing.assert_allclose(dy, ey / (ex + ey), rtol=1e-14)
    # the far tail keeps its tiny weight (1 - w would round it to 0)
    dx, dy = _grad(np.logaddexp, np.array([40.0]), np.array([0.0]), argnums=(0, 1))
    np.testing.assert_allclose(dy, np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-12)


def test_logaddexp_at_infinities_follows_numpy_and_is_finite():
    x = np.array([-np.inf, np.inf, -np.inf, np.inf])
    y = np.array([-np.inf, np.inf, 2.0, -np.inf])
    got = _value(np.logaddexp, x, y)
    np.testing.assert_array_equal(got, np.logaddexp(x, y))        # -inf, inf, 2, inf
    dx, dy = _grad(np.logaddexp, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(dx, [0.5, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(dy, [0.5, 0.5, 1.0, 0.0])
    d2x, d2y = _grad(np.logaddexp2, x, y, argnums=(0, 1))
    np.testing.assert_array_equal(d2x, [0.5, 0.5, 0.0, 1.0])
    np.testing.assert_array_equal(d2y, [0.5, 0.5, 1.0, 0.0])


def test_logaddexp2_values_and_gradient():
    x, y = np.array([3.0, 1000.0, -2.0]), np.array([3.0, 990.0, 5.0])
    np.testing.assert_array_equal(_value(np.logaddexp2, x, y), np.logaddexp2(x, y))
    dx = _grad(np.logaddexp2, x, y)
    np.testing.assert_allclose(dx, 1 / (1 + 2.0 ** (y - x)), rtol=1e-13)


def test_logaddexp_float32_and_python_scalar_stay_float32():
    x = np.array([0.5, -3.0, 90.0], F32)
    out = graphc.compile(lambda x: np.logaddexp(x, 0.25))(x)
    assert out.dtype == F32
    np.testing.assert_array_equal(out, np.logaddexp(x, 0.25))
    g = graphc.grad(lambda x: np.logaddexp(x, 0.25).sum())(x)
    assert g.dtype == F32 and np.all(np.isfinite(g))


def test_logaddexp_second_derivative():
    # d²/dx² logaddexp(x, y) = w (1 - w), w = sigmoid(x - y)
    x, y = np.array([0.3, -2.0, 5.0]), np.array([1.0, 1.0, -1.0])
    d2 = graphc.grad(lambda x: graphc.grad(lambda u: np.logaddexp(u, y).sum())(x).sum())(x)
    w = 1 / (1 + np.exp(y - x))
    np.testing.assert_allclose(d2, w * (1 - w), rtol=1e-12)


def test_logaddexp_generated_code_calls_numpy_and_reuses_the_value():
    src = graphc.compile(lambda x, y: np.logaddexp(x, y)).source(np.ones(3), np.ones(3))
    assert "np.logaddexp(x, y)" in src
    src = graphc.grad(lambda x: np.logaddexp(0.0, x).sum()).source(np.ones(3))
    assert "np.exp(x - logaddexp)" in src and "sigmoid" not in src


# --- domain edges and the conventions at special points --------------------------------------
@pytest.mark.parametrize("fn, x, want", [
    (np.arcsin, [-1.0, 1.0], [np.inf, np.inf]),
    (np.arccos, [-1.0, 1.0], [-np.inf, -np.inf]),
    (np.arctanh, [-1.0, 1.0], [np.inf, np.inf]),
    (np.arccosh, [1.0], [np.inf]),
    (np.cbrt, [0.0, -0.0], [np.inf, np.inf]),
    (np.reciprocal, [0.0], [-np.inf]),
    (np.log2, [0.0], [np.inf]),
])
def test_gradient_at_domain_edges_is_infinite_as_jax(fn, x, want):
    x = np.array(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(_value(fn, x), fn(x))
    np.testing.assert_array_equal(_grad(fn, x), want)


@pytest.mark.parametrize("fn, x, nan_grad", [
    (np.arcsin, [1.5, -2.0], True), (np.arccos, [1.5], True), (np.arccosh, [0.5], True),
    (np.arctanh, [2.0], False), (np.log10, [-1.0], False)])
def test_outside_the_domain_is_nan_as_numpy(fn, x, nan_grad):
    x = np.array(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = fn(x)
    np.testing.assert_array_equal(_value(fn, x), want)
    assert np.all(np.isnan(want))
    # the derivative formula: nan where it takes a square root of a negative number,
    # its (finite) analytic continuation otherwise, as JAX
    assert np.all(np.isnan(_grad(fn, x))) == nan_grad


def test_hypot_has_no_overflow_and_zero_gradient_at_origin():
    x, y = np.array([1e200, 3e-200, 0.0, -3.0]), np.array([1e200, 4e-200, 0.0, 4.0])
    np.testing.assert_array_equal(_value(np.hypot, x, y), np.hypot(x, y))
    dx, dy = _grad(np.hypot, x, y, argnums=(0, 1))
    np.testing.assert_allclose(dx, [2 ** -0.5, 0.6, 0.0, -0.6], rtol=1e-15)
    np.testing.assert_allclose(dy, [2 ** -0.5, 0.8, 0.0, 0.8], rtol=1e-15)


def test_arctan2_large_values_origin_and_signed_zeros():
    y = np.array([1e200, 0.0, 0.0, -0.0, 1.0])
    x = np.array([1e200, 0.0, -0.0, -1.0, -1.0])
    np.testing.assert_array_equal(_value(np.arctan2, y, x), np.arctan2(y, x))
    dy, dx = _grad(np.arctan2, y, x, argnums=(0, 1))
    np.testing.assert_allclose(dy, [0.5e-200, 0.0, 0.0, -1.0, -0.5], rtol=1e-14)
    np.testing.assert_allclose(dx, [-0.5e-200, 0.0, 0.0, 0.0, -0.5], rtol=1e-14)


def test_arcsinh_and_arccosh_gradients_for_huge_inputs():
    x = np.array([1e200, -1e300])
    np.testing.assert_allclose(_grad(np.arcsinh, x), [1e-200, 1e-300], rtol=1e-14)
    np.testing.assert_allclose(_grad(np.arccosh, np.array([1e200])), [1e-200], rtol=1e-14)


def test_sinc_at_zero_is_one_with_zero_gradient():
    x = np.array([0.0, 1e-9, 0.5, -2.0])
    np.testing.assert_array_equal(_value(np.sinc, x), np.sinc(x))
    g = _grad(np.sinc, x)
    assert g[0] == 0.0 and np.all(np.isfinite(g))
    px = np.pi * x[2:]
    np.testing.assert_allclose(g[2:], (np.cos(px) * px - np.sin(px)) / (px * x[2:]), rtol=1e-12)
    assert _value(np.sinc, np.float32(0.0)) == 1 and _value(np.sinc, np.zeros(2, F32)).dtype == F32


# --- exactness and dtypes --------------------------------------------------------------------
def test_log2_is_exact_at_powers_of_two():
    p = 2.0 ** np.arange(-60, 60)
    np.testing.assert_array_equal(_value(np.log2, p), np.arange(-60, 60))
    np.testing.assert_array_equal(_value(np.exp2, np.arange(-60.0, 60.0)), p)
    np.testing.assert_array_equal(_value(np.log10, 10.0 ** np.arange(8)), np.arange(8))


@pytest.mark.parametrize("fn", [np.deg2rad, np.radians, np.rad2deg, np.degrees])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_angle_conversions_are_numpys_bit_for_bit(fn, dtype):
    x = (np.random.default_rng(1).standard_normal(2000) * 300).astype(dtype)
    got = _value(fn, x)
    assert got.dtype == fn(x).dtype
    np.testing.assert_array_equal(got, fn(x))


@pytest.mark.parametrize("fn", [np.sinh, np.cosh, np.arctan, np.arcsinh, np.cbrt, np.exp2,
                                np.deg2rad, np.rad2deg, np.sinc])
def test_integer_inputs_promote_like_numpy(fn):
    for dtype in (np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_):
        x = np.arange(3).astype(dtype)
        want = fn(x)
        got = _value(fn, x)
        assert got.dtype == want.dtype, (fn.__name__, dtype, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want)
    assert _value(np.sinh, np.arange(3)).dtype == np.float64


def test_float32_stays_float32_with_python_scalars():
    x = np.array([0.1, 0.7, -0.4], F32)
    for f in (lambda x: np.sinh(x) * 2.0, lambda x: np.hypot(x, 3.0),
              lambda x: np.arctan2(0.5, x), lambda x: np.logaddexp2(x, 1.0),
              lambda x: np.power(np.abs(x), 2.5), lambda x: np.arccos(x)):
        out = _value(f, x)
        assert out.dtype == F32
        np.testing.assert_allclose(out, f(x), rtol=1e-6)
        assert graphc.grad(lambda x: f(x).sum())(x).dtype == F32


def test_square_and_reciprocal_integer_semantics():
    b = np.array([True, False])
    assert _value(np.square, b).dtype == np.int8
    i8 = np.array([100, -12, 3], np.int8)
    np.testing.assert_array_equal(_value(np.square, i8), np.square(i8))   # wraps in int8
    i = np.array([1, -1, 2, 5])
    got = _value(np.reciprocal, i)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [1, -1, 0, 0])


def test_float_power_is_float64_with_float32_gradient():
    x = np.array([1.5, 2.0, 0.5], F32)
    out = _value(lambda x: np.float_power(x, 3), x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.float_power(x, 3))
    g = graphc.grad(lambda x: np.float_power(x, 3).sum())(x)
    assert g.dtype == F32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-7)
    ints = np.array([-2, 3, 4])
    np.testing.assert_array_equal(_value(lambda a: np.float_power(a, -2), ints),
                                  np.float_power(ints, -2))


# --- second derivatives and errors -------------------------------------------------------
@pytest.mark.parametrize("fn, d2, x", [
    (np.sinh, np.sinh, [0.3, -1.2]), (np.cosh, np.cosh, [0.3, -1.2]),
    (np.arctan, lambda x: -2 * x / (1 + x * x) ** 2, [0.3, -1.2]),
    (np.arcsin, lambda x: x / (1 - x * x) ** 1.5, [0.3, -0.8]),
    (np.arcsinh, lambda x: -x / (1 + x * x) ** 1.5, [0.3, -1.2]),
    (np.arctanh, lambda x: 2 * x / (1 - x * x) ** 2, [0.3, -0.8]),
    (np.cbrt, lambda x: -2 / 9 * np.cbrt(x) ** -5, [0.3, -1.2]),
    (np.log2, lambda x: -1 / (x * x * np.log(2)), [0.3, 2.0]),
    (np.exp2, lambda x: np.exp2(x) * np.log(2) ** 2, [0.3, -1.2]),
])
def test_second_derivatives(fn, d2, x):
    x = np.array(x)
    got = graphc.grad(lambda x: graphc.grad(lambda u: fn(u).sum())(x).sum())(x)
    np.testing.assert_allclose(got, d2(x), rtol=1e-12)


def test_out_argument_is_an_inplace_error():
    buf = np.empty(3)
    with pytest.raises(graphc.InPlaceError, match="assign the result"):
        graphc.compile(lambda x: np.sinh(x, out=buf))(np.ones(3))
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(lambda x: np.logaddexp(x, x, out=buf))(np.ones(3))


def test_sigmoid_net_with_logaddexp_trains():
    """A logistic loss written with np.logaddexp (the W3 style) differentiates correctly."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 2)), rng.integers(0, 2, 20).astype(float)
    w = rng.standard_normal(2)

    def loss(w):
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)

    g = graphc.grad(loss)(w)
    p = 1 / (1 + np.exp(-(X @ w)))
    np.testing.assert_allclose(g, X.T @ (p - y) / len(y), rtol=1e-12)
