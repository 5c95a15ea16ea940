"""Tests of graphc.optim: sgd, momentum (heavy ball) and adam vs references written
from PyTorch's formulas, eager and inside one compiled train step."""
from __future__ import annotations

import re

import numpy as np
import pytest

import graphc
from graphc import nn, optim

LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01}


def make_opt(name):
    if name == "sgd":
        return optim.sgd(LR["sgd"])
    if name == "momentum":
        return optim.momentum(LR["momentum"], beta=0.8)
    return optim.adam(LR["adam"], b1=0.85, b2=0.995, eps=1e-6)


# --- references, from the formulas (flat lists of float64 leaves) -------------------------
def ref_run(name, leaves, grad_seq):
    """Apply the optimizer's formula over a sequence of gradient lists."""
    p = [np.array(x, np.float64) for x in leaves]
    v = [np.zeros_like(x) for x in p]
    m = [np.zeros_like(x) for x in p]
    for t, grads in enumerate(grad_seq, start=1):
        g = [np.asarray(x, np.float64) for x in grads]
        if name == "sgd":
            p = [pi - LR["sgd"] * gi for pi, gi in zip(p, g)]
        elif name == "momentum":
            # PyTorch SGD(momentum=beta, dampening=0): buf = beta * buf + g; p -= lr * buf
            v = [0.8 * vi + gi for vi, gi in zip(v, g)]
            p = [pi - LR["momentum"] * vi for pi, vi in zip(p, v)]
        else:
            # PyTorch Adam: bias-corrected moments, eps added to sqrt(v_hat)
            b1, b2, eps, lr = 0.85, 0.995, 1e-6, LR["adam"]
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
            m_hat = [mi / (1 - b1 ** t) for mi in m]
            v_hat = [vi / (1 - b2 ** t) for vi in v]
            p = [pi - lr * mh / (np.sqrt(vh) + eps) for pi, mh, vh in zip(p, m_hat, v_hat)]
    return p


def make_params(rng, dtype=np.float64):
    """A nested pytree: a dict holding a list of dicts and a NumPy scalar."""
    return {"layers": [{"w": rng.normal(size=(4, 3)).astype(dtype), "b": rng.normal(size=3).astype(dtype)},
                       {"w": rng.normal(size=(3, 2)).astype(dtype), "b": rng.normal(size=2).astype(dtype)}],
            "scale": dtype(1.5)}


def leaves_of(params):
    out = []
    for layer in params["layers"]:
        out += [layer["w"], layer["b"]]
    return out + [params["scale"]]


def model_loss(p, x, y):
    h = np.tanh(x @ p["layers"][0]["w"] + p["layers"][0]["b"])
    z = (h @ p["layers"][1]["w"] + p["layers"][1]["b"]) * p["scale"]
    return nn.mse(z, y)


OPTS = ["sgd", "momentum", "adam"]


# --- update vs the formula, eager ---------------------------------------------------------
@pytest.mark.parametrize("name", OPTS)
def test_eager_update_matches_formula(name):
    rng = np.random.default_rng(0)
    params = make_params(rng)
    opt = make_opt(name)
    state = opt.init(params)
    grad_seq = []
    for _ in range(5):
        grads = make_params(rng)            # same tree structure, random values
        grad_seq.append(leaves_of(grads))
        before = [x.copy() for x in leaves_of(params)]
        new_params, state = opt.update(grads, state, params)
        # pure: the inputs are left alone
        for a, b in zip(before, leaves_of(params)):
            np.testing.assert_array_equal(a, b)
        params = new_params
    expected = ref_run(name, leaves_of(make_params(np.random.default_rng(0))), grad_seq)
    for got, want in zip(leaves_of(params), expected):
        assert np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert isinstance(params["layers"], list) and set(params["layers"][0]) == {"w", "b"}
    if name == "adam":
        assert state["step"] == 5 and np.asarray(state["step"]).dtype == np.int64
        assert set(state) == {"step", "m", "v"}
    if name == "momentum":
        assert set(state) == {"velocity"}
        assert isinstance(state["velocity"]["layers"], list)


def test_momentum_first_step_is_plain_gradient_step():
    # PyTorch initialises the buffer with the first gradient: v1 = g1.
    opt = optim.momentum(0.5, beta=0.9)
    p = {"w": np.array([1.0, 2.0])}
    g = {"w": np.array([0.2, -0.4])}
    new, state = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(new["w"], [0.9, 2.2], rtol=1e-15)
    np.testing.assert_allclose(state["velocity"]["w"], g["w"], rtol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    # With bias correction, step 1 moves each coordinate by ~lr * sign(g).
    opt = optim.adam(0.01)
    p = {"w": np.array([1.0, 2.0, 3.0])}
    g = {"w": np.array([0.3, -2.0, 1e-3])}
    new, state = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(new["w"], p["w"] - 0.01 * np.sign(g["w"]), rtol=1e-7)
    assert state["step"] == 1


def test_optimizer_repr_and_fields():
    opt = optim.adam(1e-3)
    assert "adam" in repr(opt)
    assert callable(opt.init) and callable(opt.update)


# --- one compiled train step ----------------------------------------------------------------
def make_train_step(opt, calls):
    def train_step(params, state, x, y):
        calls.append(1)
        loss, grads = graphc.value_and_grad(model_loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss
    return graphc.compile(train_step), train_step


def _data(rng, dtype=np.float64):
    return rng.normal(size=(6, 4)).astype(dtype), rng.normal(size=(6, 2)).astype(dtype)


@pytest.mark.parametrize("name", OPTS)
def test_compiled_train_step_matches_eager_and_formula(name):
    rng = np.random.default_rng(1)
    params0 = make_params(rng)
    opt = make_opt(name)
    calls = []
    step, _ = make_train_step(opt, calls)
    grad_fn = graphc.value_and_grad(model_loss)

    p_c, s_c = params0, opt.init(params0)      # compiled
    p_e, s_e = params0, opt.init(params0)      # eager update
    grad_seq, losses = [], []
    for _ in range(4):
        x, y = _data(rng)
        p_c, s_c, loss_c = step(p_c, s_c, x, y)
        loss_e, g = grad_fn(p_e, x, y)
        grad_seq.append(leaves_of(g))
        p_e, s_e = opt.update(g, s_e, p_e)
        np.testing.assert_allclose(loss_c, loss_e, rtol=1e-13)
        losses.append(float(loss_c))
    assert len(calls) == 1                      # one trace for every step (adam's counter included)
    expected = ref_run(name, leaves_of(params0), grad_seq)
    for got_c, got_e, want in zip(leaves_of(p_c), leaves_of(p_e), expected):
        np.testing.assert_allclose(got_c, got_e, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(got_c, want, rtol=1e-12, atol=1e-14)
    if name == "adam":
        assert s_c["step"] == 4 and np.asarray(s_c["step"]).dtype == np.int64


@pytest.mark.parametrize("name,update_text", [("sgd", r"- 0\.1 \*"), ("momentum", r"0\.8 \*"),
                                              ("adam", r"np\.sqrt\(")])
def test_train_step_source_is_one_function_with_the_update(name, update_text):
    rng = np.random.default_rng(2)
    params = make_params(rng)
    opt = make_opt(name)
    step, _ = make_train_step(opt, [])
    x, y = _data(rng)
    src = step.source(params, opt.init(params), x, y)
    defs = [d.strip() for d in re.findall(r"^[ \t]*def \w+", src, flags=re.M)]
    assert [d for d in defs if not d.startswith("def _")] == ["def train_step"], src   # + entry-check helpers
    imports = [ln.strip() for ln in src.splitlines() if re.match(r"\s*(import|from) ", ln)]
    assert imports == ["import numpy as np"], src
    assert "lambda" not in src and not re.search(r"graphc\.\w", src), src
    assert "# grad of:" in src                  # the backward pass is inside
    assert re.search(update_text, src), src     # and so is the update
    if name == "adam":
        assert re.search(r"\w+ = step\w* \+ 1", src), src       # the traced counter
    # The new parameters are computed from the gradients in the same function.
    assert re.search(r"= params_layers_0_w - ", src), src


@pytest.mark.parametrize("name", OPTS)
def test_float32_preserved(name):
    rng = np.random.default_rng(3)
    params = make_params(rng, np.float32)
    opt = make_opt(name)
    calls = []
    step, _ = make_train_step(opt, calls)
    p_c, s_c = params, opt.init(params)
    p_e, s_e = params, opt.init(params)
    grad_fn = graphc.value_and_grad(model_loss)
    grad_seq = []
    for _ in range(3):
        x, y = _data(rng, np.float32)
        p_c, s_c, loss = step(p_c, s_c, x, y)
        assert loss.dtype == np.float32
        _, g = grad_fn(p_e, x, y)
        grad_seq.append(leaves_of(g))
        p_e, s_e = opt.update(g, s_e, p_e)
    assert len(calls) == 1
    for tree in (p_c, p_e):
        for leaf in leaves_of(tree):
            assert leaf.dtype == np.float32, leaf
    for state in (s_c, s_e):
        if name == "sgd":
            assert state == ()
            continue
        for key, sub in state.items():
            if key == "step":
                assert np.asarray(sub).dtype == np.int64
                continue
            for leaf in leaves_of(sub):
                assert leaf.dtype == np.float32, (key, leaf)
    assert isinstance(p_c["scale"], np.float32)
    # float32 arithmetic: close to the float64 formula applied to the same gradients
    expected = ref_run(name, leaves_of(params), grad_seq)
    for got_c, got_e, want in zip(leaves_of(p_c), leaves_of(p_e), expected):
        np.testing.assert_allclose(got_c, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_e, want, rtol=1e-5, atol=1e-6)


def test_adam_step_counter_is_traced():
    rng = np.random.default_rng(4)
    params = make_params(rng)
    opt = make_opt("adam")
    calls = []
    step, _ = make_train_step(opt, calls)
    state = opt.init(params)
    x, y = _data(rng)
    seen = []
    for _ in range(6):
        params, state, _ = step(params, state, x, y)
        seen.append(int(state["step"]))
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(calls) == 1
    g = step.graph(params, state, x, y)
    step_input = [n for n in g.inputs if g.nx.nodes[n]["dtype"] == np.int64]
    assert len(step_input) == 1 and g.nx.nodes[step_input[0]]["shape"] == ()


def test_zero_d_array_and_numpy_scalar_share_a_signature():
    calls = []

    @graphc.compile
    def f(p):
        calls.append(1)
        return p * 2.0

    f(np.array(1.5))
    f(np.float64(1.5))
    assert len(calls) == 1


def test_training_loop_decreases_loss():
    rng = np.random.default_rng(5)
    x, y = _data(rng)
    for name in OPTS:
        opt = make_opt(name)
        step, _ = make_train_step(opt, [])
        params = make_params(np.random.default_rng(6))
        state = opt.init(params)
        first = None
        for _ in range(30):
            params, state, loss = step(params, state, x, y)
            first = loss if first is None else first
        assert loss < 0.7 * first, (name, first, loss)


@pytest.mark.parametrize("make", [lambda: graphc.optim.sgd(0.1), lambda: graphc.optim.momentum(0.1),
                                  lambda: graphc.optim.adam(0.1)])
def test_update_refuses_gradients_of_other_shapes(make):
    """A (1,) gradient broadcast over a (3,) parameter silently (sgd), or NumPy's raw
    broadcasting ValueError came out of adam with no line of the user's code."""
    opt = make()
    params = {"w": np.ones(3)}
    with pytest.raises(graphc.ShapeError, match=r"the gradients at \['w'\] has shape \(1,\)") as e:
        opt.update({"w": np.ones(1)}, opt.init(params), params)
    assert "test_optim.py:" in str(e.value) and isinstance(e.value, ValueError)
    if opt.name != "sgd":       # a state from init() of other parameters
        with pytest.raises(graphc.ShapeError, match="has shape"):
            opt.update(params, opt.init({"w": np.ones(2)}), params)
    with pytest.raises(graphc.ShapeError, match="different pytrees"):
        opt.update({"w": np.ones(3), "b": np.ones(1)}, opt.init(params), params)
