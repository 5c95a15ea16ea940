"""Convolution windows: ``im2col`` / ``col2im``.

``im2col`` takes the sliding windows of an NCHW image and ``col2im`` is its
transpose (a scatter-add of windows).  Each is the other's VJP, so convolution
(im2col + matmul) and overlapping pooling are differentiable any number of times.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import ShapeError
from ..primitive import Aval, primitive
from . import _samples as S
from . import array_api as XP
from ._rules import zero_flops


def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


# Both take images with trailing axes too, (N, C, H, W, *rest) -> windows
# (N, C, OH, OW, *rest, KH, KW): convolution puts the batch there (a (1, C, H, W, N)
# image), so copies and scatters move contiguous runs of OW·N elements.
def _im2col_rule(x, *, kernel, stride, padding, dilation, pad_value):
    if x.ndim < 4:
        raise ShapeError(f"expected an NCHW image (4-d), got {x.short()}")
    n, c, h, w = x.shape[:4]
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"a {kernel[0]}x{kernel[1]} window (dilation {dilation}, padding "
                         f"{padding}) does not fit in an image of {h}x{w} ({x.short()})")
    return Aval((n, c, oh, ow) + tuple(x.shape[4:]) + tuple(kernel), x.dtype, False)


def _value_text(v):
    if v == -np.inf:
        return "-np.inf"
    return repr(float(v))


def _emit_im2col(e, *, kernel, stride, padding, dilation, pad_value):
    lines, src = [], e.args[0]
    if any(padding):
        # A filled buffer and one slice assignment: 4x faster than np.pad on LeNet's input.
        (ph, pw), (n, c, h, w), rest = padding, e.avals[0].shape[:4], e.avals[0].shape[4:]
        shape, dt = (n, c, h + 2 * ph, w + 2 * pw) + rest, f"dtype=np.{e.aval.dtype.name}"
        lines.append(f"{e.out} = np.zeros({shape!r}, {dt})" if pad_value == 0 else
                     f"{e.out} = np.full({shape!r}, {_value_text(pad_value)}, {dt})")
        lines.append(f"{e.out}[:, :, {ph}:{ph + h}, {pw}:{pw + w}] = {src}")
        src = e.out
    if all(s == 1 for s in stride + dilation):
        # The window view built directly from the strides: sliding_window_view checks its
        # arguments in Python for 15-40 µs a call, 3 % of LeNet's gradient at batch 16
        # (the shapes are the ones graphc derived, so the view stays inside ``src``).
        lines.append(f"{e.out} = np.lib.stride_tricks.as_strided({src}, {tuple(e.aval.shape)!r}, "
                     f"{src}.strides + {src}.strides[2:4], writeable=False)")
        return lines
    win = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = f"np.lib.stride_tricks.sliding_window_view({src}, {win!r}, axis=(2, 3))"
    steps = [f"::{s}" if s != 1 else ":" for s in stride] + \
            [f"::{d}" if d != 1 else ":" for d in dilation]
    if any(p != ":" for p in steps):
        if e.avals[0].ndim > 4:
            steps.insert(2, "...")
        view += f"[:, :, {', '.join(steps)}]"
    lines.append(f"{e.out} = {view}")
    return lines


def _im2col_vjp(ct, x, *, out, kernel, stride, padding, dilation, pad_value):
    return (col2im(ct, image=tuple(x.shape), stride=stride, padding=padding, dilation=dilation),)


def _im2col_jvp(t, x, *, out, kernel, stride, padding, dilation, pad_value):
    # linear in x; the padding is a constant, whose tangent is 0
    return im2col(t[0], kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                  pad_value=0.0)


def _sym_im2col(x, *, kernel, stride, padding, dilation, pad_value):
    x = np.asarray(x, dtype=object)
    (ph, pw) = padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)) + ((0, 0),) * (x.ndim - 4),
               constant_values=pad_value if pad_value != -np.inf else -sp.oo)
    win = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = np.lib.stride_tricks.sliding_window_view(x, win, axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1], ..., ::dilation[0], ::dilation[1]]


def _im2col_ref(x, kernel, stride, padding, dilation, pad_value):
    """Sliding windows written as plain loops (independent of the emission)."""
    (n, c, h, w), rest = x.shape[:4], x.shape[4:]      # trailing axes ride along
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw) + rest, pad_value, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    out = np.empty((n, c, oh, ow) + rest + (kh, kw), dtype=x.dtype)
    for i, j, a, b in np.ndindex(oh, ow, kh, kw):
        out[:, :, i, j, ..., a, b] = xp[:, :, i * sh + a * dh, j * sw + b * dw]
    return out


def _im2col_sample(d, xshape, kernel, stride, padding, dilation, pad_value=0.0,
                   dtype=np.float64, grad=True, proof=False):
    p = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, pad_value=pad_value)
    return S.Sample((d.rnd(*xshape, dtype=dtype),), p, lambda x: _im2col_ref(x, **p),
                    f"{xshape}-k{kernel}-s{stride}-p{padding}-d{dilation}-pad{pad_value}",
                    grad=grad, proof=proof)


def _im2col_samples(d):
    return [_im2col_sample(d, (1, 2, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
            _im2col_sample(d, (2, 1, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2)),
            _im2col_sample(d, (1, 1, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), pad_value=-np.inf,
                           grad=False),
            _im2col_sample(d, (1, 2, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1), dtype=np.float32),
            # a trailing (batch) axis, as conv2d's batch-last layout uses it
            _im2col_sample(d, (1, 2, 5, 4, 3), (3, 2), (1, 1), (1, 1), (1, 1)),
            _im2col_sample(d, (1, 1, 6, 7, 2), (2, 3), (2, 1), (1, 0), (1, 2)),
            _im2col_sample(d, (1, 1, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), proof=True)]


def _im2col_detail(params):
    k, s, pad = params["kernel"], params["stride"], params["padding"]
    return f"{k[0]}x{k[1]}/s{s[0]}" + (f" p{pad[0]}" if any(pad) else "")


im2col = primitive(
    name="im2col", array_api=XP.im2col, samples=_im2col_samples, never_inline_args=True, shape=_im2col_rule, numpy=_emit_im2col, vjp=_im2col_vjp, jvp=_im2col_jvp,
    sympy=_sym_im2col, label="windows", label_detail=_im2col_detail, family="conv",
    flops=zero_flops,
    doc="Sliding windows of an NCHW image: (N, C, H, W, *rest) -> (N, C, OH, OW, *rest, KH, KW).")


def _col2im_rule(cols, *, image, stride, padding, dilation):
    if cols.ndim < 6:
        raise ShapeError(f"col2im expects (N, C, OH, OW, KH, KW) windows, got {cols.short()}")
    (n, c, oh, ow), rest, (kh, kw) = cols.shape[:4], cols.shape[4:-2], cols.shape[-2:]
    want = (n, c, out_size(image[2], kh, stride[0], padding[0], dilation[0]),
            out_size(image[3], kw, stride[1], padding[1], dilation[1]))
    if (len(image) != cols.ndim - 2 or tuple(image[:2]) != (n, c) or want[2:] != (oh, ow)
            or tuple(image[4:]) != tuple(rest)):
        raise ShapeError(f"col2im: windows {cols.short()} do not match image {image}")
    return Aval(tuple(image), cols.dtype, False)


def _span(var, d, s, n):
    # Loop variables start with "_": sanitized user names never do, so no clash.
    start = var if d == 1 else f"{d} * {var}"
    stop = f"{start} + {s * (n - 1) + 1}"
    return f"{start}:{stop}" + (f":{s}" if s != 1 else "")


def _emit_col2im(e, *, image, stride, padding, dilation):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    (oh, ow), (kh, kw) = e.avals[0].shape[2:4], e.avals[0].shape[-2:]
    (ph, pw) = padding
    dt = f"np.{e.aval.dtype.name}"
    full = (n, c, h + 2 * ph, w + 2 * pw) + rest
    cols = e.atoms[0]
    window = "..., _i, _j" if rest else ":, :, :, :, _i, _j"
    lines = [f"{e.out} = np.zeros({full!r}, dtype={dt})",
             f"for _i in range({kh}):",
             f"    for _j in range({kw}):",
             f"        {e.out}[:, :, {_span('_i', dilation[0], stride[0], oh)}, "
             f"{_span('_j', dilation[1], stride[1], ow)}] += {cols}[{window}]"]
    if ph or pw:
        lines.append(f"{e.out} = {e.out}[:, :, {ph}:{ph + h}, {pw}:{pw + w}]")
    return lines


def _col2im_vjp(ct, cols, *, out, image, stride, padding, dilation):
    kernel = tuple(cols.shape[-2:])
    return (im2col(ct, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                   pad_value=0.0),)


def _sym_col2im(cols, *, image, stride, padding, dilation):
    cols = np.asarray(cols, dtype=object)
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    (oh, ow), (kh, kw) = cols.shape[2:4], cols.shape[-2:]
    (ph, pw) = padding
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw) + rest, dtype=object)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dilation[0]: i * dilation[0] + stride[0] * (oh - 1) + 1: stride[0],
                j * dilation[1]: j * dilation[1] + stride[1] * (ow - 1) + 1: stride[1]] += cols[..., i, j]
    return out[:, :, ph:ph + h, pw:pw + w]


def _col2im_ref(cols, image, stride, padding, dilation):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    (oh, ow), (kh, kw) = cols.shape[2:4], cols.shape[-2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw) + rest, dtype=cols.dtype)
    for i, j, a, b in np.ndindex(oh, ow, kh, kw):
        out[:, :, i * sh + a * dh, j * sw + b * dw] += cols[:, :, i, j, ..., a, b]
    return out[:, :, ph:ph + h, pw:pw + w]


def _col2im_sample(d, image, kernel, stride, padding, dilation, proof=False):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1])
    p = dict(image=image, stride=stride, padding=padding, dilation=dilation)
    return S.Sample((d.rnd(n, c, oh, ow, *rest, *kernel),), p, lambda cols: _col2im_ref(cols, **p),
                    f"{image}-k{kernel}-s{stride}-p{padding}-d{dilation}", proof=proof)


def _col2im_samples(d):
    return [_col2im_sample(d, (1, 2, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
            _col2im_sample(d, (2, 1, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2)),
            _col2im_sample(d, (1, 1, 5, 4), (2, 2), (3, 2), (1, 1), (1, 1)),
            _col2im_sample(d, (1, 2, 5, 4, 3), (3, 2), (1, 1), (1, 1), (1, 1)),
            _col2im_sample(d, (1, 1, 6, 7, 2), (2, 3), (2, 1), (1, 0), (1, 2)),
            _col2im_sample(d, (1, 1, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1), proof=True)]


col2im = primitive(
    name="col2im", array_api=XP.col2im, samples=_col2im_samples, never_inline_args=True, shape=_col2im_rule, numpy=_emit_col2im, vjp=_col2im_vjp,
    jvp=lambda t, cols, *, out, image, stride, padding, dilation: col2im(
        t[0], image=image, stride=stride, padding=padding, dilation=dilation),
    sympy=_sym_col2im, label="add windows", family="conv",
    flops=lambda out, cols, **p: cols.size,
    doc="Adds windows back into an image: the transpose of im2col.")
