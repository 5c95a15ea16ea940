"""Issue 18: fewer passes in the gradients hand-written NumPy computes more cheaply.

(a) ``np.maximum``/``np.minimum``'s gradient is one op, ``max_share`` (graphc/ops/max_share.py),
    whose generated code multiplies by a comparison unless a tie or a nan is present, with
    the exact tie rule (half the cotangent) and no ``inf * 0 = nan``.
(b) The gradient through the max-shift of a hand-written softmax / log-softmax is left out
    when the graph proves it cancels (graphc/shift_invariance.py), and only then.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import autodiff

from _fd import fd_grad


def _share_ref(ct, x, y):
    """The documented rule: masked_mul(ct, 0.5 + 0.5 * sign(x - y)), in plain NumPy."""
    with np.errstate(invalid="ignore"):
        w = 0.5 + 0.5 * np.sign(np.subtract(x, y))
        return np.where(w != 0, ct * w, 0.0)


# --- (a) maximum / minimum -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_relu_by_maximum_matches_the_tie_rule(dtype, ties):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 48)).astype(dtype)
    if ties:
        x[::3, ::5] = 0.0                      # exact zeros: half the gradient
    R = rng.standard_normal(x.shape).astype(dtype)
    for f, sides in ((lambda x: (np.maximum(x, 0) * R).sum(), (0,)),
                     (lambda x: (np.maximum(0.0, x) * R).sum(), (1,)),
                     (lambda x: (np.minimum(x, 0) * R).sum(), (0,))):
        g = graphc.grad(f)(x)
        assert g.dtype == dtype
        if f(np.ones(1, dtype)) == 0:          # minimum: x's share is where x < 0
            want = _share_ref(R, 0.0, x)
        else:
            want = _share_ref(R, x, 0.0)
        np.testing.assert_array_equal(g, want.astype(dtype))


def test_maximum_of_two_arrays_ties_and_broadcasting():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7))
    y = rng.standard_normal(7)
    x[1] = y                                   # a whole row of ties
    R = rng.standard_normal((5, 7))
    for ties in (True, False):
        xx = x if ties else x + 3.0
        dx, dy = graphc.grad(lambda a, b: (np.maximum(a, b) * R).sum(), argnums=(0, 1))(xx, y)
        np.testing.assert_array_equal(dx, _share_ref(R, xx, y))
        np.testing.assert_allclose(dy, _share_ref(R, y, xx).sum(axis=0), rtol=1e-15)
        dx, dy = graphc.grad(lambda a, b: (np.minimum(a, b) * R).sum(), argnums=(0, 1))(xx, y)
        np.testing.assert_array_equal(dx, _share_ref(R, y, xx))
        np.testing.assert_allclose(dy, _share_ref(R, xx, y).sum(axis=0), rtol=1e-15)


def test_maximum_with_a_nonzero_constant_and_a_python_float():
    x = np.array([0.5, 0.25, -1.0, 2.0, 0.5])
    R = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    g = graphc.grad(lambda x: (np.maximum(x, 0.5) * R).sum())(x)
    np.testing.assert_array_equal(g, [0.5, 0.0, 0.0, 4.0, 2.5])
    dx, ds = graphc.grad(lambda x, s: (np.maximum(x, s) * R).sum(), argnums=(0, 1))(x, 0.25)
    np.testing.assert_array_equal(dx, [1.0, 1.0, 0.0, 4.0, 5.0])
    assert float(ds) == 1.0 + 3.0


def test_infinite_cotangent_is_not_turned_into_nan():
    # d sqrt(u) at u = 0 is inf: the unselected side (x < 0) must get exactly 0, the tie
    # (x == 0) half of inf, the selected side the plain derivative
    f = graphc.grad(lambda x: np.sqrt(np.maximum(x, 0.0)).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        g = f(np.array([-1.0, 0.0, 4.0, -3.0]))         # a tie: the exact-weights branch
        np.testing.assert_array_equal(g, [0.0, np.inf, 0.25, 0.0])
        g = f(np.array([-1.0, 1.0, 4.0, -3.0]))         # no tie: the comparison branch
        np.testing.assert_array_equal(g, [0.0, 0.5, 0.25, 0.0])
        g = graphc.grad(lambda x: np.sqrt(np.maximum(x, 0.0)).sum())(
            np.array([-1.0, 1.0], np.float32))
        assert g.dtype == np.float32 and list(g) == [0.0, 0.5]


def test_nan_and_equal_infinities_give_nan_as_before():
    with np.errstate(invalid="ignore"):
        g = graphc.grad(lambda x: np.maximum(x, 0.0).sum())(np.array([np.nan, 1.0, -1.0]))
        np.testing.assert_array_equal(g, [np.nan, 1.0, 0.0])
        dx, dy = graphc.grad(lambda a, b: np.maximum(a, b).sum(), argnums=(0, 1))(
            np.array([np.inf, 1.0]), np.array([np.inf, 2.0]))
        np.testing.assert_array_equal(dx, [np.nan, 0.0])
        np.testing.assert_array_equal(dy, [np.nan, 1.0])


def test_scalar_maximum_and_finite_differences_away_from_ties():
    g = graphc.grad(lambda a: np.maximum(a, 0.0) * 3.0)
    assert float(g(2.0)) == 3.0 and float(g(-2.0)) == 0.0 and float(g(0.0)) == 1.5
    rng = np.random.default_rng(2)
    x = rng.standard_normal(30)
    x[np.abs(x) < 0.1] += 0.3
    R = rng.standard_normal(30)

    def f(x):
        return (np.maximum(x, 0) * R).sum() + (np.minimum(x, 0.2) ** 2).sum()
    np.testing.assert_allclose(graphc.grad(f)(x), fd_grad(f, x), rtol=1e-7, atol=1e-9)


def test_relu_gradient_code_multiplies_by_a_comparison():
    # a literal 0: the ReLU's own result divided by its input is the weight (issue 18,
    # w2loss: tests/test_w2_parity.py); another constant: the comparison
    x = np.ones((8, 4), np.float32)
    src = graphc.grad(lambda x: (np.maximum(0, x) * x).sum()).source(x)
    assert "= maximum / x  # the weights: 1 where x > 0, else 0" in src
    assert "if np.isnan(" in src and "np.copyto(" in src
    src = graphc.grad(lambda x: (np.maximum(0.5, x) * x).sum()).source(x)
    assert "if not (np.abs(x - 0.5).min() > 0):  # a tie (half the gradient) or a nan" in src
    assert "* (x > 0.5)" in src and "np.copyto(" in src


# --- (b) the max-shift of a softmax ---------------------------------------------------------
def _without_rewrite(monkeypatch):
    monkeypatch.setattr(autodiff, "cancelled_shifts", lambda g, outs, active: set())


def _log_softmax_loss(s, y):
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(s.shape[0]), y].mean()


def _softmax_loss(s, R):
    e = np.exp(s - np.max(s, axis=-1)[:, None])
    return (e / e.sum(axis=-1, keepdims=True) * R).sum()


def _global_shift(s, R):
    z = s - s.max()
    return ((z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))) * R).sum()


def _data(rng, n=16, k=5):
    s = rng.standard_normal((n, k)) * 3
    s[0, :2] = s[0].max() + 1.0                # a tie at the maximum of row 0
    return s, rng.integers(0, k, n), rng.standard_normal((n, k))


@pytest.mark.parametrize("case", ["log_softmax", "softmax", "global_shift"])
def test_proven_shift_is_dropped_and_the_gradient_is_unchanged(case, monkeypatch):
    rng = np.random.default_rng(3)
    s, y, R = _data(rng)
    fn, extra = {"log_softmax": (_log_softmax_loss, y), "softmax": (_softmax_loss, R),
                 "global_shift": (_global_shift, R)}[case]
    new = graphc.grad(fn)
    src = new.source(s, extra)
    assert " == " not in src and "grad of: z = s - " not in src   # no tie mask, no d_max
    got = new(s, extra)
    _without_rewrite(monkeypatch)
    old = graphc.grad(fn)
    assert " == " in old.source(s, extra)
    np.testing.assert_allclose(got, old(s, extra), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got, fd_grad(lambda s: fn(s, extra), s), rtol=1e-6, atol=1e-8)
    if case == "log_softmax":                 # the closed form: (softmax - onehot) / n
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        np.testing.assert_allclose(got, p / len(y), rtol=1e-12, atol=1e-15)


def _z_used_elsewhere(s, R):
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return (logp * R).sum() + (z * z).sum()


def _max_used_elsewhere(s, R):
    m = s.max(axis=1, keepdims=True)
    z = s - m
    return ((z - np.log(np.exp(z).sum(axis=1, keepdims=True))) * R).sum() + m.sum()


def _other_axis(s, R):
    z = s - s.max(axis=0, keepdims=True)
    return ((z - np.log(np.exp(z).sum(axis=1, keepdims=True))) * R).sum()


def _scaled(s, R):
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(2 * z)
    return (e / e.sum(axis=1, keepdims=True) * R).sum()


def _unnormalized(s, R):
    z = s - s.max(axis=1, keepdims=True)
    return (np.exp(z) * R).sum()


def _indexed(s, R):
    z = s - s.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return (lse - z[:, 0]).sum()


def _shift_returned(s, R):
    z = s - s.max(axis=1, keepdims=True)
    return (z * R).sum()


@pytest.mark.parametrize("fn", [_z_used_elsewhere, _max_used_elsewhere, _other_axis, _scaled,
                                _unnormalized, _indexed, _shift_returned])
def test_near_misses_are_not_rewritten(fn, monkeypatch):
    rng = np.random.default_rng(4)
    s, _, R = _data(rng)
    s[1, 3] = s[1].max()                      # another tie: the max's gradient is visible
    new = graphc.grad(fn)
    src = new.source(s, R)
    got = new(s, R)
    _without_rewrite(monkeypatch)
    old = graphc.grad(fn)
    assert src == old.source(s, R)            # nothing proven: the same backward pass
    assert " == " in src
    np.testing.assert_array_equal(got, old(s, R))


def test_shift_invariance_of_a_mean_loss_in_float32_and_second_order(monkeypatch):
    rng = np.random.default_rng(5)
    s, y, _ = _data(rng)
    g32 = graphc.grad(_log_softmax_loss)(s.astype(np.float32), y)
    assert g32.dtype == np.float32
    h = graphc.hessian(lambda s: _log_softmax_loss(s, y))(s)
    _without_rewrite(monkeypatch)
    h_old = graphc.hessian(lambda s: _log_softmax_loss(s, y))(s)
    np.testing.assert_allclose(h, h_old, rtol=0, atol=1e-12)


def test_the_analysis_directly():
    from graphc.shift_invariance import cancelled_shifts
    s = np.zeros((3, 4))
    g = graphc.trace(lambda s: _global_shift(s, np.ones((3, 4))), s)
    maxes = {n for n in g if g[n].op == "max"}
    assert len(maxes) == 1
    assert cancelled_shifts(g, list(g.outputs), set(g)) == maxes
    g = graphc.trace(lambda s: _other_axis(s, np.ones((3, 4))), s)
    assert cancelled_shifts(g, list(g.outputs), set(g)) == set()


# --- (d) ReLU's mask before max pooling's unpool --------------------------------------------
def _relu_pool(x, w, R):
    h = graphc.nn.max_pool2d(graphc.nn.relu(graphc.nn.conv2d(x, w)), 2)
    return (h * R).sum()


def _relu_pool_shared(x, w, R):
    r = graphc.nn.relu(graphc.nn.conv2d(x, w))
    return (graphc.nn.max_pool2d(r, 2) * R).sum() + (r * r).sum()


def _pool_only(x, w, R):
    return (graphc.nn.max_pool2d(graphc.nn.conv2d(x, w), 2) * R).sum()


def _old_pool_vjp(monkeypatch):
    """The rule as before: no mask on the pooled values, no rewrite."""
    import sys
    from graphc.ops import pool
    S = sys.modules["graphc.passes.simplify"]
    monkeypatch.setattr(S, "_RULES", tuple(r for r in S._RULES
                                           if r.__name__ != "relu_mask_after_unpool"))
    monkeypatch.setattr(pool, "_is_relu", lambda x: False)


@pytest.mark.parametrize("fn", [_relu_pool, _relu_pool_shared, _pool_only])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_mask_on_pooled_values_is_bitwise_the_same(fn, dtype, monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 9, 9)).astype(dtype)
    x[0, :, :4, :4] = 0.0                      # zero windows: ReLU ties inside a pool window
    w = rng.standard_normal((4, 2, 3, 3)).astype(dtype)
    R = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    new = graphc.grad(fn, argnums=(0, 1))
    src = new.source(x, w, R)
    got = new(x, w, R)
    assert ("d_pooled" in src) == (fn is not _pool_only)
    if fn is _relu_pool_shared:                # ReLU's value has another use: its mask stays
        assert "(r > 0)" in src
    else:                                      # the full-size mask is gone
        assert "(relu > 0)" not in src
    _old_pool_vjp(monkeypatch)
    old = graphc.grad(fn, argnums=(0, 1))
    assert "d_pooled" not in old.source(x, w, R)
    for a, b in zip(got, old(x, w, R)):
        np.testing.assert_array_equal(a, b)


def test_relu_mask_on_pooled_values_with_an_infinite_cotangent():
    x = np.array([[[[1.0, -2.0, 0.5, -1.0], [0.25, -3.0, -0.5, -0.75],
                    [3.0, 1.0, -1.0, -2.0], [0.5, 2.0, -4.0, -0.5]]]])

    def f(x):     # sqrt's derivative at a pooled 0 (the all-negative window) is inf
        return np.sqrt(graphc.nn.max_pool2d(graphc.nn.relu(x), 2)).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        g = graphc.grad(f)(x)
    want = np.zeros_like(x)
    want[0, 0, 0, 0] = 0.5 / np.sqrt(1.0)
    want[0, 0, 0, 2] = 0.5 / np.sqrt(0.5)
    want[0, 0, 2, 0] = 0.5 / np.sqrt(3.0)
    np.testing.assert_array_equal(g, want)    # the window of negatives: exactly 0, no nan


def test_logaddexp_shift_and_its_near_miss(monkeypatch):
    rng = np.random.default_rng(7)
    s = rng.standard_normal((6, 4))
    s[2, 1] = s[2].max()
    R = rng.standard_normal((6, 4))

    def of_shifts(s):       # logaddexp of two shifted values is a shift; minus z: invariant
        z = s - s.max(axis=1, keepdims=True)
        return ((np.logaddexp(z, z + 1.0) - z) * R).sum()

    def of_scales(s):       # logaddexp of two scaled values is not a shift: not rewritten
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return (np.logaddexp(e, e) * R).sum()
    new = [graphc.grad(f) for f in (of_shifts, of_scales)]
    srcs = [g.source(s) for g in new]
    got = [g(s) for g in new]
    _without_rewrite(monkeypatch)
    old = [graphc.grad(f) for f in (of_shifts, of_scales)]
    assert srcs[0] != old[0].source(s)          # proven: the max-shift gradient is gone
    assert srcs[1] == old[1].source(s)
    np.testing.assert_allclose(got[0], old[0](s), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got[1], old[1](s))
