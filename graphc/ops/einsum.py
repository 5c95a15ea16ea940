"""np.einsum: the ``einsum`` primitive (its VJP is another einsum) and NumPy's front end.

The primitive's ``spec`` param holds each operand's labels and the output's labels as
ints (0-25 are ``A``-``Z``, 26-51 are ``a``-``z``), so the emitted subscripts are the
user's own letters: ``np.einsum("ij,jk->ik", a, b)``.  The front end (:func:`einsum`)
parses NumPy's subscripts (implicit output, ``...``, repeated labels, the sublist form),
raises NumPy's errors as graphc ``ShapeError``, and with ``optimize=`` asks
``np.einsum_path`` at trace time for a pairwise contraction order, emitting one einsum
line per contraction.
"""
from __future__ import annotations

import string

import numpy as np

from ..errors import InPlaceError, ShapeError, UnsupportedError
from ..primitive import Aval, primitive
from . import _samples as S
from ._numpy_table import Call, implements
from .xp_einsum import einsum_xp

LETTERS = string.ascii_uppercase + string.ascii_lowercase   # NumPy's label order


def subscripts(spec) -> str:
    """``((8, 9), (9, 10), (8, 10))`` -> ``"ij,jk->ik"``."""
    *ins, out = spec
    return ",".join("".join(LETTERS[i] for i in t) for t in ins) + "->" + \
        "".join(LETTERS[i] for i in out)


def label_sizes(spec, shapes) -> dict:
    """Each label's size; size 1 broadcasts across operands (NumPy's einsum does too)."""
    sizes = {}
    for k, (labels, shape) in enumerate(zip(spec[:-1], shapes)):
        if len(labels) != len(shape):
            raise ShapeError(f"einsum: operand {k} has {len(shape)} dimensions but "
                             f"{len(labels)} subscripts")
        own = {}
        for lab, d in zip(labels, shape):
            if own.setdefault(lab, d) != d:
                raise ShapeError(f"dimensions in operand {k} for collapsing index "
                                 f"'{LETTERS[lab]}' don't match ({own[lab]} != {d})")
            old = sizes.get(lab, 1)
            if d != 1 and old != 1 and d != old:
                raise ShapeError("operands could not be broadcast together in einsum "
                                 f"'{subscripts(spec)}': label '{LETTERS[lab]}' has size "
                                 f"{old} and {d}", hint="check the operands' shapes")
            if lab not in sizes or old == 1:
                sizes[lab] = d
    return sizes


def _einsum_rule(*avals, spec, blas=False):
    if len(avals) != len(spec) - 1:
        raise ShapeError(f"einsum '{subscripts(spec)}' takes {len(spec) - 1} operands, "
                         f"got {len(avals)}")
    sizes = label_sizes(spec, [a.shape for a in avals])
    dtype = np.result_type(*[a.np_proxy() for a in avals])
    weak = all(a.weak for a in avals)
    return Aval(tuple(sizes[lab] for lab in spec[-1]), dtype, weak)


def _emit_einsum(e, *, spec, blas=False):
    opt = ", optimize=True" if blas else ""
    return f'np.einsum("{subscripts(spec)}", {", ".join(e.args)}{opt})'


def einsum_op(*ops, spec):
    """The einsum primitive on ``ops``; a large two-operand contraction is emitted with
    ``optimize=True``, so NumPy runs it through BLAS (tensordot) instead of its own loop."""
    sizes = label_sizes(spec, [_shape(x) for x in ops])
    work = int(np.prod(list(sizes.values()), dtype=np.int64))
    summed = len(ops) == 2 and bool(set(spec[0]) & set(spec[1]) - set(spec[-1]))
    return einsum_p(*ops, spec=spec, blas=bool(summed and work >= _BLAS_WORK))


_BLAS_WORK = 1 << 15        # below this, np.einsum's own loop beats the path search


def _einsum_vjp(ct, *xs, out, spec, blas=False):
    return tuple(_operand_grad(ct, xs, spec, k) for k in range(len(xs)))


def _einsum_jvp(t, *xs, out, spec, blas=False):
    # linear in each operand: one einsum per operand with a tangent, in its place
    from .elementwise import tangent_sum
    return tangent_sum(*[None if dx is None else
                         einsum_p(*xs[:k], dx, *xs[k + 1:], spec=spec, blas=blas)
                         for k, dx in enumerate(t)])


def _operand_grad(ct, xs, spec, k):
    """The cotangent of operand ``k``: an einsum of ``ct`` with the other operands.

    A label repeated in operand ``k`` (a diagonal) gets an identity-matrix operand, so
    the gradient sits on the diagonal; a label found nowhere else (summed out of
    operand ``k`` alone) or broadcast from size 1 is left out and put back by
    broadcasting/reshaping.
    """
    from .shape import broadcast_to, reshape
    x, labels = xs[k], spec[k]
    sizes = label_sizes(spec, [v.shape for v in xs])
    ops = [ct] + [v for i, v in enumerate(xs) if i != k]
    subs = [spec[-1]] + [s for i, s in enumerate(spec[:-1]) if i != k]
    fresh = iter(sorted(set(range(len(LETTERS))) - {lab for s in spec for lab in s}))
    seen, target = set(), []
    for lab, d in zip(labels, x.shape):
        if lab in seen:                       # a repeated label: the diagonal
            new = next(fresh)
            ops.append(np.eye(d, dtype=x.dtype))
            subs.append((lab, new))
            target.append(new)
        else:
            seen.add(lab)
            target.append(lab)
    avail = {lab for s in subs for lab in s}
    keep = tuple(t for t, d in zip(target, x.shape) if t in avail and d == sizes.get(t, d))
    g = einsum_op(*ops, spec=tuple(subs) + (keep,))
    shape = tuple(d if t in keep else 1 for t, d in zip(target, x.shape))
    if g.shape != shape:
        g = reshape(g, shape=shape)
    if shape != x.shape:
        g = broadcast_to(g, shape=x.shape)
    return g


def _einsum_flops(out, *avals, spec, blas=False):
    sizes = label_sizes(spec, [a.shape for a in avals])
    n = int(np.prod(list(sizes.values()), dtype=np.int64))
    return max(1, 2 * (len(avals) - 1)) * n


def _spec(subs: str):
    ins, out = subs.split("->")
    return tuple(tuple(LETTERS.index(c) for c in t) for t in ins.split(",")) + \
        (tuple(LETTERS.index(c) for c in out),)


def _einsum_samples(d):
    f32 = np.float32

    def smp(subs, *shapes, dtype=np.float64, desc=None, proof=False, blas=False):
        args = tuple(d.rnd(*s, dtype=dtype) for s in shapes)
        return S.Sample(args, {"spec": _spec(subs), "blas": blas}, lambda *a: np.einsum(subs, *a),
                        desc or subs, proof=proof)
    return [smp("ij,jk->ik", (2, 3), (3, 2), proof=True), smp("ij->ji", (2, 3)),
            smp("ii->i", (3, 3)), smp("ii->", (3, 3)), smp("ij->", (2, 3)),
            smp("bij,bjk->bik", (2, 3, 4), (2, 4, 2)), smp("i,j->ij", (3,), (4,)),
            smp("ij,ij->i", (1, 3), (2, 3), desc="broadcast-1"),
            smp("iij,jk->ik", (2, 2, 3), (3, 4)), smp("ij,jk,kl->il", (2, 3), (3, 2), (2, 4)),
            smp("ij,jk->ik", (2, 3), (3, 2), dtype=f32, desc="f32"),
            smp("ij->ij", (2, 3)), smp(",i->i", (), (3,), desc="scalar"),
            smp("ij,jk->ik", (2, 3), (3, 2), desc="blas", blas=True)]


einsum_p = primitive(
    name="einsum", samples=_einsum_samples, shape=_einsum_rule, numpy=_emit_einsum,
    array_api=einsum_xp,
    vjp=_einsum_vjp, jvp=_einsum_jvp, sympy=lambda *xs, spec, blas=False: np.einsum(subscripts(spec), *xs),
    label="einsum", label_detail=lambda p: subscripts(p["spec"]), family="linalg",
    flops=_einsum_flops,
    doc="np.einsum over explicit subscripts; the VJP of each operand is an einsum of the "
        "cotangent with the other operands (a repeated label scatters onto the diagonal "
        "through an identity matrix; a label summed out of one operand alone broadcasts). "
        "A large two-operand contraction is emitted with optimize=True (BLAS).")


# --- NumPy's front end ------------------------------------------------------------------
def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _parse(operands):
    """(subscripts string, operand list) from either of NumPy's call forms."""
    if not operands:
        raise ShapeError("No input operands")
    if isinstance(operands[0], str):
        return operands[0].replace(" ", ""), list(operands[1:])
    out = operands[-1] if len(operands) % 2 else None
    pairs = operands[:len(operands) - len(operands) % 2]
    ops, terms = list(pairs[0::2]), list(pairs[1::2])
    spell = lambda t: "".join("..." if s is Ellipsis else LETTERS[_sub_int(s)] for s in t)  # noqa: E731
    subs = ",".join(spell(t) for t in terms)
    return subs + ("" if out is None else "->" + spell(out)), ops


def _sub_int(s):
    if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) \
            or not 0 <= int(s) < 52:
        raise ShapeError(f"subscript is not within the valid range [0, 52): {s!r}")
    return int(s)


def _term(t, k, nd, what="operand"):
    """Labels of one term; ``None`` marks where the ellipsis dimensions go."""
    if t.count("...") > 1 or "." in t.replace("...", ""):
        raise ShapeError(f"einstein sum subscripts string contains a '.' that is not part of "
                         f"an ellipsis ('...') in {what} {k}")
    labels = []
    for part in t.split("..."):
        for c in part:
            if c not in LETTERS:
                raise ShapeError(f"invalid subscript '{c}' in einstein sum subscripts string, "
                                 "subscripts must be letters")
            labels.append(LETTERS.index(c))
        labels.append(None)
    labels.pop()
    if nd is not None and len(labels) - (None in labels) > nd:
        raise ShapeError(f"einstein sum subscripts string contains too many subscripts for "
                         f"operand {k}")
    if nd is not None and None not in labels and len(labels) != nd:
        raise ShapeError(f"operand {k} has more dimensions than subscripts given in einstein "
                         "sum, but no '...' ellipsis provided to broadcast the extra dimensions.")
    return labels


def parse_spec(subs: str, shapes) -> tuple:
    """NumPy's subscripts for operands of ``shapes`` as an explicit ``spec`` of ints."""
    ins, arrow, out = subs.partition("->")
    terms = ins.split(",")
    if len(terms) < len(shapes):
        raise ShapeError("more operands provided to einstein sum function than specified in "
                         "the subscripts string")
    if len(terms) > len(shapes):
        raise ShapeError("fewer operands provided to einstein sum function than specified in "
                         "the subscripts string")
    parsed = [_term(t, k, len(s)) for k, (t, s) in enumerate(zip(terms, shapes))]
    used = {lab for p in parsed for lab in p if lab is not None}
    n_ell = max([len(s) - len(p) + 1 for p, s in zip(parsed, shapes) if None in p], default=0)
    ell = [i for i in range(len(LETTERS)) if i not in used][:n_ell]
    if len(ell) < n_ell:
        raise UnsupportedError("einsum: more than 52 labels in all")
    spec = []
    for p, s in zip(parsed, shapes):
        if None in p:
            i, e = p.index(None), len(s) - len(p) + 1
            p = p[:i] + ell[n_ell - e:] + p[i + 1:]
        spec.append(tuple(p))
    if arrow:
        out_labels = _term(out, 0, None, "output")
        for lab in out_labels:
            if lab is not None and out_labels.count(lab) > 1:
                raise ShapeError("einstein sum subscripts string includes output subscript "
                                 f"'{LETTERS[lab]}' multiple times")
            if lab is not None and lab not in used:
                raise ShapeError("einstein sum subscripts string included output subscript "
                                 f"'{LETTERS[lab]}' which never appeared in an input")
        if None in out_labels:
            i = out_labels.index(None)
            out_labels = out_labels[:i] + ell + out_labels[i + 1:]
        elif n_ell:
            raise ShapeError("output has more dimensions than subscripts given in einstein "
                             "sum, but no '...' ellipsis provided to broadcast the extra "
                             "dimensions.")
    else:
        counts = [lab for p in parsed for lab in p if lab is not None]
        out_labels = ell + sorted(lab for lab in used if counts.count(lab) == 1)
    spec.append(tuple(out_labels))
    return tuple(spec)


def _path(spec, shapes, optimize):
    """NumPy's pairwise contraction order for ``optimize`` (``[(0,), ...]`` or a list)."""
    if optimize is False or optimize is None or len(shapes) < 3 and optimize is True:
        return [tuple(range(len(shapes)))]
    dummies = [np.broadcast_to(np.zeros((), np.float64), s) for s in shapes]
    try:
        path, _ = np.einsum_path(subscripts(spec), *dummies, optimize=optimize)
    except (TypeError, KeyError) as e:
        raise UnsupportedError(f"einsum: optimize={optimize!r}: {e}",
                               hint="optimize is False, True, 'greedy', 'optimal' or a path "
                                    "from np.einsum_path") from None
    return [tuple(c) for c in path[1:]]


def contract(ops, spec, optimize=False):
    """``np.einsum`` of ``ops`` over ``spec`` as pairwise einsum primitives in NumPy's
    ``optimize`` order (one einsum when ``optimize`` is False)."""
    if len(ops) == 1 and spec[0] == spec[-1]:
        return ops[0]                 # "ij->ij": the operand itself
    out = spec[-1]
    items = list(zip(ops, spec[:-1]))
    for step in _path(spec, [_shape(x) for x in ops], optimize):
        picked = [items[i] for i in step]
        for i in sorted(step, reverse=True):
            del items[i]
        if items:
            later = {lab for _, s in items for lab in s} | set(out)
            labels = tuple(dict.fromkeys(lab for _, s in picked for lab in s if lab in later))
        else:
            labels = out
        sub = tuple(s for _, s in picked) + (labels,)
        if len(picked) == 1 and sub[0] == labels:
            res = picked[0][0]
        else:
            res = einsum_op(*[x for x, _ in picked], spec=sub)
        items.append((res, labels))
    return items[0][0]


def _einsum_call_samples(d):
    r, f32 = d.rnd, np.float32
    return [Call(("ij,jk->ik", r(2, 3), r(3, 4))), Call(("ij,jk", r(2, 3), r(3, 4)), desc="implicit"),
            Call(("ii", r(3, 3)), desc="trace"), Call(("ii->i", r(3, 3)), desc="diag"),
            Call(("...ij,...jk->...ik", r(2, 1, 2, 3), r(4, 3, 2)), desc="ellipsis-bcast"),
            Call(("...ij,jk", r(5, 2, 3), r(3, 4)), desc="ellipsis-implicit"),
            Call(("i...->...", r(3, 2)), desc="ellipsis-sum"),
            Call(("bA,Ac->cb", r(2, 3), r(3, 4)), desc="uppercase"),
            Call(("i,i", r(4), r(4)), desc="inner"), Call(("i,j", r(3), r(2)), desc="outer"),
            Call(("ij,jk,kl->il", r(2, 3), r(3, 4), r(4, 2)), {"optimize": True}, "optimize"),
            Call(("ij,jk,kl->il", r(2, 3), r(3, 4), r(4, 2)), {"optimize": "optimal"}, "optimal"),
            Call(("ij,jk,kl,lm", r(2, 3), r(3, 4), r(4, 2), r(2, 2)), {"optimize": "greedy"},
                 "greedy-4"),
            Call(("ij,jk->ik", r(2, 3, dtype=f32), r(3, 4, dtype=f32)), desc="f32"),
            Call(("ij,jk->ik", r(2, 3, dtype=f32), r(3, 4)), desc="f32-f64"),
            Call(("ij,j->i", d.ints(2, 3), d.ints(3)), desc="int"),
            Call(("ij->ji", r(2, 3)), desc="transpose"), Call(("ij", r(2, 3)), desc="identity"),
            Call((r(2, 3), [0, 1], r(3), [1], [0]), desc="sublist")]


@implements(np.einsum, samples=_einsum_call_samples)
def einsum(*operands, out=None, optimize=False, **kwargs):
    """NumPy's einsum: any subscripts (implicit output, ``...``, repeated labels), the
    sublist form, ``dtype=``/``casting=``; ``optimize`` picks NumPy's pairwise order."""
    if out is not None:
        raise InPlaceError("np.einsum(..., out=...) writes into an array in place; traced "
                           "arrays are immutable", hint="assign the result instead")
    subs, ops = _parse(operands)
    dtype, casting = kwargs.pop("dtype", None), kwargs.pop("casting", "safe")
    kwargs.pop("order", None)          # the memory layout does not change values
    if kwargs:
        raise UnsupportedError(f"np.einsum: unexpected keyword argument(s) {sorted(kwargs)}")
    ops = [x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x) for x in ops]
    spec = parse_spec(subs, [_shape(x) for x in ops])
    label_sizes(spec, [_shape(x) for x in ops])       # NumPy's shape errors, before any work
    if dtype is not None:
        from .composite import astype
        dtype = np.dtype(dtype)
        for x in ops:
            if not np.can_cast(x.dtype, dtype, casting=casting):
                raise UnsupportedError(f"Cannot cast array data from {x.dtype} to {dtype} "
                                       f"according to the rule {casting!r}",
                                       hint="pass casting='unsafe' or a wider dtype")
        ops = [astype(x, dtype) for x in ops]
    return contract(ops, spec, optimize)
