"""Issue 18, convolutions at small batch (`convsmall`): window views built from strides,
kept buffers / out= reuse from 128 KiB, and the unrolled first-maximum pooling mask.

Values against PyTorch (float32 within rounding, importorskip) and against central finite
differences of a plain-NumPy reference in float64; the pooling mask bit for bit against the
loop it replaces; the workspace decisions at batch 16.
"""
import numpy as np
import pytest

import graphc
from graphc import codegen, nn
from graphc.codegen_workspace import WORKSPACE_BYTES
from tests._fd import fd_grad

F32 = np.float32


# --- a small net (LeNet-valid's layers) and a NumPy reference independent of graphc ------
def _net(p, x, t):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["w1"], p["b1"])), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
    return (nn.flatten(h) * t).sum()


def _np_conv(x, w, b, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    return np.einsum("nchwij,fcij->nfhw", win, w) + b.reshape(1, -1, 1, 1)


def _np_pool(x):
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _np_net(tree):
    p, x, t = tree["p"], tree["x"], tree["t"]
    h = _np_pool(np.maximum(_np_conv(x, p["w1"], p["b1"], 0), 0))
    h = _np_pool(np.maximum(_np_conv(h, p["w2"], p["b2"], 1), 0))
    return float((h.reshape(len(h), -1) * t).sum())


def _params(rng, dtype, c1=1, f1=4, f2=6, k=3):
    return {"w1": rng.normal(size=(f1, c1, k, k)).astype(dtype) * 0.5,
            "b1": rng.normal(size=f1).astype(dtype) * 0.1,
            "w2": rng.normal(size=(f2, f1, k, k)).astype(dtype) * 0.3,
            "b2": rng.normal(size=f2).astype(dtype) * 0.1}


def _args(rng, n, h, dtype=np.float64):
    p = _params(rng, dtype)
    x = rng.normal(size=(n, 1, h, h)).astype(dtype)
    o = ((h - 2) // 2) // 2
    t = rng.normal(size=(n, 6 * o * o)).astype(dtype)
    return p, x, t


@pytest.mark.parametrize("n, h", [(3, 12), (2, 20)])
def test_small_net_gradients_match_finite_differences(n, h):
    """float64, both the batch-last (maps < 256 pixels) and per-sample conv layouts."""
    rng = np.random.default_rng(n * h)
    p, x, t = _args(rng, n, h)
    value, (gp, gx) = graphc.value_and_grad(_net, argnums=(0, 1))(p, x, t)
    fd = fd_grad(_np_net, {"p": p, "x": x, "t": t})
    assert abs(float(value) - _np_net({"p": p, "x": x, "t": t})) < 1e-10
    for k in p:
        np.testing.assert_allclose(gp[k], fd["p"][k], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gx, fd["x"], rtol=1e-5, atol=1e-7)


def _lenet_valid(p, x, y):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["w0"], p["b0"])), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["w2"], p["b2"])), 2)
    h = nn.relu(nn.flatten(h) @ p["w4"] + p["b4"])
    return nn.cross_entropy(h @ p["w5"] + p["b5"], y)


def _lenet_params(rng):
    def u(shape, fan):
        return (rng.uniform(-1, 1, shape) / np.sqrt(fan)).astype(F32)
    return {"w0": u((6, 1, 5, 5), 25), "b0": np.full(6, 0.01, F32),
            "w2": u((16, 6, 5, 5), 150), "b2": np.full(16, 0.01, F32),
            "w4": u((256, 120), 256), "b4": np.full(120, 0.01, F32),
            "w5": u((120, 10), 120), "b5": np.full(10, 0.01, F32)}


@pytest.mark.parametrize("layout", ["contiguous", "fortran", "reversed rows"])
def test_lenet_batch16_matches_torch(layout):
    """float32 LeNet-valid at batch 16 (the shape the 128 KiB workspace threshold is for),
    including inputs whose strides are not C order (the window view is built from them)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    p = _lenet_params(rng)
    x = rng.normal(size=(16, 1, 28, 28)).astype(F32)
    if layout == "fortran":
        x = np.asfortranarray(x)
    elif layout == "reversed rows":
        x = np.ascontiguousarray(x)[:, :, ::-1]
    y = rng.integers(0, 10, 16)
    vg = graphc.value_and_grad(_lenet_valid)
    value, grads = vg(p, x, y)
    assert all(g.dtype == F32 for g in grads.values())
    tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in p.items()}
    F = torch.nn.functional
    h = F.max_pool2d(torch.relu(F.conv2d(torch.tensor(x.astype(np.float64)), tp["w0"], tp["b0"])), 2)
    h = F.max_pool2d(torch.relu(F.conv2d(h, tp["w2"], tp["b2"])), 2)
    h = torch.relu(h.reshape(16, -1) @ tp["w4"] + tp["b4"])
    ref = F.cross_entropy(h @ tp["w5"] + tp["b5"], torch.from_numpy(y))
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
    for k, g in grads.items():
        want = tp[k].grad.numpy()
        np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


# --- the window view ----------------------------------------------------------------------
def test_stride_one_windows_are_an_as_strided_view_and_strided_ones_keep_sliding_window_view():
    rng = np.random.default_rng(0)
    p, x, t = _args(rng, 2, 20, F32)        # conv1: per sample (18x18 maps), conv2: batch last
    src = graphc.grad(_net).source(p, x, t)
    assert "as_strided(x, (2, 1, 18, 18, 3, 3), x.strides + x.strides[2:4], writeable=False)" in src
    assert "as_strided(im2col_1, (1, 4, 9, 9, 2, 3, 3), im2col_1.strides + im2col_1.strides[2:4]" in src
    assert "sliding_window_view" not in src

    def strided(x, w):
        return (nn.conv2d(x, w, stride=2) ** 2).sum()
    w = rng.normal(size=(2, 1, 3, 3)).astype(F32)
    assert "sliding_window_view" in graphc.grad(strided, argnums=(0, 1)).source(x, w)


@pytest.mark.parametrize("pad", [0, 2])
def test_window_view_of_a_transposed_batch_last_image_matches_the_reference(pad):
    """The batch-last layout takes windows of a transposed (non-contiguous) view."""
    rng = np.random.default_rng(pad)
    x = rng.normal(size=(5, 3, 9, 9))
    w = rng.normal(size=(4, 3, 3, 3))
    f = graphc.compile(lambda x, w: nn.conv2d(x, w, padding=pad))
    assert "as_strided" in f.source(x, w)
    np.testing.assert_allclose(f(x, w), _np_conv(x, w, np.zeros(4), pad), rtol=1e-12, atol=1e-12)


# --- the pooling mask ---------------------------------------------------------------------
def _loop_mask(x, m, kernel):
    """The loop the unrolled emission replaced (ties: the first maximum, row-major)."""
    kh, kw = kernel
    oh, ow = m.shape[2:]
    out = np.empty((kh, kw) + m.shape, dtype=bool)
    seen = np.zeros(m.shape, dtype=bool)
    for i in range(kh):
        for j in range(kw):
            np.equal(x[:, :, i:i + kh * (oh - 1) + 1:kh, j:j + kw * (ow - 1) + 1:kw], m, out=out[i, j])
            np.greater(out[i, j], seen, out=out[i, j])
            seen |= out[i, j]
    return out


@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (1, 2), (2, 1), (2, 3), (1, 1)])
def test_max_pool_gradient_goes_to_the_first_maximum_as_the_loop_did(kernel):
    rng = np.random.default_rng(sum(kernel))
    # few distinct values: many ties; a NaN and an infinity in some windows
    x = rng.integers(0, 3, size=(2, 3, 7, 8)).astype(np.float64)
    x[0, 0, 0, 0], x[1, 2, 3, 3] = np.nan, np.inf
    kh, kw = kernel
    m = x[:, :, :7 // kh * kh, :8 // kw * kw]
    m = m.reshape(2, 3, 7 // kh, kh, 8 // kw, kw).max(axis=(3, 5))
    t = rng.normal(size=m.shape)
    f = graphc.grad(lambda x: (nn.max_pool2d(x, kernel) * t).sum())
    got = f(x)
    mask = _loop_mask(x, m, kernel)
    want = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            want[:, :, i:i + kh * m.shape[2]:kh, j:j + kw * m.shape[3]:kw] = np.where(mask[i, j], t, 0)
    np.testing.assert_array_equal(got, want)
    if kh * kw > 1:
        assert "_seen = np.zeros" not in f.source(x)


# --- the workspace at batch 16 ------------------------------------------------------------
def test_threshold_is_glibcs_default_mmap_threshold():
    """Temporaries from 128 KiB (glibc's default M_MMAP_THRESHOLD: a fresh process mmaps
    them, and page-faults them in again on every call) are kept, written into a dead
    argument or deleted early."""
    assert WORKSPACE_BYTES == 128 * 1024
    assert codegen._REUSE_BYTES == codegen._FREE_BYTES == WORKSPACE_BYTES


def test_lenet_batch16_keeps_its_windows_and_gradients_and_results_are_independent():
    rng = np.random.default_rng(1)
    p = _lenet_params(rng)
    x1, x2 = (rng.normal(size=(16, 1, 28, 28)).astype(F32) for _ in range(2))
    y = rng.integers(0, 10, 16)
    vg = graphc.value_and_grad(_lenet_valid)
    src = vg.source(p, x1, y)
    assert "_buffer('reshape', (16, 25, 576), np.float32)" in src          # 921,600 bytes
    assert "_buffer('reshape_2', (150, 1024), np.float32)" in src          # 614,400 bytes
    assert "= _buffer('d_relu', (16, 6, 24, 24), np.float32)" in src       # 221,184 bytes
    assert "relu = conv  #" in src                 # out= reuse (the ReLU after the pool,
    assert "np.maximum(relu, zeros_16x6x24x24, out=relu)" in src  # or in place: graphc/codegen_pool_relu.py)
    assert "_buffer('d_relu_1'" not in src                                 # 65,536 bytes: fresh
    v1, g1 = vg(p, x1, y)
    keep = {k: a.copy() for k, a in g1.items()}
    v2, g2 = vg(p, x2, y)
    for k in g1:
        np.testing.assert_array_equal(g1[k], keep[k])
        assert not np.shares_memory(g1[k], g2[k])
    fresh = graphc.value_and_grad(_lenet_valid)(p, x2, y)
    assert float(fresh[0]) == float(v2) and float(v1) != float(v2)
    for k in g2:
        np.testing.assert_array_equal(fresh[1][k], g2[k])


def test_a_batch_of_two_keeps_nothing():
    rng = np.random.default_rng(2)
    p = _lenet_params(rng)
    x = rng.normal(size=(2, 1, 28, 28)).astype(F32)
    src = graphc.value_and_grad(_lenet_valid).source(p, x, rng.integers(0, 10, 2))
    assert "_buffer(" not in src and "import threading" not in src
