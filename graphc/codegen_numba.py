"""Graph -> module text for the ``"numba"`` target (fused CPU loops).

The module is the NumPy target's module, except that each group of nodes
:mod:`graphc.numba_fuse` finds becomes one ``@numba.njit`` kernel written after the
function (:mod:`graphc.codegen_numba_kernel`: one loop over the rows, a comment
naming the fused source lines).  The function allocates the kernel's outputs with
``np.empty`` and calls it where the group's last node stood; an output may instead
be written into an input that only the kernel reads (bias + ReLU in place on the GEMM
result, forward pass only), and a total (a loss's sum) comes back in a 1-element
array.  Large GEMMs, convolutions and other reductions stay NumPy/BLAS.  No
``fastmath``: each element sees the same operations in the same order as in NumPy,
with float32 results rounded after each operation.
"""
from __future__ import annotations

import os

from . import codegen
from .codegen_guards import GUARD_CLASS, GUARD_HELPERS, has_guards
from .codegen_numba_kernel import blocks_of, kernel_text
from .numba_member import literal_input
from .codegen_workspace import fresh_node
from .entry_checks import ENTRY_HELPERS, entry_checks, signature_text
from .numba_fuse import find_groups, kind
from .ops.max_share import drop_outs
from .passes.dce import dce
from .primitive import type_str
from .source_comments import source_text, where_short, with_comment

__all__ = ["generate_module", "NumbaEmitter"]


class NumbaEmitter(codegen.Emitter):
    """:class:`graphc.codegen.Emitter` that leaves fused groups to kernels."""

    def __init__(self, graph, inline=True, names=None):
        super().__init__(graph, inline, names)
        self.groups = find_groups(graph)
        self.kernels: list[list[str]] = []
        self.called: set = set()              # id() of the groups whose call is written
        self.queued: list = []

    def can_inline(self, nid, node):
        if any(u in self.groups for u in self.g.users(nid)):
            return False                      # a kernel's argument: a named array
        return super().can_inline(nid, node)

    def ref(self, nid, min_prec=0):
        grp = self.groups.get(nid)
        if grp is not None and id(grp) not in self.called:
            self.queued.append((grp.last, self.kernel_call(grp)))   # written before its user
        return super().ref(nid, min_prec)

    def body(self, skip=()):
        """The NumPy target's statements, with each group's kernel call where its
        last member stood (or just before its first reader)."""
        pos = {nid: i for i, nid in enumerate(self.g.order())}
        pending = sorted({id(grp): grp for grp in self.groups.values()}.values(),
                         key=lambda grp: pos[grp.last])
        for nid, lines in super().body(skip=set(skip) | set(self.groups)):
            yield from self.queued
            self.queued.clear()
            for grp in pending:
                if pos[grp.last] < pos[nid] and id(grp) not in self.called:
                    yield grp.last, self.kernel_call(grp)
            yield nid, lines
        for grp in pending:
            if id(grp) not in self.called:
                yield grp.last, self.kernel_call(grp)

    def kernel_call(self, grp):
        g = self.g
        self.called.add(id(grp))
        ins, outs = _inputs(g, grp), _outputs(g, grp)
        for m in outs:
            self.name[m] = self.ns.new(g.display_name(m, self.name))
        for m in grp.members:
            if m not in outs:
                self.donated.add(m)           # (no array: nothing to del)
        kname = self.ns.new(f"_fused_{self.name[outs[-1]]}")
        block = blocks_of(g, grp)
        donors: dict = {}
        for m in outs:
            donor = next((a for a in ins if a not in donors.values()
                          and _donor(g, a, m, grp, block)), None)
            if donor is not None:
                donors[m] = donor
        # (a 0-d array goes in as its scalar: numba would make arrays of each element's math)
        args = [self.ref(a, 100) + ("[()]" if not g[a].shape and not g[a].weak else "")
                for a in ins if not literal_input(g, a)]
        self.kernels.append(kernel_text(self, kname, grp, ins, outs, donors))
        allocs = [f"{self.name[m]} = np.empty({tuple(g[m].shape) or (1,)!r}, np.{g[m].dtype.name})"
                  for m in outs if m not in donors]
        call = f"{kname}({', '.join(args + [self.name[m] for m in outs if m not in donors])})"
        # (written in place into an input's array; a total in a 1-element array)
        after = [f"{self.name[m]} = {self.ref(a)}" for m, a in donors.items()]
        after += [f"{self.name[m]} = {self.name[m]}[0]" for m in outs if not g[m].shape]
        return allocs + [call] + after


def _outputs(g, grp):
    """Members read outside the group (or returned), in program order."""
    members, returned = set(grp.members), set(g.outputs)
    return [m for m in grp.members
            if m in returned or any(u not in members for u in g.users(m))]


def _inputs(g, grp):
    members, out = set(grp.members), []
    for m in grp.members:
        for a in g[m].args:
            if a not in members and a not in out:
                out.append(a)
    return out


def _donor(g, a, m, grp, block):
    """Output ``m`` may be written into input ``a``'s buffer: a fresh array of its shape
    and dtype that only this group reads, each element in ``m``'s block and loop
    position just before ``m``'s is written."""
    node, out = g[a], g[m]
    users = g.users(a)
    # (forward only: written in place, a backward mask kernel measured 2x slower at
    # batch 65,536 than into a fresh array; numba cannot prove the two apart)
    return (out.section != "backward" and node.op != "const" and a not in g.outputs and fresh_node(g, a)
            and tuple(node.shape) == tuple(out.shape) and node.dtype == out.dtype
            and m in block and all(block.get(u) == block[m] and kind(g, u) == "elementwise"
                                   and tuple(g[u].shape) == tuple(node.shape) for u in users))


# --- the module -----------------------------------------------------------------------
def _body_lines(em):
    """:func:`graphc.codegen._body_lines` for this target: large values deleted after
    their last use (a kernel call counts as a use by each member), no ``out=`` rewrites."""
    items = list(em.body())
    expanded, back = [], []
    for i, (nid, lines) in enumerate(items):
        grp = em.groups.get(nid)
        for m in (grp.members if grp is not None and nid == grp.last else [nid]):
            expanded.append((m, lines))
            back.append(i)
    frees: dict = {}
    for k, names in codegen._frees(em, expanded).items():
        frees.setdefault(back[k], []).extend(names)
    out, last_block, g = [], None, em.g
    for i, (nid, lines) in enumerate(items):
        node = g[em.groups[nid].members[0]] if nid in em.groups else g[nid]
        shape = type_str(g[nid].shape, g[nid].dtype)
        if node.section in ("backward", "tangent"):
            label = codegen._head_label(g, node)
            block = (label, node.where or node.grad_of)
            if block != last_block:
                head = source_text(node.where) or codegen._forward_text(em, node.grad_of)
                if node.section == "backward":
                    out.append("")
                out.append(f"    # {label}: {head}")
                last_block = block
            comment = shape
        else:
            last_block = None
            w = where_short(node.where)
            comment = f"{shape}  {w}" if w else shape
        if node.op in codegen.SUBGRAPH_OPS:
            out.extend("    " + line for line in lines)
            lines = ()
        at = len(lines) - 1
        if nid in em.groups:                # the kernel call (no "name = "): where it starts
            at = next(k for k, line in enumerate(lines) if " = " not in line.split("(")[0])
            comment = where_short(node.where) or ""
        if node.op == "guard":
            at, comment = 0, where_short(node.where) or "guard"
        out += ["    " + (with_comment(line, comment) if k == at and comment else line)
                for k, line in enumerate(lines)]
        if i in frees:
            out.append(f"    del {', '.join(frees[i])}")
    return out


def generate_module(g, func_name: str, doc: str = "", source_file: str | None = None,
                    signature=None) -> codegen.Module:
    """:func:`graphc.codegen.generate_module` for the ``"numba"`` target."""
    sig = g.signature if signature is None else signature
    if drop_outs(g):    # the ReLU result only the NumPy emission divides by (ops/max_share.py)
        dce(g)          # a ReLU whose value only that division read
    em = NumbaEmitter(g)
    em.ns.reserve(func_name)
    em.ns.reserve("numba")
    guarded = has_guards(g)
    if guarded:
        em.ns.reserve(GUARD_CLASS)
    unpack = codegen._reserve_inputs(g, em, sig)
    body = _body_lines(em)
    ret = codegen._return_expr(g, em)
    head = [f"# Generated by graphc from {g.fn_name}"
            + (f" ({os.path.basename(source_file)})" if source_file else "")
            + ". Numba target: fused elementwise loops. Do not edit.",
            "import numba", "import numpy as np", ""]
    if em.module_consts:
        head += [""] + em.module_consts + [""]
    defaults: list = []
    bound: dict = {}
    closure = [(nid, em.name[nid]) for nid in codegen._closure_nodes(g)]
    def_line = codegen._def_line(g, sig, func_name, defaults, em.ns, bound, closure)
    blank, bindings = set(), {}
    if defaults:
        start = len(head) + 1
        for i, (name, value) in bound.items():
            blank.add(start + i)
            bindings[name] = value
        head += [""] + defaults + [""]
    checks = entry_checks(g, sig, closure)
    lines = head + ["", def_line] + ([f'    """{doc}"""'] if doc else [])
    if checks:
        for expected_line, raise_line in checks[1]:
            blank.update((len(lines), len(lines) + 1))
            lines += ["    " + expected_line, "        " + raise_line]
    lines += ["    " + line for line in unpack + codegen._weak_inputs_to_numpy(g, em)]
    lines += body
    if body and body[-1].strip() and any(s.strip().startswith("# grad of") for s in body):
        lines.append("")
    lines.append(f"    return {ret}")
    for kernel in em.kernels:
        lines += ["", ""] + kernel
    body_end = len(lines)
    if checks:
        lines += ["", "", signature_text(checks[0]), "", "", ENTRY_HELPERS.strip()]
    if guarded:
        lines += ["", "", GUARD_HELPERS.strip()]
    fast = ["" if i in blank else line for i, line in enumerate(lines)]
    return codegen.Module("\n".join(lines) + "\n", "\n".join(fast) + "\n", bindings,
                          [(name, nid) for nid, name in closure], body_end)
