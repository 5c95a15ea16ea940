"""Writes into traced arrays (API.md section 1): functional updates with NumPy's
semantics, gradients through every write, view tracking, generated code."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from tests._fd import fd_grad_args, rel_err

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((3, 3)) * 0.5
V = RNG.standard_normal(3)


def _copies(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def check(f, *args, argnums=0):
    """Values against NumPy running ``f`` itself; gradients against finite differences."""
    want = f(*_copies(args))
    got = graphc.compile(f)(*_copies(args))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.asarray(got).dtype == np.asarray(want).dtype

    def loss(*a):
        return np.sum(np.sin(f(*_copies(a))))

    nums = (argnums,) if isinstance(argnums, int) else argnums
    g = graphc.grad(loss, argnums=nums)(*_copies(args))
    ref = fd_grad_args(loss, _copies(args), nums)
    for a, b in zip(g, ref):
        assert rel_err(a, b) < 1e-6


# --- the forms of a write ---------------------------------------------------------------
def zeros_like_writes(x):
    y = np.zeros_like(x)
    y[0] = x[1]
    y[1:] = x[:-1] * 2
    y[-1] += 3.0
    return y


def rnn(x, W):
    h = np.zeros_like(x)
    for t in range(x.shape[0] - 1):
        h[t + 1] = np.tanh(h[t] @ W + x[t])
    return h


def constant_mask(x):
    y = x * 1.0
    y[np.array([True, False, True, False])] = 0.5
    return y


def traced_mask(x):
    y = x * 2.0
    y[x > 0] = 0
    y[x[:, 0] < 0] = x[0]           # a row mask with a row value
    return y


def augmented_slice(x):
    y = x * 1.0
    y[:, 1:] += x[:, :1]
    y[1] *= y[2]
    return y


def into_the_argument(x):
    x[0] = 5.0
    x[::2] *= 3.0
    x += 1.0
    return x


def integer_arrays(x, v):
    y = np.ones_like(x)
    y[[0, 2]] = x[[3, 1]]
    y[np.array([1, 1]), [0, 2]] = v[:2]
    y[[3, 3], 1] = v[1:]                     # repeated: the last write wins
    return y


def steps_and_ellipsis(x, v):
    y = x * 1.0
    y[..., ::-2] = v[:2]
    y[-1, ...] = v
    y[1::2, -1] = 7.0
    return y


def full_writes(x, v):
    y = np.zeros_like(x)
    y[...] = v
    z = x * 1.0
    z[:] = 0.0
    return y + z


def list_value(x):
    y = np.zeros_like(x)
    y[0] = [x[1, 0], 2.0, x[2, 2]]
    return y


def old_value_read(x):
    y = x * 2.0
    a = y[0] * y[1]                  # a copy (arithmetic): it keeps the old values
    s = y[0, 0]                      # a scalar: a copy too
    y[0] = 0.0
    return y + a + s


def disjoint_view(x):
    y = x * 2.0
    top = y[:2]
    y[3] = x[0]                      # does not touch top
    return y + top.sum()


@pytest.mark.parametrize("f,args,argnums", [
    (zeros_like_writes, (X,), 0),
    (rnn, (X, W), (0, 1)),
    (constant_mask, (X,), 0),
    (traced_mask, (X,), 0),
    (augmented_slice, (X,), 0),
    (into_the_argument, (X,), 0),
    (integer_arrays, (X, V), (0, 1)),
    (steps_and_ellipsis, (X, V), (0, 1)),
    (full_writes, (X, V), (0, 1)),
    (list_value, (X,), 0),
    (old_value_read, (X,), 0),
    (disjoint_view, (X,), 0),
], ids=lambda p: getattr(p, "__name__", None))
def test_writes_match_numpy_and_finite_differences(f, args, argnums):
    check(f, *args, argnums=argnums)


def test_traced_index_array_with_repeats():
    def f(x, idx):
        y = x * 1.0
        y[idx] = x[:3] * 10.0
        return y
    idx = np.array([2, 0, 2])
    x = RNG.standard_normal(4)
    np.testing.assert_allclose(graphc.compile(f)(x, idx), f(x.copy(), idx))
    loss = lambda x, idx: np.sum(np.sin(f(x.copy(), idx)))   # noqa: E731
    g = graphc.grad(loss)(x, idx)
    assert rel_err(g, fd_grad_args(loss, (x, idx), (0,))[0]) < 1e-6


def test_float32_write_keeps_the_dtype():
    def f(x):
        y = np.zeros_like(x)
        y[1] = x[0] * np.float64(2.0)
        y[2] = 1.5
        return y
    x = np.arange(3, dtype=np.float32)
    got = graphc.compile(f)(x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, f(x))


def test_copies_never_alias_their_input():
    def f(x):
        a = x.copy()
        a[0] = 100.0
        b = x * 1
        b[1] = 100.0
        c = +x
        c[2] = 100.0
        return x
    np.testing.assert_array_equal(graphc.compile(f)(np.ones(3)), np.ones(3))


def test_the_caller_array_is_never_written():
    x = np.ones(3)
    graphc.compile(into_the_argument)(x)
    graphc.grad(lambda x: into_the_argument(x).sum())(x)
    np.testing.assert_array_equal(x, np.ones(3))


# --- generated code ---------------------------------------------------------------------
def test_generated_code_writes_in_place_when_nothing_reads_the_old_array():
    src = graphc.compile(rnn).source(X, W)
    assert "h = np.zeros((4, 3), dtype=np.float64)\n" in src
    assert "    h[1] = " in src and "    h[3] = " in src
    assert ".copy()" not in src


def test_generated_code_copies_when_the_old_array_is_still_read():
    def f(x):
        y = x * 2.0
        a = y[0] * y[1]
        y[0] = 0.0
        return (y * y).sum() + a.sum()
    # the backward pass of y[0] * y[1] reads the old y after the write
    src = graphc.grad(f).source(X)
    assert ".copy()" in src
    assert rel_err(graphc.grad(f)(X), fd_grad_args(f, (X,), (0,))[0]) < 1e-6
    # never a write into the caller's array
    assert "x_1 = x.copy()" in graphc.compile(into_the_argument).source(X)


def test_generated_code_keeps_old_values_a_later_line_reads():
    def f(x):
        y = x * 2.0
        r = y[1:3]                    # a view, consumed below before the write
        s = r * 1.0                   # a copy that outlives the write
        y[1] = 0.0
        return y.sum() + s.sum()
    x = RNG.standard_normal(4)
    assert np.isclose(graphc.compile(f)(x), f(x.copy()))
    g = graphc.grad(f)(x)
    assert rel_err(g, fd_grad_args(f, (x,), (0,))[0]) < 1e-6


# --- errors -------------------------------------------------------------------------------
def _lines(f, *texts):
    import inspect
    src, first = inspect.getsourcelines(f)
    return [f"test_np_writes.py:{first + i}" for t in texts
            for i, line in enumerate(src) if t in line]


def test_a_view_used_after_a_write_it_would_see_names_both_lines():
    def f(x):
        y = x * 2
        v = y[:2]
        y[0] = 1.0
        return v.sum()
    with pytest.raises(graphc.InPlaceError) as info:
        graphc.compile(f)(np.ones(3))
    made, written = _lines(f, "v = y[:2]", "y[0] = 1.0")
    assert made in str(info.value) and written in str(info.value)
    assert isinstance(info.value, TypeError)


def test_a_write_through_a_view_names_both_lines():
    def f(x):
        v = x[1:]
        v[0] = 1.0
        return x.sum()
    with pytest.raises(graphc.InPlaceError) as info:
        graphc.compile(f)(np.ones(3))
    made, written = _lines(f, "v = x[1:]", "v[0] = 1.0")
    assert made in str(info.value) and written in str(info.value)


@pytest.mark.parametrize("body", ["v += 1.0", "v *= 2.0"])
def test_augmented_assignment_on_a_view_is_a_write_through_it(body):
    ns = {"np": np}
    exec(f"def f(x):\n    v = x.T\n    {body}\n    return x.sum()", ns)
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(ns["f"])(np.ones((2, 2)))


def test_views_through_reshape_and_iteration_are_tracked():
    def f(x):
        y = x * 1.0
        flat = y.reshape(-1)
        y[0, 0] = 5.0
        return flat.sum()
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(f)(X)

    def g(x):
        y = x * 1.0
        for row in y:
            row[0] = 0.0
        return y
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(g)(X)


def test_writing_a_traced_value_into_a_constant_numpy_array_suggests_zeros_like():
    def f(x):
        z = np.zeros(3)
        z[0] = x[0]
        return z.sum()
    with pytest.raises(graphc.InPlaceError, match="np.zeros_like"):
        graphc.compile(f)(np.ones(3))


@pytest.mark.parametrize("body,kind", [
    ("y[5] = 1.0", IndexError),
    ("y[0, 0] = 1.0", IndexError),
    ("y[:2] = np.ones(3)", ValueError),
    ("y += np.ones((2, 3))", ValueError),
])
def test_invalid_writes_raise_what_numpy_raises(body, kind):
    ns = {"np": np}
    exec(f"def f(x):\n    y = x * 1.0\n    {body}\n    return y", ns)
    with pytest.raises(kind):
        ns["f"](np.ones(3))
    with pytest.raises(kind) as info:
        graphc.compile(ns["f"])(np.ones(3))
    assert isinstance(info.value, graphc.GraphcError)


def test_integer_array_augmented_by_a_float_is_numpys_casting_error():
    def f(x, n):
        m = n * 1
        m += x
        return m
    with pytest.raises(TypeError):
        f(np.ones(3), np.arange(3))
    with pytest.raises(TypeError):
        graphc.compile(f)(np.ones(3), np.arange(3))


def test_a_traced_mask_with_a_value_per_true_entry_is_unsupported():
    def f(x):
        y = x * 1.0
        y[y > 0] = y[:2]              # how many entries are True is known only at run time
        return y
    with pytest.raises(graphc.UnsupportedError, match="np.where"):
        graphc.compile(f)(np.array([1.0, -1.0, 2.0]))
