"""Convolutional nets at several shapes: graphc against the fastest hand-written NumPy.

    python benchmarks/convnets.py --threads 1              # all nets, batch 16 and 256
    python benchmarks/convnets.py --only lenet-pad --batch 64
    python benchmarks/convnets.py --malloc both            # also with glibc's thresholds raised

Nets (float32, softmax cross-entropy, value and the gradients of all parameters):

- ``lenet-pad``: conv 5x5 1->6 pad 2 (28x28 maps), ReLU, max pool 2, conv 5x5 6->16 (10x10),
  ReLU, max pool 2, dense 400-120-84-10 (benchmarks/workloads.py's W4);
- ``lenet-valid``: the same with conv1 unpadded (24x24 maps), dense 256-120-84-10;
- ``cifar``: 3x32x32 input, conv 3x3 3->32 pad 1, ReLU, pool 2, conv 3x3 32->64 pad 1, ReLU,
  pool 2, dense 4096-128-10.

The hand-written NumPy reference is written the way an expert would: each convolution in one
of five forms, every form verified against PyTorch before timing (``conv_forms_agree``):

- ``ps``: NCHW, windows by ``sliding_window_view`` copied as (N, C·KH·KW, OH·OW), one GEMM per
  sample; weight gradient as a batched GEMM; input gradient by col2im (KH·KW strided adds);
- ``cn``: channels outermost, (C, N, H, W): windows as one (C·KH·KW, N·OH·OW) matrix and one
  GEMM each for forward, weight gradient and input gradient (runs of OW elements);
- ``bl``: batch innermost, windows as one (C·KH·KW, OH·OW·N) matrix, one GEMM for the forward,
  the weight gradient and the input gradient (col2im over runs of OW·N elements);
- ``nhwc``: channels last, windows as (N·OH·OW, KH·KW·C) and one GEMM (`tensordot`'s layout);
- ``einsum``: ``np.einsum(..., optimize=True)`` over the windows for forward and weight
  gradient, and the input gradient as a transposed convolution by einsum over the windows
  of the padded output gradient (no col2im).

"numpy (tuned)" picks, per layer, the form that was fastest on that layer's shape (each
timed in isolation at build time); "numpy (einsum)" and "numpy (nhwc)" use one form
everywhere.  The best of the three is the reference the goal compares against.  Pooling is
the maximum of the KH·KW strided slices; its gradient routes through ``window == max``
(ties only occur between ReLU zeros, which the ReLU mask clears).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import graphc  # noqa: E402
from graphc import nn  # noqa: E402

F32 = np.float32


def _swv(x, window, axis):
    """``sliding_window_view(x, window, axis)`` built from the strides: the same read-only
    view without its Python argument checks (15-40 µs a call, a few % of a batch-16 step)."""
    shape, strides = list(x.shape), x.strides
    for a, k in zip(axis, window):
        shape[a] -= k - 1
    return np.lib.stride_tricks.as_strided(x, tuple(shape) + tuple(window),
                                           strides + tuple(strides[a] for a in axis),
                                           writeable=False)

# ("conv", out channels, kernel, padding) / ("pool", k) / ("dense", out); ReLU after every
# conv and every dense layer but the last.
NETS = {
    "lenet-pad": ((1, 28), [("conv", 6, 5, 2), ("pool", 2), ("conv", 16, 5, 0), ("pool", 2),
                            ("dense", 120), ("dense", 84), ("dense", 10)]),
    "lenet-valid": ((1, 28), [("conv", 6, 5, 0), ("pool", 2), ("conv", 16, 5, 0), ("pool", 2),
                              ("dense", 120), ("dense", 84), ("dense", 10)]),
    "cifar": ((3, 32), [("conv", 32, 3, 1), ("pool", 2), ("conv", 64, 3, 1), ("pool", 2),
                        ("dense", 128), ("dense", 10)]),
}
FORMS = ("ps", "cn", "bl", "nhwc", "einsum")


def net_params(name, rng):
    (c, h), layers = NETS[name]
    p, shapes = {}, []
    for i, layer in enumerate(layers):
        if layer[0] == "conv":
            _, f, k, pad = layer
            lim = np.sqrt(6.0 / (c * k * k + f * k * k))
            p[f"w{i}"] = rng.uniform(-lim, lim, (f, c, k, k)).astype(F32)
            p[f"b{i}"] = np.full(f, 0.01, F32)
            c, h = f, h + 2 * pad - k + 1
        elif layer[0] == "pool":
            h //= layer[1]
        else:
            fan_in = c * h * h if c else h
            lim = np.sqrt(6.0 / (fan_in + layer[1]))
            p[f"w{i}"] = rng.uniform(-lim, lim, (fan_in, layer[1])).astype(F32)
            p[f"b{i}"] = np.full(layer[1], 0.01, F32)
            c, h = 0, layer[1]
        shapes.append((c, h))
    return p


def net_data(name, n, rng):
    (c, h), _ = NETS[name]
    return rng.normal(size=(n, c, h, h)).astype(F32), rng.integers(0, 10, n)


def keys_of(p):
    return sorted(p, key=lambda k: (int(k[1:]), k[0] == "w"))


# --- graphc and torch: the same net from the spec ------------------------------------------
def make_graphc_loss(name):
    _, layers = NETS[name]

    def loss(p, x, y):
        h = x
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            if layer[0] == "conv":
                h = nn.relu(nn.conv2d(h, p[f"w{i}"], p[f"b{i}"], padding=layer[3]))
            elif layer[0] == "pool":
                h = nn.max_pool2d(h, layer[1])
            else:
                if h.ndim == 4:
                    h = nn.flatten(h)
                h = h @ p[f"w{i}"] + p[f"b{i}"]
                if i != last:
                    h = nn.relu(h)
        return nn.cross_entropy(h, y)
    loss.__name__ = name.replace("-", "_") + "_loss"
    return loss


def make_torch_loss(name, torch):
    _, layers = NETS[name]
    F = torch.nn.functional

    def loss(p, x, y):
        h = x
        last = len(layers) - 1
        for i, layer in enumerate(layers):
            if layer[0] == "conv":
                h = torch.relu(F.conv2d(h, p[f"w{i}"], p[f"b{i}"], padding=layer[3]))
            elif layer[0] == "pool":
                h = F.max_pool2d(h, layer[1])
            else:
                if h.ndim == 4:
                    h = h.reshape(h.shape[0], -1)
                h = h @ p[f"w{i}"] + p[f"b{i}"]
                if i != last:
                    h = torch.relu(h)
        return F.cross_entropy(h, y)
    return loss


# --- hand-written convolution layers (NCHW in and out) -------------------------------------
def _pad(x, pad):
    if not pad:
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), x.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = x
    return xp


def conv_fwd(x, w, b, pad, form):
    """(out NCHW, cache) of a stride-1 convolution in one of FORMS."""
    n, c, h, _ = x.shape
    f, _, k, _ = w.shape
    xp = _pad(x, pad)
    oh = h + 2 * pad - k + 1
    if form == "ps":
        cols = _swv(xp, (k, k), axis=(2, 3)).transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * oh)
        out = np.matmul(w.reshape(f, -1), cols).reshape(n, f, oh, oh)
        out += b.reshape(1, f, 1, 1)
    elif form == "cn":
        xc = _pad(x.transpose(1, 0, 2, 3), pad)
        cols = _swv(xc, (k, k), axis=(2, 3)).transpose(0, 4, 5, 1, 2, 3).reshape(c * k * k, -1)
        o = w.reshape(f, -1) @ cols
        o += b[:, None]
        out = np.ascontiguousarray(o.reshape(f, n, oh, oh).transpose(1, 0, 2, 3))
    elif form == "bl":
        img = xp.transpose(1, 2, 3, 0)
        cols = _swv(img, (k, k), axis=(1, 2)).transpose(0, 4, 5, 1, 2, 3).reshape(c * k * k, -1)
        o = w.reshape(f, -1) @ cols
        o += b[:, None]
        out = np.ascontiguousarray(o.reshape(f, oh, oh, n).transpose(3, 0, 1, 2))
    elif form == "nhwc":
        xh = np.ascontiguousarray(xp.transpose(0, 2, 3, 1))
        cols = _swv(xh, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * oh, -1)
        o = cols @ w.transpose(2, 3, 1, 0).reshape(-1, f)
        o += b
        out = np.ascontiguousarray(o.reshape(n, oh, oh, f).transpose(0, 3, 1, 2))
    else:
        cols = _swv(xp, (k, k), axis=(2, 3))
        out = np.einsum("nchwij,fcij->nfhw", cols, w, optimize=True)
        out += b.reshape(1, f, 1, 1)
    return out, (form, cols, x.shape, w, pad)


def conv_bwd(d, cache, need_dx=True):
    """(dx, dw, db) of conv_fwd's convolution for the output gradient ``d`` (NCHW)."""
    form, cols, (n, c, h, _), w, pad = cache
    f, _, k, _ = w.shape
    oh = d.shape[2]
    hp = h + 2 * pad
    db = d.sum(axis=(0, 2, 3))
    dx = None
    if form == "ps":
        d3 = d.reshape(n, f, -1)
        dw = np.matmul(d3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
        if need_dx:
            dc = np.matmul(w.reshape(f, -1).T, d3).reshape(n, c, k, k, oh, oh)
            dxp = np.zeros((n, c, hp, hp), d.dtype)
            for i in range(k):
                for j in range(k):
                    dxp[:, :, i:i + oh, j:j + oh] += dc[:, :, i, j]
            dx = dxp[:, :, pad:pad + h, pad:pad + h]
    elif form == "cn":
        dm = d.transpose(1, 0, 2, 3).reshape(f, -1)
        dw = (dm @ cols.T).reshape(w.shape)
        if need_dx:
            dc = (w.reshape(f, -1).T @ dm).reshape(c, k, k, n, oh, oh)
            dxp = np.zeros((c, n, hp, hp), d.dtype)
            for i in range(k):
                for j in range(k):
                    dxp[:, :, i:i + oh, j:j + oh] += dc[:, i, j]
            dx = dxp[:, :, pad:pad + h, pad:pad + h].transpose(1, 0, 2, 3)
    elif form == "bl":
        dm = d.transpose(1, 2, 3, 0).reshape(f, -1)
        dw = (dm @ cols.T).reshape(w.shape)
        if need_dx:
            dc = (w.reshape(f, -1).T @ dm).reshape(c, k, k, oh, oh, n)
            dxp = np.zeros((c, hp, hp, n), d.dtype)
            for i in range(k):
                for j in range(k):
                    dxp[:, i:i + oh, j:j + oh] += dc[:, i, j]
            dx = dxp[:, pad:pad + h, pad:pad + h].transpose(3, 0, 1, 2)
    elif form == "nhwc":
        dh = d.transpose(0, 2, 3, 1).reshape(-1, f)
        dw = (dh.T @ cols).reshape(f, k, k, c).transpose(0, 3, 1, 2)
        if need_dx:
            dc = (dh @ w.transpose(0, 2, 3, 1).reshape(f, -1)).reshape(n, oh, oh, k, k, c)
            dxp = np.zeros((n, hp, hp, c), d.dtype)
            for i in range(k):
                for j in range(k):
                    dxp[:, i:i + oh, j:j + oh] += dc[:, :, :, i, j]
            dx = dxp[:, pad:pad + h, pad:pad + h].transpose(0, 3, 1, 2)
    else:
        dw = np.einsum("nchwij,nfhw->fcij", cols, d, optimize=True)
        if need_dx:
            # transposed convolution: windows of the output gradient padded by k - 1 - pad
            q = k - 1 - pad
            dp = _pad(d, q) if q >= 0 else d[:, :, -q:q, -q:q]
            win = _swv(dp, (k, k), axis=(2, 3))
            dx = np.einsum("nfhwij,fcij->nchw", win, w[:, :, ::-1, ::-1], optimize=True)
    return dx, dw, db


def pool_fwd(x, k):
    n, c, h, _ = x.shape
    o = h // k
    out = x[:, :, 0:o * k:k, 0:o * k:k]
    for i in range(k):
        for j in range(k):
            if i or j:
                out = np.maximum(out, x[:, :, i:o * k:k, j:o * k:k])
    return out


def pool_bwd(d, x, out, k):
    """Each window position's strided slice of the gradient in one multiply (2-3x faster
    than one (N, C, OH, k, OW, k) broadcast, whose innermost loop is k elements long)."""
    h, o = x.shape[2], out.shape[2]
    dx = (np.empty if o * k == h else np.zeros)(x.shape, d.dtype)
    for i in range(k):
        for j in range(k):
            s = (slice(None), slice(None), slice(i, o * k, k), slice(j, o * k, k))
            np.multiply(x[s] == out, d, out=dx[s])
    return dx


def hand_value_and_grad(name, forms):
    """The hand-written fwd + bwd of net ``name``; ``forms[i]`` is conv layer i's form."""
    _, layers = NETS[name]
    last = len(layers) - 1

    def vg(p, x, y):
        n = x.shape[0]
        h, caches = x, []
        for i, layer in enumerate(layers):
            if layer[0] == "conv":
                a, cache = conv_fwd(h, p[f"w{i}"], p[f"b{i}"], layer[3], forms[i])
                r = np.maximum(a, 0)
                caches.append((a, cache))
                h = r
            elif layer[0] == "pool":
                o = pool_fwd(h, layer[1])
                caches.append((h, o))
                h = o
            else:
                shape = h.shape
                if h.ndim == 4:
                    h = h.reshape(n, -1)
                a = h @ p[f"w{i}"]
                a += p[f"b{i}"]
                caches.append((h, a, shape))
                h = a if i == last else np.maximum(a, 0)
        s = h - h.max(axis=1, keepdims=True)
        e = np.exp(s)
        se = e.sum(axis=1, keepdims=True)
        loss = (np.log(se[:, 0]) - s[np.arange(n), y]).mean()
        d = e
        d /= se * n
        d[np.arange(n), y] -= 1.0 / n
        g = {}
        for i in range(last, -1, -1):
            layer = layers[i]
            if layer[0] == "dense":
                hin, a, shape = caches[i]
                if i != last:
                    d *= a > 0
                g[f"w{i}"], g[f"b{i}"] = hin.T @ d, d.sum(axis=0)
                if i:
                    d = (d @ p[f"w{i}"].T).reshape(shape)
            elif layer[0] == "pool":
                hin, o = caches[i]
                if i and layers[i - 1][0] == "conv":
                    # the ReLU before the pool: its mask on the pooled values (where the
                    # gradient lands, the input equals the max), a quarter of the elements
                    d = d * (o > 0)
                d = pool_bwd(d, hin, o, layer[1])
            else:
                a, cache = caches[i]
                if i + 1 >= len(layers) or layers[i + 1][0] != "pool":
                    d = d * (a > 0)
                d, g[f"w{i}"], g[f"b{i}"] = conv_bwd(d, cache, need_dx=i > 0)
        return loss, g
    return vg


def conv_forms_agree(torch, rng, shapes, log=print):
    """Every form's forward and its three gradients against PyTorch, on each shape."""
    F = torch.nn.functional
    for (n, c, h, f, k, pad) in shapes:
        x = rng.normal(size=(n, c, h, h)).astype(F32)
        w = rng.normal(size=(f, c, k, k)).astype(F32)
        b = rng.normal(size=f).astype(F32)
        tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
        out = F.conv2d(tx, tw, tb, padding=pad)
        d = rng.normal(size=tuple(out.shape)).astype(F32)
        out.backward(torch.from_numpy(d))
        want = [out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]
        for form in FORMS:
            o, cache = conv_fwd(x, w, b, pad, form)
            got = [o, *conv_bwd(d, cache)]
            for what, a, r in zip(("out", "dx", "dw", "db"), got, want):
                scale = max(float(np.abs(r).max()), 1e-6)
                if not np.allclose(a, r, rtol=1e-4, atol=1e-4 * scale):
                    raise AssertionError(f"conv form {form} {what} differs from torch at "
                                         f"{(n, c, h, f, k, pad)}: {np.abs(a - r).max():.3g}")
    log(f"  conv forms {', '.join(FORMS)} agree with torch on {len(shapes)} shapes")


def _median_time(fn, target=0.02, repeats=5):
    fn()
    t = timeit.Timer(fn)
    one = min(t.repeat(2, 1))
    number = max(1, int(target / max(one, 1e-9)))
    return statistics.median(t.repeat(repeats, number)) / number


def conv_layers(name, n):
    """(N, C, H, F, K, pad) of each conv layer of net ``name``, keyed by layer index."""
    (c, h), layers = NETS[name]
    out = {}
    for i, layer in enumerate(layers):
        if layer[0] == "conv":
            out[i] = (n, c, h, layer[1], layer[2], layer[3])
            c, h = layer[1], h + 2 * layer[3] - layer[2] + 1
        elif layer[0] == "pool":
            h //= layer[1]
    return out


def tune_forms(name, n, rng):
    """Per conv layer, the form whose forward + backward is fastest on that layer's shape."""
    best = {}
    for i, (nn_, c, h, f, k, pad) in conv_layers(name, n).items():
        x = rng.normal(size=(nn_, c, h, h)).astype(F32)
        w = rng.normal(size=(f, c, k, k)).astype(F32)
        b = np.zeros(f, F32)
        oh = h + 2 * pad - k + 1
        d = rng.normal(size=(nn_, f, oh, oh)).astype(F32)
        times = {}
        for form in FORMS:
            def step(form=form):
                _, cache = conv_fwd(x, w, b, pad, form)
                conv_bwd(d, cache, need_dx=i > 0)
            times[form] = _median_time(step)
        best[i] = min(times, key=times.get)
    return best


# --- the run -------------------------------------------------------------------------------
def _impls(name, p, x, y, tuned, torch):
    """{impl name: (callable, extract)} of net ``name`` on these arrays."""
    keys = keys_of(p)
    vg = graphc.value_and_grad(make_graphc_loss(name))
    np_out = lambda o: (float(o[0]), [np.asarray(o[1][k]) for k in keys])  # noqa: E731
    impls = {"graphc": (lambda: vg(p, x, y), np_out)}
    variants = {"numpy (tuned)": tuned,
                "numpy (einsum)": {i: "einsum" for i in tuned},
                "numpy (nhwc)": {i: "nhwc" for i in tuned}}
    for label, forms in variants.items():
        f = hand_value_and_grad(name, forms)
        impls[label] = (lambda f=f: f(p, x, y), np_out)
    if torch is not None:
        tp = {k: torch.tensor(p[k], requires_grad=True) for k in keys}
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tloss = make_torch_loss(name, torch)

        def t_step():
            for t in tp.values():
                t.grad = None
            loss = tloss(tp, tx, ty)
            loss.backward()
            return loss
        impls["torch"] = (t_step, lambda o: (float(o.item()),
                                             [tp[k].grad.numpy().copy() for k in keys]))
    return impls


def build(name, n, rng, log=print):
    """The timed float32 implementations of net ``name`` at batch ``n``.

    The values are checked first in float64 (every implementation against torch): in
    float32 a pre-activation within rounding of zero can flip its ReLU mask between two
    summation orders (a kink of the loss, docs/performance.md), which a float32
    comparison would report as a mismatch.  graphc's float32 gradients must stay float32.
    """
    from benchmarks import peers
    torch = peers.torch()
    p = net_params(name, rng)
    x, y = net_data(name, n, rng)
    tuned = tune_forms(name, n, rng)
    log(f"  {name} b{n}: fastest hand form per conv layer {tuned}")
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    checked = _impls(name, p64, x.astype(np.float64), y, tuned, torch)
    _check(checked, "torch" if torch is not None else "graphc", f"{name} b{n}")
    impls = _impls(name, p, x, y, tuned, torch)
    grads = impls["graphc"][1](impls["graphc"][0]())[1]
    if any(g.dtype != np.float32 for g in grads):
        raise AssertionError(f"{name} b{n}: graphc's float32 gradients are not all float32")
    return impls, tuned


def _check(impls, ref_name, label):
    rv, ra = impls[ref_name][1](impls[ref_name][0]())
    problems = []
    for name, (fn, ex) in impls.items():
        v, arrays = ex(fn())
        bad = [] if np.isclose(v, rv, rtol=1e-6) else [f"value {v} vs {rv}"]
        for k, (a, r) in enumerate(zip(arrays, ra)):
            scale = max(float(np.abs(r).max()), 1e-12)
            if not np.allclose(a, r, rtol=1e-6, atol=1e-7 * scale):
                bad.append(f"array {k}: max err {np.abs(a - r).max():.3g} (scale {scale:.3g})")
        if bad:
            problems.append(f"{label}: {name} disagrees with {ref_name}: {bad}")
    if problems:
        raise AssertionError("\n".join(problems))


def measure_cpu(fns, target, repeats):
    """Median *process CPU* seconds per call of each callable, interleaved: on a machine
    that other jobs keep busy the wall clock counts their time slices too, CPU time much
    less (threads pinned to 1, this is the one thread's work)."""
    import time
    from types import SimpleNamespace
    numbers = {}
    for name, fn in fns.items():
        fn()
        one = min(timeit.repeat(fn, number=1, repeat=3))
        numbers[name] = max(1, int(target / max(one, 1e-9)))
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = timeit.Timer(fn, timer=time.process_time).timeit(numbers[name])
            samples[name].append(t / numbers[name])
    return {name: SimpleNamespace(per_call=statistics.median(v)) for name, v in samples.items()}


def run(nets, batches, repeats, target, log=print, cpu_time=False):
    from benchmarks.run import measure_group
    if cpu_time:
        measure_group = measure_cpu  # noqa: F811
    from benchmarks import peers
    rng = np.random.default_rng(0)
    shapes = sorted({s for name in nets for s in conv_layers(name, 2).values()})
    if peers.torch() is not None:
        conv_forms_agree(peers.torch(), rng, shapes, log)
    results = {}
    for name in nets:
        for n in batches:
            impls, tuned = build(name, n, rng, log)
            res = measure_group({k: v[0] for k, v in impls.items()}, target, repeats)
            results[f"{name} b{n}"] = {"tuned": {str(k): v for k, v in tuned.items()},
                                       **{k: t.per_call for k, t in res.items()}}
            log(f"  {name} b{n}: " + ", ".join(f"{k} {t.per_call * 1e3:.2f} ms"
                                               for k, t in res.items()))
    return results


def section(cfg, log):
    """``make bench``'s section (benchmarks/run.py ``--only convnets``): (lines, raw)."""
    res = run(list(NETS), (16,) if cfg.quick else (16, 256), cfg.repeats, cfg.target, log=log)
    return ["## Convolution shapes (issue 18)", "",
            "benchmarks/convnets.py: graphc's value_and_grad against the fastest hand-written "
            "NumPy of five convolution forms (per layer) and torch eager, float32, timed "
            "interleaved; details in docs/performance.md.", "", table(res), ""], res


def table(results):
    hand = ("numpy (tuned)", "numpy (einsum)", "numpy (nhwc)")
    lines = ["| net, batch | graphc | best hand NumPy (form) | torch eager | graphc / best NumPy | "
             "graphc / torch |", "|---|---:|---|---:|---:|---:|"]
    for key, r in results.items():
        best = min(hand, key=lambda h: r[h])
        torch = r.get("torch")
        lines.append(f"| {key} | {r['graphc'] * 1e3:.2f} ms | {r[best] * 1e3:.2f} ms ({best[7:-1]}"
                     f"{' ' + '/'.join(r['tuned'].values()) if best == hand[0] else ''}) | "
                     + (f"{torch * 1e3:.2f} ms" if torch else "n/a")
                     + f" | {r['graphc'] / r[best]:.2f}x | "
                     + (f"{r['graphc'] / torch:.2f}x |" if torch else "n/a |"))
    return "\n".join(lines)


def malloc_both(a):
    """Run the nets in subprocesses, alternating glibc's default malloc thresholds and raised
    ones, ``a.rounds`` times each; the tables show the median per implementation."""
    runs = {"default": [], "raised": []}
    for r in range(a.rounds):
        for setting in runs:
            raw = Path(f"/tmp/convnets-{os.getpid()}-{setting}-{r}.json")
            args = [sys.executable, __file__, "--only", a.only, "--batch", a.batch, "--repeats",
                    str(a.repeats), "--target", str(a.target), "--malloc", setting,
                    "--json", str(raw)] + (["--threads", str(a.threads)] if a.threads else [])
            args += ["--cpu-time"] if a.cpu_time else []
            env = dict(os.environ)
            for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
                env.pop(k, None)
                if setting == "raised":
                    env[k] = str(1 << 28)
            subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
            runs[setting].append(json.loads(raw.read_text()))
            raw.unlink()
    text, out = [], {}
    for setting, rs in runs.items():
        out[setting] = {key: {name: (rs[0][key][name] if name == "tuned" else
                                     statistics.median(r[key][name] for r in rs))
                              for name in rs[0][key]} for key in rs[0]}
        text.append(f"\n### malloc {setting} (median of {a.rounds} alternating runs)\n\n"
                    f"{table(out[setting])}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return "\n".join(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(NETS), help="comma-separated nets")
    ap.add_argument("--batch", default="16,256", help="comma-separated batch sizes")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--target", type=float, default=0.05, help="seconds per timeit repeat")
    ap.add_argument("--malloc", choices=("default", "raised", "both"), default="default",
                    help="glibc malloc thresholds: defaults, raised (MALLOC_MMAP_THRESHOLD_ and "
                         "MALLOC_TRIM_THRESHOLD_ at 256 MiB), or both in two subprocesses")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time process CPU instead of the wall clock (busy machines; with "
                         "--threads 1)")
    ap.add_argument("--rounds", type=int, default=3, help="with --malloc both: alternating runs")
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    a = ap.parse_args(argv)
    nets, batches = a.only.split(","), [int(b) for b in a.batch.split(",")]
    if a.malloc == "both":
        print(malloc_both(a))
        return 0
    if a.threads:
        import threadpoolctl
        threadpoolctl.threadpool_limits(a.threads)
        from benchmarks import peers
        if peers.torch() is not None:
            peers.torch().set_num_threads(a.threads)
    res = run(nets, batches, a.repeats, a.target, log=lambda m: print(m, file=sys.stderr, flush=True),
              cpu_time=a.cpu_time)
    print(f"\n### malloc {a.malloc}\n\n{table(res)}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
