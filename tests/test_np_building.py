"""Building and reshaping arrays while tracing (issue 14): np.array/np.asarray of lists that
mix traced values and Python numbers, stack/concatenate of mixed lists, the split family
(gradients from every piece), meshgrid/broadcast_arrays, the *_like functions and copy,
and NumPy's errors for invalid calls.  The table-driven value tests of each function are
in tests/test_numpy_functions.py (from the samples next to the implementations)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import graphc
from graphc.errors import AxisError, InPlaceError, ShapeError, UnsupportedError

from _fd import fd_grad_args

R = np.random.default_rng(14)


def _check_grad(f, *args, argnums=0):
    """graphc's gradient of ``sum(f(...) * w)`` (every output, lists too) against central
    finite differences."""
    out = f(*args)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    weights = [R.standard_normal(np.shape(o)) for o in outs]

    def loss(*a):
        res = f(*a)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        return sum(np.sum(r * w) for r, w in zip(res, weights))

    argnums = argnums if isinstance(argnums, tuple) else (argnums,)
    got = graphc.grad(loss, argnums=argnums)(*args)
    want = fd_grad_args(loss, args, argnums)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    return got


def _same(f, *args):
    want, got = f(*args), graphc.compile(f)(*args)
    for w, g in zip(*(x if isinstance(x, (list, tuple)) else (x,) for x in (want, got))):
        w, g = np.asarray(w), np.asarray(g)
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-6)


# --- np.array / np.asarray ----------------------------------------------------------------
def test_np_array_of_traced_scalars_and_python_numbers():
    def f(a, b):
        return np.array([a, b, 0.5]) * np.array([[a], [2.0]])
    _same(f, np.float32(1.5), np.float32(-2.0))          # float32 scalars and a Python float
    _same(f, np.float64(1.5), np.float64(-2.0))
    _check_grad(f, 1.5, -2.0, argnums=(0, 1))


def test_np_array_dtype_ndmin_and_nested_lists():
    def f(x):
        return np.array([[x[0], 1], [2, x[1]]], dtype=np.float32, ndmin=3)
    _same(f, np.arange(2.0))

    def g(x):
        return np.array([x, x * 2]), np.asarray(x, dtype=np.float32), np.asanyarray([x[1], 3])
    _same(g, R.standard_normal(3))
    _check_grad(lambda x: np.array([x, 3 * x, np.ones(3)]), R.standard_normal(3))


def test_np_array_mixed_shapes_is_numpys_error():
    with pytest.raises(ShapeError, match="inhomogeneous"):
        graphc.compile(lambda x: np.array([x, 1.0]))(np.ones(2))


def test_np_asarray_of_a_traced_value_is_the_value():
    seen = []

    def f(x):
        y = np.asarray(x)
        seen.append(y is x)
        return y * 2
    assert np.allclose(graphc.compile(f)(np.ones(3)), 2)
    assert seen == [True]


def test_np_array_wrapper_is_scoped_to_the_trace_and_thread():
    original = np.array
    results = {}

    def other_thread():
        a = np.array([1.0, 2.0])
        results["other"] = (type(a), a.dtype)

    def f(x):
        results["inside"] = np.array is not original
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        results["plain"] = type(np.array([1, 2]))     # no traced value: NumPy's own
        return np.array([x[0], x[1]])

    graphc.compile(f)(np.ones(2))
    assert results == {"inside": True, "other": (np.ndarray, np.float64), "plain": np.ndarray}
    assert np.array is original and np.asarray.__module__ == "numpy"
    with pytest.raises(UnsupportedError):            # after a failed trace too
        graphc.compile(lambda x: np.array([x, undefined_helper(x)]))(np.ones(2))
    assert np.array is original


def undefined_helper(x):
    raise UnsupportedError("boom")


def test_library_code_and_imported_array_keep_the_clear_error():
    from numpy import array as imported_array
    with pytest.raises(UnsupportedError, match="converted to a concrete NumPy array") as e:
        graphc.compile(lambda x: imported_array([x, 1.0]))(np.ones(()))
    assert "np.stack" in str(e.value)
    ns = {"np": np}
    exec(compile("def lib(x):\n    return np.asarray(x)\n", "<library>", "exec"), ns)
    with pytest.raises(UnsupportedError):
        graphc.compile(lambda x: ns["lib"](x))(np.ones(2))


# --- stack / concatenate of mixed lists ----------------------------------------------------
def test_stack_of_traced_and_python_scalars():
    _same(lambda x: np.stack([x, 0.5]), np.float32(2.0))        # float64, as NumPy
    _same(lambda x: np.stack([x, 0.5]), np.ones(()))
    _same(lambda x: np.stack([x, np.zeros(3), x * 2], axis=1), R.standard_normal(3))
    _check_grad(lambda x: np.stack([x[0], 0.5, x[1] * x[2]]), R.standard_normal(3))
    # (NumPy dispatches np.stack on the list's items: a nested list needs np.array)
    _check_grad(lambda x: np.stack([x[:2], [1.0, x[2]]]), R.standard_normal(3))
    _check_grad(lambda x: np.array([[x[0], 1.0], [x[1], x[2]]]), R.standard_normal(3))


def test_concatenate_and_friends_of_mixed_lists():
    x = R.standard_normal((2, 3))
    _same(lambda x: np.concatenate([x, np.ones((1, 3))]), x)
    _same(lambda x: np.hstack([x[0], 1.5, x[1]]), x)
    _same(lambda x: np.vstack([x, [1.0, 2.0, 3.0]]), x)
    _same(lambda x: np.column_stack([x[0], x[1], np.arange(3)]), x)
    _same(lambda x: np.append(x, 2.0), x)
    for f in (lambda x: np.concatenate([x, x[:1]], axis=None), lambda x: np.hstack([x, x]),
              lambda x: np.vstack([x[0], x]), lambda x: np.dstack([x, x]),
              lambda x: np.column_stack([x.T, x[0]]), lambda x: np.append(x, x[:1], axis=0)):
        _check_grad(f, x)


def test_stack_and_concatenate_errors_are_numpys():
    x = np.ones((2, 3))
    cases = [(lambda x: np.stack([x, x[0]]), ShapeError, "same shape"),
             (lambda x: np.concatenate([x[0, 0], x[0, 1]]), ShapeError, "zero-dimensional"),
             (lambda x: np.concatenate([x, x[0]]), ShapeError, "dimensions"),
             (lambda x: np.stack([x, x], axis=3), AxisError, "axis 3"),
             (lambda x: np.stack([x, x], dtype=np.int64), UnsupportedError, "same_kind"),
             (lambda x: np.stack([x, x], casting="bad"), ValueError, "casting"),
             (lambda x: np.stack([x, x], out=x), InPlaceError, "out="),
             (lambda x: np.stack([]) if False else np.stack(iter([x])), TypeError, "sequence")]
    for f, err, text in cases:
        with pytest.raises(err, match=text):
            graphc.compile(f)(x)
        with pytest.raises(ValueError if err is ShapeError or err is AxisError else Exception):
            f(x)                                             # NumPy agrees it is an error


# --- splitting: gradients from every piece -----------------------------------------------------
@pytest.mark.parametrize("f", [
    lambda x: np.split(x, 3), lambda x: np.split(x, [1, 4], axis=0),
    lambda x: np.array_split(x, 4), lambda x: np.array_split(x, 3, axis=1),
    lambda x: np.vsplit(x, 2), lambda x: np.hsplit(x, [1]), lambda x: np.split(x, [2, 2, 9]),
])
def test_split_gradients_flow_from_every_piece(f):
    _check_grad(f, R.standard_normal((6, 4)))


def test_unused_pieces_get_zero_gradient():
    x = R.standard_normal((6, 2))
    g = graphc.grad(lambda x: np.sum(np.split(x, 3)[1] ** 2))(x)
    assert np.all(g[:2] == 0) and np.all(g[4:] == 0)
    np.testing.assert_allclose(g[2:4], 2 * x[2:4])
    _check_grad(lambda x: np.dsplit(x, 2), R.standard_normal((2, 2, 4)))


def test_split_errors():
    x = np.ones((5, 2))
    with pytest.raises(ShapeError, match="equal division"):
        graphc.compile(lambda x: np.split(x, 2))(x)
    with pytest.raises(ShapeError, match="larger than 0"):
        graphc.compile(lambda x: np.array_split(x, 0))(x)
    with pytest.raises(ShapeError, match="2 or more"):
        graphc.compile(lambda x: np.vsplit(x[0], 2))(x)


# --- reshaping, repeating, broadcasting -------------------------------------------------------
@pytest.mark.parametrize("f", [
    lambda x: np.repeat(x, 2), lambda x: x.repeat([1, 0, 3], axis=1), lambda x: np.tile(x, (2, 1, 2)),
    lambda x: np.moveaxis(x, 0, -1), lambda x: np.rollaxis(x, 1), lambda x: x.swapaxes(0, 1),
    lambda x: x.ravel("F"), lambda x: x.flatten(), lambda x: np.squeeze(x[None, :, :1], axis=(0, 2)),
    lambda x: np.atleast_3d(x), lambda x: np.atleast_2d(x[0], x), lambda x: np.copy(x) * x.copy(),
    lambda x: np.broadcast_arrays(x, x[0], 2.0), lambda x: np.meshgrid(x[0], x[1, :2]),
    lambda x: np.meshgrid(x[0], x[1], indexing="ij", sparse=True),
    lambda x: np.full_like(x, x[0, 0]) * x,
])
def test_reshaping_gradients(f):
    _check_grad(f, R.standard_normal((2, 3)))


def test_reshaping_errors():
    x = np.ones((2, 3))
    cases = [(lambda x: np.moveaxis(x, 0, 2), AxisError), (lambda x: np.moveaxis(x, (0, 1), 0), ValueError),
             (lambda x: np.rollaxis(x, 0, 4), AxisError), (lambda x: np.squeeze(x, 0), ValueError),
             (lambda x: np.repeat(x, [1, 2]), ValueError), (lambda x: np.repeat(x, -1), ValueError),
             (lambda x: x.ravel("K"), UnsupportedError), (lambda x: x.ravel("Q"), ValueError),
             (lambda x: np.swapaxes(x, 0, 2), AxisError), (lambda x: np.broadcast_arrays(x, x[:, :2]), ValueError),
             (lambda x: np.meshgrid(x, indexing="yx"), ValueError)]
    for f, err in cases:
        with pytest.raises(err):
            graphc.compile(f)(x)


def test_repeat_with_traced_counts_is_a_clear_error():
    with pytest.raises(UnsupportedError, match="data-dependent"):
        graphc.compile(lambda x, n: np.repeat(x, n))(np.ones(3), np.int64(2))


# --- new arrays ---------------------------------------------------------------------------------
def test_like_functions_give_traced_constants():
    kinds = []

    def f(x):
        ys = [np.zeros_like(x), np.ones_like(x, dtype=np.int32), np.empty_like(x, shape=(4,)),
              np.full_like(x, 7, shape=(2, 2))]
        kinds.extend(type(y).__name__ for y in ys)
        return ys
    got = graphc.compile(f)(np.ones(3, np.float32))
    assert kinds == ["Tracer"] * 4
    assert [(g.shape, g.dtype) for g in got] == [((3,), np.float32), ((3,), np.int32),
                                                 ((4,), np.float32), ((2, 2), np.float32)]
    assert np.all(got[2] == 0) and np.all(got[3] == 7)


def test_copy_is_a_fresh_value():
    seen = []

    def f(x):
        y, z = x.copy(), np.copy(x, order="C")
        seen.append((y is x, z is x))
        return y + z
    assert np.allclose(graphc.compile(f)(np.ones(2)), 2)
    assert seen == [(False, False)]


def test_row_stack_is_numpys_deprecated_vstack():
    with pytest.warns(DeprecationWarning):
        _same(lambda x: np.row_stack([x, 1.0 + x]), np.ones(2))


def test_signatures_are_numpys():
    import inspect
    from graphc.ops._numpy_table import FUNCTIONS
    from graphc.ops import assemble, splitting
    mine = [f for f, impl in FUNCTIONS.items() if impl.__module__ in (assemble.__name__,
                                                                      splitting.__name__)]
    assert len(mine) == 29
    for f in mine:
        assert inspect.signature(FUNCTIONS[f]) == inspect.signature(f), f.__name__
