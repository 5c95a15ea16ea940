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

    python examples/lenet.py --mnist ~/data/mnist   # 28x28 MNIST from IDX files you have

The 8x8 digits come with scikit-learn (``pip install scikit-learn``); with
``--mnist DIR`` (or ``GRAPHC_MNIST=DIR``) the same network trains on the MNIST
IDX files in ``DIR`` instead (``graphc.datasets.load_mnist``).  The functions
themselves (``logits``, ``loss``) need only graphc.
"""
import argparse
import os
import sys
import time

import numpy as np

import graphc
from graphc import datasets, nn, optim

N_TEST = 360


def init_params(rng, dtype=np.float64, side=8):
    """Parameters for ``side`` x ``side`` images (8 for the digits, 28 for MNIST)."""
    def dense(n_in, n_out):
        return {"w": nn.init.glorot_uniform(rng, (n_in, n_out), dtype), "b": np.zeros(n_out, dtype)}

    def conv(f, c):
        return {"w": nn.init.he_normal(rng, (f, c, 3, 3), dtype), "b": np.zeros(f, dtype)}
    return {"conv1": conv(8, 1), "conv2": conv(16, 8), "fc1": dense(16 * (side // 4) ** 2, 32),
            "fc2": dense(32, 10)}


def logits(params, x):
    """``x``: (N, 1, 8, 8) images in [0, 1] -> (N, 10) class scores."""
    with graphc.scope("conv1"):
        h = nn.relu(nn.conv2d(x, params["conv1"]["w"], params["conv1"]["b"], padding=1))
    with graphc.scope("pool1"):
        h = nn.max_pool2d(h, 2)                                       # (N, 8, 4, 4) for 8x8
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
    """``(x_train, y_train, x_test, y_test)``: 1437 training and 360 test images (N, 1, 8, 8)."""
    return datasets.load_digits(n_test=N_TEST, seed=seed)


def make_train_step(opt):
    @graphc.compile
    def train_step(params, state, x, y):
        value, grads = graphc.value_and_grad(loss)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, value
    return train_step


def train(steps=300, batch=64, lr=1e-2, seed=0, progress=None, data=None):
    """Train on ``data`` (default: the 8x8 digits); return ``(params, test accuracy, seconds)``.

    ``progress(step, steps, loss)`` is called after every step.
    """
    data = load_digits(seed) if data is None else data
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    params = init_params(rng, side=x_train.shape[-1])
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
    # in slices, so a 10,000-image MNIST test set does not build one huge im2col array
    scores = np.concatenate([predict(params, x_test[i:i + 1000])
                             for i in range(0, len(x_test), 1000)])
    acc = float(np.mean(np.argmax(scores, axis=1) == y_test))
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


def main(steps=None, mnist=None):
    """Train and print the test accuracy (``GRAPHC_EXAMPLES_FAST=1``: a few steps only).

    ``mnist``: a folder of MNIST IDX files (default: ``$GRAPHC_MNIST``, else the digits).
    """
    if steps is None:
        steps = 20 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 300
    try:
        data = datasets.load(mnist, seed=0)
    except ImportError as e:
        print(f"this example needs data: {e}")
        return None
    print(f"LeNet-style CNN on {data.name}, {steps} Adam steps of 64 images:")
    _, acc, seconds = train(steps=steps, progress=progress_bar, data=data)
    print(f"test accuracy {acc:.1%} on {len(data.y_test)} held-out images ({seconds:.1f} s)")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="Adam steps (default 300)")
    parser.add_argument("--mnist", metavar="DIR", help="folder of MNIST IDX files "
                        "(default: $GRAPHC_MNIST, else scikit-learn's 8x8 digits)")
    cli = parser.parse_args()
    main(cli.steps, cli.mnist)
