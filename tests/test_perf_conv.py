"""Issue 18: convolution lowering at several shapes (against PyTorch) and the workspace
that keeps large temporaries between calls (results never alias a kept buffer)."""
import threading

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.codegen_workspace import WORKSPACE_BYTES

F32 = np.float32


def _conv_loss(stride=1, padding=0):
    def loss(x, w, b, t):
        out = nn.relu(nn.conv2d(x, w, b, stride=stride, padding=padding))
        return (nn.max_pool2d(out, 2) * t).sum()
    return loss


# (N, C, H, F, K, padding): per-sample GEMMs (maps >= 256 pixels or a batch of 1) and the
# batch-innermost layout (small maps), padded and valid, LeNet's and a CIFAR-sized layer
SHAPES = [(4, 1, 28, 6, 5, 2), (4, 1, 28, 6, 5, 0), (8, 6, 14, 16, 5, 0),
          (8, 6, 12, 16, 5, 0), (2, 3, 32, 8, 3, 1), (4, 8, 16, 16, 3, 1), (1, 6, 14, 4, 5, 0)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_conv_relu_pool_gradients_match_torch(shape):
    torch = pytest.importorskip("torch")
    n, c, h, f, k, pad = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=(n, c, h, h)).astype(F32)
    w = rng.normal(size=(f, c, k, k)).astype(F32)
    b = rng.normal(size=f).astype(F32)
    oh = (h + 2 * pad - k + 1) // 2
    t = rng.normal(size=(n, f, oh, oh)).astype(F32)
    value, grads = graphc.value_and_grad(_conv_loss(padding=pad), argnums=(0, 1, 2))(x, w, b, t)
    tx, tw, tb = (torch.tensor(v.astype(np.float64), requires_grad=True) for v in (x, w, b))
    F = torch.nn.functional
    out = F.max_pool2d(torch.relu(F.conv2d(tx, tw, tb, padding=pad)), 2)
    ref = (out * torch.from_numpy(t.astype(np.float64))).sum()
    ref.backward()
    assert value.dtype == F32 and all(g.dtype == F32 for g in grads)
    np.testing.assert_allclose(value, ref.item(), rtol=1e-4)
    for got, want in zip(grads, (tx.grad, tw.grad, tb.grad)):
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-4 * np.abs(want).max())


def _lenet_like(p, x):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["w1"], p["b1"], padding=2)), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["w2"], p["b2"])), 2)
    return (nn.flatten(h) ** 2).mean()


def _lenet_params(rng):
    return {"w1": rng.normal(size=(6, 1, 5, 5)).astype(F32) * 0.3, "b1": np.zeros(6, F32),
            "w2": rng.normal(size=(16, 6, 5, 5)).astype(F32) * 0.1, "b2": np.zeros(16, F32)}


def test_lenet_uses_the_workspace_and_successive_results_are_independent():
    rng = np.random.default_rng(0)
    p = _lenet_params(rng)
    x1, x2 = (rng.normal(size=(64, 1, 28, 28)).astype(F32) for _ in range(2))
    vg = graphc.value_and_grad(_lenet_like)
    src = vg.source(p, x1)
    assert "_buffer('" in src and "import threading" in src     # the windows are kept
    v1, g1 = vg(p, x1)
    keep = {k: a.copy() for k, a in g1.items()}
    v2, g2 = vg(p, x2)                                          # reuses the buffers
    for k in g1:
        np.testing.assert_array_equal(g1[k], keep[k])           # call 1's results untouched
        assert not np.shares_memory(g1[k], g2[k])
    again = graphc.value_and_grad(_lenet_like)(p, x1)           # a fresh function agrees
    np.testing.assert_array_equal(again[1]["w1"], keep["w1"])
    assert float(v1) == float(again[0]) and float(v2) != float(v1)


def test_a_large_matmul_result_returned_or_viewed_is_never_a_kept_buffer():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(512, 256)).astype(F32)
    b = rng.normal(size=(256, 1024)).astype(F32)
    assert 512 * 1024 * 4 >= WORKSPACE_BYTES

    def returned(a, b):
        m = a @ b
        return m, (m * m).sum()

    def viewed(a, b):
        m = a @ b
        return m.T[::2], m.sum()

    for fn in (returned, viewed):
        f = graphc.compile(fn)
        assert "_buffer(" not in f.source(a, b)
        r1 = f(a, b)[0]
        keep = r1.copy()
        r2 = f(a * 2, b)[0]
        np.testing.assert_array_equal(r1, keep)
        assert not np.shares_memory(r1, r2)


def test_a_large_matmul_used_inside_goes_into_the_workspace():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(512, 256)).astype(F32)
    b = rng.normal(size=(256, 1024)).astype(F32)

    def inside(a, b):
        m = a @ b
        return (m * m).sum() + m.max()

    f = graphc.compile(inside)
    assert "out=_buffer('m'" in f.source(a, b)
    m = (a.astype(np.float64) @ b.astype(np.float64))
    for scale in (1.0, 0.5):
        want = (m * m).sum() * scale ** 2 + m.max() * scale
        np.testing.assert_allclose(f(a * F32(scale), b), want, rtol=1e-4)


def test_threads_have_their_own_workspace():
    rng = np.random.default_rng(3)
    p = _lenet_params(rng)
    xs = [rng.normal(size=(64, 1, 28, 28)).astype(F32) for _ in range(4)]
    vg = graphc.value_and_grad(_lenet_like)
    want = [vg(p, x)[1]["w1"].copy() for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = vg(p, xs[i])[1]["w1"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_golden_conv_workspace():
    """A small conv net whose windows, input-gradient GEMM and pooling gradient are large
    enough for kept buffers: the generated code, byte for byte."""
    from tests.test_codegen import check_golden
    rng = np.random.default_rng(0)
    p = _lenet_params(rng)
    x = rng.normal(size=(64, 1, 28, 28)).astype(F32)
    check_golden("conv_workspace_grad.py", graphc.grad(_lenet_like).source(p, x))
