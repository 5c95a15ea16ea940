"""Faster NumPy forms of the same operations, for the NumPy target's modules.

**A full constant operand.** NumPy 2.4's ``maximum`` and ``minimum`` loops are
vectorized for two contiguous operands but not for a scalar one: a ReLU,
``np.maximum(0, a)`` on 128x256 float32, takes 27 µs where ``np.maximum(zeros, a)``
against a zero array of ``a``'s shape takes 8 µs (docs/performance.md, "W2 with the
plain NumPy loss, third round").  So the generated code reads a module-level constant
of the result's shape:

    zeros_128x256 = np.zeros((128, 256), dtype=np.float32)  # np.maximum's operand

    h1 = np.maximum(zeros_128x256, add)

The values are the same bit for bit: the same ufunc on the same pairs of elements
(nan payloads and signs of zero included, tests/test_w2_plain_loss3.py).  What may
differ is the *layout* of a fresh result, which later reductions can see (a sum's
order follows memory): NumPy lays a result out like its operands (order ``K``), and a
C-ordered constant would make it C-ordered where the scalar form follows the array.
So the plain form applies only where the array operand is C-ordered by construction
(:func:`c_order`: a matrix product, an elementwise result of a C-ordered operand of
its own shape, a reshape of one); a form that writes into ``out=`` (the codegen's
reuse of a dead argument, a layout copy fused into the ufunc) fixes the layout itself
and takes the constant whatever the operand's layout.

The constant is built once, when the module is executed (``np.zeros`` maps its pages
lazily, so a large one costs little memory), is only ever read, and qualifies only
when it is at least ``FULL_BYTES`` large (small arrays gain under a microsecond), the
scalar is exact in the result's dtype, and no dimension is symbolic.

**A one-hot seed added in place** (:func:`seed_adds`).  The gradient of a loss that
gathers ``logp[np.arange(n), y]`` adds a scatter of constants into zeros to another
term; the zeros, the scatter and the sum are three passes and two temporaries where
the term itself, fresh, can take the constants at the index:

    d_z = d_sum * exp                           (was: d_logp = np.zeros((128, 10), ...)
    d_z[np.arange(128), y] -= 0.0078125               d_logp[np.arange(128), y] = ...
                                                      d_z = d_logp + d_sum * exp)

Each indexed element is ``x + c`` in both (IEEE addition commutes, ``x - c`` is
``x + -c``), and an out-of-range label raises the same ``IndexError``.  The one
difference: an element outside the index that is ``-0.0`` stays ``-0.0`` where
``0.0 + -0.0`` gave ``+0.0`` (equal values).
"""
from __future__ import annotations

import numpy as np

from . import symdims
from .avals import Aval
from .literals import const_text
from .ops.index import spec_text
from .primitive import REGISTRY

__all__ = ["FULL_BYTES", "c_order", "full_operand_args", "full_operand_call", "seed_adds",
           "with_full_operands", "zero_operand"]

FULL_BYTES = 1 << 14

_OPS = ("maximum", "minimum", "relu")


def with_full_operands(em):
    """``em`` (codegen's emitter), emitting the full constant operands: the NumPy target's
    modules turn it on; other emitters (loop bodies, the array-API and numba targets, the
    evaluation trace) write the scalar."""
    em.full_operands = True
    return em


def c_order(g, nid, depth=0) -> bool:
    """Is ``nid``'s value a C-ordered array whatever the inputs' layouts?  (Values of
    up to one dimension always count: a fresh 1-D result is contiguous.)"""
    node = g[nid]
    if len(node.shape) <= 1 and node.op != "input":
        return True
    if depth > 30:
        return False
    op = node.op
    if op in ("matmul", "const"):           # NumPy allocates a product's result C-ordered
        return True
    if op == "reshape":                     # a C-order reshape of a C-ordered array
        return c_order(g, node.args[0], depth + 1)
    prim = REGISTRY.get(op)
    if prim is None or prim.inplace_ufunc is None:
        return False
    # A ufunc's result follows its operands' layouts: one C-ordered operand of the
    # result's own shape makes it C-ordered (NumPy's axis ordering keeps C order when
    # any operand asks for it; broadcast operands have no say).
    shape = tuple(node.shape)
    return any(tuple(g[a].shape) == shape and c_order(g, a, depth + 1) for a in node.args)


def _scalar_slot(g, node):
    """(index of the scalar among the ufunc's arguments, its value, index of the array),
    or None."""
    if node.op == "relu":
        return 1, 0.0, 0
    if len(node.args) != 2:
        return None
    for k in (0, 1):
        c, a = g[node.args[k]], g[node.args[1 - k]]
        if c.op == "const" and c.aval.size == 1 and tuple(a.shape) == tuple(node.shape):
            return k, c.value, 1 - k
    return None


def _constant_name(em, node, value):
    """The module constant of ``node``'s shape and dtype filled with ``value`` (shared by
    the nodes that need the same one), or None when ``value`` is not exact in the dtype."""
    dt = np.dtype(node.dtype)
    try:
        v = np.asarray(value).reshape(()).item()
        exact = dt.type(v)
        if isinstance(v, bool) or np.isnan(exact) or exact != v:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    shape = tuple(int(d) for d in node.shape)
    key = (shape, dt.str, np.asarray(exact).tobytes())
    consts = em.__dict__.setdefault("full_consts", {})
    if key in consts:
        return consts[key]
    full = np.full(shape, exact, dtype=dt)
    text = const_text(full, node.aval)
    stem = "zeros" if text.startswith("np.zeros(") else "full"
    name = em.ns.new(f"{stem}_{'x'.join(map(str, shape))}")
    em.module_consts.append(f"{name} = {text}  # read, never written: "
                            f"np.{'minimum' if node.op == 'minimum' else 'maximum'}'s operand")
    consts[key] = name
    return name


def full_operand_args(em, nid, texts, any_layout=False):
    """``texts``, the ufunc's argument texts of node ``nid`` (its arguments, then its
    record's ``inplace_extra_args``), with the scalar replaced by a full constant where
    that qualifies (module docstring); ``any_layout``: the call writes into ``out=``."""
    if not getattr(em, "full_operands", False):
        return texts
    g = em.g
    node = g[nid]
    if (node.op not in _OPS or np.dtype(node.dtype).kind != "f" or len(node.shape) == 0
            or symdims.nbytes(node) < FULL_BYTES):
        return texts
    slot = _scalar_slot(g, node)
    if slot is None:
        return texts
    k, value, arr = slot
    a = node.args[arr]
    if g[a].dtype != node.dtype or not (any_layout or c_order(g, a)):
        return texts
    name = _constant_name(em, node, value)
    if name is None:
        return texts
    return [name if i == k else t for i, t in enumerate(texts)]


def zero_operand(em, nid) -> str:
    """The text of ReLU's zero for a float array of node ``nid``'s shape and dtype: its full
    zero constant where one qualifies (module docstring), else ``0.0``.  The caller writes
    into ``out=`` or reads the result elementwise only (its layout does not matter)."""
    node = em.g[nid]
    if (not getattr(em, "full_operands", False) or np.dtype(node.dtype).kind != "f"
            or len(node.shape) == 0 or symdims.nbytes(node) < FULL_BYTES):
        return "0.0"
    return _constant_name(em, node, 0.0) or "0.0"


def full_operand_call(em, nid):
    """The plain emission of node ``nid`` with a full constant operand, or None."""
    node = em.g[nid]
    if not getattr(em, "full_operands", False) or node.op not in _OPS:
        return None
    prim = REGISTRY[node.op]
    texts = [em.ref(a, 0) for a in node.args] + list(prim.inplace_extra_args)
    new = full_operand_args(em, nid, texts)
    if new is texts:
        return None
    return f"{prim.inplace_ufunc}({', '.join(new)})"


# --- a one-hot seed added in place ------------------------------------------------------
_SEED_BYTES = 1 << 17       # below codegen's _FREE_BYTES: the scatter never has a `del`


def _seed_form(em, s, node):
    """(index text, ``op=``, value text) to add scatter ``s`` into ``node``'s fresh other
    term in place, or None.  The scatter must index each element once (``unique``, or
    no array in the index), read only constants and inputs (its text moves to the add's
    statement), be ``node``'s shape and dtype and have no other user."""
    g = em.g
    sn = g[s]
    if sn.op != "scatter_add":
        return None
    spec = sn.params["spec"]
    if (em.edge_count.get(s) != 1 or s in em.outputs
            or s not in em.name or tuple(sn.shape) != tuple(node.shape) or sn.dtype != node.dtype
            or not (sn.params.get("unique") or all(item[0] != "array" for item in spec))
            or symdims.nbytes(sn) >= _SEED_BYTES
            or any(g[a].op not in ("const", "input") for a in sn.args)):
        return None
    v = g[sn.args[0]]
    values = np.asarray(v.value) if v.op == "const" else None
    if values is None or values.dtype != sn.dtype or np.isnan(values).any():
        return None
    idx = spec_text(spec, [em.ref(a, 0) for a in sn.args[1:]])
    flat = values.ravel()
    if flat.size and (flat == flat[0]).all() and (np.signbit(flat) == np.signbit(flat[0])).all():
        c = flat[0]
        op = "-" if np.signbit(c) and c != 0 else "+"
        return idx, op, const_text(-c if op == "-" else c, Aval((), sn.dtype, True))
    return idx, "+", em.ref(sn.args[0], 0)


def seed_adds(em, items):
    """Rewrite ``items`` (codegen's ``(nid, lines)`` statements, before its frees are
    placed) so that ``s + t``, ``s`` a scatter of constants into zeros and ``t`` an
    inlined ufunc expression of the same shape (a fresh array), is ``t`` with the
    constants added at the index (module docstring); the scatter's statement goes.
    Returns ``items``."""
    if not getattr(em, "full_operands", False):
        return items
    g = em.g
    drop = set()
    for j, (nid, lines) in enumerate(items):
        node, name = g[nid], em.name.get(nid)
        if (node.op != "add" or len(node.args) != 2 or name is None or len(lines) != 1
                or not lines[0].startswith(f"{name} = ")):
            continue
        for s, t in (node.args, node.args[::-1]):
            tn = g[t]
            prim = REGISTRY.get(tn.op)
            if (t not in em.expr or t in em.name or prim is None or prim.inplace_ufunc is None
                    or tuple(tn.shape) != tuple(node.shape) or tn.dtype != node.dtype
                    or (form := _seed_form(em, s, node)) is None):
                continue
            idx, op, value = form
            items[j] = (nid, [f"{name} = {em.ref(t, 0)}", f"{name}[{idx}] {op}= {value}"])
            drop.add(s)
            break
    items[:] = [(nid, lines) for nid, lines in items if nid not in drop]
    return items
