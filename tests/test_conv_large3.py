"""Issue 18, conv256: convolutions at batch 256 (graphc/codegen_layout.py and the GEMM + bias
form of graphc/codegen_workspace.py).

- a layout copy (``np.ascontiguousarray`` of a transposed GEMM result) and the ufunc that
  reads it run as one ``ufunc(view, ..., out=...)`` pass;
- a convolution's ``(w @ cols + b).reshape(...)`` writes its product into a kept buffer and
  adds the bias there;
- a dead argument that a result is written into (``out=``) may be a kept buffer when that
  result cannot reach the caller.

All three give the same values bit for bit as the code without them (checked here by
compiling with them switched off), and no result the caller receives is a kept buffer.
"""
import re

import numpy as np
import pytest

import graphc
from graphc import codegen_pool_check, codegen_workspace, nn

F32 = np.float32


def _net(p, x):
    """conv (per-sample) -> relu -> pool -> conv (batch-last or channel-major) -> relu -> pool."""
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["w1"], p["b1"], padding=1)), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
    return (nn.flatten(h) ** 2).mean()


def _params(rng, c_in, c1, c2):
    return {"w1": (rng.normal(size=(c1, c_in, 3, 3)) * 0.3).astype(F32),
            "b1": (rng.normal(size=c1) * 0.1).astype(F32),
            "w2": (rng.normal(size=(c2, c1, 3, 3)) * 0.1).astype(F32),
            "b2": (rng.normal(size=c2) * 0.1).astype(F32)}


# (batch, input channels, size, conv1 filters, conv2 filters): conv2 on 8x8 maps takes the
# batch-last layout, on 16x16 maps with 8 channels the channel-major one
CASES = {"batch-last": (32, 1, 16, 6, 16), "channel-major": (16, 3, 32, 8, 16)}


def _without_new_forms(monkeypatch):
    monkeypatch.setattr(codegen_workspace, "fuse_layout_copies", lambda *a, **k: {})
    monkeypatch.setattr(codegen_workspace, "_gemm_bias_lines", lambda *a, **k: None)
    monkeypatch.setattr(codegen_workspace, "_caller_donors",
                        lambda em, items, reused: {d for d, _ in reused.values()})


@pytest.mark.parametrize("case", CASES)
def test_the_fused_forms_are_emitted_and_give_the_same_bits(case, monkeypatch):
    n, c, size, c1, c2 = CASES[case]
    rng = np.random.default_rng(1)
    p, x = _params(rng, c, c1, c2), rng.normal(size=(n, c, size, size)).astype(F32)
    vg = graphc.value_and_grad(_net)
    src = vg.source(p, x)
    # the layout change of conv2's result and its ReLU: one ufunc into a kept C-order buffer
    # (with the ReLU before the pool as written: graphc/codegen_pool_relu.py pools a view
    # of the GEMM's result instead, tests/test_pool_relu.py)
    with monkeypatch.context() as m:
        m.setattr(codegen_pool_check, "POOL_RELU", False)
        fused = graphc.value_and_grad(_net).source(p, x)
    assert "np.ascontiguousarray" not in fused.split("# grad of")[0]
    assert re.search(r", zeros_[\dx]+, out=relu_1\)", fused) and "relu_1 = _buffer('relu_1'" in fused
    assert "np.ascontiguousarray" not in src.split("# grad of")[0]
    if case == "batch-last":
        assert re.search(r"relu_1 = reshape_\d\.transpose\(3, 0, 1, 2\)  #", src)
    else:
        assert re.search(r"np\.copyto\(relu_1, reshape_\d\.transpose\(1, 0, 2, 3\)\)  #", src)
    # both GEMMs + bias into kept buffers, conv1's ReLU in place on its buffer
    assert "conv = np.matmul(w1.reshape(" in src and "conv += b1.reshape(" in src
    # (the ReLU runs after the pool; in place on the buffer where a window's maximum is 0:
    # graphc/codegen_pool_relu.py)
    assert "relu = conv  #" in src and re.search(r"np\.maximum\(relu, zeros_[\dx]+, out=relu\)", src)
    value, grads = vg(p, x)
    with monkeypatch.context() as m:
        _without_new_forms(m)
        old = graphc.value_and_grad(_net)
        old_src = old.source(p, x)
        assert "np.ascontiguousarray(" in old_src and "conv += " not in old_src
        ref_value, ref_grads = old(p, x)
    assert value == ref_value
    for k in p:
        np.testing.assert_array_equal(grads[k], ref_grads[k])
        assert grads[k].dtype == F32


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_torch(case):
    torch = pytest.importorskip("torch")
    n, c, size, c1, c2 = CASES[case]
    rng = np.random.default_rng(2)
    p, x = _params(rng, c, c1, c2), rng.normal(size=(n, c, size, size)).astype(F32)
    value, grads = graphc.value_and_grad(_net)(p, x)
    tp = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in p.items()}
    F = torch.nn.functional
    h = F.max_pool2d(torch.relu(F.conv2d(torch.from_numpy(x.astype(np.float64)), tp["w1"],
                                         tp["b1"], padding=1)), 2)
    h = F.max_pool2d(torch.relu(F.conv2d(h, tp["w2"], tp["b2"], padding=1)), 2)
    ref = (h.reshape(n, -1) ** 2).mean()
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
    for k in p:
        want = tp[k].grad.numpy()
        np.testing.assert_allclose(grads[k], want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_finite_differences_of_the_channel_major_net():
    """float64 (no float32 kink flips): the gradient of a bias and of one filter weight."""
    n, c, size, c1, c2 = CASES["channel-major"]
    rng = np.random.default_rng(3)
    p = {k: v.astype(np.float64) for k, v in _params(rng, c, c1, c2).items()}
    x = rng.normal(size=(n, c, size, size))
    _, grads = graphc.value_and_grad(_net)(p, x)
    f = graphc.compile(_net)
    for key, idx in (("b2", (3,)), ("w2", (5, 2, 1, 1)), ("b1", (0,))):
        eps = 1e-6
        hi, lo = ({**p, key: p[key].copy()} for _ in range(2))
        hi[key][idx] += eps
        lo[key][idx] -= eps
        fd = (float(f(hi, x)) - float(f(lo, x))) / (2 * eps)
        np.testing.assert_allclose(grads[key][idx], fd, rtol=1e-5, atol=1e-9)


def _conv_relu(x, w, b):
    return nn.relu(nn.conv2d(x, w, b, padding=1))


def _conv_only(x, w, b):
    return nn.conv2d(x, w, b, padding=1)


@pytest.mark.parametrize("fn", [_conv_relu, _conv_only], ids=["relu", "conv"])
@pytest.mark.parametrize("size, c", [(16, 1), (16, 8), (8, 8)],
                         ids=["per-sample", "channel-major", "batch-last"])
def test_a_returned_result_is_never_a_kept_buffer(fn, size, c):
    """The ReLU written into the GEMM's buffer (out=) is returned: neither the GEMM's
    product nor the ReLU may live in a kept buffer, and each call's result is its own."""
    rng = np.random.default_rng(4)
    w, b = rng.normal(size=(16, c, 3, 3)).astype(F32), rng.normal(size=16).astype(F32)
    x1, x2 = (rng.normal(size=(64, c, size, size)).astype(F32) for _ in range(2))
    f = graphc.compile(fn)
    src = f.source(x1, w, b)
    returned = src.split("    return ")[1].split()[0]
    assert f"_buffer({returned!r}" not in src and "_buffer('relu'" not in src
    r1 = f(x1, w, b)
    keep = r1.copy()
    r2 = f(x2, w, b)
    np.testing.assert_array_equal(r1, keep)
    assert not np.shares_memory(r1, r2)
    assert r1.flags.c_contiguous and r2.flags.c_contiguous
    want = graphc.compile(_conv_only)(x1, w, b)
    np.testing.assert_array_equal(r1, np.maximum(want, 0) if fn is _conv_relu else want)
