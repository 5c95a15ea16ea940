"""Per-example gradients of an MLP with ``graphc.vmap(graphc.grad(loss))``.

``graphc.grad(loss)`` is the gradient of one example's loss; ``graphc.vmap`` batches it
over the examples (``in_axes=(None, 0, 0)``: the same weights, one row of ``x`` and one
label each), so one generated function returns every example's gradient, as plain NumPy
over the batch axis instead of a Python loop.  Per-example gradient norms are what
gradient clipping per example (DP-SGD) and data-attribution methods need.

    python examples/per_example_grads.py     # norms, checked against a loop; timings
    graphc trace  examples/per_example_grads.py:mean_sq_grad_norm
    graphc source examples/per_example_grads.py:mean_sq_grad_norm
    graphc check  examples/per_example_grads.py:mean_sq_grad_norm
"""
import time

import numpy as np

import graphc


def init_params(rng, n_in=8, n_hidden=16, n_out=3):
    return {"W1": rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in), "b1": np.zeros(n_hidden),
            "W2": rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden), "b2": np.zeros(n_out)}


def loss(params, x, y):
    """Cross-entropy of ONE example: ``x`` (n_in,) features, ``y`` an integer label."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    m = logits.max()
    logp = logits - m - np.log(np.sum(np.exp(logits - m)))
    return -logp[y]


per_example_grads = graphc.vmap(graphc.grad(loss), in_axes=(None, 0, 0))


def grad_norms(params, x, y):
    """The norm of each example's gradient (all parameters together): shape (N,)."""
    g = per_example_grads(params, x, y)
    return np.sqrt(sum(np.sum(v.reshape(len(x), -1) ** 2, axis=1) for v in g.values()))


_rng = np.random.default_rng(0)


@graphc.example(init_params(_rng, 4, 5, 3), _rng.normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2]))
def mean_sq_grad_norm(params, x, y):
    """The mean over examples of the squared norm of each example's gradient."""
    g = per_example_grads(params, x, y)
    return sum(np.sum(v * v) for v in g.values()) / len(x)


def main(n=256, seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    x = rng.normal(size=(n, 8))
    y = rng.integers(0, 3, size=n)
    norms = grad_norms(params, x, y)
    grad = graphc.grad(loss)
    loop = np.array([np.sqrt(sum(np.sum(v * v) for v in grad(params, xi, yi).values()))
                     for xi, yi in zip(x, y)])
    print(f"per-example gradient norms of {n} examples: min {norms.min():.4f}, "
          f"median {np.median(norms):.4f}, max {norms.max():.4f}")
    print(f"largest difference from a Python loop of graphc.grad: "
          f"{np.abs(norms - loop).max():.1e}")
    t0 = time.perf_counter()
    per_example_grads(params, x, y)
    t1 = time.perf_counter()
    for xi, yi in zip(x, y):
        grad(params, xi, yi)
    t2 = time.perf_counter()
    print(f"vmap(grad): {1e3 * (t1 - t0):.2f} ms, loop of grad: {1e3 * (t2 - t1):.2f} ms")


if __name__ == "__main__":
    main()
