"""Tests of graphc.nn against independent plain-NumPy references.

Every reference below is written from the formula (Python loops where the
layer is a loop: convolution, pooling, maxout) and never calls graphc.  Each
layer is checked three ways: eager (NumPy in -> NumPy out), inside
``graphc.compile``, and its gradient (``graphc.grad``) against central finite
differences of the reference.
"""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

import graphc
from graphc import nn

F64 = np.float64


# =========================================================================================
# Independent references (plain NumPy / Python loops; no graphc)
# =========================================================================================
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def ref_sigmoid(x):
    x = np.asarray(x, F64)
    out = np.empty_like(x)
    for i, v in np.ndenumerate(x):
        # Two branches so neither exp overflows.
        out[i] = 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v))
    return out


def ref_relu(x):
    return np.where(x > 0, x, 0.0)


def ref_leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def ref_elu(x, alpha=1.0):
    out = np.empty_like(np.asarray(x, F64))
    for i, v in np.ndenumerate(x):
        out[i] = v if v > 0 else alpha * math.expm1(v)
    return out


def ref_softplus(x):
    out = np.empty_like(np.asarray(x, F64))
    for i, v in np.ndenumerate(x):
        # log(1 + e^v) = max(v, 0) + log1p(e^-|v|)
        out[i] = max(v, 0.0) + math.log1p(math.exp(-abs(v)))
    return out


def ref_maxout(x, pieces, axis=-1):
    x = np.moveaxis(np.asarray(x, F64), axis, -1)
    k = x.shape[-1] // pieces
    out = np.empty(x.shape[:-1] + (k,))
    for idx in np.ndindex(*x.shape[:-1]):
        for j in range(k):
            out[idx + (j,)] = max(x[idx + (j * pieces + q,)] for q in range(pieces))
    return np.moveaxis(out, -1, axis)


def ref_logsumexp(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis=axis)


def ref_log_softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def ref_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_cross_entropy(logits, labels):
    logp = ref_log_softmax(logits, axis=1)
    n = logits.shape[0]
    if labels.ndim == 1:
        return -sum(logp[i, labels[i]] for i in range(n)) / n
    return -np.sum(labels * logp) / n


def ref_logistic_loss(s, y):
    return np.mean(ref_softplus(-y * s))


def ref_mse(p, t):
    return np.mean((p - t) ** 2)


def _pad(x, ph, pw, value=0.0):
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=F64)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """Cross-correlation by the definition: six nested loops."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = _pad(x, ph, pw)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow))
    for i_n, i_f, i, j in itertools.product(range(n), range(f), range(oh), range(ow)):
        s = 0.0 if b is None else b[i_f]
        for i_c, a, bb in itertools.product(range(c), range(kh), range(kw)):
            s += xp[i_n, i_c, i * sh + a * dh, j * sw + bb * dw] * w[i_f, i_c, a, bb]
        out[i_n, i_f, i, j] = s
    return out


def fast_ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """The same definition, vectorized over (n, f, i, j), looping over kernel taps only.

    Used where the six-loop version is too slow (model-level finite differences);
    checked against ``ref_conv2d`` below.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = _pad(x, ph, pw) if (ph or pw) else x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, w))
    for a in range(kh):
        for bb in range(kw):
            patch = xp[:, :, a * dh: a * dh + sh * (oh - 1) + 1: sh,
                       bb * dw: bb * dw + sw * (ow - 1) + 1: sw]        # (n, c, oh, ow)
            out += np.einsum("ncij,fc->nfij", patch, w[:, :, a, bb])
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out


def ref_conv1d(x, w, b=None, stride=1, padding=0, dilation=1):
    n, c, length = x.shape
    f, _, k = w.shape
    xp = np.zeros((n, c, length + 2 * padding))
    xp[:, :, padding:padding + length] = x
    ol = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((n, f, ol))
    for i_n, i_f, i in itertools.product(range(n), range(f), range(ol)):
        s = 0.0 if b is None else b[i_f]
        for i_c, a in itertools.product(range(c), range(k)):
            s += xp[i_n, i_c, i * stride + a * dilation] * w[i_f, i_c, a]
        out[i_n, i_f, i] = s
    return out


def _pool2d(x, kernel, stride, padding, pad_value, reduce):
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(kernel if stride is None else stride)
    (ph, pw) = _pair(padding)
    n, c, h, w = x.shape
    xp = _pad(x, ph, pw, pad_value)
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i_n, i_c, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        window = [xp[i_n, i_c, i * sh + a, j * sw + bb] for a in range(kh) for bb in range(kw)]
        out[i_n, i_c, i, j] = reduce(window)
    return out


def ref_max_pool2d(x, kernel, stride=None, padding=0):
    return _pool2d(x, kernel, stride, padding, -np.inf, max)


def ref_avg_pool2d(x, kernel, stride=None, padding=0):
    return _pool2d(x, kernel, stride, padding, 0.0, lambda v: sum(v) / len(v))


def ref_lp_pool2d(x, p, kernel, stride=None):
    return _pool2d(x, kernel, stride, 0, 0.0, lambda v: sum(t ** p for t in v) ** (1.0 / p))


def _to2d(x):
    return x[:, :, None, :]


def ref_max_pool1d(x, kernel, stride=None, padding=0):
    return ref_max_pool2d(_to2d(x), (1, kernel), None if stride is None else (1, stride),
                          (0, padding))[:, :, 0, :]


def ref_avg_pool1d(x, kernel, stride=None, padding=0):
    return ref_avg_pool2d(_to2d(x), (1, kernel), None if stride is None else (1, stride),
                          (0, padding))[:, :, 0, :]


def ref_flatten(x, start_axis=1):
    return x.reshape(x.shape[:start_axis] + (-1,))


# =========================================================================================
# Helpers
# =========================================================================================
def fd_grad(f, x, eps=1e-6):
    """Central differences of scalar ``f`` at array ``x`` (float64, every coordinate)."""
    x = np.array(x, F64)
    g = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def eager_and_compiled(fn, *args):
    """``fn(*args)`` run eagerly and inside graphc.compile (keyword params in closures)."""
    eager = fn(*args)
    compiled = graphc.compile(fn)(*args)
    return eager, compiled


def assert_matches(fn, args, expected, rtol=1e-12, atol=1e-12):
    eager, compiled = eager_and_compiled(fn, *args)
    assert isinstance(eager, np.ndarray) or np.isscalar(eager), type(eager)
    assert np.shape(eager) == np.shape(expected)
    assert np.shape(compiled) == np.shape(expected)
    np.testing.assert_allclose(eager, expected, rtol=rtol, atol=atol)
    np.testing.assert_allclose(compiled, expected, rtol=rtol, atol=atol)


def check_grad_vs_fd(fn, ref, args, wrt=(0,), seed=1, rtol=1e-6, atol=1e-8):
    """graphc.grad of sum(fn(*args) * R) vs FD of sum(ref(*args) * R)."""
    rng = np.random.default_rng(seed)
    R = rng.normal(size=np.shape(ref(*args)))
    args = list(args)

    def loss(*a):
        return np.sum(fn(*a) * R)

    grads = graphc.grad(loss, argnums=tuple(wrt))(*args)
    for k, i in enumerate(wrt):
        def f_ref(v, i=i):
            a = list(args)
            a[i] = v
            return float(np.sum(ref(*a) * R))
        expected = fd_grad(f_ref, args[i])
        assert grads[k].shape == np.shape(args[i]) and grads[k].dtype == F64
        np.testing.assert_allclose(grads[k], expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient wrt argument {i}")


# =========================================================================================
# 1. Values: eager and compiled vs the references
# =========================================================================================
ACTIVATIONS = [
    ("sigmoid", nn.sigmoid, ref_sigmoid),
    ("relu", nn.relu, ref_relu),
    ("leaky_relu", nn.leaky_relu, ref_leaky_relu),
    ("leaky_relu_0.2", lambda x: nn.leaky_relu(x, negative_slope=0.2),
     lambda x: ref_leaky_relu(x, 0.2)),
    ("elu", nn.elu, ref_elu),
    ("elu_alpha_0.5", lambda x: nn.elu(x, alpha=0.5), lambda x: ref_elu(x, 0.5)),
    ("softplus", nn.softplus, ref_softplus),
    ("tanh", nn.tanh, np.tanh),
]


@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_values(name, fn, ref, rng):
    x = rng.normal(size=(4, 5)) * 3
    x[0, 0] = 0.0
    assert_matches(fn, (x,), ref(x))


@pytest.mark.parametrize("shape,pieces,axis", [((3, 8), 2, -1), ((3, 9), 3, 1), ((6, 4), 3, 0),
                                               ((2, 6, 3), 2, 1), ((2, 3, 4), 4, -1)])
def test_maxout_values(rng, shape, pieces, axis):
    x = rng.normal(size=shape)
    assert_matches(lambda x: nn.maxout(x, pieces, axis=axis), (x,), ref_maxout(x, pieces, axis))


def test_maxout_groups_are_consecutive():
    # Output feature j = max of inputs j*pieces ... j*pieces+pieces-1 (not strided groups).
    x = np.array([[1.0, 5.0, 2.0, 0.0, -3.0, -1.0]])
    np.testing.assert_array_equal(nn.maxout(x, 2), [[5.0, 2.0, -1.0]])
    np.testing.assert_array_equal(nn.maxout(x, 3), [[5.0, 0.0]])


@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((4, 5), 0), ((4, 5), 1), ((2, 3, 4), 1),
                                        ((2, 3, 4), -1), ((7,), 0)])
@pytest.mark.parametrize("which", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_values(rng, shape, axis, which):
    x = rng.normal(size=shape) * 4
    fn = getattr(nn, which)
    ref = {"softmax": ref_softmax, "log_softmax": ref_log_softmax,
           "logsumexp": ref_logsumexp}[which]
    assert_matches(lambda x: fn(x, axis=axis), (x,), ref(x, axis))


def test_softmax_rows_sum_to_one(rng):
    p = nn.softmax(rng.normal(size=(5, 7)) * 10)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-14)


def _targets(rng, kind, n, k):
    if kind == "labels":
        return rng.integers(0, k, size=n)
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, size=n)]
    t = rng.random((n, k))
    return t / t.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["labels", "onehot", "probs"])
def test_cross_entropy_values(rng, kind):
    z = rng.normal(size=(6, 5)) * 2
    t = _targets(rng, kind, 6, 5)
    assert_matches(nn.cross_entropy, (z, t), ref_cross_entropy(z, t))


def test_cross_entropy_labels_equal_onehot(rng):
    z = rng.normal(size=(6, 5))
    y = rng.integers(0, 5, size=6)
    np.testing.assert_allclose(nn.cross_entropy(z, y), nn.cross_entropy(z, np.eye(5)[y]),
                               rtol=1e-14)


def test_logistic_loss_and_mse_values(rng):
    s = rng.normal(size=10) * 3
    y = np.where(rng.random(10) < 0.5, -1.0, 1.0)
    assert_matches(nn.logistic_loss, (s, y), ref_logistic_loss(s, y))
    p, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    assert_matches(nn.mse, (p, t), ref_mse(p, t))


CONV2D_CASES = [
    # id, x shape, w shape, bias, stride, padding, dilation
    ("multi_channel", (2, 3, 6, 7), (4, 3, 3, 3), False, 1, 0, 1),
    ("bias", (2, 3, 6, 6), (4, 3, 3, 3), True, 1, 0, 1),
    ("stride2", (1, 2, 7, 8), (3, 2, 3, 3), True, 2, 0, 1),
    ("padding1", (1, 2, 5, 5), (3, 2, 3, 3), True, 1, 1, 1),
    ("padding_1_2", (1, 2, 5, 6), (2, 2, 3, 3), True, 1, (1, 2), 1),
    ("dilation2", (1, 2, 8, 7), (2, 2, 3, 3), True, 1, 0, 2),
    ("nonsquare_kernel", (2, 2, 6, 7), (3, 2, 2, 4), True, 1, 0, 1),
    ("all_mixed", (2, 2, 9, 8), (3, 2, 3, 2), True, (2, 1), (1, 2), (2, 1)),
]


@pytest.mark.parametrize("case", CONV2D_CASES, ids=[c[0] for c in CONV2D_CASES])
def test_conv2d_values(rng, case):
    _, xs, ws, bias, stride, padding, dilation = case
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    b = rng.normal(size=ws[0]) if bias else None
    expected = ref_conv2d(x, w, b, stride, padding, dilation)
    np.testing.assert_allclose(fast_ref_conv2d(x, w, b, stride, padding, dilation), expected,
                               rtol=1e-12, atol=1e-12)
    if b is None:
        assert_matches(lambda x, w: nn.conv2d(x, w, stride=stride, padding=padding,
                                              dilation=dilation), (x, w), expected)
    else:
        assert_matches(lambda x, w, b: nn.conv2d(x, w, b, stride=stride, padding=padding,
                                                 dilation=dilation), (x, w, b), expected)


CONV1D_CASES = [
    ("multi_channel", (2, 3, 9), (4, 3, 3), False, 1, 0, 1),
    ("bias", (2, 3, 8), (4, 3, 3), True, 1, 0, 1),
    ("stride2", (1, 2, 11), (3, 2, 3), True, 2, 0, 1),
    ("padding1", (1, 2, 6), (3, 2, 3), True, 1, 1, 1),
    ("padding2", (1, 2, 6), (2, 2, 5), True, 1, 2, 1),
    ("dilation2", (1, 2, 10), (2, 2, 3), True, 1, 0, 2),
    ("all_mixed", (2, 2, 13), (3, 2, 4), True, 2, 1, 2),
]


@pytest.mark.parametrize("case", CONV1D_CASES, ids=[c[0] for c in CONV1D_CASES])
def test_conv1d_values(rng, case):
    _, xs, ws, bias, stride, padding, dilation = case
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    b = rng.normal(size=ws[0]) if bias else None
    expected = ref_conv1d(x, w, b, stride, padding, dilation)
    if b is None:
        assert_matches(lambda x, w: nn.conv1d(x, w, stride=stride, padding=padding,
                                              dilation=dilation), (x, w), expected)
    else:
        assert_matches(lambda x, w, b: nn.conv1d(x, w, b, stride=stride, padding=padding,
                                                 dilation=dilation), (x, w, b), expected)


def test_conv2d_lecture_edge_filter():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0, -1.0]]]])
    np.testing.assert_array_equal(nn.conv2d(x, w)[0, 0], -2.0 * np.ones((4, 2)))


POOL2D_CASES = [
    # id, x shape, kernel, stride, padding
    ("k2", (2, 3, 6, 6), 2, None, 0),
    ("k3_s2", (1, 2, 7, 7), 3, 2, 0),
    ("k3_s2_p1", (1, 2, 7, 6), 3, 2, 1),
    ("k2_s1", (1, 2, 5, 5), 2, 1, 0),
    ("rect_k_2x3_p_1x1", (1, 2, 6, 7), (2, 3), (2, 1), (1, 1)),
    ("k2_rounds_down", (1, 1, 7, 5), 2, None, 0),
    ("k4_s3_p2", (1, 1, 9, 8), 4, 3, 2),
]


@pytest.mark.parametrize("case", POOL2D_CASES, ids=[c[0] for c in POOL2D_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2d_values(rng, case, kind):
    _, xs, k, s, p = case
    x = rng.normal(size=xs)
    fn = {"max": nn.max_pool2d, "avg": nn.avg_pool2d}[kind]
    ref = {"max": ref_max_pool2d, "avg": ref_avg_pool2d}[kind]
    assert_matches(lambda x: fn(x, k, stride=s, padding=p), (x,), ref(x, k, s, p))


def test_pool_padding_conventions():
    # avg: padded zeros count in the divisor; max: padding is -inf (never selected).
    x = -np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(nn.avg_pool2d(x, 2, stride=2, padding=1)[0, 0],
                                  [[-0.25, -0.25], [-0.25, -0.25]])
    np.testing.assert_array_equal(nn.max_pool2d(x, 2, stride=2, padding=1)[0, 0],
                                  [[-1.0, -1.0], [-1.0, -1.0]])


POOL1D_CASES = [("k2", (2, 3, 8), 2, None, 0), ("k3_s2", (1, 2, 9), 3, 2, 0),
                ("k3_s2_p1", (1, 2, 8), 3, 2, 1), ("k2_s1", (1, 2, 5), 2, 1, 0),
                ("k2_rounds_down", (1, 1, 7), 2, None, 0)]


@pytest.mark.parametrize("case", POOL1D_CASES, ids=[c[0] for c in POOL1D_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool1d_values(rng, case, kind):
    _, xs, k, s, p = case
    x = rng.normal(size=xs)
    fn = {"max": nn.max_pool1d, "avg": nn.avg_pool1d}[kind]
    ref = {"max": ref_max_pool1d, "avg": ref_avg_pool1d}[kind]
    assert_matches(lambda x: fn(x, k, stride=s, padding=p), (x,), ref(x, k, s, p))


@pytest.mark.parametrize("p", [2, 3])
@pytest.mark.parametrize("k,s", [(2, None), (3, 2), ((2, 3), (1, 2))])
def test_lp_pool2d_values(rng, p, k, s):
    # Positive inputs: for odd p a window sum of x**p can be negative, and its
    # real p-th root does not exist (NumPy and PyTorch give nan there).
    x = np.abs(rng.normal(size=(2, 2, 6, 7))) + 0.1
    assert_matches(lambda x: nn.lp_pool2d(x, p, k, stride=s), (x,), ref_lp_pool2d(x, p, k, s),
                   rtol=1e-11)


def test_lp_pool2d_p2_is_l2_norm(rng):
    x = rng.normal(size=(1, 1, 4, 4))
    out = nn.lp_pool2d(x, 2, 2)
    np.testing.assert_allclose(out[0, 0, 0, 0], np.linalg.norm(x[0, 0, :2, :2]), rtol=1e-14)


@pytest.mark.parametrize("shape,start", [((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2), ((2, 3, 4), 0),
                                         ((2, 3, 4), -2)])
def test_flatten_values(rng, shape, start):
    x = rng.normal(size=shape)
    assert_matches(lambda x: nn.flatten(x, start), (x,), ref_flatten(x, start % len(shape)))


def test_eager_returns_numpy_not_tracers(rng):
    x = rng.normal(size=(1, 2, 4, 4))
    w = rng.normal(size=(3, 2, 3, 3))
    for out in [nn.relu(x), nn.conv2d(x, w), nn.max_pool2d(x, 2), nn.softmax(x),
                nn.dropout(x, 0.5, np.int64(0))]:
        assert type(out) is np.ndarray and out.dtype == F64
    assert isinstance(nn.cross_entropy(x[:, :, 0, 0], np.array([0])), (np.ndarray, np.floating))


def test_integer_input_is_promoted_to_float():
    np.testing.assert_array_equal(nn.relu(np.array([-1, 2])), [0.0, 2.0])
    assert nn.relu(np.array([-1, 2])).dtype == F64


# =========================================================================================
# 2. Gradients vs central finite differences of the references
# =========================================================================================
@pytest.mark.parametrize("name,fn,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_grads(name, fn, ref, rng):
    x = rng.normal(size=(3, 4)) * 2
    x[np.abs(x) < 1e-3] = 0.5          # keep finite differences away from the kinks
    check_grad_vs_fd(fn, ref, (x,))


@pytest.mark.parametrize("shape,pieces,axis", [((3, 8), 2, -1), ((6, 4), 3, 0), ((2, 6, 3), 2, 1)])
def test_maxout_grads(rng, shape, pieces, axis):
    check_grad_vs_fd(lambda x: nn.maxout(x, pieces, axis=axis),
                     lambda x: ref_maxout(x, pieces, axis), (rng.normal(size=shape),))


@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((4, 5), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("which", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_grads(rng, shape, axis, which):
    fn = getattr(nn, which)
    ref = {"softmax": ref_softmax, "log_softmax": ref_log_softmax,
           "logsumexp": ref_logsumexp}[which]
    check_grad_vs_fd(lambda x: fn(x, axis=axis), lambda x: ref(x, axis),
                     (rng.normal(size=shape) * 2,))


@pytest.mark.parametrize("kind", ["labels", "onehot", "probs"])
def test_cross_entropy_grads(rng, kind):
    z = rng.normal(size=(4, 5)) * 2
    t = _targets(rng, kind, 4, 5)
    check_grad_vs_fd(nn.cross_entropy, ref_cross_entropy, (z, t))
    if kind != "labels":    # differentiable in the (soft) targets too
        check_grad_vs_fd(nn.cross_entropy, ref_cross_entropy, (z, t), wrt=(1,))


def test_cross_entropy_grad_is_softmax_minus_onehot(rng):
    z = rng.normal(size=(4, 5))
    y = np.array([0, 4, 2, 2])
    g = graphc.grad(lambda z: nn.cross_entropy(z, y))(z)
    np.testing.assert_allclose(g, (ref_softmax(z) - np.eye(5)[y]) / 4, rtol=1e-13, atol=1e-15)


def test_logistic_and_mse_grads(rng):
    s = rng.normal(size=7) * 2
    y = np.where(rng.random(7) < 0.5, -1.0, 1.0)
    check_grad_vs_fd(nn.logistic_loss, ref_logistic_loss, (s, y))
    p, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    check_grad_vs_fd(nn.mse, ref_mse, (p, t), wrt=(0, 1))


@pytest.mark.parametrize("case", CONV2D_CASES, ids=[c[0] for c in CONV2D_CASES])
def test_conv2d_grads(rng, case):
    _, xs, ws, bias, stride, padding, dilation = case
    xs = (1,) + xs[1:]                           # one image is enough for the gradient
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    if bias:
        b = rng.normal(size=ws[0])
        check_grad_vs_fd(lambda x, w, b: nn.conv2d(x, w, b, **kw),
                         lambda x, w, b: fast_ref_conv2d(x, w, b, **kw), (x, w, b), wrt=(0, 1, 2))
    else:
        check_grad_vs_fd(lambda x, w: nn.conv2d(x, w, **kw),
                         lambda x, w: fast_ref_conv2d(x, w, **kw), (x, w), wrt=(0, 1))


@pytest.mark.parametrize("case", CONV1D_CASES, ids=[c[0] for c in CONV1D_CASES])
def test_conv1d_grads(rng, case):
    _, xs, ws, bias, stride, padding, dilation = case
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    b = rng.normal(size=ws[0])
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    check_grad_vs_fd(lambda x, w, b: nn.conv1d(x, w, b, **kw),
                     lambda x, w, b: ref_conv1d(x, w, b, **kw), (x, w, b), wrt=(0, 1, 2))


@pytest.mark.parametrize("case", POOL2D_CASES, ids=[c[0] for c in POOL2D_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2d_grads(rng, case, kind):
    _, xs, k, s, p = case
    x = rng.normal(size=(1,) + xs[1:])
    fn = {"max": nn.max_pool2d, "avg": nn.avg_pool2d}[kind]
    ref = {"max": ref_max_pool2d, "avg": ref_avg_pool2d}[kind]
    check_grad_vs_fd(lambda x: fn(x, k, stride=s, padding=p), lambda x: ref(x, k, s, p), (x,))


@pytest.mark.parametrize("case", POOL1D_CASES, ids=[c[0] for c in POOL1D_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool1d_grads(rng, case, kind):
    _, xs, k, s, p = case
    x = rng.normal(size=xs)
    fn = {"max": nn.max_pool1d, "avg": nn.avg_pool1d}[kind]
    ref = {"max": ref_max_pool1d, "avg": ref_avg_pool1d}[kind]
    check_grad_vs_fd(lambda x: fn(x, k, stride=s, padding=p), lambda x: ref(x, k, s, p), (x,))


@pytest.mark.parametrize("p", [2, 3])
@pytest.mark.parametrize("k,s", [(2, None), (3, 2)])
def test_lp_pool2d_grads(rng, p, k, s):
    x = np.abs(rng.normal(size=(1, 2, 6, 7))) + 0.1
    check_grad_vs_fd(lambda x: nn.lp_pool2d(x, p, k, stride=s),
                     lambda x: ref_lp_pool2d(x, p, k, s), (x,))


def test_flatten_grad(rng):
    check_grad_vs_fd(nn.flatten, ref_flatten, (rng.normal(size=(2, 3, 2, 2)),))


@pytest.mark.parametrize("window,first", [
    ([[1.0, 3.0], [3.0, 0.0]], (0, 1)),          # tie across rows: the top-right wins
    ([[2.0, 2.0], [2.0, 2.0]], (0, 0)),          # all equal: the first
    ([[0.0, -1.0], [5.0, 5.0]], (1, 0)),         # tie in the second row
])
@pytest.mark.parametrize("mode", ["eager_grad", "value_and_grad"])
def test_max_pool2d_tie_goes_to_first(window, first, mode):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, :2, :2] = window                     # the tie sits in the top-left window
    x[0, 0, 2:, 2:] = [[4.0, 4.0], [-1.0, 4.0]]
    r = np.array([[[[3.0, 1.0], [1.0, 7.0]]]])

    def loss(x):
        return np.sum(nn.max_pool2d(x, 2) * r)
    g = graphc.grad(loss)(x) if mode == "eager_grad" else graphc.value_and_grad(loss)(x)[1]
    expected_top_left = np.zeros((2, 2))
    expected_top_left[first] = 3.0
    np.testing.assert_array_equal(g[0, 0, :2, :2], expected_top_left)
    np.testing.assert_array_equal(g[0, 0, 2:, 2:], [[7.0, 0.0], [0.0, 0.0]])
    assert g.sum() == r.sum()                   # nothing is split or duplicated


def test_max_pool_non_overlapping_windows_use_strided_slices():
    # stride = kernel, no padding: the max_pool primitive (no window copies, no argmax);
    # overlapping or padded windows keep the im2col + argmax route.
    fast = graphc.trace(lambda x: nn.max_pool2d(x, 2), np.zeros((1, 2, 5, 6)))
    ops = {d["op"] for _, d in fast.nx.nodes(data=True)}
    assert "max_pool" in ops and not ops & {"im2col", "argmax"}
    vg = graphc.value_and_grad(lambda x: np.sum(nn.max_pool2d(x, 2)))
    src = vg.source(np.zeros((1, 2, 5, 6)))
    assert "argmax" not in src and "sliding_window_view" not in src
    for stride, padding in [(1, 0), (2, 1)]:
        slow = graphc.trace(lambda x: nn.max_pool2d(x, 2, stride, padding), np.zeros((1, 2, 5, 6)))
        assert "im2col" in {d["op"] for _, d in slow.nx.nodes(data=True)}


def test_max_pool_second_derivative_follows_the_first_maximum():
    # f = sum(r * pool(x)**2): the Hessian is diagonal, 2·r at each window's first maximum
    # (the tie in the top-left window goes to its first element) and 0 elsewhere.
    x = np.array([[[[2.0, 2.0, 0.0, 1.0],
                    [1.0, 0.0, 3.0, -1.0],
                    [0.5, 0.0, 4.0, 4.0],
                    [0.0, 0.25, 4.0, 0.0]]]])
    r = np.array([[[[1.0, 2.0], [3.0, 5.0]]]])
    v = np.arange(1.0, 17.0).reshape(x.shape)

    def f(x):
        return np.sum(r * nn.max_pool2d(x, 2) ** 2)

    def gv(x):
        return np.sum(graphc.grad(f)(x) * v)
    hv = graphc.grad(gv)(x)
    expected = np.zeros_like(x)
    for (i, j), rr in zip([(0, 0), (1, 2), (2, 0), (2, 2)], r.ravel()):
        expected[0, 0, i, j] = 2 * rr * v[0, 0, i, j]
    np.testing.assert_array_equal(hv, expected)
    np.testing.assert_array_equal(graphc.value_and_grad(gv)(x)[1], expected)


@pytest.mark.parametrize("case", CONV2D_CASES, ids=[c[0] for c in CONV2D_CASES])
def test_conv2d_both_layouts_values_and_grads(rng, monkeypatch, case):
    # conv2d picks its GEMM layout from the feature-map size; force each one on every
    # case (batch of 2, so the batch-last layout really interleaves samples): values match
    # the reference, gradients match each other, and the batch-last ones finite differences.
    import graphc.nn.conv as conv_mod
    _, xs, ws, bias, s, p, d = case
    x, w, b = rng.normal(size=(2,) + xs[1:]), rng.normal(size=ws), rng.normal(size=ws[0])
    kw = dict(stride=s, padding=p, dilation=d)
    R = rng.normal(size=ref_conv2d(x, w, b, **kw).shape)

    def conv(x, w, b):
        return nn.conv2d(x, w, b if bias else None, **kw)
    grads = {}
    for layout, threshold in [("batch_last", 10 ** 9), ("per_sample", 0)]:
        monkeypatch.setattr(conv_mod, "_PER_SAMPLE_MIN", threshold)
        ops = {nd["op"] for _, nd in graphc.trace(conv, x, w, b).nx.nodes(data=True)}
        assert ("contiguous" in ops) == (layout == "batch_last")    # that layout ran
        assert_matches(conv, (x, w, b), ref_conv2d(x, w, b if bias else None, **kw))
        grads[layout] = graphc.grad(lambda x, w, b: np.sum(conv(x, w, b) * R),
                                    argnums=(0, 1, 2))(x, w, b)
    for g1, g2 in zip(grads["batch_last"], grads["per_sample"]):
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(conv_mod, "_PER_SAMPLE_MIN", 10 ** 9)
    check_grad_vs_fd(conv, lambda x, w, b: ref_conv2d(x, w, b if bias else None, **kw),
                     (x, w, b), wrt=(0, 1, 2) if bias else (0, 1))


@pytest.mark.parametrize("name", ["max_pool", "max_pool_mask", "unpool", "pool_select",
                                  "im2col", "col2im"])
def test_pool_and_window_primitives_sympy_semantics_match_numpy(name):
    # The SymPy semantics (used by proofs and graphc.check) compute what the generated
    # NumPy computes, on every sample case (trailing axes and ties included).
    import sympy as sp
    from graphc.primitive import REGISTRY
    from graphc.symbolic import to_sympy
    from test_primitives import CASES
    prim = REGISTRY[name]
    for case in CASES[name]:
        if case.params.get("pad_value") == -np.inf:
            continue                            # -oo vs -inf: compared elsewhere
        want = np.asarray(prim(*case.args, **case.params))
        got = np.asarray(prim.sympy(*[to_sympy(np.asarray(a)) if np.asarray(a).dtype.kind == "f"
                                      else np.asarray(a) for a in case.args], **case.params),
                         dtype=object)
        assert got.shape == want.shape, (name, case.desc)
        if want.dtype == bool:
            got = np.vectorize(lambda v: bool(sp.simplify(v)) if isinstance(v, sp.Basic)
                               else bool(v))(got)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {case.desc}")
        else:
            np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-6, atol=1e-12,
                                       err_msg=f"{name} {case.desc}")


def test_conv2d_gradients_in_float32_match_float64(rng):
    # The per-sample GEMM layout (batched matmul, weight gradient summed over the batch)
    # keeps float32 gradients within float32 rounding of a float64 run.
    x = rng.normal(size=(4, 3, 9, 8))
    w = rng.normal(size=(5, 3, 3, 2))
    b = rng.normal(size=5)

    def loss(x, w, b):
        return np.sum(nn.conv2d(x, w, b, stride=(2, 1), padding=1) ** 2)
    g64 = graphc.grad(loss, argnums=(0, 1, 2))(x, w, b)
    g32 = graphc.grad(loss, argnums=(0, 1, 2))(*(a.astype(np.float32) for a in (x, w, b)))
    for a, e in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * np.abs(e).max())


def test_max_pool_overlapping_windows_tie():
    # Overlapping windows (stride 1): each window sends its whole gradient to its
    # own first maximum; the contributions accumulate.
    x = np.array([[[[5.0, 5.0, 5.0]]]])
    g = graphc.grad(lambda x: np.sum(nn.max_pool2d(x, (1, 2), stride=1)))(x)
    np.testing.assert_array_equal(g, [[[[1.0, 1.0, 0.0]]]])
    g1 = graphc.grad(lambda x: np.sum(nn.max_pool1d(x, 2, stride=1)))(x[:, :, 0, :])
    np.testing.assert_array_equal(g1, [[[1.0, 1.0, 0.0]]])


def test_kink_conventions():
    x = np.array([0.0, -0.0, 1.0, -1.0])
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(nn.relu(x)))(x), [0, 0, 1, 0])
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(nn.leaky_relu(x)))(x),
                                  [0.01, 0.01, 1, 0.01])
    np.testing.assert_array_equal(
        graphc.grad(lambda x: np.sum(nn.leaky_relu(x, negative_slope=0.3)))(x), [0.3, 0.3, 1, 0.3])
    # elu: the left derivative, alpha, at 0 (so for alpha = 1 it is the true derivative, 1)
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(nn.elu(x)))(x),
                                  [1.0, 1.0, 1.0, np.exp(-1)])
    np.testing.assert_allclose(graphc.grad(lambda x: np.sum(nn.elu(x, alpha=0.5)))(x),
                               [0.5, 0.5, 1, 0.5 * np.exp(-1)], rtol=1e-15)


# =========================================================================================
# 3. Numerical stability
# =========================================================================================
BIG = np.array([[-1e4, 0.0, 1e4, 1e4 - 1.0], [1e4, 1e4, -1e4, 3.0], [-1e4, -1e4 + 2.0, -1e4, -1e4]])


def _finite_grad(fn, x, rng):
    R = rng.normal(size=np.shape(fn(x)))
    g = graphc.grad(lambda x: np.sum(fn(x) * R))(x)
    assert np.all(np.isfinite(g))
    return g, R


@pytest.mark.parametrize("which", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_huge_logits(rng, which):
    fn = getattr(nn, which)
    ref = {"softmax": ref_softmax, "log_softmax": ref_log_softmax,
           "logsumexp": ref_logsumexp}[which]
    expected = ref(BIG, -1)
    assert np.all(np.isfinite(expected))
    assert_matches(fn, (BIG,), expected, rtol=1e-15, atol=1e-15)
    g, R = _finite_grad(fn, BIG, rng)
    # Exact gradients, from softmax probabilities p (computed in shifted form).
    p = ref_softmax(BIG)
    if which == "logsumexp":
        expected_g = p * R[:, None]
    elif which == "log_softmax":
        expected_g = R - p * R.sum(axis=1, keepdims=True)
    else:
        expected_g = p * (R - np.sum(p * R, axis=1, keepdims=True))
    np.testing.assert_allclose(g, expected_g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_cross_entropy_huge_logits(kind):
    y = np.array([1, 2, 0]) if kind == "labels" else np.eye(4)[[1, 2, 0]]
    loss = nn.cross_entropy(BIG, y)
    expected = ref_cross_entropy(BIG, y)
    assert np.isfinite(loss) and np.isfinite(expected)
    np.testing.assert_allclose(loss, expected, rtol=1e-14)
    assert expected > 1e3                     # the wrong classes are far below: a huge, finite loss
    v, g = graphc.value_and_grad(nn.cross_entropy)(BIG, y)
    np.testing.assert_allclose(v, expected, rtol=1e-14)
    np.testing.assert_allclose(g, (ref_softmax(BIG) - np.eye(4)[[1, 2, 0]]) / 3, atol=1e-15)


def test_logistic_loss_huge_scores():
    s = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    y = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    expected = (0 + 0 + 1e4 + 1e4 + np.log(2)) / 5
    np.testing.assert_allclose(nn.logistic_loss(s, y), expected, rtol=1e-15)
    v, g = graphc.value_and_grad(nn.logistic_loss)(s, y)
    np.testing.assert_allclose(v, expected, rtol=1e-15)
    # d/ds softplus(-y s) / n = -y * sigmoid(-y s) / n
    np.testing.assert_allclose(g, -y * ref_sigmoid(-y * s) / 5, atol=1e-300)


@pytest.mark.parametrize("which", ["sigmoid", "softplus"])
def test_sigmoid_softplus_huge_inputs(which):
    x = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4])
    fn, ref = getattr(nn, which), {"sigmoid": ref_sigmoid, "softplus": ref_softplus}[which]
    assert_matches(fn, (x,), ref(x), rtol=1e-15, atol=0)
    g = graphc.grad(lambda x: np.sum(fn(x)))(x)
    assert np.all(np.isfinite(g))
    s = ref_sigmoid(x)
    expected = s if which == "softplus" else s * ref_sigmoid(-x)
    # sigmoid's tails are exact in relative terms (sigmoid(-40) = 4.2e-18, not 0)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-300 if which == "softplus" else 1e-16)


def test_elu_huge_inputs():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    assert_matches(nn.elu, (x,), ref_elu(x), rtol=1e-15, atol=0)
    g = graphc.grad(lambda x: np.sum(nn.elu(x)))(x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 1.0])    # no 0 * inf from exp(1e4)


def test_lp_pool2d_zero_window_has_zero_gradient():
    # An all-zero window (e.g. after a ReLU) is a kink of the norm: the value is 0
    # and its gradient 0 (as PyTorch), never nan that would poison every parameter.
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0], x[0, 0, 1, 1] = 1.0, 2.0
    for p in (2, 3):
        np.testing.assert_allclose(nn.lp_pool2d(x, p, 2)[0, 0], [[(1 + 2 ** p) ** (1 / p), 0],
                                                               [0, 0]], rtol=1e-15)
        g = graphc.grad(lambda x: np.sum(nn.lp_pool2d(x, p, 2)))(x)
        assert np.all(np.isfinite(g))
        s = (1 + 2 ** p) ** (1 / p)
        expected = np.zeros((4, 4))
        expected[0, 0], expected[1, 1] = (1 / s) ** (p - 1), (2 / s) ** (p - 1)
        np.testing.assert_allclose(g[0, 0], expected, rtol=1e-14, atol=0)


F32_X = np.array([[80.0, 85.0, 89.0, -88.0], [-90.0, 88.5, 88.7, 0.0]], np.float32)


@pytest.mark.parametrize("which", ["softmax", "log_softmax", "logsumexp", "sigmoid", "softplus"])
def test_float32_near_exp_overflow(rng, which):
    fn = getattr(nn, which)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float32(89.0)))        # the territory: exp overflows in f32
    ref = {"softmax": ref_softmax, "log_softmax": ref_log_softmax, "logsumexp": ref_logsumexp,
           "sigmoid": ref_sigmoid, "softplus": ref_softplus}[which]
    expected = ref(F32_X.astype(F64))
    eager, compiled = eager_and_compiled(fn, F32_X)
    for out in (eager, compiled):
        assert out.dtype == np.float32
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-30)
    R = rng.normal(size=expected.shape).astype(np.float32)
    g = graphc.grad(lambda x: np.sum(fn(x) * R))(F32_X)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))
    g64 = graphc.grad(lambda x: np.sum(fn(x) * R.astype(F64)))(F32_X.astype(F64))
    np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-6)


def test_float32_cross_entropy_near_overflow():
    z = F32_X
    y = np.array([3, 1])
    v, g = graphc.value_and_grad(nn.cross_entropy)(z, y)
    assert v.dtype == np.float32 and g.dtype == np.float32
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, ref_cross_entropy(z.astype(F64), y), rtol=1e-6)
    np.testing.assert_allclose(g, (ref_softmax(z.astype(F64)) - np.eye(4)[y]) / 2, atol=1e-6)
    s = np.array([89.0, -89.0, 85.0, -85.0], np.float32)
    t = np.array([-1.0, 1.0, 1.0, -1.0], np.float32)
    v, g = graphc.value_and_grad(nn.logistic_loss)(s, t)
    assert v.dtype == np.float32 and g.dtype == np.float32 and np.isfinite(v)
    np.testing.assert_allclose(v, ref_logistic_loss(s.astype(F64), t.astype(F64)), rtol=1e-6)
    np.testing.assert_allclose(g, -t * ref_sigmoid(-t * s.astype(F64)) / 4, rtol=1e-6, atol=1e-30)


def _backward_part(source):
    """The generated function's lines after its first ``# grad of:`` comment
    (the entry-check helpers that follow the function are not part of it)."""
    i = source.index("# grad of:")
    end = source.find("\n_SIGNATURE = ", i)
    return source[i:] if end < 0 else source[i:end]


def test_cross_entropy_backward_is_softmax_minus_onehot_in_source(rng):
    z = rng.normal(size=(5, 4))
    y = np.array([0, 1, 2, 3, 0])
    src = graphc.grad(lambda z: nn.cross_entropy(z, y)).source(z)
    back = _backward_part(src)
    d_z_lines = [ln for ln in back.splitlines() if re.match(r"\s*d_z\s*=", ln)]
    assert len(d_z_lines) == 1, src
    assert "np.exp(logp)" in d_z_lines[0], src
    assert "np.where" not in back and ".max(" not in back, src
    assert "np.log" not in back, src
    # short: softmax - onehot needs a scatter of -1/N and one fused line
    assert len([ln for ln in back.splitlines() if ln.strip() and not ln.strip().startswith("#")]) <= 5, src


def test_log_softmax_source_has_no_max_in_backward(rng):
    z = rng.normal(size=(3, 4))
    src = graphc.grad(lambda z: np.sum(nn.log_softmax(z) * z)).source(z)
    assert ".max(" not in _backward_part(src) and "np.where" not in _backward_part(src)


# =========================================================================================
# 4. Dropout
# =========================================================================================
def test_dropout_deterministic_in_key_shape_rate():
    x = np.ones((50, 40))
    a = nn.dropout(x, 0.3, np.int64(7))
    b = nn.dropout(x, 0.3, np.int64(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.dropout(x, 0.3, np.int64(8)))
    assert not np.array_equal(a != 0, nn.dropout(x, 0.6, np.int64(7)) != 0)
    # Same key, same mask in eager and compiled code, and for a Python int key.
    np.testing.assert_array_equal(graphc.compile(lambda x, k: nn.dropout(x, 0.3, k))(x, np.int64(7)), a)
    np.testing.assert_array_equal(nn.dropout(x, 0.3, 7), a)
    np.testing.assert_array_equal(graphc.compile(lambda x: nn.dropout(x, 0.3, 7))(x), a)
    # Values: 0 or 1/(1-rate)
    assert set(np.unique(a)) <= {0.0, 1 / 0.7}


def test_dropout_negative_key():
    # Any int64 key is a seed (NumPy's own seeds must be non-negative).
    x = np.ones((10, 10))
    a = nn.dropout(x, 0.5, np.int64(-1))
    np.testing.assert_array_equal(a, nn.dropout(x, 0.5, np.int64(-1)))
    np.testing.assert_array_equal(a, nn.dropout(x, 0.5, -1))
    np.testing.assert_array_equal(a, graphc.compile(lambda x, k: nn.dropout(x, 0.5, k))(x, np.int64(-1)))
    assert not np.array_equal(a, nn.dropout(x, 0.5, np.int64(1)))


def test_dropout_traced_key_does_not_retrace():
    calls = []

    def f(x, key):
        calls.append(1)
        return nn.dropout(x, 0.5, key)

    cf = graphc.compile(f)
    x = np.ones((20, 30))
    masks = [cf(x, np.int64(k)) != 0 for k in range(4)]
    assert len(calls) == 1
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(masks[i], masks[j])
    for k in range(4):
        np.testing.assert_array_equal(masks[k], nn.dropout(x, 0.5, np.int64(k)) != 0)


def test_dropout_python_int_key_is_static():
    calls = []

    def f(x, key):
        calls.append(1)
        return nn.dropout(x, 0.5, key)

    cf = graphc.compile(f)
    x = np.ones((20, 30))
    m0, m0b, m1 = cf(x, 0) != 0, cf(x, 0) != 0, cf(x, 1) != 0
    assert len(calls) == 2                    # one trace per distinct static key
    np.testing.assert_array_equal(m0, m0b)
    assert not np.array_equal(m0, m1)
    np.testing.assert_array_equal(m0, nn.dropout(x, 0.5, np.int64(0)) != 0)


def test_dropout_training_false_is_identity(rng):
    x = rng.normal(size=(4, 5))
    assert nn.dropout(x, 0.5, np.int64(0), training=False) is x
    np.testing.assert_array_equal(
        graphc.compile(lambda x, k: nn.dropout(x, 0.5, k, training=False))(x, np.int64(3)), x)
    g = graphc.grad(lambda x: np.sum(nn.dropout(x, 0.5, np.int64(3), training=False) * x))(x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-15)


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.9])
def test_dropout_gradient_is_mask_over_keep(rng, rate):
    x = rng.normal(size=(6, 7))
    R = rng.normal(size=(6, 7))
    key = np.int64(11)
    out = nn.dropout(x, rate, key)
    mask = out != 0
    np.testing.assert_allclose(out, np.where(mask, x / (1 - rate), 0.0), rtol=1e-15)
    g = graphc.grad(lambda x, k: np.sum(nn.dropout(x, rate, k) * R))(x, key)
    np.testing.assert_allclose(g, R * mask / (1 - rate), rtol=1e-15)
    v, g2 = graphc.value_and_grad(lambda x, k: np.sum(nn.dropout(x, rate, k) * R))(x, key)
    np.testing.assert_allclose(g2, g, rtol=1e-15)
    np.testing.assert_allclose(v, np.sum(out * R), rtol=1e-13)


def test_dropout_mask_drawn_once_in_value_and_grad():
    def loss(x, key):
        h = nn.dropout(x, 0.5, key)
        return np.sum(h * h)

    x = np.ones((8, 9))
    src = graphc.value_and_grad(loss).source(x, np.int64(0))
    assert src.count("default_rng") == 1, src
    src_g = graphc.grad(loss).source(x, np.int64(0))
    assert src_g.count("default_rng") == 1, src_g


def test_dropout_inverted_scaling_mean_is_one():
    x = np.ones((400, 500))
    for rate in (0.1, 0.5, 0.8):
        out = nn.dropout(x, rate, np.int64(123))
        kept = np.mean(out != 0)
        assert abs(kept - (1 - rate)) < 0.01
        assert abs(out.mean() - 1.0) < 0.02


def test_dropout_rate_zero_and_invalid_rate():
    x = np.ones(4)
    np.testing.assert_array_equal(nn.dropout(x, 0.0, np.int64(1)), x)
    with pytest.raises(graphc.GraphcError):
        nn.dropout(x, 1.0, np.int64(1))


# =========================================================================================
# 5. Model-level gradients vs finite differences (float64, relative error < 1e-7)
# =========================================================================================
MODEL_RTOL = 1e-7
FD_STEP = 1e-3
MIN_GRAD = 1e-4


def rel_errors(g, fd):
    return np.abs(g - fd) / np.maximum(np.maximum(np.abs(g), np.abs(fd)), 1e-8)


def richardson_fd(f, x, idx, h):
    """Derivative of ``f`` along coordinate ``idx`` of ``x`` (modified in place, restored).

    ``f()`` returns ``(value, pattern)``: the pattern (ReLU signs, max-pool
    choices) must not change within the steps, or the difference straddles a kink
    and says nothing about the derivative; then this returns None.  Central
    differences (second-order) with steps h and h/2, combined by Richardson
    extrapolation: error O(h^4) from truncation plus ~3 * (rounding of f) / h.
    """
    old = x[idx]
    _, base = f()

    def central(step):
        x[idx] = old + step
        fp, pat_p = f()
        x[idx] = old - step
        fm, pat_m = f()
        x[idx] = old
        same = all(np.array_equal(a, b) and np.array_equal(a, c)
                   for a, b, c in zip(base, pat_p, pat_m))
        return (fp - fm) / (2 * step), same
    d1, ok1 = central(h)
    d2, ok2 = central(h / 2)
    return (4 * d2 - d1) / 3 if ok1 and ok2 else None


def check_model_grads(loss_ref, params, grads, rng, n_coords=30):
    """FD-check a random subset of coordinates of every parameter leaf; return the max error.

    A float64 loss of size ~5 is computed with a rounding error of ~3e-15, so a
    Richardson-extrapolated central difference at step 1e-3 is good to a few
    1e-12 in absolute terms: coordinates with |gradient| >= 1e-4 are the
    well-conditioned ones for a 1e-7 relative bound, and the random subset is
    drawn from them (most coordinates are).  Where a step of 1e-3 crosses a
    kink, steps of 1e-4 and 1e-5 are tried, for coordinates with a gradient
    10 and 100 times larger.  Exact zeros (dropped or dead units) must come
    out as an exactly zero difference.
    """
    worst, skipped = 0.0, 0
    for name, p in params.items():
        g = grads[name]
        assert g.shape == p.shape and g.dtype == F64, name
        flat_g = np.abs(g).ravel()
        good = rng.permutation(np.flatnonzero(flat_g >= MIN_GRAD))
        assert good.size >= min(n_coords, p.size) // 2, (name, good.size)
        zeros = np.flatnonzero(flat_g == 0)[:3]
        checked = 0
        for k in good:
            if checked == n_coords:
                break
            idx = np.unravel_index(k, p.shape)
            for h in (FD_STEP, FD_STEP / 10, FD_STEP / 100):
                if abs(g[idx]) < MIN_GRAD * FD_STEP / h:
                    fd = None
                    break
                fd = richardson_fd(loss_ref, p, idx, h)
                if fd is not None:
                    break
            if fd is None:               # every step crossed a ReLU / max-pool kink
                skipped += 1
                continue
            checked += 1
            err = float(rel_errors(g[idx], fd))
            worst = max(worst, err)
            assert err < MODEL_RTOL, f"{name}{idx}: grad {g[idx]!r} vs fd {fd!r} (rel {err:.2e})"
        for k in zeros:
            idx = np.unravel_index(k, p.shape)
            fd = richardson_fd(loss_ref, p, idx, FD_STEP)
            assert fd is None or fd == 0.0, (name, idx, fd)
    assert skipped <= 5, f"{skipped} coordinates straddled a kink"
    return worst, skipped


def _mm(a, b):
    """Matrix product without BLAS: single-threaded C loops, so the thousands of small
    products of the finite differences stay fast on a busy machine (a multi-threaded
    BLAS call can wait ~10 ms for its threads when the cores are oversubscribed)."""
    return np.einsum("nk,kj->nj", a, b)


def _dense(rng, fan_in, fan_out):
    return nn.init.he_normal(rng, (fan_in, fan_out)), rng.normal(size=fan_out) * 0.1


def test_mlp_784_256_128_10_grads_vs_fd():
    rng = np.random.default_rng(42)
    w1, b1 = _dense(rng, 784, 256)
    w2, b2 = _dense(rng, 256, 128)
    w3, b3 = _dense(rng, 128, 10)
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": b3}
    x = rng.normal(size=(3, 784))
    y = np.array([3, 7, 0])
    key = np.int64(5)
    rate = 0.3

    def loss(p, x, y, key):
        h = nn.dropout(nn.relu(x @ p["w1"] + p["b1"]), rate, key)
        h = nn.dropout(nn.relu(h @ p["w2"] + p["b2"]), rate, key + 1)
        return nn.cross_entropy(h @ p["w3"] + p["b3"], y)

    value, grads = graphc.value_and_grad(loss)(params, x, y, key)
    # The reference takes the masks as data (graphc's mask for this key, shape and rate).
    m1 = nn.dropout(np.ones((3, 256)), rate, key) != 0
    m2 = nn.dropout(np.ones((3, 128)), rate, key + 1) != 0
    assert 0.5 < m1.mean() < 0.9 and 0.5 < m2.mean() < 0.9
    p = params

    def loss_ref():
        a1 = _mm(x, p["w1"]) + p["b1"]
        h = np.maximum(a1, 0) * m1 / (1 - rate)
        a2 = _mm(h, p["w2"]) + p["b2"]
        h = np.maximum(a2, 0) * m2 / (1 - rate)
        return ref_cross_entropy(_mm(h, p["w3"]) + p["b3"], y), (a1 > 0, a2 > 0)

    np.testing.assert_allclose(value, loss_ref()[0], rtol=1e-13)
    np.testing.assert_allclose(value, loss(params, x, y, key), rtol=1e-13)   # eager
    worst, skipped = check_model_grads(loss_ref, params, grads, rng)
    print(f"\nMLP 784-256-128-10: max relative error {worst:.2e} ({skipped} kink skips)")


def _lenet_params(rng):
    d1, e1 = _dense(rng, 16 * 4 * 4, 120)
    d2, e2 = _dense(rng, 120, 84)
    d3, e3 = _dense(rng, 84, 10)
    return {"c1": nn.init.he_normal(rng, (6, 1, 5, 5)), "cb1": rng.normal(size=6) * 0.1,
            "c2": nn.init.he_normal(rng, (16, 6, 5, 5)), "cb2": rng.normal(size=16) * 0.1,
            "d1": d1, "e1": e1, "d2": d2, "e2": e2, "d3": d3, "e3": e3}


def lenet(p, x, y):
    h = nn.max_pool2d(nn.relu(nn.conv2d(x, p["c1"], p["cb1"])), 2)
    h = nn.max_pool2d(nn.relu(nn.conv2d(h, p["c2"], p["cb2"])), 2)
    h = nn.flatten(h)
    h = nn.relu(h @ p["d1"] + p["e1"])
    h = nn.relu(h @ p["d2"] + p["e2"])
    return nn.cross_entropy(h @ p["d3"] + p["e3"], y)


def _ref_max_pool2_with_choice(x):
    """2x2 max pooling (stride 2) and, per window, which element was chosen."""
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)
    return win.max(axis=-1), win.argmax(axis=-1)


def lenet_ref(p, x, y):
    """The same network in plain NumPy; also returns its kink pattern.

    The pattern holds what decides which piece of the piecewise-smooth loss we
    are on: per pooling window the chosen element and whether it is positive
    (a unit that crosses 0 but is not chosen in its window changes nothing),
    and the signs of the dense layers' pre-activations.
    """
    a1 = fast_ref_conv2d(x, p["c1"], p["cb1"])
    h1, ch1 = _ref_max_pool2_with_choice(np.maximum(a1, 0))
    a2 = fast_ref_conv2d(h1, p["c2"], p["cb2"])
    h2, ch2 = _ref_max_pool2_with_choice(np.maximum(a2, 0))
    h = h2.reshape(h2.shape[0], -1)
    a3 = _mm(h, p["d1"]) + p["e1"]
    a4 = _mm(np.maximum(a3, 0), p["d2"]) + p["e2"]
    z = _mm(np.maximum(a4, 0), p["d3"]) + p["e3"]
    return ref_cross_entropy(z, y), (ch1, h1 > 0, ch2, h2 > 0, a3 > 0, a4 > 0)


def test_lenet_grads_vs_fd():
    rng = np.random.default_rng(7)
    params = _lenet_params(rng)
    x = rng.normal(size=(2, 1, 28, 28))
    y = np.array([4, 9])
    value, grads = graphc.value_and_grad(lenet)(params, x, y)

    small = rng.normal(size=(1, 2, 6, 6))
    np.testing.assert_array_equal(_ref_max_pool2_with_choice(small)[0], ref_max_pool2d(small, 2))
    np.testing.assert_allclose(value, lenet_ref(params, x, y)[0], rtol=1e-13)
    np.testing.assert_allclose(value, lenet(params, x, y), rtol=1e-13)          # eager
    worst, skipped = check_model_grads(lambda: lenet_ref(params, x, y), params, grads, rng,
                                       n_coords=20)
    print(f"\nLeNet: max relative error {worst:.2e} ({skipped} kink skips)")


def test_tiny_cnn_hessian_vector_product_vs_fd():
    rng = np.random.default_rng(3)
    params = {"w": rng.normal(size=(3, 2, 3, 3)) * 0.5, "b": rng.normal(size=3) * 0.1,
              "v": rng.normal(size=(3 * 3 * 3, 4)) * 0.3, "c": rng.normal(size=4) * 0.1}
    x = rng.normal(size=(2, 2, 6, 6))
    y = np.array([1, 3])

    def loss(p, x, y):
        h = np.tanh(nn.conv2d(x, p["w"], p["b"], padding=1))
        h = nn.avg_pool2d(h, 2)
        return nn.cross_entropy(nn.flatten(h) @ p["v"] + p["c"], y)

    direction = {k: rng.normal(size=v.shape) for k, v in params.items()}

    def gdotv(p, x, y, d):
        g = graphc.grad(loss)(p, x, y)
        return sum(np.sum(g[k] * d[k]) for k in ("w", "b", "v", "c"))

    hvp = graphc.grad(gdotv)(params, x, y, direction)
    grad_fn = graphc.grad(loss)

    def shifted_grad(t):
        return grad_fn({k: params[k] + t * direction[k] for k in params}, x, y)

    h = 1e-3
    gp, gm, gp2, gm2 = shifted_grad(h), shifted_grad(-h), shifted_grad(h / 2), shifted_grad(-h / 2)
    worst = 0.0
    for k in params:
        d1 = (gp[k] - gm[k]) / (2 * h)
        d2 = (gp2[k] - gm2[k]) / h
        fd = (4 * d2 - d1) / 3
        assert hvp[k].shape == params[k].shape and hvp[k].dtype == F64
        # Relative to the largest entry of the block: small entries are pure rounding.
        err = float(np.abs(hvp[k] - fd).max() / np.abs(fd).max())
        worst = max(worst, err)
        assert err < 1e-7, (k, err)
    print(f"\nHessian-vector product: max relative error {worst:.2e}")
    # Hessian symmetry: u.H.v == v.H.u
    u = {k: rng.normal(size=v.shape) for k, v in params.items()}
    hvp_u = graphc.grad(gdotv)(params, x, y, u)
    uHv = sum(np.sum(u[k] * hvp[k]) for k in params)
    vHu = sum(np.sum(direction[k] * hvp_u[k]) for k in params)
    np.testing.assert_allclose(uHv, vHu, rtol=1e-10)


# =========================================================================================
# 6. graphc.nn.init
# =========================================================================================
INIT_SHAPES = [((300, 200), 300, 200), ((64, 32, 5, 3), 32 * 15, 64 * 15), ((4, 6, 7), 6 * 7, 4 * 7)]


@pytest.mark.parametrize("shape,fan_in,fan_out", INIT_SHAPES)
def test_init_fans(shape, fan_in, fan_out):
    assert nn.init.fans(shape) == (fan_in, fan_out)


@pytest.mark.parametrize("shape,fan_in,fan_out", INIT_SHAPES[:2])
def test_init_uniform_bounds(shape, fan_in, fan_out):
    rng = np.random.default_rng(0)
    for fn, a in [(nn.init.glorot_uniform, np.sqrt(6 / (fan_in + fan_out))),
                  (nn.init.he_uniform, np.sqrt(6 / fan_in))]:
        w = fn(rng, shape)
        assert w.shape == shape and w.dtype == F64
        assert np.abs(w).max() <= a
        assert np.abs(w).max() > 0.98 * a           # the whole interval is used
        assert abs(w.mean()) < 0.02 * a
        np.testing.assert_allclose(w.std(), a / np.sqrt(3), rtol=0.03)


@pytest.mark.parametrize("shape,fan_in,fan_out", INIT_SHAPES[:2])
def test_init_normal_std(shape, fan_in, fan_out):
    rng = np.random.default_rng(1)
    for fn, std in [(nn.init.glorot_normal, np.sqrt(2 / (fan_in + fan_out))),
                    (nn.init.he_normal, np.sqrt(2 / fan_in))]:
        w = fn(rng, shape)
        assert w.shape == shape and w.dtype == F64
        np.testing.assert_allclose(w.std(), std, rtol=0.03)
        assert abs(w.mean()) < 0.05 * std


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform"])
def test_init_dtype_and_determinism(name):
    fn = getattr(nn.init, name)
    a = fn(np.random.default_rng(5), (30, 20), dtype=np.float32)
    b = fn(np.random.default_rng(5), (30, 20), dtype=np.float32)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    c = fn(np.random.default_rng(6), (30, 20), dtype=np.float32)
    assert not np.array_equal(a, c)
    d = fn(np.random.default_rng(5), (30, 20))
    assert d.dtype == F64
    np.testing.assert_allclose(a, d.astype(np.float32), rtol=0)


def test_init_aliases():
    assert nn.init.xavier_uniform is nn.init.glorot_uniform
    assert nn.init.xavier_normal is nn.init.glorot_normal

