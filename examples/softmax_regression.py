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

    python examples/softmax_regression.py --mnist ~/data/mnist   # MNIST IDX files you have

The 8x8 digits come with scikit-learn (``pip install scikit-learn``); with
``--mnist DIR`` (or ``GRAPHC_MNIST=DIR``) the model trains on the MNIST IDX
files in ``DIR`` instead (``graphc.datasets.load_mnist``).  The functions
themselves need only graphc.
"""
import argparse
import os
import sys

import numpy as np

import graphc
from graphc import datasets, nn, optim

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


def load_data(mnist=None, seed=0):
    """Flattened images in [0, 1]: MNIST from ``mnist`` (or ``$GRAPHC_MNIST``), else the
    digits (1,437 training and 360 test images, split at random by ``seed``)."""
    return datasets.load(mnist, flat=True, seed=seed)


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y):
        value, grads = graphc.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(data, steps=300, lr=0.05, progress=None):
    """Full-batch Adam; returns ``(params, final loss, test accuracy)``.

    ``progress(step, steps, loss)`` is called after every step.
    """
    x_train, y_train, x_test, y_test = data
    params = init_params(n_in=x_train.shape[1])
    opt = optim.adam(lr)
    state = opt.init(params)
    step = make_train_step(opt)
    value = None
    for i in range(1, steps + 1):
        params, state, value = step(params, state, x_train, y_train)
        if progress is not None:
            progress(i, steps, float(value))
    acc = float(np.mean(np.argmax(logits(params, x_test), axis=1) == y_test))
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
        steps = 100 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 300
    print(f"softmax regression on {data.name}, {steps} full-batch Adam steps "
          f"({len(data.y_train)} images each):")
    _, value, acc = train(data, steps=steps, progress=progress_bar)
    print(f"test accuracy {acc:.1%} on {len(data.y_test)} held-out images")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="Adam steps (default 300)")
    parser.add_argument("--mnist", metavar="DIR", help="folder of MNIST IDX files "
                        "(default: $GRAPHC_MNIST, else scikit-learn's 8x8 digits)")
    cli = parser.parse_args()
    main(cli.steps, cli.mnist)
