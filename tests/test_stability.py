"""Numerical stability at extreme inputs, and the stable rewrites of naive chains.

The stability cases and their mpmath references live in
tools/make_stability_table.py, which also writes docs/stability.md; the
tests here run every case and fail when the committed table is stale.
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import graphc
from _fd import fd_grad, rel_err

ROOT = pathlib.Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_stability_table",
                                               ROOT / "tools" / "make_stability_table.py")
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)


# --- the table: every activation, loss and softmax-family op at ±1e4, 0, ±1e-300, f32 extremes --
@pytest.mark.parametrize("name,dtype,p", table.CASES,
                         ids=[f"{n}-{d}-{p:g}" for n, d, p in table.CASES])
def test_extreme_inputs_match_mpmath(name, dtype, p):
    ok, note = table.run_case(name, dtype, p)
    assert ok, f"{name} at {p:g} ({dtype}): {note}"


def test_stability_doc_is_current():
    text = table.table()
    assert "All " in text and "Failures" not in text
    assert (ROOT / "docs" / "stability.md").read_text() == text, \
        "docs/stability.md is stale: run python tools/make_stability_table.py"


def test_reference_sanity():
    """The mpmath references themselves, against known closed values."""
    v, g = table.FUNCTIONS["sigmoid"][2](np.array([0.0, 1e4]), np.ones(2))
    assert float(v[0]) == 0.5 and float(g[0]) == 0.25 and float(v[1]) == 1.0
    v, g = table.FUNCTIONS["logsumexp"][2](np.array([[0.0, 0.0]]), np.ones(1))
    assert abs(float(v[0]) - np.log(2)) < 1e-16 and np.allclose(g.astype(float), 0.5)
    v, g = table.FUNCTIONS["mse"][2](np.array([1.0, 3.0]), np.ones(()))
    assert float(v) == 5.0 and np.allclose(g.astype(float), [1.0, 3.0])


# --- stable rewrites: log(1 + exp(x)) -> softplus --------------------------------------------
def hand_softplus(x):
    y = np.log(1 + np.exp(x))
    return y


def hand_softplus_swapped(x):
    y = np.log(np.exp(x) + 1.0)
    return y


def hand_softplus_log1p(x):
    y = np.log1p(np.exp(x))
    return y


def _softplus_ref(x):
    return np.logaddexp(0, x)


def _sigmoid_ref(x):
    return np.exp(-np.logaddexp(0, -x))


EXTREME = np.array([-1e4, -40.0, 0.0, 3.0, 1e4])


def _softplus_text(arg="x"):
    """What generated code writes for softplus(arg): the primitive's own emission,
    so these tests do not pin how softplus is computed."""
    from graphc.ops.activation import softplus
    from graphc.primitive import Aval
    aval = Aval((5,), np.dtype(np.float64))
    return softplus.emit([arg], "y", [aval], aval, {})


@pytest.mark.parametrize("fn", [hand_softplus, hand_softplus_swapped, hand_softplus_log1p])
def test_hand_written_softplus_is_rewritten(fn):
    src = graphc.compile(fn).source(EXTREME)
    assert _softplus_text() in src
    # the naive chain's exp(x) and 1 + exp(x) are dead and dropped before codegen
    g = graphc.compile(fn).graph(EXTREME)
    ops = sorted(g.nx.nodes[n]["op"] for n in g.nx.nodes)
    assert ops == ["input", "softplus"], ops
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = graphc.compile(fn)(EXTREME)
    np.testing.assert_allclose(y, _softplus_ref(EXTREME), rtol=1e-15)


@pytest.mark.parametrize("fn", [hand_softplus, hand_softplus_swapped, hand_softplus_log1p])
def test_hand_written_softplus_gradient_is_finite_at_extremes(fn):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g = graphc.value_and_grad(lambda x: fn(x).sum())(EXTREME)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, _softplus_ref(EXTREME).sum(), rtol=1e-15)
    np.testing.assert_allclose(g, _sigmoid_ref(EXTREME), rtol=1e-15)   # [0, 4e-18, .5, .95, 1]
    assert g[1] > 0   # exp(-40): tiny, but not rounded away


def test_rewritten_node_keeps_user_name_and_line():
    g = graphc.trace(hand_softplus, EXTREME)
    (nid,) = [n for n, d in g.nx.nodes(data=True) if d["op"] == "softplus"]
    node = g.nx.nodes[nid]
    assert node["name"] == "y"
    assert node["where"].endswith(f"test_stability.py:{hand_softplus.__code__.co_firstlineno + 1}")
    assert node["rewrite"] == "log(1 + exp(x)) -> softplus(x)"
    src = graphc.compile(hand_softplus).source(EXTREME)
    line = hand_softplus.__code__.co_firstlineno + 1
    assert any(text.strip().startswith(f"y = {_softplus_text()}")
               and f"test_stability.py:{line}" in text for text in src.splitlines())
    # the gradient's block names the user's own line
    assert "# grad of: y = np.log(1 + np.exp(x))" in graphc.grad(
        lambda x: hand_softplus(x).sum()).source(EXTREME)


def test_exp_used_elsewhere_is_kept():
    def f(x):
        e = np.exp(x)
        y = np.log(1 + e)
        return (y * e).sum()

    x = np.array([-2.0, 0.5, 3.0])
    src = graphc.compile(f).source(x)
    assert "np.exp(x)" in src and _softplus_text() in src and "1 + e" not in src
    want = (np.log1p(np.exp(x)) * np.exp(x)).sum()
    np.testing.assert_allclose(graphc.compile(f)(x), want, rtol=1e-14)
    g = graphc.grad(f)(x)
    np.testing.assert_allclose(g, fd_grad(lambda x: (np.log1p(np.exp(x)) * np.exp(x)).sum(), x),
                               rtol=1e-7)


def test_sum_used_elsewhere_is_kept():
    def f(x):
        s = 1 + np.exp(x)
        return (np.log(s) + s).sum()

    x = np.array([-1.0, 2.0])
    src = graphc.compile(f).source(x)
    assert _softplus_text() in src and "1 + np.exp(x)" in src
    np.testing.assert_allclose(graphc.compile(f)(x), (np.log(1 + np.exp(x)) + 1 + np.exp(x)).sum())


@pytest.mark.parametrize("fn", [hand_softplus, hand_softplus_swapped, hand_softplus_log1p])
def test_rewritten_softplus_matches_finite_differences(fn, rng):
    x = rng.normal(size=(3, 4)) * 3
    w = rng.uniform(size=(3, 4))
    loss = lambda x: (fn(x) * w).sum()   # noqa: E731
    g = graphc.grad(loss)(x)
    assert rel_err(g, fd_grad(lambda x: (np.log(1 + np.exp(x)) * w).sum(), x)) < 1e-8
    # grad of grad: the Hessian diagonal is sigmoid'(x) * w
    h = graphc.grad(lambda x: graphc.grad(loss)(x).sum())(x)
    s = _sigmoid_ref(x)
    np.testing.assert_allclose(h, s * (1 - s) * w, rtol=1e-10)


@pytest.mark.parametrize("expr", [
    lambda x: np.log(2 + np.exp(x)),                       # not 1
    lambda x: np.log(1 + np.exp(x) * 2),                   # not exp(x)
    lambda x: np.log(np.ones((2, 3)) + np.exp(x)),         # the 1 broadcasts the sum
    lambda x: np.log(np.float64(1) + np.exp(x.astype(np.float32))),   # the 1 promotes float32
])
def test_near_misses_are_not_rewritten(expr):
    x = np.array([0.3, -1.2, 2.0])
    g = graphc.compile(expr).graph(x)
    ops = {d["op"] for _, d in g.nx.nodes(data=True)}
    assert "softplus" not in ops and "log" in ops
    out = graphc.compile(expr)(x)
    np.testing.assert_allclose(out, expr(x), rtol=1e-6)
    assert out.dtype == expr(x).dtype


# --- stable rewrites: log(softmax(x)) -> log_softmax -------------------------------------------
X = np.array([[1e4, 0.0, -1e4], [1.0, 2.0, 3.0]])


def _log_softmax_ref(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def log_nn_softmax(x):
    logp = np.log(graphc.nn.softmax(x))
    return logp


def log_hand_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    logp = np.log(p)
    return logp


def log_hand_softmax_unshifted(x):
    logp = np.log(np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))
    return logp


@pytest.mark.parametrize("fn", [log_nn_softmax, log_hand_softmax, log_hand_softmax_unshifted])
def test_log_of_softmax_is_rewritten(fn):
    c = graphc.compile(fn)
    g = c.graph(X)
    ops = [d["op"] for _, d in g.nx.nodes(data=True)]
    assert "log_softmax" in ops and "log" not in ops and "div" not in ops
    out = g.nx.nodes[g.outputs[0]]
    assert out["op"] == "log_softmax" and out["name"] == "logp"
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = c(X)
        v, grad = graphc.value_and_grad(lambda x: (fn(x) * np.arange(6.0).reshape(2, 3)).sum())(X)
    np.testing.assert_allclose(y, _log_softmax_ref(X), rtol=1e-15)
    assert np.isfinite(v) and np.all(np.isfinite(grad))
    w = np.arange(6.0).reshape(2, 3)
    s = np.exp(_log_softmax_ref(X))
    np.testing.assert_allclose(grad, w - s * w.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-12)


def test_log_of_softmax_matches_finite_differences(rng):
    x = rng.normal(size=(4, 5))
    w = rng.uniform(size=(4, 5))
    for fn in (log_nn_softmax, log_hand_softmax, log_hand_softmax_unshifted):
        g = graphc.grad(lambda x: (fn(x) * w).sum())(x)
        assert rel_err(g, fd_grad(lambda x: (_log_softmax_ref(x) * w).sum(), x)) < 1e-8


def test_log_of_one_d_softmax_and_other_axis():
    x = np.array([800.0, 1.0, -800.0])
    f = graphc.compile(lambda x: np.log(np.exp(x) / np.exp(x).sum()))
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(f(x), _log_softmax_ref(x), rtol=1e-15)
    y = np.array([[800.0, 1.0], [0.0, -800.0]])
    f0 = graphc.compile(lambda x: np.log(np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)))
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(f0(y), _log_softmax_ref(y, axis=0), rtol=1e-15)


def test_softmax_over_the_wrong_axis_is_not_rewritten():
    # e / e.sum(axis=0) without keepdims broadcasts the column sums along rows: not a softmax
    x = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [0.0, 0.4, -0.2]])
    fn = lambda x: np.log(np.exp(x) / np.exp(x).sum(axis=0))   # noqa: E731
    ops = {d["op"] for _, d in graphc.compile(fn).graph(x).nx.nodes(data=True)}
    assert "log_softmax" not in ops
    np.testing.assert_allclose(graphc.compile(fn)(x), fn(x), rtol=1e-14)


def test_log_of_exp_is_the_identity():
    f = graphc.compile(lambda x: np.log(np.exp(2 * x)))
    x = np.array([1e3, -1e3, 0.5])
    with np.errstate(over="raise"):
        np.testing.assert_allclose(f(x), 2 * x)
    assert "np.exp(" not in f.source(x)
