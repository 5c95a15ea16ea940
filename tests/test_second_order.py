"""graphc.hvp (forward over reverse) and graphc.stop_gradient (API.md section 9)."""
import numpy as np
import pytest

import graphc


def _fd_hessian(f, x, eps=1e-5):
    n = x.size
    h = np.zeros((n, n))
    g = graphc.grad(f)
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        h[:, i] = (g(x + e) - g(x - e)) / (2 * eps)
    return h


def logistic_loss(w, x, y):
    return np.mean(np.log1p(np.exp(-y * (x @ w))))


def test_hvp_matches_the_finite_difference_hessian_of_a_logistic_regression():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 6)), np.sign(rng.normal(size=50))
    w, v = rng.normal(size=6) * 0.3, rng.normal(size=6)
    hv = graphc.hvp(logistic_loss, (w, x, y), (v, np.zeros_like(x), np.zeros_like(y)))
    expected = _fd_hessian(lambda w_: logistic_loss(w_, x, y), w) @ v
    np.testing.assert_allclose(hv, expected, rtol=1e-6, atol=1e-9)
    # the closed form: X^T diag(s (1 - s)) X v / n with s = sigmoid(y x.w) (y^2 = 1)
    s = 1 / (1 + np.exp(-y * (x @ w)))
    np.testing.assert_allclose(hv, x.T @ (s * (1 - s) * (x @ v)) / len(y), rtol=1e-12)


def test_hvp_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    W, x = rng.normal(size=(4, 3)), rng.normal(size=(5, 4))
    V = rng.normal(size=(4, 3))

    def f(W, x):
        return np.sum(np.tanh(x @ W) ** 2)
    hv = graphc.hvp(f, (W, x), (V, np.zeros_like(x)))
    tx = torch.tensor(x)
    _, thv = torch.func.jvp(torch.func.grad(lambda W_: (torch.tanh(tx @ W_) ** 2).sum()),
                            (torch.tensor(W),), (torch.tensor(V),))
    np.testing.assert_allclose(hv, thv.numpy(), rtol=1e-11, atol=1e-12)


def test_hvp_compiles_once_and_shows_its_code():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(np.sin(x) * x)
    t = graphc.hvp(f)
    x, v = np.linspace(0.1, 1.0, 4), np.ones(4)
    for _ in range(3):
        out = t((x,), (v,))
    assert len(calls) == 1
    np.testing.assert_allclose(out, (2 * np.cos(x) - x * np.sin(x)) * v, rtol=1e-12)
    src = t.source((x,), (v,))
    assert "def f_grad_jvp(x, dot_x):" in src and "dot_x" in src


def test_hvp_needs_both_primals_and_tangents():
    with pytest.raises(graphc.SignatureError, match="both primals and tangents"):
        graphc.hvp(lambda x: x, (1.0,))


def test_stop_gradient_blocks_reverse_and_forward_mode():
    def f(x):
        return np.sum(x * graphc.stop_gradient(x))          # d/dx = stopped x, not 2x
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(graphc.grad(f)(x), x)
    _, dot = graphc.jvp(f, (x,), (np.ones(3),))
    assert dot == pytest.approx(x.sum())


def test_stop_gradient_of_a_pytree_and_of_plain_arrays():
    tree = {"a": np.ones(2), "b": (3.0, np.zeros(1))}
    out = graphc.stop_gradient(tree)
    assert out["a"] is tree["a"] and out["b"][0] == 3.0
    g = graphc.grad(lambda p: np.sum(graphc.stop_gradient(p)["a"] * p["a"]))(tree)
    np.testing.assert_array_equal(g["a"], np.ones(2))
    np.testing.assert_array_equal(g["b"][1], np.zeros(1))


def test_hvp_through_a_scan_written_in_an_exec_string():
    """Forward over reverse through a loop; code with no source file (exec, a prompt)
    names the loop in its `# grad of:` headers instead of failing."""
    ns = {"np": np, "graphc": graphc}
    exec("def f(w, xs):\n"
         "    def step(h, x):\n"
         "        return np.tanh(w * h + x), None\n"
         "    return graphc.scan(step, 0.0, xs)[0] ** 2\n", ns)
    f, xs, eps = ns["f"], np.linspace(-1.0, 1.0, 20), 1e-5
    hv = graphc.hvp(f, (0.5, xs), (1.0, np.zeros(20)))
    g = graphc.grad(f)
    assert hv == pytest.approx((g(0.5 + eps, xs) - g(0.5 - eps, xs)) / (2 * eps), rel=1e-7)
    assert "# grad of: graphc.scan(...)" in graphc.hvp(f).source((0.5, xs), (1.0, np.zeros(20)))
