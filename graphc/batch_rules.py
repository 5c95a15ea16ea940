"""Batching rules: each primitive on a batched axis (``vmap``, :mod:`graphc.batching`).

A rule is ``rule(args, dims, aval, **params) -> (out, out_dim)``: ``args`` are tracers
of the *batched* values, ``dims`` the batch axis of each (None: the argument is the
same for every example; never all None), ``aval`` the per-example result.  It records
ordinary graphc ops (so batched code is plain NumPy over the batch axis and composes
with ``grad``/``jvp``) and returns the batched result with its batch axis.  The rules
are installed on the records' ``batch=`` field at import (:func:`install`), by family:
every elementwise op shares :func:`broadcast_rule` (batch axis to the front, ranks
aligned, NumPy broadcasting does the rest); reductions and scans shift their axis;
shape, indexing, products and linear algebra have rules of their own.
"""
from __future__ import annotations

import numpy as np

from .errors import UnsupportedError
from .primitive import REGISTRY

__all__ = ["install", "moveaxis", "to_front", "batch_size"]

P = REGISTRY


# --- helpers ------------------------------------------------------------------------------
def moveaxis(x, src, dst):
    """``x`` with axis ``src`` moved to ``dst`` (one ``transpose`` node; none if in place)."""
    nd = x.ndim
    src, dst = src % nd, dst % nd
    if src == dst:
        return x
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return P["transpose"](x, axes=tuple(perm))


def to_front(x, d):
    """``x`` with its batch axis ``d`` first."""
    return moveaxis(x, d, 0)


def batch_size(args, dims):
    return next(a.shape[d] for a, d in zip(args, dims) if d is not None)


def _reshape(x, shape):
    shape = tuple(shape)
    return x if tuple(x.shape) == shape else P["reshape"](x, shape=shape)


def _batched(x, d, size, per_shape=None):
    """``x`` as a batched value with its batch axis first (broadcast when unbatched)."""
    if d is not None:
        return to_front(x, d)
    shape = tuple(x.shape) if per_shape is None else tuple(per_shape)
    return P["broadcast_to"](_reshape(x, (1,) + tuple(x.shape)) if x.ndim else x,
                             shape=(size,) + shape)


def _rank_to(x, rank):
    """A batched-first ``x`` with unit axes after the batch axis up to per-example ``rank``."""
    per = x.ndim - 1
    if per >= rank:
        return x
    return _reshape(x, (x.shape[0],) + (1,) * (rank - per) + tuple(x.shape[1:]))


# --- elementwise --------------------------------------------------------------------------
def broadcast_rule(prim):
    """Elementwise ops: batch axes to the front, per-example ranks aligned, then the op."""
    def rule(args, dims, aval, **params):
        rank = len(aval.shape)
        new = [a if d is None else _rank_to(to_front(a, d), rank) for a, d in zip(args, dims)]
        return prim(*new, **params), 0
    return rule


def _weight_rule(args, dims, aval, **params):
    """``logaddexp_weight(x, y, lae)``: its value is ``exp(y - lae)``, x only breaks ties,
    so a batched x needs a batched y or lae (as ``lae = logaddexp(x, y)`` always is)."""
    if dims[1] is None and dims[2] is None:
        raise UnsupportedError("vmap of logaddexp_weight with only x batched",
                               hint="batch lae = logaddexp(x, y) with x")
    return broadcast_rule(P["logaddexp_weight"])(args, dims, aval, **params)


# --- reductions and scans along an axis ---------------------------------------------------
def _shift(axis, per_ndim):
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(a % per_ndim + 1 for a in axis)
    return axis % per_ndim + 1


def axis_rule(prim, key="axis", allow_none=True):
    """Reductions, scans, sorts: the batch axis first, the op's axis shifted by one."""
    def rule(args, dims, aval, **params):
        x = to_front(args[0], dims[0])
        per = x.ndim - 1
        rest = [a if d is None else to_front(a, d) for a, d in zip(args[1:], dims[1:])]
        axis = params.get(key)
        if axis is None:
            if not allow_none:
                raise UnsupportedError(f"vmap of {prim.name} with {key}=None")
            x = _reshape(x, (x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))))
            axis = 0
            per = 1
        params = dict(params, **{key: _shift(axis, max(per, 1))})
        return prim(x, *rest, **params), 0
    return rule


def _reduce_rule(prim):
    def rule(args, dims, aval, **params):
        x = to_front(args[0], dims[0])
        per = x.ndim - 1
        axis = params.get("axis")
        if axis is None:
            axis = tuple(range(per))
        out = prim(x, **dict(params, axis=_shift(axis, max(per, 1)) if per else ()))
        return out, 0
    return rule


# --- shape --------------------------------------------------------------------------------
def _reshape_rule(args, dims, aval, *, shape):
    x = to_front(args[0], dims[0])
    return P["reshape"](x, shape=(x.shape[0],) + tuple(aval.shape)), 0


def _transpose_rule(args, dims, aval, *, axes):
    x = to_front(args[0], dims[0])
    per = x.ndim - 1
    axes = tuple(range(per))[::-1] if axes is None else axes
    perm = (0,) + tuple(a % per + 1 for a in axes)
    moved = [p for p in perm if x.shape[p] != 1]
    if moved == sorted(moved):       # only unit axes move: a reshape (x.reshape(B, 1, n))
        return _reshape(x, tuple(x.shape[p] for p in perm)), 0
    return P["transpose"](x, axes=perm), 0


def _broadcast_to_rule(args, dims, aval, *, shape):
    x = _rank_to(to_front(args[0], dims[0]), len(shape))
    return P["broadcast_to"](x, shape=(x.shape[0],) + tuple(shape)), 0


def _concatenate_rule(args, dims, aval, *, axis):
    size = batch_size(args, dims)
    xs = [_batched(a, d, size) for a, d in zip(args, dims)]
    return P["concatenate"](*xs, axis=axis % len(aval.shape) + 1), 0


# --- products -----------------------------------------------------------------------------
def _per_shape(x, d):
    return tuple(x.shape[:d]) + tuple(x.shape[d + 1:])


def _matmul_rule(args, dims, aval):
    (a, b), (da, db) = args, dims
    size = batch_size(args, dims)
    ra = a.ndim - (da is not None)
    rb = b.ndim - (db is not None)
    if db is None and ra == 2 and rb == 2 and _per_shape(a, da)[0] == 1:
        a = to_front(a, da)                                  # a row (1, k): rows of a batch
        out = P["matmul"](_reshape(a, (size, a.shape[-1])), b)
        return _reshape(out, (size, 1, b.shape[-1])), 0
    if da is None and ra == 2 and rb == 2 and _per_shape(b, db)[1] == 1:
        b = to_front(b, db)                                  # a column (k, 1)
        out = P["matmul"](_reshape(b, (size, b.shape[1])), P["transpose"](a, axes=(1, 0)))
        return _reshape(out, (size, a.shape[0], 1)), 0
    if db is None and ra <= 2 and rb <= 2:                   # x @ W: the batch is rows
        return P["matmul"](to_front(a, da), b), 0
    if da is None and ra == 2 and rb == 1:                   # W @ x  ->  x @ W.T
        return P["matmul"](to_front(b, db), P["transpose"](a, axes=(1, 0))), 0
    # general: vectors as matrices, per-example stack axes padded, batch in front
    a = to_front(a, da) if da is not None else a
    b = to_front(b, db) if db is not None else b
    if ra == 1:
        a = _reshape(a, tuple(a.shape[:-1]) + (1, a.shape[-1]))
    if rb == 1:
        b = _reshape(b, tuple(b.shape) + (1,))
    stack = max(ra, rb, 2) - 2
    if da is not None:
        a = _rank_to(a, stack + 2)
    if db is not None:
        b = _rank_to(b, stack + 2)
    if a.shape[-1] == 1 and ra >= 2 and rb >= 2:     # outer products: no sum to do
        out = P["mul"](a, b)                          # (B, n, 1) * (B, 1, m)
    else:
        out = P["matmul"](a, b)
    return _reshape(out, (size,) + tuple(aval.shape)), 0


def _einsum_rule(args, dims, aval, *, spec, blas=False):
    from .ops.einsum import LETTERS
    used = {lab for labels in spec for lab in labels}
    new = next(i for i in range(len(LETTERS)) if i not in used)
    ins = []
    xs = []
    for x, d, labels in zip(args, dims, spec[:-1]):
        if d is None:
            xs.append(x)
            ins.append(tuple(labels))
        else:
            xs.append(to_front(x, d))
            ins.append((new,) + tuple(labels))
    spec = tuple(ins) + ((new,) + tuple(spec[-1]),)
    return P["einsum"](*xs, spec=spec, blas=blas), 0


def _stacked_rule(prim):
    """np.linalg ops that already map over leading stack axes (inv, det, cholesky)."""
    def rule(args, dims, aval, **params):
        return prim(to_front(args[0], dims[0]), **params), 0
    return rule


def _slogdet_rule(args, dims, aval):
    out = P["slogdet"](to_front(args[0], dims[0]))     # (2, B, ...): sign and log|det| rows
    return out, 1


def _solve_rule(args, dims, aval):
    (a, b), (da, db) = args, dims
    size = batch_size(args, dims)
    ra = a.ndim - (da is not None)
    rb = b.ndim - (db is not None)
    if db is None and rb > 1 and ra >= rb:     # b's stack axes broadcast under a's
        return P["solve"](to_front(a, da), b), 0
    a = to_front(a, da) if da is not None else a
    b = to_front(b, db) if db is not None else b
    if rb == 1:                      # a stack of vectors is a stack of one-column matrices
        b = _reshape(b, tuple(b.shape) + (1,))
    stack = max(ra, rb if rb > 1 else 2) - 2
    if da is not None:
        a = _rank_to(a, stack + 2)
    if db is not None:
        b = _rank_to(b, stack + 2)
    elif rb == 1:
        b = _reshape(b, (1,) * (stack + 1) + tuple(b.shape)) if stack else b
    return _reshape(P["solve"](a, b), (size,) + tuple(aval.shape)), 0


# --- convolution and pooling: the batch joins the images' own leading axis -------------
def merge_rule(prim, in_pos, out_pos):
    """Ops over a stack of images (N, C, H, W): the batch axis merged into N (``B*N``) on
    the way in (``in_pos``: where each argument has N) and split off on the way out."""
    def rule(args, dims, aval, **params):
        size = batch_size(args, dims)
        xs = []
        for a, d, p in zip(args, dims, in_pos):
            a = moveaxis(_batched(a, d, size), 0, p)
            s = tuple(a.shape)
            xs.append(_reshape(a, s[:p] + (s[p] * s[p + 1],) + s[p + 2:]))
        if "image" in params:
            image = params["image"]
            params = dict(params, image=(size * image[0],) + tuple(image[1:]))
        out = prim(*xs, **params)
        s = tuple(out.shape)
        n = aval.shape[out_pos]
        return _reshape(out, s[:out_pos] + (size, n) + s[out_pos + 1:]), out_pos
    return rule


def _conv_family():
    table = {"im2col": ((0,), 0), "col2im": ((0,), 0), "max_pool": ((0,), 0),
             "max_pool_mask": ((0, 0), 2), "unpool": ((0, 2), 0), "pool_select": ((0, 2), 0)}
    return {name: merge_rule(P[name], ins, out) for name, (ins, out) in table.items()}


# --- install ------------------------------------------------------------------------------
def _axis_family():
    rules = {}
    for name in ("sum", "max", "min", "any", "all"):
        rules[name] = _reduce_rule(P[name])
    for name in ("argmax", "argmin"):
        rules[name] = axis_rule(P[name])
    for name in ("cumsum", "cumprod", "log_softmax", "argsort", "partition_perm"):
        rules[name] = axis_rule(P[name], allow_none=False)
    return rules


def _table():
    from .batch_index import INDEX_RULES
    rules = {name: broadcast_rule(p) for name, p in P.items()
             if p.elementwise and name != "guard"}
    rules["logaddexp_weight"] = _weight_rule
    rules.update(_axis_family())
    rules.update({
        "reshape": _reshape_rule, "transpose": _transpose_rule,
        "broadcast_to": _broadcast_to_rule, "concatenate": _concatenate_rule,
        "matmul": _matmul_rule, "einsum": _einsum_rule, "solve": _solve_rule,
        "slogdet": _slogdet_rule,
    })
    for name in ("inv", "det", "cholesky", "tril_scaled"):
        rules[name] = _stacked_rule(P[name])
    rules.update(INDEX_RULES)
    rules.update(_conv_family())
    return rules


def install():
    """Put each rule on its record's ``batch=`` field (a record that sets one keeps it)."""
    for name, rule in _table().items():
        prim = P.get(name)
        if prim is not None and prim.batch is None:
            object.__setattr__(prim, "batch", rule)


install()
