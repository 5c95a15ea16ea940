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
