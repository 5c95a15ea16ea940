"""A same-size convolution's col2im as whole-image shifted adds (graphc/codegen_col2im.py).

Every result is compared bit for bit with the per-row loop the same function gets with
the rewrite off (``codegen_col2im.ENABLED = False``), and with ``_col2im_ref``'s
element-by-element sums; the rewrite edits the windows in place, so it must appear only
where they are the code's own and die there.
"""
import numpy as np
import pytest

import graphc
from graphc import codegen_col2im
from graphc.ops.conv import _col2im_ref, col2im


class _loop:
    """The compiled function ``make()`` with the rewrite off: its signatures are built
    (at their first call or ``source``) while ``codegen_col2im.ENABLED`` is False."""

    def __init__(self, make):
        self.compiled = make()

    def _off(self, method, *args):
        codegen_col2im.ENABLED = False
        try:
            return method(*args)
        finally:
            codegen_col2im.ENABLED = True

    def __call__(self, *args):
        return self._off(self.compiled, *args)

    def source(self, *args):
        return self._off(self.compiled.source, *args)


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


CASES = [((2, 3, 5, 4), (3, 3)), ((1, 2, 6, 7), (5, 5)), ((3, 1, 4, 6), (1, 3)),
         ((2, 2, 5, 3), (3, 1)), ((1, 1, 2, 2), (3, 3)), ((2, 1, 3, 9), (5, 3))]


@pytest.mark.parametrize("image, kernel", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_owned_windows_take_the_shifted_form(image, kernel, dtype):
    pad = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    params = dict(image=image, stride=(1, 1), padding=pad, dilation=(1, 1))
    fn = lambda c: col2im(c * 2.0, **params)                    # noqa: E731
    fast, slow = graphc.compile(fn), _loop(lambda: graphc.compile(fn))
    rng = np.random.default_rng(sum(image) + sum(kernel))
    cols = rng.standard_normal(image + kernel).astype(dtype)
    # values that land in the padding: dropped by both forms, whatever they are
    if pad[0]:
        cols[:, :, 0, :, 0, :] = np.inf         # row 0 at kernel row 0: one row above
    if pad[1]:
        cols[:, :, :, -1, :, -1] = np.nan       # the last column at the last kernel column
    assert "_runs = " in fast.source(cols) and "_runs = " not in slow.source(cols)
    before = cols.copy()
    got, want = fast(cols), slow(cols)
    assert _same_bits(got, want)
    assert _same_bits(cols, before)                              # the input is not edited
    with np.errstate(invalid="ignore"):
        ref = _col2im_ref(cols * dtype(2.0), **params)
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-13)
    assert np.isfinite(got).all()           # (the reference sums in another order)


def test_windows_read_elsewhere_keep_the_loop():
    params = dict(image=(2, 3, 5, 4), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    cols = np.random.default_rng(1).standard_normal((2, 3, 5, 4, 3, 3))

    def twice(c):
        w = c * 2.0
        return col2im(w, **params), w.sum()                     # w read after col2im
    f = graphc.compile(twice)
    assert "_runs = " not in f.source(cols)
    out, total = f(cols)
    assert _same_bits(total, (cols * 2.0).sum())
    np.testing.assert_allclose(out, _col2im_ref(cols * 2.0, **params), rtol=1e-13)

    # an argument is never the code's own: the loop, and the caller's array unchanged
    g = graphc.compile(lambda c: col2im(c, **params))
    before = cols.copy()
    assert "_runs = " not in g.source(cols)
    np.testing.assert_allclose(g(cols), _col2im_ref(cols, **params), rtol=1e-13)
    assert _same_bits(cols, before)


@pytest.mark.parametrize("params", [
    dict(image=(2, 3, 5, 4), stride=(2, 1), padding=(1, 1), dilation=(1, 1)),   # stride
    dict(image=(2, 3, 7, 7), stride=(1, 1), padding=(2, 2), dilation=(2, 2)),   # dilation
    dict(image=(2, 3, 6, 6), stride=(1, 1), padding=(0, 0), dilation=(1, 1)),   # valid
    dict(image=(2, 3, 1, 5), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),   # pad >= H
])
def test_other_convolutions_keep_the_loop(params):
    from graphc.ops.conv import out_size
    (n, c, h, w) = params["image"]
    oh, ow = (out_size(params["image"][2 + a], 3, params["stride"][a], params["padding"][a],
                       params["dilation"][a]) for a in (0, 1))
    cols = np.random.default_rng(2).standard_normal((n, c, oh, ow, 3, 3))
    f = graphc.compile(lambda c_: col2im(c_ * 2.0, **params))
    assert "_runs = " not in f.source(cols)
    np.testing.assert_allclose(f(cols), _col2im_ref(cols * 2.0, **params), rtol=1e-12,
                               atol=1e-12)          # (the reference sums in another order)


@pytest.mark.parametrize("n, c, size, shifted", [(4, 8, 16, True), (3, 2, 9, False),
                                                  (2, 1, 20, True)])
def test_same_conv_gradients_bit_for_bit(n, c, size, shifted):
    """graphc.nn.conv2d with padding=1 (channel-major, batch-last and per-sample layouts;
    the batch-last windows carry the batch as a trailing axis, which keeps the loop):
    the input and weight gradients equal the loop's, and PyTorch's where installed."""
    rng = np.random.default_rng(n * c)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = rng.standard_normal((5, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)

    def loss(x, w, b):
        return (graphc.nn.relu(graphc.nn.conv2d(x, w, b, padding=1)) ** 2).sum()
    fast = graphc.value_and_grad(loss, argnums=(0, 1, 2))
    slow = _loop(lambda: graphc.value_and_grad(loss, argnums=(0, 1, 2)))
    assert ("_runs = " in fast.source(x, w, b)) == shifted
    got, want = fast(x, w, b), slow(x, w, b)
    assert _same_bits(got[0], want[0])
    assert all(_same_bits(a, b_) for a, b_ in zip(got[1], want[1]))
    torch = pytest.importorskip("torch")
    tx, tw, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, w, b))
    (torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1)) ** 2).sum().backward()
    for mine, ref in zip(got[1], (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(mine, ref.numpy(), rtol=2e-4, atol=2e-4 * float(ref.abs().max()))


def same_conv_input_grad(x, w):
    """A 3x3 'same' convolution's input gradient (channel-major layout: 8 channels)."""
    return (graphc.nn.conv2d(x, w, padding=1) ** 2).sum()


def test_golden_shifted_col2im():
    from test_codegen import check_golden
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    f = graphc.grad(same_conv_input_grad)
    src = f.source(x, w)
    assert "_runs = " in src
    check_golden("conv_same_input_grad.py", src)
