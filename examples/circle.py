"""Is a point inside the circle?  A 2-3-3-1 sigmoid network learns ``x1^2 + x2^2 <= 2``.

The label is the indicator ``I(x1^2 + x2^2 <= 2)``, written as {-1, +1} for the
logistic loss.  No line separates the disc from its outside, but two hidden
layers of three sigmoid units (25 weights, biases included) can bend a
boundary around it.  The points are 400 draws uniform in [-2.5, 2.5]^2, the
training is full-batch Adam in one compiled train step, and ``main()`` draws
the learned decision region as ASCII art.

    python examples/circle.py
    graphc trace  examples/circle.py:loss
    graphc source examples/circle.py:loss --grad
    graphc render examples/circle.py:loss --grad -o circle.svg
    graphc check  examples/circle.py:loss
"""
import os

import numpy as np

import graphc
from graphc import nn, optim

RADIUS2 = 2.0                # the disc x1^2 + x2^2 <= 2
LIMIT = 2.5                  # points uniform in [-LIMIT, LIMIT]^2


def make_data(n=400, seed=0):
    """``(x, y)``: ``n`` points and their labels, +1 inside the disc and -1 outside."""
    x = np.random.default_rng(seed).uniform(-LIMIT, LIMIT, size=(n, 2))
    y = np.where(np.sum(x * x, axis=1) <= RADIUS2, 1.0, -1.0)
    return x, y


def init_params(rng):
    return {"W1": rng.normal(size=(2, 3)), "b1": np.zeros(3),
            "W2": rng.normal(size=(3, 3)), "b2": np.zeros(3),
            "w3": rng.normal(size=3), "b3": np.zeros(1)}


def count_weights(params):
    return sum(np.size(v) for v in params.values())


def scores(params, x):
    """The output unit's pre-sigmoid score; positive means "inside"."""
    h1 = nn.sigmoid(x @ params["W1"] + params["b1"])
    h2 = nn.sigmoid(h1 @ params["W2"] + params["b2"])
    return h2 @ params["w3"] + params["b3"]


_x, _y = make_data(n=8, seed=1)


@graphc.example(init_params(np.random.default_rng(0)), _x, _y)
def loss(params, x, y):
    """Logistic loss ``mean(log(1 + exp(-y * score)))`` of the 2-3-3-1 network."""
    return nn.logistic_loss(scores(params, x), y)


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y):
        value, grads = graphc.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(x, y, steps=3000, lr=0.05, seed=0):
    """Full-batch Adam; returns ``(params, final loss)``."""
    params = init_params(np.random.default_rng(seed))
    assert count_weights(params) == 25, count_weights(params)
    opt = optim.adam(lr)
    state = opt.init(params)
    step = make_train_step(opt)
    value = None
    for _ in range(steps):
        params, state, value = step(params, state, x, y)
    return params, float(value)


def accuracy(params, x, y):
    return float(np.mean(np.where(np.asarray(scores(params, x)) > 0, 1.0, -1.0) == y))


def picture(params, rows=21, cols=41):
    """The decision region on a grid: '#' predicted inside, '.' outside, 'o' the true circle's edge
    where the prediction is "outside" and '+' where it is "inside"."""
    x2 = np.linspace(LIMIT, -LIMIT, rows)
    x1 = np.linspace(-LIMIT, LIMIT, cols)
    g1, g2 = np.meshgrid(x1, x2)
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    inside = (np.asarray(scores(params, grid)) > 0).reshape(rows, cols)
    r2 = (g1 * g1 + g2 * g2)
    step = 2 * LIMIT / (cols - 1)
    edge = np.abs(np.sqrt(r2) - np.sqrt(RADIUS2)) < step / 2
    chars = np.where(inside, "#", ".")
    chars = np.where(edge, np.where(inside, "+", "o"), chars)
    return ["".join(row) for row in chars]


def main(steps=None):
    """Train, print the training accuracy and an ASCII picture of the decision region."""
    if steps is None:
        steps = 1500 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 3000
    x, y = make_data()
    params, value = train(x, y, steps=steps)
    acc = accuracy(params, x, y)
    print(f"2-3-3-1 sigmoid network ({count_weights(params)} weights), {steps} Adam steps "
          f"on {len(y)} points (loss {value:.3f})")
    print(f"training accuracy {acc:.1%}")
    print("decision region ('#' inside, '.' outside; the true circle drawn as '+' / 'o'):")
    for line in picture(params):
        print(line)
    return acc


if __name__ == "__main__":
    main()
