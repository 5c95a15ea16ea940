"""An MLP with dropout on scikit-learn's 8x8 digits.

64 pixels - dense 256 - relu - dense 10, with 20% of the input pixels and 50%
of the hidden units dropped at random in every training step (the kept ones
scaled by ``1 / (1 - rate)``), and no dropout at test time.  The dropout key
is a traced ``np.int64``: a new key each step gives new masks without
re-tracing the compiled train step, and the backward pass reuses the forward
pass's masks.

    python examples/mlp_dropout.py             # trains, prints the test accuracy (~97%)
    graphc trace  examples/mlp_dropout.py:loss
    graphc source examples/mlp_dropout.py:loss --grad
    graphc render examples/mlp_dropout.py:loss --grad -o dropout.svg
    graphc check  examples/mlp_dropout.py:loss

Needs scikit-learn for the data (``pip install scikit-learn``); the functions
themselves need only graphc.
"""
import os

import numpy as np

import graphc
from graphc import nn, optim

N_TEST = 360
INPUT_RATE = 0.2
HIDDEN_RATE = 0.5


def init_params(rng, hidden=256):
    return {"W1": nn.init.he_normal(rng, (64, hidden)), "b1": np.zeros(hidden),
            "W2": nn.init.glorot_uniform(rng, (hidden, 10)), "b2": np.zeros(10)}


def logits(params, x, key=np.int64(0), training=False):
    """``x``: (N, 64) pixels in [0, 1] -> (N, 10) scores; dropout only when ``training``."""
    x = nn.dropout(x, INPUT_RATE, key, training=training)
    h = nn.relu(x @ params["W1"] + params["b1"])
    h = nn.dropout(h, HIDDEN_RATE, key + 1_000_003, training=training)
    return h @ params["W2"] + params["b2"]


def predict(params, x):
    """Test-time scores: no dropout."""
    return logits(params, x, training=False)


_rng = np.random.default_rng(0)


@graphc.example(init_params(np.random.default_rng(0), hidden=16), _rng.random((4, 64)),
                np.array([0, 1, 2, 3]), np.int64(7))
def loss(params, x, y, key):
    """Mean cross-entropy of the training-mode network (dropout masks drawn from ``key``)."""
    return nn.cross_entropy(logits(params, x, key, training=True), y)


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
    def train_step(params, state, x, y, key):
        value, grads = graphc.value_and_grad(loss)(params, x, y, key)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(data, steps=600, batch=64, lr=3e-3, seed=0):
    """Minibatch Adam; returns ``(params, last loss, test accuracy)``."""
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    opt = optim.adam(lr)
    state = opt.init(params)
    step_fn = make_train_step(opt)
    perm, pos = rng.permutation(len(y_train)), 0
    value = None
    for step in range(steps):
        if pos + batch > len(y_train):
            perm, pos = rng.permutation(len(y_train)), 0
        idx = perm[pos:pos + batch]
        pos += batch
        params, state, value = step_fn(params, state, x_train[idx], y_train[idx], np.int64(step))
    acc = float(np.mean(np.argmax(graphc.compile(predict)(params, x_test), axis=1) == y_test))
    return params, float(value), acc


def main(steps=None):
    """Train and print the test accuracy (``GRAPHC_EXAMPLES_FAST=1``: fewer steps)."""
    try:
        data = load_digits()
    except ImportError:
        print("this example needs scikit-learn for the digits: pip install scikit-learn")
        return None
    if steps is None:
        steps = 100 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 600
    _, value, acc = train(data, steps=steps)
    print(f"MLP 64-256-10 with dropout ({INPUT_RATE:.0%} inputs, {HIDDEN_RATE:.0%} hidden), "
          f"{steps} Adam steps of 64 digits (last loss {value:.3f})")
    print(f"test accuracy {acc:.1%} on {N_TEST} held-out digits (no dropout at test time)")
    return acc


if __name__ == "__main__":
    main()
