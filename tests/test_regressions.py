"""Regression tests: one plain, deterministic test per bug found by fuzzing
(tests/test_fuzz.py), by the stability table (tools/make_stability_table.py) or
while writing other tests.

Each test names how the bug was found.  A bug found but not fixed yet gets
``xfail(strict=True)`` naming the module that owns the fix: the marker makes
the suite fail once the fix lands, so it is removed then (none are open).
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from _fd import fd_grad


# --- fixed -----------------------------------------------------------------------------------
def test_expm1_gradient_keeps_tiny_derivatives():
    """Stability table, elu at -100 in float32: d expm1(x) was written as
    ``expm1(x) + 1``, which rounds to 0 once expm1(x) rounds to -1 (x < -17 in
    float32, x < -37 in float64), although exp(x) is a normal number there."""
    x32 = np.array([-30.0, -60.0], dtype=np.float32)
    g32 = graphc.grad(lambda x: np.sum(np.expm1(x)))(x32)
    np.testing.assert_allclose(g32, np.exp(x32.astype(np.float64)), rtol=1e-6)
    x64 = np.array([-40.0, -300.0])
    g64 = graphc.grad(lambda x: np.sum(graphc.nn.elu(x)))(x64)
    np.testing.assert_allclose(g64, np.exp(x64), rtol=1e-14)
    assert np.all(g64 > 0)


def test_sigmoid_gradient_keeps_tiny_derivatives():
    """Stability table, sigmoid at +100 in float32: ``out * (1 - out)`` is 0
    once sigmoid(x) rounds to 1, while the derivative is exp(-x)."""
    x = np.array([40.0, 100.0, 700.0, -40.0])
    g = graphc.grad(lambda x: np.sum(graphc.nn.sigmoid(x)))(x)
    want = np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2
    np.testing.assert_allclose(g, want, rtol=1e-14)
    g32 = graphc.grad(lambda x: np.sum(graphc.nn.sigmoid(x)))(np.array([30.0], np.float32))
    np.testing.assert_allclose(g32, [np.exp(-30.0)], rtol=1e-6)


@pytest.mark.parametrize("loss", ["ce_labels", "ce_probs", "logistic", "mse"])
def test_float32_loss_means_do_not_overflow(loss):
    """Stability table, losses at 3e38 in float32: the mean was sum(...) / n,
    and the sum overflows to inf although the mean fits float32."""
    nn = graphc.nn
    big = np.float32(2e38)
    logits = np.array([[big, 0.0], [0.0, big]], np.float32)   # both rows wrong by 2e38
    cases = {
        "ce_labels": (lambda z: nn.cross_entropy(z, np.array([1, 0])), logits, 2e38),
        "ce_probs": (lambda z: nn.cross_entropy(z, np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)),
                     logits, 2e38),
        "logistic": (lambda s: nn.logistic_loss(s, np.array([-1.0, -1.0], np.float32)),
                     np.array([big, big], np.float32), 2e38),
        "mse": (lambda p: nn.mse(p, np.zeros(2, np.float32)),
                np.array([1.5e19, 1.5e19], np.float32), 2.25e38),
    }
    fn, x, want = cases[loss]
    with np.errstate(over="raise"):
        v = fn(x)
        vc, g = graphc.value_and_grad(fn)(x)
    assert v.dtype == vc.dtype == np.float32
    np.testing.assert_allclose([v, vc], [want, want], rtol=1e-6)
    assert np.all(np.isfinite(g))


# --- found by fuzzing, fixed in passes/simplify.py and signature.py -----------------------------
def test_gather_with_negative_alias_index_accumulates():
    """Fuzzing (test_fuzz gradients, seed 10093): ``x[[0, -4]]`` with len(x) == 4
    reads x[0] twice; its gradient must add both cotangents."""
    def f(x):
        return (np.cos(x)[np.array([0, -4])] * np.array([1.0, 2.0])).sum()

    x = np.array([0.1, 0.2, 0.3, 0.4])
    g = graphc.grad(f)(x)
    np.testing.assert_allclose(g, fd_grad(f, x), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g[0], -3 * np.sin(0.1), rtol=1e-14)


def test_gradient_shape_survives_broadcast_plus_uniform_constant():
    """Fuzzing (test_fuzz gradients, seeds 1476 and 20404): a gradient of shape
    (3,) came back with shape (1,).  The backward sum is
    ``broadcast_to(reshape(d_mean / 3, (1,)), (3,)) + full((3,), 2.0)``."""
    def f(x):
        a = np.sum(x, keepdims=True) * np.array([2.0])
        return a.sum() + np.sin(np.mean(x))

    x = np.array([1.0, 2.0, 3.0])
    g = graphc.grad(f)(x)
    assert g.shape == (3,)
    np.testing.assert_allclose(g, 2.0 + np.cos(2.0) / 3, rtol=1e-14)


def test_compile_a_ufunc_directly():
    """Found while building the stability table: ``graphc.compile(np.tanh)``."""
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(graphc.compile(np.tanh)(x), np.tanh(x))


def test_product_of_two_broadcasts_keeps_its_shape():
    """Fuzzing (test_fuzz long gradients, seed 20450563196729): the backward
    ``broadcast_to(ct) * broadcast_to(a)`` of a mean lost both broadcasts and the
    gradient came out 3 times too small.  The forward-only form: a wrong value."""
    f = graphc.compile(lambda a, b: (np.broadcast_to(a, (3,)) * np.broadcast_to(b, (3,))).sum())
    assert f(np.float64(2.0), np.float64(5.0)) == 30.0

    def g(a, b):
        v = np.max(b) * np.broadcast_to(a, (3,))
        return np.abs(v.mean(axis=0, keepdims=True)).sum()

    a, b = np.float64(0.7), np.float64(-1.2)
    np.testing.assert_allclose(graphc.grad(g, argnums=1)(a, b), -0.7, rtol=1e-14)


# --- found outside fuzzing, fixed in tracing.py -----------------------------------------------
@pytest.mark.slow
def test_tracing_works_under_cprofile():
    """Found while writing the graphc.nn tests: tracing under cProfile failed.
    Name capture borrows the profile hook, so tracing.py leaves a profiler's hook
    in place and captures no names."""
    import subprocess
    import sys
    code = ("import cProfile, numpy as np, graphc\n"
            "from graphc import nn\n"
            "prof = cProfile.Profile(); prof.enable()\n"
            "out = graphc.compile(nn.relu)(np.array([-1.0, 2.0]))\n"
            "prof.disable()\n"
            "assert out.tolist() == [0.0, 2.0], out\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_softmax_of_a_0d_array_takes_axis_0_or_minus_1():
    """Found by the long fuzzing profile: NumPy's reductions (and PyTorch's softmax) accept
    axis 0/-1 on a 0-d array; graphc.nn raised AxisError there, traced and eager."""
    x = np.array(0.7)
    for axis in (0, -1):
        assert graphc.nn.softmax(x, axis=axis) == 1.0
        assert graphc.compile(lambda v: graphc.nn.log_softmax(v, axis=axis))(x) == 0.0
        assert graphc.grad(lambda v: np.sum(graphc.nn.softmax(v, axis=axis)))(x) == 0.0
    with pytest.raises(np.exceptions.AxisError):
        graphc.nn.softmax(x, axis=1)


def test_mean_var_std_of_a_0d_array_refuse_an_axis_as_numpy():
    """Found by the long fuzzing profile: np.mean/var/std refuse every axis of a 0-d array
    (np.sum and np.max accept 0 and -1); graphc returned the value."""
    x = np.array(1.5)
    for fn in (lambda v: np.mean(v, axis=-1), lambda v: np.mean(v, axis=0),
               lambda v: v.var(axis=0), lambda v: v.std(axis=-1)):
        with pytest.raises(np.exceptions.AxisError):
            fn(x)
        with pytest.raises(np.exceptions.AxisError):
            graphc.compile(fn)(x)
    assert graphc.compile(lambda v: np.sum(v, axis=-1))(x) == 1.5
    assert graphc.compile(lambda v: v.var())(x) == 0.0
