"""A small LeNet-style CNN on scikit-learn's 8x8 digits (bundled: no download).

conv 3x3 (1->8) - relu - max-pool 2 - conv 3x3 (8->16) - relu - max-pool 2 -
dense 64->32 - relu - dense 32->10, trained with Adam by one compiled train
step (forward, backward and update in a single generated NumPy function).
Each layer runs inside ``graphc.scope``, so drawings can collapse it into
one box.

    python examples/lenet.py                 # trains, prints the test accuracy (~97%)
    graphc trace  examples/lenet.py:loss
    graphc render examples/lenet.py:loss --grad --collapse -o lenet.svg
    graphc check  examples/lenet.py:loss

Needs scikit-learn for the data (``pip install scikit-learn``); the functions
themselves (``logits``, ``loss``) need only graphc.
"""
import os
import sys
import time

import numpy as np

import graphc
from graphc import nn, optim

N_TEST = 360


def init_params(rng, dtype=np.float64):
    def dense(n_in, n_out):
        return {"w": nn.init.glorot_uniform(rng, (n_in, n_out), dtype), "b": np.zeros(n_out, dtype)}

    def conv(f, c):
        return {"w": nn.init.he_normal(rng, (f, c, 3, 3), dtype), "b": np.zeros(f, dtype)}
    return {"conv1": conv(8, 1), "conv2": conv(16, 8), "fc1": dense(16 * 2 * 2, 32),
            "fc2": dense(32, 10)}


def logits(params, x):
    """``x``: (N, 1, 8, 8) images in [0, 1] -> (N, 10) class scores."""
    with graphc.scope("conv1"):
        h = nn.relu(nn.conv2d(x, params["conv1"]["w"], params["conv1"]["b"], padding=1))
    with graphc.scope("pool1"):
        h = nn.max_pool2d(h, 2)                                       # (N, 8, 4, 4)
    with graphc.scope("conv2"):
        h = nn.relu(nn.conv2d(h, params["conv2"]["w"], params["conv2"]["b"], padding=1))
    with graphc.scope("pool2"):
        h = nn.max_pool2d(h, 2)                                       # (N, 16, 2, 2)
    with graphc.scope("fc1"):
        h = nn.relu(nn.flatten(h) @ params["fc1"]["w"] + params["fc1"]["b"])
    with graphc.scope("fc2"):
        return h @ params["fc2"]["w"] + params["fc2"]["b"]


_rng = np.random.default_rng(0)


@graphc.example(init_params(np.random.default_rng(0)), _rng.random((4, 1, 8, 8)),
                np.array([0, 1, 2, 3]))
def loss(params, x, y):
    """Mean cross-entropy of the CNN's scores against integer labels ``y``."""
    scores = logits(params, x)
    with graphc.scope("loss"):
        return nn.cross_entropy(scores, y)


def load_digits(seed=0):
    """``(x_train, y_train, x_test, y_test)``: 1437 training and 360 test images."""
    from sklearn.datasets import load_digits as sklearn_digits
    digits = sklearn_digits()
    x = (digits.images / 16.0)[:, None, :, :]                        # (1797, 1, 8, 8)
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


def train(steps=300, batch=64, lr=1e-2, seed=0, progress=None):
    """Train on the digits; return ``(params, test accuracy, seconds)``.

    ``progress(step, steps, loss)`` is called after every step.
    """
    x_train, y_train, x_test, y_test = load_digits(seed)
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    opt = optim.adam(lr)
    state = opt.init(params)
    step_fn = make_train_step(opt)
    predict = graphc.compile(logits)
    start = time.perf_counter()
    perm, pos = rng.permutation(len(y_train)), 0
    for step in range(1, steps + 1):
        if pos + batch > len(y_train):
            perm, pos = rng.permutation(len(y_train)), 0
        idx = perm[pos:pos + batch]
        pos += batch
        params, state, value = step_fn(params, state, x_train[idx], y_train[idx])
        if progress is not None:
            progress(step, steps, float(value))
    acc = float(np.mean(np.argmax(predict(params, x_test), axis=1) == y_test))
    return params, acc, time.perf_counter() - start


def progress_bar(step, steps, value, width=30, stream=None):
    """A one-line text progress bar (redrawn in place on a terminal)."""
    stream = stream or sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    if not tty and step != steps and step % max(1, steps // 4):
        return
    done = int(width * step / steps)
    line = f"    [{'#' * done}{'.' * (width - done)}] step {step:4d}/{steps}  loss {value:.3f}"
    stream.write(("\r" + line if tty else line + "\n") + ("\n" if tty and step == steps else ""))
    stream.flush()


def main(steps=None):
    """Train and print the test accuracy (``GRAPHC_EXAMPLES_FAST=1``: a few steps only)."""
    if steps is None:
        steps = 20 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 300
    print(f"LeNet-style CNN on 8x8 digits, {steps} Adam steps of 64 images:")
    _, acc, seconds = train(steps=steps, progress=progress_bar)
    print(f"test accuracy {acc:.1%} on {N_TEST} held-out digits ({seconds:.1f} s)")
    return acc


if __name__ == "__main__":
    main()
