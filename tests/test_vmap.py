"""graphc.vmap: batching rules checked against a Python loop for every primitive that
has one (registry-driven, from the records' samples), per-example gradients of an MLP
(against a loop of graphc.grad and torch.func), composition with grad and jvp, in_axes
and out_axes, the generated code (golden), and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.primitive import REGISTRY

from test_primitives import CASES, _param
from test_codegen import check_golden
from vmap_functions import mlp_loss, mlp_setup

FACTORS = (1.0, 0.97, 1.03)


def _stack(a, axis):
    """Three examples from one sample value: floats scaled (domains keep), others copied."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        items = [(a * f).astype(a.dtype) for f in FACTORS]
    else:
        items = [a.copy() for _ in FACTORS]
    return np.stack(items, axis=axis)


def _batchable(x):
    return isinstance(x, np.ndarray)


def _modes(case):
    arrays = [i for i, a in enumerate(case.args) if _batchable(a)]
    if not arrays:
        return []
    modes = ["all"]
    if len(arrays) > 1:
        modes.append("first")
    if all(np.ndim(case.args[i]) >= 1 for i in arrays):
        modes.append("last")
    return modes


def _batch_cases():
    out = []
    for name in sorted(CASES):
        prim = REGISTRY[name]
        if prim.batch is None:
            continue
        for i, case in enumerate(CASES[name]):
            for mode in _modes(case):
                if name == "logaddexp_weight" and mode == "first":
                    continue      # refused: x only breaks ties (test below)
                p = _param(name, i, case)
                out.append(pytest.param(name, case, mode, id=f"{p.id}-{mode}"))
    return out


BATCH_CASES = _batch_cases()


def _in_axes(case, mode):
    axes, first = [], True
    for a in case.args:
        if not _batchable(a) or mode == "first" and not first:
            axes.append(None)
        else:
            axes.append(np.ndim(a) if mode == "last" else 0)
        first = first and not _batchable(a)
    return tuple(axes)


@pytest.mark.parametrize("name,case,mode", BATCH_CASES)
def test_vmap_matches_a_python_loop(name, case, mode):
    prim = REGISTRY[name]
    axes = _in_axes(case, mode)
    args = [a if ax is None else _stack(a, ax) for a, ax in zip(case.args, axes)]

    def f(*xs):
        return prim(*xs, **case.params)

    got = np.asarray(graphc.vmap(f, in_axes=axes)(*args))
    want = np.stack([np.asarray(prim(*[a if ax is None else np.take(a, k, axis=ax)
                                       for a, ax in zip(args, axes)], **case.params))
                     for k in range(len(FACTORS))])
    assert got.shape == want.shape and got.dtype == want.dtype
    low = any(np.asarray(a).dtype == np.float32 for a in case.args if _batchable(a))
    tol = 1e-5 if low else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)


def test_logaddexp_weight_with_only_x_batched_is_refused():
    prim = REGISTRY["logaddexp_weight"]
    x, y = np.ones((3, 4)), np.zeros(4)
    with pytest.raises(graphc.UnsupportedError, match="logaddexp_weight"):
        graphc.vmap(lambda x, y, lae: prim(x, y, lae, base2=False),
                    in_axes=(0, None, None))(x, y, np.logaddexp(x[0], y))


# Differentiable primitives without a batching rule yet: this set may only shrink.
NO_RULE_YET: set = set()


def test_primitives_without_a_batching_rule_only_shrink():
    missing = {name for name, p in REGISTRY.items() if p.differentiable and p.batch is None}
    assert missing <= NO_RULE_YET, f"new differentiable primitives without batch=: " \
                                   f"{sorted(missing - NO_RULE_YET)}"
    without = sorted(name for name, p in REGISTRY.items() if p.batch is None)
    assert without == ["bernoulli", "guard"], without      # both refused inside vmap


# --- an MLP: per-example gradients ----------------------------------------------------------
def test_per_example_gradients_match_a_loop_of_grad():
    params, X, Y = mlp_setup()
    got = graphc.vmap(graphc.grad(mlp_loss), in_axes=(None, 0, 0))(params, X, Y)
    loop = [graphc.grad(mlp_loss)(params, x, y) for x, y in zip(X, Y)]
    for k in range(4):
        assert got[k].shape == (6,) + params[k].shape
        np.testing.assert_allclose(got[k], np.stack([g[k] for g in loop]), rtol=1e-12,
                                   atol=1e-14)


def test_per_example_gradients_match_torch_func():
    torch = pytest.importorskip("torch")
    params, X, Y = mlp_setup()

    def tloss(p, x, y):
        W1, b1, W2, b2 = p
        logits = torch.tanh(x @ W1 + b1) @ W2 + b2
        return -(torch.log_softmax(logits, dim=0) * y).sum()     # y one-hot

    tp = tuple(torch.tensor(p) for p in params)
    want = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))(
        tp, torch.tensor(X), torch.tensor(np.eye(3)[Y]))
    got = graphc.vmap(graphc.grad(mlp_loss), in_axes=(None, 0, 0))(params, X, Y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-12, atol=1e-14)


def test_grad_of_vmap_of_a_sum():
    params, X, Y = mlp_setup()

    def total(params):
        return graphc.vmap(mlp_loss, in_axes=(None, 0, 0))(params, X, Y).sum()

    def loop(params):
        return sum(mlp_loss(params, x, y) for x, y in zip(X, Y))

    got = graphc.grad(total)(params)
    want = graphc.grad(loop)(params)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_jvp_of_vmap():
    W = np.array([[1.0, 2.0], [0.5, -1.0]])
    xs = np.arange(6.0).reshape(3, 2) / 5

    def f(W, x):
        return np.sin(W @ x)

    out, dot = graphc.jvp(lambda W: graphc.vmap(f, in_axes=(None, 0))(W, xs), (W,),
                          (np.ones_like(W),))
    np.testing.assert_allclose(out, np.sin(xs @ W.T), rtol=1e-14)
    np.testing.assert_allclose(dot, np.cos(xs @ W.T) * xs.sum(axis=1)[:, None], rtol=1e-13)


def test_vmap_of_vmap_and_closures():
    A = np.arange(12.0).reshape(3, 4)
    scale = np.array([1.0, 2.0, 3.0, 4.0])

    def f(x):               # one element; `scale` is closed over
        return x * x + 1.0

    outer = graphc.vmap(graphc.vmap(f))
    np.testing.assert_array_equal(outer(A), A * A + 1.0)
    got = graphc.vmap(lambda row: (row * scale).sum())(A)
    np.testing.assert_allclose(got, A @ scale)


# --- in_axes / out_axes -------------------------------------------------------------------
def test_in_axes_and_out_axes():
    xs = np.random.default_rng(1).standard_normal((4, 3))       # batch on axis 1
    W = np.random.default_rng(2).standard_normal((2, 4))
    f = graphc.vmap(lambda W, x: W @ x, in_axes=(None, 1), out_axes=1)
    np.testing.assert_allclose(f(W, xs), W @ xs, rtol=1e-14)
    g = graphc.vmap(lambda p: {"a": p["x"] * 2, "b": p["x"].sum()},
                    in_axes=({"x": 0},), out_axes={"a": 1, "b": 0})
    out = g({"x": xs})
    np.testing.assert_allclose(out["a"], (xs * 2).T)
    np.testing.assert_allclose(out["b"], xs.sum(axis=1))


def test_unbatched_output_is_broadcast_and_out_axes_none():
    xs = np.ones((3, 2))
    out = graphc.vmap(lambda x, c: (x + c, c * 2.0), in_axes=(0, None))(xs, np.array(5.0))
    np.testing.assert_allclose(out[0], np.full((3, 2), 6.0))
    np.testing.assert_allclose(out[1], np.full(3, 10.0))
    keep = graphc.vmap(lambda x, c: c * 2.0, in_axes=(0, None), out_axes=None)
    assert float(keep(xs, np.array(5.0))) == 10.0


# --- generated code ---------------------------------------------------------------------
def test_generated_code_is_numpy_over_the_batch_axis():
    W = np.ones((3, 2))
    src = graphc.vmap(lambda W, x: np.tanh(W @ x), in_axes=(None, 0)).source(W, np.ones((5, 2)))
    assert "x @ W.T" in src and "for " not in src.split("_SIGNATURE")[0]


def test_golden_vmap_of_grad():
    check_golden("vmap_grad_mlp.py",
                 graphc.vmap(graphc.grad(mlp_loss), in_axes=(None, 0, 0)).source(*mlp_setup(4)))


# --- errors -------------------------------------------------------------------------------
def test_if_on_a_batched_value_is_a_control_flow_error():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(graphc.ControlFlowError, match="np.where") as e:
        graphc.vmap(f)(np.ones((3, 2)))
    assert "test_vmap.py" in str(e.value)


def test_a_primitive_without_a_rule_names_it_and_the_line():
    prim = REGISTRY["cumsum"]
    rule = prim.batch
    object.__setattr__(prim, "batch", None)        # as a new record without batch= would be
    try:
        with pytest.raises(graphc.UnsupportedError, match="'cumsum' has no batching rule") as e:
            graphc.vmap(lambda x: np.cumsum(x))(np.ones((2, 4)))
        assert "test_vmap.py" in str(e.value)
        # unbatched, it needs no rule
        out = graphc.vmap(lambda x, c: x + np.cumsum(c), in_axes=(0, None))(
            np.zeros((2, 3)), np.ones(3))
        np.testing.assert_array_equal(out, [[1, 2, 3], [1, 2, 3]])
    finally:
        object.__setattr__(prim, "batch", rule)


def test_dropout_keys_inside_vmap():
    def f(x, key):
        return graphc.nn.dropout(x, 0.5, key)

    xs = np.arange(1.0, 13.0).reshape(3, 4)
    # one key for the batch: the same mask for every example, as a Python loop gives
    got = graphc.vmap(f, in_axes=(0, None))(xs, np.int64(7))
    want = np.stack([graphc.nn.dropout(x, 0.5, np.int64(7)) for x in xs])
    np.testing.assert_array_equal(got, want)
    # a key per example: no batching rule for the draw, refused
    with pytest.raises(graphc.UnsupportedError, match="bernoulli"):
        graphc.vmap(f)(xs, np.arange(3))


def _halvings(x):                 # a fixed number of steps, counted by an unbatched carry
    def body(c):
        i, v = c
        return i + 1, v * 0.5 + 1.0
    return graphc.while_loop(lambda c: c[0] < 4, body, (0, x))[1]


def test_while_loop_with_a_condition_shared_by_the_batch():
    xs = np.arange(6.0).reshape(3, 2)
    v = graphc.vmap(_halvings)
    np.testing.assert_array_equal(v(xs), [_halvings(x) for x in xs])
    assert "while i < 4:" in v.source(xs)
    # its gradient's backward loop runs over a list tape: refused, not wrong
    with pytest.raises(graphc.UnsupportedError, match="not supported"):
        graphc.vmap(graphc.grad(lambda x: _halvings(x).sum()))(xs)


def _doublings(x):
    return graphc.while_loop(lambda c: c[0] < 10.0, lambda c: c * 1.5 + np.sin(c), x)


def test_a_while_loop_with_a_condition_per_example_runs_each_its_own_steps():
    """As jax.vmap of lax.while_loop: the loop runs while any example runs and an example
    that is done keeps its carry (it was an UnsupportedError); grad(vmap(...)) matches the
    per-example gradients (vmap(grad(...)) of a while_loop stays refused, list tape)."""
    xs = np.array([[1.0, 2.0], [3.0, -1.0], [20.0, 1.0], [0.5, 0.5]])    # 0 to 6 steps
    v = graphc.vmap(_doublings)
    np.testing.assert_array_equal(v(xs), [_doublings(x) for x in xs])
    assert "np.any(" in v.source(xs) and "np.where(" in v.source(xs)
    total = graphc.grad(lambda xs: v(xs).sum())(xs)
    gl = graphc.grad(lambda x: _doublings(x).sum())
    np.testing.assert_allclose(total, [gl(x) for x in xs], rtol=1e-13)


# --- loops: a scan of batched values is a scan of batches ------------------------------------
def rnn(Wx, Wh, xs):                         # one sequence: xs (T, 3)
    def step(h, x):
        h = np.tanh(x @ Wx + h @ Wh)
        return h, h.sum()
    h, ys = graphc.scan(step, np.zeros(4), xs)
    return np.sum(h ** 2) + ys.sum()


def rnn_setup():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((4, 4)) * 0.5,
            rng.standard_normal((5, 6, 3)))


def test_vmap_of_a_scan_is_one_loop_over_the_batch():
    Wx, Wh, X = rnn_setup()
    f = graphc.vmap(rnn, in_axes=(None, None, 0))
    np.testing.assert_allclose(f(Wx, Wh, X), [rnn(Wx, Wh, x) for x in X], rtol=1e-13)
    src = f.source(Wx, Wh, X)
    assert "for t in range(6):" in src and "h = np.tanh(" in src
    # the batch on another axis of xs, and in a carry that starts unbatched
    g = graphc.vmap(rnn, in_axes=(None, None, 1))
    XT = X.transpose(1, 0, 2)
    np.testing.assert_allclose(g(Wx, Wh, XT), [rnn(Wx, Wh, x) for x in X], rtol=1e-13)
    h = graphc.vmap(lambda c, n: graphc.fori_loop(0, 4, lambda i, c: c * n + 1.0, c),
                    in_axes=(None, 0))
    ns = np.array([0.5, 1.0, 2.0])
    want = [graphc.fori_loop(0, 4, lambda i, c: c * n + 1.0, np.ones(2)) for n in ns]
    np.testing.assert_allclose(h(np.ones(2), ns), want, rtol=1e-14)


def test_per_example_gradients_through_a_scan():
    Wx, Wh, X = rnn_setup()
    grad = graphc.grad(rnn, argnums=(0, 1))
    got = graphc.vmap(grad, in_axes=(None, None, 0))(Wx, Wh, X)
    loop = [grad(Wx, Wh, x) for x in X]
    for k in range(2):
        np.testing.assert_allclose(got[k], np.stack([g[k] for g in loop]), rtol=1e-12,
                                   atol=1e-14)


def test_per_example_gradients_through_a_scan_match_torch_func():
    torch = pytest.importorskip("torch")
    Wx, Wh, X = rnn_setup()

    def trnn(Wx, Wh, xs):
        h = torch.zeros(4, dtype=torch.float64)
        total = 0.0
        for t in range(xs.shape[0]):
            h = torch.tanh(xs[t] @ Wx + h @ Wh)
            total = total + h.sum()
        return (h ** 2).sum() + total

    want = torch.func.vmap(torch.func.grad(trnn, argnums=(0, 1)), in_dims=(None, None, 0))(
        torch.tensor(Wx), torch.tensor(Wh), torch.tensor(X))
    got = graphc.vmap(graphc.grad(rnn, argnums=(0, 1)), in_axes=(None, None, 0))(Wx, Wh, X)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-12, atol=1e-14)


def test_bad_in_axes_and_sizes():
    with pytest.raises(graphc.ShapeError, match="batch sizes differ"):
        graphc.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(graphc.ShapeError, match="out of range"):
        graphc.vmap(lambda a: a, in_axes=2)(np.ones((3, 2)))
    with pytest.raises(graphc.SignatureError, match="in_axes has 1 entries"):
        graphc.vmap(lambda a, b: a + b, in_axes=(0,))(np.ones(3), np.ones(3))


def _load_example(name):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_ex_vmap_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_per_example_gradients_of_lenet_match_a_loop():
    lenet = _load_example("lenet")
    rng = np.random.default_rng(0)
    params = lenet.init_params(rng)
    X, Y = rng.random((5, 1, 8, 8)), np.array([0, 3, 1, 9, 2])

    def one(p, x, y):                       # one image: a batch of one for the network
        return lenet.loss(p, x[None], y[None])

    got = graphc.vmap(graphc.grad(one), in_axes=(None, 0, 0))(params, X, Y)
    loop = [graphc.grad(one)(params, x, y) for x, y in zip(X, Y)]
    for layer in params:
        for k in params[layer]:
            want = np.stack([g[layer][k] for g in loop])
            assert np.abs(want).max() > 0
            np.testing.assert_allclose(got[layer][k], want, rtol=1e-12, atol=1e-14)


def test_vmap_of_jvp_and_of_a_hessian_vector_product():
    xs = np.linspace(0, 1, 6).reshape(3, 2)

    def tangent(x):
        return graphc.jvp(lambda x: np.sin(x) * x, (x,), (np.ones_like(x),))[1]

    np.testing.assert_allclose(graphc.vmap(tangent)(xs), np.cos(xs) * xs + np.sin(xs),
                               rtol=1e-14)

    def hvp(w, x):                    # forward over reverse, per example
        g = graphc.grad(lambda w: np.sum(np.tanh(w * x) ** 2))
        return graphc.jvp(g, (w,), (np.ones_like(w),))[1]

    w = np.array([0.3, -0.2])
    got = graphc.vmap(hvp, in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(got, np.stack([hvp(w, x) for x in xs]), rtol=1e-12, atol=1e-15)


SCALE = np.array([1.0, 2.0])


def test_closed_over_and_global_arrays_are_read_at_each_call():
    offset = np.array([0.0, 0.0])

    def f(x):
        return x * SCALE + offset

    g = graphc.vmap(f)
    xs = np.ones((3, 2))
    np.testing.assert_array_equal(g(xs), np.tile([1.0, 2.0], (3, 1)))
    offset[:] = 5.0
    SCALE[:] = [3.0, 4.0]
    try:
        np.testing.assert_array_equal(g(xs), np.tile([8.0, 9.0], (3, 1)))
    finally:
        SCALE[:] = [1.0, 2.0]


def test_grad_of_vmap_of_a_scan():
    Wx, Wh, X = rnn_setup()

    def total(Wx, Wh):
        return graphc.vmap(rnn, in_axes=(None, None, 0))(Wx, Wh, X).sum()

    def loop(Wx, Wh):
        return sum(rnn(Wx, Wh, x) for x in X)

    got = graphc.grad(total, argnums=(0, 1))(Wx, Wh)
    want = graphc.grad(loop, argnums=(0, 1))(Wx, Wh)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def _branchy(x, flag):
    return graphc.cond(flag > 0, lambda x: np.sin(x) * 2.0, lambda x: np.sqrt(np.abs(x)), x)


def test_cond_with_one_predicate_for_the_batch_stays_a_cond():
    xs = np.linspace(-1, 1, 6).reshape(3, 2)
    v = graphc.vmap(_branchy, in_axes=(0, None))
    gl = graphc.grad(lambda x, flag: _branchy(x, flag).sum())
    for flag in (np.array(1.0), np.array(-1.0)):
        np.testing.assert_allclose(v(xs, flag), [_branchy(x, flag) for x in xs], rtol=1e-15)
        np.testing.assert_allclose(graphc.vmap(gl, in_axes=(0, None))(xs, flag),
                                   [gl(x, flag) for x in xs], rtol=1e-14)
    assert "if gt:" in v.source(xs, np.array(1.0))


def test_cond_on_a_batched_predicate_picks_per_example():
    """As jax.vmap of lax.cond: both branches run on the batch, each example keeps its own
    branch's result (it was an UnsupportedError); gradients both ways."""
    rng = np.random.default_rng(11)
    xs, flags = rng.normal(size=(6, 3)), np.array([1.0, -1.0, 2.0, -0.5, 0.0, 3.0])
    v = graphc.vmap(_branchy)
    np.testing.assert_allclose(v(xs, flags), [_branchy(x, f) for x, f in zip(xs, flags)],
                               rtol=1e-15)
    body = v.source(xs, flags).split("def _sig")[0]
    assert "np.where(" in body and "if gt" not in body            # no if: a select
    gl = graphc.grad(lambda x, flag: _branchy(x, flag).sum())
    np.testing.assert_allclose(graphc.vmap(gl)(xs, flags), [gl(x, f) for x, f in zip(xs, flags)],
                               rtol=1e-14)
    total = graphc.grad(lambda xs: graphc.vmap(_branchy)(xs, flags).sum())(xs)
    np.testing.assert_allclose(total, [gl(x, f) for x, f in zip(xs, flags)], rtol=1e-14)


def test_switch_on_a_batched_index_picks_per_example_clamped():
    branches = [lambda v: v * 2.0, lambda v: -v, lambda v: v ** 2]
    idx, xs = np.array([0, 1, 2, 7, -3]), np.random.default_rng(12).normal(size=(5, 2))
    got = graphc.vmap(lambda i, x: graphc.switch(i, branches, x))(idx, xs)
    want = [branches[min(max(i, 0), 2)](x) for i, x in zip(idx, xs)]     # clamped, as JAX
    np.testing.assert_allclose(got, want, rtol=1e-15)


def test_per_example_gradients_of_lenet_match_torch_func():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    lenet = _load_example("lenet")
    rng = np.random.default_rng(0)
    params = lenet.init_params(rng)
    X, Y = rng.random((5, 1, 8, 8)), np.array([0, 3, 1, 9, 2])

    def one(p, x, y):
        return lenet.loss(p, x[None], y[None])

    def tone(p, x, y):                      # y one-hot
        h = F.max_pool2d(F.relu(F.conv2d(x[None], p["conv1"]["w"], p["conv1"]["b"],
                                         padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2"]["w"], p["conv2"]["b"], padding=1)), 2)
        h = F.relu(h.reshape(1, -1) @ p["fc1"]["w"] + p["fc1"]["b"])
        s = h @ p["fc2"]["w"] + p["fc2"]["b"]
        return -(torch.log_softmax(s[0], 0) * y).sum()

    tp = {k: {j: torch.tensor(v) for j, v in d.items()} for k, d in params.items()}
    want = torch.func.vmap(torch.func.grad(tone), in_dims=(None, 0, 0))(
        tp, torch.tensor(X), torch.tensor(np.eye(10)[Y]))
    got = graphc.vmap(graphc.grad(one), in_axes=(None, 0, 0))(params, X, Y)
    for layer in params:
        for k in params[layer]:
            np.testing.assert_allclose(got[layer][k], want[layer][k].numpy(), rtol=1e-12,
                                       atol=1e-14)


def test_negative_in_axes_and_static_arguments():
    xs = np.arange(12.0).reshape(4, 3)
    f = graphc.vmap(lambda x, n: np.sum(x[:n]), in_axes=(-1, None))
    np.testing.assert_array_equal(f(xs, 2), xs[:2].sum(axis=0))
    # a Python int is static: the same for every example, whatever in_axes says
    np.testing.assert_array_equal(graphc.vmap(lambda x, n: x * n)(xs, 3), xs * 3)


@pytest.mark.parametrize("a_shape,b_shape", [((1, 4), (4, 3)), ((3, 4), (4, 1)), ((1, 4), (4, 1)),
                                             ((4, 1), (1, 3)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)),
                                             ((2, 1, 4), (1, 4, 5))])
@pytest.mark.parametrize("axes", [(0, None), (None, 0), (0, 0), (-1, None), (None, -1), (1, -1)])
def test_matmul_shapes_against_a_loop(a_shape, b_shape, axes):
    rng = np.random.default_rng(3)
    shapes = [list(a_shape), list(b_shape)]
    for s, ax in zip(shapes, axes):
        if ax is not None:
            s.insert(ax % (len(s) + 1), 3)
    a, b = (rng.standard_normal(s) for s in shapes)
    got = graphc.vmap(np.matmul, in_axes=axes)(a, b)
    want = [np.take(a, i, axes[0]) if axes[0] is not None else a for i in range(3)]
    want = np.stack([w @ (np.take(b, i, axes[1]) if axes[1] is not None else b)
                     for i, w in enumerate(want)])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_vmap_of_vmap_of_grad_and_grad_of_vmap_of_grad():
    params, X, Y = mlp_setup(6)
    inner = graphc.vmap(graphc.grad(mlp_loss), in_axes=(None, 0, 0))
    outer = graphc.vmap(inner, in_axes=(None, 0, 0))
    got = outer(params, X.reshape(2, 3, 4), Y.reshape(2, 3))
    for g, r in zip(got, inner(params, X, Y)):
        np.testing.assert_allclose(g.reshape(r.shape), r, rtol=1e-14, atol=1e-15)

    def sq_norms(params):                    # second order: through vmap(grad)
        return sum(np.sum(v * v) for v in inner(params, X, Y))

    def sq_norms_loop(params):
        return sum(sum(np.sum(v * v) for v in graphc.grad(mlp_loss)(params, x, y))
                   for x, y in zip(X, Y))

    for a, b in zip(graphc.grad(sq_norms)(params), graphc.grad(sq_norms_loop)(params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def _powered(x, w):                 # the loop reads only w, the same for every example
    s = graphc.fori_loop(0, 3, lambda i, c: c * w, np.ones(2))
    return (x * s).sum()


def test_a_loop_that_reads_no_batched_value_is_recorded_as_it_is():
    xs, w = np.arange(6.0).reshape(3, 2), np.array([2.0, 3.0])
    np.testing.assert_allclose(graphc.vmap(_powered, in_axes=(0, None))(xs, w),
                               (xs * w ** 3).sum(axis=1))
    grad = graphc.grad(_powered, argnums=1)
    np.testing.assert_allclose(graphc.vmap(grad, in_axes=(0, None))(xs, w),
                               [grad(x, w) for x in xs], rtol=1e-14)
