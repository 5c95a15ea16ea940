"""W5: an Elman RNN over 1,000 steps, value and gradients (issue 15).

    h_{t+1} = tanh(x_t @ Wx + h_t @ Wh + b),   loss = mean((h_T @ Wo - y) ** 2)

graphc writes the recurrence with :func:`graphc.scan` (the loop stays a loop in the
generated code, and its backward pass is a reversed loop over the saved carries).
References, each as its authors would write it:

- hand NumPy: the input projection of all steps as one matmul, a forward loop that keeps
  every hidden state, and back-propagation through time as a reversed loop, with the
  weight gradients summed as two large matmuls afterwards;
- PyTorch eager: the same recurrence as a Python loop over ``torch.tanh``, ``.backward()``;
- JAX jit: ``jax.lax.scan`` under ``jax.jit(jax.value_and_grad(...))``.

A second graphc row writes the recurrence as a plain Python loop (unrolled at trace time).
"""
from __future__ import annotations

import numpy as np

import graphc

from . import peers
from .workloads import F32, Workload, _block, _jax_out, _np_out, _torch_leaves, _torch_out, glorot

RNN_KEYS = ("Wx", "Wh", "b", "Wo")
STEPS, BATCH, N_IN, N_HID = 1000, 32, 8, 64


def rnn_params(rng, n_in=N_IN, n_hid=N_HID):
    return {"Wx": glorot(rng, (n_in, n_hid)), "Wh": glorot(rng, (n_hid, n_hid)) * F32(0.5),
            "b": np.zeros(n_hid, F32), "Wo": glorot(rng, (n_hid, 1))}


def rnn_data(rng, steps=STEPS, batch=BATCH, n_in=N_IN):
    xs = rng.normal(size=(steps, batch, n_in)).astype(F32)
    y = rng.normal(size=(batch, 1)).astype(F32)
    return xs, y


def rnn_loss(p, xs, y):
    """The graphc version: the recurrence as a scan."""
    def step(h, x):
        h = np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
        return h, None
    h0 = np.zeros((xs.shape[1], p["Wh"].shape[0]), xs.dtype)
    h, _ = graphc.scan(step, h0, xs)
    return np.mean((h @ p["Wo"] - y) ** 2)


def rnn_loss_unrolled(p, xs, y):
    """The same as a Python loop (unrolled at trace time: one copy of the body per step)."""
    h = np.zeros((xs.shape[1], p["Wh"].shape[0]), xs.dtype)
    for x in xs:
        h = np.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"])
    return np.mean((h @ p["Wo"] - y) ** 2)


def rnn_value_and_grad_numpy(p, xs, y):
    """Back-propagation through time as an expert writes it in NumPy."""
    steps, n, _ = xs.shape
    hid = p["Wh"].shape[0]
    a = (xs.reshape(steps * n, -1) @ p["Wx"]).reshape(steps, n, hid) + p["b"]
    hs = np.empty((steps + 1, n, hid), xs.dtype)
    hs[0] = 0
    for t in range(steps):
        hs[t + 1] = np.tanh(a[t] + hs[t] @ p["Wh"])
    r = hs[steps] @ p["Wo"] - y
    loss = np.mean(r ** 2)
    dr = (2 / r.size) * r
    g = {"Wo": hs[steps].T @ dr}
    dh = dr @ p["Wo"].T
    da = np.empty_like(hs[1:])
    wht = p["Wh"].T
    for t in range(steps - 1, -1, -1):
        d = dh * (1 - hs[t + 1] ** 2)
        da[t] = d
        dh = d @ wht
    flat = da.reshape(steps * n, hid)
    g["Wh"] = hs[:-1].reshape(steps * n, hid).T @ flat
    g["Wx"] = xs.reshape(steps * n, -1).T @ flat
    g["b"] = flat.sum(axis=0)
    return loss, g


def _torch_rnn(tp, xs, y):
    torch = peers.torch()
    h = torch.zeros((xs.shape[1], tp["Wh"].shape[0]), dtype=xs.dtype)
    for t in range(xs.shape[0]):
        h = torch.tanh(xs[t] @ tp["Wx"] + h @ tp["Wh"] + tp["b"])
    return torch.mean((h @ tp["Wo"] - y) ** 2)


def _jax_rnn(p, xs, y):
    jax = peers.jax()
    jnp = jax.numpy

    def step(h, x):
        return jnp.tanh(x @ p["Wx"] + h @ p["Wh"] + p["b"]), None
    h, _ = jax.lax.scan(step, jnp.zeros((xs.shape[1], p["Wh"].shape[0]), xs.dtype), xs)
    return jnp.mean((h @ p["Wo"] - y) ** 2)


def build_w5(rng):
    p = rnn_params(rng)
    xs, y = rnn_data(rng)
    w = Workload("W5", f"W5 RNN {STEPS} steps b{BATCH} h{N_HID} fwd+bwd (graphc.scan)",
                 rtol=2e-3, atol=2e-4)
    ex = _np_out(RNN_KEYS)
    vg = graphc.value_and_grad(rnn_loss)
    w.graphc_fn, w.graphc_args = vg, (p, xs, y)
    w.add("graphc", lambda: vg(p, xs, y), ex)
    vg_loop = graphc.value_and_grad(rnn_loss_unrolled)
    w.add("graphc (unrolled)", lambda: vg_loop(p, xs, y), ex)
    w.add("numpy", lambda: rnn_value_and_grad_numpy(p, xs, y), ex)
    torch = peers.torch()
    if torch is not None:
        tp = _torch_leaves(p, RNN_KEYS)
        txs, ty = torch.from_numpy(xs), torch.from_numpy(y)

        def t_step():
            for t in tp.values():
                t.grad = None
            loss = _torch_rnn(tp, txs, ty)
            loss.backward()
            return loss
        w.add("torch", t_step, _torch_out(tp, RNN_KEYS))
    jax = peers.jax()
    if jax is not None:
        jp = {k: jax.device_put(p[k]) for k in RNN_KEYS}
        jxs, jy = jax.device_put(xs), jax.device_put(y)
        jvg = jax.jit(jax.value_and_grad(_jax_rnn))
        w.add("jax", lambda: _block(jax, jvg(jp, jxs, jy)), _jax_out(RNN_KEYS))
    return w
