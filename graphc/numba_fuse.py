"""Which nodes the ``"numba"`` target fuses into one loop kernel.

A *group* is a chain of elementwise nodes of one output shape, in one section
(forward or backward), whose every value is a float32/float64 number or a bool,
and whose arguments broadcast to that shape dimension by dimension (the same
size, or 1: a row vector bias, a scalar).  The group's members are consecutive
in program order apart from nodes that do not read them, so the kernel call can
stand where its last member stood.  Each member's scalar form (:data:`SCALAR`) is
the NumPy emission on one element; the few whose NumPy text is array-only
(``np.where``, ``.astype``, the masked multiply) have their own.
"""
from __future__ import annotations

import re

import numpy as np

from .primitive import REGISTRY

__all__ = ["SCALAR", "scalar_form", "find_groups", "Group"]

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


def has_literal(tmpl: str) -> bool:
    """The template writes a number of its own (``1 + np.exp(...)``): its arithmetic
    in numba is float64, so a float32 result is rounded back explicitly."""
    return re.search(r"(?<![{\w])\d", tmpl) is not None


class Group:
    """Nodes fused into one kernel: ``members`` in program order, their ``shape``."""

    def __init__(self, first, shape, section):
        self.members = [first]
        self.shape = shape
        self.section = section

    @property
    def last(self):
        return self.members[-1]


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
    """{member nid: Group} of every group of two or more fused nodes."""
    order = g.order()
    pos = {nid: i for i, nid in enumerate(order)}
    group_of: dict = {}
    for nid in order:
        if not _fusible(g, nid):
            continue
        node = g[nid]
        target = None
        for a in node.args:
            grp = group_of.get(a)
            if grp is not None and grp.shape == tuple(node.shape) \
                    and grp.section == node.section and _can_join(g, grp, nid, order, pos, group_of):
                target = grp
                break
        if target is None:
            group_of[nid] = Group(nid, tuple(node.shape), node.section)
        else:
            target.members.append(nid)
            group_of[nid] = target
    return {n: grp for n, grp in group_of.items() if len(grp.members) > 1}


def _can_join(g, grp, nid, order, pos, group_of) -> bool:
    """``nid`` may join ``grp``: no node between the group's last member and ``nid``
    reads a member (the kernel call stands where ``nid`` is), and no argument of
    ``nid`` outside the group is computed after the group's first member from it."""
    members = set(grp.members)
    for k in order[pos[grp.last] + 1:pos[nid]]:
        if any(a in members for a in g[k].args):
            return False
    return True
