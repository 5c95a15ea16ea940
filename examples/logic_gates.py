"""Logic gates: OR and AND are linearly separable, XOR is not.

A single linear unit (a logistic regression, ``sigmoid(x @ w + b)``) learns OR
and AND, but no line separates XOR's classes: the best a linear unit can do
is 3 of the 4 points (75%).  A network with one hidden layer of tanh units
learns XOR.  Each model is trained with one compiled train step: the forward
pass, the backward pass and the optimizer update in a single generated NumPy
function.

    python examples/logic_gates.py
    graphc trace  examples/logic_gates.py:mlp_loss
    graphc source examples/logic_gates.py:mlp_loss --grad
    graphc render examples/logic_gates.py:mlp_loss --grad -o xor.svg
    graphc check  examples/logic_gates.py:mlp_loss
"""
import numpy as np

import graphc
from graphc import nn, optim

# The four input points, and each gate's labels in {-1, +1} (the logistic loss's convention).
X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {
    "OR": np.array([-1.0, 1.0, 1.0, 1.0]),
    "AND": np.array([-1.0, -1.0, -1.0, 1.0]),
    "XOR": np.array([-1.0, 1.0, 1.0, -1.0]),
}


def init_linear():
    return {"w": np.zeros(2), "b": np.zeros(1)}


def init_mlp(rng, hidden=3):
    return {"W1": rng.normal(size=(2, hidden)), "b1": np.zeros(hidden),
            "w2": rng.normal(size=hidden), "b2": np.zeros(1)}


def linear_scores(params, x):
    return x @ params["w"] + params["b"]


def mlp_scores(params, x):
    h = np.tanh(x @ params["W1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


@graphc.example(init_linear(), X, GATES["OR"])
def linear_loss(params, x, y):
    """Logistic loss of a single linear unit: mean(log(1 + exp(-y * score)))."""
    return nn.logistic_loss(linear_scores(params, x), y)


@graphc.example(init_mlp(np.random.default_rng(0)), X, GATES["XOR"])
def mlp_loss(params, x, y):
    """Logistic loss of a 2-3-1 tanh network."""
    return nn.logistic_loss(mlp_scores(params, x), y)


def make_train_step(loss_fn, opt):
    """One compiled function: loss, gradients and the optimizer's update."""
    @graphc.compile
    def train_step(params, state, x, y):
        loss, grads = graphc.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss
    return train_step


def train(loss_fn, params, x, y, steps=300, lr=0.1):
    """Adam for ``steps`` full-batch steps; returns ``(params, final loss)``."""
    opt = optim.adam(lr)
    state = opt.init(params)
    step = make_train_step(loss_fn, opt)
    loss = None
    for _ in range(steps):
        params, state, loss = step(params, state, x, y)
    return params, float(loss)


def accuracy(scores, y):
    """The fraction of points on the right side: sign(score) == y."""
    return float(np.mean(np.where(scores > 0, 1.0, -1.0) == y))


def best_linear_accuracy(x, y, n=181):
    """The best accuracy any linear unit reaches, by search over directions and offsets.

    A linear unit's decision depends only on the direction of ``w`` and on ``b``;
    for 4 points, a fine grid of directions and offsets meets every way a line
    can split them.
    """
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    w = np.stack([np.cos(angles), np.sin(angles)], axis=1)        # (n, 2) unit directions
    proj = x @ w.T                                                  # (points, n)
    offsets = np.linspace(-1.6, 1.6, 2 * n + 1)                     # beyond every projection
    scores = proj[None, :, :] - offsets[:, None, None]              # (offsets, points, n)
    pred = np.where(scores > 0, 1.0, -1.0)
    return float((pred == y[None, :, None]).mean(axis=1).max())


def run(steps=300, seed=0, out=print):
    """Train every model; return ``{name: accuracy}``."""
    results = {}
    for gate, y in GATES.items():
        params, loss = train(linear_loss, init_linear(), X, y, steps=steps)
        acc = accuracy(linear_scores(params, X), y)
        results[f"linear {gate}"] = acc
        out(f"single linear unit, {gate:3}: accuracy {acc:4.0%}  (loss {loss:.3f})")
    best = best_linear_accuracy(X, GATES["XOR"])
    results["best linear XOR"] = best
    out(f"best any linear unit can do on XOR: {best:.0%} (3 of 4 points; no line separates XOR)")
    params, loss = train(mlp_loss, init_mlp(np.random.default_rng(seed)), X, GATES["XOR"],
                         steps=steps)
    acc = accuracy(mlp_scores(params, X), GATES["XOR"])
    results["mlp XOR"] = acc
    out(f"2-3-1 tanh network,   XOR: accuracy {acc:4.0%}  (loss {loss:.3f})")
    return results


def main():
    run()


if __name__ == "__main__":
    main()
