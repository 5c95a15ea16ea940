"""graphc.jacobian / jacrev / jacfwd / hessian: against finite differences and torch.func."""
import numpy as np
import pytest

import graphc
from graphc.errors import GradError, OptionError

from benchmarks.rnn import rnn_loss
from examples.autodiff_trace import f as lecture


def fd_jacobian(fn, x, eps=1e-6):
    """Central differences: shape out_shape + x.shape."""
    x = np.asarray(x, dtype=np.float64)
    out = np.asarray(fn(x))
    jac = np.zeros(out.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        jac[(...,) + i] = (np.asarray(fn(x + e)) - np.asarray(fn(x - e))) / (2 * eps)
    return jac


def mlp(w, x):
    h = np.tanh(x @ w["W1"] + w["b1"])
    return h @ w["W2"] + w["b2"]


def mlp_loss(w, x):
    return np.sum(mlp(w, x) ** 2) / x.shape[0]


def _mlp_params(rng):
    return {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4),
            "W2": rng.normal(size=(4, 2)), "b2": rng.normal(size=2)}


def _rnn_params(rng):
    return {"Wx": 0.5 * rng.normal(size=(2, 3)), "Wh": 0.5 * rng.normal(size=(3, 3)),
            "b": 0.1 * rng.normal(size=3), "Wo": rng.normal(size=(3, 1))}


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_vector_function_against_fd(mode):
    def f(x):
        return np.stack([np.sin(x[0]) * x[1], (x ** 2).sum(), np.exp(x[2] - x[0])])
    x = np.array([0.3, -1.2, 0.7])
    jac = graphc.jacobian(f, mode=mode)(x)
    assert jac.shape == (3, 3)
    np.testing.assert_allclose(jac, fd_jacobian(f, x), rtol=1e-7, atol=1e-8)


def test_matrix_output_and_input_shapes():
    def f(a):
        return np.tanh(a @ a.T)          # (2, 3) -> (2, 2)
    a = np.random.default_rng(0).normal(size=(2, 3))
    for mode in ("rev", "fwd"):
        jac = graphc.jacobian(f, mode=mode)(a)
        assert jac.shape == (2, 2, 2, 3)
        np.testing.assert_allclose(jac, fd_jacobian(f, a), rtol=1e-6, atol=1e-8)


def test_rev_equals_fwd_mlp_pytree():
    rng = np.random.default_rng(1)
    w, x = _mlp_params(rng), rng.normal(size=(5, 3))
    rev = graphc.jacrev(mlp)(w, x)
    fwd = graphc.jacfwd(mlp)(w, x)
    assert set(rev) == {"W1", "b1", "W2", "b2"}
    assert rev["W1"].shape == (5, 2, 3, 4) and rev["b2"].shape == (5, 2, 2)
    for k in rev:
        np.testing.assert_allclose(rev[k], fwd[k], rtol=1e-12, atol=1e-12)
    jx = graphc.jacrev(mlp, argnums=1)(w, x)
    np.testing.assert_allclose(jx, fd_jacobian(lambda v: mlp(w, v), x), rtol=1e-6, atol=1e-8)


def test_argnums_tuple_and_pytree_output():
    def f(x, y):
        return {"s": x * y, "t": (x ** 2).sum() + y[0]}
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for jac in (graphc.jacrev(f, argnums=(0, 1))(x, y), graphc.jacfwd(f, argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(jac["s"][0], np.diag(y))
        np.testing.assert_allclose(jac["s"][1], np.diag(x))
        np.testing.assert_allclose(jac["t"][0], 2 * x)
        np.testing.assert_allclose(jac["t"][1], [1.0, 0.0])


def test_lecture_function_hessian_against_fd():
    h = graphc.hessian(lecture, argnums=(0, 1))(1.5, 0.5)
    g = graphc.grad(lecture, argnums=(0, 1))
    eps = 1e-5
    for j, (dw1, dw2) in enumerate([(eps, 0.0), (0.0, eps)]):
        up, down = g(1.5 + dw1, 0.5 + dw2), g(1.5 - dw1, 0.5 - dw2)
        for i in range(2):
            assert h[i][j] == pytest.approx((up[i] - down[i]) / (2 * eps), rel=1e-6)
    assert h[0][1] == pytest.approx(h[1][0], rel=1e-12)


def test_hessian_shape_and_symmetry():
    def f(a):
        return np.sum(np.sin(a) * a[::-1, :]) + np.sum(a ** 3)
    a = np.random.default_rng(2).normal(size=(2, 3))
    h = graphc.hessian(f)(a)
    assert h.shape == (2, 3, 2, 3)
    flat = h.reshape(6, 6)
    np.testing.assert_allclose(flat, flat.T, atol=1e-12)
    fd = fd_jacobian(graphc.grad(f), a, eps=1e-5)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)


def test_rnn_scan_jacobian_and_hessian():
    rng = np.random.default_rng(3)
    p, xs, y = _rnn_params(rng), rng.normal(size=(4, 2, 2)), rng.normal(size=(2, 1))
    rev = graphc.jacrev(rnn_loss)(p, xs, y)
    fwd = graphc.jacfwd(rnn_loss)(p, xs, y)
    grad = graphc.grad(rnn_loss)(p, xs, y)
    for k in p:
        np.testing.assert_allclose(rev[k], grad[k], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(fwd[k], grad[k], rtol=1e-10, atol=1e-12)
    h = graphc.hessian(lambda wh: rnn_loss({**p, "Wh": wh}, xs, y))(p["Wh"])
    fd = fd_jacobian(lambda wh: graphc.grad(rnn_loss)({**p, "Wh": wh}, xs, y)["Wh"],
                     p["Wh"], eps=1e-5)
    assert h.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-8)


def test_composes_with_grad_and_vmap():
    def f(x):
        return np.sin(x) * x.sum()

    def sq(x):
        return (graphc.jacrev(f)(x) ** 2).sum()
    x = np.array([0.1, 0.2, 0.3])
    g = graphc.grad(sq)(x)
    eps = 1e-6
    fd = np.array([(sq(x + e) - sq(x - e)) / (2 * eps) for e in np.eye(3) * eps])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    xs = np.random.default_rng(6).normal(size=(4, 3))
    batched = graphc.vmap(graphc.jacfwd(f))(xs)
    assert batched.shape == (4, 3, 3)
    np.testing.assert_allclose(batched, np.stack([graphc.jacfwd(f)(r) for r in xs]), rtol=1e-14)


def test_compiled_per_signature_with_source():
    def f(x):
        return np.sin(x) * x
    jac = graphc.jacfwd(f)
    x = np.array([0.1, 0.2])
    jac(x)
    jac(x + 1.0)
    assert len(jac._cache) == 1          # traced once for one signature
    src = jac.source(x)
    assert "def f_jacfwd(x):" in src and "Jacobian of f with respect to x" in src
    assert graphc.hessian(f).graph(x) is not None


def test_bad_mode_names_the_line():
    with pytest.raises(OptionError, match="mode must be 'rev' or 'fwd'") as info:
        graphc.jacobian(np.sin, mode="backward")
    assert "test_jacobians.py" in str(info.value)


def test_integer_argument_names_the_line():
    with pytest.raises(GradError, match="integer or boolean dtype") as info:
        graphc.jacrev(lambda x: x * 2.0)(np.arange(3))
    assert "test_jacobians.py" in str(info.value)


# --- against torch.func (float64) ---------------------------------------------------------
def _torch():
    return pytest.importorskip("torch")


def test_lecture_against_torch():
    torch = _torch()

    def tf(w1, w2):
        z1 = w1 / w2
        z4 = 3 * z1 - torch.exp(2 * w2)
        return z4 * (torch.sin(2 * torch.pi * z1) + z4)
    w = [torch.tensor(1.5, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)]
    th = torch.func.hessian(tf, argnums=(0, 1))(*w)
    tj = torch.func.jacrev(tf, argnums=(0, 1))(*w)
    gh = graphc.hessian(lecture, argnums=(0, 1))(1.5, 0.5)
    for mode in ("rev", "fwd"):
        gj = graphc.jacobian(lecture, argnums=(0, 1), mode=mode)(1.5, 0.5)
        for i in range(2):
            assert float(gj[i]) == pytest.approx(tj[i].item(), rel=1e-12)
    for i in range(2):
        for j in range(2):
            assert float(gh[i][j]) == pytest.approx(th[i][j].item(), rel=1e-10)


def test_mlp_against_torch():
    torch = _torch()
    rng = np.random.default_rng(4)
    w, x = _mlp_params(rng), rng.normal(size=(5, 3))

    def tmlp(tw, tx):
        return torch.tanh(tx @ tw["W1"] + tw["b1"]) @ tw["W2"] + tw["b2"]
    tw = {k: torch.tensor(v) for k, v in w.items()}
    tx = torch.tensor(x)
    for ours, theirs in ((graphc.jacrev(mlp), torch.func.jacrev(tmlp)),
                         (graphc.jacfwd(mlp), torch.func.jacfwd(tmlp))):
        a, b = ours(w, x), theirs(tw, tx)
        for k in w:
            np.testing.assert_allclose(a[k], b[k].numpy(), rtol=1e-12, atol=1e-13)
    h = graphc.hessian(lambda w1: mlp_loss({**w, "W1": w1}, x))(w["W1"])
    th = torch.func.hessian(lambda w1: torch.sum(tmlp({**tw, "W1": w1}, tx) ** 2) / 5)(tw["W1"])
    np.testing.assert_allclose(h, th.numpy(), rtol=1e-10, atol=1e-12)


def test_rnn_against_torch():
    torch = _torch()
    rng = np.random.default_rng(5)
    p, xs, y = _rnn_params(rng), rng.normal(size=(4, 2, 2)), rng.normal(size=(2, 1))
    tp = {k: torch.tensor(v) for k, v in p.items()}
    txs, ty = torch.tensor(xs), torch.tensor(y)

    def trnn(q):
        h = torch.zeros((2, 3), dtype=torch.float64)
        for x in txs:
            h = torch.tanh(x @ q["Wx"] + h @ q["Wh"] + q["b"])
        return torch.mean((h @ q["Wo"] - ty) ** 2)
    th = torch.func.hessian(lambda b: trnn({**tp, "b": b}))(tp["b"])
    gh = graphc.hessian(lambda b: rnn_loss({**p, "b": b}, xs, y))(p["b"])
    np.testing.assert_allclose(gh, th.numpy(), rtol=1e-10, atol=1e-12)
    tj = torch.func.jacfwd(trnn)(tp)
    gj = graphc.jacfwd(rnn_loss)(p, xs, y)
    for k in p:
        np.testing.assert_allclose(gj[k], tj[k].numpy(), rtol=1e-10, atol=1e-13)


def test_golden_lecture_hessian_and_jacfwd():
    from tests.test_codegen import check_golden
    check_golden("lecture_hessian.py", graphc.hessian(lecture, argnums=(0, 1)).source(1.5, 0.5))

    def g(x):
        return np.sin(x) * x[::-1]
    check_golden("sin_jacfwd.py", graphc.jacfwd(g).source(np.array([0.1, 0.2, 0.3])))


def test_bad_argnums_name_the_line():
    with pytest.raises(GradError, match="out of range") as info:
        graphc.jacrev(np.sin, argnums=2)(np.ones(2))
    assert "test_jacobians.py" in str(info.value)
    with pytest.raises(GradError, match="argnums must be an int"):
        graphc.hessian(np.sin, argnums="a")
