"""Issue 18, ``w2loss`` branch: W2 with the plain NumPy loss at hand-written NumPy's speed.

The ReLU written ``np.maximum(a, 0)`` passes its own result to its gradient op,
``max_share(ct, a, 0, out)`` (graphc/ops/max_share.py), whose generated code divides
``out / a`` (the weights, exactly 1 or 0) instead of comparing, and sends a tie, a nan or
``inf * 0`` to the exact rule.  These tests hold that emission to the op's definition
(``_ref``) over ties, nans, infinities, both float dtypes and broadcasting, and the W2
gradient to PyTorch and to the hand-written NumPy reference.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc
from benchmarks import workloads as W
from graphc.ops.max_share import _ref, max_share

SPECIAL = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, -1.0, 2.0, 1e-30, -1e-30, 3.0])
CT = np.array([1.0, -2.0, 3.0, np.inf, -np.inf, np.inf, -np.inf, np.nan, 5.0, -0.5])


def _relu_share(side):
    """max_share with the ReLU's result: the form np.maximum / np.minimum's VJPs build."""
    if side == "max":
        return lambda ct, a: max_share(ct, a, 0.0, np.maximum(a, 0.0))
    return lambda ct, a: max_share(ct, 0.0, a, np.minimum(a, 0.0))


def _want(side, ct, a):
    with np.errstate(invalid="ignore"):
        return _ref(ct, a, 0.0) if side == "max" else _ref(ct, 0.0, a)


def _cases(dtype, rng):
    a = rng.standard_normal((6, 5)).astype(dtype)
    ct = rng.standard_normal((6, 5)).astype(dtype)
    ties = a.copy()
    ties[::2, 1::2] = 0.0
    nans = a.copy()
    nans[1, 2] = np.nan
    inf_ct = ct.copy()
    inf_ct[a < 0] = np.inf                      # inf * 0 where the share is nothing
    return {"plain": (ct, a), "ties": (ct, ties), "nan": (ct, nans), "inf-ct": (inf_ct, a),
            "specials": (np.tile(CT, (3, 1)).astype(dtype), np.tile(SPECIAL, (3, 1)).astype(dtype)),
            "special-pairs": (np.repeat(CT, 10).reshape(10, 10).astype(dtype),
                              np.tile(SPECIAL, (10, 1)).astype(dtype))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("side", ["max", "min"])
@pytest.mark.parametrize("case", ["plain", "ties", "nan", "inf-ct", "specials", "special-pairs"])
def test_division_form_matches_the_definition(dtype, side, case):
    ct, a = _cases(dtype, np.random.default_rng(0))[case]
    f = graphc.compile(_relu_share(side))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # inf * 0 in NumPy's own multiply
        got = f(ct, a)
    want = _want(side, ct, a)
    assert got.dtype == want.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)              # nan where nan, 0 where 0
    src = f.source(ct, a)
    assert f"= {'maximum' if side == 'max' else 'minimum'} / a  # the weights: 1 where a " in src
    assert "with np.errstate(invalid=\"ignore\"):" in src and "np.copyto(" in src


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_values_as_the_comparison_form(dtype):
    # without the ReLU's result max_share compares (the emission before this branch)
    rng = np.random.default_rng(1)
    for ct, a in _cases(dtype, rng).values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            new = graphc.compile(_relu_share("max"))(ct, a)
            old = graphc.compile(lambda ct, a: max_share(ct, a, 0.0))(ct, a)
        np.testing.assert_array_equal(new, old)
        # the only difference: an exact 0 where a < 0 may carry the other sign
        differ = np.signbit(new) != np.signbit(old)
        assert np.all(new[differ] == 0) and np.all(a[differ] < 0)


def test_broadcast_cotangent_and_broadcast_operand():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 6))
    a[0, :3] = 0.0
    ct_row = rng.standard_normal(6)
    f = graphc.compile(_relu_share("max"))
    np.testing.assert_array_equal(f(ct_row, a), _ref(ct_row, a, 0.0))   # ct broadcast: divides
    assert "/ a  # the weights" in f.source(ct_row, a)
    a_row, ct = rng.standard_normal(6), rng.standard_normal((4, 6))
    a_row[1] = 0.0
    np.testing.assert_array_equal(f(ct, a_row), _ref(ct, a_row, 0.0))   # operand broadcast
    assert "/ a  # the weights" not in f.source(ct, a_row)               # compares instead


def test_mixed_dtypes_keep_the_comparison():
    a = np.array([[-1.0, 0.0, 2.0]], np.float32)
    ct = np.array([[1.0, 2.0, 3.0]])                                     # float64 cotangent
    f = graphc.compile(_relu_share("max"))
    got = f(ct, a)
    np.testing.assert_array_equal(got, _ref(ct, a, 0.0))
    assert got.dtype == np.float64 and "/ a  # the weights" not in f.source(ct, a)


@pytest.mark.parametrize("form", [lambda a: np.maximum(a, 0), lambda a: np.maximum(0, a),
                                  lambda a: np.minimum(a, 0), lambda a: np.minimum(0.0, a)])
def test_user_relu_gradients_use_the_division_and_the_tie_rule(form):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 5)).astype(np.float32)
    a[::3, ::2] = 0.0                                                    # ties: half
    R = rng.standard_normal(a.shape).astype(np.float32)
    g = graphc.grad(lambda a: (form(a) * R).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a tie must not warn (0/0 is the code's own)
        got = g(a)
    is_max = form(np.ones(1, np.float32))[0] == 1
    want = _ref(R, a, 0.0) if is_max else _ref(R, 0.0, a)
    np.testing.assert_array_equal(got, want)
    assert "# the weights: 1 where a " in g.source(a)


def test_infinite_and_nan_cotangents_through_a_user_function():
    x = np.array([-1.0, 0.0, 4.0, -3.0, np.nan, 2.0])
    g = graphc.grad(lambda x: np.sqrt(np.maximum(x, 0.0)).sum())    # d sqrt at 0 is inf
    with np.errstate(divide="ignore", invalid="ignore"):
        got = g(x)
    np.testing.assert_array_equal(got, [0.0, np.inf, 0.25, 0.0, np.nan, 0.5 / np.sqrt(2.0)])


# --- W2 --------------------------------------------------------------------------------
def _w2(dtype=np.float32, n=32):
    rng = np.random.default_rng(4)
    p = {k: v.astype(dtype) for k, v in W.mlp_params(rng).items()}
    x, y = W.mlp_data(rng, n=n)
    return p, x.astype(dtype), y


def test_w2_gradient_matches_the_hand_reference():
    p, x, y = _w2()
    loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    hloss, hg = W.mlp_value_and_grad_numpy(p, x, y)
    np.testing.assert_allclose(loss, hloss, rtol=1e-5)
    for k in W.MLP_KEYS:
        assert g[k].dtype == np.float32
        np.testing.assert_allclose(g[k], hg[k], rtol=2e-4, atol=2e-7)
    assert "# the weights: 1 where add > 0" in graphc.value_and_grad(W.mlp_loss_np).source(p, x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_w2_gradient_matches_pytorch(dtype):
    torch = pytest.importorskip("torch")
    p, x, y = _w2(dtype)
    loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx, ty = torch.tensor(x), torch.tensor(y)
    h1 = torch.relu(tx @ tp["W1"] + tp["b1"])
    h2 = torch.relu(h1 @ tp["W2"] + tp["b2"])
    tl = torch.nn.functional.cross_entropy(h2 @ tp["W3"] + tp["b3"], ty)
    tl.backward()
    rtol, atol = (2e-4, 2e-7) if dtype == np.float32 else (1e-10, 1e-14)
    np.testing.assert_allclose(loss, tl.item(), rtol=rtol)
    for k in W.MLP_KEYS:
        np.testing.assert_allclose(g[k], tp[k].grad.numpy(), rtol=rtol, atol=atol)


def test_w2_with_exact_zeros_splits_the_gradient_at_the_ties():
    # rows of zeros with zero biases: the first layer's pre-activations are exactly 0
    p, x, y = _w2(np.float64, n=8)
    p = dict(p, b1=np.zeros_like(p["b1"]))
    x[:3] = 0.0
    g = graphc.grad(W.mlp_loss_np)(p, x, y)
    a1 = x @ p["W1"] + p["b1"]
    assert np.any(a1 == 0)
    # the backward pass by hand with the tie rule (half the gradient at 0)
    h1 = np.maximum(0, a1)
    a2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(0, a2)
    s = h2 @ p["W3"] + p["b3"]
    e = np.exp(s - s.max(axis=1, keepdims=True))
    ds = e / e.sum(axis=1, keepdims=True)
    ds[np.arange(len(y)), y] -= 1.0
    ds /= len(y)
    dh2 = ds @ p["W3"].T
    da2 = _ref(dh2, a2, 0.0)
    da1 = _ref(da2 @ p["W2"].T, a1, 0.0)
    np.testing.assert_allclose(g["W1"], x.T @ da1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g["b1"], da1.sum(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g["W2"], h1.T @ da2, rtol=1e-12, atol=1e-15)


# --- the nan check on the bias gradient (graphc/codegen_share_check.py) ------------------
def _dense(X, R):
    return lambda W, b: (np.maximum(0, X @ W + b) * R).sum()


@pytest.mark.parametrize("case", ["plain", "tie", "nan", "inf-unselected", "inf-both-signs"])
def test_nan_check_on_the_bias_sum(case):
    rng = np.random.default_rng(5)
    X, W, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    R = rng.standard_normal((6, 3))
    a = X @ W + b
    if case == "tie":
        X[2] = 0.0
        b[1] = 0.0                                  # a[2, 1] == 0 exactly
    elif case == "nan":
        X[3, 0] = np.nan
    elif case == "inf-unselected":
        R[a < 0] = np.inf                           # inf * 0 where the share is nothing
    elif case == "inf-both-signs":
        col = int(np.argmax((a > 0).sum(axis=0)))
        rows = np.flatnonzero(a[:, col] > 0)[:2]
        R[rows[0], col], R[rows[1], col] = np.inf, -np.inf   # a nan sum, no nan term
    a = X @ W + b
    g = graphc.grad(_dense(X, R), argnums=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dW, db = g(W, b)
        d = _ref(R, a, 0.0)
        want_W, want_b = X.T @ d, d.sum(axis=0)
    assert np.isnan(want_b).any() == (case in ("nan", "inf-both-signs"))
    np.testing.assert_allclose(dW, want_W, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(db, want_b)
    src = g.source(W, b)
    assert "    d_b = d_add.sum(axis=0)\n    if np.isnan(d_b.max()):  # a nan in d_add" in src
    assert "np.isnan(d_add.max())" not in src


def test_nan_check_stays_on_the_product_without_a_following_sum():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    src = graphc.grad(lambda x: (np.maximum(x, 0) * x).sum()).source(x)
    assert "if np.isnan(" in src and ".max()):  # a tie at 0 (half the gradient)" in src
