"""Issue 12, silent wrong numbers in primitives and constants.

Each test reproduces a wrong value or gradient that graphc gave without a word:
non-boolean ``where`` conditions, ``inf * 0 = nan`` in gradient masks, ``d/dx x**0``,
float16 means, NumPy's positional order of reduction arguments, signed zeros folded
away, and longdouble constants written through float64.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc

F16, F32, F64 = np.float16, np.float32, np.float64


def _grad(f, *args, argnums=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # 1/sqrt(0): the inf is the point
        return graphc.grad(f, argnums=argnums)(*args)


# --- 1. np.where with a non-boolean condition -------------------------------------------
def test_where_gradient_uses_the_truthiness_of_a_count_condition():
    counts = np.array([0, 3, 1])
    x = np.array([1.0, 2.0, 3.0])
    dx = _grad(lambda x: np.where(counts, x, 0).sum(), x)
    np.testing.assert_array_equal(dx, [0.0, 1.0, 1.0])
    dx, dy = _grad(lambda x, y: (np.where(counts, x, y) * 2.0).sum(), x, x, argnums=(0, 1))
    np.testing.assert_array_equal(dx, [0.0, 2.0, 2.0])
    np.testing.assert_array_equal(dy, [2.0, 0.0, 0.0])


def test_where_gradient_with_a_traced_float_condition():
    c = np.array([0.0, -2.5, np.nan, 0.25])          # nan is truthy, as in np.where
    x = np.array([1.0, 2.0, 3.0, 4.0])

    def f(c, x):
        return np.where(c, x, -x).sum()
    dx = _grad(f, c, x, argnums=1)
    np.testing.assert_array_equal(dx, [-1.0, 1.0, 1.0, 1.0])
    assert f(c, x) == graphc.compile(f)(c, x)


def test_check_proves_a_where_with_a_count_condition():
    counts = np.array([0, 3, 1])
    report = graphc.check(lambda x: (np.where(counts, x, 0) ** 2).sum(), np.array([1.0, 2.0, 3.0]))
    assert report.ok


# --- 2. gradient masks: the unselected side gets exactly 0 ---------------------------------
def test_where_unselected_branch_gets_zero_beside_an_infinite_cotangent():
    c = np.array([True, False])
    x, y = np.array([0.0, 4.0]), np.array([9.0, 0.0])   # sqrt'(0) = inf where selected
    dx, dy = _grad(lambda x, y: np.sqrt(np.where(c, x, y)).sum(), x, y, argnums=(0, 1))
    np.testing.assert_array_equal(dx, [np.inf, 0.0])
    np.testing.assert_array_equal(dy, [0.0, np.inf])


def test_maximum_minimum_clip_unselected_side_gets_zero():
    x, y = np.array([0.0, 3.0]), np.array([-1.0, 0.0])
    dx, dy = _grad(lambda x, y: np.sqrt(np.maximum(x, y)).sum(), x, y, argnums=(0, 1))
    np.testing.assert_array_equal(dx, [np.inf, 1 / (2 * np.sqrt(3.0))])
    np.testing.assert_array_equal(dy, [0.0, 0.0])
    dx, dy = _grad(lambda x, y: np.sqrt(-np.minimum(x, y)).sum(), -x, -y, argnums=(0, 1))
    np.testing.assert_array_equal(dx, [-np.inf, -1 / (2 * np.sqrt(3.0))])
    np.testing.assert_array_equal(dy, [0.0, 0.0])
    dx = _grad(lambda x: np.sqrt(np.clip(x, 0.0, 1.0)).sum(), np.array([-1.0, 0.25, 2.0]))
    np.testing.assert_array_equal(dx, [0.0, 1.0, 0.0])


def test_relu_and_where_activations_unselected_side_gets_zero():
    x = np.array([-1.0, 0.0, 4.0])
    dx = _grad(lambda x: np.sqrt(graphc.nn.relu(x)).sum(), x)
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.25])
    # leaky_relu is a where: at 0 the selected side is slope * x, with an infinite cotangent
    dx = _grad(lambda x: np.sqrt(graphc.nn.leaky_relu(x, 0.5) + 1.0 * (x == 0)).sum(),
               np.array([0.0, 4.0]))
    assert not np.isnan(dx).any()


def test_max_reduction_and_maxout_non_maximal_elements_get_zero():
    x = np.array([[0.0, -1.0, -2.0], [-3.0, 1.0, -5.0]])
    dx = _grad(lambda x: np.sqrt(x.max(axis=1)).sum(), x)
    np.testing.assert_array_equal(dx, [[np.inf, 0, 0], [0, 0.5, 0]])
    dx = _grad(lambda x: np.sqrt(-np.min(-x, axis=1)).sum(), x)
    np.testing.assert_array_equal(dx, [[np.inf, 0, 0], [0, 0.5, 0]])
    dx = _grad(lambda x: np.sqrt(graphc.nn.maxout(x[:, :2], 2)).sum(), x)
    np.testing.assert_array_equal(dx, [[np.inf, 0, 0], [0, 0.5, 0]])


def test_max_pool_non_maximal_elements_get_zero():
    x = 0.0 - np.arange(16.0).reshape(1, 1, 4, 4)    # the first window's maximum is +0
    dx = _grad(lambda x: np.sqrt(graphc.nn.max_pool2d(x, 2)[0, 0, 0, 0]), x)
    want = np.zeros((1, 1, 4, 4))
    want[0, 0, 0, 0] = np.inf
    np.testing.assert_array_equal(dx, want)


def test_dropout_dropped_elements_are_zero_in_value_and_gradient():
    key = np.int64(3)
    keep = np.random.default_rng(3).random(8) >= 0.5
    assert not keep.all() and keep.any()
    x = np.where(keep, np.arange(1.0, 9.0), np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = graphc.compile(lambda x, k: graphc.nn.dropout(x, 0.5, k))(x, key)
    np.testing.assert_array_equal(y, np.where(keep, 2 * x, 0.0))
    dx = _grad(lambda x, k: np.sqrt(graphc.nn.dropout(x, 0.5, k)).sum(), x, key)
    np.testing.assert_array_equal(dx[~keep], 0.0)
    np.testing.assert_allclose(dx[keep], 1 / np.sqrt(2 * x[keep]))


def test_masked_gradients_keep_second_derivatives():
    x = np.array([-1.5, 0.5, 2.0])
    h = graphc.grad(lambda x: graphc.grad(lambda x: (np.maximum(x, 0.0) ** 3).sum())(x).sum())(x)
    np.testing.assert_allclose(h, np.where(x > 0, 6 * x, 0.0))
    h = graphc.grad(lambda x: graphc.grad(lambda x: (np.where(x > 0, x ** 3, -x)).sum())(x).sum())(x)
    np.testing.assert_allclose(h, np.where(x > 0, 6 * x, 0.0))


def test_masked_gradient_code_keeps_the_fast_multiply():
    src = graphc.grad(lambda x: np.maximum(x, 0.0).sum()).source(np.ones((4, 3), F32))
    assert "d_x = " in src and " * (0.5 + 0.5 * np.sign(x))" in src
    assert "np.copyto(" in src and "np.where" not in src


# --- 3. d/dx x**0 ---------------------------------------------------------------------------
def test_derivative_of_x_to_the_zero_at_zero_is_zero():
    assert _grad(lambda x: x ** 0, 0.0) == 0.0
    assert _grad(lambda x: x ** 0.0, np.float32(0.0)) == 0.0
    np.testing.assert_array_equal(_grad(lambda x: (x ** 0).sum(), np.zeros(3)), 0.0)
    # an array exponent with a zero entry: only that entry is flat
    dx = _grad(lambda x: (x ** np.array([0.0, 1.0, 3.0])).sum(), np.array([0.0, 0.0, 2.0]))
    np.testing.assert_array_equal(dx, [0.0, 1.0, 12.0])
    # a traced exponent that happens to be 0
    dx, dy = _grad(lambda x, y: (x ** y).sum(), np.array([0.0, 2.0]), np.array([0.0, 3.0]),
                   argnums=(0, 1))
    np.testing.assert_array_equal(dx, [0.0, 12.0])
    np.testing.assert_allclose(dy, [0.0, 8 * np.log(2.0)])


def test_integer_exponents_never_multiply_zero_by_inf():
    x = np.array([0.0, 1.5])
    for n in (1, 2, 3, 4):
        dx = _grad(lambda x: (x ** n).sum(), x)
        np.testing.assert_allclose(dx, n * x ** (n - 1))


# --- 4. mean of float16 accumulates in float32, of integers in float64 --------------------------
def test_mean_of_float16_accumulates_in_float32():
    x = np.full(10_000, 10, np.float16)
    for fn in (lambda x: x.mean(), lambda x: np.mean(x), lambda x: np.mean(x.reshape(100, 100), 0)):
        got, want = graphc.compile(fn)(x), fn(x)
        assert got.dtype == want.dtype == F16
        np.testing.assert_array_equal(got, want)
        assert np.all(np.isfinite(got))
    g = graphc.grad(lambda x: x.mean())(x)
    assert g.dtype == F16 and np.all(g == F16(1e-4))


def test_mean_of_integers_accumulates_in_float64():
    x = np.full(4, 2 ** 62, np.int64)     # the int64 sum would overflow
    got = graphc.compile(lambda x: x.mean())(x)
    assert got.dtype == F64 and got == x.mean() == 2.0 ** 62
    # NumPy divides and casts back to int
    got = graphc.compile(lambda x: np.mean(x, dtype=np.int64))(np.array([1, 2, 2]))
    assert got.dtype == np.int64 and got == np.mean(np.array([1, 2, 2]), dtype=np.int64)


# --- 5. reductions: NumPy's positional order, explicit dtypes -----------------------------------
REDUCTIONS = [
    lambda a: np.sum(a, 1, np.float64),
    lambda a: np.sum(a, 1, None, None, True),
    lambda a: np.mean(a, 0, np.float64),
    lambda a: np.mean(a, 1, None, None, True),
    lambda a: np.max(a, 1, None, True),
    lambda a: np.min(a, 0, None, True),
    lambda a: np.amax(a, 1, None, True),
    lambda a: np.amin(a, 1, None, False),
    lambda a: np.add.reduce(a, 1, np.float64),
]


@pytest.mark.parametrize("i", range(len(REDUCTIONS)))
def test_reductions_take_numpys_positional_order(i):
    fn = REDUCTIONS[i]
    a = (np.arange(12, dtype=F32).reshape(3, 4) * 0.1).astype(F32)
    got, want = graphc.compile(fn)(a), fn(a)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn", [lambda a: a.sum(), lambda a: a.sum(dtype=np.uint8),
                                lambda a: np.sum(a, dtype=np.uint8), lambda a: np.sum(a, 0, np.int8),
                                lambda a: np.add.reduce(a, 0, np.uint8), lambda a: a.sum(dtype=bool),
                                lambda a: a.sum(dtype=np.uint16)])
def test_integer_sums_wrap_like_numpy(fn):
    a = np.full(300, 200, np.uint8)
    got, want = graphc.compile(fn)(a), fn(a)
    assert got.dtype == want.dtype
    assert got == want


# --- 6. signed zeros ---------------------------------------------------------------------------
def _same_bits(got, want):
    got, want = np.asarray(got), np.asarray(want)
    return (got.dtype == want.dtype and got.shape == want.shape
            and np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want)))


SIGNED_ZERO_FNS = {
    "x + 0.0": lambda x: x + 0.0,
    "0.0 + x": lambda x: 0.0 + x,
    "x + zeros": lambda x: x + np.zeros(3),
    "x + 0 (int)": lambda x: x + 0,
    "x - 0.0": lambda x: x - 0.0,
    "x + -0.0": lambda x: x + (-0.0),
    "x - -0.0": lambda x: x - (-0.0),
    "x * 1": lambda x: x * 1,
    "x * [0, -0, 0]": lambda x: x * np.array([0.0, -0.0, 0.0]),
    "x * [-0, -0, -0]": lambda x: x * np.full(3, -0.0),
    "const [0, -0, 0]": lambda x: (x, np.array([0.0, -0.0, 0.0])),
    "const [-0, -0, -0]": lambda x: (x, np.full(3, -0.0, np.float32)),
    "x + 0.0 (f32)": lambda x: x.astype(np.float32) + np.float32(0.0),
}


@pytest.mark.parametrize("name", sorted(SIGNED_ZERO_FNS))
def test_signed_zeros_survive_folding_and_constants(name):
    fn = SIGNED_ZERO_FNS[name]
    x = np.array([-0.0, 1.0, -2.0])
    got, want = graphc.compile(fn)(x), fn(x)
    if isinstance(want, tuple):
        assert all(_same_bits(g, w) for g, w in zip(got, want)), (got, want)
    else:
        assert _same_bits(got, want), (got, want)


def test_signed_zero_identities_still_fold():
    # x - 0.0, x + (-0.0) and x * 1 are identities: no operation in the generated code
    for fn in (lambda x: x - 0.0, lambda x: x + (-0.0), lambda x: x * 1.0):
        src = graphc.compile(fn).source(np.ones(3))
        assert "return x\n" in src, src
    src = graphc.compile(lambda x: x + 0.0).source(np.ones(3))
    assert "x + 0.0" in src


# --- 7. longdouble constants are written exactly ----------------------------------------------
THIRD = np.longdouble(1) / np.longdouble(3)

LONGDOUBLE_FNS = {
    "scalar": lambda x: x * THIRD,
    "uniform array": lambda x: x * np.full(2, THIRD),
    "uniform const": lambda x: (x, np.full(100, THIRD)),
    "small array": lambda x: x * np.array([THIRD, 2 * THIRD]),
    "large array": lambda x: (x, np.arange(100, dtype=np.longdouble) * THIRD),
    "returned scalar": lambda x: (x, THIRD),
    "tiny": lambda x: x * np.longdouble("1e-4000"),
}


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant,
                    reason="longdouble is float64 on this platform")
@pytest.mark.parametrize("name", sorted(LONGDOUBLE_FNS))
def test_longdouble_constants_keep_their_precision(name):
    fn = LONGDOUBLE_FNS[name]
    x = np.ones(2, np.longdouble)
    got, want = graphc.compile(fn)(x), fn(x)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)


def test_gradient_masks_on_empty_arrays():
    x = np.zeros((0, 3), F32)
    for f in (lambda x: np.maximum(x, 0).sum(), lambda x: graphc.nn.relu(x).sum(),
              lambda x: np.where(x > 0, x, 2 * x).sum()):
        g = graphc.grad(f)(x)
        assert g.shape == (0, 3) and g.dtype == F32
