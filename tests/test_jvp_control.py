"""Forward mode (graphc.jvp) through structured control flow: scan, fori_loop,
while_loop, cond, switch, nested; forward-over-reverse through a scan; the RNN
against PyTorch's torch.func in float64.

Every tangent is checked against central differences of the plain NumPy function
and against graphc.vjp (<u, J v> computed from both sides, to 1e-10 in float64).
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc

from _fd import rel_err

RNG = np.random.default_rng(16)


# the golden's function (tests/golden/scan_jvp.py): kept here, its line numbers are in it
def _small_scan(W, h0, xs):
    def step(h, x):
        h = np.tanh(W @ h + x)
        return h, h.sum()
    h, ys = graphc.scan(step, h0, xs)
    return h.sum() + (ys ** 2).sum()


# --- helpers: pytrees of float arrays ---------------------------------------------------
def _map(fn, *trees):
    t = trees[0]
    if isinstance(t, dict):
        return {k: _map(fn, *[x[k] for x in trees]) for k in t}
    if isinstance(t, (list, tuple)):
        out = [_map(fn, *xs) for xs in zip(*trees)]
        return out if isinstance(t, list) else tuple(out)
    return fn(*trees)


def _leaves(tree):
    out = []
    _map(lambda x: out.append(np.asarray(x, np.float64)), tree)
    return out


def _dot(a, b):
    return sum(float(np.sum(x * y)) for x, y in zip(_leaves(a), _leaves(b)))


def _like(tree):
    return _map(lambda x: RNG.normal(size=np.shape(x)), tree)


def check_jvp(f, primals, tangents=None, fd_tol=1e-7, eps=1e-6):
    """graphc.jvp of ``f`` against its value, central differences and graphc.vjp."""
    tangents = tangents if tangents is not None else tuple(_like(p) for p in primals)
    out, dot = graphc.jvp(f, primals, tangents)
    ref = f(*primals)
    for a, b in zip(_leaves(out), _leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    plus = f(*_map(lambda p, t: p + eps * t, primals, tangents))
    minus = f(*_map(lambda p, t: p - eps * t, primals, tangents))
    fd = _map(lambda a, b: (np.asarray(a) - np.asarray(b)) / (2 * eps), plus, minus)
    for a, b in zip(_leaves(dot), _leaves(fd)):
        assert rel_err(a, b) < fd_tol, (a, b)
    u = _like(out)
    _, pull = graphc.vjp(f, *primals)
    cts = pull(u)
    lhs, rhs = _dot(u, dot), _dot(cts, tangents)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-12)
    return out, dot


# --- scan -------------------------------------------------------------------------------
def _rnn_step(W, U):
    def step(h, x):
        h = np.tanh(W @ h + U @ x)
        return h, np.sin(h).sum()
    return step


def test_scan_captured_weights_and_ys():
    W, U = RNG.normal(size=(3, 3)) * 0.5, RNG.normal(size=(3, 2))
    h0, xs = RNG.normal(size=3), RNG.normal(size=(5, 2))

    def f(W, U, h0, xs):
        return graphc.scan(_rnn_step(W, U), h0, xs)
    check_jvp(f, (W, U, h0, xs))
    check_jvp(lambda W: f(W, U, h0, xs), (W,))          # only the captured weights move
    check_jvp(lambda xs: f(W, U, h0, xs)[1], (xs,))      # only xs: carries get a tangent


def test_scan_pytree_carry_and_reverse():
    def f(a, xs):
        def step(c, x):
            s, (p, q) = c["s"], c["pq"]
            return {"s": s + x * p, "pq": (p * np.cos(x), q + s * s)}, {"y": s * q}
        return graphc.scan(step, {"s": a[0], "pq": (a[1], a[2])}, xs, reverse=True)
    check_jvp(f, (RNG.normal(size=(3, 2)), RNG.normal(size=(4, 2))))


def test_scan_length_without_xs():
    def f(x):
        return graphc.scan(lambda c, _: (np.sin(c) * x + c, c.sum()), x, None, length=6)
    check_jvp(f, (RNG.normal(size=3),))


def test_carry_without_initial_tangent_gets_one_from_the_body():
    # the second carry starts constant; the body makes it depend on x: the fixpoint
    def f(x):
        def step(c, _):
            a, b = c
            return (a * 0.9, b + a * x), None
        return graphc.scan(step, (np.ones(2), np.zeros(2)), None, length=4)[0]
    check_jvp(f, (RNG.normal(size=2),))
    src = graphc.jvp(f).source((np.ones(2),), (np.ones(2),))
    assert "dot_b" in src


def test_zero_tangents_stay_absent():
    # a carry that never depends on x gets no tangent in the loop
    def f(x):
        def step(c, _):
            k, y = c
            return (k * 2.0, y * x + k), None
        return graphc.scan(step, (np.ones(2), x), None, length=3)[0][1]
    check_jvp(f, (RNG.normal(size=2),))
    src = graphc.jvp(f).source((np.ones(2),), (np.ones(2),))
    assert "dot_k" not in src and "dot_y" in src


# --- fori_loop, while_loop --------------------------------------------------------------
def _power_like(x, lo, hi):
    return graphc.fori_loop(lo, hi, lambda i, y: y * x + np.sin(y) * i, x)


def test_fori_loop_static_bounds():
    check_jvp(lambda x: _power_like(x, 1, 5), (RNG.normal(size=3),))


def test_fori_loop_traced_bounds():
    def f(x):
        n = (x[0] > -1e9).astype(np.int64) * 4       # a traced trip count
        return _power_like(x, 1, n + 1)
    check_jvp(f, (RNG.normal(size=3),))


def newton_sqrt(a):
    return graphc.while_loop(lambda x: np.abs(x * x - a) > 1e-12,
                             lambda x: 0.5 * (x + a / x), a)


def test_while_loop_newton_sqrt():
    for a in (2.0, 9.0, 0.3):
        out, dot = graphc.jvp(newton_sqrt, (np.array(a),), (np.array(1.7),))
        assert float(out) == pytest.approx(np.sqrt(a), rel=1e-14)
        assert float(dot) == pytest.approx(0.5 / np.sqrt(a) * 1.7, rel=1e-10)
    check_jvp(newton_sqrt, (np.array(2.0),), fd_tol=1e-6)


def test_while_loop_pytree_and_captured():
    w = RNG.normal(size=3)

    def f(w, x0):
        def body(c):
            x, n = c
            return (np.tanh(x * w + 0.1), n + 1)
        return graphc.while_loop(lambda c: c[1] < 5, body, (x0, np.int64(0)))[0]
    check_jvp(f, (w, RNG.normal(size=3)))


# --- cond, switch, nested ---------------------------------------------------------------
def _branchy(x, w):
    return graphc.cond(x.sum() > 0, lambda v: np.sin(v) * w, lambda v: v ** 3 + w, x)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_both_branches(sign):
    x = np.abs(RNG.normal(size=3)) * sign
    check_jvp(_branchy, (x, RNG.normal(size=3)))


@pytest.mark.parametrize("k", [0, 1, 2, 3, 7])
def test_switch_every_branch(k):
    def f(x, y):
        return graphc.switch(np.int64(k) + (x[0] * 0 > 1), [
            lambda a, b: (np.sin(a), b),
            lambda a, b: (a * b, np.cos(b)),
            lambda a, b: (a, b * 0.0),               # a tangent in one branch, zero here
            lambda a, b: (np.exp(a).sum() + a, b)], x, y)
    check_jvp(f, (RNG.normal(size=2), RNG.normal(size=2)))


def test_cond_inside_scan():
    def f(W, xs):
        def step(h, x):
            h = graphc.cond(x.sum() > 0, lambda v: np.tanh(W @ v + x), lambda v: v * x, h)
            return h, h[0]
        return graphc.scan(step, np.ones(2), xs)
    check_jvp(f, (RNG.normal(size=(2, 2)), RNG.normal(size=(6, 2))))


def test_scan_inside_cond_inside_jvp_of_jvp():
    def f(x):
        return graphc.cond(x.sum() > 0,
                           lambda v: graphc.scan(lambda c, _: (np.sin(c) * v, None), v, None,
                                                 length=3)[0],
                           lambda v: v, x)

    def directional(x):
        return graphc.jvp(f, (x,), (np.array([1.0, 0.5]),))[1]
    x, v = np.array([0.4, 0.3]), np.array([0.2, -1.0])
    _, second = graphc.jvp(directional, (x,), (v,))
    eps = 1e-5
    fd = (directional(x + eps * v) - directional(x - eps * v)) / (2 * eps)
    assert rel_err(second, fd) < 1e-7


# --- forward over reverse, reverse over forward ----------------------------------------
def _scan_loss(W, h0, xs):
    h, ys = graphc.scan(_rnn_step(W, np.eye(3)), h0, xs)
    return h.sum() + (ys ** 2).sum()


def test_hvp_through_a_scan_both_ways():
    W, h0, xs = RNG.normal(size=(3, 3)) * 0.5, RNG.normal(size=3), RNG.normal(size=(4, 3))
    v = RNG.normal(size=(3, 3))
    g = graphc.grad(lambda W: _scan_loss(W, h0, xs))
    _, hv = graphc.jvp(g, (W,), (v,))                                  # forward over reverse
    eps = 1e-5
    fd = (g(W + eps * v) - g(W - eps * v)) / (2 * eps)
    assert rel_err(hv, fd) < 1e-8
    rev = graphc.grad(lambda W: graphc.jvp(lambda W: _scan_loss(W, h0, xs), (W,), (v,))[1])(W)
    np.testing.assert_allclose(rev, hv, rtol=1e-11, atol=1e-13)        # reverse over forward


def test_hvp_through_a_while_loop_and_traced_bounds():
    # the backward pass reads a Python list of saved carries, (x, dot_x) per step
    for a in (2.0, 4.0, 0.3):
        _, d2 = graphc.jvp(graphc.grad(newton_sqrt), (a,), (1.0,))    # d/da 0.5 a^-1/2
        assert float(d2) == pytest.approx(-0.25 * a ** -1.5, rel=1e-9)
        rev = graphc.grad(lambda a: graphc.jvp(newton_sqrt, (a,), (1.0,))[1])(a)
        assert float(rev) == pytest.approx(-0.25 * a ** -1.5, rel=1e-9)
    src = graphc.jvp(graphc.grad(newton_sqrt)).source((2.0,), (1.0,))
    assert "carries_tape.append((x, dot_x))" in src and "in reversed(carries_tape)" in src

    def f(x):
        n = (x[0] > -1e9).astype(np.int64) * 4
        return _power_like(x, 1, n + 1).sum()
    x, v = RNG.normal(size=3) * 0.5, RNG.normal(size=3)
    g = graphc.grad(f)
    _, hv = graphc.jvp(g, (x,), (v,))
    eps = 1e-5
    assert rel_err(hv, (g(x + eps * v) - g(x - eps * v)) / (2 * eps)) < 1e-8


def test_a_structured_op_without_a_forward_rule_is_refused():
    # never a silent zero tangent: an op with no jvp rule raises (a stand-in handler here)
    from graphc.control import body as cb
    from graphc.ir import SUBGRAPH_OPS
    cb.Handler("test_no_jvp", None, lambda node: [])
    try:
        def f(x):
            cb.add_structured("test_no_jvp", [x], [], {}, [], "f.py:1")
            return x
        with pytest.raises(graphc.UnsupportedError, match="no forward-mode rule"):
            graphc.jvp(f, (np.ones(2),), (np.ones(2),))
    finally:
        del SUBGRAPH_OPS["test_no_jvp"]


# --- generated code ---------------------------------------------------------------------
def test_golden_scan_jvp():
    from test_codegen import check_golden
    args = (np.zeros((3, 3)), np.zeros(3), np.zeros((4, 3)))
    src = graphc.jvp(_small_scan).source(args, args)
    body = src[src.index("for t in"):src.index("return")]
    assert "dot_h = " in body and "h_1 = np.tanh" in body     # dot_h next to h in the loop
    check_golden("scan_jvp.py", src)


# --- the RNN against torch.func, float64 ----------------------------------------------
def rnn_loss(p, xs, y):
    """benchmarks/rnn.py's rnn_loss: an Elman RNN written with graphc.scan."""
    def step(h, x):
        h = np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
        return h, None
    h0 = np.zeros((xs.shape[1], p["Wh"].shape[0]), xs.dtype)
    h, _ = graphc.scan(step, h0, xs)
    return np.mean((h @ p["Wo"] - y) ** 2)


def _rnn_setup():
    rng = np.random.default_rng(7)
    T, B, D, H, n_out = 6, 3, 4, 5, 2
    p = {"Wx": rng.normal(size=(D, H)) * 0.4, "Wh": rng.normal(size=(H, H)) * 0.4,
         "b": rng.normal(size=H) * 0.1, "Wo": rng.normal(size=(H, n_out)) * 0.4}
    dp = {k: rng.normal(size=v.shape) for k, v in p.items()}
    return p, dp, rng.normal(size=(T, B, D)), rng.normal(size=(B, n_out))


def _rnn_torch(torch, xs, y):
    X, Y = torch.tensor(xs), torch.tensor(y)

    def loss(p):
        h = torch.zeros((X.shape[1], p["Wh"].shape[0]), dtype=torch.float64)
        for x in X:
            h = torch.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
        return ((h @ p["Wo"] - Y) ** 2).mean()
    return loss


def test_rnn_against_torch_func():
    torch = pytest.importorskip("torch")
    p, dp, xs, y = _rnn_setup()
    t_loss = _rnn_torch(torch, xs, y)
    tp = {k: torch.tensor(v) for k, v in p.items()}
    tdp = {k: torch.tensor(v) for k, v in dp.items()}

    def loss(p):
        return rnn_loss(p, xs, y)
    t_out, t_dot = torch.func.jvp(t_loss, (tp,), (tdp,))
    out, dot = graphc.jvp(loss, (p,), (dp,))
    assert float(out) == pytest.approx(t_out.item(), rel=1e-13)
    assert float(dot) == pytest.approx(t_dot.item(), rel=1e-11)
    _, t_pull = torch.func.vjp(t_loss, tp)
    (t_ct,) = t_pull(torch.tensor(-1.3, dtype=torch.float64))
    _, pull = graphc.vjp(loss, p)
    (ct,) = pull(-1.3)
    for k in p:
        np.testing.assert_allclose(ct[k], t_ct[k].numpy(), rtol=1e-11, atol=1e-13, err_msg=k)
    _, t_hvp = torch.func.jvp(torch.func.grad(t_loss), (tp,), (tdp,))
    _, hvp = graphc.jvp(graphc.grad(loss), (p,), (dp,))
    g = graphc.grad(lambda q: graphc.jvp(loss, (q,), (dp,))[1])(p)
    for k in p:
        np.testing.assert_allclose(hvp[k], t_hvp[k].numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(g[k], t_hvp[k].numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_rnn_hidden_states_jvp_against_torch_func():
    # a non-scalar output: the stacked hidden states (ys) and their tangents
    torch = pytest.importorskip("torch")
    p, dp, xs, _ = _rnn_setup()

    def states(p, xs):
        def step(h, x):
            h = np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
            return h, h
        return graphc.scan(step, np.zeros((xs.shape[1], 5)), xs)[1]

    def t_states(p, X):
        h, out = torch.zeros((X.shape[1], 5), dtype=torch.float64), []
        for x in X:
            h = torch.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
            out.append(h)
        return torch.stack(out)
    dxs = np.random.default_rng(8).normal(size=xs.shape)
    tp = {k: torch.tensor(v) for k, v in p.items()}
    tdp = {k: torch.tensor(v) for k, v in dp.items()}
    t_out, t_dot = torch.func.jvp(t_states, (tp, torch.tensor(xs)), (tdp, torch.tensor(dxs)))
    out, dot = check_jvp(states, (p, xs), (dp, dxs))
    np.testing.assert_allclose(out, t_out.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dot, t_dot.numpy(), rtol=1e-11, atol=1e-13)


def test_backward_loop_carries_only_nonzero_cotangents():
    # k never reaches the loss: the backward loop carries no d_k (and no tangent carries
    # of a forward-mode loop), and the gradient is still right
    def loss(w, xs):
        def step(c, x):
            k, h = c
            return (k * 2.0 + x, np.tanh(w * h + x)), None
        (k, h), _ = graphc.scan(step, (0.0, 0.0), xs)
        return h
    xs = RNG.normal(size=5)
    src = graphc.grad(loss).source(0.7, xs)
    assert "d_k" not in src and "d_h" in src
    eps = 1e-6
    fd = (loss(0.7 + eps, xs) - loss(0.7 - eps, xs)) / (2 * eps)
    assert float(graphc.grad(loss)(0.7, xs)) == pytest.approx(fd, rel=1e-8)
    hvp_src = graphc.jvp(graphc.grad(loss)).source((0.7, xs), (1.0, xs))
    assert "d_dot_h" not in hvp_src and "dot_d_h" in hvp_src


def test_cond_jvp_code_names_the_tangent_after_the_result():
    def f(x, w):
        y = graphc.cond(x.sum() > 0, lambda v: np.sin(v) * w, lambda v: v ** 3 + w, x)
        return y.sum()
    args = (np.ones(2), np.ones(2))
    src = graphc.jvp(f).source(args, args)
    assert src.count("dot_y = ") == 2 and "branch_result" not in src   # one per branch
    assert "dot_sum = dot_y.sum()" in src


def test_float32_loop_tangents_stay_float32():
    x = np.array([0.3, -0.4], np.float32)

    def f(x):
        def step(c, xi):
            return c + np.sin(xi * x).sum(), c
        return graphc.scan(step, 0.0, np.ones((3, 2), np.float32) * x)
    (c, cs), (dc, dcs) = graphc.jvp(f, (x,), (np.ones(2, np.float32),))
    assert c.dtype == dc.dtype == cs.dtype == dcs.dtype == np.float32
    (_, _), (dc64, dcs64) = graphc.jvp(f, (x.astype(np.float64),), (np.ones(2),))
    np.testing.assert_allclose(dc, dc64, rtol=1e-5)
    np.testing.assert_allclose(dcs, dcs64, rtol=1e-5, atol=1e-6)
