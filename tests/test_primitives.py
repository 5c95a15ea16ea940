"""Registry-driven primitive tests.

Every primitive in ``graphc.primitive.REGISTRY`` has sample cases in ``CASES``
below (a test fails if one is missing), and each case is checked three ways:

(a) the shape/dtype rule on avals matches what eager evaluation returns, and
    eager evaluation matches an independent NumPy reference;
(b) for differentiable primitives, graphc.grad of ``sum(prim(...) * R)``
    matches central finite differences in float64, for every float input;
(c) the generated code (graphc.compile) agrees with eager evaluation.

A second table checks the NumPy API surface (ufuncs, array functions,
methods, indexing) inside traced functions, for values and gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import graphc
from graphc.primitive import REGISTRY
from graphc.avals import aval_of

from _fd import fd_grad_args, is_float_leaf

_rng = np.random.default_rng(20240607)
F32 = np.float32
F64 = np.float64


def rnd(*shape, dtype=F64):
    return _rng.standard_normal(shape).astype(dtype)


def pos(*shape, dtype=F64, lo=0.5, hi=2.0):
    return _rng.uniform(lo, hi, shape).astype(dtype)


def away(*shape, dtype=F64, gap=0.2):
    """Random values at least ``gap`` away from zero (for abs, sign, kinks)."""
    mag = _rng.uniform(gap, 1.5, shape)
    sgn = np.where(_rng.random(shape) < 0.5, -1.0, 1.0)
    return (mag * sgn).astype(dtype)


def ints(*shape, hi=5):
    return _rng.integers(0, hi, shape).astype(np.int64)


def bools(*shape):
    return _rng.random(shape) < 0.5


@dataclass
class Case:
    args: tuple                       # NumPy arrays, NumPy/Python scalars (Python ints are static)
    params: dict
    ref: Callable                     # independent NumPy reference of prim(*args, **params)
    desc: str = ""
    fd_ref: Callable | None = None    # float64 stand-in for FD (e.g. astype to float32)
    grad: bool = True                 # False: value checks only (e.g. -inf padding)
    xfail: str | None = None          # known bug outside this suite's files (strict xfail)


# --- index helpers (the documented static ``spec`` format of graphc.ops.index) -----
def _spec(key):
    """``(spec, arrays)`` for a NumPy index key, written out independently of graphc."""
    if not isinstance(key, tuple):
        key = (key,)
    spec, arrays = [], []
    for k in key:
        if isinstance(k, slice):
            spec.append(("slice", k.start, k.stop, k.step))
        elif k is None:
            spec.append(("none",))
        elif k is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(k, int):
            spec.append(("int", k))
        else:
            spec.append(("array", len(arrays)))
            arrays.append(np.asarray(k, dtype=np.int64))
    return tuple(spec), arrays


def _sub_arrays(key, arrays):
    """``key`` with its array parts replaced by ``arrays`` (in order)."""
    if not isinstance(key, tuple):
        key = (key,)
    it = iter(arrays)
    return tuple(next(it) if isinstance(k, (np.ndarray, list)) else k for k in key)


def getitem_case(shape, key, desc):
    spec, arrays = _spec(key)
    x = rnd(*shape)
    return Case((x, *arrays), {"spec": spec}, lambda x, *idx: x[_sub_arrays(key, idx)], desc)


def scatter_case(shape, key, desc):
    spec, arrays = _spec(key)
    vshape = np.zeros(shape)[_sub_arrays(key, arrays)].shape
    v = rnd(*vshape)

    def ref(v, *idx):
        z = np.zeros(shape, v.dtype)
        np.add.at(z, _sub_arrays(key, idx), v)
        return z
    return Case((v, *arrays), {"spec": spec, "shape": shape}, ref, desc)


def reduce_case(np_fn, x, axis, keepdims, desc=""):
    return Case((x,), {"axis": axis, "keepdims": keepdims},
                lambda x: np_fn(x, axis=axis, keepdims=keepdims),
                desc or f"{x.dtype}{x.shape}-axis{axis}-{'keep' if keepdims else 'drop'}")


def unary_cases(np_fn, gen):
    return [Case((gen(3, 4),), {}, np_fn, "f64(3,4)"),
            Case((gen(5, dtype=F32),), {}, np_fn, "f32(5)"),
            Case((np.asarray(gen(1)[0]),), {}, np_fn, "f64()")]


def binary_cases(np_fn, gx=rnd, gy=rnd):
    return [Case((gx(3, 4), gy(3, 4)), {}, np_fn, "same-shape"),
            Case((gx(3, 4), gy(4)), {}, np_fn, "bcast-(3,4)-(4,)"),
            Case((gx(2, 1, 4), gy(3, 1)), {}, np_fn, "bcast-(2,1,4)-(3,1)"),
            Case((gx(), gy(3)), {}, np_fn, "bcast-()-(3,)"),
            Case((gx(3, dtype=F32), gy(3, dtype=F32)), {}, np_fn, "f32"),
            Case((gx(3, dtype=F32), float(gy(1)[0])), {}, np_fn, "f32-pyfloat(NEP50)"),
            Case((gx(3, dtype=F32), gy(3)), {}, np_fn, "f32-f64-promote")]


def compare_cases(np_fn):
    x = np.array([1.0, 2.0, 3.0, -4.0])
    y = np.array([1.0, 0.5, 3.0, 4.0])       # ties at 0 and 2
    return [Case((x, y), {}, np_fn, "ties"),
            Case((rnd(3, 4), rnd(4)), {}, np_fn, "bcast"),
            Case((ints(3, 4), np.array([1, 2, 3, 4])), {}, np_fn, "int"),
            Case((rnd(3, dtype=F32), 0.0), {}, np_fn, "f32-pyfloat")]


def _maxmin_cases(np_fn):
    y = rnd(4)
    return [Case((away(3, 4) + y, y), {}, np_fn, "bcast-(3,4)-(4,)"),
            Case((np.array([[-1.0], [0.25], [1.5]]), np.array([[-0.5, 0.7, 1.1, 2.0]])), {},
                 np_fn, "bcast-(3,1)-(1,4)"),
            Case((away(3, 4), 0.0), {}, np_fn, "pyfloat-zero"),
            Case((away(5, dtype=F32) + 1, np.ones(5, F32)), {}, np_fn, "f32")]


def _astype_case(x, dtype):
    dtype = np.dtype(dtype)
    return Case((x,), {"dtype": dtype}, lambda x: x.astype(dtype), f"{x.dtype}->{dtype}",
                fd_ref=lambda x: np.asarray(x, np.float64))


def _matmul_cases():
    mm = np.matmul
    shapes = [((4,), (4,)), ((4,), (4, 5)), ((3, 4), (4,)), ((3, 4), (4, 5)),
              ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)),
              ((4,), (2, 4, 5)), ((2, 3, 4), (4,))]
    cases = [Case((rnd(*a), rnd(*b)), {}, mm, f"{a}@{b}") for a, b in shapes]
    cases.append(Case((rnd(3, 4, dtype=F32), rnd(4, 2, dtype=F32)), {}, mm, "f32"))
    cases.append(Case((rnd(3, 4, dtype=F32), rnd(4, 2)), {}, mm, "f32@f64"))
    return cases


def _sum_cases():
    s = np.sum
    return [reduce_case(s, rnd(3, 4), (1,), False), reduce_case(s, rnd(3, 4), (1,), True),
            reduce_case(s, rnd(3, 4), (0, 1), False), reduce_case(s, rnd(3, 4), (0, 1), True),
            reduce_case(s, rnd(2, 3, 4), (0, 2), False), reduce_case(s, rnd(2, 3, 4), (0, 2), True),
            reduce_case(s, rnd(2, 3, 4), (1,), False), reduce_case(s, rnd(3, dtype=F32), (0,), False),
            reduce_case(s, np.asarray(rnd(1)[0]), (), False, "0-d"),
            reduce_case(s, rnd(3), (), False, "empty-axis-tuple"),
            reduce_case(s, ints(3, 4), (1,), False), reduce_case(s, bools(3, 4), (0,), True)]


def _extreme_cases(np_fn):
    return [reduce_case(np_fn, rnd(3, 4), (1,), False), reduce_case(np_fn, rnd(3, 4), (1,), True),
            reduce_case(np_fn, rnd(3, 4), (0, 1), False),
            reduce_case(np_fn, rnd(2, 3, 4), (0, 2), True),
            reduce_case(np_fn, rnd(5, dtype=F32), (0,), False),
            reduce_case(np_fn, ints(3, 4), (0,), False)]


def _pow_cases():
    p = np.power
    return [Case((pos(3, 4), rnd(3, 4)), {}, p, "pos-base-array-exp"),
            Case((pos(3, 4), rnd(4)), {}, p, "bcast-exp"),
            Case((pos(3, 4), 2), {}, p, "static-int-2"),
            Case((rnd(3, 4), 3), {}, p, "static-int-3-neg-base"),
            Case((pos(3, 4), 0.5), {}, p, "pyfloat-exp"),
            Case((2.0, rnd(3, 4)), {}, p, "pyfloat-base"),
            Case((pos(4, dtype=F32), 1.5), {}, p, "f32-pyfloat-exp"),
            Case((pos(3), np.asarray(rnd(1)[0])), {}, p, "0-d-exp")]


def _where_cases():
    w = np.where
    return [Case((bools(3, 4), rnd(3, 4), rnd(4)), {}, w, "bcast-y"),
            Case((bools(3, 1), rnd(1, 4), rnd(3, 4)), {}, w, "bcast-all"),
            Case((bools(3, 4), rnd(3, 4), 0.0), {}, w, "pyfloat-y"),
            Case((bools(4), rnd(4, dtype=F32), rnd(4, dtype=F32)), {}, w, "f32")]


def _masked_mul_ref(x, w):
    return np.where(np.asarray(w) != 0, np.multiply(x, w), 0).astype(np.result_type(x, w))


def _masked_mul_cases():
    r = _masked_mul_ref
    inf_x = np.array([np.inf, -np.inf, np.nan, 2.0])
    return [Case((rnd(3, 4), bools(3, 4)), {}, r, "bool-mask"),
            Case((rnd(3, 4), bools(4)), {}, r, "bcast-mask"),
            Case((rnd(3, 4), np.array([0.0, 0.5, 1.0, 0.0])), {}, r, "weights"),
            Case((rnd(5, dtype=F32), bools(5)), {}, r, "f32"),
            Case((inf_x, np.array([False, False, False, True])), {}, r, "inf-masked-out",
                 grad=False),
            Case((np.float64(np.inf), np.False_), {}, r, "0-d", grad=False)]


# --- graphc.ops.nn primitives ---------------------------------------------------------
def _log_softmax_ref(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _im2col_ref(x, kernel, stride, padding, dilation, pad_value):
    """Sliding windows written as plain loops (independent of graphc's emission)."""
    (n, c, h, w), rest = x.shape[:4], x.shape[4:]      # trailing axes ride along
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw) + rest, pad_value, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    out = np.empty((n, c, oh, ow) + rest + (kh, kw), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    out[:, :, i, j, ..., a, b] = xp[:, :, i * sh + a * dh, j * sw + b * dw]
    return out


def _col2im_ref(cols, image, stride, padding, dilation):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    (oh, ow), (kh, kw) = cols.shape[2:4], cols.shape[-2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw) + rest, dtype=cols.dtype)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    out[:, :, i * sh + a * dh, j * sw + b * dw] += cols[:, :, i, j, ..., a, b]
    return out[:, :, ph:ph + h, pw:pw + w]


def _im2col_case(xshape, kernel, stride, padding, dilation, pad_value=0.0, dtype=F64, grad=True):
    p = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation, pad_value=pad_value)
    return Case((rnd(*xshape, dtype=dtype),), p, lambda x: _im2col_ref(x, **p),
                f"{xshape}-k{kernel}-s{stride}-p{padding}-d{dilation}-pad{pad_value}", grad=grad)


def _col2im_case(image, kernel, stride, padding, dilation):
    (n, c, h, w), rest = image[:4], tuple(image[4:])
    oh = _out_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = _out_size(w, kernel[1], stride[1], padding[1], dilation[1])
    p = dict(image=image, stride=stride, padding=padding, dilation=dilation)
    return Case((rnd(n, c, oh, ow, *rest, *kernel),), p, lambda cols: _col2im_ref(cols, **p),
                f"{image}-k{kernel}-s{stride}-p{padding}-d{dilation}")


def _max_pool_ref(x, kernel):
    """Max over whole (kh, kw) windows, written as loops; partial windows dropped."""
    (kh, kw), (n, c, h, w) = kernel, x.shape
    out = np.empty((n, c, h // kh, w // kw), dtype=x.dtype)
    for i in range(h // kh):
        for j in range(w // kw):
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


def _mask_case(x, kernel, desc):
    m = _max_pool_ref(x, kernel)
    return Case((x, m), {"kernel": kernel}, lambda x, m: _first_max_ref(x, m, kernel), desc)


def _random_mask(kernel, out_shape):
    """A first-max mask of random data: one True per window."""
    x = rnd(*out_shape[:2], out_shape[2] * kernel[0], out_shape[3] * kernel[1])
    return _first_max_ref(x, _max_pool_ref(x, kernel), kernel)


def _pool_cases():
    ties = np.array([[[[1.0, 3.0, 0.0, 0.0, 7.0],
                       [3.0, 2.0, 0.0, 0.0, 7.0],
                       [5.0, 5.0, -1.0, 4.0, 7.0],
                       [5.0, 5.0, 4.0, 4.0, 7.0]]]])
    m22 = _random_mask((2, 2), (1, 2, 2, 2))
    m23 = _random_mask((2, 3), (2, 1, 2, 2))
    m_small = _random_mask((2, 2), (1, 1, 1, 2))       # small enough for the SymPy proof
    return {
        "max_pool": [Case((rnd(1, 2, 4, 4),), {"kernel": (2, 2)},
                          lambda x: _max_pool_ref(x, (2, 2)), "k2"),
                     Case((rnd(2, 1, 5, 7),), {"kernel": (2, 3)},
                          lambda x: _max_pool_ref(x, (2, 3)), "k2x3-cropped"),
                     Case((rnd(1, 1, 6, 6),), {"kernel": (3, 3)},
                          lambda x: _max_pool_ref(x, (3, 3)), "k3-loop"),
                     Case((rnd(1, 2, 1, 6, dtype=F32),), {"kernel": (1, 2)},
                          lambda x: _max_pool_ref(x, (1, 2)), "f32-1d")],
        "max_pool_mask": [_mask_case(ties, (2, 2), "ties-first"),
                          _mask_case(rnd(2, 1, 5, 7), (2, 3), "cropped"),
                          _mask_case(rnd(1, 2, 4, 4, dtype=F32), (2, 2), "f32")],
        "unpool": [Case((rnd(1, 1, 1, 2), m_small), {"image": (1, 1, 2, 4)},
                        lambda v, m: _unpool_ref(v, m, (1, 1, 2, 4)), "small"),
                   Case((rnd(1, 2, 2, 2), m22), {"image": (1, 2, 4, 4)},
                        lambda v, m: _unpool_ref(v, m, (1, 2, 4, 4)), "k2"),
                   Case((rnd(2, 1, 2, 2), m23), {"image": (2, 1, 5, 7)},
                        lambda v, m: _unpool_ref(v, m, (2, 1, 5, 7)), "k2x3-cropped"),
                   Case((rnd(1, 2, 2, 2, dtype=F32), m22), {"image": (1, 2, 4, 4)},
                        lambda v, m: _unpool_ref(v, m, (1, 2, 4, 4)), "f32")],
        "pool_select": [Case((rnd(1, 1, 2, 4), m_small), {}, _pool_select_ref, "small"),
                        Case((rnd(1, 2, 4, 4), m22), {}, _pool_select_ref, "k2"),
                        Case((rnd(2, 1, 5, 7), m23), {}, _pool_select_ref, "k2x3-cropped"),
                        Case((rnd(1, 2, 4, 4, dtype=F32), m22), {}, _pool_select_ref, "f32")],
    }


def _nn_cases():
    idx = np.array([[3], [0], [2]])
    return {
        # stop_gradient: identity forward; its derivative is *defined* as zero, so the
        # finite-difference stand-in is a constant function.
        "contiguous": [Case((rnd(3, 4),), {}, lambda x: x, "f64"),
                       Case((rnd(2, 3, dtype=F32),), {}, lambda x: x, "f32")],
        "identity": [Case((rnd(3, 4),), {}, lambda x: x, "f64"),
                     Case((rnd(3, dtype=F32),), {}, lambda x: x, "f32")],
        "stop_gradient": [Case((rnd(3, 4),), {}, lambda x: x, "f64",
                               fd_ref=lambda x: np.zeros_like(x)),
                          Case((rnd(3, dtype=F32),), {}, lambda x: x, "f32",
                               fd_ref=lambda x: np.zeros_like(x))],
        "log_softmax": [Case((rnd(3, 5),), {"axis": 1}, lambda x: _log_softmax_ref(x, 1), "axis1"),
                        Case((rnd(3, 5),), {"axis": 0}, lambda x: _log_softmax_ref(x, 0), "axis0"),
                        Case((rnd(2, 3, 4) * 6 + 50,), {"axis": 2},
                             lambda x: _log_softmax_ref(x, 2), "large-logits"),
                        Case((rnd(2, 5, dtype=F32),), {"axis": 1},
                             lambda x: _log_softmax_ref(x, 1), "f32")],
        "im2col": [_im2col_case((1, 2, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
                   _im2col_case((2, 1, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2)),
                   _im2col_case((1, 1, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), pad_value=-np.inf,
                                grad=False),
                   _im2col_case((1, 2, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1), dtype=F32),
                   # a trailing (batch) axis, as conv2d's batch-last layout uses it
                   _im2col_case((1, 2, 5, 4, 3), (3, 2), (1, 1), (1, 1), (1, 1)),
                   _im2col_case((1, 1, 6, 7, 2), (2, 3), (2, 1), (1, 0), (1, 2))],
        "col2im": [_col2im_case((1, 2, 5, 5), (3, 3), (1, 1), (0, 0), (1, 1)),
                   _col2im_case((2, 1, 6, 7), (2, 3), (2, 1), (1, 0), (1, 2)),
                   _col2im_case((1, 1, 5, 4), (2, 2), (3, 2), (1, 1), (1, 1)),
                   _col2im_case((1, 2, 5, 4, 3), (3, 2), (1, 1), (1, 1), (1, 1)),
                   _col2im_case((1, 1, 6, 7, 2), (2, 3), (2, 1), (1, 0), (1, 2))],
        "argmax": [Case((np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]]),), {"axis": 1},
                        lambda x: x.argmax(axis=1), "ties-first"),
                   Case((rnd(3, 4),), {"axis": 0}, lambda x: x.argmax(axis=0), "axis0")],
        "take_along_axis": [Case((rnd(3, 4), idx), {"axis": 1},
                                 lambda x, i: np.take_along_axis(x, i, axis=1), "axis1"),
                            Case((rnd(4, 3), idx.T), {"axis": 0},
                                 lambda x, i: np.take_along_axis(x, i, axis=0), "axis0")],
        "put_along_axis": [Case((rnd(3, 1), idx), {"shape": (3, 4), "axis": 1},
                                lambda v, i: _put_ref(v, i, (3, 4), 1), "axis1"),
                           Case((rnd(1, 3), idx.T), {"shape": (4, 3), "axis": 0},
                                lambda v, i: _put_ref(v, i, (4, 3), 0), "axis0")],
        "relu": [Case((away(3, 4),), {}, lambda x: np.where(x > 0, x, 0.0), "f64"),
                 Case((away(5, dtype=F32),), {}, lambda x: np.where(x > 0, x, np.float32(0)), "f32")],
        "sigmoid": [Case((rnd(3, 4),), {}, _sigmoid_ref, "f64"),
                    Case((rnd(5, dtype=F32),), {}, _sigmoid_ref, "f32"),
                    Case((np.array([-40.0, -12.0, 0.0, 12.0, 40.0]),), {}, _sigmoid_ref, "tails")],
        "softplus": [Case((rnd(3, 4),), {}, _softplus_ref, "f64"),
                     Case((rnd(5, dtype=F32),), {}, _softplus_ref, "f32"),
                     Case((np.array([-40.0, -12.0, 0.0, 12.0, 40.0]),), {}, _softplus_ref, "tails"),
                     Case((np.array([-800.0, 800.0]),), {}, _softplus_ref, "no-overflow",
                          grad=False)],
        "bernoulli": [Case((np.int64(5),), {"shape": (3, 4), "rate": 0.3},
                           lambda k: np.random.default_rng(int(k)).random((3, 4)) >= 0.3, "key5"),
                      Case((np.array(7),), {"shape": (2, 5), "rate": 0.5},
                           lambda k: np.random.default_rng(int(k)).random((2, 5)) >= 0.5,
                           "0-d-array-key")],
    }


def _sigmoid_ref(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus_ref(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _put_ref(v, idx, shape, axis):
    z = np.zeros(shape, v.dtype)
    np.put_along_axis(z, idx, v, axis=axis)
    return z


CASES: dict[str, list[Case]] = {
    "add": binary_cases(np.add),
    "sub": binary_cases(np.subtract),
    "mul": binary_cases(np.multiply),
    "div": binary_cases(np.true_divide, gy=away),
    "neg": unary_cases(np.negative, rnd),
    "pow": _pow_cases(),
    "exp": unary_cases(np.exp, rnd),
    "log": unary_cases(np.log, pos),
    "sin": unary_cases(np.sin, rnd),
    "cos": unary_cases(np.cos, rnd),
    "tan": unary_cases(np.tan, lambda *s, dtype=F64: _rng.uniform(-1, 1, s).astype(dtype)),
    "tanh": unary_cases(np.tanh, rnd),
    "sqrt": unary_cases(np.sqrt, pos),
    "log1p": unary_cases(np.log1p, pos),
    "expm1": unary_cases(np.expm1, rnd),
    "abs": unary_cases(np.abs, away),
    "sign": unary_cases(np.sign, away),
    "maximum": _maxmin_cases(np.maximum),
    "minimum": _maxmin_cases(np.minimum),
    "gt": compare_cases(np.greater),
    "ge": compare_cases(np.greater_equal),
    "lt": compare_cases(np.less),
    "le": compare_cases(np.less_equal),
    "eq": compare_cases(np.equal),
    "ne": compare_cases(np.not_equal),
    "logical_and": [Case((bools(3, 4), bools(4)), {}, np.logical_and, "bcast")],
    "logical_or": [Case((bools(3, 4), bools(4)), {}, np.logical_or, "bcast")],
    "logical_not": [Case((bools(3, 4),), {}, np.logical_not, "bool")],
    "where": _where_cases(),
    "masked_mul": _masked_mul_cases(),
    "astype": [_astype_case(rnd(3, 4, dtype=F32), F64), _astype_case(rnd(3, 4), F32),
               _astype_case(ints(3, 4), F64), _astype_case(bools(5), F32)],
    "sum": _sum_cases(),
    "max": _extreme_cases(np.max),
    "min": _extreme_cases(np.min),
    "reshape": [Case((x,), {"shape": s}, (lambda s: lambda x: x.reshape(s))(s), f"{x.shape}->{s}")
                for x, s in [(rnd(2, 3, 4), (6, 4)), (rnd(2, 3, 4), (24,)),
                             (rnd(2, 3, 4), (4, 1, 6)), (np.asarray(rnd(1)[0]), (1, 1)),
                             (rnd(1, 1), ()), (rnd(6, dtype=F32), (2, 3))]],
    "transpose": [Case((x,), {"axes": a}, (lambda a: lambda x: x.transpose(a))(a), f"{x.shape}-{a}")
                  for x, a in [(rnd(2, 3, 4), (2, 0, 1)), (rnd(2, 3, 4), (1, 0, 2)),
                               (rnd(2, 3, 4), (0, 2, 1)), (rnd(2, 3, 4), (2, 1, 0)),
                               (rnd(3, 4), (1, 0)), (rnd(3, 4, dtype=F32), (1, 0))]],
    "broadcast_to": [Case((x,), {"shape": s}, (lambda s: lambda x: np.broadcast_to(x, s))(s),
                          f"{x.shape}->{s}")
                     for x, s in [(rnd(3), (2, 3)), (rnd(3, 1), (3, 4)),
                                  (np.asarray(rnd(1)[0]), (2, 2)), (rnd(1, 4), (2, 3, 4)),
                                  (rnd(2, 1, dtype=F32), (2, 5))]],
    "concatenate": [
        Case((rnd(2, 3), rnd(1, 3), rnd(3, 3)), {"axis": 0},
             lambda *xs: np.concatenate(xs, axis=0), "3-inputs-axis0"),
        Case((rnd(2, 1), rnd(2, 3), rnd(2, 2)), {"axis": 1},
             lambda *xs: np.concatenate(xs, axis=1), "3-inputs-axis1"),
        Case((rnd(2, 3, 1), rnd(2, 3, 2)), {"axis": 2},
             lambda *xs: np.concatenate(xs, axis=2), "3d-axis2"),
        Case((rnd(2, dtype=F32), rnd(3), rnd(1, dtype=F32)), {"axis": 0},
             lambda *xs: np.concatenate(xs, axis=0), "mixed-f32-f64")],
    "getitem": [
        getitem_case((5,), slice(1, 4), "[1:4]"),
        getitem_case((4, 5), (slice(None), slice(1, 3)), "[:,1:3]"),
        getitem_case((4, 5), (slice(None, None, 2), slice(None, None, -1)), "[::2,::-1]"),
        getitem_case((4, 5), 1, "[1]"),
        getitem_case((4, 5), (1, -1), "[1,-1]"),
        getitem_case((3, 4), (None, slice(None), 1), "[None,:,1]"),
        getitem_case((2, 3, 4), (Ellipsis, 1), "[...,1]"),
        getitem_case((2, 3), (Ellipsis, None), "[...,None]"),
        getitem_case((2, 3, 4), (1, Ellipsis, None, slice(2, None)), "[1,...,None,2:]"),
        getitem_case((4,), np.array([0, 2, 0]), "[[0,2,0]]-repeated"),
        getitem_case((3, 4), (slice(None), np.array([0, 2, 0])), "[:,[0,2,0]]-mixed"),
        getitem_case((3, 4), (np.array([0, 1, 0]), np.array([2, 0, 2])), "[[0,1,0],[2,0,2]]"),
        getitem_case((4, 3), np.array([[0, 1], [1, 3]]), "[2d-index]"),
        getitem_case((3, 4, 2), (np.array([0, 2]), slice(None), np.array([1, 0])),
                     "[[0,2],:,[1,0]]-separated"),
        getitem_case((3, 4), (1, np.array([0, 3, 3])), "[1,[0,3,3]]"),
        getitem_case((3, 4), (np.array([2, 0]), slice(1, 3), None), "[[2,0],1:3,None]"),
    ],
    "scatter_add": [
        scatter_case((4,), np.array([1, 1, 0]), "[[1,1,0]]-repeated"),
        scatter_case((2, 3), (slice(None), np.array([0, 2, 0])), "[:,[0,2,0]]-mixed"),
        scatter_case((3, 3), (np.array([0, 0]), np.array([1, 1])), "[[0,0],[1,1]]"),
        scatter_case((4, 2), slice(1, 3), "[1:3]-static"),
        scatter_case((3, 4), (1, np.array([0, 3, 3])), "[1,[0,3,3]]"),
        scatter_case((2, 3, 4), (Ellipsis, 1), "[...,1]-static"),
        scatter_case((3, 4, 2), (np.array([0, 2]), slice(None), np.array([1, 0])),
                     "[[0,2],:,[1,0]]-separated"),
    ],
    "matmul": _matmul_cases(),
    **_nn_cases(),
    **_pool_cases(),
}


# --- flattening the table into test ids ------------------------------------------
def _all_cases():
    out = []
    for name in sorted(CASES):
        for i, case in enumerate(CASES[name]):
            out.append(_param(name, i, case))
    return out


def _param(name, i, case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(name, case, id=f"{name}-{i}-{case.desc}", marks=marks)


def _float_positions(case):
    return tuple(i for i, a in enumerate(case.args) if is_float_leaf(a))


def _eager(name, case):
    return np.asarray(REGISTRY[name](*case.args, **case.params))


def _grad_cases():
    out = []
    for name in sorted(CASES):
        prim = REGISTRY.get(name)
        if prim is None or prim.vjp is None:
            continue
        for i, case in enumerate(CASES[name]):
            if not case.grad or not _float_positions(case):
                continue
            ref_out = np.asarray(case.ref(*case.args))
            if ref_out.dtype.kind != "f":
                continue
            out.append(_param(name, i, case))
    return out


ALL_CASES = _all_cases()
GRAD_CASES = _grad_cases()


def _is_low_precision(*arrays):
    return any(np.asarray(a).dtype == F32 for a in arrays if not isinstance(a, (int, float)))


# --- coverage of the registry ----------------------------------------------------------
def test_every_primitive_has_cases():
    missing = sorted(set(REGISTRY) - set(CASES))
    assert not missing, f"primitives without test cases in CASES: {missing}"
    stale = sorted(set(CASES) - set(REGISTRY))
    assert not stale, f"CASES entries for unknown primitives: {stale}"
    assert all(CASES[name] for name in CASES)


def test_every_differentiable_primitive_has_a_gradient_case():
    covered = {p.values[0] for p in GRAD_CASES}
    want = {name for name, prim in REGISTRY.items() if prim.vjp is not None}
    # sign is differentiable (flat) and covered; comparisons have vjp None.
    assert want <= covered, f"differentiable primitives without a gradient case: {want - covered}"


# --- (a) shape rule vs eager vs NumPy ----------------------------------------------------
@pytest.mark.parametrize("name, case", ALL_CASES)
def test_shape_rule_matches_eager_and_numpy(name, case):
    prim = REGISTRY[name]
    avals = [aval_of(a) for a in case.args]
    aval = prim.shape(*avals, **case.params)
    got = _eager(name, case)
    want = np.asarray(case.ref(*case.args))
    assert tuple(aval.shape) == got.shape == want.shape
    assert np.dtype(aval.dtype) == got.dtype == want.dtype
    if want.dtype.kind == "f":
        tol = 1e-6 if _is_low_precision(want) else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


# --- (b) gradient vs central finite differences ----------------------------------------
@pytest.mark.parametrize("name, case", GRAD_CASES)
def test_vjp_matches_finite_differences(name, case):
    prim = REGISTRY[name]
    params = case.params
    out = np.asarray(case.ref(*case.args))
    R = np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype)

    def loss(*xs):
        return (prim(*xs, **params) * R).sum()

    argnums = _float_positions(case)
    grads = graphc.grad(loss, argnums=argnums)(*case.args)
    assert isinstance(grads, tuple) and len(grads) == len(argnums)

    fd_ref = case.fd_ref or case.ref
    R64 = R.astype(F64)
    fd = fd_grad_args(lambda *xs: float((np.asarray(fd_ref(*xs), F64) * R64).sum()),
                      case.args, argnums)
    low = _is_low_precision(out, *case.args)
    rtol, atol = (1e-4, 1e-5) if low else (1e-6, 1e-8)
    for i, g, want in zip(argnums, grads, fd):
        x = case.args[i]
        g = np.asarray(g)
        assert g.shape == np.shape(x), f"grad of input {i}: shape {g.shape} != {np.shape(x)}"
        assert g.dtype == np.asarray(x).dtype, f"grad of input {i}: dtype {g.dtype}"
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol,
                                   err_msg=f"{name}: gradient of input {i}")


# --- (c) generated code vs eager evaluation --------------------------------------------
@pytest.mark.parametrize("name, case", ALL_CASES)
def test_generated_code_matches_eager(name, case):
    prim = REGISTRY[name]
    params = case.params

    def apply(*xs):
        return prim(*xs, **params)

    compiled = graphc.compile(apply)
    got = np.asarray(compiled(*case.args))
    want = _eager(name, case)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    src = compiled.source(*case.args)
    assert "import numpy as np" in src and "def apply(" in src


# --- conventions ---------------------------------------------------------------------
def test_maximum_minimum_ties_split_the_cotangent():
    x = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.array([1.0, 0.0, 3.0, 5.0])   # ties at 0 and 2
    R = np.array([0.3, -1.2, 2.0, 0.7])
    dx, dy = graphc.grad(lambda x, y: (np.maximum(x, y) * R).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, [0.15, -1.2, 1.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(dy, [0.15, 0.0, 1.0, 0.7], rtol=1e-15)
    dx, dy = graphc.grad(lambda x, y: (np.minimum(x, y) * R).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(dx, [0.15, 0.0, 1.0, 0.7], rtol=1e-15)
    np.testing.assert_allclose(dy, [0.15, -1.2, 1.0, 0.0], rtol=1e-15)
    # the halves add up to the whole cotangent, also across broadcasting
    dx, dy = graphc.grad(lambda x, s: np.maximum(x, s).sum(), argnums=(0, 1))(x, 1.0)
    np.testing.assert_allclose(dx, [0.5, 1.0, 1.0, 0.0])
    assert float(dy) == 0.5 + 1.0


def test_reduce_max_ties_share_the_cotangent():
    x = np.array([[1.0, 3.0, 3.0, 2.0], [0.0, -1.0, 4.0, 4.0]])
    g = graphc.grad(lambda x: (x.max(axis=1) * np.array([2.0, 1.0])).sum())(x)
    np.testing.assert_allclose(g, [[0, 1, 1, 0], [0, 0, 0.5, 0.5]])
    g = graphc.grad(lambda x: np.min(x))(np.array([2.0, -1.0, -1.0, -1.0]))
    np.testing.assert_allclose(g, [0, 1 / 3, 1 / 3, 1 / 3])


# --- the NumPy API surface inside traced functions -----------------------------------------
@dataclass
class ApiCase:
    fn: Callable
    args: tuple
    fd_fn: Callable | None = None     # float64 stand-in for FD
    grad: bool = True


def _rows_scaled(x):
    return np.stack([row * (i + 1.0) for i, row in enumerate(x)], axis=0)


def _shape_driven(x):
    n, m = x.shape
    return x.reshape(m, n) * len(x) + x.ndim


A34, B45, V4 = rnd(3, 4), rnd(4, 5), rnd(4)
API_CASES = {
    "np.exp": ApiCase(lambda x: np.exp(x), (rnd(3, 4),)),
    "np.log": ApiCase(lambda x: np.log(x), (pos(3, 4),)),
    "np.log1p": ApiCase(lambda x: np.log1p(x), (pos(3, 4),)),
    "np.expm1": ApiCase(lambda x: np.expm1(x), (rnd(3, 4),)),
    "np.sqrt": ApiCase(lambda x: np.sqrt(x), (pos(3, 4),)),
    "np.sin+cos+tan": ApiCase(lambda x: np.sin(x) + np.cos(x) * np.tan(0.5 * x), (rnd(3, 4),)),
    "np.tanh": ApiCase(lambda x: np.tanh(x), (rnd(3, 4),)),
    "np.abs": ApiCase(lambda x: np.abs(x), (away(3, 4),)),
    "abs(x)": ApiCase(lambda x: abs(x), (away(3, 4),)),
    "np.sign*x": ApiCase(lambda x: np.sign(x) * x, (away(3, 4),)),
    "x**2": ApiCase(lambda x: x ** 2, (rnd(3, 4),)),
    "x**3": ApiCase(lambda x: x ** 3, (rnd(3, 4),)),
    "x**0.5": ApiCase(lambda x: x ** 0.5, (pos(3, 4),)),
    "x**y": ApiCase(lambda x, y: x ** y, (pos(3, 4), rnd(3, 4))),
    "x**const_array": ApiCase(lambda x: x ** np.array([2.0, 3.0, 0.5, 1.0]), (pos(3, 4),)),
    "x**const_array_of_twos": ApiCase(lambda x: x ** np.array([2.0, 2.0, 2.0, 2.0]), (pos(3, 4),)),
    "2**x": ApiCase(lambda x: 2 ** x, (rnd(3, 4),)),
    "np.square": ApiCase(lambda x: np.square(x), (rnd(3, 4),)),
    "leaky-where": ApiCase(lambda x: np.where(x > 0, x, 0.1 * x), (away(3, 4),)),
    "np.maximum(0,x)": ApiCase(lambda x: np.maximum(0, x), (away(3, 4),)),
    "np.minimum(x,y)": ApiCase(lambda x, y: np.minimum(x, y), (A34 + 0.5 * away(3, 4), A34)),
    "np.clip": ApiCase(lambda x: np.clip(x, -0.5, 0.5),
                       (np.array([[-1.2, -0.3, 0.1, 0.9], [0.45, -0.6, 2.0, -0.05]]),)),
    "arith": ApiCase(lambda x, y, z: -x + y / z - 1.0 / x * 3 - 2.0 * np.pi * y,
                     (away(3, 4), rnd(4), away(3, 1))),
    "x.sum(axis=1,keepdims)": ApiCase(lambda x: x.sum(axis=1, keepdims=True), (rnd(3, 4),)),
    "np.sum(axis=(0,2))": ApiCase(lambda x: np.sum(x, axis=(0, 2)), (rnd(2, 3, 4),)),
    "x.sum()": ApiCase(lambda x: x.sum(), (rnd(2, 3),)),
    "0-d.sum(axis=-1)": ApiCase(lambda x: x.mean().sum(axis=-1, keepdims=True) * x.max(axis=0),
                                (rnd(2, 3),)),
    "0-d.max(axis=0)": ApiCase(lambda x: np.max(x.mean(), axis=0) * x + np.min(x[0, 0], axis=-1),
                               (rnd(2, 3),)),
    "np.mean": ApiCase(lambda x: np.mean(x), (rnd(3, 4),)),
    "np.mean(axis=0)": ApiCase(lambda x: np.mean(x, axis=0), (rnd(3, 4),)),
    "x.mean(axis=(0,2),keepdims)": ApiCase(lambda x: x.mean(axis=(0, 2), keepdims=True),
                                           (rnd(2, 3, 4),)),
    "np.max(axis=1)": ApiCase(lambda x: np.max(x, axis=1), (rnd(3, 4),)),
    "x.max()": ApiCase(lambda x: x.max(), (rnd(3, 4),)),
    "np.min(axis=0)": ApiCase(lambda x: np.min(x, axis=0), (rnd(3, 4),)),
    "x[:,1:3]": ApiCase(lambda x: x[:, 1:3], (rnd(3, 4),)),
    "x[1]": ApiCase(lambda x: x[1], (rnd(3, 4),)),
    "x[::-1]": ApiCase(lambda x: x[::-1], (rnd(3, 4),)),
    "x[...,None]": ApiCase(lambda x: x[..., None], (rnd(3, 4),)),
    "x[None]": ApiCase(lambda x: x[None], (rnd(3, 4),)),
    "x[[0,2,0]]-const": ApiCase(lambda x: x[np.array([0, 2, 0])], (rnd(3, 4),)),
    "x[:,[0,2,0]]-const-list": ApiCase(lambda x: x[:, [0, 2, 0]], (rnd(3, 4),)),
    "x[arange,idx]-traced": ApiCase(lambda x, idx: x[np.arange(3), idx],
                                    (rnd(3, 4), np.array([3, 0, 3]))),
    "x[idx]-traced-repeated": ApiCase(lambda x, idx: x[idx] * 2.0,
                                      (rnd(4, 2), np.array([1, 1, 3, 1]))),
    "np.concatenate": ApiCase(lambda x, y: np.concatenate([x, y, x], axis=1),
                              (rnd(3, 2), rnd(3, 4))),
    "np.concatenate(axis=None)": ApiCase(lambda x, y: np.concatenate([x, y], axis=None),
                                         (rnd(2, 2), rnd(3))),
    "np.stack": ApiCase(lambda x, y: np.stack([x, y], axis=1), (rnd(3, 4), rnd(3, 4))),
    "np.stack(axis=-1)": ApiCase(lambda x, y: np.stack([x, y, x], axis=-1), (rnd(3), rnd(3))),
    "np.squeeze": ApiCase(lambda x: np.squeeze(x), (rnd(3, 1, 4),)),
    "np.squeeze(axis=1)": ApiCase(lambda x: np.squeeze(x, axis=1), (rnd(1, 1, 4),)),
    "np.expand_dims": ApiCase(lambda x: np.expand_dims(x, 1), (rnd(3, 4),)),
    "np.expand_dims(0,2)": ApiCase(lambda x: np.expand_dims(x, (0, 2)), (rnd(3, 4),)),
    "np.dot-2d": ApiCase(lambda x, y: np.dot(x, y), (A34, B45)),
    "np.dot-1d": ApiCase(lambda x, y: np.dot(x, y), (rnd(4), rnd(4))),
    "np.dot-scalar": ApiCase(lambda x: np.dot(x, 2.5), (rnd(3),)),
    "x.dot": ApiCase(lambda x, v: x.dot(v), (A34, V4)),
    "x@y": ApiCase(lambda x, y: x @ y, (rnd(2, 3, 4), rnd(4, 5))),
    "np.matmul": ApiCase(lambda x, y: np.matmul(x, y), (rnd(4), rnd(2, 4, 3))),
    "np.tensordot-axes2": ApiCase(lambda a, b: np.tensordot(a, b), (rnd(2, 3, 4), rnd(3, 4, 2))),
    "np.tensordot-axes1": ApiCase(lambda a, b: np.tensordot(a, b, axes=1), (rnd(2, 3), rnd(3, 4))),
    "np.tensordot-pairs": ApiCase(lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])),
                                  (rnd(2, 3, 4), rnd(4, 5, 2))),
    "x.T": ApiCase(lambda x: x.T, (rnd(3, 4),)),
    "np.transpose": ApiCase(lambda x: np.transpose(x, (1, 2, 0)), (rnd(2, 3, 4),)),
    "x.transpose()": ApiCase(lambda x: x.transpose(), (rnd(2, 3, 4),)),
    "x.reshape(-1)": ApiCase(lambda x: x.reshape(-1), (rnd(3, 4),)),
    "x.reshape(2,-1)": ApiCase(lambda x: x.reshape(2, -1), (rnd(3, 4),)),
    "np.reshape": ApiCase(lambda x: np.reshape(x, (4, 3)), (rnd(3, 4),)),
    "np.broadcast_to": ApiCase(lambda v: np.broadcast_to(v, (3, 4)) * 1.5, (rnd(4),)),
    "x.astype(f32)": ApiCase(lambda x: x.astype(np.float32), (rnd(3, 4),),
                             fd_fn=lambda x: np.asarray(x, np.float64)),
    "x32.astype(f64)": ApiCase(lambda x: x.astype(np.float64) * 2.0, (rnd(3, 4, dtype=F32),)),
    "np.sum(x*y)": ApiCase(lambda x, y: np.sum(x * y), (rnd(3, 4), rnd(3, 4))),
    "for-row-in-x": ApiCase(_rows_scaled, (rnd(3, 4),)),
    "len-shape-ndim": ApiCase(_shape_driven, (rnd(3, 4),)),
    "x+=y": ApiCase(lambda x, y: _iadd(x, y), (rnd(3, 4), rnd(4))),
    "comparison-out": ApiCase(lambda x, y: (x > y) & (x < 1.0), (rnd(3, 4), rnd(4)), grad=False),
}


def _iadd(x, y):
    x = x * 1.5
    x += y
    return x


def _api_grad_ids():
    return [pytest.param(k, id=k) for k, c in API_CASES.items() if c.grad]


@pytest.mark.parametrize("key", list(API_CASES), ids=list(API_CASES))
def test_numpy_api_value(key):
    case = API_CASES[key]
    compiled = graphc.compile(case.fn)
    got = np.asarray(compiled(*case.args))
    want = np.asarray(case.fn(*case.args))     # plain NumPy, the reference
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    if want.dtype.kind == "f":
        tol = 1e-6 if want.dtype == F32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("key", _api_grad_ids())
def test_numpy_api_gradient(key):
    case = API_CASES[key]
    out = np.asarray(case.fn(*case.args))
    R = np.random.default_rng(11).standard_normal(out.shape).astype(out.dtype)
    argnums = tuple(i for i, a in enumerate(case.args) if is_float_leaf(a))

    def loss(*xs):
        return (case.fn(*xs) * R).sum()

    value, grads = graphc.value_and_grad(loss, argnums=argnums)(*case.args)
    np.testing.assert_allclose(value, loss(*case.args), rtol=1e-6 if out.dtype == F32 else 1e-12)
    fd_fn = case.fd_fn or case.fn
    R64 = R.astype(F64)
    fd = fd_grad_args(lambda *xs: float((np.asarray(fd_fn(*xs), F64) * R64).sum()),
                      case.args, argnums)
    low = _is_low_precision(out, *case.args)
    rtol, atol = (1e-4, 1e-5) if low else (1e-6, 1e-8)
    for i, g, want in zip(argnums, grads, fd):
        g = np.asarray(g)
        assert g.shape == np.shape(case.args[i]) and g.dtype == case.args[i].dtype
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=f"input {i}")
