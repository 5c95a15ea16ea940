"""End to end: train a small CNN on scikit-learn's 8x8 digits with one compiled
train step (forward + backward + Adam update in a single generated function)."""
from __future__ import annotations

import time

import numpy as np
import pytest

sklearn_datasets = pytest.importorskip("sklearn.datasets")

import graphc  # noqa: E402
from graphc import nn, optim  # noqa: E402

SEED = 0
N_TEST = 360
BATCH = 64
STEPS = 200
TARGET = 0.95


def load_split():
    digits = sklearn_datasets.load_digits()          # bundled with scikit-learn: no download
    x = (digits.images / 16.0).astype(np.float64)[:, None, :, :]     # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    test, train = order[:N_TEST], order[N_TEST:]
    return x[train], y[train], x[test], y[test]


def init_params(rng):
    return {"conv": {"w": nn.init.he_normal(rng, (8, 1, 3, 3)), "b": np.zeros(8)},
            "dense": {"w": nn.init.glorot_uniform(rng, (8 * 4 * 4, 10)), "b": np.zeros(10)}}


def logits(p, x):
    h = nn.relu(nn.conv2d(x, p["conv"]["w"], p["conv"]["b"], padding=1))   # (N, 8, 8, 8)
    h = nn.max_pool2d(h, 2)                                                  # (N, 8, 4, 4)
    return nn.flatten(h) @ p["dense"]["w"] + p["dense"]["b"]


def loss_fn(p, x, y):
    return nn.cross_entropy(logits(p, x), y)


def test_cnn_reaches_95_percent_on_digits():
    x_train, y_train, x_test, y_test = load_split()
    rng = np.random.default_rng(SEED)
    params = init_params(rng)
    opt = optim.adam(1e-2)
    state = opt.init(params)
    traces = []

    @graphc.compile
    def train_step(params, state, x, y):
        traces.append(1)
        loss, grads = graphc.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    predict = graphc.compile(logits)

    def accuracy(p):
        return float(np.mean(np.argmax(predict(p, x_test), axis=1) == y_test))

    src = train_step.source(params, state, x_train[:BATCH], y_train[:BATCH])
    assert src.count("\ndef ") - src.count("\ndef _") == 1   # besides the entry-check helpers
    assert "# grad of:" in src and "np.sqrt(" in src

    start = time.perf_counter()
    n_train = len(y_train)
    perm = rng.permutation(n_train)
    pos, reached, acc, losses = 0, None, 0.0, []
    for step in range(1, STEPS + 1):
        if pos + BATCH > n_train:
            perm, pos = rng.permutation(n_train), 0
        idx = perm[pos:pos + BATCH]
        pos += BATCH
        params, state, loss = train_step(params, state, x_train[idx], y_train[idx])
        losses.append(float(loss))
        if step % 25 == 0:
            acc = accuracy(params)
            if reached is None and acc >= TARGET:
                reached = step
    elapsed = time.perf_counter() - start
    print(f"\ndigits: test accuracy >= {TARGET} first after {reached} steps; {acc:.4f} after "
          f"{STEPS} steps ({elapsed:.2f} s); loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f}")
    assert len(traces) == 1                   # every step ran the same generated code
    assert np.all(np.isfinite(losses))
    assert reached is not None, f"test accuracy {acc:.4f} < {TARGET} after {STEPS} steps"
    assert acc >= TARGET, f"final test accuracy {acc:.4f} < {TARGET}"
    assert elapsed < 30
    # Compiled and eager forward agree on the trained model.
    np.testing.assert_allclose(predict(params, x_test[:50]), logits(params, x_test[:50]),
                               rtol=1e-12, atol=1e-12)
