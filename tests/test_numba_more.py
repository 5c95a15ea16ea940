"""target="numba" row kernels: small products, sums over the rows and whole small nets
in one loop agree with the NumPy target (1e-12 in float64, 1e-5 in float32), NaN/inf
included, and read as loops."""
import numpy as np
import pytest

import graphc
from test_codegen import check_golden

numba = pytest.importorskip("numba")

from benchmarks import workloads as W  # noqa: E402


def _close(a, b, rtol):
    la, lb = graphc.pytree.flatten(a)[0], graphc.pytree.flatten(b)[0]
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape and u.dtype == v.dtype
        finite = np.isfinite(v)
        assert np.array_equal(np.isnan(u), np.isnan(v))
        assert np.array_equal(u[~finite & ~np.isnan(v)], v[~finite & ~np.isnan(v)])
        scale = max(float(np.max(np.abs(v[finite]))), 1e-30) if finite.any() else 1.0
        np.testing.assert_allclose(u[finite], v[finite], rtol=rtol, atol=rtol * scale)


def _both(fn, *args, grad=False, argnums=0):
    make = graphc.value_and_grad if grad else graphc.compile
    kw = {"argnums": argnums} if grad else {}
    fused, plain = make(fn, target="numba", **kw), make(fn, **kw)
    with np.errstate(all="ignore"):
        return fused(*args), plain(*args), fused


RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def _caller(src):
    """The generated function's statements (before the kernels), without comments."""
    body = src.split("@numba.njit")[0]
    return "\n".join(line.split("#")[0] for line in body.splitlines())


def _sig_net(p, x, y):
    h1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    s = (h2 @ p["W3"] + p["b3"])[:, 0]
    return np.mean(np.log(1 + np.exp(-y * s)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 257])
def test_w3_one_kernel_matches_numpy_target_and_hand(dtype, n):
    rng = np.random.default_rng(n)
    p = {k: v.astype(dtype) for k, v in W.sig_params(rng).items()}
    p["b1"] = rng.normal(size=3).astype(dtype)
    x, y = (a.astype(dtype) for a in W.sig_data(rng, n))
    got, want, fused = _both(_sig_net, p, x, y, grad=True)
    _close(got, want, RTOL[dtype])
    if dtype == np.float32:                 # the hand-written reference (another formula)
        hv, hg = W.sig_value_and_grad_numpy(p, x, y)
        _close((got[0], [got[1][k] for k in hg]), (hv, list(hg.values())), 1e-4)
    src = fused.source(p, x, y)
    if n > 1:                               # (one row: its values are numbers, not fused)
        assert src.count("@numba.njit") == 1
        assert " @ " not in _caller(src) and ".sum(" not in _caller(src)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_nan_inf_and_overflow(dtype):
    """exp overflows to inf, 1 / inf is 0, NaN stays NaN: as NumPy, without warnings
    turning into errors (error_model="numpy")."""
    def f(x, w):
        return 1 / (1 + np.exp(-(x @ w)))

    x = np.array([[0.0, 1.0], [np.inf, 0.0], [-np.inf, 0.0], [np.nan, 1.0],
                  [800.0, 0.0], [-800.0, 0.0], [100.0, -90.0]], dtype)
    w = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, 1.0]], dtype)
    got, want, _ = _both(f, x, w)
    _close(got, want, RTOL[dtype])
    assert np.isnan(got[3]).all() and got[1, 0] == 1 and got[2, 0] == 0

    def loss(w, x):
        return np.sum(f(x, w))
    got, want, _ = _both(loss, w, x, grad=True)
    _close(got, want, RTOL[dtype])


@pytest.mark.parametrize("k, n_out", [(1, 1), (1, 4), (3, 1), (8, 8), (9, 3), (3, 9)])
def test_tiny_products_as_loops(k, n_out):
    """rows @ W with W up to 8 x 8 is a loop in the kernel; larger stays BLAS."""
    def f(x, w, b):
        return np.tanh(x @ w + b) * 2.0

    rng = np.random.default_rng(k * 10 + n_out)
    x, w, b = rng.normal(size=(6, k)), rng.normal(size=(k, n_out)), rng.normal(size=n_out)
    got, want, fused = _both(f, x, w, b)
    _close(got, want, 1e-12)
    src = fused.source(x, w, b)
    assert ("x @ w" in _caller(src)) == (k > 8 or n_out > 8)
    got, want, _ = _both(lambda w, x, b: np.sum(f(x, w, b)), w, x, b, grad=True)
    _close(got, want, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_over_rows_and_totals(dtype):
    def f(a, c):
        t = np.exp(a) * c
        return (t.sum(axis=0), t.sum(), t.sum(axis=(0, 1), keepdims=True),
                t.sum(axis=0, keepdims=True), np.mean(t) * 3.0 + 1.0)

    rng = np.random.default_rng(5)
    a, c = rng.normal(size=(300, 4)).astype(dtype), rng.normal(size=4).astype(dtype)
    got, want, fused = _both(f, a, c)
    _close(got, want, RTOL[dtype])
    src = fused.source(a, c)
    assert src.count("@numba.njit") == 1 and ".sum(" not in _caller(src)
    assert "np.zeros((4,), np.float64)" in src           # float64 accumulators


def test_transposed_products_and_reshapes():
    def loss(w, x, v):
        h = np.tanh(x @ w)                   # (n, 3)
        s = (h @ v).reshape(-1)              # (n, 1) -> (n,)
        return np.sum(s * s)

    rng = np.random.default_rng(6)
    w, x, v = rng.normal(size=(2, 3)), rng.normal(size=(40, 2)), rng.normal(size=(3, 1))
    got, want, fused = _both(loss, w, x, v, grad=True, argnums=(0, 2))
    _close(got, want, 1e-12)
    src = fused.source(w, x, v)
    assert src.count("@numba.njit") == 1 and ".T" not in _caller(src)


def test_rows_equal_to_columns_broadcast_correctly():
    """With as many rows as columns, a (3,) operand still broadcasts along the rows,
    and a (3,) member is never mistaken for a column."""
    def f(m, v):
        a = np.exp(v) + 1.0                  # (3,): a row vector against m
        b = a * m - np.tanh(m)               # (3, 3)
        return b * v + b.sum(axis=0)

    rng = np.random.default_rng(7)
    m, v = rng.normal(size=(3, 3)), rng.normal(size=3)
    got, want, _ = _both(f, m, v)
    _close(got, want, 1e-12)


def test_a_sum_read_by_the_rows_splits_the_kernel():
    def f(x):
        h = np.tanh(x) * 2.0
        s = h.sum(axis=0)                    # complete only after the loop
        return (h - s) * 0.5, s

    x = np.random.default_rng(8).normal(size=(50, 4))
    got, want, fused = _both(f, x)
    _close(got, want, 1e-12)
    assert fused.source(x).count("@numba.njit") == 2


def test_mlp_mask_and_column_sum_in_one_pass_in_place_forward():
    rng = np.random.default_rng(9)
    p, (x, y) = W.mlp_params(rng), W.mlp_data(rng, n=64)
    got, want, fused = _both(W.mlp_loss_np, p, x, y, grad=True)
    _close(got, want, 1e-5)
    src = fused.source(p, x, y)
    kernel = src[src.index("def fused_d_b1"):]
    kernel = kernel[:kernel.index("\n\n")]
    assert "d_b1_acc[j] += d_add" in kernel and "d_add_out[i, j] = d_add" in kernel
    assert "    add = matmul\n" in src           # bias + ReLU in place on the GEMM result


def test_golden_small_sigmoid_layer():
    def loss(w, b, x):
        h = 1 / (1 + np.exp(-(x @ w + b)))
        return np.mean(h * h)

    rng = np.random.default_rng(10)
    w, b, x = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(8, 2))
    got, want, fused = _both(loss, w, b, x, grad=True, argnums=(0, 1))
    _close(got, want, 1e-12)
    check_golden("numba_rows_sigmoid_layer.py", fused.source(w, b, x))


def test_an_in_place_write_is_not_crossed():
    """``a[0] = 0`` is written in place (``a`` is dead after it in program order): a
    kernel reading ``a`` must run before it, not at its last member after it."""
    def f(x, w):
        a = x @ w
        b = np.tanh(a) * 2.0
        a[0] = 0.0
        s = a.sum()
        return b + 1.0, s

    rng = np.random.default_rng(11)
    x, w = rng.normal(size=(6, 20)), rng.normal(size=(20, 20))
    got, want, fused = _both(f, x, w)
    _close(got, want, 1e-12)
    src = _caller(fused.source(x, w))
    assert src.index("matmul[0] = 0.0") > src.index("fused_b(")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_more_dimensions_after_the_rows(dtype):
    def f(x, b):
        t = np.tanh(x) * 2.0 + b             # (n, 4, 1, 3) + (3,)
        return t.sum(axis=0), t.sum(axis=(0, 3), keepdims=True), t * t

    rng = np.random.default_rng(12)
    x, b = rng.normal(size=(5, 4, 1, 3)).astype(dtype), rng.normal(size=3).astype(dtype)
    got, want, fused = _both(f, x, b)
    _close(got, want, RTOL[dtype])
    assert "for k in range(3):" in fused.source(x, b)
