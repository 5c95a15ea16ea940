"""A ufunc's ``dtype=`` and ``casting=``: NumPy's loop, NumPy's bits, NumPy's refusals.

NumPy casts the inputs to the loop ``dtype=`` selects and computes in it
(``np.subtract(a, b, dtype=np.float32)`` rounds ``a`` and ``b`` first).  graphc once
computed in the inputs' dtype and cast the result: an ulp off on a quarter of float32
sums, ``0.0`` against ``1e-9`` in a cancellation, and ``np.add(1.7, 1.7, dtype=np.int32,
casting="unsafe")`` 3 against NumPy's 2; a cast NumPy refuses went through.
"""
import numpy as np
import pytest

import graphc
from graphc.errors import UnsupportedError

RNG = np.random.default_rng(7)
X, Y = RNG.normal(size=(64,)) * 100, RNG.normal(size=(64,))
INTS = np.arange(-5, 5)

CASES = {
    "add f32": (lambda x, y: np.add(x, y, dtype=np.float32), (X, Y)),
    "cancellation": (lambda x, y: np.subtract(x, y, dtype=np.float32),
                     (np.array([1 + 1e-9, 2.0]), np.array([1.0, 1.0]))),
    "unsafe to int": (lambda x, y: np.add(x, y, dtype=np.int32, casting="unsafe"),
                      (np.full(3, 1.7), np.full(3, 1.7))),
    "exp f32": (lambda x: np.exp(x / 100, dtype=np.float32), (X,)),
    "f16": (lambda x, y: np.multiply(x, y, dtype=np.float16), (X, Y)),
    "Python float": (lambda x: np.add(x, 1.1, dtype=np.float32), (X,)),
    "ints in float64": (lambda a, b: np.true_divide(a, b, dtype=np.float64), (INTS, INTS + 7)),
    "comparison to bool": (lambda x, y: np.less(x, y, dtype=bool), (X, Y)),
    "casting no, one dtype": (lambda a: np.add(a, 1, casting="no"), (INTS,)),
    "divmod": (lambda x, y: np.divmod(x, y, dtype=np.float32)[1], (X, Y)),
    "power": (lambda x, y: np.power(np.abs(x), y, dtype=np.float32), (X, Y)),
    "matmul": (lambda x, y: np.matmul(x.reshape(8, 8), y.reshape(8, 8), dtype=np.float32), (X, Y)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_like_numpy_bit_for_bit(name):
    fn, args = CASES[name]
    want, got = fn(*args), graphc.compile(fn)(*args)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    np.testing.assert_array_equal(got, want)


def test_the_loop_dtype_is_where_the_arithmetic_happens():
    """The case that differs most: float32 inputs round before they cancel."""
    f = graphc.compile(lambda x, y: np.subtract(x, y, dtype=np.float32))
    assert f(np.array([1 + 1e-9]), np.array([1.0]))[0] == 0.0
    assert "x.astype(np.float32) - y.astype(np.float32)" in \
        f.source(np.array([1 + 1e-9]), np.array([1.0]))


def test_float32_sums_agree_on_many_pairs():
    """The ulp the output cast gave on 25 % of pairs (NumPy rounds each input first)."""
    x, y = RNG.uniform(-200, 200, 10_000), RNG.uniform(-1, 1, 10_000)
    f = lambda x, y: np.add(x, y, dtype=np.float32)        # noqa: E731
    np.testing.assert_array_equal(graphc.compile(f)(x, y), f(x, y))


@pytest.mark.parametrize("fn, args", [
    (lambda x, y: np.add(x, y, dtype=np.int32), (X, Y)),             # same_kind: float -> int
    (lambda x, y: np.less(x, y, dtype=np.float32), (X, Y)),          # no such loop
    (lambda x, y: np.add(x, y, casting="no"), (X.astype(np.float32), Y)),
])
def test_what_numpy_refuses_is_refused(fn, args):
    with pytest.raises(TypeError):
        fn(*args)
    with pytest.raises(UnsupportedError) as e:
        graphc.compile(fn)(*args)
    assert "test_ufunc_dtype.py:" in str(e.value) and "ast" in str(e.value)   # (cast/casting)


def test_gradient_through_a_float32_loop():
    """The gradient flows back through the input casts (astype's VJP)."""
    g = graphc.grad(lambda x, y: np.sum(np.multiply(x, y, dtype=np.float32)), argnums=(0, 1))
    dx, dy = g(X, Y)
    assert dx.dtype == dy.dtype == np.float64
    np.testing.assert_array_equal(dx, Y.astype(np.float32))
    np.testing.assert_array_equal(dy, X.astype(np.float32))
