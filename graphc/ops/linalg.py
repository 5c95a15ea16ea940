"""matmul: 1-d, 2-d and batched (NumPy's ``@`` semantics)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..primitive import Aval, primitive
from . import _samples as S
from .shape import contiguous, reshape, transpose, unbroadcast


def _matmul_rule(x, y):
    key = (x.shape, x.dtype, x.weak, y.shape, y.dtype, y.weak)
    out = _MATMUL_AVALS.get(key)          # (an Aval is frozen: one result per operand pair)
    if out is None:
        out = _matmul_aval(x, y)
        if len(_MATMUL_AVALS) >= 64:      # (shapes: bounded and small, so no leak)
            _MATMUL_AVALS.clear()
        _MATMUL_AVALS[key] = out
    return out


_MATMUL_AVALS: dict = {}


def _matmul_aval(x, y):
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul does not take 0-d operands ({x.short()} @ {y.short()})",
                         hint="use * for scalars")
    xs = x.shape if x.ndim > 1 else (1,) + x.shape
    ys = y.shape if y.ndim > 1 else y.shape + (1,)
    if xs[-1] != ys[-2]:
        raise ShapeError(f"matmul: inner dimensions differ in {x.short()} @ {y.short()} "
                         f"({xs[-1]} != {ys[-2]})",
                         hint="check the weight's orientation: dense weights are (in, out), "
                              "used as x @ W")
    try:
        batch = np.broadcast_shapes(xs[:-2], ys[:-2]) if xs[:-2] or ys[:-2] else ()
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {x.short()} and {y.short()} do not broadcast") from None
    shape = tuple(batch) + ((xs[-2],) if x.ndim > 1 else ()) + ((ys[-1],) if y.ndim > 1 else ())
    key = (x.dtype, x.weak, y.dtype, y.weak)
    dtype = _RESULT_TYPES.get(key)
    if dtype is None:         # (np.result_type, once per pair of operand types)
        dtype = _RESULT_TYPES[key] = np.result_type(x.np_proxy(), y.np_proxy())
    return Aval(shape, dtype, False)


_RESULT_TYPES: dict = {}


def _matmul_jvp(t, x, y, *, out):
    from .elementwise import tangent_sum
    tx, ty = t
    return tangent_sum(None if tx is None else matmul(tx, y), None if ty is None else matmul(x, ty))


def _matmul_vjp(ct, x, y, *, out):
    if x.ndim == 1 and y.ndim == 1:
        return ct * y, ct * x
    x2 = x if x.ndim > 1 else reshape(x, shape=(1,) + x.shape)
    y2 = y if y.ndim > 1 else reshape(y, shape=y.shape + (1,))
    xb, yb = x2.shape[:-2], y2.shape[:-2]
    out2 = (tuple(np.broadcast_shapes(xb, yb)) if xb or yb else ()) + (x2.shape[-2], y2.shape[-1])
    ct2 = ct if ct.shape == out2 else reshape(ct, shape=out2)
    dx = unbroadcast(_times_mT(ct2, y2), x2.shape)
    dy = unbroadcast(_mT(x2) @ ct2, y2.shape)
    if x.ndim == 1:
        dx = reshape(dx, shape=x.shape)
    if y.ndim == 1:
        dy = reshape(dy, shape=y.shape)
    return dx, dy


def _times_mT(a, b):
    """``a @ b.T``; for 2-d operands with a short ``a`` and a long contraction, computed as
    ``(b @ a.T).T``, the same products in the GEMM orientation OpenBLAS runs faster.

    That is a convolution's weight gradient, ``d (F, N·OH·OW) @ windows.T``: measured
    with float32 on this project's 2-core EPYC with AVX-512 (2026-12-03), (16, K) @ (K, 150)
    took 0.53-0.61 of the time swapped with OpenBLAS's SkylakeX kernels, K from 1,600 to
    25,600, at one and two threads (LeNet conv2 at batch 256: 4.5 -> 2.7 ms), and 0.83-1.01
    with its Haswell kernels; the whole LeNet value_and_grad 0.96x (batch 64) and 0.93x
    (batch 256), paired.  A dense layer's (B, out) @ (out, in) is slower swapped (1.2-1.5x),
    hence the shape test.  The summation order within each product differs
    (float rounding, not a different value).  The result is copied to C order (m·k
    elements against the product's m·k·c multiply-adds), as a product's own would be.
    """
    if a.ndim == 2 and b.ndim == 2:
        (m, c), k = a.shape, b.shape[0]
        if isinstance(m, int) and isinstance(k, int) and isinstance(c, int) \
                and m < k and c >= 8 * k:
            return contiguous(_mT(b @ _mT(a)))   # C order, as NumPy's own product
    return a @ _mT(b)


def _mT(a):
    nd = a.ndim
    axes = _MT_AXES.get(nd)
    if axes is None:
        axes = _MT_AXES[nd] = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    # The last backward pass of a compiled build (nothing differentiates it again; CSE
    # follows) makes one W.T per W, not one per use: graphc/transforms.py sets the memo.
    trace = getattr(a, "_trace", None)
    memo = getattr(trace, "shared_transposes", None)
    if memo is None or a._view is not None:
        return transpose(a, axes=axes)
    nid = memo.get((a.node, axes))
    if nid is None or nid not in trace.graph:
        t = transpose(a, axes=axes)
        if trace.graph[t.node].op == "transpose":     # (not a folded constant: CSE keeps
            memo[a.node, axes] = t.node               # those apart, so must this)
        return t
    return trace.tracer(nid)


_MT_AXES: dict = {}     # {ndim: the axes that swap the last two}


def _matmul_flops(out, x, y):
    k = x.shape[-1]
    return 2 * k * max(out.size, 1)


def _matmul_samples(d):
    mm, f32 = np.matmul, np.float32
    shapes = [((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)), ((3, 4), (4, 5)),
              ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)),
              ((4,), (2, 4, 5)), ((2, 3, 4), (4,))]
    return [S.Sample((d.rnd(*a), d.rnd(*b)), {}, mm, f"{a}@{b}") for a, b in shapes] + [
        S.Sample((d.rnd(3, 4, dtype=f32), d.rnd(4, 2, dtype=f32)), {}, mm, "f32"),
        S.Sample((d.rnd(3, 4, dtype=f32), d.rnd(4, 2)), {}, mm, "f32@f64"),
        S.Sample((d.rnd(2, 3), d.rnd(3, 2)), {}, mm, "2x3 @ 3x2", proof=True)]


matmul = primitive(
    name="matmul", samples=_matmul_samples, shape=_matmul_rule, numpy="{0} @ {1}", prec=12, vjp=_matmul_vjp,
    jvp=_matmul_jvp,
    sympy=lambda x, y: np.matmul(x, y), label="@", family="linalg", flops=_matmul_flops,
    fresh_result=True)
