"""The ``"array-api"`` target, continued (issue 17): loops, branches, guards and named
dimensions.

Each program's value and gradient on the array-API target is compared with the NumPy
target's: on NumPy arrays bit for bit (float64), on ``array_api_strict`` and PyTorch CPU
tensors to rounding.  Modules stay functional (no ``np.``, ``out=`` or in-place writes).
"""
from __future__ import annotations

import ast
import importlib.util
import os

import numpy as np
import pytest

import graphc
from benchmarks.rnn import rnn_data, rnn_loss, rnn_params

xps = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")
xps.set_array_api_strict_flags(api_version="2024.12")

HERE = os.path.dirname(__file__)
XP = "array-api"


def _tree(x, conv):
    if isinstance(x, dict):
        return {k: _tree(v, conv) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_tree(v, conv) for v in x)
    return conv(x) if isinstance(x, np.ndarray) else x


def _to_numpy(x):
    return _tree(x, lambda a: a) if isinstance(x, (dict, list, tuple)) and not hasattr(x, "shape") \
        else np.asarray(x)


def _back(x):
    if isinstance(x, dict):
        return {k: _back(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_back(v) for v in x)
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if type(x).__module__.startswith("array_api_strict"):
        return np.asarray(x._array)
    return np.asarray(x)


def _engines():
    out = [("numpy", lambda a: a), ("strict", xps.asarray)]
    try:
        import torch
        out.append(("torch", torch.tensor))
    except ImportError:
        pass
    return out


ENGINES = _engines()


def _close(a, b, exact):
    a, b = _back(a), _back(b)
    if isinstance(b, dict):
        assert set(a) == set(b)
        for k in b:
            _close(a[k], b[k], exact)
        return
    if isinstance(b, (list, tuple)):
        for u, v in zip(a, b):
            _close(u, v, exact)
        return
    if exact:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _functional(src):
    """No NumPy, no out=, no subscript assignment in the function."""
    fn = src.split("\n\n\ndef _")[0]
    tree = ast.parse(fn)
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Name) and node.id == "np"), src
        assert not (isinstance(node, ast.keyword) and node.arg == "out"), src
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assert not any(isinstance(t, ast.Subscript) for t in targets), src


def _compare(fn, args, kind="value_and_grad", **kw):
    ref = getattr(graphc, kind)(fn, **kw)(*args)
    f = getattr(graphc, kind)(fn, target=XP, **kw)
    _functional(f.source(*args))
    for name, conv in ENGINES:
        out = f(*_tree(args, conv))
        _close(out, ref, exact=name == "numpy")
    return f


# --- the RNN (benchmarks/rnn.py, examples/rnn_scan.py) -----------------------------------------
def test_rnn_value_and_grad_matches_numpy_target():
    rng = np.random.default_rng(0)
    p = {k: v.astype(np.float64) for k, v in rnn_params(rng, 3, 6).items()}
    xs, y = (a.astype(np.float64) for a in rnn_data(rng, steps=7, batch=4, n_in=3))
    f = _compare(rnn_loss, (p, xs, y))
    src = f.source(p, xs, y)
    assert "xp.stack(h_tape)" in src and "h_tape.append(h)" in src


def test_rnn_scan_example_value_and_grad():
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
    try:
        import rnn_scan
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(1)
    p = rnn_scan.init_params(rng, hidden=5)
    xs, y = rnn_scan.adding_problem(rng, 3, steps=6)
    _compare(rnn_scan.loss, (p, xs, y))


# --- scan forms -----------------------------------------------------------------------------
def _ys_scan(w, xs, reverse):
    def step(c, x):
        c = np.sin(c * w + x)
        return c, c * x
    c, ys = graphc.scan(step, np.zeros(xs.shape[1]), xs, reverse=reverse)
    return np.sum(ys ** 2) + np.sum(c)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_with_ys_forward_and_reversed(reverse):
    rng = np.random.default_rng(2)
    w, xs = rng.normal(size=3), rng.normal(size=(5, 3))
    _compare(lambda w, xs: _ys_scan(w, xs, reverse), (w, xs))
    f = graphc.compile(lambda w, xs: graphc.scan(
        lambda c, x: (c + x * w, c * w), np.zeros(3), xs, reverse=reverse)[1], target=XP)
    ref = graphc.compile(lambda w, xs: graphc.scan(
        lambda c, x: (c + x * w, c * w), np.zeros(3), xs, reverse=reverse)[1])(w, xs)
    np.testing.assert_array_equal(f(w, xs), ref)


def test_fori_loop_grad():
    def power(x):
        return graphc.fori_loop(0, 4, lambda i, v: v * x + 1.0, x)
    _compare(lambda x: np.sum(power(x)), (np.array([0.5, -1.2, 2.0]),))


# --- while_loop, cond, switch ---------------------------------------------------------------
def newton(a):
    def cond_fn(c):
        x, k = c
        return np.abs(x * x - a) > 1e-12

    def body_fn(c):
        x, k = c
        return 0.5 * (x + a / x), k + 1
    x, _ = graphc.while_loop(lambda c: np.all(cond_fn(c)), body_fn, (a, 0))
    return x


def test_while_loop():
    a = np.array([2.0, 9.0, 0.25])
    ref = graphc.compile(newton)(a)
    f = graphc.compile(newton, target=XP)
    _functional(f.source(a))
    assert "_decide(" in f.source(a)
    for name, conv in ENGINES:
        _close(f(conv(a)), ref, exact=name == "numpy")
    np.testing.assert_allclose(ref, np.sqrt(a))


def branchy(x, s):
    y = graphc.cond(np.sum(x) > 0, lambda v: np.sin(v) * 2.0, lambda v: np.cos(v) - v, x)
    z = graphc.switch(s, [lambda v: v * 3.0, lambda v: np.exp(v), lambda v: v * v], y)
    return np.sum(z)


@pytest.mark.parametrize("sign, s", [(1.0, 0), (-1.0, 1), (1.0, 2), (-1.0, 7)])
def test_cond_and_switch_value_and_grad(sign, s):
    x = sign * np.array([0.3, 0.7, 1.1])
    _compare(branchy, (x, s))


# --- guards (an `if` on a traced value) -------------------------------------------------------
def guarded(x):
    if np.sum(x) > 0:
        return np.sum(np.sin(x))
    return np.sum(x * x)


def test_guard_both_paths_on_every_engine():
    for x in (np.array([0.5, 1.0]), np.array([-0.5, -1.0]), np.array([2.0, 0.1])):
        ref = graphc.value_and_grad(guarded)(x)
        f = graphc.value_and_grad(guarded, target=XP)
        for name, conv in ENGINES:
            _close(f(conv(x)), ref, exact=name == "numpy")
    f = graphc.value_and_grad(guarded, target=XP)      # one callable, both paths
    for name, conv in ENGINES:
        for x in (np.array([0.5, 1.0]), np.array([-0.5, -1.0]), np.array([0.25, 3.0])):
            _close(f(conv(x)), graphc.value_and_grad(guarded)(x), exact=name == "numpy")
    src = graphc.value_and_grad(guarded, target=XP).source(np.array([0.5, 1.0]))
    assert "raise GuardFailed(" in src and "class GuardFailed(ValueError)" in src
    _functional(src)


def test_decisions_under_jax_jit_are_a_clear_error():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    f = graphc.compile(newton, target=XP)
    a = np.array([2.0, 9.0])
    f(a)
    with pytest.raises(TypeError, match="jax.jit"):
        jax.jit(lambda a: f(a))(jax.numpy.asarray(a))
    # a scan has no decision: it runs (unrolled) under jax.jit
    rng = np.random.default_rng(3)
    p = {k: v.astype(np.float64) for k, v in rnn_params(rng, 2, 3).items()}
    xs, y = (a.astype(np.float64) for a in rnn_data(rng, steps=3, batch=2, n_in=2))
    g = graphc.value_and_grad(rnn_loss, target=XP)
    ref = graphc.value_and_grad(rnn_loss)(p, xs, y)
    jp = jax.tree_util.tree_map(jax.numpy.asarray, p)
    out = jax.jit(lambda p, xs, y: g(p, xs, y))(jp, jax.numpy.asarray(xs), jax.numpy.asarray(y))
    _close(out, ref, exact=False)


# --- named dimensions -----------------------------------------------------------------------------
def mlp_loss(p, x, y):
    h = np.tanh(x @ p["W1"] + p["b1"])
    z = h @ p["W2"]
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(lp[np.arange(x.shape[0]), y])


def _load(path):
    spec = importlib.util.spec_from_file_location("xp_symbolic_mod", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_symbolic_batch_export_serves_every_size(tmp_path):
    rng = np.random.default_rng(4)
    p = {"W1": rng.normal(size=(784, 16)).astype(np.float32), "b1": np.zeros(16, np.float32),
         "W2": rng.normal(size=(16, 10)).astype(np.float32) * np.float32(0.1)}
    path = tmp_path / "mlp_xp.py"
    graphc.export(graphc.value_and_grad(mlp_loss), p, graphc.Spec(("n", 784), "float32"),
                  graphc.Spec(("n",), "int64"), target=XP, path=str(path))
    src = path.read_text()
    assert "n = int(x.shape[0])" in src and "_check('y', y, (n,), 'int64', xp)" in src
    _functional(src)
    mod = _load(path)
    torch = pytest.importorskip("torch")
    for n in (7, 128):
        x = rng.normal(size=(n, 784)).astype(np.float32)
        y = rng.integers(0, 10, n)
        ref = graphc.value_and_grad(mlp_loss)(p, x, y)
        _close(mod.mlp_loss_value_and_grad(p, x, y), ref, exact=True)
        tp = {k: torch.tensor(v) for k, v in p.items()}
        v, g = mod.mlp_loss_value_and_grad(tp, torch.tensor(x), torch.tensor(y))
        np.testing.assert_allclose(float(v), ref[0], rtol=1e-5)
        for k in p:
            np.testing.assert_allclose(g[k].numpy(), ref[1][k], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="generated for y"):
        mod.mlp_loss_value_and_grad(p, np.zeros((5, 784), np.float32), np.zeros(4, np.int64))


def test_symbolic_batch_lenet_and_rnn():
    from benchmarks import workloads as W
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    p = {k: v.astype(np.float64) for k, v in W.lenet_params(rng).items()}
    src = graphc.value_and_grad(W.lenet_loss, target=XP).source(
        p, graphc.Spec(("n", 1, 28, 28)), graphc.Spec(("n",), "int64"))
    _functional(src)
    ns: dict = {}
    exec(compile(src, "lenet_xp", "exec"), ns)
    f, ref = ns["lenet_loss_value_and_grad"], graphc.value_and_grad(W.lenet_loss)
    for n in (1, 7, 128):
        x, y = rng.normal(size=(n, 1, 28, 28)), rng.integers(0, 10, n)
        want = ref(p, x, y)
        _close(f(p, x, y), want, exact=True)
        _close(f(_tree(p, torch.tensor), torch.tensor(x), torch.tensor(y)), want, exact=False)
    p = {k: v.astype(np.float64) for k, v in rnn_params(rng, 3, 6).items()}
    src = graphc.value_and_grad(rnn_loss, target=XP).source(
        p, graphc.Spec((7, "n", 3)), graphc.Spec(("n", 1)))
    ns = {}
    exec(compile(src, "rnn_xp", "exec"), ns)
    for n in (1, 5, 33):
        xs, y = (a.astype(np.float64) for a in rnn_data(rng, steps=7, batch=n, n_in=3))
        _close(ns["rnn_loss_value_and_grad"](p, xs, y),
               graphc.value_and_grad(rnn_loss)(p, xs, y), exact=True)


# --- golden file ---------------------------------------------------------------------------------
def check_golden(name, text):
    path = os.path.join(HERE, "golden", name)
    if os.environ.get("GRAPHC_UPDATE_GOLDEN") == "1" or not os.path.exists(path):
        with open(path, "w") as f:
            f.write(text)
        if os.environ.get("GRAPHC_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {name} was missing and has been written; review and rerun")
    with open(path) as f:
        assert text == f.read(), f"generated code differs from tests/golden/{name}"


def test_golden_scan_rnn_grad_array_api():
    rng = np.random.default_rng(0)
    p = {k: v.astype(np.float64) for k, v in rnn_params(rng, 3, 6).items()}
    xs, y = (a.astype(np.float64) for a in rnn_data(rng, steps=7, batch=4, n_in=3))
    check_golden("scan_rnn_grad_array_api.py",
                 graphc.value_and_grad(rnn_loss, target=XP).source(p, xs, y))


# --- the transforms: NumPy code only, a clear error ----------------------------------------------
@pytest.mark.parametrize("name", ["jvp", "vjp", "vmap", "jacobian", "jacrev", "jacfwd", "hessian",
                                  "hvp"])
def test_transforms_refuse_array_api_target_clearly(name):
    from graphc.errors import OptionError
    with pytest.raises(OptionError, match="graphc.value_and_grad and graphc.export"):
        getattr(graphc, name)(np.sin, target=XP)
    with pytest.raises(OptionError, match="unknown target"):
        getattr(graphc, name)(np.sin, target="cuda")
    f = getattr(graphc, name)
    x = np.array([0.5, 1.0])
    if name in ("jacobian", "jacrev", "jacfwd"):
        np.testing.assert_allclose(f(np.sin, target="numpy")(x), np.diag(np.cos(x)))
