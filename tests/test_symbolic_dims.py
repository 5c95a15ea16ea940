"""Named dimensions: graphc.Spec(("n", 784)) and one generated module for every size."""
import importlib.util
import os
import sys

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.symdims import SymbolicShapeError
from functions import mlp_loss, mlp_params
from test_codegen import check_golden

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks import workloads as W  # noqa: E402

HERE = os.path.basename(__file__)


def _import(path, name="symbolic_mod"):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(source, func_name):
    ns = {}
    exec(compile(source, "<symbolic>", "exec"), ns)
    return ns[func_name]


def _assert_same(got, want, rtol=1e-12):
    gl, wl = graphc.pytree.flatten(got)[0], graphc.pytree.flatten(want)[0]
    assert len(gl) == len(wl)
    for a, b in zip(gl, wl):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-14)


def _mlp64(rng):
    return {k: v.astype(np.float64) for k, v in W.mlp_params(rng).items()}


# --- 1. MLP: elementwise, matmul, reductions, mean, cross-entropy with a label gather ---------
def test_mlp_gradient_exported_once_matches_every_batch(tmp_path):
    rng = np.random.default_rng(0)
    p = _mlp64(rng)
    vg = graphc.value_and_grad(W.mlp_loss_np)
    path = graphc.export(vg, p, graphc.Spec(("n", 784)), graphc.Spec(("n",), "int64"),
                         path=tmp_path / "mlp_vg.py")
    src = path.read_text()
    assert "    n = _dim(x, 0)\n" in src
    # (the loss's one-hot seed is added in place: graphc/codegen_forms.py seed_adds)
    assert "np.arange(n)" in src and "/ n" in src and "[np.arange(n), y] -= (1 / n)" in src
    assert "f'float64[{n},784]'" in src and "f'int64[{n}]'" in src
    f = _import(path).mlp_loss_np_value_and_grad
    for n in (7, 128, 1000):
        x, y = rng.normal(size=(n, 784)), rng.integers(0, 10, n)
        value, grads = f(p, x, y)
        want = graphc.value_and_grad(W.mlp_loss_np)(p, x, y)
        _assert_same((value, grads), want)
        np.testing.assert_allclose(value, W.mlp_loss_np(p, x, y), rtol=1e-12)


def test_mlp_nn_float32_is_bitwise_the_concrete_result():
    rng = np.random.default_rng(1)
    p = W.mlp_params(rng)
    vg = graphc.value_and_grad(W.mlp_loss_nn)
    src = vg.source(p, graphc.Spec(("batch", 784), "float32"), graphc.Spec(("batch",), "int64"))
    assert "float(np.float32(1 / batch))" in src        # the float32 rounding of 1/n
    f = _load(src, "mlp_loss_nn_value_and_grad")
    for n in (1, 7, 128):
        x, y = W.mlp_data(rng, n)
        got, want = f(p, x, y), vg(p, x, y)
        for a, b in zip(graphc.pytree.flatten(got)[0], graphc.pytree.flatten(want)[0]):
            assert np.array_equal(a, b)


def test_golden_mlp_value_and_grad_symbolic():
    rng = np.random.default_rng(0)
    params = mlp_params(rng, dtype=np.float32)
    src = graphc.value_and_grad(mlp_loss).source(
        params, graphc.Spec(("n", 5), "float32"), graphc.Spec(("n",), "int64"))
    check_golden("mlp_value_and_grad_symbolic.py", src)


# --- 2. LeNet: conv, pool, flatten ------------------------------------------------------------
def test_lenet_gradient_exported_once_matches_every_batch():
    rng = np.random.default_rng(2)
    p = {k: v.astype(np.float64) for k, v in W.lenet_params(rng).items()}
    vg = graphc.value_and_grad(W.lenet_loss)
    src = vg.source(p, graphc.Spec(("n", 1, 28, 28)), graphc.Spec(("n",), "int64"))
    assert "flat = pool_1.reshape(n, 400)" in src and "(150, n * 100)" in src
    f = _load(src, "lenet_loss_value_and_grad")
    for n in (1, 7, 128, 1000):
        x, y = rng.normal(size=(n, 1, 28, 28)), rng.integers(0, 10, n)
        _assert_same(f(p, x, y), vg(p, x, y))


# --- 3. more than one named dimension ----------------------------------------------------------
def test_two_named_dims_mean_over_both():
    def f(x):
        return (x ** 2).mean() + x.sum(axis=1).std()
    src = graphc.grad(f).source(graphc.Spec(("n", "h")))
    assert "    n = _dim(x, 0)\n    h = _dim(x, 1)\n" in src and "1 / (n * h)" in src
    g = _load(src, "f_grad")
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (3, 8), (50, 2)):
        x = rng.normal(size=shape)
        _assert_same(g(x), graphc.grad(f)(x))


def test_spatial_dims_through_a_convolution():
    def f(w, x):
        return (nn.relu(nn.conv2d(x, w, padding=1)) ** 2).mean()
    w = np.random.default_rng(9).normal(size=(4, 3, 3, 3))
    src = graphc.grad(f).source(w, graphc.Spec(("n", 3, "h", "w")))
    # the dimension w is renamed: w is the filters' parameter
    assert "    h = _dim(x, 2)\n    w_ = _dim(x, 3)\n" in src
    assert "np.zeros((n, 3, h + 2, w_ + 2)" in src and "reshape(n, 27, h * w_)" in src
    g = _load(src, "f_grad")
    rng = np.random.default_rng(10)
    for shape in ((1, 3, 5, 7), (4, 3, 8, 3), (2, 3, 20, 21)):
        x = rng.normal(size=shape)
        _assert_same(g(w, x), graphc.grad(f)(w, x))


def test_spatial_dims_through_pooling_are_refused_clearly():
    def f(w, x):
        return nn.max_pool2d(nn.relu(nn.conv2d(x, w)), 2).mean()
    with pytest.raises(SymbolicShapeError, match="not the same at every size") as e:
        graphc.grad(f).source(np.ones((4, 3, 5, 5)), graphc.Spec(("n", 3, "h", "w")))
    assert e.value.where.endswith(f"{HERE}:{f.__code__.co_firstlineno + 1}")


# --- 4. the entry checks ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_symbolic():
    rng = np.random.default_rng(4)
    params = mlp_params(rng)
    src = graphc.value_and_grad(mlp_loss).source(params, graphc.Spec(("n", 5)),
                                                 graphc.Spec(("n",), "int64"))
    return params, _load(src, "mlp_loss_value_and_grad")


@pytest.mark.parametrize("x_shape, y_shape, dtype", [
    ((7, 5), (8,), np.float64),          # n differs between x and y
    ((7, 6), (7,), np.float64),          # a fixed dimension is wrong
    ((7, 5, 1), (7,), np.float64),       # rank
    ((7, 5), (7,), np.float32),          # dtype
    ((0, 5), (0,), np.float64),          # a named dimension is >= 1
])
def test_mismatches_are_clear_errors(mlp_symbolic, x_shape, y_shape, dtype):
    params, f = mlp_symbolic
    x, y = np.zeros(x_shape, dtype), np.zeros(y_shape, np.int64)
    with pytest.raises(ValueError, match=r"generated for \(params: .*x: float64\[n,5\], "
                                         r"y: int64\[n\]\) but was called with"):
        f(params, x, y)


def test_not_an_array_is_a_clear_error(mlp_symbolic):
    params, f = mlp_symbolic
    with pytest.raises(ValueError, match="generated for"):
        f(params, [[1.0] * 5], np.zeros(1, np.int64))


def test_spec_names_are_checked():
    with pytest.raises(graphc.GraphcError, match="not a plain Python name"):
        graphc.Spec(("n m", 3))
    with pytest.raises(graphc.GraphcError, match="named dimensions"):
        graphc.trace(lambda x: x.sum(), graphc.Spec(("n", 3)))
    f = graphc.compile(lambda x: x.sum())
    assert "n = _dim(x, 0)" in f.source(graphc.Spec(("n", 3)))
    with pytest.raises(graphc.GraphcError, match="Spec placeholder"):
        f(graphc.Spec(("n", 3)))


def test_dim_name_that_clashes_with_a_variable_is_renamed():
    def f(x):
        n = np.tanh(x)              # a traced value named n
        return n.sum() / x.shape[0]
    src = graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert "    n_ = _dim(x, 0)\n" in src
    g = _load(src, "f_grad")
    x = np.random.default_rng(5).normal(size=(6, 3))
    _assert_same(g(x), graphc.grad(f)(x))


# --- 5. what cannot be symbolic is refused, naming the user's line ----------------------------
def test_branch_on_a_size_is_refused():
    def f(x):
        if x.shape[0] > 10:
            return x.sum()
        return x.mean()
    with pytest.raises(SymbolicShapeError, match=r"n > 10") as e:
        graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert e.value.where.endswith(f"{HERE}:{f.__code__.co_firstlineno + 1}")


def test_decided_comparisons_are_fine():
    def f(x, y):
        assert x.shape[0] == y.shape[0] and x.shape[0] > 0 and x.shape[1] == 3
        return (x * y[:, None]).sum() / (x.shape[0] * 2)
    src = graphc.grad(f).source(graphc.Spec(("n", 3)), graphc.Spec(("n",)))
    g = _load(src, "f_grad")
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(9, 3)), rng.normal(size=9)
    _assert_same(g(x, y), graphc.grad(f)(x, y))


def test_python_loop_over_a_size_is_refused():
    def f(x):
        total = 0.0
        for i in range(x.shape[0]):
            total = total + x[i].sum()
        return total
    with pytest.raises(SymbolicShapeError, match="not the same at every size") as e:
        graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert HERE in e.value.where


def test_size_constant_at_every_probe_is_refused():
    def f(x):
        return x.sum() * (x.shape[0] // 1000 + 1)
    with pytest.raises(SymbolicShapeError, match="at every size graphc probes") as e:
        graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert e.value.where.endswith(f"{HERE}:{f.__code__.co_firstlineno + 1}")


def test_size_arithmetic_in_user_code_is_symbolic():
    def f(x):
        half = x.shape[0] // 2
        return x[:half].sum() - x[half:].sum()
    src = graphc.grad(f).source(graphc.Spec(("n", 2)))
    g = _load(src, "f_grad")
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 8):
        x = rng.normal(size=(n, 2))
        _assert_same(g(x), graphc.grad(f)(x))


def test_concrete_specs_are_unchanged():
    f = graphc.grad(lambda x: (x ** 2).mean())
    src = f.source(graphc.Spec((4, 3)))
    assert "_dim(" not in src and "0.08333333333333333" in src


def test_len_of_a_named_dimension_is_refused():
    def f(x):
        return x.sum() / len(x)
    with pytest.raises(SymbolicShapeError, match=r"len\(\)") as e:
        graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert e.value.where.endswith(f"{HERE}:{f.__code__.co_firstlineno + 1}")
    assert "x.shape[0]" in e.value.hint


@pytest.mark.parametrize("size", [lambda x: np.shape(x)[0], lambda x: x.size,
                                  lambda x: np.size(x), lambda x: np.size(x, 0)])
def test_sizes_read_through_numpy_are_named_too(size):
    def f(x):
        if size(x) > 100:
            return x.sum()
        return x.mean()
    with pytest.raises(SymbolicShapeError, match="named dimension"):
        graphc.grad(f).source(graphc.Spec(("n", 3)))


def test_size_in_arithmetic_is_symbolic():
    def f(x):
        return (x ** 2).sum() / x.size + x.sum() / np.shape(x)[0]
    src = graphc.grad(f).source(graphc.Spec(("n", 3)))
    g = _load(src, "f_grad")
    rng = np.random.default_rng(8)
    for n in (1, 4, 33):
        x = rng.normal(size=(n, 3))
        _assert_same(g(x), graphc.grad(f)(x))


def test_named_dims_in_a_pytree_and_keywords():
    def f(w, batch, *, scale=2.0):
        x, y = batch["x"], batch["y"]
        return ((x @ w - y[:, None]) ** 2).mean() * scale
    w = np.random.default_rng(11).normal(size=(3, 2))
    vg = graphc.value_and_grad(f)
    src = vg.source(w, {"x": graphc.Spec(("n", 3)), "y": graphc.Spec(("n",))}, scale=2.0)
    assert "    n = _dim(batch, 0, 'x')\n" in src
    assert "_fill(_SIGNATURE['batch'], {'n': n})" in src
    g = _load(src, "f_value_and_grad")
    rng = np.random.default_rng(12)
    for n in (1, 5, 100):
        b = {"x": rng.normal(size=(n, 3)), "y": rng.normal(size=n)}
        _assert_same(g(w, b, scale=0.5), vg(w, b, scale=0.5))
    with pytest.raises(ValueError, match=r"batch: \{'x': 'float64\[n,3\]', 'y': 'float64\[n\]'\}"):
        g(w, {"x": rng.normal(size=(4, 3)), "y": rng.normal(size=5)})


@pytest.mark.parametrize("convert", [int, float])
def test_plain_int_or_float_of_a_named_dimension_is_refused(convert):
    def f(x):
        n = convert(x.shape[0])
        return x.sum() / n
    with pytest.raises(SymbolicShapeError, match=rf"{convert.__name__}\(\) of the named") as e:
        graphc.grad(f).source(graphc.Spec(("n", 3)))
    assert e.value.where.endswith(f"{HERE}:{f.__code__.co_firstlineno + 1}")


def test_one_over_a_size_in_user_code():
    def f(x):
        return x.sum() * (1.0 / x.shape[0]) + (x ** 2).sum() / (2 * x.shape[0])
    src = graphc.grad(f).source(graphc.Spec(("n", 3)))
    g = _load(src, "f_grad")
    rng = np.random.default_rng(13)
    for n in (1, 3, 77):
        x = rng.normal(size=(n, 3))
        _assert_same(g(x), graphc.grad(f)(x))


def test_float_sizes_are_named_too():
    def f(x):
        if x.shape[0] / 2 > 10.0:
            return x.sum()
        return x.mean()
    with pytest.raises(SymbolicShapeError, match=r"n/2 > 10"):
        graphc.grad(f).source(graphc.Spec(("n", 3)))

    def g(x):
        scale = x.shape[0] / 4 + x.shape[0] ** 2
        return x.sum() * scale
    src = graphc.grad(g).source(graphc.Spec(("n", 3)))
    dg = _load(src, "g_grad")
    rng = np.random.default_rng(14)
    for n in (1, 6, 50):
        x = rng.normal(size=(n, 3))
        _assert_same(dg(x), graphc.grad(g)(x))


def test_graph_of_a_named_signature_is_a_probe_graph():
    f = graphc.grad(lambda x: (x ** 2).mean())
    g = f.graph(graphc.Spec(("n", 3)))
    assert isinstance(g, graphc.Graph)
    assert g[g.inputs[0]].shape[1] == 3 and g[g.inputs[0]].shape[0] >= 13


def test_lenet_float32_builds_and_matches():
    rng = np.random.default_rng(15)
    p = W.lenet_params(rng)
    vg = graphc.value_and_grad(W.lenet_loss)
    src = vg.source(p, graphc.Spec(("n", 1, 28, 28), "float32"), graphc.Spec(("n",), "int64"))
    f = _load(src, "lenet_loss_value_and_grad")
    x, y = W.lenet_data(rng, 5)
    _assert_same(f(p, x, y), vg(p, x, y), rtol=1e-6)
