"""Reductions with NumPy's call forms (graphc/ops/statistics.py, scans.py, norms.py):
signatures, accumulation dtypes, gradient conventions at special points, errors."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import graphc
from graphc.ops import norms, scans, statistics as st
from graphc.ops._numpy_table import FUNCTIONS, METHODS

from _fd import fd_grad_args

RNG = np.random.default_rng(14)

OWN = [np.sum, np.mean, np.max, np.min, np.amax, np.amin, np.prod, np.var, np.std,
       np.average, np.any, np.all, np.argmax, np.argmin, np.nansum, np.nanmean,
       np.cumsum, np.cumprod, np.cumulative_sum, np.cumulative_prod, np.linalg.norm]


@pytest.mark.parametrize("f", OWN, ids=lambda f: f.__name__)
def test_signature_is_numpys(f):
    """Same parameter names, order, kinds and defaults as NumPy's own function."""
    assert inspect.signature(FUNCTIONS[f]) == inspect.signature(f)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std", "any",
                                  "all", "argmax", "argmin", "cumsum", "cumprod"])
def test_methods_are_registered_and_take_numpys_keywords(name):
    params = list(inspect.signature(METHODS[name]).parameters)
    want = [p for p in inspect.signature(getattr(np.ndarray, name)).parameters
            if p not in ("self", "kwargs")]
    assert params[1:len(want) + 1] == want


def _run(f, *args):
    return graphc.compile(f)(*args)


# --- dtypes -------------------------------------------------------------------------------
def test_float16_mean_accumulates_in_float32():
    h = np.full(10000, 10, np.float16)
    got = _run(lambda v: np.mean(v), h)
    assert got.dtype == np.float16 and got == np.mean(h) == 10
    got = _run(lambda v: v.mean(axis=0, keepdims=True), h)
    assert got.dtype == np.float16 and got.shape == (1,)


@pytest.mark.parametrize("f", [lambda v: np.sum(v), lambda v: np.var(v), lambda v: np.nanmean(v),
                               lambda v: np.cumsum(v), lambda v: np.std(v, axis=0)])
def test_float16_results_match_numpy_bit_for_bit(f):
    h = (RNG.standard_normal(300) * 3).astype(np.float16)
    got, want = _run(f, h), f(h)
    assert got.dtype == want.dtype == np.float16
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dt", [np.int8, np.uint8, np.int32, np.bool_])
@pytest.mark.parametrize("f", [np.sum, np.prod, np.cumsum, np.cumprod, np.mean, np.var])
def test_integer_accumulation_dtypes(f, dt):
    x = (RNG.integers(0, 3, (3, 4)) * 50).astype(dt)
    got, want = _run(lambda v: f(v, axis=1), x), f(x, axis=1)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_dtype_keyword_is_honoured():
    x = RNG.standard_normal((3, 4))
    for f in (np.sum, np.mean, np.prod, np.cumsum, np.var, np.nansum):
        assert _run(lambda v: f(v, dtype=np.float32), x).dtype == np.float32


# --- gradient conventions -------------------------------------------------------------------
STD = [lambda x: np.std(x), lambda x: x.std(axis=1).sum(), lambda x: np.std(x, ddof=1)]
NORM = [lambda x: np.linalg.norm(x), lambda x: np.linalg.norm(x, "fro"),
        lambda x: np.linalg.norm(x, 3, axis=1).sum(), lambda x: np.linalg.norm(x, axis=0).sum()]


@pytest.mark.parametrize("f, x", [(f, np.full((2, 3), 1.5)) for f in STD]
                         + [(f, np.zeros((2, 3))) for f in STD + NORM])
def test_gradient_at_zero_is_zero_not_nan(f, x):
    """std at zero variance and norm at 0: the minimum-norm subgradient, 0 (plain JAX: nan)."""
    np.testing.assert_array_equal(graphc.grad(f)(x), np.zeros((2, 3)))


def test_std_and_norm_second_derivatives_are_finite_at_zero():
    hess_diag = graphc.grad(lambda x: graphc.grad(lambda y: np.linalg.norm(y))(x)[0])
    assert np.all(np.isfinite(hess_diag(np.zeros(3))))
    x = np.array([1.0, 2.0, 4.0])
    g = graphc.grad(lambda x: graphc.grad(lambda y: np.std(y))(x)[0])(x)
    h = 1e-5
    fd = [(graphc.grad(lambda y: np.std(y))(x + h * e)[0]
           - graphc.grad(lambda y: np.std(y))(x - h * e)[0]) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_cumprod_gradient_is_exact_with_zeros(axis):
    x = RNG.uniform(0.5, 1.5, (3, 4))
    x[1, 2] = x[0, 0] = x[2, 1] = x[2, 3] = 0.0
    w = RNG.standard_normal(x.size)

    def loss(x):
        return np.sum(np.cumprod(x, axis=axis).reshape(-1) * w)
    got = graphc.grad(loss)(x)
    (want,) = fd_grad_args(loss, (x,), (0,))
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
    assert np.all(np.isfinite(got))


def test_cumprod_and_cumsum_second_derivatives():
    x = RNG.uniform(0.5, 1.5, 4)
    x[1] = 0.0
    for f in (lambda v: np.sum(np.cumprod(v) ** 2), lambda v: np.sum(np.cumsum(v) ** 3)):
        g2 = graphc.grad(lambda v: graphc.grad(f)(v)[2])(x)
        (fd,) = fd_grad_args(lambda v: graphc.grad(f)(v)[2], (x,), (0,))
        np.testing.assert_allclose(g2, fd, rtol=1e-6, atol=1e-8)


def test_cumsum_gradient_is_reversed_cumsum():
    w = RNG.standard_normal(5)
    got = graphc.grad(lambda v: np.sum(np.cumsum(v) * w))(np.ones(5))
    np.testing.assert_allclose(got, np.cumsum(w[::-1])[::-1])


def test_nan_functions_give_zero_gradient_at_nan():
    x = np.array([1.0, np.nan, 2.0, 4.0])
    np.testing.assert_array_equal(graphc.grad(lambda v: np.nansum(v))(x), [1, 0, 1, 1])
    np.testing.assert_allclose(graphc.grad(lambda v: np.nanmean(v))(x), [1 / 3, 0, 1 / 3, 1 / 3])


def test_masked_out_elements_get_no_gradient():
    x = RNG.standard_normal((2, 3))
    m = np.array([[True, False, True], [False, True, True]])
    g = graphc.grad(lambda v: np.max(v, axis=1, where=m, initial=-10.0).sum())(x)
    assert np.all(g[~m] == 0)
    g = graphc.grad(lambda v: np.mean(v, where=m))(x)
    np.testing.assert_allclose(g, m / m.sum())


def test_argmax_argmin_pick_the_first_and_index_with_gradient():
    x = np.array([[1.0, 3.0, 3.0, -1.0], [-1.0, 2.0, -1.0, 2.0]])
    assert _run(lambda v: np.argmin(v, axis=1), x).tolist() == [3, 0]
    assert _run(lambda v: v.argmax(axis=1), x).tolist() == [1, 1]
    g = graphc.grad(lambda v: v[np.arange(2), np.argmin(v, axis=1)].sum())(x)
    np.testing.assert_array_equal(g, [[0, 0, 0, 1], [1, 0, 0, 0]])
    src = graphc.compile(lambda v: np.argmin(v, axis=1)).source(x)
    assert ".argmin(axis=1)" in src


def test_generated_code_reads_like_numpy():
    x = RNG.standard_normal((3, 4))
    assert "np.cumsum(x, axis=1)" in graphc.compile(lambda x: np.cumsum(x, axis=1)).source(x)
    assert "np.sqrt(" in graphc.compile(lambda x: np.std(x)).source(x)
    assert "np.any(x, axis=0)" in graphc.compile(lambda x: np.any(x, axis=0)).source(x)


def test_average_and_returned():
    x, w = RNG.standard_normal((3, 4)), RNG.uniform(0.5, 1.0, 4)
    avg, scl = _run(lambda a, w: np.average(a, axis=1, weights=w, returned=True), x, w)
    wa, ws = np.average(x, axis=1, weights=w, returned=True)
    np.testing.assert_allclose(avg, wa)
    np.testing.assert_allclose(scl, ws)
    got = graphc.grad(lambda w: np.average(x, axis=1, weights=w).sum())(w)
    (fd,) = fd_grad_args(lambda w: np.average(x, axis=1, weights=w).sum(), (w,), (0,))
    np.testing.assert_allclose(got, fd, rtol=1e-6)


# --- errors -----------------------------------------------------------------------------
def _raises_as_numpy(f, x, kind):
    with pytest.raises(kind):
        f(x)                       # NumPy itself
    with pytest.raises(kind):
        graphc.trace(f, x)


@pytest.mark.parametrize("f, kind", [
    (lambda x: np.max(x, where=x > 0), ValueError),
    (lambda x: np.var(x, ddof=1, correction=1), ValueError),
    (lambda x: np.sum(x, axis=2), np.exceptions.AxisError),
    (lambda x: np.cumsum(x, axis=-3), np.exceptions.AxisError),
    (lambda x: np.argmax(x, axis=2), np.exceptions.AxisError),
    (lambda x: np.average(x, weights=np.ones(4)), TypeError),
    (lambda x: np.average(x, axis=0, weights=np.ones(4)), ValueError),
    (lambda x: np.average(x, axis=1, weights=np.zeros(4)), ZeroDivisionError),
    (lambda x: np.linalg.norm(x, "bogus"), ValueError),
    (lambda x: np.linalg.norm(x, axis=(0, 0)), ValueError),
    (lambda x: np.linalg.norm(x[None], axis=(0, 1, 2)), ValueError),
    (lambda x: np.linalg.norm(x[0], ord="fro"), ValueError),
    (lambda x: x.var(correction=1), TypeError),
    (lambda x: np.argmin(x[:, :0], axis=1), ValueError),
    (lambda x: np.cumulative_sum(x), ValueError),
])
def test_invalid_calls_raise_what_numpy_raises(f, kind):
    _raises_as_numpy(f, RNG.standard_normal((3, 4)), kind)


@pytest.mark.parametrize("f", [lambda x: np.sum(x, out=np.empty(())),
                               lambda x: np.cumsum(x, out=np.empty(12)),
                               lambda x: x.std(out=np.empty(())),
                               lambda x: np.argmin(x, out=np.empty((), np.intp))])
def test_out_is_an_in_place_error(f):
    with pytest.raises(graphc.InPlaceError, match="assign the result"):
        graphc.trace(f, np.ones((3, 4)))


@pytest.mark.parametrize("o", [2, -2, "nuc"])
def test_spectral_and_nuclear_norms_are_refused_clearly(o):
    with pytest.raises(graphc.UnsupportedError, match="singular values"):
        graphc.trace(lambda x: np.linalg.norm(x, o), np.ones((3, 4)))


def test_modules_are_the_registrations():
    assert FUNCTIONS[np.cumsum] is scans.np_cumsum and FUNCTIONS[np.std] is st.std
    assert FUNCTIONS[np.linalg.norm] is norms.norm
