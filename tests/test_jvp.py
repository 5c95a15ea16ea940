"""Forward mode: every primitive's JVP rule, graphc.jvp and graphc.vjp.

Registry-driven like tests/test_primitives.py: for every differentiable
primitive and each of its samples (the record's ``samples=``), the JVP along a
random tangent is checked against central finite differences in float64, and
against the VJP: ``<u, J v>`` computed forward (``graphc.jvp``) and backward
(``graphc.vjp``) agree to 1e-10 for float64 samples; each rule is also proved
against SymPy on its record's proof sample.  Then graphc.jvp/vjp on whole
functions: readable code (golden files), composition with grad, errors, and
agreement with PyTorch's torch.func in float64 (lecture function, MLP, LeNet).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import graphc
from graphc.primitive import REGISTRY

from _fd import is_float_leaf, rel_err
from test_primitives import CASES, _param

F64 = np.float64


def _jvp_cases():
    out = []
    for name in sorted(CASES):
        prim = REGISTRY.get(name)
        if prim is None or not prim.differentiable:
            continue
        for i, case in enumerate(CASES[name]):
            if not case.grad or not any(is_float_leaf(a) for a in case.args):
                continue
            if np.asarray(case.ref(*case.args)).dtype.kind != "f":
                continue
            out.append(_param(name, i, case))
    return out


JVP_CASES = _jvp_cases()


def _low(*xs):
    return any(np.asarray(x).dtype == np.float32 for x in xs if not isinstance(x, float))


def _split(case):
    """``(positions of float args, apply(*floats))``: the other args stay fixed."""
    pos = [i for i, a in enumerate(case.args) if is_float_leaf(a)]
    prim = REGISTRY[case_name(case)]

    def apply(*floats):
        full = list(case.args)
        for i, v in zip(pos, floats):
            full[i] = v
        return prim(*full, **case.params)
    return pos, apply


def case_name(case):
    return case._name


def _direction(x, rng):
    if isinstance(x, float):
        return float(rng.standard_normal())
    x = np.asarray(x)
    return rng.standard_normal(x.shape).astype(x.dtype)


def _prepare(name, case):
    case._name = name
    pos, apply = _split(case)
    rng = np.random.default_rng([11, zlib.crc32(name.encode())])
    primals = tuple(case.args[i] for i in pos)
    tangents = tuple(_direction(x, rng) for x in primals)
    return pos, apply, primals, tangents, rng


def test_every_differentiable_primitive_has_a_jvp_rule():
    missing = sorted(n for n, p in REGISTRY.items() if p.differentiable and not callable(p.jvp))
    assert not missing, f"differentiable primitives without jvp= in their record: {missing}"


def test_every_differentiable_primitive_has_a_jvp_case():
    covered = {p.values[0] for p in JVP_CASES}
    want = {n for n, p in REGISTRY.items() if p.differentiable}
    assert want <= covered, f"without a JVP case: {sorted(want - covered)}"


@pytest.mark.parametrize("name, case", JVP_CASES)
def test_jvp_matches_finite_differences(name, case):
    pos, apply, primals, tangents, _ = _prepare(name, case)
    out, dot = graphc.jvp(apply, primals, tangents)
    want_out = np.asarray(case.ref(*case.args))
    dot = np.asarray(dot)
    assert dot.shape == want_out.shape and dot.dtype == want_out.dtype
    fd_ref = case.fd_ref or case.ref
    eps = 1e-6

    def at(s):
        full = list(case.args)
        for i, x, v in zip(pos, primals, tangents):
            full[i] = (np.asarray(x, F64) + s * np.asarray(v, F64)) if not isinstance(x, float) \
                else x + s * v
        return np.asarray(fd_ref(*full), F64)
    fd = (at(eps) - at(-eps)) / (2 * eps)
    low = _low(want_out, *case.args)
    rtol, atol = (1e-4, 1e-4) if low else (1e-6, 1e-8)
    np.testing.assert_allclose(dot, fd, rtol=rtol, atol=atol, err_msg=f"{name}: JVP vs FD")


@pytest.mark.parametrize("name, case", JVP_CASES)
def test_jvp_agrees_with_vjp(name, case):
    """<u, J v> forward and <J^T u, v> backward."""
    pos, apply, primals, tangents, rng = _prepare(name, case)
    out, dot = graphc.jvp(apply, primals, tangents)
    out_v, vjp_fn = graphc.vjp(apply, *primals)
    u = rng.standard_normal(np.shape(out)).astype(np.asarray(out).dtype)
    if isinstance(out_v, float):
        u = float(u)
    cts = vjp_fn(u)
    assert isinstance(cts, tuple) and len(cts) == len(primals)
    forward = float(np.sum(np.asarray(u, F64) * np.asarray(dot, F64)))
    backward = sum(float(np.sum(np.asarray(c, F64) * np.asarray(v, F64)))
                   for c, v in zip(cts, tangents))
    tol = 1e-4 if _low(out, *primals) else 1e-10
    scale = max(1.0, abs(forward), abs(backward))
    assert abs(forward - backward) <= tol * scale, (name, forward, backward)


# --- graphc.jvp / graphc.vjp on whole functions ------------------------------------------
from functions import lecture, lecture_grad_closed_form, mlp_loss, mlp_params  # noqa: E402


def _lecture_hessian(w1, w2, eps=1e-5):
    """The lecture function's Hessian, by central differences of its closed-form gradient."""
    cols = []
    for e in ((eps, 0.0), (0.0, eps)):
        gp = np.array(lecture_grad_closed_form(w1 + e[0], w2 + e[1]))
        gm = np.array(lecture_grad_closed_form(w1 - e[0], w2 - e[1]))
        cols.append((gp - gm) / (2 * eps))
    return np.stack(cols, axis=1)


def test_lecture_jvp_is_the_directional_derivative():
    g1, g2 = lecture_grad_closed_form(1.5, 0.5)
    for v in ((1.0, 0.0), (0.0, 1.0), (0.3, -2.0)):
        out, dot = graphc.jvp(lecture, (1.5, 0.5), v)
        assert float(out) == pytest.approx(float(lecture(1.5, 0.5)), rel=1e-15)
        assert float(dot) == pytest.approx(g1 * v[0] + g2 * v[1], rel=1e-12)


def test_lecture_jvp_source_interleaves_tangents():
    src = graphc.jvp(lecture).source((1.5, 0.5), (1.0, 0.0))
    assert "def lecture_jvp(w1, w2, dot_w1, dot_w2):" in src
    lines = [line.strip() for line in src.splitlines()]
    z1 = next(i for i, line in enumerate(lines) if line.startswith("z1 = "))
    assert lines[z1 + 1] == "# tangent of: z1 = w1 / w2"
    assert lines[z1 + 2].startswith("dot_z1 = ")
    for name in ("dot_z1", "dot_z2", "dot_z3", "dot_z4", "dot_z5"):
        assert any(line.startswith(name + " = ") for line in lines), name
    # each tangent block follows its forward line, in program order
    order = [line.split(" = ")[0] for line in lines if " = " in line and not line.startswith("#")]
    assert order.index("dot_z3") < order.index("z4") < order.index("dot_z4") < order.index("z5")


def test_golden_lecture_jvp(libm_agrees):
    from test_codegen import check_golden
    check_golden("lecture_jvp.py", graphc.jvp(lecture).source((1.5, 0.5), (1.0, 0.0)))


def test_golden_lecture_vjp():
    from test_codegen import check_golden
    _, vjp_fn = graphc.vjp(lecture, 1.5, 0.5)
    check_golden("lecture_vjp.py", vjp_fn.source())


def test_golden_lecture_hvp(libm_agrees):
    from test_codegen import check_golden
    g = graphc.grad(lecture, argnums=(0, 1))
    check_golden("lecture_hvp.py", graphc.jvp(g).source((1.5, 0.5), (1.0, 0.0)))


def test_hessian_vector_product_forward_over_reverse():
    H = _lecture_hessian(1.5, 0.5)
    g = graphc.grad(lecture, argnums=(0, 1))
    for v in ((1.0, 0.0), (0.0, 1.0), (0.7, -0.2)):
        (d1, d2), (h1, h2) = graphc.jvp(g, (1.5, 0.5), v)
        np.testing.assert_allclose([d1, d2], lecture_grad_closed_form(1.5, 0.5), rtol=1e-12)
        np.testing.assert_allclose([h1, h2], H @ np.array(v), rtol=1e-6)


def test_grad_of_a_function_that_calls_jvp():
    H = _lecture_hessian(1.5, 0.5)

    def directional(w1, w2):
        return graphc.jvp(lecture, (w1, w2), (1.0, 0.0))[1]
    d1, d2 = graphc.grad(directional, argnums=(0, 1))(1.5, 0.5)
    np.testing.assert_allclose([d1, d2], H[:, 0], rtol=1e-6)
    # and jvp of a function calling jvp: a second directional derivative
    _, second = graphc.jvp(directional, (1.5, 0.5), (1.0, 0.0))
    assert float(second) == pytest.approx(H[0, 0], rel=1e-6)


def test_no_perturbation_confusion():
    # d/dx [x * (d/dy (x + y) at y = x)] = d/dx x = 1: the inner tangent does not leak out
    def f(x):
        return x * graphc.jvp(lambda y: x + y, (x,), (1.0,))[1]
    _, dot = graphc.jvp(f, (2.0,), (1.0,))
    assert float(dot) == 1.0
    assert float(graphc.grad(f)(2.0)) == 1.0

    # a closure over the perturbed value stays constant
    def g(x):
        return graphc.jvp(lambda a: a * x, (x,), (1.0,))[1]
    assert float(graphc.grad(g)(3.0)) == 1.0


def test_jvp_with_writes_pytrees_and_several_outputs():
    def f(p, s):
        y = p["a"] * s
        y[0] = p["b"] ** 2
        return {"y": y, "t": (np.sin(s), 3)}
    rng = np.random.default_rng(0)
    p = {"a": rng.normal(size=3), "b": 0.7}
    dp = {"a": rng.normal(size=3), "b": -1.3}
    out, dot = graphc.jvp(f, (p, 2.0), (dp, 0.5))
    assert out["t"][1] == 3 and dot["t"][1] == 3
    want_y = dp["a"] * 2.0 + p["a"] * 0.5
    want_y[0] = 2 * 0.7 * -1.3
    np.testing.assert_allclose(dot["y"], want_y, rtol=1e-14)
    assert float(dot["t"][0]) == pytest.approx(np.cos(2.0) * 0.5, rel=1e-14)


def test_output_independent_of_the_input_has_a_zero_tangent():
    out, dot = graphc.jvp(lambda x, y: x * 2, (np.ones(3), np.ones(2)), (np.zeros(3), np.ones(2)))
    np.testing.assert_array_equal(dot, np.zeros(3))
    out, dot = graphc.jvp(lambda x: np.ones(4, np.float32), (np.ones(3),), (np.ones(3),))
    assert dot.dtype == np.float32 and not dot.any()
    out, dot = graphc.jvp(lambda x: x, (np.arange(3.0),), (np.ones(3),))
    np.testing.assert_array_equal(dot, np.ones(3))


def test_jvp_is_compiled_once_per_signature():
    calls = []

    def f(x):
        calls.append(1)
        return np.tanh(x) * 2
    for _ in range(3):
        graphc.jvp(f, (np.ones(4),), (np.ones(4),))
    jf = graphc.jvp(f)
    jf((np.zeros(4),), (np.ones(4),))
    assert len(calls) == 1
    assert isinstance(jf, graphc.Compiled) and "def f_jvp(x, dot_x):" in jf.source(
        (np.zeros(4),), (np.ones(4),))
    assert [jf.graph((np.zeros(4),), (np.ones(4),))[n].op
            for n in jf.graph((np.zeros(4),), (np.ones(4),)).inputs] == ["input", "input"]


def test_vjp_of_a_non_scalar_function():
    x = np.array([0.5, -1.0, 2.0])
    out, vjp_fn = graphc.vjp(lambda x: np.sin(x) * x, x)
    np.testing.assert_allclose(out, np.sin(x) * x)
    u = np.array([1.0, 2.0, -0.5])
    (dx,) = vjp_fn(u)
    np.testing.assert_allclose(dx, u * (np.cos(x) * x + np.sin(x)), rtol=1e-14)
    (dx2,) = vjp_fn(2 * u)
    np.testing.assert_allclose(dx2, 2 * dx, rtol=1e-14)
    assert "def lambda_vjp(x, d_out):" in vjp_fn.source()


def test_vjp_several_outputs_and_primals():
    def f(a, b):
        return {"p": a * b, "s": (a ** 2).sum()}
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    out, vjp_fn = graphc.vjp(f, a, b)
    ct = {"p": np.array([1.0, 0.5]), "s": np.float64(2.0)}
    da, db = vjp_fn(ct)
    np.testing.assert_allclose(da, ct["p"] * b + 2.0 * 2 * a)
    np.testing.assert_allclose(db, ct["p"] * a)


def test_vjp_fn_is_not_retraced_and_keeps_its_primals():
    calls = []

    def f(x):
        calls.append(1)
        return x * x
    x = np.array([1.0, 2.0])
    _, vjp_fn = graphc.vjp(f, x)
    x[:] = 10.0                          # the pullback was taken at the old point
    for k in range(3):
        np.testing.assert_allclose(vjp_fn(np.ones(2) * k)[0], 2 * np.array([1.0, 2.0]) * k)
    assert len(calls) == 2               # the forward once, the backward once


def test_vjp_inside_grad():
    def f(x):
        _, pull = graphc.vjp(np.sin, x)
        return pull(np.ones_like(x))[0].sum()     # sum(cos(x))
    x = np.array([0.3, 1.2])
    np.testing.assert_allclose(graphc.grad(f)(x), -np.sin(x), rtol=1e-14)


# --- errors name the user's line ----------------------------------------------------------
def test_errors():
    f = lecture
    with pytest.raises(graphc.SignatureError, match="primals must be a tuple") as e:
        graphc.jvp(f, 1.5, 1.0)
    assert "test_jvp.py" in str(e.value)
    with pytest.raises(graphc.SignatureError, match="tangents must be a tuple like the primals"):
        graphc.jvp(f, (1.5, 0.5), (1.0,))
    with pytest.raises(graphc.SignatureError, match=r"the tangent of x is f64\[2\], but the "
                                                     r"primal is f64\[3\]") as e:
        graphc.jvp(np.sin, (np.ones(3),), (np.ones(2),))
    assert "test_jvp.py" in str(e.value)
    with pytest.raises(graphc.SignatureError, match=r"f32\[3\], but the primal is f64\[3\]"):
        graphc.jvp(np.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(graphc.SignatureError, match="structure"):
        graphc.jvp(lambda p: p["a"], ({"a": 1.0},), ({"b": 1.0},))
    with pytest.raises(graphc.GradError, match="integer or boolean dtype"):
        graphc.jvp(lambda i: i * 2.0, (np.arange(3),), (np.arange(3),))
    with pytest.raises(graphc.GradError, match="static value"):
        graphc.jvp(lambda x, n: x * n, (1.0, 3), (1.0, 0))
    with pytest.raises(graphc.SignatureError, match="cannot be called with 3 primals") as e:
        graphc.jvp(f, (1.0, 2.0, 3.0), (1.0, 2.0, 3.0))
    assert "test_jvp.py" in str(e.value)
    with pytest.raises(graphc.SignatureError, match="both primals and tangents .or neither., got function and 1"):
        graphc.jvp(f, (1.0, 2.0))
    _, vjp_fn = graphc.vjp(np.sin, np.ones(3))
    with pytest.raises(graphc.SignatureError, match=r"cotangent of the output is f64\[2\]") as e:
        vjp_fn(np.ones(2))
    assert "test_jvp.py" in str(e.value)
    with pytest.raises(graphc.GradError, match="integer or boolean"):
        graphc.vjp(lambda i: i * 2.0, np.arange(3))


# --- against PyTorch's torch.func, in float64 -----------------------------------------------
def _torch():
    return pytest.importorskip("torch")


def _lecture_torch(torch):
    def f(w1, w2):
        z1 = w1 / w2
        z2 = torch.sin(2 * np.pi * z1)
        z3 = torch.exp(2 * w2)
        z4 = 3 * z1 - z3
        return z4 * (z2 + z4)
    return f


def test_lecture_against_torch_func():
    torch = _torch()
    tf = _lecture_torch(torch)
    w = (torch.tensor(1.5, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    v = (torch.tensor(0.3, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64))
    t_out, t_dot = torch.func.jvp(tf, w, v)
    out, dot = graphc.jvp(lecture, (1.5, 0.5), (0.3, -2.0))
    assert float(out) == pytest.approx(t_out.item(), rel=1e-14)
    assert float(dot) == pytest.approx(t_dot.item(), rel=1e-13)
    # vjp with a cotangent
    _, t_pull = torch.func.vjp(tf, *w)
    t_cts = t_pull(torch.tensor(-0.7, dtype=torch.float64))
    _, pull = graphc.vjp(lecture, 1.5, 0.5)
    np.testing.assert_allclose(pull(np.float64(-0.7)), [c.item() for c in t_cts], rtol=1e-13)
    # Hessian-vector product: forward over reverse
    _, t_hvp = torch.func.jvp(torch.func.grad(tf, argnums=(0, 1)), w, v)
    _, hvp = graphc.jvp(graphc.grad(lecture, argnums=(0, 1)), (1.5, 0.5), (0.3, -2.0))
    np.testing.assert_allclose(hvp, [h.item() for h in t_hvp], rtol=1e-12)


def _mlp_setup():
    rng = np.random.default_rng(3)
    params = mlp_params(rng)
    x = rng.normal(size=(6, 5))
    y = rng.integers(0, 2, size=6)
    dp = {k: rng.normal(size=v.shape) for k, v in params.items()}
    return params, x, y, dp


def _mlp_torch(torch, x, y):
    X, Y = torch.tensor(x), torch.tensor(y)

    def logits(p):
        h = torch.tanh(X @ p["W1"] + p["b1"])
        h2 = torch.clamp(h @ p["W2"] + p["b2"], min=0)
        return h2 @ p["W3"] + p["b3"]

    def loss(p):
        logp = torch.log_softmax(logits(p), dim=1)
        return -logp[torch.arange(X.shape[0]), Y].mean()
    return logits, loss


def _mlp_logits(p, x):
    h = np.tanh(x @ p["W1"] + p["b1"])
    h2 = np.maximum(0, h @ p["W2"] + p["b2"])
    return h2 @ p["W3"] + p["b3"]


def test_mlp_against_torch_func():
    torch = _torch()
    params, x, y, dp = _mlp_setup()
    t_logits, t_loss = _mlp_torch(torch, x, y)
    tp = {k: torch.tensor(v) for k, v in params.items()}
    tdp = {k: torch.tensor(v) for k, v in dp.items()}

    def loss(p):
        return mlp_loss(p, x, y)
    # jvp of the loss
    t_out, t_dot = torch.func.jvp(t_loss, (tp,), (tdp,))
    out, dot = graphc.jvp(loss, (params,), (dp,))
    assert float(out) == pytest.approx(t_out.item(), rel=1e-13)
    assert float(dot) == pytest.approx(t_dot.item(), rel=1e-11)
    # jvp and vjp of the (non-scalar) logits
    t_lo, t_dlo = torch.func.jvp(t_logits, (tp,), (tdp,))
    lo, dlo = graphc.jvp(lambda p: _mlp_logits(p, x), (params,), (dp,))
    np.testing.assert_allclose(lo, t_lo.numpy(), rtol=1e-13)
    np.testing.assert_allclose(dlo, t_dlo.numpy(), rtol=1e-11, atol=1e-13)
    u = np.random.default_rng(4).normal(size=lo.shape)
    _, t_pull = torch.func.vjp(t_logits, tp)
    (t_ct,) = t_pull(torch.tensor(u))
    _, pull = graphc.vjp(lambda p: _mlp_logits(p, x), params)
    (ct,) = pull(u)
    for k in params:
        np.testing.assert_allclose(ct[k], t_ct[k].numpy(), rtol=1e-11, atol=1e-13, err_msg=k)
    # Hessian-vector product of the loss: jvp(grad(loss))
    _, t_hvp = torch.func.jvp(torch.func.grad(t_loss), (tp,), (tdp,))
    _, hvp = graphc.jvp(graphc.grad(loss), (params,), (dp,))
    for k in params:
        np.testing.assert_allclose(hvp[k], t_hvp[k].numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    # grad of a function that calls jvp (reverse over forward): the same HVP
    g = graphc.grad(lambda p: graphc.jvp(loss, (p,), (dp,))[1])(params)
    for k in params:
        np.testing.assert_allclose(g[k], t_hvp[k].numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


def test_conv_net_jvp_matches_finite_differences():
    from graphc import nn
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 1, 8, 8))
    labels = np.array([1, 3])

    def f(w, b, W):
        h = nn.max_pool2d(nn.relu(nn.conv2d(x, w, b, padding=1)), 2)
        h = h.reshape(2, -1)[:, :27].copy()
        h[0, 1:3] = 0.0
        return nn.cross_entropy(h @ W, labels)
    prim = (rng.normal(size=(3, 1, 3, 3)) * 0.3, rng.normal(size=3) * 0.1,
            rng.normal(size=(27, 4)) * 0.2)
    tan = tuple(rng.normal(size=p.shape) for p in prim)
    out, dot = graphc.jvp(f, prim, tan)
    eps = 1e-6
    fd = (f(*[p + eps * t for p, t in zip(prim, tan)])
          - f(*[p - eps * t for p, t in zip(prim, tan)])) / (2 * eps)
    assert float(out) == pytest.approx(float(f(*prim)), rel=1e-14)
    assert rel_err(dot, fd) < 1e-8
    g = graphc.jvp(f).graph(prim, tan)
    assert any(g[n].section == "tangent" for n in g)
    assert g.cost().forward_flops > 0 and "dot_W" in str(g)


def test_public_api_has_examples():
    for fn in (graphc.jvp, graphc.vjp):
        assert "Examples" in fn.__doc__ and ">>>" in fn.__doc__
    assert "jvp" in graphc.__all__ and "vjp" in graphc.__all__


def test_jvp_inside_a_trace_keeps_nothing_alive():
    import gc
    import weakref
    refs = []

    def f(x):
        inner = lambda y: x * y           # noqa: E731  closes over the traced x
        refs.append(weakref.ref(inner))
        return graphc.jvp(inner, (x,), (np.ones_like(x),))[1].sum()
    assert np.allclose(graphc.grad(f)(np.arange(3.0)), np.ones(3))
    gc.collect()
    assert refs and refs[0]() is None


def _lenet():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "lenet.py"
    spec = importlib.util.spec_from_file_location("_lenet_for_jvp", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lenet_torch(torch):
    F = torch.nn.functional

    def logits(p, x):
        h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1"]["w"], p["conv1"]["b"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2"]["w"], p["conv2"]["b"], padding=1)), 2)
        h = F.relu(h.flatten(1) @ p["fc1"]["w"] + p["fc1"]["b"])
        return h @ p["fc2"]["w"] + p["fc2"]["b"]
    return logits


def test_lenet_against_torch_func():
    torch = _torch()
    lenet = _lenet()
    rng = np.random.default_rng(5)
    params = lenet.init_params(rng)
    params = {k: {n: v + 0.05 * rng.normal(size=v.shape) for n, v in layer.items()}
              for k, layer in params.items()}
    x, y = rng.random((4, 1, 8, 8)), np.array([0, 3, 7, 9])
    dp = {k: {n: rng.normal(size=v.shape) for n, v in layer.items()} for k, layer in params.items()}

    def T(tree):
        return {k: {n: torch.tensor(v) for n, v in layer.items()} for k, layer in tree.items()}
    t_logits = _lenet_torch(torch)
    X, Y = torch.tensor(x), torch.tensor(y)

    def t_loss(p):
        return torch.nn.functional.cross_entropy(t_logits(p, X), Y)

    def loss(p):
        return lenet.loss(p, x, y)

    def close(a, b, rtol):
        for k in a:
            for n in a[k]:
                np.testing.assert_allclose(a[k][n], b[k][n].numpy(), rtol=rtol, atol=1e-12,
                                           err_msg=f"{k}.{n}")
    # forward mode through conv, relu, max-pool and cross-entropy
    t_out, t_dot = torch.func.jvp(t_loss, (T(params),), (T(dp),))
    out, dot = graphc.jvp(loss, (params,), (dp,))
    assert float(out) == pytest.approx(t_out.item(), rel=1e-12)
    assert float(dot) == pytest.approx(t_dot.item(), rel=1e-10)
    # vjp of the (4, 10) scores with a cotangent
    u = rng.normal(size=(4, 10))
    _, t_pull = torch.func.vjp(lambda p: t_logits(p, X), T(params))
    (t_ct,) = t_pull(torch.tensor(u))
    _, pull = graphc.vjp(lambda p: lenet.logits(p, x), params)
    close(pull(u)[0], t_ct, 1e-10)
    # Hessian-vector product, forward over reverse
    _, t_hvp = torch.func.jvp(torch.func.grad(t_loss), (T(params),), (T(dp),))
    _, hvp = graphc.jvp(graphc.grad(loss), (params,), (dp,))
    close(hvp, t_hvp, 1e-9)


def test_source_with_spec_placeholders():
    S = graphc.Spec((3,), "float32")
    src = graphc.jvp(np.tanh).source((S,), (S,))
    assert "def tanh_jvp(x, dot_x):" in src and "dot_tanh = " in src
    with pytest.raises(graphc.SignatureError, match="Spec placeholder"):
        graphc.jvp(np.tanh)((S,), (S,))


@pytest.mark.parametrize("fn, x", [
    (lambda x: np.maximum(x, x[::-1]), np.array([1.0, 2.0, 2.0, 1.0])),       # ties
    (lambda x: x.max(axis=1), np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])),  # shared maxima
    (lambda x: graphc.nn.relu(x), np.array([-1.0, 0.0, 2.0])),               # the kink
    (lambda x: np.abs(x) + np.sqrt(np.maximum(x, 0.0) + 1), np.array([0.0, -0.0, 1.0])),
    (lambda x: np.where(x > 1, x ** 2, -x), np.array([0.5, 1.0, 3.0])),
])
def test_conventions_at_kinks_agree_with_the_vjp(fn, x):
    """At ties and kinks the JVP takes the same one-sided convention as the VJP."""
    rng = np.random.default_rng(1)
    v = rng.normal(size=x.shape)
    out, dot = graphc.jvp(fn, (x,), (v,))
    _, pull = graphc.vjp(fn, x)
    u = rng.normal(size=np.shape(out))
    assert float(np.sum(u * dot)) == pytest.approx(float(np.sum(pull(u)[0] * v)), rel=1e-14)


def test_setitem_with_repeated_indices_last_write_wins():
    def f(x, v):
        y = x * 1.0
        y[np.array([0, 2, 0])] = v
        return y
    x, v = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])
    dx, dv = np.array([1.0, 1.0, 1.0]), np.array([0.1, 0.2, 0.3])
    out, dot = graphc.jvp(f, (x, v), (dx, dv))
    np.testing.assert_array_equal(out, [30.0, 2.0, 20.0])
    np.testing.assert_allclose(dot, [0.3, 1.0, 0.2])


def test_has_aux():
    def f(x):
        y = np.sin(x)
        return y * 2, {"y": y, "n": 3}
    x = np.array([0.1, 0.2])
    out, dot, aux = graphc.jvp(f, (x,), (np.ones(2),), has_aux=True)
    np.testing.assert_allclose(dot, 2 * np.cos(x))
    np.testing.assert_allclose(aux["y"], np.sin(x))
    assert aux["n"] == 3
    out, pull, aux = graphc.vjp(f, x, has_aux=True)
    np.testing.assert_allclose(pull(np.ones(2))[0], 2 * np.cos(x))
    np.testing.assert_allclose(aux["y"], np.sin(x))
    # inside grad too
    g = graphc.grad(lambda x: graphc.jvp(f, (x,), (np.ones(2),), has_aux=True)[1].sum())(x)
    np.testing.assert_allclose(g, -2 * np.sin(x))
    with pytest.raises(graphc.GradError, match="has_aux=True the function must return"):
        graphc.jvp(np.sin, (x,), (x,), has_aux=True)
    with pytest.raises(graphc.GradError, match="has_aux=True the function must return"):
        graphc.vjp(np.sin, x, has_aux=True)


# --- SymPy proofs of the JVP rules ----------------------------------------------------------
def _jvp_rule_proof(name, case):
    """Verdicts, one per output element: the JVP graph on SymPy symbols equals
    ``sum_j d out / d x_j * t_j`` of the primitive's own output expression."""
    from graphc.symbolic import equal, evaluate, symbols_like
    case._name = name
    pos, apply = _split(case)
    primals = tuple(case.args[i] for i in pos)
    graph = graphc.jvp(apply).graph(primals, primals)
    n = len(primals)
    env, xs, ts = {}, [], []
    for k, (nid, a) in enumerate(zip(graph.inputs, primals + primals)):
        arr = np.asarray(a)
        sym = symbols_like(f"{'x' if k < n else 't'}{k % n}", arr.shape,
                           positive=bool(np.all(arr > 0)) and k < n)
        env[nid] = sym
        (xs if k < n else ts).append(np.asarray(sym, dtype=object))
    vals = evaluate(graph, env)
    out = np.asarray(vals[graph.outputs[0]], dtype=object)
    dot = np.asarray(vals[graph.outputs[1]], dtype=object)
    verdicts = []
    for idx in np.ndindex(*out.shape) if out.shape else [()]:
        o = out[idx] if out.shape else out.item()
        want = sum(sp_diff(o, x) * t for X, T in zip(xs, ts)
                   for x, t in zip(X.ravel(), T.ravel()))
        got = dot[idx] if dot.shape else dot.item()
        verdicts.append(equal(want, got, [], positive=False))
    return verdicts


def sp_diff(expr, sym):
    import sympy as sp
    return sp.diff(expr, sym)


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items()
                                        if p.differentiable and n not in ("stop_gradient", "custom_vjp_call")))
def test_jvp_rule_proof(name):
    from test_symbolic import _proof_case
    case = _proof_case(name)
    verdicts = _jvp_rule_proof(name, case)
    bad = [v for v in verdicts if not v.equal]
    assert verdicts and not bad, f"{name}: {len(bad)} of {len(verdicts)} elements differ ({bad[0]})"


def test_a_broken_jvp_rule_is_caught(monkeypatch):
    import dataclasses
    from graphc.ops._samples import Sample
    sin = REGISTRY["sin"]
    broken = dataclasses.replace(sin, jvp=lambda t, x, *, out: -(t[0] * graphc.ops.elementwise.cos(x)))
    monkeypatch.setitem(REGISTRY, "sin", broken)
    verdicts = _jvp_rule_proof("sin", Sample((np.array([0.3, 1.1]),), {}, np.sin))
    assert verdicts and not any(v.equal for v in verdicts)


@pytest.mark.parametrize("transform", ["jvp", "vjp"])
@pytest.mark.parametrize("to_number", [float, lambda v: v.item()], ids=["float", "item"])
def test_a_python_number_of_a_differentiated_value_is_refused(transform, to_number):
    """As under grad: float(x.sum()) would cut the derivative (jvp gave 1.4 for 2.8)."""
    def f(x):
        return np.sum(x) * to_number(np.sum(x))
    x = np.array([0.3, 0.4])
    with pytest.raises(graphc.ControlFlowError, match="would cut the gradient") as e:
        if transform == "jvp":
            graphc.jvp(f, (x,), (np.ones(2),))
        else:
            graphc.vjp(f, x)[1](1.0)        # (the backward pass is traced at the first call)
    assert "test_jvp.py:" in str(e.value)
    # a number of what the differentiated input does not reach stays a number
    g = lambda x: np.sum(x) * float(x.shape[0])                  # noqa: E731
    assert graphc.jvp(g, (x,), (np.ones(2),))[1] == 4.0
    assert graphc.vjp(g, x)[1](1.0)[0].tolist() == [2.0, 2.0]


_NP_FNS = {
    "grad(grad(np.sin))": (lambda: graphc.grad(graphc.grad(np.sin))(0.3), -np.sin(0.3)),
    "hessian(np.tanh)": (lambda: graphc.hessian(np.tanh)(0.3),
                         -2 * np.tanh(0.3) / np.cosh(0.3) ** 2),
    "vmap(grad(np.sin))": (lambda: graphc.vmap(graphc.grad(np.sin))(np.array([0.3, 0.5])),
                           np.cos([0.3, 0.5])),
    "jacfwd(grad(np.sin))": (lambda: graphc.jacfwd(graphc.grad(np.sin))(0.3), -np.sin(0.3)),
    "jacrev(jacrev(np.sin))": (lambda: graphc.jacrev(graphc.jacrev(np.sin))(np.array([0.3, 0.5])),
                               np.einsum("ij,jk->ijk", np.eye(2), np.diag(-np.sin([0.3, 0.5])))),
    "grad(np.sum)": (lambda: graphc.grad(np.sum)(np.array([0.3, 0.5])), np.ones(2)),
    "hessian(np.sum)": (lambda: graphc.hessian(np.sum)(np.array([0.3, 0.5])), np.zeros((2, 2))),
    "grad(np.mean)": (lambda: graphc.grad(np.mean)(np.array([0.3, 0.5])), np.full(2, 0.5)),
}


@pytest.mark.parametrize("name", sorted(_NP_FNS))
def test_transforms_of_numpy_functions_compose(name):
    """A transform of a NumPy function itself (no lambda): a ufunc's signature lists dtype=,
    signature=... that NumPy refuses when passed back together, and np.sum's keepdims= is
    NumPy's "not given" marker; both were passed on by the outer transform."""
    call, want = _NP_FNS[name]
    np.testing.assert_allclose(call(), want, rtol=1e-12, atol=1e-15)
