"""Primitives the neural-network layers need.

* ``stop_gradient``: identity whose VJP is zero (softmax's max shift).
* ``log_softmax``: a primitive for numerical stability and for the gradient
  form ``ct - softmax * sum(ct)`` (``softmax - onehot`` for cross-entropy).
* ``im2col`` / ``col2im``: sliding windows of an NCHW image and their
  transpose (scatter-add of windows).  Each is the other's VJP, so
  convolution (im2col + matmul) and pooling are differentiable any number of
  times.
* ``argmax``, ``take_along_axis`` / ``put_along_axis``: first-maximum
  selection for max-pooling (the whole gradient goes to the first maximal
  element in row-major window order).
* ``bernoulli``: dropout's keep-mask, a deterministic function of
  ``(key, shape, rate)``.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import ShapeError, UnsupportedError
from ..primitive import Aval, primitive
from ._rules import norm_axis, size_flops, zero_flops


# --- stop_gradient ----------------------------------------------------------------------
stop_gradient = primitive(
    name="stop_gradient", shape=lambda x: x, numpy="{0}", prec=100,
    vjp=lambda ct, x, *, out: (None,), sympy=lambda x: x, label="stop∇", family="shape",
    flops=zero_flops, elementwise=True, doc="Identity forward; no gradient flows through it.")


# --- log_softmax -----------------------------------------------------------------------
def _log_softmax_rule(x, *, axis):
    if x.dtype.kind != "f":
        raise UnsupportedError(f"log_softmax needs floating input, got {x.short()}")
    if not x.ndim:
        raise ShapeError("log_softmax needs at least one axis")
    return Aval(x.shape, x.dtype, False)


def _emit_log_softmax(e, *, axis):
    kw = f"axis={axis}, keepdims=True"
    return [f"{e.out} = {e.args[0]} - {e.atoms[0]}.max({kw})",
            f"{e.out} = {e.out} - np.log(np.exp({e.out}).sum({kw}))"]


def _log_softmax_vjp(ct, x, *, out, axis):
    from .elementwise import exp
    from .reduce import sum as reduce_sum
    return (ct - exp(out) * reduce_sum(ct, axis=(axis,), keepdims=True),)


def _sym_log_softmax(x, *, axis):
    x = np.asarray(x, dtype=object)
    e = np.vectorize(sp.exp, otypes=[object])(x)
    return x - np.vectorize(sp.log, otypes=[object])(e.sum(axis=axis, keepdims=True))


log_softmax = primitive(
    name="log_softmax", statements=True, shape=_log_softmax_rule, numpy=_emit_log_softmax, vjp=_log_softmax_vjp,
    sympy=_sym_log_softmax, label="log softmax", family="nn",
    flops=lambda out, x, **p: 4 * x.size,
    doc="x - logsumexp(x, axis); axis is one non-negative int.")


# --- im2col / col2im --------------------------------------------------------------------
def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _im2col_rule(x, *, kernel, stride, padding, dilation, pad_value):
    if x.ndim != 4:
        raise ShapeError(f"expected an NCHW image (4-d), got {x.short()}")
    n, c, h, w = x.shape
    oh = out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = out_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"a {kernel[0]}x{kernel[1]} window (dilation {dilation}, padding "
                         f"{padding}) does not fit in an image of {h}x{w} ({x.short()})")
    return Aval((n, c, oh, ow) + tuple(kernel), x.dtype, False)


def _pad_text(x, padding, pad_value):
    (ph, pw) = padding
    fill = "" if pad_value == 0 else f", constant_values={_value_text(pad_value)}"
    return f"np.pad({x}, ((0, 0), (0, 0), ({ph}, {ph}), ({pw}, {pw})){fill})"


def _value_text(v):
    if v == -np.inf:
        return "-np.inf"
    return repr(float(v))


def _emit_im2col(e, *, kernel, stride, padding, dilation, pad_value):
    lines, src = [], e.args[0]
    if any(padding):
        lines.append(f"{e.out} = {_pad_text(src, padding, pad_value)}")
        src = e.out
    win = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = f"np.lib.stride_tricks.sliding_window_view({src}, {win!r}, axis=(2, 3))"
    steps = [f"::{s}" if s != 1 else ":" for s in stride] + \
            [f"::{d}" if d != 1 else ":" for d in dilation]
    if any(p != ":" for p in steps):
        view += f"[:, :, {', '.join(steps)}]"
    lines.append(f"{e.out} = {view}")
    return lines


def _im2col_vjp(ct, x, *, out, kernel, stride, padding, dilation, pad_value):
    return (col2im(ct, image=tuple(x.shape), stride=stride, padding=padding, dilation=dilation),)


def _sym_im2col(x, *, kernel, stride, padding, dilation, pad_value):
    x = np.asarray(x, dtype=object)
    (ph, pw) = padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value if pad_value != -np.inf else -sp.oo)
    win = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    v = np.lib.stride_tricks.sliding_window_view(x, win, axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]


im2col = primitive(
    name="im2col", statements=True, shape=_im2col_rule, numpy=_emit_im2col, vjp=_im2col_vjp,
    sympy=_sym_im2col, label="windows", family="conv", flops=zero_flops,
    doc="Sliding windows of an NCHW image: (N, C, H, W) -> (N, C, OH, OW, KH, KW).")


def _col2im_rule(cols, *, image, stride, padding, dilation):
    if cols.ndim != 6:
        raise ShapeError(f"col2im expects (N, C, OH, OW, KH, KW) windows, got {cols.short()}")
    n, c, oh, ow, kh, kw = cols.shape
    want = (n, c, out_size(image[2], kh, stride[0], padding[0], dilation[0]),
            out_size(image[3], kw, stride[1], padding[1], dilation[1]))
    if tuple(image[:2]) != (n, c) or want[2:] != (oh, ow):
        raise ShapeError(f"col2im: windows {cols.short()} do not match image {image}")
    return Aval(tuple(image), cols.dtype, False)


def _span(var, d, s, n):
    # Loop variables start with "_": sanitized user names never do, so no clash.
    start = var if d == 1 else f"{d} * {var}"
    stop = f"{start} + {s * (n - 1) + 1}"
    return f"{start}:{stop}" + (f":{s}" if s != 1 else "")


def _emit_col2im(e, *, image, stride, padding, dilation):
    n, c, h, w = image
    _, _, oh, ow, kh, kw = e.avals[0].shape
    (ph, pw) = padding
    dt = f"np.{e.aval.dtype.name}"
    full = (n, c, h + 2 * ph, w + 2 * pw)
    cols = e.atoms[0]
    lines = [f"{e.out} = np.zeros({full!r}, dtype={dt})",
             f"for _i in range({kh}):",
             f"    for _j in range({kw}):",
             f"        {e.out}[:, :, {_span('_i', dilation[0], stride[0], oh)}, "
             f"{_span('_j', dilation[1], stride[1], ow)}] += {cols}[:, :, :, :, _i, _j]"]
    if ph or pw:
        lines.append(f"{e.out} = {e.out}[:, :, {ph}:{ph + h}, {pw}:{pw + w}]")
    return lines


def _col2im_vjp(ct, cols, *, out, image, stride, padding, dilation):
    kernel = tuple(cols.shape[4:])
    return (im2col(ct, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                   pad_value=0.0),)


def _sym_col2im(cols, *, image, stride, padding, dilation):
    cols = np.asarray(cols, dtype=object)
    n, c, h, w = image
    _, _, oh, ow, kh, kw = cols.shape
    (ph, pw) = padding
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=object)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dilation[0]: i * dilation[0] + stride[0] * (oh - 1) + 1: stride[0],
                j * dilation[1]: j * dilation[1] + stride[1] * (ow - 1) + 1: stride[1]] += cols[:, :, :, :, i, j]
    return out[:, :, ph:ph + h, pw:pw + w]


col2im = primitive(
    name="col2im", statements=True, shape=_col2im_rule, numpy=_emit_col2im, vjp=_col2im_vjp,
    sympy=_sym_col2im, label="add windows", family="conv",
    flops=lambda out, cols, **p: cols.size,
    doc="Adds windows back into an image: the transpose of im2col.")


# --- argmax / take_along_axis / put_along_axis --------------------------------------------
def _argmax_rule(x, *, axis):
    shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return Aval(shape, np.dtype(np.intp), False)


def _sym_at_point(fn):
    """SymPy semantics of a piecewise-constant op: its NumPy value at numeric
    inputs (graphc.symbolic substitutes the check's point first)."""
    def sym(*args, **params):
        nums = [np.asarray(a, dtype=object).astype(np.float64) if np.asarray(a).dtype == object
                else np.asarray(a) for a in args]
        return np.asarray(fn(*nums, **params), dtype=object)
    return sym


argmax = primitive(
    name="argmax", shape=_argmax_rule, numpy="{0}.argmax(axis={axis})", vjp=None,
    sympy=_sym_at_point(lambda x, *, axis: np.argmax(x, axis=axis)), label="argmax", family="reduce", flops=lambda out, x, **p: x.size,
    doc="Index of the first maximum along axis (no gradient).")


def _take_rule(x, idx, *, axis):
    if idx.dtype.kind not in "iu" or idx.ndim != x.ndim or idx.shape[axis] != 1:
        raise ShapeError(f"take_along_axis expects one integer index per row along axis {axis}, "
                         f"got {idx.short()} for {x.short()}")
    shape = list(x.shape)
    shape[axis] = 1
    return Aval(tuple(shape), x.dtype, False)


take_along_axis = primitive(
    name="take_along_axis", shape=_take_rule, numpy="np.take_along_axis({0}, {1}, axis={axis})",
    vjp=lambda ct, x, idx, *, out, axis: (put_along_axis(ct, idx, shape=tuple(x.shape), axis=axis), None),
    sympy=lambda x, idx, *, axis: np.take_along_axis(np.asarray(x, dtype=object), idx, axis=axis),
    label="select", family="index", flops=zero_flops,
    doc="np.take_along_axis with one index per row (size 1 along axis).")


def _put_rule(v, idx, *, shape, axis):
    want = list(shape)
    want[axis] = 1
    if tuple(v.shape) != tuple(want) or tuple(idx.shape) != tuple(want):
        raise ShapeError(f"put_along_axis: values {v.short()} / index {idx.short()} do not fit {shape}")
    return Aval(tuple(shape), v.dtype, False)


def _emit_put(e, *, shape, axis):
    return [f"{e.out} = np.zeros({tuple(shape)!r}, dtype=np.{e.aval.dtype.name})",
            f"np.put_along_axis({e.out}, {e.args[1]}, {e.args[0]}, axis={axis})"]


def _sym_put(v, idx, *, shape, axis):
    out = np.zeros(shape, dtype=object)
    np.put_along_axis(out, idx, np.asarray(v, dtype=object), axis=axis)
    return out


put_along_axis = primitive(
    name="put_along_axis", statements=True, shape=_put_rule, numpy=_emit_put,
    vjp=lambda ct, v, idx, *, out, shape, axis: (take_along_axis(ct, idx, axis=axis), None),
    sympy=_sym_put, label="place", family="index", flops=zero_flops,
    doc="zeros(shape) with one value per row placed at idx along axis.")


# --- dropout mask ---------------------------------------------------------------------------
def _bernoulli_rule(key, *, shape, rate):
    if key.shape != () or key.dtype.kind not in "iu":
        raise UnsupportedError(f"a dropout key must be an integer scalar, got {key.short()}",
                               hint="pass np.int64(step) (traced) or a Python int (static)")
    if not 0.0 <= rate < 1.0:
        raise UnsupportedError(f"dropout rate must be in [0, 1), got {rate}")
    return Aval(tuple(shape), np.dtype(bool), False)


bernoulli = primitive(
    name="bernoulli", shape=_bernoulli_rule,
    # ``% 2**64``: NumPy seeds must be non-negative; any int64 key gets its own mask.
    numpy="np.random.default_rng(int({0}) % 2**64).random({shape}) >= {rate}", prec=6, vjp=None,
    sympy=_sym_at_point(lambda key, *, shape, rate:
                        np.random.default_rng(int(key) % 2**64).random(shape) >= rate), label="keep mask", family="random", flops=lambda out, *a, **p: out.size,
    doc="Keep-mask: True with probability 1 - rate; a function of (key, shape, rate).")


# --- sigmoid / softplus -------------------------------------------------------------------
# Primitives for numerical stability: NumPy's logaddexp never overflows, so both
# are exact in the tails (sigmoid(-40) = 4.2e-18, not 0) for any finite input.
def _float_rule(name):
    def rule(x):
        if x.dtype.kind != "f":
            raise UnsupportedError(f"{name} needs floating input, got {x.short()}")
        return x
    return rule


sigmoid = primitive(
    name="sigmoid", shape=_float_rule("sigmoid"), numpy="np.exp(-np.logaddexp(0, -{0}))",
    vjp=lambda ct, x, *, out: (ct * (out * (1 - out)),),
    sympy=lambda x: 1 / (1 + sp.exp(-x)), label="σ", elementwise=True, flops=size_flops,
    slots=(14,), doc="1 / (1 + exp(-x)), computed without overflow.")

softplus = primitive(
    name="softplus", shape=_float_rule("softplus"), numpy="np.logaddexp(0, {0})",
    vjp=lambda ct, x, *, out: (ct * sigmoid(x),),
    sympy=lambda x: sp.log(1 + sp.exp(x)), label="softplus", elementwise=True,
    flops=size_flops, doc="log(1 + exp(x)), computed without overflow.")


# --- relu ------------------------------------------------------------------------------
# A primitive for speed: np.maximum is ~12x faster than np.where on a random sign
# pattern, and the gradient is a mask multiply.  Kink convention: derivative 0 at 0.
relu = primitive(
    name="relu", shape=_float_rule("relu"), numpy="np.maximum({0}, 0.0)",
    vjp=lambda ct, x, *, out: (ct * (out > 0),),
    sympy=lambda x: sp.Piecewise((x, sp.StrictGreaterThan(x, 0)), (0, True)),
    label="relu", elementwise=True, flops=size_flops,
    doc="max(x, 0) (NaN propagates); derivative 0 at x = 0.")
