"""The ReLU before a max pool runs on the pooled values (graphc/codegen_pool_relu.py).

``max_pool(relu(z))`` is generated as ``relu(max_pool(z))`` (with the order as written
where a window's maximum is 0), and the pool's gradient reads ``z``.  Every value and
gradient must be bit for bit what the code without the rewrite gives (switched off by
``codegen_pool_check.POOL_RELU``) and what the exact first-maximum rule gives (the tie
check switched off too), over ties, dead windows, exact zeros, -0.0, nan and ±inf, in
square and rectangular windows; and PyTorch's wherever no nan is involved.
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import graphc
from graphc import codegen_pool_check, codegen_workspace, nn

F32 = np.float32
KERNELS = [(2, 2), (3, 3), (2, 3)]


def _relu_pool(k):
    def relu_pool(p, x):
        return (nn.max_pool2d(nn.relu(x * p["s"]), k) * p["v"]).sum()
    return relu_pool


def _conv_relu_pool(p, x):
    h = nn.relu(nn.conv2d(x, p["w"], p["b"], padding=1))
    return (nn.max_pool2d(h, 2) * p["v"]).sum()


def _call(fn, args, mode, monkeypatch, argnums=(0, 1)):
    """value_and_grad of ``fn`` compiled with the rewrite ("new"), without it ("old"), or
    with neither it nor the tie check ("exact")."""
    with monkeypatch.context() as m:
        if mode != "new":
            m.setattr(codegen_pool_check, "POOL_RELU", False)
        if mode == "exact":
            m.setattr(codegen_workspace, "pool_check", lambda em, items: None)
        vg = graphc.value_and_grad(fn, argnums=argnums)
        src = vg.source(*args)
        with np.errstate(invalid="ignore"):
            return vg(*args), src


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes(), (a, b)


def _assert_same(new, old):
    (v1, g1), (v0, g0) = new, old
    _same_bits(v1, v0)
    for a, b in zip(g1, g0):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                _same_bits(a[k], b[k])
        else:
            _same_bits(a, b)


def _all_three(fn, args, monkeypatch, argnums=(0, 1)):
    new, src = _call(fn, args, "new", monkeypatch, argnums)
    old, old_src = _call(fn, args, "old", monkeypatch, argnums)
    exact, _ = _call(fn, args, "exact", monkeypatch, argnums)
    _assert_same(new, old)
    _assert_same(new, exact)
    assert "_zero_ties_" not in old_src
    return new, src


def _planted(rng, shape, k, kind_of=None):
    """Windows of every kind: positive ties, dead (all negative), negative ties, zeros
    (+0.0 and -0.0) at or below the maximum, a zero maximum with negatives, random."""
    x = rng.normal(size=shape).astype(F32)
    kh, kw = k
    for i in range(0, shape[2] - kh + 1, kh):
        for j in range(0, shape[3] - kw + 1, kw):
            kind = rng.integers(0, 7) if kind_of is None else kind_of
            win = x[:, :, i:i + kh, j:j + kw]
            if kind == 0:                       # a tie at a positive maximum
                win[...] = -np.abs(win)
                win[..., 0, kw - 1] = win[..., kh - 1, 0] = 2.5
            elif kind == 1:                     # a dead window
                win[...] = -np.abs(win) - 0.1
            elif kind == 2:                     # a tie at a negative maximum
                win[...] = -np.abs(win) - 3.0
                win[..., 0, kw - 1] = win[..., kh - 1, 0] = -1.0
            elif kind == 3:                     # -0.0 as the maximum, then +0.0
                win[...] = -np.abs(win) - 0.5
                win[..., kh - 1, kw - 1] = -0.0
                win[..., 0, 0] = 0.0 if rng.integers(0, 2) else -1.0
            elif kind == 4:                     # a zero below a positive maximum
                win[..., 0, 0] = -0.0
                win[..., kh - 1, kw - 1] = 1.5
    return x


SPECIALS = {"none": None, "nan": np.nan, "-nan": -np.nan, "inf": np.inf, "-inf": -np.inf,
            "zero": 0.0, "-zero": -0.0}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("special", list(SPECIALS))
@pytest.mark.parametrize("where", ["x", "v"])
def test_bit_for_bit_with_and_without_the_rewrite(monkeypatch, kernel, special, where):
    rng = np.random.default_rng(abs(hash((kernel, special, where))) % 2**32)
    kh, kw = kernel
    x = _planted(rng, (3, 2, 4 * kh + 1, 3 * kw + 1), kernel)      # cropped rows and columns
    v = rng.normal(size=(3, 2, 4, 3)).astype(F32)
    v[0, 0, 0, 0] = -abs(v[0, 0, 0, 0])
    if special != "none":
        (x if where == "x" else v)[1, 1, 2, 1] = SPECIALS[special]
        (x if where == "x" else v)[0, 0, 3, 2] = SPECIALS[special]
    for s in (1.0, -1.0, 0.0, -0.0):            # also all-zero images, of either sign
        p = {"s": F32(s), "v": v}
        _, src = _all_three(_relu_pool(kernel), (p, x), monkeypatch)
        assert "_zero_ties_pool = 0" in src and "relu = x * s  # the ReLU runs after the pool" in src


@pytest.mark.parametrize("kind", range(6))
@pytest.mark.parametrize("kernel", KERNELS)
def test_one_kind_of_window_everywhere(monkeypatch, kind, kernel):
    """Images of one window kind only (all dead, all tied, all -0.0 maxima, ...)."""
    rng = np.random.default_rng(kind)
    kh, kw = kernel
    x = _planted(rng, (2, 3, 3 * kh, 2 * kw), kernel, kind_of=kind)
    for v in (rng.normal(size=(2, 3, 3, 2)).astype(F32), -np.ones((2, 3, 3, 2), F32)):
        v[1, 2, 2, 1] = np.inf if kind % 2 else v[1, 2, 2, 1]
        _all_three(_relu_pool(kernel), ({"s": F32(1.0), "v": v}, x), monkeypatch)


@pytest.mark.parametrize("n", [2, 12])
def test_conv_relu_pool(monkeypatch, n):
    rng = np.random.default_rng(n)
    p = {"w": rng.normal(size=(4, 2, 3, 3)).astype(F32), "b": np.zeros(4, F32),
         "v": rng.normal(size=(n, 4, 12, 12)).astype(F32)}
    x = rng.normal(size=(n, 2, 24, 24)).astype(F32)
    _, src = _all_three(_conv_relu_pool, (p, x), monkeypatch)
    assert "h = conv  # the ReLU runs after the pool below" in src
    x[:, :, :8, :8] = 0.0                       # zero inputs, zero bias: zero maxima
    x[0, 0, 10:14, 10:14] = 3.0                 # a flat patch: positive ties
    _all_three(_conv_relu_pool, (p, x), monkeypatch)
    p["b"][:] = -0.0
    x[1, 1, 20, 20] = -np.inf
    _all_three(_conv_relu_pool, (p, x), monkeypatch)


@pytest.mark.parametrize("net, batch", [("lenet-pad", 16), ("lenet-pad", 64), ("lenet-valid", 16),
                                        ("cifar", 4)])
def test_benchmark_nets(monkeypatch, net, batch):
    """The benchmark's nets (conv, ReLU, pool twice): random data, a flat patch, zero
    images with a zero bias, and an infinite pixel."""
    from benchmarks import convnets as C
    rng = np.random.default_rng(1)
    p = C.net_params(net, rng)
    x, y = C.net_data(net, batch, rng)
    fn = C.make_graphc_loss(net)
    _, src = _all_three(fn, (p, x, y), monkeypatch, argnums=0)
    assert src.count("else:  # max(ReLU(window)) is ReLU(max(window))") == 2
    if batch == 64:     # conv1's ReLU was in place on the GEMM's buffer, conv2's a layout copy
        assert "relu = conv  # the ReLU runs" in src and re.search(r"np\.maximum\(relu, zeros_[\dx]+, out=relu\)", src)
        # conv2's ReLU was a layout copy (batch-last to NCHW): the pool reads the GEMM's
        # result through a view, and the unpool writes its gradient in that layout
        assert "relu_1 = reshape_4.transpose(3, 0, 1, 2)  # the ReLU runs" in src
        assert "d_relu_1 = _buffer('d_relu_1', (16, 10, 10, 64), np.float32).transpose(3, 0, 1, 2)" in src
    x2 = x.copy()
    x2[:, :, 8:16, 8:16] = 3.0
    x2[:4] = 0.0
    p0 = {k: (np.zeros_like(a) if k.endswith("b") else a) for k, a in p.items()}
    _all_three(fn, (p0, x2, y), monkeypatch, argnums=0)
    x2[batch - 1, 0, 0, 0] = np.inf
    _all_three(fn, (p, x2, y), monkeypatch, argnums=0)


def _torch_grads(p, x, kernel):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tx = torch.tensor(x, requires_grad=True)
    tv = torch.tensor(p["v"], requires_grad=True)
    pooled = F.max_pool2d(torch.relu(tx * float(p["s"])), kernel)
    out = (pooled * tv).sum()
    out.backward()
    return pooled.detach().numpy(), tx.grad.numpy(), tv.grad.numpy()


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("special", ["none", "inf", "-inf", "zero", "-zero"])
def test_against_torch(kernel, special):
    """Ties, dead windows, zeros, ±inf: PyTorch's relu (0 at 0) and max pool (first max)."""
    rng = np.random.default_rng(7)
    kh, kw = kernel
    x = _planted(rng, (3, 2, 4 * kh, 3 * kw), kernel)
    if special != "none":
        x[1, 1, 2, 1] = SPECIALS[special]
    p = {"s": F32(1.0), "v": rng.normal(size=(3, 2, 4, 3)).astype(F32)}
    vg = graphc.value_and_grad(_relu_pool(kernel), argnums=(0, 1))
    assert "_zero_ties_pool" in vg.source(p, x)
    _, (gp, gx) = vg(p, x)
    t_pooled, tgx, tgv = _torch_grads(p, x, kernel)
    np.testing.assert_array_equal(gx, tgx)
    np.testing.assert_array_equal(gp["v"], tgv)
    fwd = graphc.compile(lambda x: nn.max_pool2d(nn.relu(x), kernel))
    np.testing.assert_array_equal(fwd(x), t_pooled)


def _lines_run(vg, *args):
    """The source lines the exported code ran for ``args``."""
    src = vg.source(*args)
    ns: dict = {}
    exec(compile(src, "<pool-relu>", "exec"), ns)
    fn = ns[vg.export_name()]
    lines, ran = src.splitlines(), set()

    def local(frame, event, arg):
        if event == "line":
            ran.add(frame.f_lineno)
        return local
    sys.settrace(lambda frame, event, arg: local if frame.f_code is fn.__code__ else None)
    try:
        with np.errstate(invalid="ignore"):
            fn(*args)
    finally:
        sys.settrace(None)
    return [lines[n - 1].strip().partition("  #")[0].strip() for n in sorted(ran)]


def test_which_order_runs():
    """The ReLU on the pooled values unless a window's maximum is ±0; the cheap mask
    unless a window ties at a positive maximum (dead windows do not count)."""
    rng = np.random.default_rng(3)
    x = _planted(rng, (3, 2, 8, 6), (2, 2), kind_of=1)         # dead and random windows
    x[0] = rng.normal(size=x.shape[1:])
    p = {"s": F32(1.0), "v": rng.normal(size=(3, 2, 4, 3)).astype(F32)}
    vg = graphc.value_and_grad(_relu_pool(2), argnums=(0, 1))
    ran = _lines_run(vg, p, x)
    assert "_zero_ties_pool = 0" in ran and "_zero_ties_pool = 4" not in ran
    assert not any(line.startswith("np.greater(") for line in ran)     # the cheap mask
    x[1, 0, 0, 0] = -0.0                                               # a window's max is -0.0
    ran = _lines_run(vg, p, x)
    assert "_zero_ties_pool = 4" in ran and not any(line.startswith("np.greater(") for line in ran)
    x[1, 0, 0, 0] = -1.0
    x[2, 1, 2, 2] = x[2, 1, 3, 3] = 9.0                                # a positive tie
    ran = _lines_run(vg, p, x)
    assert "_zero_ties_pool = 0" in ran and any(line.startswith("np.greater(") for line in ran)


def _maximum_pool(p, x):
    return (nn.max_pool2d(np.maximum(x * p["s"], 0), 2) * p["v"]).sum()


def _relu_twice(p, x):
    h = nn.relu(x * p["s"])
    return (nn.max_pool2d(h, 2) * p["v"]).sum() + (h * h).sum()


def _overlapping(p, x):
    return (nn.max_pool2d(nn.relu(x * p["s"]), 2, stride=1)[:, :, :4, :3] * p["v"]).sum()


@pytest.mark.parametrize("fn", [_maximum_pool, _relu_twice, _overlapping])
def test_left_as_written(monkeypatch, fn):
    """``np.maximum(x, 0)`` (half the gradient at 0, through maximum / x), a ReLU read
    elsewhere too, and overlapping windows keep the order as written."""
    rng = np.random.default_rng(2)
    x = _planted(rng, (3, 2, 8, 6), (2, 2))
    p = {"s": F32(1.0), "v": rng.normal(size=(3, 2, 4, 3)).astype(F32)}
    _, src = _all_three(fn, (p, x), monkeypatch)
    assert "_zero_ties_" not in src


def test_golden_pool_relu():
    from tests.test_codegen import check_golden
    rng = np.random.default_rng(0)
    p = {"s": F32(1.0), "v": rng.normal(size=(2, 3, 4, 4)).astype(F32)}
    x = rng.normal(size=(2, 3, 8, 8)).astype(F32)
    check_golden("pool_relu_value_and_grad.py",
                 graphc.value_and_grad(_relu_pool(2), argnums=(0, 1)).source(p, x))


def test_other_transformations(monkeypatch):
    """Per-example gradients (vmap of grad) and a Hessian-vector product through ReLU and
    pool: the same bits with and without the rewrite."""
    rng = np.random.default_rng(4)
    x = _planted(rng, (3, 2, 8, 6), (2, 2))
    v = rng.normal(size=(3, 2, 4, 3)).astype(F32)

    def loss(x, v):
        return (nn.max_pool2d(nn.relu(x), 2) * v).sum()

    def per_example(x, v):
        return graphc.vmap(graphc.grad(lambda xi, vi: loss(xi[None], vi[None])))(x, v)

    def hvp(x, v):
        return graphc.hvp(lambda x: (nn.max_pool2d(nn.relu(x), 2) ** 2 * v).sum(), (x,), (x,))

    for fn in (per_example, hvp):
        results = []
        for on in (True, False):
            with monkeypatch.context() as m:
                m.setattr(codegen_pool_check, "POOL_RELU", on)
                results.append(graphc.compile(fn)(x, v))
        new, old = (np.asarray(r[-1] if isinstance(r, tuple) else r) for r in results)
        _same_bits(new, old)
