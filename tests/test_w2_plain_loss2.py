"""Issue 18, ``w2b`` branch: W2 with the plain NumPy loss, second round.

* The ReLU gradient's exact path (ties, nans, ``inf * 0``), moved onto the bias sum by
  graphc/codegen_share_check.py, reads the ReLU's input and cotangent: codegen must not
  ``del`` them before it (at W2's full size the arrays are large enough to be freed).
* The sum of a one-hot seed (``(-d_logp).sum(axis=1)`` of the loss gradient's
  ``d_logp[np.arange(n), y] = c``) is a constant known at compile time
  (graphc/passes/onehot_sum.py): the same values, bit for bit, and an out-of-range label
  still raises.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc
from benchmarks import workloads as W
from graphc.ops.max_share import _ref
from tests._fd import fd_grad


def _w2(dtype=np.float32, n=128, seed=4):
    rng = np.random.default_rng(seed)
    p = {k: v.astype(dtype) for k, v in W.mlp_params(rng).items()}
    x, y = W.mlp_data(rng, n=n)
    return p, x.astype(dtype), y


def _by_hand(p, x, y):
    """W2's loss and gradient in float64 by hand, with max_share's exact tie rule."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    x = x.astype(np.float64)
    n = len(y)
    a1 = x @ p["W1"] + p["b1"]
    h1 = np.maximum(0, a1)
    a2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(0, a2)
    s = h2 @ p["W3"] + p["b3"]
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    loss = (np.log(e.sum(axis=1)) - z[np.arange(n), y]).mean()
    ds = e / e.sum(axis=1, keepdims=True)
    ds[np.arange(n), y] -= 1.0
    ds /= n
    with np.errstate(invalid="ignore"):
        da2 = _ref(ds @ p["W3"].T, a2, 0.0)
        da1 = _ref(da2 @ p["W2"].T, a1, 0.0)
    g = {"W3": h2.T @ ds, "b3": ds.sum(axis=0), "W2": h1.T @ da2, "b2": da2.sum(axis=0),
         "W1": x.T @ da1, "b1": da1.sum(axis=0)}
    return loss, g


# --- the exact path of the ReLU check after the frees ------------------------------------
@pytest.mark.parametrize("layer", ["first", "second", "both"])
def test_ties_at_full_size_take_the_exact_path(layer):
    p, x, y = _w2(np.float64)
    if layer in ("first", "both"):
        p["b1"][:] = 0.0
        x[3] = 0.0                              # a1[3] == 0 exactly: ties in layer 1
    if layer in ("second", "both"):
        p["W2"][:, 5] = 0.0
        p["b2"][5] = 0.0                        # a2[:, 5] == 0 exactly: ties in layer 2
    vg = graphc.value_and_grad(W.mlp_loss_np)
    src = vg.source(p, x, y)
    assert "del add, h1, d_h1" in src           # the frees this test is about
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the ties warn nothing
        loss, g = vg(p, x, y)
    want_loss, want = _by_hand(p, x, y)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for k in W.MLP_KEYS:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-10, atol=1e-15)
    # the ties really split the gradient: the mask form (0 at a tie) gives another b1/b2
    a1 = x @ p["W1"] + p["b1"]
    a2 = np.maximum(0, a1) @ p["W2"] + p["b2"]
    assert (a1 == 0).any() if layer != "second" else (a2 == 0).any()


def test_the_del_follows_the_exact_path():
    p, x, y = _w2()
    src = graphc.value_and_grad(W.mlp_loss_np).source(p, x, y)
    lines = [ln.strip() for ln in src.splitlines()]
    check = lines.index("if np.isnan(d_b1.max()):  # a nan in d_add: a tie at 0, a nan or inf * 0")
    free = lines.index("del add, h1, d_h1")
    assert free > check and lines[free - 1].startswith("d_b1 = d_add.sum(axis=0)")


def test_nan_input_at_full_size():
    p, x, y = _w2()
    x[7, 100] = np.nan
    with np.errstate(invalid="ignore"):
        loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
        want_loss, want = _by_hand(p, x, y)
    assert np.isnan(loss) and np.isnan(want_loss)
    for k in W.MLP_KEYS:
        np.testing.assert_array_equal(np.isnan(g[k]), np.isnan(want[k]))
        ok = ~np.isnan(want[k])
        np.testing.assert_allclose(g[k][ok], want[k][ok], rtol=2e-3, atol=1e-6)


# --- the sum of a one-hot seed (graphc/passes/onehot_sum.py) -----------------------------
def _old_seed_gradient(s, y):
    """The loss gradient by the ops graphc generated before the fold, in NumPy."""
    n = len(y)
    z = s - s.max(axis=1, keepdims=True)
    exp = np.exp(z)
    sum_ = exp.sum(axis=1, keepdims=True)
    d_logp = np.zeros(s.shape, s.dtype)
    d_logp[np.arange(n), y] = np.full((n,), -(s.dtype.type(1) / s.dtype.type(n)), s.dtype)
    d_sum = (-d_logp).sum(axis=1, keepdims=True) / sum_
    return d_logp + d_sum * exp


def _loss(s, y):
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(s.shape[0]), y].mean()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fold_gives_the_same_bits(dtype):
    rng = np.random.default_rng(7)
    s = (rng.standard_normal((64, 10)) * 4).astype(dtype)
    y = rng.integers(0, 10, 64)
    g = graphc.grad(_loss)
    src = g.source(s, y)
    assert "d_sum = 0.015625 / sum_" in src and "(-d_logp).sum(" not in src
    got = g(s, y)
    assert got.dtype == dtype
    assert got.tobytes() == _old_seed_gradient(s, y).tobytes()


def test_negative_labels_are_the_same_rows():
    rng = np.random.default_rng(8)
    s = rng.standard_normal((16, 5))
    y = rng.integers(-5, 5, 16)                 # -1 is the last class, as in NumPy
    got = graphc.grad(_loss)(s, y)
    assert got.tobytes() == _old_seed_gradient(s, y).tobytes()
    np.testing.assert_allclose(got, graphc.grad(_loss)(s, y % 5), rtol=0, atol=0)


@pytest.mark.parametrize("how", ["grad", "value_and_grad"])
def test_an_out_of_range_label_still_raises(how):
    s = np.zeros((4, 3))
    f = getattr(graphc, how)(_loss)
    f(s, np.array([0, 1, 2, 0]))
    with pytest.raises(IndexError):
        f(s, np.array([0, 1, 3, 0]))


def test_a_seed_used_only_through_its_sum_is_not_folded():
    # the broadcast's gradient sums the one-hot seed and nothing else reads it: folding
    # would drop the scatter, and with it the IndexError of an out-of-range label
    def f(z, y):
        b = np.broadcast_to(z.sum(axis=1, keepdims=True), (z.shape[0], 3))
        return b[np.arange(z.shape[0]), y].sum()
    z = np.ones((4, 3))
    g = graphc.grad(f)
    np.testing.assert_array_equal(g(z, np.array([0, 1, 2, 0])), np.ones((4, 3)))
    assert "[np.arange(4), y] = " in g.source(z, np.array([0, 1, 2, 0]))
    with pytest.raises(IndexError):
        g(z, np.array([0, 1, 5, 0]))


def test_repeated_rows_are_a_real_sum():
    # rows 0 and 0: two values in one kept position, the sum is not folded
    rows = np.array([0, 0, 1])

    def f(s, y):
        z = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return (z[rows, y] * np.array([1.0, 2.0, 3.0])).sum()
    rng = np.random.default_rng(9)
    s, y = rng.standard_normal((2, 4)), np.array([1, 3, 2])
    got = graphc.grad(f)(s, y)
    want = np.zeros_like(s)
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    for r, c, w in zip(rows, y, [1.0, 2.0, 3.0]):
        want[r, c] += w
        want[r] -= w * p[r]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_labels_along_the_kept_axis_are_not_folded():
    # the runtime index is on the rows (kept), the constant one on the summed columns
    cols = np.arange(4)

    def f(s, r):
        z = s - np.log(np.exp(s).sum(axis=0, keepdims=True))
        return z[r, cols].sum()
    rng = np.random.default_rng(10)
    s, r = rng.standard_normal((3, 4)), np.array([2, 0, 0, 1])
    got = graphc.grad(f)(s, r)
    p = np.exp(s) / np.exp(s).sum(axis=0, keepdims=True)
    want = -p.copy()
    want[r, cols] += 1.0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_w2_against_finite_differences():
    rng = np.random.default_rng(11)          # W2's loss at 7-6-5-4, batch 6
    p = {"W1": rng.standard_normal((7, 6)), "b1": rng.standard_normal(6),
         "W2": rng.standard_normal((6, 5)), "b2": rng.standard_normal(5),
         "W3": rng.standard_normal((5, 4)), "b3": rng.standard_normal(4)}
    x, y = rng.standard_normal((6, 7)), rng.integers(0, 4, 6)
    g = graphc.grad(W.mlp_loss_np)(p, x, y)
    want = fd_grad(lambda q: W.mlp_loss_np(q, x, y), p)
    for k in W.MLP_KEYS:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "ties", "inf-logit"])
def test_w2_against_pytorch(dtype, case):
    torch = pytest.importorskip("torch")
    p, x, y = _w2(dtype)
    if case == "ties":
        p["b1"][:] = 0.0
        x[5] = 0.0
    elif case == "inf-logit":
        p["b3"][2] = np.inf                     # every row's logit 2 is inf: nan rows
    with np.errstate(invalid="ignore"):
        loss, g = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx, ty = torch.tensor(x), torch.tensor(y)
    h1 = torch.relu(tx @ tp["W1"] + tp["b1"])
    h2 = torch.relu(h1 @ tp["W2"] + tp["b2"])
    s = h2 @ tp["W3"] + tp["b3"]
    z = s - s.max(dim=1, keepdim=True).values
    logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
    tl = -logp[torch.arange(len(y)), ty].mean()
    tl.backward()
    rtol, atol = (2e-4, 2e-7) if dtype == np.float32 else (1e-10, 1e-14)
    if case == "inf-logit":
        assert np.isnan(loss) and np.isnan(tl.item())
        for k in ("W3", "b3", "W2", "b2"):      # torch's relu has no tie rule: the nan parts
            assert np.isnan(g[k]).any() and torch.isnan(tp[k].grad).any()
        return
    np.testing.assert_allclose(loss, tl.item(), rtol=rtol)
    for k in W.MLP_KEYS:
        want = tp[k].grad.numpy()
        if case == "ties" and k in ("W1", "b1"):
            want = _by_hand(p, x, y)[1][k]     # torch gives 0 at a tie, graphc half
        np.testing.assert_allclose(g[k], want, rtol=rtol, atol=atol)
