"""A corpus of user functions shared by the tests (line numbers are golden-tested)."""
import numpy as np


def lecture(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    return z4 * z5


def lecture_grad_closed_form(w1, w2):
    """The lecture example's partial derivatives, by hand (product and chain rule)."""
    z1 = w1 / w2
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = np.sin(2 * np.pi * z1) + z4
    dz4_dw1, dz4_dw2 = 3 / w2, -3 * w1 / w2 ** 2 - 2 * z3
    c = 2 * np.pi * np.cos(2 * np.pi * z1)
    dz5_dw1, dz5_dw2 = c / w2 + dz4_dw1, -c * w1 / w2 ** 2 + dz4_dw2
    return dz4_dw1 * z5 + z4 * dz5_dw1, dz4_dw2 * z5 + z4 * dz5_dw2


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    h2 = np.maximum(0, h @ params["W2"] + params["b2"])
    logits = h2 @ params["W3"] + params["b3"]
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -logp[np.arange(n), y].mean()
    return loss


def mlp_params(rng, sizes=(5, 4, 3, 2), dtype=np.float64):
    params = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"W{i}"] = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(dtype)
        params[f"b{i}"] = (0.1 * rng.normal(size=b)).astype(dtype)
    return params
