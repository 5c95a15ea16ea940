"""Convolution and pooling (NCHW), as im2col windows + primitives.

``conv2d`` is cross-correlation (as PyTorch): windows of the padded image
(``im2col``) are contracted with the filters by matrix products, one per sample
for large feature maps, one over the whole batch (batch innermost) for small
ones; both lay the windows out so that copies move long contiguous runs.  Its
gradient comes from the VJPs of ``matmul`` and ``im2col`` (whose VJP,
``col2im``, is again differentiable), so second derivatives flow through CNNs.
Max pooling over non-overlapping windows is its own primitive (strided slices);
other pooling reduces over ``im2col`` windows.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import composite as C
from ..ops import elementwise as E
from ..ops.conv import im2col
from ..ops.index import take_along_axis
from ..ops.pool import max_pool
from ..ops.reduce import argmax
from ..ops import shape as S
from ..ops._rules import one_axis
from ._util import floating, pair, single

__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
           "lp_pool2d", "flatten"]


def _shape(x):
    return x.shape if hasattr(x, "aval") else np.shape(x)


def _windows(x, kernel, stride, padding, dilation=(1, 1), pad_value=0.0):
    return im2col(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                    pad_value=pad_value)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-d cross-correlation of ``x (N, C, H, W)`` with filters ``w (F, C, KH, KW)``.

    Parameters
    ----------
    x : array (N, C, H, W)
    w : array (F, C, KH, KW)
    b : array (F,), optional
    stride, padding, dilation : int or pair of ints

    Returns
    -------
    array (N, F, OH, OW) with ``OH = (H + 2·ph − dh·(KH − 1) − 1) // sh + 1``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.array([[[[1.0, 0.0, -1.0]]]])          # the lecture's 1-d edge filter
    >>> graphc.nn.conv2d(x, w)[0, 0]
    array([[-2., -2.],
           [-2., -2.],
           [-2., -2.],
           [-2., -2.]])
    """
    x, w = floating(x), floating(w)
    xs, ws = _shape(x), _shape(w)
    if len(xs) != 4 or len(ws) != 4:
        raise ShapeError(f"conv2d expects x (N, C, H, W) and w (F, C, KH, KW), got shapes "
                         f"{tuple(xs)} and {tuple(ws)}")
    n, c, _, _ = xs
    f, cw, kh, kw = ws
    if c != cw:
        raise ShapeError(f"conv2d: x has {c} channels but the filters expect {cw} "
                         f"(x {tuple(xs)}, w {tuple(ws)})")
    stride, padding, dilation = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ShapeError(f"conv2d: stride and dilation must be >= 1 and padding >= 0, got "
                         f"stride={stride}, padding={padding}, dilation={dilation}")
    oh, ow = (_out_size(xs[2 + a], ws[2 + a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    if oh < 1 or ow < 1:
        raise ShapeError(f"conv2d: a {kh}x{kw} filter (dilation {dilation}, padding {padding}) "
                         f"does not fit in an image of {xs[2]}x{xs[3]} (x {tuple(xs)})")
    if oh * ow < _PER_SAMPLE_MIN and n > 1:
        out = _conv_batch_last(x, w, b, stride, padding, dilation)
    elif c >= _CHANNEL_MAJOR_MIN and n > 1:
        out = _conv_channel_major(x, w, b, stride, padding, dilation)
    else:
        out = _conv_per_sample(x, w, b, stride, padding, dilation)
    return C.hint(out, "conv")


# Output pixels per sample from which one GEMM per sample is as fast as one GEMM over the
# batch (measured on LeNet: conv1's 28x28 maps favour per-sample GEMMs and NCHW throughout,
# conv2's 10x10 maps the batch-last layout, 1.6x faster with its input gradient).
_PER_SAMPLE_MIN = 256
# Input channels from which large maps take the channel-major layout: one GEMM each for
# forward, weight and input gradient instead of one per sample (issue 18, measured with
# benchmarks/convnets.py: the CIFAR-sized net's conv 32->64 on 16x16 maps 1.3x faster
# forward + backward at batch 16, 1.15x at 256; conv1 with 1 or 3 channels keeps the
# per-sample GEMMs, whose forward is faster there).
_CHANNEL_MAJOR_MIN = 8


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_batch_last(x, w, b, stride, padding, dilation):
    """Convolution as one GEMM over windows laid out (C·KH·KW, OH·OW·N), batch innermost.

    With the batch as the last axis, the copy that materializes the windows and the
    scatter that adds their gradient back (col2im) move contiguous runs of OW·N elements
    instead of OW, and forward, weight gradient and input gradient are one large GEMM
    each: on LeNet's conv2 1.6x faster than the per-sample layout.  The image goes in as
    (1, C, H, W, N), whose trailing batch axis ``im2col`` carries along.
    """
    (n, c, h, wd), (f, _, kh, kw) = _shape(x), _shape(w)
    img = C.do_reshape(C.do_transpose(x, (1, 2, 3, 0)), (1, c, h, wd, n))   # (1, C, H, W, N)
    cols = _windows(img, (kh, kw), stride, padding, dilation)          # (1, C, OH, OW, N, KH, KW)
    oh, ow = _shape(cols)[2:4]
    rows = C.do_reshape(C.do_transpose(cols, (0, 1, 5, 6, 2, 3, 4)), (c * kh * kw, oh * ow * n))
    out = C.do_reshape(w, (f, c * kh * kw)) @ rows                       # (F, OH·OW·N)
    if b is not None:   # on the GEMM's own result, before the layout change: one pass less
        out = out + C.do_reshape(b, (f, 1))
    # Back to NCHW in C order once: the activation, pooling and their gradients that
    # follow would otherwise mix memory layouts (5-10x slower elementwise ops).
    return S.contiguous(C.do_transpose(C.do_reshape(out, (f, oh, ow, n)), (3, 0, 1, 2)))


def _conv_channel_major(x, w, b, stride, padding, dilation):
    """Convolution as one GEMM over windows laid out (C·KH·KW, N·OH·OW), channels outermost.

    The image goes in as (C, N, H, W) (the padding copy does the transpose), each window
    row is a shifted copy of one channel of one sample (OW-long runs, as per sample), and
    forward, weight gradient and input gradient are one large GEMM each, where the
    per-sample layout needs a batch of GEMMs and a sum for the weight gradient.
    """
    (n, c, _, _), (f, _, kh, kw) = _shape(x), _shape(w)
    cols = _windows(C.do_transpose(x, (1, 0, 2, 3)), (kh, kw), stride, padding, dilation)
    oh, ow = _shape(cols)[2:4]                                       # (C, N, OH, OW, KH, KW)
    rows = C.do_reshape(C.do_transpose(cols, (0, 4, 5, 1, 2, 3)), (c * kh * kw, n * oh * ow))
    out = C.do_reshape(w, (f, c * kh * kw)) @ rows                       # (F, N·OH·OW)
    if b is not None:
        out = out + C.do_reshape(b, (f, 1))
    return S.contiguous(C.do_transpose(C.do_reshape(out, (f, n, oh, ow)), (1, 0, 2, 3)))


def _conv_per_sample(x, w, b, stride, padding, dilation):
    """Convolution as one GEMM per sample over windows laid out (N, C·KH·KW, OH·OW).

    Each window row is a shifted copy of an image channel (OW-long contiguous runs), and
    w (F, C·KH·KW) @ rows yields NCHW directly, with no transposes forward or backward:
    the better layout for large feature maps (OH·OW >= ``_PER_SAMPLE_MIN``) and a batch of 1.
    """
    (n, c, _, _), (f, _, kh, kw) = _shape(x), _shape(w)
    cols = _windows(x, (kh, kw), stride, padding, dilation)          # (N, C, OH, OW, KH, KW)
    oh, ow = _shape(cols)[2:4]
    rows = C.do_reshape(C.do_transpose(cols, (0, 1, 4, 5, 2, 3)), (n, c * kh * kw, oh * ow))
    out = C.do_reshape(w, (f, c * kh * kw)) @ rows                       # (N, F, OH·OW)
    if b is not None:   # on the GEMM's own result: NumPy adds into that temporary in place
        out = out + C.do_reshape(b, (1, f, 1))
    return C.do_reshape(out, (n, f, oh, ow))


def _to_2d(x, what):
    xs = _shape(x)
    if len(xs) != 3:
        raise ShapeError(f"{what} expects (N, C, L), got shape {tuple(xs)}")
    return C.do_reshape(x, (xs[0], xs[1], 1, xs[2]))


def _from_2d(y):
    ys = _shape(y)
    return C.do_reshape(y, (ys[0], ys[1], ys[3]))


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1):
    """1-d cross-correlation of ``x (N, C, L)`` with filters ``w (F, C, K)``.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> x = np.array([[[1.0, 2.0, 4.0, 7.0, 11.0]]])
    >>> graphc.nn.conv1d(x, np.array([[[1.0, 0.0, -1.0]]]))   # the lecture's [1, 0, -1]
    array([[[-3., -5., -7.]]])
    """
    x, w = floating(x), floating(w)
    ws = _shape(w)
    if len(ws) != 3:
        raise ShapeError(f"conv1d expects w (F, C, K), got shape {tuple(ws)}")
    out = conv2d(_to_2d(x, "conv1d"), C.do_reshape(w, (ws[0], ws[1], 1, ws[2])), b,
                 stride=(1, single(stride, "stride")), padding=(0, single(padding, "padding")),
                 dilation=(1, single(dilation, "dilation")))
    return C.hint(_from_2d(out), "conv")


def _check_pool_sizes(k, s, p, what):
    """kernel_size=0 or stride=0 would divide by zero computing the output size."""
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        one = len(k) == 1
        k, s, p = (v[0] if one else v for v in (k, s, p))
        raise ShapeError(f"{what}: kernel_size and stride must be >= 1 and padding >= 0, got "
                         f"kernel_size={k}, stride={s}, padding={p}",
                         hint="pass a positive kernel_size (e.g. 2) and stride (None: the kernel)")


def _pool_args(x, kernel_size, stride, padding, what):
    xs = _shape(x)
    if len(xs) != 4:
        raise ShapeError(f"{what} expects x (N, C, H, W), got shape {tuple(xs)}")
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    _check_pool_sizes(k, s, p, what)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ShapeError(f"{what}: padding {p} should be at most half the kernel {k}")
    return xs, k, s, p


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over ``kernel_size`` windows (stride defaults to the kernel; padding is -inf).

    Ties: the whole gradient goes to the first maximal element in row-major
    window order.

    Examples
    --------
    >>> import numpy as np, graphc
    >>> graphc.nn.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    x = floating(x)
    xs, k, s, p = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    if s == k and p == (0, 0):
        # Non-overlapping windows (the usual 2x2): strided slices, no window copies.
        return C.hint(max_pool(x, kernel=k), "pool")
    win = _windows(x, k, s, p, pad_value=-np.inf)                  # (N, C, OH, OW, KH, KW)
    n, c, oh, ow = _shape(win)[:4]
    flat = C.do_reshape(win, (n, c, oh, ow, k[0] * k[1]))
    first = C.do_reshape(argmax(flat, axis=4), (n, c, oh, ow, 1))
    out = take_along_axis(flat, first, axis=4)
    return C.hint(C.do_reshape(out, (n, c, oh, ow)), "pool")


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over windows; padded zeros count in the divisor (PyTorch's default)."""
    x = floating(x)
    xs, k, s, p = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    win = _windows(x, k, s, p)
    return C.hint(C.sum(win, axis=(4, 5)) / (k[0] * k[1]), "pool")


def lp_pool2d(x, p, kernel_size, stride=None):
    """``(sum of x**p over the window)**(1/p)``; ``p=2`` is L2-norm pooling.

    An all-zero window gives 0 with gradient 0 (as PyTorch), not ``0 * inf = nan``:
    the root only ever sees nonzero sums.
    """
    x = floating(x)
    xs, k, s, pad = _pool_args(x, kernel_size, stride, 0, "lp_pool2d")
    win = _windows(x, k, s, pad)
    powered = win * win if p == 2 else win ** p
    total = C.sum(powered, axis=(4, 5))
    zero = total == 0
    safe = E.where(zero, 1.0, total)
    root = E.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return C.hint(E.where(zero, 0.0, root), "pool")


def max_pool1d(x, kernel_size, stride=None, padding=0):
    """1-d max pooling of ``x (N, C, L)`` (first maximum gets the gradient)."""
    k = single(kernel_size, "kernel_size")
    s = k if stride is None else single(stride, "stride")
    _check_pool_sizes((k,), (s,), (single(padding, "padding"),), "max_pool1d")
    out = max_pool2d(_to_2d(floating(x), "max_pool1d"), (1, k), (1, s), (0, single(padding, "padding")))
    return C.hint(_from_2d(out), "pool")


def avg_pool1d(x, kernel_size, stride=None, padding=0):
    """1-d average pooling of ``x (N, C, L)``."""
    k = single(kernel_size, "kernel_size")
    s = k if stride is None else single(stride, "stride")
    _check_pool_sizes((k,), (s,), (single(padding, "padding"),), "avg_pool1d")
    out = avg_pool2d(_to_2d(floating(x), "avg_pool1d"), (1, k), (1, s), (0, single(padding, "padding")))
    return C.hint(_from_2d(out), "pool")


def flatten(x, start_axis=1):
    """Merge all axes from ``start_axis`` on: ``(N, C, H, W) -> (N, C·H·W)``."""
    xs = tuple(_shape(x))
    start_axis = one_axis(start_axis, len(xs), "start_axis")
    size = int(np.prod(xs[start_axis:], dtype=np.int64))
    return C.hint(C.do_reshape(x, xs[:start_axis] + (size,)), "flat")
