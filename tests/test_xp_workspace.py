"""The array-API target's NumPy-only memory reuse (graphc/xp_workspace.py).

On NumPy arrays the module's helpers write large temporaries into buffers it keeps
between calls (``_matmul``/``_stack``/``_unpool`` with ``keep=``), results over dead
arguments (``_in_place``), and pooling masks and gradients by strided writes
(``_pool_mask``, ``_unpool``); on every other namespace they are the plain functional
calls.  Checked here: the forms appear where they should and only there (a value the
caller receives is never a kept buffer, never written over), results equal the NumPy
target bit for bit on NumPy and on array_api_strict (float64), a second call or another
thread does not change an earlier result, and the function stays functional.
"""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import graphc
from benchmarks import workloads as W
from graphc import nn
from graphc.xp_helpers import HELPERS, helpers_for
from tests.test_array_api_target import assert_functional, check_golden

XP = "array-api"
strict = pytest.importorskip("array_api_strict")


def _lenet_args(n=32, seed=0):
    rng = np.random.default_rng(seed)
    p = {k: v.astype(np.float64) for k, v in W.lenet_params(rng).items()}
    x, y = W.lenet_data(rng, n)
    return p, x.astype(np.float64), y


def _to_strict(tree):
    if isinstance(tree, dict):
        return {k: _to_strict(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(_to_strict(v) for v in tree)
    return strict.asarray(tree) if isinstance(tree, np.ndarray) else tree


def _equal(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _equal(a[k], b[k])
        return
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _equal(u, v)
        return
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _copy(tree):
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, tuple):
        return tuple(_copy(v) for v in tree)
    return np.array(tree, copy=True)


# --- LeNet: every form, bit for bit ----------------------------------------------------------
def test_lenet_forms_and_bits():
    args = _lenet_args()
    f = graphc.value_and_grad(W.lenet_loss, target=XP)
    src = f.source(*args)
    assert_functional(src, "lenet_loss_value_and_grad")
    fn = src.split("\n\n\ndef _")[0]
    for form in ("_stack(xp, ", "_matmul(xp, ", "_in_place(xp.add, ", "_in_place(xp.maximum, ",
                 "_unpool(xp, ", "_pool_mask(xp, ", "keep='im2col'", "keep='d_relu'"):
        assert form in fn, form
    assert src.startswith("# Generated") and "\nimport threading\n" in src
    ref = graphc.value_and_grad(W.lenet_loss)(*args)
    _equal(f(*args), ref)                         # NumPy: helpers write, bit for bit
    _equal(f(*args), ref)                         # again: the kept buffers reused
    _equal(f(*_to_strict(args)), ref)             # strict: the functional paths


def test_results_survive_the_next_call_and_other_threads():
    f = graphc.value_and_grad(W.lenet_loss, target=XP)
    a, b = _lenet_args(seed=1), _lenet_args(seed=2)
    first = f(*a)
    kept = _copy(first)
    second = f(*b)                                 # overwrites every kept buffer
    _equal(first, kept)
    _equal(second, graphc.value_and_grad(W.lenet_loss)(*b))
    out = {}

    def run(k, args):
        for _ in range(3):
            out[k] = f(*args)
    threads = [threading.Thread(target=run, args=(k, args)) for k, args in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _equal(out["a"], kept)
    _equal(out["b"], _copy(second))


def test_torch_gets_the_functional_forms():
    torch = pytest.importorskip("torch")
    args = _lenet_args(n=16)
    f = graphc.value_and_grad(W.lenet_loss, target=XP)

    def conv(t):
        if isinstance(t, dict):
            return {k: conv(v) for k, v in t.items()}
        return tuple(conv(v) for v in t) if isinstance(t, tuple) else torch.asarray(t)
    val, grads = f(*conv(args))
    rv, rg = graphc.value_and_grad(W.lenet_loss)(*args)
    assert abs(float(val) - float(rv)) < 1e-12
    for k in rg:
        np.testing.assert_allclose(grads[k].numpy(), rg[k], rtol=1e-10, atol=1e-12)


# --- the proof: what reaches the caller is never kept, never written over --------------------
def test_a_product_the_caller_receives_is_not_kept():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 300)), rng.normal(size=(300, 500))   # 1.6 MB product

    def views(a, b):
        c = a @ b
        return c.T, c.reshape(-1)[:10], (a @ b * 2.0).sum()
    f = graphc.compile(views, target=XP)
    src = f.source(a, b)
    assert "keep=" not in src and "_kept" not in src
    first = f(a, b)
    kept = _copy(first)
    f(a + 1.0, b)
    _equal(first, kept)
    _equal(first, graphc.compile(views)(a, b))


def test_a_temporary_product_is_kept():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 300)), rng.normal(size=(300, 500))

    def tmp(a, b):
        c = a @ b                                  # read through a view, into fresh results
        return np.tanh(c).sum(), c[:2, :3] @ np.ones((3, 4))
    f = graphc.compile(tmp, target=XP)
    assert "_matmul(xp, a, b, keep='c')" in f.source(a, b)
    first = f(a, b)
    kept = _copy(first)
    f(a - 1.0, b)
    _equal(first, kept)
    _equal(first, graphc.compile(tmp)(a, b))
    _equal(f(_to_strict(a), _to_strict(b)), graphc.compile(tmp)(a, b))


def test_in_place_only_over_a_dead_fresh_argument():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 400))                # 1.28 MB

    def f(x):
        y = x * 2.0                                # an output: never written over
        z = np.exp(x) + 1.0                        # dead after the next line: written over
        return y, nn.relu(y.reshape(-1)), np.maximum(z, 1.5), np.exp(x) * x
    c = graphc.compile(f, target=XP)
    src = c.source(x)
    fn = src.split("\n\n\ndef _")[0]
    assert "_in_place(xp.maximum, " in fn and "xp.exp(x)" in fn
    assert "_in_place(xp.multiply, exp, x)" in fn      # an output, over exp(x) at its last use
    assert "_in_place(xp.add" not in fn                           # exp(x) + 1.0: an operator
    assert "_in_place(xp.maximum, xp.reshape(y" not in fn
    assert "into=" not in fn                       # x is the caller's: never written over
    xs = x.copy()
    out = c(x)
    np.testing.assert_array_equal(x, xs)
    _equal(out, graphc.compile(f)(x))
    _equal(c(_to_strict(x)), graphc.compile(f)(x))
    torch = pytest.importorskip("torch")
    for got, want in zip(c(torch.asarray(x)), graphc.compile(f)(x)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_small_graphs_keep_their_form():
    def f(w, x):
        return np.maximum(x @ w, 0.0).sum()
    rng = np.random.default_rng(0)
    src = graphc.grad(f, target=XP).source(rng.normal(size=(8, 4)), rng.normal(size=(16, 8)))
    for helper in ("_kept(", " _matmul(", " _stack(", " _in_place(", "threading"):
        assert helper not in src


def test_symbolic_modules_have_no_kept_buffers():
    args = _lenet_args(n=8)
    src = graphc.value_and_grad(W.lenet_loss, target=XP).source(
        args[0], graphc.Spec(("n", 1, 28, 28), "float64"), graphc.Spec(("n",), "int64"))
    fn = src.split("\n\n\ndef _")[0]
    assert "keep=" not in fn and "_in_place(" not in fn


# --- the helpers themselves -----------------------------------------------------------------
def _helpers(*names):
    ns = {"threading": threading}
    exec("import array_api_compat\n" + "\n".join(helpers_for(" ".join(f"{n}(" for n in names))),
         ns)
    return ns


def test_kept_buffer_follows_the_shape():
    ns = _helpers("_matmul")
    rng = np.random.default_rng(0)
    for n in (3, 5, 3):
        a, b = rng.normal(size=(2, n, 4)), rng.normal(size=(4, 6))
        out = ns["_matmul"](np, a, b, keep="t")
        np.testing.assert_array_equal(out, a @ b)
        assert out.shape == (2, n, 6) and ns["_WORKSPACE"].t is out
    a32 = rng.normal(size=(3, 4)).astype(np.float32)
    assert ns["_matmul"](np, a32, b, keep="u").dtype == np.float64   # mixed: a plain a @ b
    assert not hasattr(ns["_WORKSPACE"], "u")
    sa, sb = strict.asarray(a), strict.asarray(b)
    np.testing.assert_array_equal(np.asarray(ns["_matmul"](strict, sa, sb, keep="s")), a @ b)
    assert not hasattr(ns["_WORKSPACE"], "s")


def test_stack_in_place_and_pool_helpers():
    ns = _helpers("_stack", "_in_place", "_unpool", "_pool_mask")
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 3, 4)) for _ in range(5)]
    np.testing.assert_array_equal(ns["_stack"](np, xs, 1, keep="w"), np.stack(xs, axis=1))
    sx = [strict.asarray(x) for x in xs]
    np.testing.assert_array_equal(np.asarray(ns["_stack"](strict, sx, 1, keep="w")),
                                  np.stack(xs, axis=1))
    a = rng.normal(size=(4, 5))
    b = a.copy()
    got = ns["_in_place"](np.maximum, 0.0, b, into=1)
    assert got is b and np.array_equal(got, np.maximum(a, 0.0))
    got = ns["_in_place"](strict.maximum, strict.asarray(a), 0.0)
    np.testing.assert_array_equal(np.asarray(got), np.maximum(a, 0.0))
    # max pooling 2x2 on a 5x5 image with ties, an inf and a nan gradient
    x = rng.integers(0, 3, size=(2, 1, 5, 5)).astype(np.float64)
    m = np.maximum(np.maximum(x[:, :, 0:3:2, 0:3:2], x[:, :, 0:3:2, 1:4:2]),
                   np.maximum(x[:, :, 1:4:2, 0:3:2], x[:, :, 1:4:2, 1:4:2]))
    mask = ns["_pool_mask"](np, x, m, (2, 2))
    smask = ns["_pool_mask"](strict, strict.asarray(x), strict.asarray(m), (2, 2))
    np.testing.assert_array_equal(mask, np.asarray(smask))
    assert mask.shape == (2, 2, 2, 1, 2, 2) and (mask.sum(axis=(0, 1)) == 1).all()
    for v in (rng.normal(size=(2, 1, 2, 2)), np.full((2, 1, 2, 2), np.inf)):
        u = ns["_unpool"](np, v, mask, (2, 1, 5, 5))
        su = ns["_unpool"](strict, strict.asarray(v), smask, (2, 1, 5, 5))
        np.testing.assert_array_equal(u, np.asarray(su))
        assert not np.isnan(u).any() and (u[:, :, 4, :] == 0).all()


def test_helpers_are_found_by_whole_name():
    assert "_kept" not in helpers_for("def apply_matmul(x):\n    return x @ x")
    assert set(HELPERS) >= {"_kept", "_matmul", "_stack", "_in_place", "_unpool", "_pool_mask",
                            "_contiguous"}


# --- golden --------------------------------------------------------------------------------
def test_golden_conv_workspace_array_api():
    def loss(w, x):
        h = nn.max_pool2d(nn.relu(nn.conv2d(x, w, padding=2)), 2)
        return (h * h).mean()
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(8, 1, 5, 5)), rng.normal(size=(32, 1, 28, 28)))
    f = graphc.grad(loss, target=XP)
    check_golden("conv_workspace_grad_array_api.py", f.source(*args))
    _equal(f(*args), graphc.grad(loss)(*args))
    _equal(f(*_to_strict(args)), graphc.grad(loss)(*args))


if os.environ.get("GRAPHC_PRINT"):      # GRAPHC_PRINT=1 pytest -s: the LeNet module
    print(graphc.value_and_grad(W.lenet_loss, target=XP).source(*_lenet_args()))


# --- cbrt and logaddexp2 on the array-API target (helpers: xp_helpers._cbrt, _logaddexp2) ---
def test_cbrt_and_logaddexp2_across_the_range_on_strict():
    x = np.array([0.0, -0.0, 1e-310, -5e-324, 1e-200, 0.3, 27.0, -8.0, 1e150, -1.7e308, np.inf,
                  -np.inf, np.nan])
    f = graphc.compile(np.cbrt, target=XP)
    np.testing.assert_array_equal(f(x), np.cbrt(x))                       # NumPy: its own
    got = np.asarray(f(strict.asarray(x)))
    np.testing.assert_array_max_ulp(got, np.cbrt(x), maxulp=2)
    assert np.array_equal(np.signbit(got), np.signbit(np.cbrt(x)))       # -0.0 stays -0.0
    x32 = x.astype(np.float32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_max_ulp(np.asarray(f(strict.asarray(x32))), np.cbrt(x32),
                                        maxulp=1)
    a = np.array([0.0, 1.0, -np.inf, np.inf, np.inf, np.nan, 1e300, -3.0, 50.0])
    b = np.array([0.0, 1.0, -np.inf, np.inf, -np.inf, 1.0, 1e300, 4.0, -60.0])
    g = graphc.compile(np.logaddexp2, target=XP)
    np.testing.assert_array_equal(g(a, b), np.logaddexp2(a, b))
    np.testing.assert_array_max_ulp(np.asarray(g(strict.asarray(a), strict.asarray(b))),
                                    np.logaddexp2(a, b), maxulp=2)
    w = np.array([0.5, 2.0, -3.0])                  # and their gradients, on strict
    for fn in (lambda w: np.cbrt(w).sum(), lambda w: np.logaddexp2(w, 1.0 - w).sum()):
        want = graphc.grad(fn)(w)
        got = np.asarray(graphc.grad(fn, target=XP)(strict.asarray(w)))
        np.testing.assert_allclose(got, want, rtol=1e-14)


# --- check_finite=True on the array-API target ----------------------------------------------
def test_check_finite_on_every_engine():
    def loss(w, x):
        return np.log(x @ w).sum()
    w, x = np.array([1.0, -1.0]), np.array([[2.0, 1.0], [1.0, 1.0]])    # x @ w = [1, 0]
    want = graphc.grad(loss, check_finite=True)
    with pytest.raises(graphc.NonFiniteError) as ref:
        want(w, x)
    f = graphc.grad(loss, target=XP, check_finite=True)
    engines = [lambda a: a, strict.asarray]
    try:
        import torch
        engines.append(torch.asarray)
    except ImportError:
        pass
    for conv in engines:
        with pytest.raises(graphc.NonFiniteError) as err:
            f(conv(w), conv(x))
        assert str(err.value) == str(ref.value)
        ok = f(conv(np.array([1.0, 0.5])), conv(x))               # finite: returned as is
        np.testing.assert_array_equal(np.asarray(ok), want(np.array([1.0, 0.5]), x))
