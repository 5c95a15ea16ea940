"""A per-example MLP loss for the vmap tests (its own file: golden line numbers stay put)."""
import numpy as np


def mlp_loss(params, x, y):
    W1, b1, W2, b2 = params
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = logits.max()
    logp = logits - m - np.log(np.sum(np.exp(logits - m)))
    return -logp[y]


def mlp_setup(n=6):
    rng = np.random.default_rng(0)
    params = (rng.standard_normal((4, 5)), rng.standard_normal(5),
              rng.standard_normal((5, 3)), rng.standard_normal(3))
    return params, rng.standard_normal((n, 4)), rng.integers(0, 3, size=n)
