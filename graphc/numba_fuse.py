"""Which nodes the ``"numba"`` target fuses into one loop kernel.

A *group* is computed by one loop over *rows*: the leading dimension of its
members.  Members are elementwise nodes whose every value is a float32/float64
number or a bool and whose arguments broadcast to their shape dimension by
dimension (the same size, or 1: a row vector bias, a scalar); reshapes that keep
the rows; small products (:data:`TINY`); and the reductions over the rows (sums,
``h.T @ d``) with the numbers computed from them (a mean), which the kernel
finishes after its loop.  The group's members are consecutive in program order
apart from nodes that do not read them, so the kernel call can stand where its
last member stood; the forward and backward passes share a kernel when nothing
between them reads its values.  Each member's scalar form (:data:`SCALAR`) is the
NumPy emission on one element; the few whose NumPy text is array-only
(``np.where``, ``.astype``, the masked multiply) have their own.
"""
from __future__ import annotations

import re

import numpy as np

from .codegen import SUBGRAPH_OPS
from .primitive import REGISTRY

__all__ = ["SCALAR", "scalar_form", "typed_literals", "find_groups", "Group"]

#: Ops fused with their NumPy template as the scalar form (numba compiles ``np.exp``,
#: ``np.maximum``, ... on scalars with NumPy's semantics).
_SAME = frozenset("""
add sub mul div neg pow exp log sin cos tan tanh sqrt log1p expm1 abs sign maximum
minimum gt ge lt le eq ne logical_and logical_or logical_not logical_xor sigmoid softplus relu
floor ceil arcsin arccos arctan sinh cosh arcsinh arccosh arctanh log2 log10 hypot
arctan2 safe_sqrt isnan isinf isfinite
""".split())

#: Ops whose scalar form differs from the NumPy text.
SCALAR = {
    "where": "({1} if {0} else {2})",
    "masked_mul": "({0} * {1} if {1} != 0 else 0.0)",   # (codegen_numba: product, then select)
    # maximum/minimum's gradient (graphc/ops/max_share.py): 0 where x < y even for an
    # infinite cotangent, half at a tie, nan where x - y is nan (the comparison is False)
    # (codegen_numba_kernel: the share first, then a select: no branch)
    "max_share": "(0.0 if {1} < {2} else {0} * (0.5 + 0.5 * np.sign({1} - {2})))",
    "identity": "{0}", "stop_gradient": "{0}", "contiguous": "{0}",
    "astype": "{dtype}({0})",
}

_FUSED_DTYPES = frozenset(np.dtype(n) for n in ("float32", "float64", "bool"))


def scalar_form(op):
    """The scalar template of ``op`` in a kernel, or None (not fused)."""
    if op in SCALAR:
        return SCALAR[op]
    if op in _SAME:
        tmpl = REGISTRY[op].numpy
        return tmpl if isinstance(tmpl, str) else None
    return None


#: A number the template writes (not a slot ``{0}``, not a digit of a name: ``log1p``).
_LITERAL = re.compile(r"(?<![{\w.])\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w.}])")


def typed_literals(tmpl: str, dtype) -> str:
    """``tmpl`` with each number it writes of the member's float dtype.

    NumPy computes ``x32 * 0.5`` and ``1 + x32`` in float32 (a Python number next to an
    array is *weak*, NEP 50), numba in float64: a float64 literal in a float32 chain
    converts every element to float64 and back, which costs a conversion each way and
    keeps LLVM from vectorizing the loop.  In a float32 member the literals are
    ``np.float32(...)`` (the templates' numbers, 0, 0.5 and 1, are exact in float32), so
    each operation rounds to float32 as it does in the NumPy target; a float64 member's
    template is returned unchanged."""
    if np.dtype(dtype) != np.float32:
        return tmpl
    return _LITERAL.sub(lambda m: f"np.float32({float(m.group())!r})", tmpl)


class Group:
    """Nodes fused into one kernel: ``members`` in program order, all in one loop over
    ``rows`` (the leading dimension of every member but the reductions)."""

    def __init__(self, first, rows, section):
        self.members = [first]
        self.rows = rows
        self.section = section

    @property
    def last(self):
        return self.members[-1]


#: The most terms a product written as a loop in a kernel may have (its inner dimension,
#: and each outer dimension that is not the rows): larger products stay BLAS calls.
TINY = 8


def kind(g, nid) -> str | None:
    """How ``nid`` can be a member: ``"elementwise"``, ``"reshape"`` (rows kept, only
    dimensions of size 1 added or dropped), ``"matmul"`` (rows @ a tiny matrix),
    ``"sum"`` (over the rows), ``"matmul_t"`` (``rows.T @ rows``, a tiny result) or
    ``"total"`` (a number computed from sums, after the loop); ``"transpose"`` is a
    member only as an operand of a product, read transposed in the loop."""
    node = g[nid]
    if _fusible(g, nid):
        return "elementwise"
    if node.dtype not in _FUSED_DTYPES or node.dtype.kind != "f":
        return None
    args = [g[a] for a in node.args]
    if node.op == "reshape" and len(node.shape) >= 1 and len(args[0].shape) >= 1 \
            and node.shape[0] == args[0].shape[0] and node.dtype == args[0].dtype \
            and _core(node.shape) == _core(args[0].shape):
        return "reshape"
    if node.op == "sum" and node.args and len(args[0].shape) >= 1 \
            and isinstance(node.params.get("axis"), tuple) and 0 in node.params["axis"] \
            and all(0 <= d < len(args[0].shape) for d in node.params["axis"]) \
            and args[0].dtype == node.dtype:
        return "sum"
    if node.op == "transpose" and len(node.shape) == 2 and g.n_uses(nid) == 1 \
            and tuple(node.params.get("axes", (1, 0))) == (1, 0):
        return "transpose"
    if len(node.shape) == 0 and scalar_form(node.op) is not None and node.args \
            and all(len(a.shape) == 0 for a in args):
        return "total"
    if node.op != "matmul" or len(node.shape) != 2 or any(len(a.shape) != 2 for a in args) \
            or any(a.dtype != node.dtype for a in args):
        return None
    lhs, rhs = node.args
    if g[lhs].op == "transpose" and kind(g, lhs) == "transpose" \
            and node.shape[0] * node.shape[1] <= TINY * TINY:
        return "matmul_t"
    if args[0].shape[1] <= TINY and node.shape[1] <= TINY:
        return "matmul"
    return None


def _core(shape):
    """The dimensions after the rows that are not 1 (a member's loop inside a row)."""
    return tuple(d for d in tuple(shape)[1:] if d != 1)


def _rows_of(g, nid, k, group_of):
    """The row count of a member of kind ``k`` (the reductions: of their operand)."""
    node = g[nid]
    if k == "total":
        rows = {group_of[a].rows for a in node.args if a in group_of}
        return rows.pop() if len(rows) == 1 else None
    if k == "sum":
        return g[node.args[0]].shape[0]
    if k == "matmul_t":
        return g[node.args[1]].shape[0]
    return node.shape[0] if len(node.shape) else None


def _fusible(g, nid) -> bool:
    node = g[nid]
    if scalar_form(node.op) is None or node.dtype not in _FUSED_DTYPES:
        return False
    if len(node.shape) == 0 or g.aval(nid).size < 2:
        return False
    if node.op == "astype" and np.dtype(node.params["dtype"]) not in _FUSED_DTYPES:
        return False
    for a in node.args:
        an = g[a]
        if an.dtype not in _FUSED_DTYPES and not (an.weak and an.dtype.kind in "biuf"):
            return False
        if not broadcasts(tuple(an.shape), tuple(node.shape)):
            return False
    return True


def broadcasts(shape, out) -> bool:
    """``shape`` reaches ``out`` dimension by dimension (trailing-aligned, 1 or equal)."""
    if len(shape) > len(out):
        return False
    return all(s == 1 or s == o for s, o in zip(shape[::-1], out[::-1]))


def find_groups(g) -> dict:
    """{member nid: Group} of every group of two or more fused nodes.

    A node joins the groups (of its row count) that it may join: the
    groups of its operands, and the latest such group even without an operand in it
    (independent chains between the same two GEMMs share one kernel).  Several such
    groups merge into one."""
    order = g.order()
    pos = {nid: i for i, nid in enumerate(order)}
    group_of: dict = {}
    latest: dict = {}
    for nid in order:
        k = kind(g, nid)
        if k is None or k == "transpose":
            continue
        key = _rows_of(g, nid, k, group_of)
        if key is None:
            continue
        cands = [group_of[a] for a in _operands(g, nid, k) if a in group_of]
        if key in latest:
            cands.append(latest[key])
        skip = _absorbed(g, nid, k)
        cands = list({id(c): c for c in cands if c.rows == key
                      and _can_join(g, c, nid, order, pos, skip)}.values())
        if not _joins(g, nid, k, cands, group_of):
            cands = []                          # (reads a sum: starts a kernel of its own)
            if not _joins(g, nid, k, cands, group_of):
                continue
        grp = cands[0] if cands else Group(nid, key, g[nid].section)
        for other in cands[1:]:
            grp.members += other.members
            for m in other.members:
                group_of[m] = grp
        if cands:
            grp.members.append(nid)
        if skip is not None:
            grp.members.append(skip)                    # the transpose: read in the loop
            group_of[skip] = grp
        grp.members.sort(key=pos.__getitem__)
        group_of[nid] = grp
        latest[key] = grp
    return {n: grp for n, grp in group_of.items()
            if sum(kind(g, m) != "transpose" for m in grp.members) > 1}


def _absorbed(g, nid, k):
    """The transpose a product reads in place (``h.T @ d``; ``d @ W.T`` with ``W`` an
    input of the kernel), or None."""
    if k == "matmul_t":
        return g[nid].args[0]
    if k == "matmul":
        rhs = g[nid].args[1]
        if kind(g, rhs) == "transpose":
            return rhs
    return None


def _operands(g, nid, k):
    """The values ``nid`` reads (a ``matmul_t`` through its transpose)."""
    args = list(g[nid].args)
    if k == "matmul_t":
        args = [g[args[0]].args[0], args[1]]
    return args


def _joins(g, nid, k, cands, group_of) -> bool:
    """The member-to-be reads members only where the kernel can: no reduction result
    (complete only after the loop), and the rows-only operands in the group."""
    members = {m for c in cands for m in c.members}
    after = ("sum", "matmul_t", "total")
    if k == "total":                            # after the loop: reads totals only
        return any(a in members for a in g[nid].args) and all(
            a not in members or kind(g, a) in after for a in g[nid].args)
    for a in _operands(g, nid, k):
        if a in members and kind(g, a) in after:
            return False
        if a in members and len(g[a].shape) != len(g[nid].shape) and k == "elementwise":
            return False                        # (a member broadcast along the rows)
    if k == "matmul":
        rhs = g[nid].args[1]
        return rhs not in members and (kind(g, rhs) != "transpose" or g[rhs].args[0] not in members)
    if k in ("reshape", "sum"):
        return g[nid].args[0] in members
    if k == "matmul_t":
        return g[nid].args[1] in members
    return True


def _can_join(g, grp, nid, order, pos, skip=None) -> bool:
    """``nid`` may join ``grp``: no node between the group's last member and ``nid``
    reads a member (the kernel call stands where ``nid`` is) or may write in place;
    ``skip``, the transpose that ``nid`` absorbs, is read in the loop."""
    members = set(grp.members)
    for k in order[pos[grp.last] + 1:pos[nid]]:
        if k != skip and any(a in members for a in g[k].args) or _may_write(g, k):
            return False
    return True


def _may_write(g, k) -> bool:
    """Node ``k``'s code may write into an array it reads (``y[i] = v`` in place, a loop
    or branch): the group's members, computed after it in the kernel, must not move
    past it."""
    op = g[k].op
    if op == "setitem":
        return g[g[k].args[0]].op != "const"    # (into a fresh np.zeros: nothing else reads it)
    return op in SUBGRAPH_OPS
