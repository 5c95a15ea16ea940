"""A Jacobian's identity seed costs neither text nor work: it is written ``np.eye(n)`` (built once
at import, named ``basis``), and ``basis @ A`` / ``A @ basis`` simplify to ``A``."""
import numpy as np
import pytest

import graphc
from benchmarks.hessian import closed_form, data, loss
from graphc.literals import const_text
from graphc.avals import aval_of


def _body(src):
    return src.split("# The arguments")[0]


def test_logistic_hessian_has_no_identity_product():
    w, X, y = data(n=60, d=7)
    h = graphc.hessian(loss)
    src = _body(h.source(w, X, y))
    assert "basis" not in src and "np.eye" not in src and "const" not in src
    code = [line.split("#")[0] for line in src.splitlines()]
    assert sum(" @ " in c for c in code) == 2    # z = X @ w and the Hessian's one GEMM
    np.testing.assert_allclose(h(w, X, y), closed_form(w, X, y), rtol=1e-12, atol=1e-15)


def test_the_product_was_there_before_the_pass():
    """The rule is what removes it: the unsimplified graph multiplies by the seed."""
    import sys
    S = sys.modules["graphc.passes.simplify"]
    w, X, y = data(n=20, d=4)
    rules = S._RULES
    try:
        S._RULES = tuple(r for r in rules if r is not S._basis_matmul)
        src = _body(graphc.hessian(loss).source(w, X, y))
        before = graphc.hessian(loss)(w, X, y)
    finally:
        S._RULES = rules
    assert "basis @ " in src
    np.testing.assert_allclose(graphc.hessian(loss)(w, X, y), before, rtol=1e-13, atol=1e-16)


def test_no_n_squared_constant_in_the_module():
    w, X, y = data(n=30, d=100)
    src = graphc.jacfwd(lambda w, X: np.tanh(X @ w)).source(w, X)
    assert len(src) < 6000                       # 10,000 numbers would be ~40 kB of text
    assert "frombuffer" not in src and "np.array(" not in _body(src).split("def ")[0]


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_linear_maps_jacobian_is_the_matrix(mode):
    A = np.arange(6.0).reshape(2, 3)
    for f in (lambda x: A @ x, lambda x: x @ A.T):
        jac = graphc.jacobian(f, mode=mode)
        np.testing.assert_array_equal(jac(np.ones(3)), A)
        assert "@" not in _body(jac.source(np.ones(3))).split("):\n", 1)[1]


def test_seed_of_a_matrix_input_is_a_reshaped_eye():
    A = np.arange(6.0).reshape(2, 3)

    def f(M):
        return np.sum(np.sin(M) @ A.T, axis=1)
    M = np.linspace(-1, 1, 12).reshape(4, 3)
    jac = graphc.jacfwd(f)
    assert "basis = np.eye(12, dtype=np.float64).reshape((12, 4, 3))" in jac.source(M)
    want = (np.ones((4, 2)) @ A) * np.cos(M)          # d f_i / d M_ik
    full = np.zeros((4, 4, 3))
    full[np.arange(4), np.arange(4)] = want
    np.testing.assert_allclose(jac(M), full, rtol=1e-13)
    np.testing.assert_allclose(graphc.jacrev(f)(M), full, rtol=1e-13)


def test_a_users_identity_product_is_kept():
    """``np.eye(n) @ X`` written by the user keeps NumPy's semantics: 0 * inf is nan."""
    eye = np.eye(2)

    def f(x):
        return eye @ x
    x = np.array([[np.inf, 1.0], [2.0, 3.0]])
    src = _body(graphc.compile(f).source(x))
    assert "@ x" in src
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(graphc.compile(f)(x), eye @ x)


def test_const_text_of_identities():
    for value, text in ((np.eye(4), "np.eye(4, dtype=np.float64)"),
                        (np.eye(3, dtype=np.float32), "np.eye(3, dtype=np.float32)"),
                        (np.eye(4, dtype=np.int64), "np.eye(4, dtype=np.int64)"),
                        (np.eye(6).reshape(6, 2, 3), "np.eye(6, dtype=np.float64).reshape((6, 2, 3))")):
        assert const_text(value, aval_of(value)) == text
        np.testing.assert_array_equal(eval(text, {"np": np}), value)
        assert eval(text, {"np": np}).dtype == value.dtype
    signed = np.eye(3)
    signed[0, 1] = -0.0                          # not np.eye: its zero has a sign
    assert "np.eye" not in const_text(signed, aval_of(signed))
    assert "np.eye" not in const_text(np.eye(3)[::-1], aval_of(np.eye(3)))
    assert "np.eye" not in const_text(np.eye(2, 3), aval_of(np.eye(2, 3)))


def test_hessian_against_torch():
    torch = pytest.importorskip("torch")
    w, X, y = data(n=40, d=6)
    tX, ty = torch.tensor(X), torch.tensor(y)

    def tloss(w):
        z = tX @ w
        return torch.mean(torch.nn.functional.softplus(z) - ty * z)
    want = torch.func.hessian(tloss)(torch.tensor(w)).numpy()
    np.testing.assert_allclose(graphc.hessian(loss)(w, X, y), want, rtol=1e-12, atol=1e-16)
