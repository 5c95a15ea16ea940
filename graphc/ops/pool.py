"""Max pooling over non-overlapping windows: ``max_pool``, ``max_pool_mask``,
``unpool`` and ``pool_select``.

Fast max pooling by strided slices; the whole gradient goes to the first maximal
element in row-major window order.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import ShapeError, UnsupportedError
from ..primitive import NOT_DIFFERENTIABLE, Aval, primitive
from . import _samples as S
from . import array_api as XP


# Max pooling over non-overlapping windows (stride = kernel, no padding), the common case
# (LeNet's 2x2), without materializing windows: window position (i, j) of every window is
# one strided slice x[:, :, i::kh, j::kw], so the forward pass is kh·kw - 1 elementwise
# maximums (17x faster than windows + argmax), and the backward pass writes one slice
# per position.  The gradient goes to the *first* maximal element of each window in
# row-major window order (API.md section 5): ``max_pool_mask`` marks it, ``unpool``
# scatters a cotangent through that mask and ``pool_select`` gathers through it; the last
# two are each other's VJP, so max pooling is differentiable any number of times.
def _pool_out(h, w, kernel):
    return h // kernel[0], w // kernel[1]


def _pool_span(pos, k, n, size):
    """Slice text of window position ``pos`` (int or loop variable) over ``n`` windows."""
    if k * n == size:
        return f"{pos}::{k}"                      # exact tiling: no stop needed
    if isinstance(pos, int):
        return f"{pos}:{pos + k * (n - 1) + 1}:{k}"
    return f"{pos}:{pos} + {k * (n - 1) + 1}:{k}"


def _pool_slice(x, i, j, kernel, out_hw, image_hw):
    return (f"{x}[:, :, {_pool_span(i, kernel[0], out_hw[0], image_hw[0])}, "
            f"{_pool_span(j, kernel[1], out_hw[1], image_hw[1])}]")


def _max_pool_rule(x, *, kernel):
    if x.ndim != 4:
        raise ShapeError(f"max_pool expects an NCHW image (4-d), got {x.short()}")
    if x.dtype.kind != "f":
        raise UnsupportedError(f"max_pool needs floating input, got {x.short()}")
    oh, ow = _pool_out(x.shape[2], x.shape[3], kernel)
    if oh < 1 or ow < 1 or min(kernel) < 1:
        raise ShapeError(f"a {kernel[0]}x{kernel[1]} pooling window does not fit in {x.short()}")
    return Aval(tuple(x.shape[:2]) + (oh, ow), x.dtype, False)


def _emit_max_pool(e, *, kernel):
    (kh, kw), hw, ohw = kernel, e.avals[0].shape[2:], e.aval.shape[2:]
    x = e.atoms[0]
    slices = [_pool_slice(x, i, j, kernel, ohw, hw) for i in range(kh) for j in range(kw)]
    if 2 <= len(slices) <= 4:                     # one readable line: a tree of maximums
        while len(slices) > 1:
            pairs = [f"np.maximum({a}, {b})" for a, b in zip(slices[::2], slices[1::2])]
            slices = pairs + slices[len(pairs) * 2:]
        return [f"{e.out} = {slices[0]}"]
    return [f"{e.out} = {slices[0]}.copy()",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        np.maximum({e.out}, {_pool_slice(x, '_i', '_j', kernel, ohw, hw)}, out={e.out})"]


def _max_pool_vjp(ct, x, *, out, kernel):
    mask = max_pool_mask(x, out, kernel=kernel)
    if _is_relu(x):
        # ReLU's mask on the pooled values (where the mask is set, x == out): the
        # full-size one after the unpool then changes nothing (graphc/passes/pool_mask.py)
        from .composite import hint
        from .elementwise import masked_mul
        ct = hint(masked_mul(ct, out > 0), "d_pooled")
    return (unpool(ct, mask, image=tuple(x.shape)),)


def _is_relu(x) -> bool:
    """``x`` is the result of a ReLU in the trace."""
    return x._trace.graph[x.node].op == "relu"


def _max_pool_jvp(t, x, *, out, kernel):
    # the tangent at each window's (first) maximum
    return pool_select(t[0], max_pool_mask(x, out, kernel=kernel))


def _pool_windows(x, kernel, oh, ow):
    """Object/number array (kh, kw, N, C, OH, OW) of window elements (for semantics)."""
    kh, kw = kernel
    return np.stack([np.stack([x[:, :, i:i + kh * oh:kh, j:j + kw * ow:kw] for j in range(kw)])
                     for i in range(kh)])


def _sym_max_pool(x, *, kernel):
    x = np.asarray(x, dtype=object)
    oh, ow = _pool_out(x.shape[2], x.shape[3], kernel)
    win = _pool_windows(x, kernel, oh, ow).reshape((-1,) + x.shape[:2] + (oh, ow))
    out = np.empty(win.shape[1:], dtype=object)
    for idx in np.ndindex(*out.shape):
        out[idx] = sp.Max(*win[(slice(None),) + idx])
    return out


# --- samples: references written as loops, independent of the emissions above ------------
def _max_pool_ref(x, kernel):
    """Max over whole (kh, kw) windows; partial windows dropped."""
    (kh, kw), (n, c, h, w) = kernel, x.shape
    out = np.empty((n, c, h // kh, w // kw), dtype=x.dtype)
    for i, j in np.ndindex(h // kh, w // kw):
        out[:, :, i, j] = x[:, :, i * kh:(i + 1) * kh, j * kw:(j + 1) * kw].max(axis=(2, 3))
    return out


def _first_max_ref(x, m, kernel):
    """(kh, kw, N, C, OH, OW) mask: the first element (row-major) of each window equal to m."""
    kh, kw = kernel
    mask = np.zeros((kh, kw) + m.shape, dtype=bool)
    for idx in np.ndindex(*m.shape):
        n, c, i, j = idx
        win = x[n, c, i * kh:(i + 1) * kh, j * kw:(j + 1) * kw]
        hits = np.flatnonzero(win.ravel() == m[idx])
        if hits.size:
            mask[(hits[0] // kw, hits[0] % kw) + idx] = True
    return mask


def _unpool_ref(v, mask, image):
    out = np.zeros(image, dtype=v.dtype)
    kh, kw = mask.shape[:2]
    for a, b, n, c, i, j in zip(*np.nonzero(mask)):
        out[n, c, i * kh + a, j * kw + b] = v[n, c, i, j]
    return out


def _pool_select_ref(y, mask):
    out = np.zeros(mask.shape[2:], dtype=y.dtype)
    kh, kw = mask.shape[:2]
    for a, b, n, c, i, j in zip(*np.nonzero(mask)):
        out[n, c, i, j] = y[n, c, i * kh + a, j * kw + b]
    return out


def _random_mask(d, kernel, out_shape):
    """A first-max mask of random data: one True per window."""
    x = d.rnd(*out_shape[:2], out_shape[2] * kernel[0], out_shape[3] * kernel[1])
    return _first_max_ref(x, _max_pool_ref(x, kernel), kernel)


def _max_pool_samples(d):
    def sample(x, kernel, desc):
        return S.Sample((x,), {"kernel": kernel}, lambda x: _max_pool_ref(x, kernel), desc)
    return [sample(d.rnd(1, 2, 4, 4), (2, 2), "k2"),
            sample(d.rnd(2, 1, 5, 7), (2, 3), "k2x3-cropped"),
            sample(d.rnd(1, 1, 6, 6), (3, 3), "k3-loop"),
            sample(d.rnd(1, 2, 1, 6, dtype=np.float32), (1, 2), "f32-1d")]


def _mask_samples(d):
    ties = np.array([[[[1.0, 3.0, 0.0, 0.0, 7.0],
                       [3.0, 2.0, 0.0, 0.0, 7.0],
                       [5.0, 5.0, -1.0, 4.0, 7.0],
                       [5.0, 5.0, 4.0, 4.0, 7.0]]]])

    def sample(x, kernel, desc):
        return S.Sample((x, _max_pool_ref(x, kernel)), {"kernel": kernel},
                        lambda x, m: _first_max_ref(x, m, kernel), desc)
    return [sample(ties, (2, 2), "ties-first"), sample(d.rnd(2, 1, 5, 7), (2, 3), "cropped"),
            sample(d.rnd(1, 2, 4, 4, dtype=np.float32), (2, 2), "f32")]


def _unpool_samples(d):
    m22, m23 = _random_mask(d, (2, 2), (1, 2, 2, 2)), _random_mask(d, (2, 3), (2, 1, 2, 2))
    m_small = _random_mask(d, (2, 2), (1, 1, 1, 2))       # small enough for the SymPy proof

    def sample(v, m, image, desc):
        return S.Sample((v, m), {"image": image}, lambda v, m: _unpool_ref(v, m, image), desc)
    return [sample(d.rnd(1, 1, 1, 2), m_small, (1, 1, 2, 4), "small"),
            sample(d.rnd(1, 2, 2, 2), m22, (1, 2, 4, 4), "k2"),
            sample(d.rnd(2, 1, 2, 2), m23, (2, 1, 5, 7), "k2x3-cropped"),
            sample(d.rnd(1, 2, 2, 2, dtype=np.float32), m22, (1, 2, 4, 4), "f32")]


def _pool_select_samples(d):
    m22, m23 = _random_mask(d, (2, 2), (1, 2, 2, 2)), _random_mask(d, (2, 3), (2, 1, 2, 2))
    m_small = _random_mask(d, (2, 2), (1, 1, 1, 2))
    r = _pool_select_ref
    return [S.Sample((d.rnd(1, 1, 2, 4), m_small), {}, r, "small"),
            S.Sample((d.rnd(1, 2, 4, 4), m22), {}, r, "k2"),
            S.Sample((d.rnd(2, 1, 5, 7), m23), {}, r, "k2x3-cropped"),
            S.Sample((d.rnd(1, 2, 4, 4, dtype=np.float32), m22), {}, r, "f32")]


# --- the records -------------------------------------------------------------------------------
max_pool = primitive(
    name="max_pool", array_api=XP.max_pool, samples=_max_pool_samples, never_inline_args=True, shape=_max_pool_rule, numpy=_emit_max_pool,
    vjp=_max_pool_vjp, jvp=_max_pool_jvp, sympy=_sym_max_pool, label="max pool", family="conv",
    flops=lambda out, x, *, kernel: (kernel[0] * kernel[1] - 1) * out.size,
    doc="Max over non-overlapping kernel windows of an NCHW image (stride = kernel, "
        "no padding; rows/columns past the last whole window are dropped).")


def _mask_rule(x, m, *, kernel):
    want = tuple(x.shape[:2]) + _pool_out(x.shape[2], x.shape[3], kernel) if x.ndim == 4 else None
    if want is None or tuple(m.shape) != want or m.dtype != x.dtype:
        raise ShapeError(f"max_pool_mask: maxima {m.short()} do not match {kernel} windows of "
                         f"{x.short()}")
    return Aval(tuple(kernel) + want, np.dtype(bool), False)


def _emit_mask(e, *, kernel):
    (kh, kw), hw, ohw = kernel, e.avals[0].shape[2:], e.avals[1].shape[2:]
    x, m = e.atoms
    if kh * kw >= 2:
        return _emit_mask_unrolled(e, kernel, hw, ohw)
    return [f"{e.out} = np.empty({e.aval.shape!r}, dtype=bool)",
            f"_seen = np.zeros({e.avals[1].shape!r}, dtype=bool)",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        np.equal({_pool_slice(x, '_i', '_j', kernel, ohw, hw)}, {m}, out={e.out}[_i, _j])",
            f"        np.greater({e.out}[_i, _j], _seen, out={e.out}[_i, _j])  # and not seen: "
            "a tie goes to the first maximum",
            f"        _seen |= {e.out}[_i, _j]"]


def _emit_mask_unrolled(e, kernel, hw, ohw):
    """The first-maximum mask without the passes that change nothing: the first window
    position has nothing seen before it (its mask is ``x == m`` as is), the second is
    compared with the first's mask alone, and the last one's mask is not added to
    ``_seen`` (nothing reads it after).  2x2: 9 NumPy calls where the loop makes 13."""
    x, m, out = e.atoms[0], e.atoms[1], e.out
    pos = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]

    def equal(i, j):
        return f"np.equal({_pool_slice(x, i, j, kernel, ohw, hw)}, {m}, out={out}[{i}, {j}])"

    def first(i, j, seen, note=""):
        return f"np.greater({out}[{i}, {j}], {seen}, out={out}[{i}, {j}]){note}"
    (i0, j0), (i1, j1) = pos[0], pos[1]
    lines = [f"{out} = np.empty({e.aval.shape!r}, dtype=bool)", equal(i0, j0), equal(i1, j1),
             first(i1, j1, f"{out}[{i0}, {j0}]", "  # and not before: a tie goes to the first maximum")]
    if len(pos) == 2:
        return lines
    lines.append(f"_seen = {out}[{i0}, {j0}] | {out}[{i1}, {j1}]")
    middle = pos[2:-1]
    if len(middle) == 1:
        (i, j), = middle
        lines += [equal(i, j), first(i, j, "_seen"), f"_seen |= {out}[{i}, {j}]"]
    elif middle:
        lines += [f"for _i, _j in {tuple(middle)!r}:",
                  f"    {equal('_i', '_j')}",
                  f"    {first('_i', '_j', '_seen')}",
                  f"    _seen |= {out}[_i, _j]"]
    (i, j) = pos[-1]
    return lines + [equal(i, j), first(i, j, "_seen")]


def _sym_mask(x, m, *, kernel):
    x, m = np.asarray(x, dtype=object), np.asarray(m, dtype=object)
    win = _pool_windows(x, kernel, m.shape[2], m.shape[3])
    flat = win.reshape((-1,) + m.shape)
    out = np.empty(flat.shape, dtype=object)
    for idx in np.ndindex(*m.shape):
        earlier = []
        for k in range(flat.shape[0]):
            hit = sp.Eq(flat[(k,) + idx], m[idx])
            out[(k,) + idx] = sp.And(hit, *[sp.Not(e) for e in earlier])
            earlier.append(hit)
    return out.reshape(win.shape)


max_pool_mask = primitive(
    name="max_pool_mask", array_api=XP.max_pool_mask, samples=_mask_samples, never_inline_args=True, shape=_mask_rule, numpy=_emit_mask, vjp=NOT_DIFFERENTIABLE,
    sympy=_sym_mask, label="first max", family="conv",
    flops=lambda out, x, m, **p: out.size,
    doc="(kh, kw, N, C, OH, OW) mask: True at the first element of each window (row-major) "
        "equal to m (the window's max); no gradient.")


def _unpool_rule(ct, mask, *, image):
    kernel = tuple(mask.shape[:2])
    if (len(image) != 4 or mask.dtype.kind != "b" or ct.ndim != 4
            or tuple(mask.shape[2:]) != tuple(ct.shape)
            or tuple(ct.shape) != tuple(image[:2]) + _pool_out(image[2], image[3], kernel)):
        raise ShapeError(f"unpool: values {ct.short()} / mask {mask.short()} do not fit image {image}")
    return Aval(tuple(image), ct.dtype, False)


def _emit_unpool(e, *, image):
    kh, kw = e.avals[1].shape[:2]
    ohw = e.avals[0].shape[2:]
    mask = e.atoms[1]
    # np.empty when the windows tile the image (every element is written below)
    alloc = "empty" if (kh * ohw[0], kw * ohw[1]) == tuple(image[2:]) else "zeros"
    # The values are read kh·kw times: copy a transposed view (a batch-last convolution's
    # input gradient) into C order once; a no-op for contiguous values.  A multiply by
    # the mask is fast but gives inf * 0 = nan beside an infinite value: then the
    # unselected elements are written as exact zeros.
    window = _pool_slice(e.out, '_i', '_j', (kh, kw), ohw, image[2:])
    return [f"{e.out} = np.{alloc}({tuple(image)!r}, dtype=np.{e.aval.dtype.name})",
            f"_values = np.ascontiguousarray({e.args[0]})",
            "_finite = np.isfinite(_values.sum())",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            "        if _finite:",
            f"            np.multiply(_values, {mask}[_i, _j], out={window})",
            "        else:  # inf * 0: an unselected element's gradient is 0",
            f"            {window} = np.where({mask}[_i, _j], _values, 0)"]


def _sym_unpool(ct, mask, *, image):
    ct, mask = np.asarray(ct, dtype=object), np.asarray(mask, dtype=object)
    kh, kw = mask.shape[:2]
    oh, ow = ct.shape[2:]
    out = np.zeros(image, dtype=object)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + kh * oh:kh, j:j + kw * ow:kw] = np.vectorize(
                lambda v, c: sp.Piecewise((v, c), (0, True)), otypes=[object])(ct, mask[i, j])
    return out


unpool = primitive(
    name="unpool", array_api=XP.unpool, samples=_unpool_samples, never_inline_args=True, shape=_unpool_rule, numpy=_emit_unpool,
    vjp=lambda ct, v, mask, *, out, image: (pool_select(ct, mask), None),
    jvp=lambda t, v, mask, *, out, image: unpool(t[0], mask, image=image),
    sympy=_sym_unpool, label="unpool", family="conv", flops=lambda out, *a, **p: out.size,
    doc="An image that holds each value at its window's masked element (zeros elsewhere).")


def _select_rule(y, mask):
    kernel = tuple(mask.shape[:2])
    if (y.ndim != 4 or mask.dtype.kind != "b" or mask.ndim != 6
            or tuple(mask.shape[2:]) != tuple(y.shape[:2]) + _pool_out(y.shape[2], y.shape[3], kernel)):
        raise ShapeError(f"pool_select: mask {mask.short()} does not fit image {y.short()}")
    return Aval(tuple(mask.shape[2:]), y.dtype, False)


def _emit_select(e):
    kh, kw = e.avals[1].shape[:2]
    hw, ohw = e.avals[0].shape[2:], e.aval.shape[2:]
    y, mask = e.atoms
    return [f"{e.out} = np.zeros({e.aval.shape!r}, dtype=np.{e.aval.dtype.name})",
            f"for _i in range({kh}):",
            f"    for _j in range({kw}):",
            f"        {e.out} += np.where({mask}[_i, _j], "
            f"{_pool_slice(y, '_i', '_j', (kh, kw), ohw, hw)}, 0)"]


def _sym_select(y, mask):
    y, mask = np.asarray(y, dtype=object), np.asarray(mask, dtype=object)
    win = _pool_windows(y, mask.shape[:2], *mask.shape[4:])
    pick = np.vectorize(lambda v, c: sp.Piecewise((v, c), (0, True)), otypes=[object])(win, mask)
    return pick.sum(axis=(0, 1))


pool_select = primitive(
    name="pool_select", array_api=XP.pool_select, samples=_pool_select_samples, never_inline_args=True, shape=_select_rule, numpy=_emit_select,
    vjp=lambda ct, y, mask, *, out: (unpool(ct, mask, image=tuple(y.shape)), None),
    jvp=lambda t, y, mask, *, out: pool_select(t[0], mask),
    sympy=_sym_select, label="select", family="conv", flops=lambda out, y, m: m.size,
    doc="Each window's masked element of an NCHW image (the transpose of unpool).")
