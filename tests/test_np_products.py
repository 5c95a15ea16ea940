"""np.einsum and the products / matrix helpers (graphc/ops/einsum.py, graphc/ops/products.py).

The table-driven tests (tests/test_numpy_functions.py) check every sampled call against
NumPy; here: NumPy's signatures, errors, the emitted contraction order of ``optimize=``,
second derivatives, batched matmul gradients, and the gradient conventions of the
diagonal/triangle helpers.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import graphc
from graphc.errors import InPlaceError, ShapeError, UnsupportedError
from graphc.ops._numpy_table import FUNCTIONS

from _fd import fd_grad_args

RNG = np.random.default_rng(14)


def rnd(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def _grad_matches(fn, *args):
    out = np.asarray(fn(*args))
    w = np.random.default_rng(1).standard_normal(out.shape)

    def loss(*a):
        return np.sum(fn(*a) * w)
    argnums = tuple(range(len(args)))
    got = graphc.grad(loss, argnums=argnums)(*args)
    want = fd_grad_args(loss, args, argnums)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


OWN = [np.einsum, np.dot, np.inner, np.vdot, np.outer, np.tensordot, np.kron, np.cross,
       np.trace, np.diagonal, np.diag, np.triu, np.tril, np.linalg.outer, np.linalg.matmul,
       np.linalg.tensordot, np.linalg.trace, np.linalg.diagonal, np.linalg.cross,
       np.linalg.vecdot]


@pytest.mark.parametrize("f", OWN, ids=lambda f: f.__module__ + "." + f.__name__)
def test_signature_is_numpys(f):
    assert inspect.signature(FUNCTIONS[f]) == inspect.signature(f)


@pytest.mark.parametrize("name", ["trace", "diagonal", "dot"])
def test_method_signature_is_numpys(name):
    from graphc.ops._numpy_table import METHODS
    ours = list(inspect.signature(METHODS[name]).parameters.values())[1:]
    theirs = list(inspect.signature(getattr(np.ndarray, name)).parameters.values())[1:]
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs]


# --- einsum -------------------------------------------------------------------------------
def test_einsum_sublist_with_ellipsis():
    a, b = rnd(4, 2, 3), rnd(3)
    f = graphc.compile(lambda a, b: np.einsum(a, [Ellipsis, 1], b, [1], [Ellipsis]))
    np.testing.assert_allclose(f(a, b), np.einsum(a, [Ellipsis, 1], b, [1], [Ellipsis]))


def _einsum_lines(src):
    """The np.einsum calls of generated code (codegen may inline one into the next)."""
    return ["np.einsum(" + c for ln in src.splitlines() for c in ln.split("np.einsum(")[1:]]


def test_optimize_emits_numpys_pairwise_order():
    a, b, c = rnd(20, 3), rnd(3, 30), rnd(30, 2)
    opt = graphc.compile(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c, optimize=True))
    plain = graphc.compile(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c))
    np.testing.assert_allclose(opt(a, b, c), np.einsum("ij,jk,kl->il", a, b, c))
    lines = _einsum_lines(opt.source(a, b, c))
    assert len(lines) == 2 and '"jk,kl->jl", b, c' in lines[1]   # np.einsum_path: (1, 2) first
    assert len(_einsum_lines(plain.source(a, b, c))) == 1


def test_optimize_explicit_path_is_followed():
    a, b, c = rnd(2, 3), rnd(3, 4), rnd(4, 5)
    path = ["einsum_path", (0, 1), (0, 1)]
    f = graphc.compile(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c, optimize=path))
    lines = _einsum_lines(f.source(a, b, c))
    assert '"ij,jk->ik", a, b' in lines[1] and '"kl,ik->il"' in lines[0]
    np.testing.assert_allclose(f(a, b, c), a @ b @ c)


def test_einsum_gradients_and_second_derivative():
    x, y = rnd(3, 3), rnd(3, 4)
    _grad_matches(lambda x, y: np.einsum("ii,ij->j", x, y), x, y)
    _grad_matches(lambda x: np.einsum("...ii->...i", x), rnd(2, 3, 3))
    _grad_matches(lambda x, y: np.einsum("ij,kj->ik", x, y), rnd(1, 3), rnd(4, 3))

    def f(x):
        return np.einsum("ij,jk,ki", x, x, x)      # trace(x^3); d/dx = 3 (x^2)^T
    h = graphc.grad(lambda x: np.sum(graphc.grad(f)(x) ** 2))(x)
    eps, e = 1e-6, np.zeros_like(x)
    g2 = lambda x: np.sum((3 * (x @ x).T) ** 2)  # noqa: E731
    want = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e[:] = 0
        e[i] = eps
        want[i] = (g2(x + e) - g2(x - e)) / (2 * eps)
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-6)


def test_einsum_float32_stays_float32():
    a, b = rnd(2, 3, dtype=np.float32), rnd(3, dtype=np.float32)
    g = graphc.grad(lambda a, b: np.sum(np.einsum("ij,j->i", a, b)), argnums=(0, 1))(a, b)
    assert g[0].dtype == np.float32 and g[1].dtype == np.float32
    np.testing.assert_allclose(g[0], np.broadcast_to(b, (2, 3)), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: np.einsum("ij,jk", x, np.ones((4, 4))),
    lambda x: np.einsum("ij,jk", x),
    lambda x: np.einsum("ij", x, x),
    lambda x: np.einsum("ij->iij", x),
    lambda x: np.einsum("ijk", x),
    lambda x: np.einsum("ij->k", x),
    lambda x: np.einsum("i2", x),
    lambda x: np.einsum("...i->i", np.ones((2, 2, 3)) * x[0]),
    lambda x: np.einsum("ii", x),
], ids=["mismatch", "too-few", "too-many", "repeated-out", "too-many-subs", "unknown-out",
        "digit", "ellipsis-missing", "diag-not-square"])
def test_einsum_errors_are_numpys(call):
    x = rnd(2, 3)
    with pytest.raises(ValueError):
        call(x)                                          # NumPy
    with pytest.raises(ShapeError):
        graphc.compile(call)(x)


def test_einsum_out_and_dtype():
    x = rnd(2, 3)
    with pytest.raises(InPlaceError):
        graphc.compile(lambda x: np.einsum("ij->i", x, out=np.empty(2)))(x)
    with pytest.raises(UnsupportedError, match="Cannot cast"):
        graphc.compile(lambda x: np.einsum("ij->i", x, dtype=np.float32))(x)
    got = graphc.compile(lambda x: np.einsum("ij->i", x, dtype=np.float32, casting="unsafe"))(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x.sum(1), rtol=1e-6)


# --- products -----------------------------------------------------------------------------
@pytest.mark.parametrize("call,shapes", [
    (np.dot, [(2, 3), (4, 5)]), (np.dot, [(2, 3), (2, 4, 5)]), (np.inner, [(2, 3), (4,)]),
    (np.vdot, [(3,), (4,)]), (np.tensordot, [(2, 3), (4, 5)]), (np.matmul, [(2, 3), (4, 5)]),
    (np.matmul, [(2, 3, 4), (5, 4, 2)]), (np.cross, [(2, 4), (2, 3)]),
    (np.diagonal, [(3,)]), (np.diag, [(2, 2, 2)]), (np.trace, [(3,)]),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_mismatched_shapes_raise_shape_error(call, shapes):
    args = [rnd(*s) for s in shapes]
    with pytest.raises(ValueError):
        call(*args)
    with pytest.raises(ShapeError):
        graphc.compile(call)(*args)


def test_diagonal_same_axis_and_out():
    with pytest.raises(ShapeError, match="cannot be the same"):
        graphc.compile(lambda x: np.diagonal(x, 0, 1, 1))(rnd(2, 2))
    for f in (lambda x: np.dot(x, x, out=np.empty((2, 2))),
              lambda x: np.trace(x, out=np.empty(())),
              lambda x: np.outer(x, x, out=np.empty((4, 4)))):
        with pytest.raises(InPlaceError):
            graphc.compile(f)(rnd(2, 2))


@pytest.mark.parametrize("a,b", [((2, 3, 4), (4, 5)), ((1, 3, 4), (2, 4, 5)), ((4,), (2, 4, 5)),
                                 ((2, 1, 3, 4), (5, 4, 2)), ((2, 3, 4), (4,)), ((4,), (4,))])
def test_batched_matmul_gradient(a, b):
    _grad_matches(np.matmul, rnd(*a), rnd(*b))
    _grad_matches(lambda x, y: x @ y, rnd(*a), rnd(*b))


def test_methods_with_keywords():
    x = rnd(2, 3, 3)
    f = graphc.compile(lambda x: (x.trace(offset=1, axis1=1, axis2=2), x.diagonal(axis1=2, axis2=1),
                                  x[0].dot(x[1])))
    for g, e in zip(f(x), (x.trace(offset=1, axis1=1, axis2=2), x.diagonal(axis1=2, axis2=1),
                           x[0].dot(x[1]))):
        np.testing.assert_allclose(g, e)


def test_diagonal_gradient_scatters_onto_the_diagonal():
    x = rnd(3, 4)
    g = graphc.grad(lambda x: np.sum(np.diagonal(x, 1)))(x)
    np.testing.assert_array_equal(g, np.eye(3, 4, k=1))
    g = graphc.grad(lambda x: np.trace(x, -1))(x)
    np.testing.assert_array_equal(g, np.eye(3, 4, k=-1))


def test_triangles_mask_the_gradient_and_keep_inf_out():
    x = rnd(3, 4)
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(np.triu(x, 1)))(x),
                                  np.triu(np.ones((3, 4)), 1))
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(np.tril(x)))(x),
                                  np.tril(np.ones((3, 4))))
    y = np.array([[np.inf, 1.0], [2.0, np.nan]])
    np.testing.assert_array_equal(graphc.compile(np.triu)(y), np.triu(y))
    v = np.array([np.inf, 1.0])
    np.testing.assert_array_equal(graphc.compile(lambda v: np.diag(v, 1))(v), np.diag(v, 1))
    np.testing.assert_array_equal(graphc.grad(lambda v: np.sum(np.diag(v, -1) * 2))(rnd(3)),
                                  np.full(3, 2.0))


def test_cross_of_2_vectors_warns_like_numpy():
    a, b = rnd(2), rnd(2)
    with pytest.warns(DeprecationWarning):
        got = graphc.compile(np.cross)(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        np.testing.assert_allclose(got, np.cross(a, b))


def test_dot_is_blas_matmul_in_generated_code():
    a, b = rnd(2, 3, 4), rnd(5, 4, 2)
    src = graphc.compile(np.dot).source(a, b)
    assert " @ " in src
    np.testing.assert_allclose(graphc.compile(np.dot)(a, b), np.dot(a, b))


def test_linalg_spellings_raise_numpys_errors():
    for f, args in [(np.linalg.outer, (rnd(2, 2), rnd(2))), (np.linalg.cross, (rnd(2), rnd(2))),
                    (np.linalg.vecdot, (rnd(2, 3), rnd(4)))]:
        with pytest.raises(ValueError):
            f(*args)
        with pytest.raises(ShapeError):
            graphc.compile(f)(*args)
