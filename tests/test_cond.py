"""graphc.cond and graphc.switch: both branches traced, one if/else, reverse mode."""
import numpy as np
import pytest

import graphc
from tests._fd import fd_grad_args, rel_err
from tests.test_codegen import check_golden


def piecewise(x, w):
    return graphc.cond(x.sum() > 0, lambda v, w: np.tanh(v * w), lambda v, w: v ** 2 - w, x, w)


def piecewise_ref(x, w):
    return np.tanh(x * w) if x.sum() > 0 else x ** 2 - w


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_values_and_gradients_both_branches(sign):
    rng = np.random.default_rng(0)
    x, w = sign * np.abs(rng.normal(size=3)), rng.normal(size=3)
    f = graphc.compile(piecewise)
    np.testing.assert_allclose(f(x, w), piecewise_ref(x, w))
    np.testing.assert_allclose(piecewise(x, w), piecewise_ref(x, w))      # eager
    got = graphc.grad(lambda x, w: piecewise(x, w).sum(), argnums=(0, 1))(x, w)
    want = fd_grad_args(lambda x, w: piecewise_ref(x, w).sum(), (x, w), (0, 1))
    for a, b in zip(got, want):
        assert rel_err(a, b) < 1e-7
    src = f.source(x, w)
    assert "if " in src and "else:" in src and src.count("np.tanh") == 1


def test_cond_captured_values_and_pytree_results():
    def f(x, W):
        out = graphc.cond(x[0] > 0, lambda v: {"a": v @ W, "b": v.sum()},
                          lambda v: {"a": v * 2.0, "b": W.sum()}, x)
        return (out["a"] ** 2).sum() + out["b"]

    def ref(x, W):
        out = {"a": x @ W, "b": x.sum()} if x[0] > 0 else {"a": x * 2.0, "b": W.sum()}
        return (out["a"] ** 2).sum() + out["b"]
    rng = np.random.default_rng(1)
    W = rng.normal(size=(3, 3))
    for x in (np.array([1.0, 2.0, -1.0]), np.array([-1.0, 0.5, 2.0])):
        assert graphc.compile(f)(x, W) == pytest.approx(ref(x, W), rel=1e-12)
        got = graphc.grad(f, argnums=(0, 1))(x, W)
        for a, b in zip(got, fd_grad_args(ref, (x, W), (0, 1))):
            assert rel_err(a, b) < 1e-7


def test_switch_clamps_index_and_differentiates():
    def f(k, x):
        return graphc.switch(k, [np.sin, np.cos, lambda v: v ** 3], x)
    cf, g = graphc.compile(f), graphc.grad(f, argnums=1)
    for k, val, d in ((-4, np.sin(0.5), np.cos(0.5)), (1, np.cos(0.5), -np.sin(0.5)),
                      (2, 0.125, 0.75), (9, 0.125, 0.75)):
        assert cf(np.array(k), 0.5) == pytest.approx(val)
        assert g(np.array(k), 0.5) == pytest.approx(d)
    assert f(1, 0.5) == pytest.approx(np.cos(0.5))          # static index: one branch


def test_static_pred_calls_one_branch():
    calls = []
    out = graphc.compile(lambda x: graphc.cond(True, lambda v: v + 1.0,
                                               lambda v: calls.append(1) or v, x))(np.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])
    assert calls == []


def test_branch_type_mismatch_is_a_clear_error():
    with pytest.raises(graphc.ShapeError, match="branch 1") as e:
        graphc.compile(lambda x: graphc.cond(x[0] > 0, lambda v: v, lambda v: v[:1], x))(
            np.ones(2))
    assert "test_cond.py" in e.value.where


def test_cond_inside_scan_gradient():
    def f(w, xs):
        def step(c, x):
            c = graphc.cond(x > 0, lambda c: np.sin(c * w), lambda c: c * x, c)
            return c, c
        c, ys = graphc.scan(step, 0.3, xs)
        return c + ys.sum()

    def ref(w, xs):
        c, total = 0.3, 0.0
        for x in xs:
            c = np.sin(c * w) if x > 0 else c * x
            total += c
        return c + total
    xs = np.array([0.5, -1.2, 2.0, -0.3, 1.0])
    assert graphc.compile(f)(0.8, xs) == pytest.approx(ref(0.8, xs), rel=1e-12)
    got = graphc.grad(f, argnums=(0, 1))(0.8, xs)
    for a, b in zip(got, fd_grad_args(ref, (0.8, xs), (0, 1))):
        assert rel_err(a, b) < 1e-7


def test_golden_cond_gradient():
    x, w = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    check_golden("cond_grad.py", graphc.grad(lambda x, w: piecewise(x, w).sum(),
                                             argnums=(0, 1)).source(x, w))


def test_interpreter_evaluates_cond():
    from graphc.interpret import evaluate
    x, w = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    g = graphc.trace(piecewise, x, w)
    np.testing.assert_allclose(evaluate(g, [x, w])[g.outputs[0]], piecewise_ref(x, w))


def test_grad_of_grad_through_cond_and_fori():
    f = lambda x: graphc.cond(x > 1.0, lambda v: v ** 3, lambda v: np.sin(v), x)  # noqa: E731
    d2 = graphc.grad(graphc.grad(f))
    assert d2(2.0) == pytest.approx(12.0)
    assert d2(0.5) == pytest.approx(-np.sin(0.5))
    p = graphc.grad(graphc.grad(lambda x: graphc.fori_loop(0, 3, lambda i, y: y * x, x)))
    assert p(1.5) == pytest.approx(12 * 1.5 ** 2)              # d2/dx2 x**4


def test_golden_switch():
    def f(k, x):
        return graphc.switch(k, [np.sin, np.cos, lambda v: v ** 3], x)
    check_golden("switch.py", graphc.compile(f).source(np.array(1), np.array([0.5, 2.0])))
