"""Per-example gradients of the W2 MLP (784-256-128-10, ReLU, batch 128, float32).

    python benchmarks/per_example.py            # prints a small table (median of repeats)

Three ways to get one gradient per example: ``graphc.vmap(graphc.grad(loss))`` (one
generated function over the batch axis), a Python loop of ``graphc.grad`` (128 calls of
the per-example gradient), and ``torch.func.vmap(torch.func.grad(loss))`` where torch is
installed.  All are checked against each other before anything is timed.
"""
from __future__ import annotations

import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import graphc  # noqa: E402

F32 = np.float32
KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def params_and_data(n=128, seed=0):
    rng = np.random.default_rng(seed)

    def glorot(shape):
        lim = np.sqrt(6.0 / sum(shape))
        return rng.uniform(-lim, lim, shape).astype(F32)
    p = {"W1": glorot((784, 256)), "b1": np.full(256, 0.01, F32),
         "W2": glorot((256, 128)), "b2": np.full(128, 0.01, F32),
         "W3": glorot((128, 10)), "b3": np.zeros(10, F32)}
    return p, rng.normal(size=(n, 784)).astype(F32), rng.integers(0, 10, n)


def loss(p, x, y):
    """One example: ``x`` (784,), ``y`` an integer label."""
    h1 = np.maximum(0, x @ p["W1"] + p["b1"])
    h2 = np.maximum(0, h1 @ p["W2"] + p["b2"])
    s = h2 @ p["W3"] + p["b3"]
    z = s - s.max()
    return -(z - np.log(np.exp(z).sum()))[y]


def torch_impl(p, x, y):
    try:
        import torch
    except ImportError:
        return None
    tp = {k: torch.tensor(v) for k, v in p.items()}
    tx, ty = torch.tensor(x), torch.tensor(np.eye(10, dtype=F32)[y])

    def tloss(p, x, y):
        h1 = torch.relu(x @ p["W1"] + p["b1"])
        h2 = torch.relu(h1 @ p["W2"] + p["b2"])
        return -(torch.log_softmax(h2 @ p["W3"] + p["b3"], 0) * y).sum()
    f = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))
    return lambda: {k: v.numpy() for k, v in f(tp, tx, ty).items()}


def median_ms(fn, repeat=7):
    number = max(1, int(0.05 / max(timeit.timeit(fn, number=1), 1e-6)))
    return 1e3 * float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


HEADER = ["per-example gradients, W2 MLP, batch 128, float32", "ms", "ratio to graphc.vmap"]


def section(quick=False, log=print):
    """``(rows, raw)``: one row per implementation (benchmarks/run.py --only per_example)."""
    p, x, y = params_and_data()
    vg = graphc.vmap(graphc.grad(loss), in_axes=(None, 0, 0))
    g = graphc.grad(loss)
    impls = {"graphc.vmap(graphc.grad)": lambda: vg(p, x, y),
             "loop of graphc.grad": lambda: {k: np.stack(v) for k, v in zip(
                 KEYS, zip(*[[d[k] for k in KEYS] for d in (g(p, xi, yi)
                                                             for xi, yi in zip(x, y))]))}}
    t = torch_impl(p, x, y)
    if t is not None:
        impls["torch.func.vmap(grad)"] = t
    ref = impls["graphc.vmap(graphc.grad)"]()
    for name, fn in impls.items():
        out = fn()
        for k in KEYS:
            np.testing.assert_allclose(out[k], ref[k], rtol=2e-4,
                                       atol=2e-5 * float(np.abs(ref[k]).max()), err_msg=name)
    times = {name: median_ms(fn, 5 if quick else 7) for name, fn in impls.items()}
    base = times["graphc.vmap(graphc.grad)"]
    for name, ms in times.items():
        log(f"  per_example {name}: {ms:.2f} ms")
    return [[name, f"{ms:.2f}", f"{ms / base:.2f}"] for name, ms in times.items()], \
        {name: ms / 1e3 for name, ms in times.items()}


def main():
    rows, _ = section(log=lambda m: None)
    print("| " + " | ".join(HEADER) + " |")
    print("|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
