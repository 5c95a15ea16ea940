"""``einsum`` on the ``"array-api"`` target: the standard (2024.12) has no einsum, so
each one is lowered to what it has.

Every operand is first brought to distinct labels that matter: an axis of size 1
that another operand broadcasts is dropped (``xp.reshape``), a repeated label (a
diagonal, ``"ii->i"``) becomes one axis (the two axes moved last, flattened, and
every ``n + 1``-th element sliced), and a label no other operand and not the output
has is summed out (``xp.sum``).  Then the operands are contracted left to right,
two at a time: the labels both share and a later operand or the output needs are
batch axes, the other shared ones are contracted, and the rest are free, so the
pair is a (batched) matrix product, ``A (..., M, C) @ B (..., C, N)`` after
``xp.permute_dims``/``xp.reshape``, or a broadcast product when nothing is
contracted.  Last, the result's axes are put in the output's order.

This covers every einsum graphc's front end and gradients write (any number of
operands, ``...``, broadcasting, repeated labels, scalars).  The sums run in a
different order than NumPy's own einsum loop (BLAS where NumPy's einsum adds one
term at a time), so the values agree to rounding, not bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..xp_emit import xp_dtype

__all__ = ["einsum_xp"]


def _prod(dims):
    return int(np.prod(dims, dtype=np.int64))


class _Operand:
    """An operand's current text, labels and shape."""

    def __init__(self, text, labels, shape):
        self.text, self.labels, self.shape = text, list(labels), list(shape)
        self.unshaped = None            # the text before the last reshape (one is enough)

    def dims(self, labels):
        return [self.shape[self.labels.index(lab)] for lab in labels]

    def permute(self, labels):
        if labels != self.labels:
            perm = tuple(self.labels.index(lab) for lab in labels)
            self.text = f"xp.matrix_transpose({self.text})" if perm == (1, 0) else \
                f"xp.permute_dims({self.text}, {perm!r})"
            self.unshaped = None
            self.shape = [self.shape[i] for i in perm]
            self.labels = list(labels)

    def reshape(self, shape):
        if list(shape) != self.shape:
            src = self.text if self.unshaped is None else self.unshaped
            self.unshaped = src
            self.text = f"xp.reshape({src}, {tuple(int(d) for d in shape)!r})"
            self.shape = list(shape)

    def sum_out(self, labels):
        axes = tuple(self.labels.index(lab) for lab in labels)
        if not axes:
            return
        kw = "" if len(axes) == len(self.labels) else \
            f", axis={axes[0] if len(axes) == 1 else axes!r}"
        self.text = f"xp.sum({self.text}{kw})"
        self.unshaped = None
        self.labels = [lab for i, lab in enumerate(self.labels) if i not in axes]
        self.shape = [d for i, d in enumerate(self.shape) if i not in axes]


def _diagonal(op):
    """A repeated label's two axes as one (the diagonal), until no label repeats."""
    while len(set(op.labels)) != len(op.labels):
        lab = next(lab for lab in op.labels if op.labels.count(lab) > 1)
        i = op.labels.index(lab)
        j = op.labels.index(lab, i + 1)
        rest = [k for k in range(len(op.labels)) if k not in (i, j)]
        perm = tuple(rest) + (i, j)
        if perm != tuple(range(len(perm))):
            op.text = f"xp.permute_dims({op.text}, {perm!r})"
        n = op.shape[i]
        keep = [op.shape[k] for k in rest]
        op.text = f"xp.reshape({op.text}, {tuple(keep) + (n * n,)!r})[..., ::{n + 1}]"
        op.unshaped = None
        op.labels = [op.labels[k] for k in rest] + [lab]
        op.shape = keep + [n]


def _prepare(op, sizes, needed):
    """Drop broadcast size-1 axes, take diagonals, sum out labels needed nowhere else."""
    drop = [lab for lab, d in zip(op.labels, op.shape) if d == 1 and sizes[lab] != 1]
    if drop:
        op.reshape([d for lab, d in zip(op.labels, op.shape) if lab not in drop])
        op.labels = [lab for lab in op.labels if lab not in drop]
    _diagonal(op)
    op.sum_out([lab for lab in op.labels if lab not in needed])


def _pair(a, b, keep, order=None):
    """``a`` and ``b`` contracted over the labels they share that ``keep`` lacks (with
    ``order``, the output's labels: the operands swapped when that saves a transpose)."""
    a.sum_out([lab for lab in a.labels if lab not in b.labels and lab not in keep])
    b.sum_out([lab for lab in b.labels if lab not in a.labels and lab not in keep])
    afree = [lab for lab in a.labels if lab not in b.labels]
    bfree = [lab for lab in b.labels if lab not in a.labels]
    if order and afree and bfree and order.index(bfree[0]) < order.index(afree[0]):
        a, b = b, a
    if not a.labels or not b.labels:                   # a scalar: a plain product
        labels = a.labels + b.labels
        return _Operand(f"{_atom(a.text)} * {_atom(b.text)}", labels, a.shape + b.shape)
    batch = [lab for lab in a.labels if lab in b.labels and lab in keep]
    contr = [lab for lab in a.labels if lab in b.labels and lab not in keep]
    afree = [lab for lab in a.labels if lab not in b.labels]
    bfree = [lab for lab in b.labels if lab not in a.labels]
    bs, fa, fb = a.dims(batch), a.dims(afree), b.dims(bfree)
    if not contr:                                      # an outer / elementwise product
        a.permute(batch + afree)
        a.reshape(bs + fa + [1] * len(bfree))
        b.permute(batch + bfree)
        b.reshape(bs + [1] * len(afree) + fb)
        return _Operand(f"{_atom(a.text)} * {_atom(b.text)}", batch + afree + bfree,
                        bs + fa + fb)
    c = _prod(a.dims(contr))
    a.permute(batch + afree + contr)
    a.reshape(bs + [_prod(fa), c])
    b.permute(batch + contr + bfree)
    b.reshape(bs + [c, _prod(fb)])
    out = _Operand(f"{_atom(a.text)} @ {_atom(b.text)}", batch + ["M", "N"],
                   bs + [_prod(fa), _prod(fb)])
    out.reshape(bs + fa + fb)
    out.labels = batch + afree + bfree
    return out


def _atom(text):
    """``text`` safe as an operand of ``*`` and ``@``."""
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and ch in " +-*/@":
            return f"({text})"
    return text


def einsum_xp(e, *, spec, blas=False):
    """The lines computing ``np.einsum(spec, *operands)`` with the standard's functions."""
    from .einsum import label_sizes
    *ins, out = spec
    sizes = label_sizes(spec, [a.shape for a in e.avals])
    dt = e.aval.dtype
    ops = []
    for text, labels, aval in zip(e.args, ins, e.avals):
        if aval.dtype != dt and not aval.weak:
            text = f"xp.astype({text}, {xp_dtype(dt)})"
        ops.append(_Operand(text, labels, aval.shape))
    lines = []
    for k, op in enumerate(ops):
        needed = set(out).union(*[ins[i] for i in range(len(ins)) if i != k])
        _prepare(op, sizes, needed)
    acc = ops[0]
    for k in range(1, len(ops)):
        keep = set(out).union(*ins[k + 1:])
        acc = _pair(acc, ops[k], keep, list(out) if k == len(ops) - 1 else None)
        if k < len(ops) - 1:
            lines.append(f"{e.out} = {acc.text}")
            acc = _Operand(e.out, acc.labels, acc.shape)
    acc.sum_out([lab for lab in acc.labels if lab not in out])
    acc.permute(list(out))
    text = acc.text
    if not e.avals[0].weak and len(ops) == 1 and text == e.args[0]:
        text = f"xp.asarray({text}, copy=True)"     # "ij->ij": a new array, as np.einsum's
    return lines + [f"{e.out} = {text}"]
