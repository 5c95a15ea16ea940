"""A recurrent net, trained with ``graphc.scan``: the adding problem.

Each sequence has ``T`` steps of two inputs: a number drawn uniformly from [0, 1],
and a marker that is 1 at exactly two steps and 0 elsewhere.  The target is the sum
of the two marked numbers, so the net must remember what it saw at the marked steps
until the end (Hochreiter & Schmidhuber's "adding problem").  Always answering 1.0
(the mean) scores a mean squared error of 1/6; an Elman net,

    h_{t+1} = tanh(x_t @ Wx + h_t @ Wh + b),     prediction = h_T @ Wo + bo,

learns to do far better (400 Adam steps: a test error of 0.0071).  The recurrence
is written with ``graphc.scan``, so the generated code is a Python ``for`` loop over
the steps (and its gradient a reversed loop over the saved hidden states): the code
has the same size for 10 steps or 10,000.  The whole training step (forward, backward through time, Adam) compiles
into one generated function.

    python examples/rnn_scan.py
    graphc trace  examples/rnn_scan.py:loss
    graphc source examples/rnn_scan.py:loss --grad
    graphc render examples/rnn_scan.py:loss --grad -o rnn.svg
    graphc check  examples/rnn_scan.py:loss
"""
import numpy as np

import graphc
from graphc import optim

STEPS, HIDDEN = 10, 32


def adding_problem(rng, n, steps=STEPS):
    """``n`` sequences ``x`` of shape ``(steps, n, 2)`` and their targets ``y`` ``(n, 1)``."""
    values = rng.uniform(0.0, 1.0, size=(steps, n))
    marks = np.zeros((steps, n))
    for j in range(n):
        marks[rng.choice(steps, size=2, replace=False), j] = 1.0
    return np.stack([values, marks], axis=-1), (values * marks).sum(axis=0)[:, None]


def init_params(rng, hidden=HIDDEN):
    return {"Wx": rng.normal(size=(2, hidden)) / np.sqrt(2.0),
            "Wh": np.linalg.qr(rng.normal(size=(hidden, hidden)))[0],   # orthogonal
            "b": np.zeros(hidden),
            "Wo": rng.normal(size=(hidden, 1)) / np.sqrt(hidden),
            "bo": np.zeros(1)}


def predict(params, xs):
    """Run the net over the steps of ``xs`` (``(steps, n, 2)``); one prediction per sequence."""
    def step(h, x):
        h = np.tanh(x @ params["Wx"] + h @ params["Wh"] + params["b"])
        return h, None
    h0 = np.zeros((xs.shape[1], params["Wh"].shape[0]))
    h, _ = graphc.scan(step, h0, xs)
    return h @ params["Wo"] + params["bo"]


_EXAMPLE_RNG = np.random.default_rng(0)


@graphc.example(init_params(_EXAMPLE_RNG, hidden=8), *adding_problem(_EXAMPLE_RNG, 4))
def loss(params, xs, y):
    """Mean squared error of the predictions."""
    return np.mean((predict(params, xs) - y) ** 2)


def make_train_step(opt):
    """Loss, gradients through time and Adam's update, as one compiled function."""
    @graphc.compile
    def train_step(params, state, xs, y):
        value, grads = graphc.value_and_grad(loss)(params, xs, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(steps=400, batch=64, lr=0.01, seed=0, out=print):
    """Adam on fresh batches; returns ``(params, test MSE)``."""
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    opt = optim.adam(lr)
    state = opt.init(params)
    train_step = make_train_step(opt)
    for i in range(steps):
        xs, y = adding_problem(rng, batch)
        params, state, value = train_step(params, state, xs, y)
        if i % 100 == 0:
            out(f"step {i:4d}: training loss {float(value):.4f}")
    xs, y = adding_problem(np.random.default_rng(seed + 1), 1000)
    test = float(np.mean((predict(params, xs) - y) ** 2))
    return params, test


def main(steps=400):
    _, test = train(steps=steps)
    print(f"test mean squared error {test:.4f} (always answering the mean scores {1 / 6:.4f})")
    return test


if __name__ == "__main__":
    main()
