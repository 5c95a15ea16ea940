"""The benchmark workloads: one graphc version and its hand-written / peer versions each.

Every workload builds zero-argument callables (what gets timed) and, for each, an
``extract`` that turns its output into ``(value, [arrays...])`` in one canonical order,
so the harness can check that all implementations compute the same thing before timing
them.  Peers that are not installed are simply left out (the table says "n/a").

Conventions: float32 unless noted; dense weights are ``(in, out)`` used as ``x @ W + b``;
parameter dicts are iterated in the fixed order of ``*_KEYS``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import graphc
from graphc import nn

from . import peers

F32 = np.float32


@dataclass
class Impl:
    name: str                        # "graphc", "graphc (nn)", "numpy", "math", "torch", "jax", "autograd"
    fn: Callable[[], Any]            # what is timed
    extract: Callable[[Any], tuple]  # output -> (value, [arrays]) for the correctness check
    slow: bool = False               # measure with fewer repeats (autograd LeNet)


@dataclass
class Workload:
    key: str
    label: str
    impls: list = field(default_factory=list)
    rtol: float = 2e-4
    atol: float = 2e-5               # relative to the largest |entry| of each reference array
    graphc_fn: Any = None            # the graphc Compiled, for .source() / .graph()
    graphc_args: tuple = ()
    notes: str = ""

    def add(self, name, fn, extract, slow=False):
        self.impls.append(Impl(name, fn, extract, slow))

    def get(self, name):
        return next((i for i in self.impls if i.name == name), None)


# --- shared helpers ------------------------------------------------------------------
def _np_out(keys):
    """Extract (value, grads) from ``(value, {name: grad})``."""
    def ex(out):
        v, g = out
        return float(v), [np.asarray(g[k]) for k in keys]
    return ex


def _torch_out(params, keys):
    def ex(loss):
        return float(loss.item()), [params[k].grad.detach().numpy().copy() for k in keys]
    return ex


def _jax_out(keys):
    def ex(out):
        v, g = out
        return float(v), [np.asarray(g[k]) for k in keys]
    return ex


def _block(jax, tree):
    return jax.block_until_ready(tree)


def glorot(rng, shape):
    if len(shape) == 4:
        fan_in, fan_out = shape[1] * shape[2] * shape[3], shape[0] * shape[2] * shape[3]
    else:
        fan_in, fan_out = shape[0], shape[1]
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, shape).astype(F32)


def _torch_leaves(params, keys):
    torch = peers.torch()
    return {k: torch.tensor(params[k], requires_grad=True) for k in keys}


# =====================================================================================
# W1: the lecture's scalar function, value and gradient, float64
# =====================================================================================
def w1_f(w1, w2):
    z1 = w1 / w2
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    return z4 * z5


def w1_numpy(w1, w2):
    """Hand-written reverse mode with NumPy scalars."""
    w1, w2 = np.float64(w1), np.float64(w2)
    z1 = w1 / w2
    a = 2 * np.pi * z1
    z2 = np.sin(a)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    f = z4 * z5
    d_z4 = z5 + z4                   # from f = z4 * z5 and z5 = z2 + z4
    d_z1 = 3 * d_z4 + z4 * np.cos(a) * (2 * np.pi)
    return f, (d_z1 / w2, -2 * d_z4 * z3 - d_z1 * z1 / w2)


def w1_math(w1, w2):
    """Hand-written reverse mode with the ``math`` module (Python floats)."""
    z1 = w1 / w2
    a = 2 * math.pi * z1
    z2 = math.sin(a)
    z3 = math.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    f = z4 * z5
    d_z4 = z5 + z4
    d_z1 = 3 * d_z4 + z4 * math.cos(a) * (2 * math.pi)
    return f, (d_z1 / w2, -2 * d_z4 * z3 - d_z1 * z1 / w2)


def build_w1():
    w = Workload("W1", "W1 scalar f(w1,w2) value+grad (f64)", rtol=1e-12, atol=1e-12)
    a, b = 1.5, 0.5
    vg = graphc.value_and_grad(w1_f, argnums=(0, 1))
    w.graphc_fn, w.graphc_args = vg, (a, b)
    ex = lambda out: (float(out[0]), [np.asarray(out[1][0]), np.asarray(out[1][1])])  # noqa: E731
    w.add("graphc", lambda: vg(a, b), ex)
    w.add("numpy", lambda: w1_numpy(a, b), ex)
    w.add("math", lambda: w1_math(a, b), ex)

    torch = peers.torch()
    if torch is not None:
        def t_step():
            w1 = torch.tensor(a, dtype=torch.float64, requires_grad=True)
            w2 = torch.tensor(b, dtype=torch.float64, requires_grad=True)
            z1 = w1 / w2
            z4 = 3 * z1 - torch.exp(2 * w2)
            f = z4 * (torch.sin(2 * math.pi * z1) + z4)
            f.backward()
            return f, w1.grad, w2.grad
        w.add("torch", t_step, lambda o: (float(o[0].item()), [o[1].numpy(), o[2].numpy()]))

    jax = peers.jax()
    if jax is not None:
        jnp = jax.numpy

        def jf(w1, w2):
            z1 = w1 / w2
            z4 = 3 * z1 - jnp.exp(2 * w2)
            return z4 * (jnp.sin(2 * jnp.pi * z1) + z4)
        jvg = jax.jit(jax.value_and_grad(jf, argnums=(0, 1)))
        w.add("jax", lambda: _block(jax, jvg(a, b)), ex)

    ag = peers.autograd()
    if ag is not None:
        anp = __import__("autograd.numpy", fromlist=["numpy"])

        def af(w1, w2):
            z1 = w1 / w2
            z4 = 3 * z1 - anp.exp(2 * w2)
            return z4 * (anp.sin(2 * anp.pi * z1) + z4)
        avg = ag.value_and_grad(af, argnum=(0, 1)) if _ag_has_tuple_argnum(ag) else None
        if avg is not None:
            w.add("autograd", lambda: avg(a, b), ex)
        else:
            from autograd import value_and_grad as _vg
            avg2 = _vg(lambda ab: af(ab[0], ab[1]))
            w.add("autograd", lambda: avg2((a, b)), ex)
    return w


def _ag_has_tuple_argnum(ag):
    try:
        ag.value_and_grad(lambda x, y: x * y, argnum=(0, 1))(1.0, 2.0)
        return True
    except Exception:
        return False


# =====================================================================================
# W2: MLP 784-256-128-10, ReLU, softmax cross-entropy, batch 128
# =====================================================================================
MLP_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def mlp_params(rng):
    return {"W1": glorot(rng, (784, 256)), "b1": np.full(256, 0.01, F32),
            "W2": glorot(rng, (256, 128)), "b2": np.full(128, 0.01, F32),
            "W3": glorot(rng, (128, 10)), "b3": np.zeros(10, F32)}


def mlp_data(rng, n=128):
    return rng.normal(size=(n, 784)).astype(F32), rng.integers(0, 10, n)


def mlp_loss_np(p, x, y):
    """Plain NumPy, as a user writes it without graphc.nn."""
    h1 = np.maximum(0, x @ p["W1"] + p["b1"])
    h2 = np.maximum(0, h1 @ p["W2"] + p["b2"])
    s = h2 @ p["W3"] + p["b3"]
    z = s - s.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(x.shape[0]), y].mean()


def mlp_loss_nn(p, x, y):
    """The same network with graphc.nn.relu / cross_entropy."""
    h1 = nn.relu(x @ p["W1"] + p["b1"])
    h2 = nn.relu(h1 @ p["W2"] + p["b2"])
    return nn.cross_entropy(h2 @ p["W3"] + p["b3"], y)


def mlp_forward_numpy(p, x, y):
    h1 = np.maximum(x @ p["W1"] + p["b1"], 0)
    h2 = np.maximum(h1 @ p["W2"] + p["b2"], 0)
    s = h2 @ p["W3"] + p["b3"]
    z = s - s.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return (lse - z[np.arange(x.shape[0]), y]).mean()


def mlp_value_and_grad_numpy(p, x, y):
    """Forward and backward by hand, as a careful NumPy user writes them."""
    n = x.shape[0]
    rows = np.arange(n)
    a1 = x @ p["W1"]
    a1 += p["b1"]
    h1 = np.maximum(a1, 0)
    a2 = h1 @ p["W2"]
    a2 += p["b2"]
    h2 = np.maximum(a2, 0)
    s = h2 @ p["W3"]
    s += p["b3"]
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    se = e.sum(axis=1, keepdims=True)
    loss = (np.log(se[:, 0]) - s[rows, y]).mean()
    ds = e
    ds /= se * F32(n)                # softmax / n
    ds[rows, y] -= F32(1.0 / n)
    g = {"W3": h2.T @ ds, "b3": ds.sum(axis=0)}
    dh = ds @ p["W3"].T
    dh *= a2 > 0                     # ReLU mask (a multiply: no branchy np.where / mask store)
    g["W2"], g["b2"] = h1.T @ dh, dh.sum(axis=0)
    dh = dh @ p["W2"].T
    dh *= a1 > 0
    g["W1"], g["b1"] = x.T @ dh, dh.sum(axis=0)
    return loss, g


def _torch_mlp(tp, x, y):
    torch = peers.torch()
    F = torch.nn.functional
    h1 = torch.relu(x @ tp["W1"] + tp["b1"])
    h2 = torch.relu(h1 @ tp["W2"] + tp["b2"])
    return F.cross_entropy(h2 @ tp["W3"] + tp["b3"], y)


def _jax_mlp(p, x, y):
    jax = peers.jax()
    jnp = jax.numpy
    h1 = jax.nn.relu(x @ p["W1"] + p["b1"])
    h2 = jax.nn.relu(h1 @ p["W2"] + p["b2"])
    logp = jax.nn.log_softmax(h2 @ p["W3"] + p["b3"], axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _autograd_mlp(p, x, y):
    anp = __import__("autograd.numpy", fromlist=["numpy"])
    h1 = anp.maximum(0, anp.dot(x, p["W1"]) + p["b1"])
    h2 = anp.maximum(0, anp.dot(h1, p["W2"]) + p["b2"])
    s = anp.dot(h2, p["W3"]) + p["b3"]
    z = s - anp.max(s, axis=1, keepdims=True)
    logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
    return -anp.mean(logp[np.arange(x.shape[0]), y])


def build_w2(rng):
    p = mlp_params(rng)
    x, y = mlp_data(rng)
    w = Workload("W2", "W2 MLP 784-256-128-10 b128 fwd+bwd")
    ex = _np_out(MLP_KEYS)
    vg_np = graphc.value_and_grad(mlp_loss_np)
    vg_nn = graphc.value_and_grad(mlp_loss_nn)
    w.graphc_fn, w.graphc_args = vg_np, (p, x, y)
    w.add("graphc", lambda: vg_np(p, x, y), ex)
    w.add("graphc (nn)", lambda: vg_nn(p, x, y), ex)
    w.add("numpy", lambda: mlp_value_and_grad_numpy(p, x, y), ex)
    _add_peers_dense(w, p, x, y, MLP_KEYS, _torch_mlp, _jax_mlp, _autograd_mlp)
    w.fwd = _forward_impls(p, x, y, mlp_loss_np, mlp_forward_numpy, _torch_mlp, _jax_mlp, MLP_KEYS)
    w.fwd_nn = graphc.compile(mlp_loss_nn)
    return w


def _add_peers_dense(w, p, x, y, keys, torch_loss, jax_loss, ag_loss, ag_slow=False):
    """Add the torch / jax / autograd value-and-grad of a loss over a params dict."""
    torch = peers.torch()
    if torch is not None:
        tp = _torch_leaves(p, keys)
        tx = torch.from_numpy(x)
        ty = torch.from_numpy(y)

        def t_step():
            for t in tp.values():
                t.grad = None
            loss = torch_loss(tp, tx, ty)
            loss.backward()
            return loss
        w.add("torch", t_step, _torch_out(tp, keys))
    jax = peers.jax()
    if jax is not None:
        jp = {k: jax.device_put(p[k]) for k in keys}
        jx, jy = jax.device_put(x), jax.device_put(y)
        jvg = jax.jit(jax.value_and_grad(jax_loss))
        w.add("jax", lambda: _block(jax, jvg(jp, jx, jy)), _jax_out(keys))
    ag = peers.autograd()
    if ag is not None and ag_loss is not None:
        avg = ag.value_and_grad(ag_loss)
        w.add("autograd", lambda: avg(p, x, y), _np_out(keys), slow=ag_slow)


def _forward_impls(p, x, y, graphc_loss, np_loss, torch_loss, jax_loss, keys):
    """Forward-only versions (loss value), for the backward/forward ratio."""
    out = {}
    fwd = graphc.compile(graphc_loss)
    out["graphc"] = lambda: fwd(p, x, y)
    out["numpy"] = lambda: np_loss(p, x, y)
    torch = peers.torch()
    if torch is not None:
        tp = {k: torch.from_numpy(p[k]) for k in keys}
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def t_fwd():
            with torch.no_grad():
                return torch_loss(tp, tx, ty)
        out["torch"] = t_fwd
    jax = peers.jax()
    if jax is not None:
        jp = {k: jax.device_put(p[k]) for k in keys}
        jx, jy = jax.device_put(x), jax.device_put(y)
        jf = jax.jit(jax_loss)
        out["jax"] = lambda: _block(jax, jf(jp, jx, jy))
    return out


# =====================================================================================
# W3: the lecture's 2-3-3-1 sigmoid network, logistic loss, batch 256
# =====================================================================================
SIG_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def sig_params(rng):
    return {"W1": glorot(rng, (2, 3)), "b1": np.zeros(3, F32),
            "W2": glorot(rng, (3, 3)), "b2": np.zeros(3, F32),
            "W3": glorot(rng, (3, 1)), "b3": np.zeros(1, F32)}


def sig_data(rng, n=256):
    x = rng.normal(size=(n, 2)).astype(F32)
    y = np.where(x[:, 0] * x[:, 1] > 0, 1.0, -1.0).astype(F32)     # XOR-like labels, +-1
    return x, y


def sig_loss_np(p, x, y):
    h1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    s = (h2 @ p["W3"] + p["b3"])[:, 0]
    return np.mean(np.log(1 + np.exp(-y * s)))


def sig_loss_nn(p, x, y):
    h1 = nn.sigmoid(x @ p["W1"] + p["b1"])
    h2 = nn.sigmoid(h1 @ p["W2"] + p["b2"])
    return nn.logistic_loss((h2 @ p["W3"] + p["b3"])[:, 0], y)


def sig_loss_logaddexp(p, x, y):
    """The same loss written stably with np.logaddexp: log(1 + e^-ys) = logaddexp(0, -ys)."""
    h1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    s = (h2 @ p["W3"] + p["b3"])[:, 0]
    return np.mean(np.logaddexp(0, -y * s))


def sig_value_and_grad_numpy_logaddexp(p, x, y):
    """Hand-written NumPy for sig_loss_logaddexp, as an expert writes it (stable too)."""
    n = x.shape[0]
    h1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    s = h2 @ p["W3"][:, 0] + p["b3"][0]
    m = -y * s
    loss = np.mean(np.logaddexp(0, m))
    ds = (-y / F32(n)) / (1 + np.exp(-m))               # d loss / d s = -y/n * sigmoid(m)
    g = {"W3": (h2.T @ ds)[:, None], "b3": ds.sum(keepdims=True)}
    da = np.multiply.outer(ds, p["W3"][:, 0]) * h2 * (1 - h2)
    g["W2"], g["b2"] = h1.T @ da, da.sum(axis=0)
    da = (da @ p["W2"].T) * h1 * (1 - h1)
    g["W1"], g["b1"] = x.T @ da, da.sum(axis=0)
    return loss, g


def sig_value_and_grad_numpy(p, x, y):
    n = x.shape[0]
    h1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    h2 = 1 / (1 + np.exp(-(h1 @ p["W2"] + p["b2"])))
    s = h2 @ p["W3"][:, 0] + p["b3"][0]
    e = np.exp(-y * s)
    loss = np.mean(np.log1p(e))
    ds = (-y / F32(n)) * (e / (1 + e))                 # d loss / d s
    g = {"W3": (h2.T @ ds)[:, None], "b3": ds.sum(keepdims=True)}
    da = np.multiply.outer(ds, p["W3"][:, 0]) * h2 * (1 - h2)
    g["W2"], g["b2"] = h1.T @ da, da.sum(axis=0)
    da = (da @ p["W2"].T) * h1 * (1 - h1)
    g["W1"], g["b1"] = x.T @ da, da.sum(axis=0)
    return loss, g


def _torch_sig(tp, x, y):
    torch = peers.torch()
    h1 = torch.sigmoid(x @ tp["W1"] + tp["b1"])
    h2 = torch.sigmoid(h1 @ tp["W2"] + tp["b2"])
    s = (h2 @ tp["W3"] + tp["b3"])[:, 0]
    return torch.mean(torch.log(1 + torch.exp(-y * s)))


def _jax_sig(p, x, y):
    jax = peers.jax()
    jnp = jax.numpy
    h1 = jax.nn.sigmoid(x @ p["W1"] + p["b1"])
    h2 = jax.nn.sigmoid(h1 @ p["W2"] + p["b2"])
    s = (h2 @ p["W3"] + p["b3"])[:, 0]
    return jnp.mean(jnp.log(1 + jnp.exp(-y * s)))


def _autograd_sig(p, x, y):
    anp = __import__("autograd.numpy", fromlist=["numpy"])
    h1 = 1 / (1 + anp.exp(-(anp.dot(x, p["W1"]) + p["b1"])))
    h2 = 1 / (1 + anp.exp(-(anp.dot(h1, p["W2"]) + p["b2"])))
    s = (anp.dot(h2, p["W3"]) + p["b3"])[:, 0]
    return anp.mean(anp.log(1 + anp.exp(-y * s)))


def build_w3(rng):
    p = sig_params(rng)
    x, y = sig_data(rng)
    w = Workload("W3", "W3 sigmoid net 2-3-3-1 b256 fwd+bwd")
    ex = _np_out(SIG_KEYS)
    vg_np = graphc.value_and_grad(sig_loss_np)
    vg_nn = graphc.value_and_grad(sig_loss_nn)
    vg_lae = graphc.value_and_grad(sig_loss_logaddexp)
    w.graphc_fn, w.graphc_args = vg_np, (p, x, y)
    w.add("graphc", lambda: vg_np(p, x, y), ex)
    w.add("graphc (nn)", lambda: vg_nn(p, x, y), ex)
    w.add("graphc (logaddexp)", lambda: vg_lae(p, x, y), ex)
    w.add("numpy", lambda: sig_value_and_grad_numpy(p, x, y), ex)
    w.add("numpy (logaddexp)", lambda: sig_value_and_grad_numpy_logaddexp(p, x, y), ex)
    _add_peers_dense(w, p, x, y, SIG_KEYS, _torch_sig, _jax_sig, _autograd_sig)
    return w


# =====================================================================================
# W4: LeNet, batch 64, 1x28x28
# =====================================================================================
LENET_KEYS = ("c1w", "c1b", "c2w", "c2b", "f1w", "f1b", "f2w", "f2b", "f3w", "f3b")


def lenet_params(rng):
    return {"c1w": glorot(rng, (6, 1, 5, 5)), "c1b": np.full(6, 0.01, F32),
            "c2w": glorot(rng, (16, 6, 5, 5)), "c2b": np.full(16, 0.01, F32),
            "f1w": glorot(rng, (400, 120)), "f1b": np.full(120, 0.01, F32),
            "f2w": glorot(rng, (120, 84)), "f2b": np.full(84, 0.01, F32),
            "f3w": glorot(rng, (84, 10)), "f3b": np.zeros(10, F32)}


def lenet_data(rng, n=64):
    return rng.normal(size=(n, 1, 28, 28)).astype(F32), rng.integers(0, 10, n)


def lenet_loss(p, x, y):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["c1w"], p["c1b"], padding=2)), 2)   # 6x14x14
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["c2w"], p["c2b"])), 2)              # 16x5x5
    h = nn.flatten(h)
    h = nn.relu(h @ p["f1w"] + p["f1b"])
    h = nn.relu(h @ p["f2w"] + p["f2b"])
    return nn.cross_entropy(h @ p["f3w"] + p["f3b"], y)


_swv = np.lib.stride_tricks.sliding_window_view


def _conv_nhwc(x, w2d, b, k):
    """x (N, H, W, C) -> (N, OH, OW, F): im2col windows as one (N·OH·OW, C·k·k) GEMM."""
    n, hh, ww, c = x.shape
    oh, ow = hh - k + 1, ww - k + 1
    cols = _swv(x, (k, k), axis=(1, 2)).reshape(n * oh * ow, c * k * k)   # (C, KH, KW) order
    out = cols @ w2d.T
    out += b
    return out.reshape(n, oh, ow, -1), cols


def _pool_nhwc(h):
    """2x2 max pool, stride 2, of (N, H, W, C); returns the pooled map and the max mask."""
    n, hh, ww, c = h.shape
    out = np.maximum(np.maximum(h[:, 0::2, 0::2], h[:, 0::2, 1::2]),
                     np.maximum(h[:, 1::2, 0::2], h[:, 1::2, 1::2]))
    v = h.reshape(n, hh // 2, 2, ww // 2, 2, c)
    return out, v == out[:, :, None, :, None, :]


def lenet_forward_numpy(p, x, y, keep=False):
    n = x.shape[0]
    xp = np.pad(x[:, 0], ((0, 0), (2, 2), (2, 2)))[..., None]            # (N, 32, 32, 1)
    a1, cols1 = _conv_nhwc(xp, p["c1w"].reshape(6, -1), p["c1b"], 5)      # (N, 28, 28, 6)
    r1 = np.maximum(a1, 0)
    p1, m1 = _pool_nhwc(r1)                                               # (N, 14, 14, 6)
    a2, cols2 = _conv_nhwc(p1, p["c2w"].reshape(16, -1), p["c2b"], 5)     # (N, 10, 10, 16)
    r2 = np.maximum(a2, 0)
    p2, m2 = _pool_nhwc(r2)                                               # (N, 5, 5, 16)
    flat = p2.transpose(0, 3, 1, 2).reshape(n, 400)                       # NCHW flatten order
    a3 = flat @ p["f1w"] + p["f1b"]
    h3 = np.maximum(a3, 0)
    a4 = h3 @ p["f2w"] + p["f2b"]
    h4 = np.maximum(a4, 0)
    s = h4 @ p["f3w"] + p["f3b"]
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    se = e.sum(axis=1, keepdims=True)
    loss = (np.log(se[:, 0]) - s[np.arange(n), y]).mean()
    if not keep:
        return loss
    return loss, locals()


def lenet_value_and_grad_numpy(p, x, y):
    """im2col + GEMM forward and backward, channels-last inside, col2im by strided adds.

    Max-pool backward routes the gradient through the mask ``window == max``; ties only
    occur between ReLU zeros, whose gradient the ReLU mask removes, so this equals the
    first-maximum rule.
    """
    loss, t = lenet_forward_numpy(p, x, y, keep=True)
    n = x.shape[0]
    ds = t["e"]
    ds /= t["se"] * F32(n)
    ds[np.arange(n), y] -= F32(1.0 / n)
    g = {"f3w": t["h4"].T @ ds, "f3b": ds.sum(axis=0)}
    d = ds @ p["f3w"].T
    d *= t["a4"] > 0
    g["f2w"], g["f2b"] = t["h3"].T @ d, d.sum(axis=0)
    d = d @ p["f2w"].T
    d *= t["a3"] > 0
    g["f1w"], g["f1b"] = t["flat"].T @ d, d.sum(axis=0)
    d = (d @ p["f1w"].T).reshape(n, 16, 5, 5).transpose(0, 2, 3, 1)      # (N, 5, 5, 16)
    # pool 2 and relu 2
    d2 = (t["m2"] * d[:, :, None, :, None, :]).reshape(n, 10, 10, 16)
    d2 *= t["a2"] > 0
    d2 = d2.reshape(-1, 16)
    g["c2w"] = (d2.T @ t["cols2"]).reshape(16, 6, 5, 5)
    g["c2b"] = d2.sum(axis=0)
    dcols = (d2 @ p["c2w"].reshape(16, -1)).reshape(n, 10, 10, 6, 5, 5)
    dp1 = np.zeros((n, 14, 14, 6), F32)
    for i in range(5):                                                    # col2im
        for j in range(5):
            dp1[:, i:i + 10, j:j + 10, :] += dcols[:, :, :, :, i, j]
    # pool 1 and relu 1
    d1 = (t["m1"] * dp1[:, :, None, :, None, :]).reshape(n, 28, 28, 6)
    d1 *= t["a1"] > 0
    d1 = d1.reshape(-1, 6)
    g["c1w"] = (d1.T @ t["cols1"]).reshape(6, 1, 5, 5)
    g["c1b"] = d1.sum(axis=0)
    return loss, g


_LENET_AS_CONVNETS = {"c1w": "w0", "c1b": "b0", "c2w": "w2", "c2b": "b2", "f1w": "w4", "f1b": "b4",
                      "f2w": "w5", "f2b": "b5", "f3w": "w6", "f3b": "b6"}
_lenet_expert = None


def lenet_value_and_grad_expert(p, x, y):
    """The fastest hand-written LeNet (issue 18, benchmarks/convnets.py): conv1 as one GEMM
    per sample over NCHW windows, conv2 as one GEMM over batch-innermost windows (forward,
    weight and input gradient), col2im by strided adds, pooling by strided maxima."""
    global _lenet_expert
    if _lenet_expert is None:
        from .convnets import hand_value_and_grad
        _lenet_expert = hand_value_and_grad("lenet-pad", {0: "ps", 2: "bl"})
    loss, g = _lenet_expert({_LENET_AS_CONVNETS[k]: v for k, v in p.items()}, x, y)
    return loss, {k: g[v] for k, v in _LENET_AS_CONVNETS.items()}


def _torch_lenet(tp, x, y):
    torch = peers.torch()
    F = torch.nn.functional
    h = F.max_pool2d(torch.relu(F.conv2d(x, tp["c1w"], tp["c1b"], padding=2)), 2)
    h = F.max_pool2d(torch.relu(F.conv2d(h, tp["c2w"], tp["c2b"])), 2)
    h = h.reshape(h.shape[0], -1)
    h = torch.relu(h @ tp["f1w"] + tp["f1b"])
    h = torch.relu(h @ tp["f2w"] + tp["f2b"])
    return F.cross_entropy(h @ tp["f3w"] + tp["f3b"], y)


def _jax_lenet(p, x, y):
    jax = peers.jax()
    jnp, lax = jax.numpy, jax.lax
    dn = ("NCHW", "OIHW", "NCHW")

    def conv(h, w, b, pad):
        out = lax.conv_general_dilated(h, w, (1, 1), [(pad, pad), (pad, pad)], dimension_numbers=dn)
        return out + b[None, :, None, None]

    def pool(h):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = pool(jax.nn.relu(conv(x, p["c1w"], p["c1b"], 2)))
    h = pool(jax.nn.relu(conv(h, p["c2w"], p["c2b"], 0)))
    h = h.reshape(h.shape[0], -1)
    h = jax.nn.relu(h @ p["f1w"] + p["f1b"])
    h = jax.nn.relu(h @ p["f2w"] + p["f2b"])
    logp = jax.nn.log_softmax(h @ p["f3w"] + p["f3b"], axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _autograd_lenet(p, x, y):
    """im2col from 25 shifted slices (autograd has no sliding_window_view)."""
    anp = __import__("autograd.numpy", fromlist=["numpy"])

    def conv(h, w, b):
        n, c, hh, ww = h.shape
        f, _, k, _ = w.shape
        oh, ow = hh - k + 1, ww - k + 1
        cols = anp.stack([h[:, :, i:i + oh, j:j + ow] for i in range(k) for j in range(k)], axis=2)
        cols = anp.reshape(cols, (n, c * k * k, oh * ow))
        out = anp.matmul(anp.reshape(w, (f, c * k * k)), cols)
        return anp.reshape(out, (n, f, oh, ow)) + anp.reshape(b, (1, f, 1, 1))

    def pool(h):
        n, c, hh, ww = h.shape
        return anp.max(anp.max(anp.reshape(h, (n, c, hh // 2, 2, ww // 2, 2)), axis=5), axis=3)
    xp = anp.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="constant")
    h = pool(anp.maximum(conv(xp, p["c1w"], p["c1b"]), 0))
    h = pool(anp.maximum(conv(h, p["c2w"], p["c2b"]), 0))
    h = anp.reshape(h, (h.shape[0], -1))
    h = anp.maximum(anp.dot(h, p["f1w"]) + p["f1b"], 0)
    h = anp.maximum(anp.dot(h, p["f2w"]) + p["f2b"], 0)
    s = anp.dot(h, p["f3w"]) + p["f3b"]
    z = s - anp.max(s, axis=1, keepdims=True)
    logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
    return -anp.mean(logp[np.arange(x.shape[0]), y])


def build_w4(rng):
    p = lenet_params(rng)
    x, y = lenet_data(rng)
    w = Workload("W4", "W4 LeNet b64 fwd+bwd")
    vg = graphc.value_and_grad(lenet_loss)
    w.graphc_fn, w.graphc_args = vg, (p, x, y)
    w.add("graphc", lambda: vg(p, x, y), _np_out(LENET_KEYS))
    w.add("numpy", lambda: lenet_value_and_grad_expert(p, x, y), _np_out(LENET_KEYS))
    _add_peers_dense(w, p, x, y, LENET_KEYS, _torch_lenet, _jax_lenet, _autograd_lenet, ag_slow=True)
    w.fwd = _forward_impls(p, x, y, lenet_loss, lenet_forward_numpy, _torch_lenet, _jax_lenet,
                           LENET_KEYS)
    return w


# =====================================================================================
# Train steps: forward + backward + SGD update
# =====================================================================================
LR = 0.01


def _graphc_train_step(loss_fn):
    opt = graphc.optim.sgd(LR)

    def train_step(params, x, y):
        loss, grads = graphc.value_and_grad(loss_fn)(params, x, y)
        params, _ = opt.update(grads, (), params)
        return params, loss
    return graphc.compile(train_step)


def _np_train_step(value_and_grad):
    def step(params, x, y):
        loss, g = value_and_grad(params, x, y)
        for k, v in g.items():
            params[k] -= F32(LR) * v        # in place, as a NumPy user would
        return params, loss
    return step


def _build_train(key, label, keys, params, x, y, graphc_loss, np_vg, torch_loss):
    w = Workload(key, label)
    step = _graphc_train_step(graphc_loss)
    w.graphc_fn, w.graphc_args = step, (params, x, y)
    ex = lambda out: (float(out[1]), [np.asarray(out[0][k]) for k in keys])  # noqa: E731
    w.add("graphc", lambda: step(params, x, y), ex)
    # The NumPy and torch steps update their own copies in place; the check runs them once
    # from the same starting parameters, and timing continues from there (tiny lr).
    np_params = {k: v.copy() for k, v in params.items()}
    np_step = _np_train_step(np_vg)
    w.add("numpy", lambda: np_step(np_params, x, y), ex)
    torch = peers.torch()
    if torch is not None:
        tp = _torch_leaves(params, keys)
        opt = torch.optim.SGD(list(tp.values()), lr=LR)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def t_step():
            opt.zero_grad()
            loss = torch_loss(tp, tx, ty)
            loss.backward()
            opt.step()
            return loss
        w.add("torch", t_step,
              lambda loss: (float(loss.item()), [tp[k].detach().numpy().copy() for k in keys]))
    return w


def build_train_mlp(rng):
    p = mlp_params(rng)
    x, y = mlp_data(rng)
    return _build_train("T-MLP", "train step MLP b128 (fwd+bwd+SGD)", MLP_KEYS, p, x, y,
                        mlp_loss_nn, mlp_value_and_grad_numpy, _torch_mlp)


def build_train_lenet(rng):
    p = lenet_params(rng)
    x, y = lenet_data(rng)
    return _build_train("T-LeNet", "train step LeNet b64 (fwd+bwd+SGD)", LENET_KEYS, p, x, y,
                        lenet_loss, lenet_value_and_grad_expert, _torch_lenet)


# =====================================================================================
# Compile time: a synthetic chain of elementwise ops and small matmuls
# =====================================================================================
def make_chain(length):
    """~5 traced nodes per step: h = tanh(h @ W) * 0.5 + h."""
    def chain(x, W):
        h = x
        for _ in range(length):
            h = np.tanh(h @ W) * 0.5 + h
        return (h * h).sum()
    chain.__name__ = f"chain{length}"
    return chain


def chain_args():
    return np.full((4, 8), 0.1, F32), (np.eye(8) * 0.1).astype(F32)
