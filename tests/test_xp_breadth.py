"""The ``"array-api"`` target, broader (issue 17): closed-over arrays, ``einsum``,
``np.partition`` read at its kth places, float16, and integer arrays mixed with slices.

Each is compared with the NumPy target: on ``array_api_strict`` bit for bit in float64
where the computation is the same (einsum is lowered to matmul, so to rounding), on
PyTorch CPU tensors to 1e-12, on JAX (also under ``jax.jit``) to 1e-12.
"""
from __future__ import annotations

import ast
import os

import numpy as np
import pytest

import graphc
from graphc.errors import UnsupportedError

xps = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")
xps.set_array_api_strict_flags(api_version="2024.12")

HERE = os.path.dirname(__file__)
XP = "array-api"
RNG = np.random.default_rng(17)
W_GLOBAL = RNG.normal(size=(3, 2))


# --- the golden files' functions (their lines are cited in the generated code) ----------------
def closes_over(x):
    return np.sum(np.tanh(x @ W_GLOBAL) ** 2)


def einsum_loss(w, x):
    return np.sum(np.einsum("bi,ij->bj", x, w) ** 2) + np.einsum("ii->", w[:, :2] @ w[:, :2].T)


def partition_loss(x):
    return np.sum(np.partition(x, 2, axis=0)[2] ** 2)


def mixed_index_loss(x):
    return np.sum(np.sin(x[np.array([0, 2]), :, np.array([1, -1])]))


# --- helpers -----------------------------------------------------------------------------
def _tree(x, conv):
    if isinstance(x, dict):
        return {k: _tree(v, conv) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_tree(v, conv) for v in x)
    return conv(x) if isinstance(x, (np.ndarray, np.generic)) else x


def _back(x):
    if isinstance(x, (list, tuple)):
        return type(x)(_back(v) for v in x)
    if isinstance(x, dict):
        return {k: _back(v) for k, v in x.items()}
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x._array)
    return np.asarray(x)


def _same(got, want, tol=0.0):
    got = _back(got)
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            _same(a, b, tol)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    if tol:
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want, strict=True)


def _engines(args, want, fn, exact=True):
    """``fn`` on strict (bit for bit when ``exact``), torch and JAX (1e-12) against ``want``."""
    _same(fn(*_tree(args, xps.asarray)), want, 0.0 if exact else 1e-12)
    torch = pytest.importorskip("torch")
    _same(fn(*_tree(args, lambda a: torch.asarray(np.array(a)))), want, 1e-12)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jargs = _tree(args, jax.numpy.asarray)
    _same(fn(*jargs), want, 1e-12)
    _same(jax.jit(fn)(*jargs), want, 1e-12)


def _attributes(src):
    """``(module, attribute)`` of every ``a.b`` in the code (comments left out)."""
    return {(n.value.id, n.attr) for n in ast.walk(ast.parse(src))
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}


def _golden(name, text):
    path = os.path.join(HERE, "golden", name)
    if os.environ.get("GRAPHC_UPDATE_GOLDEN") == "1" or not os.path.exists(path):
        with open(path, "w") as f:
            f.write(text)
        if os.environ.get("GRAPHC_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {name} was missing and has been written; review and rerun")
    with open(path) as f:
        assert text == f.read(), f"generated code differs from tests/golden/{name}"


# --- 1. closed-over arrays ----------------------------------------------------------------------
def test_closed_over_global_and_cell_on_every_engine():
    b = np.array([0.5, -1.0])

    def loss(x):
        return np.sum(np.tanh(x @ W_GLOBAL + b) ** 2)
    x = RNG.normal(size=(4, 3))
    want = graphc.value_and_grad(loss)(x)
    vg = graphc.value_and_grad(loss, target=XP)
    _same(vg(x), want)
    _engines((x,), want, vg)
    src = vg.source(x)
    assert "W_GLOBAL = xp.asarray(W_GLOBAL, dtype=xp.float64, device=_device)" in src
    assert "np" not in {m for m, _ in _attributes(src)}


def test_closed_over_array_is_read_at_each_call():
    w = np.arange(3.0)

    def f(x):
        return x * w
    c = graphc.compile(f, target=XP)
    x = xps.asarray(np.ones(3))
    _same(c(x), np.arange(3.0))
    w[1] = 10.0                                # mutated: seen
    _same(c(x), np.array([0.0, 10.0, 2.0]))
    w = np.full(3, 2.0, dtype=np.float32)      # rebound, new dtype: traced again
    _same(c(x), np.full(3, 2.0))
    w = np.ones(4)                             # new shape: traced again, the NumPy error
    with pytest.raises(Exception, match="broadcast"):
        c(x)


def test_closed_over_export_stands_alone(tmp_path):
    x = RNG.normal(size=(4, 3))
    path = tmp_path / "closes.py"
    graphc.export(graphc.value_and_grad(closes_over), x, path=str(path), target=XP)
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    want = graphc.value_and_grad(closes_over)(x)
    _same(ns["closes_over_value_and_grad"](xps.asarray(x)), want)
    # a different array passed for the closed-over one, checked
    other = RNG.normal(size=(3, 2))
    got = ns["closes_over_value_and_grad"](xps.asarray(x), W_GLOBAL=other)
    assert abs(float(got[0]) - np.sum(np.tanh(x @ other) ** 2)) < 1e-12
    with pytest.raises(ValueError, match="W_GLOBAL"):
        ns["closes_over_value_and_grad"](xps.asarray(x), W_GLOBAL=np.ones((2, 2)))


def test_golden_closure_array_api():
    _golden("closure_value_and_grad_array_api.py",
            graphc.value_and_grad(closes_over, target=XP).source(RNG.normal(size=(4, 3))))


# --- 2. einsum ------------------------------------------------------------------------------
EINSUMS = {
    "matmul": (lambda w, x: np.sum(np.tanh(np.einsum("bi,ij->bj", x, w)) ** 2), (3, 5), (4, 3)),
    "batched": (lambda w, x: np.sum(np.einsum("bij,bjk->bik", x, np.swapaxes(x, 1, 2)) * w[0, 0]),
                (3, 3), (2, 4, 3)),
    "trace-diag": (lambda w, x: np.einsum("ii->", w) * np.sum(np.einsum("ii->i", w) ** 2),
                   (3, 3), (3,)),
    "inner-outer": (lambda w, x: np.sum(np.einsum("i,j->ij", x, w[0]) ** 2)
                    + np.einsum("ij,ij->", w, w), (3, 3), (4,)),
    "rowdot": (lambda w, x: np.sum(np.einsum("ij,ij->i", x, x @ w) ** 2), (3, 3), (5, 3)),
    "ellipsis": (lambda w, x: np.sum(np.einsum("...ij,jk->...ik", x, w) ** 3), (3, 2), (2, 4, 3)),
    "three": (lambda w, x: np.sum(np.einsum("ij,jk,kl->il", w, w.T, w) * w), (3, 3), (1,)),
    "optimize": (lambda w, x: np.sum(np.einsum("ij,jk,kl->il", w, w.T, w, optimize=True)),
                 (3, 4), (1,)),
    "repeated": (lambda w, x: np.sum(np.einsum("iij,jk->ik", np.stack([w, w]), w.T) ** 2),
                 (2, 3), (1,)),
    "f32-f64": (lambda w, x: np.sum(np.einsum("ij,j->i", w.astype(np.float32), x)), (3, 4), (4,)),
}


@pytest.mark.parametrize("name", sorted(EINSUMS))
def test_einsum_value_and_grad(name):
    fn, ws, xs = EINSUMS[name]
    args = (RNG.normal(size=ws), RNG.normal(size=xs))
    want = graphc.value_and_grad(fn)(*args)
    vg = graphc.value_and_grad(fn, target=XP)
    _same(vg(*args), want, 1e-12)
    _engines(args, want, vg, exact=False)
    assert not any(attr == "einsum" for _, attr in _attributes(vg.source(*args)))


def test_einsum_integers():
    a = np.arange(6).reshape(2, 3)
    f = graphc.compile(lambda a: np.einsum("ij,j->i", a, a[0]), target=XP)
    _same(f(xps.asarray(a)), np.einsum("ij,j->i", a, a[0]))


def test_golden_einsum_array_api():
    _golden("einsum_value_and_grad_array_api.py",
            graphc.value_and_grad(einsum_loss, target=XP).source(RNG.normal(size=(3, 3)),
                                                                  RNG.normal(size=(4, 3))))


# --- 3a. np.partition at its kth places ---------------------------------------------------------
def _ties():
    x = RNG.normal(size=(7, 4))
    x[2, 1] = x[5, 1] = x[6, 1]
    x[0, 0], x[3, 0] = -0.0, 0.0
    return x


PARTITIONS = {
    "axis0": lambda x: np.sum(np.partition(x, 3, axis=0)[3] ** 2),
    "two-kth": lambda x: np.partition(x[:, 1], (1, 4))[4] * 2 + np.partition(x[:, 1], (1, 4))[1],
    "last-axis-slice": lambda x: np.sum(np.partition(x, -2)[..., -2:-1] * 3),
    "median": lambda x: np.sum(np.partition(x, 3, axis=0)[3, :] - np.mean(x)),
}


@pytest.mark.parametrize("name", sorted(PARTITIONS))
def test_partition_at_kth_bit_for_bit(name):
    fn = PARTITIONS[name]
    x = _ties()
    want = graphc.value_and_grad(fn)(x)
    vg = graphc.value_and_grad(fn, target=XP)
    _same(vg(x), want)
    _same(vg(xps.asarray(x)), want)
    _same(graphc.grad(fn, target=XP)(xps.asarray(x)), want[1])
    _engines((x,), want, vg)


def test_partition_beyond_kth_is_refused():
    def smallest(x):
        return np.sum(np.partition(x, 3, axis=0)[:3])

    def whole(x):
        return np.partition(x, 3)
    for fn in (smallest, whole):
        with pytest.raises(UnsupportedError, match="kth places") as err:
            graphc.value_and_grad(smallest, target=XP).source(_ties()) if fn is smallest \
                else graphc.compile(whole, target=XP).source(_ties())
        assert "test_xp_breadth.py" in str(err.value)


def test_golden_partition_array_api():
    _golden("partition_value_and_grad_array_api.py",
            graphc.value_and_grad(partition_loss, target=XP).source(_ties()))


# --- 3b. float16 ----------------------------------------------------------------------------
def test_float16_on_numpy_and_torch():
    x = RNG.normal(size=(4, 3)).astype(np.float16)

    def f(x):
        return np.sum(np.tanh(x) * x.astype(np.float32))

    def h(x):
        return np.exp(x) * 2.0 + x[:, :1]
    want = graphc.value_and_grad(f)(x)
    vg = graphc.value_and_grad(f, target=XP)
    _same(vg(x), want)                                      # NumPy itself: the same bits
    torch = pytest.importorskip("torch")
    got = vg(torch.asarray(x))
    assert got[1].dtype == torch.float16
    np.testing.assert_allclose(got[1].numpy().astype(np.float64), want[1], rtol=4e-3, atol=4e-3)
    _same(graphc.compile(h, target=XP)(x), graphc.compile(h)(x))
    with pytest.raises(TypeError, match="no float16"):
        graphc.compile(lambda y: y.astype(np.float16) * 2, target=XP)(
            xps.asarray(np.ones(3, np.float32)))


# --- 3c. integer arrays mixed with slices, ints and None --------------------------------------
INDEXES = {
    "separated": lambda x: x[np.array([0, 2]), :, np.array([1, 0])],
    "trailing": lambda x: x[:, np.array([0, 3, 3]), np.array([1, -1, 2])],
    "broadcast": lambda x: x[np.array([[0], [2]]), np.array([1, 3])],
    "int-and-array": lambda x: x[1, :, np.array([4, 0])],
    "slice-none": lambda x: x[np.array([2, 0]), 1:3, None],
    "ellipsis": lambda x: x[..., np.array([0, 1]), np.array([[2], [3]])],
    "none-flip": lambda x: x[None, np.array([1, 2]), ::-1, np.array([0, 4])],
    "leading-int": lambda x: x[np.array([2, 0]), 1],
}


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_mixed_integer_indexing(name):
    pick = INDEXES[name]
    x = RNG.normal(size=(3, 4, 5))

    def loss(x):
        y = pick(x)
        return np.sum(np.sin(y) * np.arange(y.size).reshape(y.shape))
    _same(graphc.compile(pick, target=XP)(xps.asarray(x)), pick(x))
    want = graphc.value_and_grad(loss)(x)
    vg = graphc.value_and_grad(loss, target=XP)
    _same(vg(x), want)
    _engines((x,), want, vg)


def test_mixed_indexing_with_runtime_indices():
    def pick(x, i, j):
        return x[i, :, j]
    x = RNG.normal(size=(3, 4, 5))
    i, j = np.array([0, -1, 2]), np.array([4, 0, -2])
    c = graphc.compile(pick, target=XP)
    _same(c(*_tree((x, i, j), xps.asarray)), pick(x, i, j))
    with pytest.raises(IndexError, match="out of bounds"):
        c(*_tree((x, i, np.array([4, 5, 0])), xps.asarray))


def test_golden_mixed_index_array_api():
    _golden("mixed_index_value_and_grad_array_api.py",
            graphc.value_and_grad(mixed_index_loss, target=XP).source(RNG.normal(size=(3, 4, 5))))


# --- named dimensions: Jacobians and Hessians (NumPy target) ----------------------------------
def _sym_loss(w, x):
    return np.mean(np.tanh(x @ w) ** 2) + np.sum(x ** 3) / x.shape[0]


def _sym_map(w, x):
    return np.tanh(x @ w) * np.sum(x, axis=1)


SYMBOLIC = {
    "hessian-w": lambda: graphc.hessian(_sym_loss),
    "hessian-x": lambda: graphc.hessian(_sym_loss, argnums=1),
    "hessian-both": lambda: graphc.hessian(_sym_loss, argnums=(0, 1)),
    "jacfwd-x": lambda: graphc.jacfwd(_sym_map, argnums=1),
    "jacrev-x": lambda: graphc.jacrev(_sym_map, argnums=1),
    "jacfwd-w": lambda: graphc.jacfwd(_sym_map),
}


@pytest.mark.parametrize("name", sorted(SYMBOLIC))
def test_jacobians_with_named_dimensions(name, tmp_path):
    w = np.array([0.3, -0.2, 0.5])
    path = tmp_path / "jac.py"
    graphc.export(SYMBOLIC[name](), w, graphc.Spec(("n", 3), "float64"), path=str(path))
    text = path.read_text()
    ns: dict = {}
    exec(compile(text, str(path), "exec"), ns)
    fn = next(v for k, v in ns.items() if k.endswith(("_hessian", "_jacfwd", "_jacrev")))
    for n in (1, 4, 9):
        x = np.random.default_rng(n).normal(size=(n, 3))
        _same(fn(w, x), SYMBOLIC[name]()(w, x))
    if name.endswith("-x"):
        assert "np.eye(n" in text.split("def ")[1]          # the basis, made from n inside
