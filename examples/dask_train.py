"""Data-parallel training on Dask: an MLP on scikit-learn's 8x8 digits, the batch split
over workers by ``graphc.dask.value_and_grad``.

Each step, every worker computes its chunk's loss and gradient with the gradient module
graphc generated (one per chunk size, sent as text), and Dask sums the weighted results
as a tree; the parameters travel to the workers once per step.  graphc first proves from
the graph that the loss is a mean over examples (so the chunk results sum exactly); a
loss that mixes examples (batch statistics) is refused.

    python examples/dask_train.py                        # a LocalCluster of 2 workers here
    python examples/dask_train.py --scheduler tcp://10.0.0.5:8786   # a real cluster
    python examples/dask_train.py --synthetic            # random data (no scikit-learn)
    graphc source examples/dask_train.py:loss --grad     # the module every worker runs

On a real cluster the workers need NumPy and graphc (not this file); the data here is
made on the client and persisted on the workers (``client.persist``): with data too big
for the client, build the Dask arrays from files the workers read (``da.from_zarr``,
``dask.dataframe``) instead, chunked along the examples.  See docs/scale.md.
"""
import argparse
import os
import time

import numpy as np

import graphc
from graphc import nn

HIDDEN = 32


def init_params(n_in=64, n_hidden=HIDDEN, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"W1": rng.normal(size=(n_in, n_hidden)) * np.sqrt(2.0 / n_in), "b1": np.zeros(n_hidden),
            "W2": rng.normal(size=(n_hidden, n_out)) * np.sqrt(1.0 / n_hidden), "b2": np.zeros(n_out)}


def logits(params, x):
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    return h @ params["W2"] + params["b2"]


_rng = np.random.default_rng(0)


@graphc.example(init_params(), _rng.random((4, 64)), np.array([0, 1, 2, 3]))
def loss(params, x, y):
    """Mean cross-entropy over the examples: the per-example terms sum over chunks."""
    return nn.cross_entropy(logits(params, x), y)


def load_data(synthetic=False, seed=0):
    """``(x_train, y_train, x_test, y_test)``: the digits, or random data of their shape."""
    if not synthetic:
        try:
            from graphc import datasets
            return tuple(datasets.load_digits(flat=True, seed=seed))
        except ImportError:
            print("scikit-learn is not installed: training on random data")
    rng = np.random.default_rng(seed)
    x = rng.random((1797, 64))
    y = np.argmax(x @ rng.normal(size=(64, 10)), axis=1)
    return x[:1437], y[:1437], x[1437:], y[1437:]


def connect(scheduler=None):
    """A ``distributed.Client``: to ``scheduler`` (an address), else a LocalCluster."""
    from distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                           processes=not os.environ.get("GRAPHC_EXAMPLES_FAST"))
    return Client(cluster)


def train(client, data, steps=60, lr=0.5, chunk=400):
    """Plain SGD on the whole training set each step; returns ``(params, losses, accuracy)``."""
    import dask.array as da
    x_train, y_train, x_test, y_test = data
    # Uneven chunks along the examples (1,437 = 3 x 400 + 237); persisted on the workers.
    x = client.persist(da.from_array(x_train, chunks=(chunk, x_train.shape[1])))
    y = client.persist(da.from_array(y_train, chunks=chunk))
    value_and_grad = graphc.dask.value_and_grad(loss, batch_argnums=(1, 2), client=client)
    params, losses = init_params(n_in=x_train.shape[1]), []
    for _ in range(steps):
        value, grads = value_and_grad(params, x, y)
        params = {k: params[k] - lr * grads[k] for k in params}
        losses.append(float(value))
    acc = float(np.mean(np.argmax(logits(params, x_test), axis=1) == y_test))
    return params, losses, acc


def check_against_one_process(client, data, chunk=400):
    """The distributed value and gradient equal ``graphc.value_and_grad`` on the whole batch."""
    import dask.array as da
    x_train, y_train = data[0], data[1]
    params = init_params(n_in=x_train.shape[1])
    v, g = graphc.dask.value_and_grad(loss, batch_argnums=(1, 2), client=client)(
        params, da.from_array(x_train, chunks=(chunk, x_train.shape[1])),
        da.from_array(y_train, chunks=chunk))
    v1, g1 = graphc.value_and_grad(loss)(params, x_train, y_train)
    return max([abs(v - v1)] + [float(np.max(np.abs(g[k] - g1[k]))) for k in g])


def main(scheduler=None, steps=None, synthetic=False):
    if steps is None:
        steps = 10 if os.environ.get("GRAPHC_EXAMPLES_FAST") else 60
    data = load_data(synthetic)
    client = connect(scheduler)
    try:
        print(f"dask: {len(client.scheduler_info()['workers'])} workers at "
              f"{client.scheduler.address}")
        print(f"largest difference from one process: {check_against_one_process(client, data):.2e}")
        start = time.perf_counter()
        _, losses, acc = train(client, data, steps=steps)
        took = time.perf_counter() - start
        print(f"{steps} SGD steps on {len(data[1])} examples in {took:.1f} s: "
              f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, test accuracy {acc:.1%}")
        return losses, acc
    finally:
        cluster = None if scheduler else client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--steps", type=int, help="SGD steps (default 60)")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of digits")
    cli = parser.parse_args()
    main(cli.scheduler, cli.steps, cli.synthetic)
