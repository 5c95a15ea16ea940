"""target="numba": fused elementwise loops agree with the NumPy target, and read as loops."""
import random
import sys

import numpy as np
import pytest

import graphc
from functions import lecture, mlp_loss, mlp_params
from test_codegen import check_golden

numba = pytest.importorskip("numba")

from benchmarks import workloads as W  # noqa: E402


def _close(a, b, rtol):
    la, lb = graphc.pytree.flatten(a)[0], graphc.pytree.flatten(b)[0]
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape and u.dtype == v.dtype
        scale = max(float(np.max(np.abs(v))), 1e-30) if v.size else 1.0
        np.testing.assert_allclose(u, v, rtol=rtol, atol=rtol * scale)


def _f64(tree):
    return {k: v.astype(np.float64) for k, v in tree.items()}


def test_w3_value_and_grad_matches_numpy_target():
    rng = np.random.default_rng(0)
    p, (x, y) = W.sig_params(rng), W.sig_data(rng)
    fused = graphc.value_and_grad(W.sig_loss_np, target="numba")
    plain = graphc.value_and_grad(W.sig_loss_np)
    _close(fused(p, x, y), plain(p, x, y), 1e-5)
    p64, x64, y64 = _f64(p), x.astype(np.float64), y.astype(np.float64)
    _close(fused(p64, x64, y64), plain(p64, x64, y64), 1e-12)
    src = fused.source(p, x, y)
    assert src.count("@numba.njit(cache=False, fastmath=False") == 1    # the whole net: one loop
    check_golden("w3_value_and_grad_numba.py", src)


def test_w2_mlp_value_and_grad_matches_numpy_target():
    rng = np.random.default_rng(1)
    p, (x, y) = W.mlp_params(rng), W.mlp_data(rng, n=32)
    fused = graphc.value_and_grad(W.mlp_loss_np, target="numba")
    _close(fused(p, x, y), graphc.value_and_grad(W.mlp_loss_np)(p, x, y), 1e-5)
    src = fused.source(p, x, y)
    # bias + ReLU in place on the GEMM result (only the kernel reads it)
    assert "    fused_h1(matmul, b1, h1)  " in src and "    add = matmul\n" in src
    # the ReLU mask and the bias gradient (column sum) in one pass
    assert "fused_d_b1(d_h1, add, d_add, d_b1)" in src


def test_small_mlp_golden_and_float64():
    rng = np.random.default_rng(0)
    params = mlp_params(rng, dtype=np.float64)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 2, size=6)
    fused = graphc.value_and_grad(mlp_loss, target="numba")
    _close(fused(params, x, y), graphc.value_and_grad(mlp_loss)(params, x, y), 1e-12)
    check_golden("mlp_value_and_grad_numba.py", fused.source(params, x, y))


def test_lecture_on_arrays():
    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=16), rng.uniform(0.5, 2.0, size=16)
    fused = graphc.compile(lecture, target="numba")
    _close(fused(w1, w2), graphc.compile(lecture)(w1, w2), 1e-12)
    loss = lambda a, b: np.sum(lecture(a, b))  # noqa: E731
    g = graphc.grad(loss, argnums=(0, 1), target="numba")
    _close(g(w1, w2), graphc.grad(loss, argnums=(0, 1))(w1, w2), 1e-12)
    src = fused.source(w1, w2)
    kernel = src[src.index("@numba.njit"):]
    assert "    for i in range(" in kernel and "z4 = " in kernel
    assert "# fuses test" not in kernel and "z1 = w1 / w2" in kernel   # the source lines


def _sample_cases():
    from graphc.numba_fuse import scalar_form
    from graphc.ops._samples import Draw
    from graphc.primitive import REGISTRY
    names = sorted(n for n, p in REGISTRY.items() if p.elementwise and p.samples
                   and scalar_form(n) is not None)
    picked = random.Random(18).sample(names, 14)
    out = []
    for name in picked:
        samples = REGISTRY[name].samples(Draw(np.random.default_rng(0)))
        usable = [s for s in samples if any(isinstance(a, np.ndarray) and a.size > 1
                                            and a.dtype.kind == "f" for a in s.args)]
        if usable:
            out.append(pytest.param(name, usable[0], id=f"{name}-{usable[0].desc}"))
    return out


@pytest.mark.parametrize("name, sample", _sample_cases())
def test_elementwise_primitives_fused(name, sample):
    from graphc.primitive import REGISTRY
    prim = REGISTRY[name]
    first = next(i for i, a in enumerate(sample.args)
                 if isinstance(a, np.ndarray) and a.size > 1 and a.dtype.kind == "f")

    def f(*args):
        args = list(args)
        args[first] = args[first] + args[first]        # a chain of two: add, then the op
        return prim(*args, **sample.params)
    fused, plain = graphc.compile(f, target="numba"), graphc.compile(f)
    with np.errstate(all="ignore"):
        want = plain(*sample.args)
        got = fused(*sample.args)
    rtol = 1e-5 if np.asarray(want).dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0, equal_nan=True)
    assert np.asarray(got).dtype == np.asarray(want).dtype


def test_missing_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(graphc.OptionError, match="pip install numba"):
        graphc.compile(lecture, target="numba")


def test_unknown_target_names_numba():
    with pytest.raises(graphc.OptionError, match="'numba'"):
        graphc.compile(lecture, target="numbaa")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_broadcasts_scalars_and_views(dtype):
    def f(x, s, c, lr):
        return np.tanh(x * s + c) * lr - np.exp(x.T).T
    rng = np.random.default_rng(3)
    x, c = rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=(5, 1)).astype(dtype)
    fused, plain = graphc.compile(f, target="numba"), graphc.compile(f)
    for s in (dtype(1.5), np.array(2.0, dtype)):         # a NumPy scalar, a 0-d array
        got, want = fused(x, s, c, 0.1), plain(x, s, c, 0.1)
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    src = fused.source(x, dtype(1.5), c, 0.1)
    assert "c[i, 0]" in src and "s[()]" in src
    if dtype == np.float32:
        assert "np.float32(lr)" in src        # a Python float meets float32 as float32


def _branchy(x):
    y = np.exp(x) * 2.0 + 1.0
    if y.sum() > 10:                       # a guard: one module per path taken
        return np.tanh(y) * 3.0 - 1.0
    return y * y + 2.0


def _looped(x):
    return graphc.fori_loop(0, 3, lambda i, c: np.tanh(c) * 0.5 + c, np.exp(x) + 1.0) * 2.0 - 1.0


@pytest.mark.parametrize("fn", [_branchy, _looped])
def test_guards_loops_and_export(fn, tmp_path):
    import importlib.util
    rng = np.random.default_rng(4)
    for x in (rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) - 3):
        _close(graphc.compile(fn, target="numba")(x), graphc.compile(fn)(x), 1e-12)
        loss = lambda x: fn(x).sum()  # noqa: E731
        _close(graphc.grad(loss, target="numba")(x), graphc.grad(loss)(x), 1e-12)
    path = graphc.export(graphc.compile(fn, target="numba"), x, path=tmp_path / "m.py")
    spec = importlib.util.spec_from_file_location("numba_exported", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _close(getattr(mod, fn.__name__.lstrip("_"))(x), graphc.compile(fn)(x), 1e-12)
