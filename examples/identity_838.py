"""The 8-3-8 identity network: squeeze eight one-hot codes through three sigmoid units.

Eight one-hot inputs feed three sigmoid hidden units, which feed eight sigmoid
outputs; the network is trained to reproduce its input.  To get all eight
patterns through a bottleneck of three units it has to invent a code for
them: many learned hidden values end up near 0 or 1, a code much like
3-bit binary, with a few intermediate values the outputs can still tell apart.  Each output unit is a logistic unit, so
the loss is the logistic loss with targets ``2 * onehot - 1`` in {-1, +1}
(the same as binary cross-entropy on the sigmoid outputs).

    python examples/identity_838.py
    graphc trace  examples/identity_838.py:loss
    graphc source examples/identity_838.py:loss --grad
    graphc render examples/identity_838.py:loss --grad -o identity.svg
    graphc check  examples/identity_838.py:loss
"""
import os

import numpy as np

import graphc
from graphc import nn, optim

X = np.eye(8)                                   # the eight one-hot inputs
Y = 2.0 * X - 1.0                               # the targets, as labels in {-1, +1}


def init_params(rng, hidden=3):
    return {"W1": rng.normal(size=(8, hidden)), "b1": np.zeros(hidden),
            "W2": rng.normal(size=(hidden, 8)), "b2": np.zeros(8)}


def hidden(params, x):
    """The three hidden units' values, each in (0, 1)."""
    return nn.sigmoid(x @ params["W1"] + params["b1"])


def scores(params, x):
    """The output units' pre-sigmoid scores; ``sigmoid(scores)`` is the output."""
    return hidden(params, x) @ params["W2"] + params["b2"]


@graphc.example(init_params(np.random.default_rng(0)), X, Y)
def loss(params, x, y):
    """Logistic loss of every output unit against its {-1, +1} target."""
    return nn.logistic_loss(scores(params, x), y)


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y):
        value, grads = graphc.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(steps=3000, lr=0.05, seed=0):
    """Full-batch Adam; returns ``(params, final loss)``."""
    params = init_params(np.random.default_rng(seed))
    opt = optim.adam(lr)
    state = opt.init(params)
    step = make_train_step(opt)
    value = None
    for _ in range(steps):
        params, state, value = step(params, state, X, Y)
    return params, float(value)


def table(params):
    """The lecture's table, one line per input: input -> hidden values -> output argmax."""
    h = np.asarray(hidden(params, X))
    out = np.argmax(np.asarray(scores(params, X)), axis=1)
    lines = ["input       hidden values       output"]
    for i in range(8):
        code = "".join(str(int(v)) for v in X[i])
        vals = "  ".join(f"{v:.2f}" for v in h[i])
        lines.append(f"{code}  ->  {vals}  ->  {out[i]}")
    return lines, int(np.sum(out == np.arange(8)))


def main(steps=None):
    """Train, print the hidden representation and the number of inputs recovered."""
    if steps is None:
        steps = 1500 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 3000
    params, value = train(steps=steps)
    print(f"8-3-8 identity network, {steps} Adam steps (loss {value:.4f}):")
    lines, recovered = table(params)
    for line in lines:
        print(line)
    print(f"recovered {recovered}/8")
    return recovered


if __name__ == "__main__":
    main()
