"""Hessian of a 100-parameter logistic regression (500 examples x 100 features, float64).

    python benchmarks/hessian.py            # prints a small table (median of repeats)

``graphc.hessian(loss)`` (forward over reverse: ``jacfwd(jacrev(loss))``, one generated
function) against the closed form written by hand in NumPy (``X^T diag(s(1-s)) X / n``),
``torch.func.hessian`` and ``jax.jit(jax.hessian(loss))`` where they are installed.  All
are checked against the closed form before anything is timed.
"""
from __future__ import annotations

import pathlib
import sys
import timeit

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import graphc  # noqa: E402
from benchmarks import peers  # noqa: E402


def data(n=500, d=100, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    return 0.1 * rng.normal(size=d), X, y


def loss(w, X, y):
    """Mean logistic loss: log(1 + e^z) - y z, z = X w."""
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


def closed_form(w, X, y):
    s = 1.0 / (1.0 + np.exp(-(X @ w)))
    return (X.T * (s * (1 - s))) @ X / X.shape[0]


def torch_impl(w, X, y):
    t = peers.torch()
    if t is None:
        return None
    tw, tX, ty = (t.tensor(a) for a in (w, X, y))

    def tloss(w):
        z = tX @ w
        return t.mean(t.nn.functional.softplus(z) - ty * z)
    h = t.func.hessian(tloss)
    return lambda: h(tw).numpy()


def jax_impl(w, X, y):
    j = peers.jax()
    if j is None:
        return None
    jnp = j.numpy
    jX, jy = jnp.asarray(X), jnp.asarray(y)

    def jloss(w):
        z = jX @ w
        return jnp.mean(jnp.logaddexp(0.0, z) - jy * z)
    h = j.jit(j.hessian(jloss))
    jw = jnp.asarray(w)
    return lambda: np.asarray(h(jw).block_until_ready())


def median_ms(fn, repeat=7):
    number = max(1, int(0.05 / max(timeit.timeit(fn, number=1), 1e-6)))
    return 1e3 * float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


HEADER = ["Hessian, logistic regression, 500 x 100, float64", "ms", "ratio to graphc"]


def section(quick=False, log=print):
    """``(rows, raw)``: one row per implementation (benchmarks/run.py --only hessian)."""
    w, X, y = data()
    h = graphc.hessian(loss)
    impls = {"graphc.hessian": lambda: h(w, X, y),
             "closed form (NumPy by hand)": lambda: closed_form(w, X, y)}
    for name, make in (("torch.func.hessian", torch_impl), ("jax.jit(jax.hessian)", jax_impl)):
        fn = make(w, X, y)
        if fn is not None:
            impls[name] = fn
    ref = closed_form(w, X, y)
    for name, fn in impls.items():
        np.testing.assert_allclose(fn(), ref, rtol=1e-10, atol=1e-13, err_msg=name)
    times = {name: median_ms(fn, 5 if quick else 7) for name, fn in impls.items()}
    base = times["graphc.hessian"]
    for name, ms in times.items():
        log(f"  hessian {name}: {ms:.3f} ms")
    return [[name, f"{ms:.3f}", f"{ms / base:.2f}"] for name, ms in times.items()], \
        {name: ms / 1e3 for name, ms in times.items()}


def main():
    rows, _ = section(log=lambda m: None)
    print("| " + " | ".join(HEADER) + " |")
    print("|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
