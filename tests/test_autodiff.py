"""Reverse-mode autodiff through graphc.grad / value_and_grad.

Closed forms derived by hand, central finite differences in float64 (tests/_fd.py),
pytrees, nesting, adjoint accumulation, un-broadcasting, the compile cache and
float32 preservation.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc

from _fd import fd_grad, fd_grad_args, rel_err


# --- the lecture's example -----------------------------------------------------------------
# The function comes from the shared corpus; its closed form is derived again here on
# purpose, independently of tests/functions.py, so the two derivations check each other.
from functions import lecture as lecture_f  # noqa: E402


def lecture_grad_closed_form(w1, w2):
    # f = z4 * (z2 + z4) = z4*z2 + z4**2, so df = dz4 * (z2 + 2*z4) + z4 * dz2 with
    # dz1/dw1 = 1/w2, dz1/dw2 = -w1/w2**2, dz2 = 2*pi*cos(2*pi*z1) dz1,
    # dz4/dw1 = 3/w2, dz4/dw2 = -3*w1/w2**2 - 2*exp(2*w2).
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z4 = 3 * z1 - np.exp(2 * w2)
    dz2_dz1 = 2 * np.pi * np.cos(2 * np.pi * z1)
    dw1 = 3 / w2 * (z2 + 2 * z4) + z4 * dz2_dz1 / w2
    dw2 = (-3 * w1 / w2 ** 2 - 2 * np.exp(2 * w2)) * (z2 + 2 * z4) + z4 * dz2_dz1 * (-w1 / w2 ** 2)
    return dw1, dw2


_LECTURE_POINTS = [(1.5, 0.5)] + [tuple(p) for p in
                                  np.random.default_rng(3).uniform([-2, 0.3], [2, 1.5], (4, 2))]


@pytest.mark.parametrize("w1, w2", _LECTURE_POINTS)
def test_lecture_example_closed_form(w1, w2):
    value, (d1, d2) = graphc.value_and_grad(lecture_f, argnums=(0, 1))(w1, w2)
    e1, e2 = lecture_grad_closed_form(w1, w2)
    np.testing.assert_allclose(value, lecture_f(w1, w2), rtol=1e-12)
    np.testing.assert_allclose(d1, e1, rtol=1e-12)
    np.testing.assert_allclose(d2, e2, rtol=1e-12)
    # the same derivatives with NumPy scalars and 0-d arrays as inputs
    d1b, d2b = graphc.grad(lecture_f, argnums=(0, 1))(np.float64(w1), np.array(w2))
    np.testing.assert_allclose([d1b, d2b], [e1, e2], rtol=1e-12)
    assert np.shape(d2b) == () and np.asarray(d2b).dtype == np.float64


def test_lecture_example_generated_code_names():
    src = graphc.grad(lecture_f, argnums=(0, 1)).source(1.5, 0.5)
    for name in ("z1", "z2", "z3", "z4", "z5", "d_w1", "d_w2"):
        assert name in src
    assert "# grad of:" in src


# --- an MLP written in plain NumPy ---------------------------------------------------------
def mlp_loss(params, x, y):
    h1 = np.tanh(x @ params["W1"] + params["b1"])
    h2 = np.maximum(0, h1 @ params["W2"] + params["b2"])
    logits = h2 @ params["W3"] + params["b3"]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = x.shape[0]
    return -logp[np.arange(n), y].mean()


def _mlp_problem(dtype=np.float64):
    rng = np.random.default_rng(42)
    sizes = [(5, 8), (8, 6), (6, 3)]
    params = {}
    for k, (i, o) in enumerate(sizes, 1):
        params[f"W{k}"] = (rng.standard_normal((i, o)) / np.sqrt(i)).astype(dtype)
        params[f"b{k}"] = (0.1 * rng.standard_normal(o)).astype(dtype)
    x = rng.standard_normal((7, 5)).astype(dtype)
    y = rng.integers(0, 3, 7)
    return params, x, y


def test_mlp_float64_vs_finite_differences():
    params, x, y = _mlp_problem()
    loss, grads = graphc.value_and_grad(mlp_loss)(params, x, y)
    np.testing.assert_allclose(loss, mlp_loss(params, x, y), rtol=1e-13)
    fd = fd_grad(lambda p: mlp_loss(p, x, y), params)
    assert list(grads) == list(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == np.float64
        assert rel_err(grads[k], fd[k]) < 1e-7, k
        assert np.abs(grads[k]).max() > 0, k


def test_mlp_float32_matches_float64():
    params64, x64, y = _mlp_problem()
    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    x32 = x64.astype(np.float32)
    loss32, g32 = graphc.value_and_grad(mlp_loss)(params32, x32, y)
    loss64, g64 = graphc.value_and_grad(mlp_loss)(params64, x64, y)
    assert np.asarray(loss32).dtype == np.float32
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    for k in params64:
        assert g32[k].dtype == np.float32, k
        assert g32[k].shape == params64[k].shape
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_mlp_grad_wrt_inputs_too():
    params, x, y = _mlp_problem()
    gp, gx = graphc.grad(mlp_loss, argnums=(0, 1))(params, x, y)
    fd = fd_grad(lambda x_: mlp_loss(params, x_, y), x)
    assert rel_err(gx, fd) < 1e-7
    assert set(gp) == set(params)


# --- higher order ---------------------------------------------------------------------
def _sinx3(x):
    return np.sin(x) * x ** 3


def _exptanh(x):
    return np.exp(np.tanh(x))


def _rational(x):
    return x / (1 + x ** 2)


def _d_sinx3(x):
    return np.cos(x) * x ** 3 + 3 * x ** 2 * np.sin(x)


def _dd_sinx3(x):
    return -x ** 3 * np.sin(x) + 6 * x ** 2 * np.cos(x) + 6 * x * np.sin(x)


def _ddd_sinx3(x):
    return -x ** 3 * np.cos(x) - 9 * x ** 2 * np.sin(x) + 18 * x * np.cos(x) + 6 * np.sin(x)


def _d_exptanh(x):
    t = np.tanh(x)
    return np.exp(t) * (1 - t ** 2)


def _dd_exptanh(x):
    t = np.tanh(x)
    return np.exp(t) * (1 - t ** 2) * (1 - t ** 2 - 2 * t)


def _d_rational(x):
    return (1 - x ** 2) / (1 + x ** 2) ** 2


def _dd_rational(x):
    return 2 * x * (x ** 2 - 3) / (1 + x ** 2) ** 3


@pytest.mark.parametrize("f, df, ddf", [(_sinx3, _d_sinx3, _dd_sinx3),
                                        (_exptanh, _d_exptanh, _dd_exptanh),
                                        (_rational, _d_rational, _dd_rational)],
                         ids=["sin(x)*x**3", "exp(tanh(x))", "x/(1+x**2)"])
@pytest.mark.parametrize("x", [-1.3, 0.4, 0.7, 2.1])
def test_grad_of_grad_closed_form(f, df, ddf, x):
    d = graphc.grad(f)
    dd = graphc.grad(graphc.grad(f))
    np.testing.assert_allclose(d(x), df(x), rtol=1e-12)
    np.testing.assert_allclose(dd(x), ddf(x), rtol=1e-11, atol=1e-13)
    # elementwise on arrays, through a sum
    xs = np.array([x, x / 2, -x])
    np.testing.assert_allclose(graphc.grad(lambda v: graphc.grad(lambda u: f(u).sum())(v).sum())(xs),
                               ddf(xs), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("x", [-0.9, 0.7, 1.8])
def test_third_derivative(x):
    ddd = graphc.grad(graphc.grad(graphc.grad(_sinx3)))
    np.testing.assert_allclose(ddd(x), _ddd_sinx3(x), rtol=1e-11)


def test_hessian_vector_product():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 4))
    w = rng.standard_normal(4)
    v = rng.standard_normal(4)

    def loss(w):
        return np.sum(np.tanh(A @ w) ** 2) + 0.5 * np.sum(w ** 3)

    def grad_np(w):  # by hand: A^T (2 t (1 - t^2)) + 1.5 w^2
        t = np.tanh(A @ w)
        return A.T @ (2 * t * (1 - t ** 2)) + 1.5 * w ** 2

    np.testing.assert_allclose(graphc.grad(loss)(w), grad_np(w), rtol=1e-12)
    hvp = graphc.grad(lambda w: graphc.grad(loss)(w) @ v)(w)
    eps = 1e-6
    fd = (grad_np(w + eps * v) - grad_np(w - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hvp, fd, rtol=1e-6, atol=1e-8)
    # and against the full Hessian built column by column from graphc's HVPs
    def hvp_along(e):
        return graphc.grad(lambda w: graphc.grad(loss)(w) @ e)(w)

    H = np.stack([hvp_along(e) for e in np.eye(4)])
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H @ v, hvp, rtol=1e-12, atol=1e-12)


def test_nested_grad_closure_over_outer_value_distinct_node():
    # d/dx [ d/dy (x*y) at y=2x ] = d/dx [x] = 1
    g = graphc.grad(lambda x: graphc.grad(lambda y: x * y)(2.0 * x))
    np.testing.assert_allclose(g(1.5), 1.0)
    # d/dx [ d/dy (x*y**2) at y = x + 1 ] = d/dx [2x(x+1)] = 4x + 2
    g2 = graphc.grad(lambda x: graphc.grad(lambda y: x * y ** 2)(x + 1.0))
    np.testing.assert_allclose(g2(0.75), 4 * 0.75 + 2, rtol=1e-12)


def test_nested_grad_closure_over_the_same_value():
    g = graphc.grad(lambda x: graphc.grad(lambda y: x * y)(x))
    np.testing.assert_allclose(g(1.5), 1.0)


# --- pytrees, argnums, has_aux -----------------------------------------------------------------
def _assert_same_tree(grads, args):
    if isinstance(args, (dict, list, tuple)):
        assert type(grads) is type(args), (type(grads), type(args))
    if isinstance(args, dict):
        assert list(grads) == list(args)
        for k in args:
            _assert_same_tree(grads[k], args[k])
    elif isinstance(args, (list, tuple)):
        assert len(grads) == len(args)
        for g, a in zip(grads, args):
            _assert_same_tree(g, a)
    elif args is None:
        assert grads is None
    else:
        g = np.asarray(grads)
        assert g.shape == np.shape(args)
        assert g.dtype == np.asarray(args).dtype


def _tree_loss(tree, scale):
    a = tree["a"]
    (b0, (b1, c)) = tree["b"]
    return scale * (np.sum(a ** 2) + np.sum(np.sin(b0) * b1) + c * np.sum(a[0]) + np.sum(b1 ** 3))


def _tree_args():
    rng = np.random.default_rng(0)
    return {"a": rng.standard_normal((2, 3)),
            "b": [rng.standard_normal(3).astype(np.float32), (rng.standard_normal(3), 0.5)],
            "none": None}


def test_pytree_gradients_have_the_same_structure():
    tree = _tree_args()
    g = graphc.grad(_tree_loss)(tree, 2.0)
    _assert_same_tree(g, tree)
    a = tree["a"]
    b0, (b1, c) = tree["b"]
    np.testing.assert_allclose(g["a"], 2 * (2 * a + c * np.array([[1, 1, 1], [0, 0, 0]])),
                               rtol=1e-12)
    np.testing.assert_allclose(g["b"][0], 2 * np.cos(b0) * b1, rtol=1e-5)
    np.testing.assert_allclose(g["b"][1][0], 2 * (np.sin(b0) + 3 * b1 ** 2), rtol=1e-5)
    np.testing.assert_allclose(g["b"][1][1], 2 * a[0].sum(), rtol=1e-12)
    assert g["none"] is None


def test_pytree_vs_finite_differences_and_argnums_tuple():
    tree = _tree_args()
    tree["b"][0] = tree["b"][0].astype(np.float64)
    gt, gs = graphc.grad(_tree_loss, argnums=(0, 1))(tree, 2.0)
    _assert_same_tree(gt, tree)
    fd = fd_grad(lambda t: _tree_loss(t, 2.0), tree)
    np.testing.assert_allclose(gt["a"], fd["a"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gt["b"][0], fd["b"][0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gt["b"][1][0], fd["b"][1][0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gt["b"][1][1], fd["b"][1][1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gs, _tree_loss(tree, 1.0), rtol=1e-12)


def test_argnums_selects_and_orders():
    def f(a, b, c):
        return np.sum(a * b) + np.sum(c ** 2)
    a, b, c = np.arange(3.0), np.ones(3) * 2, np.array([1.0, -1.0])
    gc_, ga = graphc.grad(f, argnums=(2, 0))(a, b, c)
    np.testing.assert_array_equal(gc_, 2 * c)
    np.testing.assert_array_equal(ga, b)
    gb = graphc.grad(f, argnums=1)(a, b, c)
    np.testing.assert_array_equal(gb, a)
    single = graphc.grad(f, argnums=(1,))(a, b, c)
    assert isinstance(single, tuple) and len(single) == 1
    np.testing.assert_array_equal(single[0], a)
    np.testing.assert_array_equal(graphc.grad(f, argnums=-1)(a, b, c), 2 * c)


def test_has_aux_follows_jax():
    def f(x, k):
        y = np.tanh(x) * k
        return np.sum(y ** 2), {"y": y, "mean": y.mean()}

    x, k = np.array([0.3, -0.7, 1.1]), 1.5
    (value, aux), g = graphc.value_and_grad(f, has_aux=True)(x, k)
    y = np.tanh(x) * k
    np.testing.assert_allclose(value, np.sum(y ** 2), rtol=1e-13)
    np.testing.assert_allclose(aux["y"], y, rtol=1e-13)
    np.testing.assert_allclose(aux["mean"], y.mean(), rtol=1e-13)
    expected = 2 * y * k * (1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(g, expected, rtol=1e-12)

    g2, aux2 = graphc.grad(f, has_aux=True)(x, k)
    np.testing.assert_allclose(g2, expected, rtol=1e-12)
    assert set(aux2) == {"y", "mean"}
    np.testing.assert_allclose(aux2["y"], y, rtol=1e-13)

    (v3, aux3), (gx, gk) = graphc.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, k)
    np.testing.assert_allclose(gk, np.sum(2 * y * np.tanh(x)), rtol=1e-12)
    np.testing.assert_allclose(gx, expected, rtol=1e-12)


def test_integer_arguments_not_differentiated_are_fine():
    def f(w, idx, n):
        return np.sum(w[idx] ** 2) * n + np.sum(w * idx.astype(np.float64)[:w.shape[0]])

    w = np.array([1.0, 2.0, 3.0])
    idx = np.array([2, 0, 2])
    g = graphc.grad(f)(w, idx, 3)
    np.testing.assert_allclose(g, np.array([2.0, 0.0, 12.0]) * 3 + idx.astype(float))
    # a traced NumPy integer scalar is data, not a static value
    g_scalar = graphc.grad(lambda w, s: np.sum(w) * s)(w, np.int64(4))
    np.testing.assert_array_equal(g_scalar, [4.0, 4.0, 4.0])


def test_input_without_influence_gets_zeros():
    def f(x, unused, z):
        return np.sum(x ** 2) + 0.0 * z.sum()

    x = np.array([1.0, 2.0])
    unused = np.ones((2, 3), np.float32)
    gx, gu = graphc.grad(f, argnums=(0, 1))(x, unused, np.ones(2))
    np.testing.assert_array_equal(gx, 2 * x)
    assert gu.shape == (2, 3) and gu.dtype == np.float32
    np.testing.assert_array_equal(gu, 0)
    g = graphc.grad(lambda a, b: np.sum(a), argnums=1)(x, 2.5)
    assert np.shape(g) == () and float(g) == 0.0
    gt = graphc.grad(lambda t: np.sum(t["used"] * 3))({"used": x, "other": unused})
    np.testing.assert_array_equal(gt["used"], 3.0)
    assert gt["other"].shape == (2, 3) and gt["other"].dtype == np.float32
    np.testing.assert_array_equal(gt["other"], 0)


# --- adjoint accumulation and un-broadcasting ---------------------------------------------
def test_value_used_twice_in_one_op():
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(graphc.grad(lambda x: np.sum(x * x))(x), 2 * x)
    np.testing.assert_allclose(graphc.grad(lambda x: np.sum(x / x))(x), 0, atol=1e-15)
    np.testing.assert_allclose(graphc.grad(lambda x: np.sum(x - x + x))(x), 1)


def test_value_used_in_three_places():
    x = np.array([0.5, -1.5, 2.0])

    def f(x):
        return np.sum(x * np.sin(x) + np.exp(x) - 2.0 * x)

    np.testing.assert_allclose(graphc.grad(f)(x), np.sin(x) + x * np.cos(x) + np.exp(x) - 2,
                               rtol=1e-13)

    def g(x):  # an intermediate with several children, one of them a reduction
        u = np.tanh(x)
        return np.sum(u * u) + u.sum() * u[0] - np.sum(u ** 3)

    fd = fd_grad(g, x)
    np.testing.assert_allclose(graphc.grad(g)(x), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("xshape, bshape", [
    ((3, 4), (1, 4)), ((3, 4), (4,)), ((3, 4), ()), ((3, 4), (3, 1)), ((3, 4), (1, 1)),
    ((3, 4), (2, 3, 4)), ((3, 4), (2, 1, 1)), ((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 4)),
    ((2, 1, 4), (3, 1))], ids=str)
def test_unbroadcast(xshape, bshape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xshape)
    b = rng.standard_normal(bshape)
    R = rng.standard_normal(np.broadcast_shapes(xshape, bshape))

    def f(x, b):
        return np.sum(np.tanh(x + b) * R) + np.sum((x * b) * R)

    gx, gb = graphc.grad(f, argnums=(0, 1))(x, b)
    assert gx.shape == x.shape and gb.shape == b.shape
    assert gb.dtype == np.float64
    fdx, fdb = fd_grad_args(f, (x, b), (0, 1))
    np.testing.assert_allclose(gx, fdx, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gb, fdb, rtol=1e-7, atol=1e-9)


def test_unbroadcast_python_float_and_where():
    x = np.array([[1.0, -2.0, 3.0], [-0.5, 0.25, 2.0]])

    def f(x, s):
        return np.sum(np.where(x > 0, x * s, s))

    gx, gs = graphc.grad(f, argnums=(0, 1))(x, 1.5)
    np.testing.assert_allclose(gx, np.where(x > 0, 1.5, 0.0))
    np.testing.assert_allclose(gs, np.sum(np.where(x > 0, x, 1.0)))
    assert np.shape(gs) == ()


def test_array_default_argument():
    e = np.array([1.0, 2.0])
    g = graphc.grad(lambda w, v=e: np.sum(w * v))
    np.testing.assert_array_equal(g(np.ones(2)), e)


# --- the compile cache --------------------------------------------------------------------
def test_compile_cache_traces_once_per_signature():
    calls = []

    def f(x, n):
        calls.append(1)
        return np.sum(x ** n)

    g = graphc.grad(f)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(g(x, 2), 2 * x)
    np.testing.assert_allclose(g(x + 1, 2), 2 * (x + 1))     # same signature: no re-trace
    assert len(calls) == 1
    g(np.ones(4), 2)                                           # new shape
    assert len(calls) == 2
    g32 = g(x.astype(np.float32), 2)                           # new dtype
    assert len(calls) == 3 and g32.dtype == np.float32
    np.testing.assert_allclose(g(x, 3), 3 * x ** 2)            # new static int
    assert len(calls) == 4
    g(x, 3), g(x * 2, 2), g(np.zeros(4), 2)                    # all seen before
    assert len(calls) == 4


def test_compile_cache_python_floats_are_traced_not_baked():
    calls = []

    def f(x, s):
        calls.append(1)
        return np.sum(x * s) * s

    g = graphc.value_and_grad(f, argnums=(0, 1))
    x = np.array([1.0, 2.0])
    v1, (gx1, gs1) = g(x, 0.5)
    v2, (gx2, gs2) = g(x, 3.0)
    assert len(calls) == 1
    np.testing.assert_allclose([v1, v2], [3 * 0.25, 3 * 9.0])
    np.testing.assert_allclose(gx2, [9.0, 9.0])
    np.testing.assert_allclose(gs2, 2 * 3.0 * 3.0)
    np.testing.assert_allclose(gs1, 2 * 0.5 * 3.0)


def test_compile_cache_pytree_structure_retraces():
    calls = []

    def f(p):
        calls.append(1)
        return sum(np.sum(v) for v in p.values())

    g = graphc.grad(f)
    g({"a": np.ones(2)})
    g({"a": np.zeros(2)})
    assert len(calls) == 1
    out = g({"a": np.ones(2), "b": np.ones(3)})
    assert len(calls) == 2 and set(out) == {"a", "b"}


def test_compiled_function_cache_and_source():
    calls = []

    @graphc.compile
    def f(x):
        calls.append(1)
        return np.tanh(x) * 2.0

    x = np.linspace(-1, 1, 5)
    np.testing.assert_allclose(f(x), np.tanh(x) * 2.0, rtol=1e-15)
    np.testing.assert_allclose(f(-x), np.tanh(-x) * 2.0, rtol=1e-15)
    assert len(calls) == 1
    assert f.source(x) == f.source(x)
    assert len(calls) == 1


# --- float32 end to end ------------------------------------------------------------------
def test_float32_preserved_end_to_end():
    def f(x, w):
        h = np.tanh(x @ w + 0.5) * 2.0 - np.pi * x.mean()
        return np.mean(np.exp(-h ** 2) / 3.0) + 1e-3 * np.sum(w ** 2)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    vg = graphc.value_and_grad(f, argnums=(0, 1))
    value, (gx, gw) = vg(x, w)
    assert np.asarray(value).dtype == np.float32
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    # no float64 value anywhere in the graph (weak Python scalars excepted)
    g = vg.graph(x, w)
    wide = [(n, d["op"]) for n, d in g.nx.nodes(data=True)
            if d["dtype"] == np.float64 and not d["weak"]]
    assert not wide, f"float64 nodes in a float32 program: {wide}"
    # the float32 result is close to the float64 one
    v64, (gx64, gw64) = vg(x.astype(np.float64), w.astype(np.float64))
    np.testing.assert_allclose(value, v64, rtol=1e-5)
    np.testing.assert_allclose(gx, gx64, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gw, gw64, rtol=1e-4, atol=1e-6)


def test_float32_second_derivative_stays_float32():
    x = np.array([0.3, -1.2], np.float32)
    dd = graphc.grad(lambda v: graphc.grad(lambda u: np.sum(np.sin(u) * u ** 3))(v).sum())(x)
    assert dd.dtype == np.float32
    np.testing.assert_allclose(dd, _dd_sinx3(x.astype(np.float64)), rtol=1e-5)
