"""The transformations against PyTorch's torch.func, in float64, on the four models of issue 16.

The matrix (model x transformation) and where each cell is tested:

=========  =======================  =====================  ==================  ==================
model      jvp / vjp                jacrev / jacfwd        hessian             vmap
=========  =======================  =====================  ==================  ==================
lecture    test_jvp (+ hvp)         test_jacobians         test_jacobians      here
MLP        test_jvp (+ hvp)         test_jacobians         test_jacobians      test_vmap, here
LeNet      test_jvp (+ hvp)         here                   here                here
RNN        here                     here (+ test_jac.)     test_jacobians      here
=========  =======================  =====================  ==================  ==================

LeNet is the network of examples/lenet.py (graphc.nn conv, relu, max-pool, dense) on a batch of
two 1x12x12 images; the RNN is benchmarks/rnn.py ``rnn_loss`` (a ``graphc.scan``).
"""
import importlib.util
import pathlib

import numpy as np
import pytest

import graphc
from benchmarks.rnn import rnn_loss
from examples.autodiff_trace import f as lecture

torch = pytest.importorskip("torch")
F = torch.nn.functional
ROOT = pathlib.Path(__file__).resolve().parents[1]


def T(tree):
    """A (nested) dict / tuple of NumPy arrays as torch float64 tensors."""
    if isinstance(tree, dict):
        return {k: T(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(T(v) for v in tree)
    return torch.tensor(np.asarray(tree))


def close(ours, theirs, rtol=1e-10, atol=1e-12, path="out"):
    """Compare a graphc pytree of arrays with a torch pytree of tensors leaf by leaf."""
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs), path
        for k in theirs:
            close(ours[k], theirs[k], rtol, atol, f"{path}.{k}")
    elif isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            close(a, b, rtol, atol, f"{path}[{i}]")
    else:
        want = theirs.detach().numpy()
        got = np.asarray(ours)
        assert got.shape == want.shape, f"{path}: {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=path)


# --- the lecture function ------------------------------------------------------------------
def t_lecture(w1, w2):
    z1 = w1 / w2
    z4 = 3 * z1 - torch.exp(2 * w2)
    return z4 * (torch.sin(2 * np.pi * z1) + z4)


def test_lecture_vmap_of_value_grad_and_hessian():
    w1 = np.array([1.5, 0.3, -0.8, 2.0])
    w2 = np.array([0.5, 1.1, 0.7, -0.4])
    tw1, tw2 = T(w1), T(w2)
    close(graphc.vmap(lecture)(w1, w2), torch.func.vmap(t_lecture)(tw1, tw2), 1e-13)
    close(graphc.vmap(graphc.grad(lecture, argnums=(0, 1)))(w1, w2),
          torch.func.vmap(torch.func.grad(t_lecture, argnums=(0, 1)))(tw1, tw2), 1e-12)
    # in_axes=(0, None): a batch of w1 against one w2
    close(graphc.vmap(lecture, in_axes=(0, None))(w1, 0.5),
          torch.func.vmap(t_lecture, in_dims=(0, None))(tw1, torch.tensor(0.5, dtype=torch.float64)),
          1e-13)
    close(graphc.vmap(graphc.hessian(lecture, argnums=(0, 1)))(w1, w2),
          torch.func.vmap(torch.func.hessian(t_lecture, argnums=(0, 1)))(tw1, tw2), 1e-10)


def test_lecture_jacfwd_against_torch():
    ours = graphc.jacfwd(lecture, argnums=(0, 1))(1.5, 0.5)
    theirs = torch.func.jacfwd(t_lecture, argnums=(0, 1))(*T((1.5, 0.5)))
    close(ours, theirs, 1e-12)


# --- an MLP --------------------------------------------------------------------------------
def mlp_logits(p, x):
    return np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def t_mlp_logits(p, x):
    return torch.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def test_mlp_vmap_of_jvp_and_of_jacrev():
    rng = np.random.default_rng(1)
    p = {"W1": rng.normal(size=(3, 5)), "b1": rng.normal(size=5),
         "W2": rng.normal(size=(5, 2)), "b2": rng.normal(size=2)}
    X = rng.normal(size=(6, 3))
    dX = rng.normal(size=(6, 3))

    def jvp_x(p, x, dx):                      # the tangent of one example's scores
        return graphc.jvp(lambda x: mlp_logits(p, x), (x,), (dx,))[1]

    def t_jvp_x(p, x, dx):
        return torch.func.jvp(lambda x: t_mlp_logits(p, x), (x,), (dx,))[1]
    close(graphc.vmap(jvp_x, in_axes=(None, 0, 0))(p, X, dX),
          torch.func.vmap(t_jvp_x, in_dims=(None, 0, 0))(T(p), T(X), T(dX)), 1e-12)
    # per-example Jacobians of the scores w.r.t. the parameters
    close(graphc.vmap(graphc.jacrev(mlp_logits), in_axes=(None, 0))(p, X),
          torch.func.vmap(torch.func.jacrev(t_mlp_logits), in_dims=(None, 0))(T(p), T(X)), 1e-12)


# --- LeNet (examples/lenet.py) -------------------------------------------------------------
def _lenet():
    spec = importlib.util.spec_from_file_location("_lenet_for_torch_func", ROOT / "examples" / "lenet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def t_lenet_logits(p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1"]["w"], p["conv1"]["b"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["conv2"]["w"], p["conv2"]["b"], padding=1)), 2)
    h = F.relu(h.flatten(1) @ p["fc1"]["w"] + p["fc1"]["b"])
    return h @ p["fc2"]["w"] + p["fc2"]["b"]


@pytest.fixture(scope="module")
def lenet_case():
    lenet = _lenet()
    rng = np.random.default_rng(7)
    params = lenet.init_params(rng, side=12)
    params = {k: {n: v + 0.05 * rng.normal(size=v.shape) for n, v in layer.items()}
              for k, layer in params.items()}       # nonzero biases: no ties at relu kinks
    x, y = rng.random((2, 1, 12, 12)), np.array([3, 8])
    return lenet, params, x, y


def t_lenet_loss(p, x, y):
    return F.cross_entropy(t_lenet_logits(p, x), y)


def test_lenet_jacrev_of_the_scores_wrt_all_parameters(lenet_case):
    lenet, params, x, _ = lenet_case
    ours = graphc.jacrev(lenet.logits)(params, x)
    theirs = torch.func.jacrev(t_lenet_logits)(T(params), T(x))
    assert ours["conv2"]["w"].shape == (2, 10, 16, 8, 3, 3)
    close(ours, theirs, 1e-10)


def test_lenet_jacfwd_wrt_the_first_conv_and_the_images(lenet_case):
    lenet, params, x, _ = lenet_case

    def scores(conv1, x):
        return lenet.logits({**params, "conv1": conv1}, x)

    def t_scores(conv1, x):
        return t_lenet_logits({**T(params), "conv1": conv1}, x)
    ours = graphc.jacfwd(scores, argnums=(0, 1))(params["conv1"], x)
    theirs = torch.func.jacfwd(t_scores, argnums=(0, 1))(T(params["conv1"]), T(x))
    assert ours[1].shape == (2, 10, 2, 1, 12, 12)
    close(ours, theirs, 1e-10)
    # and the two modes agree with each other
    close(graphc.jacrev(scores, argnums=(0, 1))(params["conv1"], x), theirs, 1e-10)


def test_lenet_hessian_wrt_the_last_layer(lenet_case):
    lenet, params, x, y = lenet_case

    def loss_fc2(fc2):
        return lenet.loss({**params, "fc2": fc2}, x, y)

    def t_loss_fc2(fc2):
        return t_lenet_loss({**T(params), "fc2": fc2}, T(x), T(y))
    ours = graphc.hessian(loss_fc2)(params["fc2"])
    theirs = torch.func.hessian(t_loss_fc2)(T(params["fc2"]))
    assert ours["b"]["b"].shape == (10, 10) and ours["w"]["b"].shape == (32, 10, 10)
    close(ours, theirs, 1e-10)


def test_lenet_hessian_wrt_the_first_conv_bias(lenet_case):
    """Second order through both convolutions, relu and max-pool (piecewise linear)."""
    lenet, params, x, y = lenet_case

    def loss_b(b):
        return lenet.loss({**params, "conv1": {**params["conv1"], "b": b}}, x, y)

    def t_loss_b(b):
        tp = T(params)
        return t_lenet_loss({**tp, "conv1": {**tp["conv1"], "b": b}}, T(x), T(y))
    ours = graphc.hessian(loss_b)(params["conv1"]["b"])
    theirs = torch.func.hessian(t_loss_b)(T(params["conv1"]["b"]))
    assert np.abs(ours).max() > 0
    close(ours, theirs, 1e-9)


def test_lenet_per_example_gradients_against_torch_vmap(lenet_case):
    lenet, params, x, y = lenet_case

    def one(p, x, y):                       # one image: a batch of one for the network
        return lenet.loss(p, x[None], y[None])

    def t_one(p, x, y):
        return t_lenet_loss(p, x[None], y[None])
    ours = graphc.vmap(graphc.grad(one), in_axes=(None, 0, 0))(params, x, y)
    theirs = torch.func.vmap(torch.func.grad(t_one), in_dims=(None, 0, 0))(T(params), T(x), T(y))
    close(ours, theirs, 1e-10)
    # vmap of the forward alone, over the images
    close(graphc.vmap(lambda p, x: lenet.logits(p, x[None])[0], in_axes=(None, 0))(params, x),
          t_lenet_logits(T(params), T(x)), 1e-12)


# --- the RNN (benchmarks/rnn.py, a graphc.scan) ---------------------------------------------
def t_rnn_loss(q, xs, y):
    h = torch.zeros((xs.shape[1], q["Wh"].shape[0]), dtype=torch.float64)
    for x in xs:
        h = torch.tanh(x @ q["Wx"] + h @ q["Wh"] + q["b"])
    return torch.mean((h @ q["Wo"] - y) ** 2)


def t_rnn_hidden(q, xs):
    h = torch.zeros((xs.shape[1], q["Wh"].shape[0]), dtype=torch.float64)
    for x in xs:
        h = torch.tanh(x @ q["Wx"] + h @ q["Wh"] + q["b"])
    return h


def rnn_hidden(q, xs):
    def step(h, x):
        return np.tanh(x @ q["Wx"] + h @ q["Wh"] + q["b"]), None
    h, _ = graphc.scan(step, np.zeros((xs.shape[1], q["Wh"].shape[0])), xs)
    return h


@pytest.fixture(scope="module")
def rnn_case():
    rng = np.random.default_rng(11)
    p = {"Wx": 0.5 * rng.normal(size=(2, 3)), "Wh": 0.5 * rng.normal(size=(3, 3)),
         "b": 0.1 * rng.normal(size=3), "Wo": rng.normal(size=(3, 1))}
    xs, y = rng.normal(size=(5, 4, 2)), rng.normal(size=(4, 1))
    dp = {k: rng.normal(size=v.shape) for k, v in p.items()}
    return p, xs, y, dp


def test_rnn_jvp_and_vjp(rnn_case):
    p, xs, y, dp = rnn_case
    out, dot = graphc.jvp(rnn_loss, (p, xs, y), (dp, np.zeros_like(xs), np.zeros_like(y)))
    t_out, t_dot = torch.func.jvp(t_rnn_loss, T((p, xs, y)), T((dp, np.zeros_like(xs), np.zeros_like(y))))
    close((out, dot), (t_out, t_dot), 1e-11)
    # tangents on the inputs too
    dxs = np.random.default_rng(0).normal(size=xs.shape)
    _, dot_x = graphc.jvp(lambda xs: rnn_loss(p, xs, y), (xs,), (dxs,))
    _, t_dot_x = torch.func.jvp(lambda xs: t_rnn_loss(T(p), xs, T(y)), (T(xs),), (T(dxs),))
    close(dot_x, t_dot_x, 1e-11)
    # vjp of the (4, 3) final hidden state, w.r.t. parameters and inputs
    u = np.random.default_rng(1).normal(size=(4, 3))
    h, pull = graphc.vjp(rnn_hidden, p, xs)
    t_h, t_pull = torch.func.vjp(t_rnn_hidden, *T((p, xs)))
    close(h, t_h, 1e-13)
    close(pull(u), t_pull(T(u)), 1e-11)


def test_rnn_jacrev_and_jacfwd(rnn_case):
    p, xs, y, _ = rnn_case
    close(graphc.jacrev(rnn_loss)(p, xs, y), torch.func.jacrev(t_rnn_loss)(*T((p, xs, y))), 1e-11)
    # a non-scalar output: the final hidden state w.r.t. the parameters and the inputs
    theirs = torch.func.jacrev(t_rnn_hidden, argnums=(0, 1))(*T((p, xs)))
    close(graphc.jacrev(rnn_hidden, argnums=(0, 1))(p, xs), theirs, 1e-11)
    close(graphc.jacfwd(rnn_hidden, argnums=(0, 1))(p, xs), theirs, 1e-11)


def test_rnn_hessian_wrt_the_recurrent_weights(rnn_case):
    p, xs, y, _ = rnn_case
    ours = graphc.hessian(lambda Wh: rnn_loss({**p, "Wh": Wh}, xs, y))(p["Wh"])
    theirs = torch.func.hessian(lambda Wh: t_rnn_loss({**T(p), "Wh": Wh}, T(xs), T(y)))(T(p["Wh"]))
    assert ours.shape == (3, 3, 3, 3)
    close(ours, theirs, 1e-10)


def test_rnn_per_sequence_gradients_against_torch_vmap(rnn_case):
    p, xs, y, _ = rnn_case

    def one(q, xs, y):                      # one sequence (steps, n_in): a batch of one
        return rnn_loss(q, xs[:, None], y[None])

    def t_one(q, xs, y):
        return t_rnn_loss(q, xs[:, None], y[None])
    ours = graphc.vmap(graphc.grad(one), in_axes=(None, 1, 0))(p, xs, y)
    theirs = torch.func.vmap(torch.func.grad(t_one), in_dims=(None, 1, 0))(*T((p, xs, y)))
    close(ours, theirs, 1e-11)
