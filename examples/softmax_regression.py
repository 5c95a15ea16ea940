"""Softmax regression: multi-class logistic regression on scikit-learn's 8x8 digits.

One linear layer maps the 64 pixels to 10 class scores; the softmax of the
scores is the predicted distribution over classes and the loss is the mean
cross-entropy (``graphc.nn.cross_entropy``) with a small L2 penalty.  The
training is full-batch Adam in one compiled train step.

    python examples/softmax_regression.py      # trains, prints the test accuracy (~96%)
    graphc trace  examples/softmax_regression.py:loss
    graphc source examples/softmax_regression.py:loss --grad
    graphc render examples/softmax_regression.py:loss --grad -o softmax.svg
    graphc check  examples/softmax_regression.py:loss

Needs scikit-learn for the data (``pip install scikit-learn``); the functions
themselves need only graphc.
"""
import os

import numpy as np

import graphc
from graphc import nn, optim

N_TEST = 360
L2 = 1e-4


def init_params(n_in=64, n_out=10):
    return {"W": np.zeros((n_in, n_out)), "b": np.zeros(n_out)}


def logits(params, x):
    """``x``: (N, 64) pixels in [0, 1] -> (N, 10) class scores."""
    return x @ params["W"] + params["b"]


_rng = np.random.default_rng(0)


@graphc.example({"W": _rng.normal(size=(64, 10)) * 0.1, "b": np.zeros(10)},
                _rng.random((4, 64)), np.array([0, 1, 2, 3]))
def loss(params, x, y):
    """Mean cross-entropy against integer labels, plus ``L2 * sum(W^2)``."""
    return nn.cross_entropy(logits(params, x), y) + L2 * np.sum(params["W"] * params["W"])


def load_digits(seed=0):
    """``(x_train, y_train, x_test, y_test)``: flattened 8x8 images scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits
    digits = sklearn_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:N_TEST], order[N_TEST:]
    return x[train], y[train], x[test], y[test]


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y):
        value, grads = graphc.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(data, steps=300, lr=0.05):
    """Full-batch Adam; returns ``(params, final loss, test accuracy)``."""
    x_train, y_train, x_test, y_test = data
    params = init_params()
    opt = optim.adam(lr)
    state = opt.init(params)
    step = make_train_step(opt)
    value = None
    for _ in range(steps):
        params, state, value = step(params, state, x_train, y_train)
    acc = float(np.mean(np.argmax(logits(params, x_test), axis=1) == y_test))
    return params, float(value), acc


def main(steps=None):
    """Train and print the test accuracy (``GRAPHC_EXAMPLES_FAST=1``: fewer steps)."""
    try:
        data = load_digits()
    except ImportError:
        print("this example needs scikit-learn for the digits: pip install scikit-learn")
        return None
    if steps is None:
        steps = 100 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 300
    _, value, acc = train(data, steps=steps)
    print(f"softmax regression on 8x8 digits, {steps} full-batch Adam steps (loss {value:.3f})")
    print(f"test accuracy {acc:.1%} on {N_TEST} held-out digits")
    return acc


if __name__ == "__main__":
    main()
