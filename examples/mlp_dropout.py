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

    python examples/mlp_dropout.py --mnist ~/data/mnist   # MNIST IDX files you have

The 8x8 digits come with scikit-learn (``pip install scikit-learn``); with
``--mnist DIR`` (or ``GRAPHC_MNIST=DIR``) the network trains on the MNIST IDX
files in ``DIR`` instead (``graphc.datasets.load_mnist``).  The functions
themselves need only graphc.
"""
import argparse
import os
import sys

import numpy as np

import graphc
from graphc import datasets, nn, optim

INPUT_RATE = 0.2
HIDDEN_RATE = 0.5


def init_params(rng, hidden=256, n_in=64):
    return {"W1": nn.init.he_normal(rng, (n_in, hidden)), "b1": np.zeros(hidden),
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


def load_data(mnist=None, seed=0):
    """Flattened images in [0, 1]: MNIST from ``mnist`` (or ``$GRAPHC_MNIST``), else the
    digits (1,437 training and 360 test images, split at random by ``seed``)."""
    return datasets.load(mnist, flat=True, seed=seed)


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y, key):
        value, grads = graphc.value_and_grad(loss)(params, x, y, key)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(data, steps=600, batch=64, lr=3e-3, seed=0, progress=None):
    """Minibatch Adam; returns ``(params, last loss, test accuracy)``.

    ``progress(step, steps, loss)`` is called after every step.
    """
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    params = init_params(rng, n_in=x_train.shape[1])
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
        if progress is not None:
            progress(step + 1, steps, float(value))
    acc = float(np.mean(np.argmax(graphc.compile(predict)(params, x_test), axis=1) == y_test))
    return params, float(value), acc


def progress_bar(step, steps, value, width=30, stream=None):
    """A one-line text progress bar (redrawn in place on a terminal, every quarter otherwise)."""
    stream = stream or sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    if not tty and step != steps and step % max(1, steps // 4):
        return
    done = int(width * step / steps)
    line = f"    [{'#' * done}{'.' * (width - done)}] step {step:4d}/{steps}  loss {value:.3f}"
    stream.write(("\r" + line if tty else line + "\n") + ("\n" if tty and step == steps else ""))
    stream.flush()


def main(steps=None, mnist=None):
    """Train and print the test accuracy (``GRAPHC_EXAMPLES_FAST=1``: fewer steps).

    ``mnist``: a folder of MNIST IDX files (default: ``$GRAPHC_MNIST``, else the digits).
    """
    try:
        data = load_data(mnist)
    except ImportError as e:
        print(f"this example needs data: {e}")
        return None
    if steps is None:
        steps = 100 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 600
    print(f"MLP {data.x_train.shape[1]}-256-10 with dropout ({INPUT_RATE:.0%} inputs, "
          f"{HIDDEN_RATE:.0%} hidden) on {data.name}, {steps} Adam steps of 64 images:")
    _, value, acc = train(data, steps=steps, progress=progress_bar)
    print(f"test accuracy {acc:.1%} on {len(data.y_test)} held-out images "
          "(no dropout at test time)")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="Adam steps (default 600)")
    parser.add_argument("--mnist", metavar="DIR", help="folder of MNIST IDX files "
                        "(default: $GRAPHC_MNIST, else scikit-learn's 8x8 digits)")
    cli = parser.parse_args()
    main(cli.steps, cli.mnist)
