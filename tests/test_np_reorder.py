"""np.pad / roll / rot90 / diff / take / take_along_axis / select / sort / argsort /
partition beyond the table-driven tests: gradient conventions, exactness against
NumPy where NumPy's own algorithm decides (argsort ties, partition arrangements),
invalid calls, and indexing a constant with a traced index."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import graphc
from graphc.errors import AxisError, InPlaceError, ShapeError, UnsupportedError
from graphc.ops import flips, padding, reorder

from _fd import fd_grad_args

RNG = np.random.default_rng(14)


@pytest.mark.parametrize("fn,impl", [
    (np.pad, padding.pad), (np.roll, padding.roll), (np.diff, padding.diff),
    (np.rot90, flips.rot90), (np.sort, reorder.sort), (np.argsort, reorder.argsort),
    (np.partition, reorder.partition), (np.take, reorder.take),
    (np.take_along_axis, reorder.take_along_axis), (np.select, reorder.select)])
def test_signature_is_numpys(fn, impl):
    assert inspect.signature(impl) == inspect.signature(fn)


def _check_grad(f, *args, argnums=0):
    got = graphc.grad(f, argnums=argnums)(*args)
    want = fd_grad_args(f, args, argnums if isinstance(argnums, tuple) else (argnums,))
    got = got if isinstance(argnums, tuple) else (got,)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


def test_select_gradient_goes_to_the_chosen_choice():
    x, y = RNG.standard_normal((3, 4)), RNG.standard_normal(4)

    def f(x, y):
        return np.sum(np.select([x < -0.3, x > 0.3], [x ** 2, y * x], default=np.sin(x)))
    assert np.allclose(graphc.compile(f)(x, y), f(x, y))
    _check_grad(f, x, y, argnums=(0, 1))


def test_sort_gradient_at_ties_follows_stable_order():
    x = np.array([2.0, 1.0, 2.0, 1.0])
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    g = graphc.grad(lambda x: np.sum(np.sort(x) * w))(x)
    # sorted: x[1], x[3], x[0], x[2] (stable), so x[1] gets w[0], x[3] w[1], ...
    np.testing.assert_array_equal(g, [100.0, 1.0, 1000.0, 10.0])


def test_sort_and_partition_gradients_on_random_data():
    x = RNG.standard_normal((4, 33))
    w = RNG.standard_normal((4, 33))
    _check_grad(lambda x: np.sum(np.sort(x, axis=None).reshape(4, 33) * w), x)
    _check_grad(lambda x: np.sum(np.partition(x, (5, 20)) * w), x)


def test_take_gradient_accumulates_repeated_indices():
    x = RNG.standard_normal(4)
    g = graphc.grad(lambda x: np.sum(np.take(x, np.array([0, 0, 3, 0]))))(x)
    np.testing.assert_array_equal(g, [3.0, 0.0, 0.0, 1.0])


def test_edge_pad_gradient_sums_the_copies():
    x = RNG.standard_normal((2, 3))
    g = graphc.grad(lambda x: np.sum(np.pad(x, ((0, 0), (2, 1)), mode="edge")))(x)
    np.testing.assert_array_equal(g, [[3.0, 1.0, 2.0], [3.0, 1.0, 2.0]])


def test_traced_constant_values_get_a_gradient():
    x = RNG.standard_normal((2, 3))

    def f(x, c):
        return np.sum(np.pad(x, 1, constant_values=c) ** 2)
    c = 0.7
    assert np.isclose(graphc.compile(f)(x, c), f(x, c))
    _check_grad(f, x, np.float64(c), argnums=(0, 1))


@pytest.mark.parametrize("n", [7, 40, 300])
def test_argsort_ties_and_partition_arrangement_are_numpys(n):
    """The default kind's tie order and partition's arrangement depend on NumPy's
    algorithm (SIMD paths included): graphc emits NumPy's own calls, so they agree."""
    x = RNG.integers(0, 4, n).astype(np.float64)
    np.testing.assert_array_equal(graphc.compile(np.argsort)(x), np.argsort(x))
    y = RNG.standard_normal((3, n))
    for kth in (0, n // 3, n - 1, [1, n // 2]):
        got = graphc.compile(lambda y: np.partition(y, kth))(y)
        np.testing.assert_array_equal(got, np.partition(y, kth))
        got = graphc.compile(lambda x: np.partition(x, kth))(x)
        np.testing.assert_array_equal(got, np.partition(x, kth))


def test_sort_puts_nan_last_like_numpy():
    x = np.array([[np.nan, 1.0, -np.inf], [2.0, np.nan, 0.0]])
    for axis in (0, 1, None):
        np.testing.assert_array_equal(graphc.compile(lambda x: np.sort(x, axis=axis))(x),
                                      np.sort(x, axis=axis))


def test_rot90_composes_like_numpy():
    x = RNG.standard_normal((2, 3, 4))
    for k in range(-5, 6):
        for axes in [(0, 1), (1, 0), (2, 1), (0, -1)]:
            got = graphc.compile(lambda x: np.rot90(x, k, axes))(x)
            np.testing.assert_array_equal(got, np.rot90(x, k, axes))


def test_take_along_axis_with_argsort_matches_numpy():
    x = RNG.standard_normal((3, 5))

    def f(x):
        return np.take_along_axis(x, np.argsort(x, axis=1)[:, ::-1], axis=1)
    np.testing.assert_array_equal(graphc.compile(f)(x), f(x))
    _check_grad(lambda x: np.sum(f(x) * np.arange(5.0)), x)


def _raises(err, f, *args):
    with pytest.raises(err):
        f(*args)                                    # NumPy itself raises the builtin
    with pytest.raises(err) as info:
        graphc.compile(f)(*args)
    return info


X = np.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize("f,err", [
    (lambda x: np.pad(x, -1), ValueError),
    (lambda x: np.pad(x, ((1, 2), (1, 2), (1, 2))), ValueError),
    (lambda x: np.pad(x, 1, mode="nonsense"), ValueError),
    (lambda x: np.pad(x, 1, mode="edge", constant_values=1), ValueError),
    (lambda x: np.pad(x, 1.5), TypeError),
    (lambda x: np.pad(x[:0], 1, mode="reflect"), ValueError),
    (lambda x: np.roll(x, 1, axis=2), np.exceptions.AxisError),
    (lambda x: np.diff(x, n=-1), ValueError),
    (lambda x: np.diff(x[0, 0]), ValueError),
    (lambda x: np.diff(x, axis=2), np.exceptions.AxisError),
    (lambda x: np.rot90(x, 1, (0, 0)), ValueError),
    (lambda x: np.rot90(x, 1, (0, 1, 2)), ValueError),
    (lambda x: np.sort(x, axis=2), np.exceptions.AxisError),
    (lambda x: np.sort(x, kind="nonsense"), ValueError),
    (lambda x: np.argsort(x, kind=3), TypeError),
    (lambda x: np.sort(x, kind="stable", stable=True), ValueError),
    (lambda x: np.sort(x, order="a"), ValueError),
    (lambda x: np.argsort(x, axis=-3), np.exceptions.AxisError),
    (lambda x: np.partition(x, 4), ValueError),
    (lambda x: np.partition(x, 1, axis=2), np.exceptions.AxisError),
    (lambda x: np.take(x, np.array([1.0])), TypeError),
    (lambda x: np.take(x, 1, axis=2), np.exceptions.AxisError),
    (lambda x: np.take(x, 0, mode="bogus"), ValueError),
    (lambda x: np.take_along_axis(x, np.array([0, 1]), axis=1), ValueError),
    (lambda x: np.take_along_axis(x, np.array([[0, 1]]), axis=None), ValueError),
    (lambda x: np.select([x > 1], [x, x]), ValueError),
    (lambda x: np.select([x], [x]), TypeError),
])
def test_invalid_calls_raise_what_numpy_raises(f, err):
    info = _raises(err, f, X)
    assert isinstance(info.value, graphc.GraphcError)


def test_traced_index_out_of_range_raises_at_run_time():
    f = graphc.compile(lambda x, i: np.take(x, i))
    with pytest.raises(IndexError):
        f(X, np.array([12]))


@pytest.mark.parametrize("f", [lambda x: x.sort(), lambda x: x.partition(1),
                               lambda x: np.take(x, 0, out=np.zeros(())),
                               lambda x: x.take(np.array([0]), 0, np.zeros((1, 4)))])
def test_in_place_forms_are_in_place_errors(f):
    with pytest.raises(InPlaceError):
        graphc.compile(f)(X)


def test_traced_shift_kth_and_wrap_are_clear_errors():
    # a traced integer shift is baked in with a guard (issue 15); from a Spec it has no value
    np.testing.assert_array_equal(graphc.compile(lambda x, s: np.roll(x, s))(X, np.int64(1)),
                                  np.roll(X, 1))
    with pytest.raises(graphc.ControlFlowError):
        graphc.trace(lambda x, s: np.roll(x, s), X, graphc.Spec((), "int64"))
    with pytest.raises(UnsupportedError):
        graphc.compile(lambda x, k: np.partition(x, k))(X, np.int64(1))
    with pytest.raises(UnsupportedError, match="mode='wrap'"):
        graphc.compile(lambda x, i: np.take(x, i, mode="wrap"))(X, np.array([13]))
    with pytest.raises(UnsupportedError, match="reflect_type='odd'"):
        graphc.compile(lambda x: np.pad(x, 1, mode="reflect", reflect_type="odd"))(X)
    with pytest.raises(UnsupportedError, match="not supported"):
        graphc.compile(lambda x: np.pad(x, 1, mode="mean"))(X)


def test_take_clip_with_traced_indices_is_exact():
    i = np.array([-3, 0, 5, 11, 40])
    got = graphc.compile(lambda x, i: np.take(x, i, mode="clip"))(X, i)
    np.testing.assert_array_equal(got, np.take(X, i, mode="clip"))


def test_indexing_a_constant_with_a_traced_index_names_the_traced_spellings():
    """NumPy's ndarray.__getitem__ runs for np.eye(K)[labels] (no dispatch protocol covers
    indexing) and np.take dispatches on its first argument only, so neither can be
    traced: both say what to write instead, and those spellings work."""
    labels = np.array([0, 2, 1, 1])
    for f in (lambda lab: np.eye(3)[lab], lambda lab: np.take(np.eye(3), lab, axis=0)):
        with pytest.raises(UnsupportedError) as info:
            graphc.compile(f)(labels)
        assert "np.take_along_axis(table, labels[:, None], axis=0)" in str(info.value)
        assert "labels[:, None] == np.arange(K)" in str(info.value)
    z = RNG.standard_normal((4, 3))
    table = RNG.standard_normal((3, 3))

    def one_hot(lab, z):
        return np.sum((lab[:, None] == np.arange(3)).astype(np.float64) * z)

    def rows(lab, z):
        return np.sum(np.take_along_axis(table, lab[:, None], axis=0) * z)
    assert np.isclose(graphc.compile(one_hot)(labels, z), np.sum(np.eye(3)[labels] * z))
    assert np.isclose(graphc.compile(rows)(labels, z), np.sum(table[labels] * z))
    np.testing.assert_allclose(graphc.grad(rows, argnums=1)(labels, z), table[labels])


def test_axis_error_is_numpys_class():
    with pytest.raises(AxisError):
        graphc.compile(lambda x: np.roll(x, 1, axis=-3))(X)
    with pytest.raises(ShapeError):
        graphc.compile(lambda x: np.diff(x, n=-2))(X)
